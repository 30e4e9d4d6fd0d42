"""`neuro merge`: merge fine-tunes of one base into an ordinary checkpoint with lineage.

    neuro merge --method ta    --base runs/base runs/a runs/b --lam 0.6 --out runs/ta
    neuro merge --method ties  --base runs/base runs/a runs/b --density 0.2 --lam 1.0 --out runs/ties
    neuro merge --method dare  --base runs/base runs/a runs/b --p 0.9 --on ties --out runs/dare
    neuro merge --method slerp --base runs/base runs/a runs/b --t 0 0.5 1 --out runs/slerp
    neuro merge --method soup  --base runs/base runs/a_s0 runs/a_s1 runs/a_s2 --out runs/soup
    neuro merge --method layerwise --base runs/base runs/a runs/b --coeffs 0.5 1 1 0.5 --out runs/lw

Options a method does not take are refused; the defaults are the papers' (merging/). The library does
the work (merging/runs.py); a greedy soup, a layer-wise search and a logit ensemble need a validation
score or run at inference, so they live in the library and `neuro bench merge`, not here.
Tests: tests/test_merging.py.
"""
from __future__ import annotations

from neuro_lib.cli import _number, _positive

# CLI flag -> the library's option name, for the options a user set
OPTIONS = {"lam": "lam", "density": "density", "trim": "trim", "sign_ties": "sign_ties", "p": "p", "on": "on",
           "rescale": "rescale", "seed": "seed", "t": "t", "norm": "norm", "weights": "weights", "coeffs": "coeffs"}


def cmd_merge(args) -> int:
    from neuro_lib.merging.runs import merge_runs

    options = {}
    for flag, name in OPTIONS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        options[name] = value[0] if flag == "t" and len(value) == 1 else value
    folder = merge_runs(args.method, args.base, args.children, args.out, **options)
    print(f"merged {len(args.children)} child(ren) of {args.base} by {args.method} -> {folder}")
    return 0


def register(sub) -> None:
    from neuro_lib.merging.runs import METHODS
    from neuro_lib.merging.slerp import NORMS
    from neuro_lib.merging.ties import DARE_ON, RESCALES, SIGN_TIES, TRIM_SCOPES

    p = sub.add_parser("merge", help="merge fine-tunes of one base (task arithmetic, TIES, DARE, SLERP, soup, ...)")
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--base", required=True, help="the run folder every child was fine-tuned from")
    p.add_argument("children", nargs="+", help="child run folders (their recorded parent must be --base)")
    p.add_argument("--out", required=True, help="a new run folder for the merged checkpoint")
    p.add_argument("--lam", type=_number(float), help="ta/ties/dare: scale of the merged task vector")
    p.add_argument("--density", type=_positive(float), help="ties: fraction of each task vector kept (0, 1]")
    p.add_argument("--trim", choices=TRIM_SCOPES, help="ties: trim over the whole model (paper) or per tensor")
    p.add_argument("--sign-ties", choices=SIGN_TIES, help="ties/dare: a zero sign sum takes the model's majority "
                                                          "sign (paper) or + (mergekit)")
    p.add_argument("--p", type=_number(float, 0, strict=False), help="dare: drop rate in [0, 1)")
    p.add_argument("--on", choices=DARE_ON, help="dare: merge the dropped vectors by task arithmetic or TIES")
    p.add_argument("--rescale", choices=RESCALES, help="dare: 1/(1-p) (paper) or match the L1 norm (mergekit)")
    p.add_argument("--seed", type=_number(int, 0, strict=False), help="dare: seed of the drops")
    p.add_argument("--t", type=_number(float, 0, strict=False), nargs="+",
                   help="slerp: t in [0, 1], or per-layer anchors")
    p.add_argument("--norm", choices=NORMS, help="slerp: geodesic (Shoemake) or raw (mergekit)")
    p.add_argument("--weights", type=_number(float, 0, strict=False), nargs="+", help="ta/soup: one per child")
    p.add_argument("--coeffs", type=_number(float), nargs="+",
                   help="layerwise: one coefficient, or one per block then one for the rest")
    p.set_defaults(func=cmd_merge)
