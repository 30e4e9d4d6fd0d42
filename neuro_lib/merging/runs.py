"""Merges of run folders: the family checked, the method applied, an ordinary checkpoint written.

    from neuro_lib.merging.runs import merge_runs, task_vector_runs
    merge_runs("ties", "runs/base", ["runs/reason", "runs/code"], "runs/merged", density=0.2, lam=1.0)
    neuro merge --method ties --base runs/base runs/reason runs/code --density 0.2 --out runs/merged

Every child must record the base among its parents (`checkpoint.lineage`, written by fine-tuning) and
that base must be unchanged since (`check_lineage`): a task vector against another base is meaningless,
so children of different bases are refused in one sentence, before anything is written. The merged
checkpoint is a child of all of them: its `parent` is a list of lineage records, the base first
(role "base") and each child (role "child"), with the method ("merge:ties") and its settings, so it can
itself be fine-tuned or merged again. Logit ensembles are not checkpoints (merging/ensemble.py).
Tests: tests/test_merging.py (library), tests/test_merging.py::test_cli_* (the command).
"""
from __future__ import annotations

from pathlib import Path

from neuro_lib.checkpoint import (check_lineage, checkpoint_id, lineage, load_checkpoint, parents_of, read_pointer,
                                  save_checkpoint)
from neuro_lib.errors import NeuroError
from neuro_lib.merging.core import StateDict, describe, layer_groups, task_arithmetic, task_vector
from neuro_lib.merging.layerwise import layerwise
from neuro_lib.merging.slerp import slerp
from neuro_lib.merging.soups import uniform_soup
from neuro_lib.merging.ties import dare, ties
from neuro_lib.models import build_model


def _ta(base, children, lam=1.0, weights=None):
    return task_arithmetic(base, children, lam, weights)


def _ties(base, children, density=0.2, lam=1.0, trim="model", sign_ties="majority"):
    return ties(base, children, density, lam, trim, sign_ties)


def _dare(base, children, p=0.9, on="ta", lam=1.0, rescale="inverse", sign_ties="majority", seed=0):
    return dare(base, children, p, on, lam, rescale, sign_ties, seed)


def _slerp(base, children, t=0.5, norm="geodesic"):
    """One child: from the base (t = 0) to it; two children: from the first to the second."""
    if len(children) not in (1, 2):
        raise NeuroError(f"slerp interpolates two models: give one child (from the base) or two, not {len(children)}")
    a, b = (base, children[0]) if len(children) == 1 else children
    return slerp(a, b, t, norm)


def _soup(base, children, weights=None):
    return uniform_soup(children, weights)


def _layerwise(base, children, coeffs=1.0):
    """`coeffs`: one number, or one per block in `layer_groups` order (the blocks, then "other")."""
    groups = layer_groups(base)
    if isinstance(coeffs, (list, tuple)) and len(coeffs) == 1:
        coeffs = coeffs[0]
    if isinstance(coeffs, (list, tuple)):
        if len(coeffs) != len(groups):
            raise NeuroError(f"layer-wise needs {len(groups)} coefficients (blocks {groups}), got {len(coeffs)}")
        coeffs = dict(zip(groups, (float(c) for c in coeffs)))
    return layerwise(base, children, coeffs)


# method -> function(base_sd, child_sds, **options); the options each takes are its keyword arguments
METHODS = {"ta": _ta, "ties": _ties, "dare": _dare, "slerp": _slerp, "soup": _soup, "layerwise": _layerwise}


def merge_state(method: str, base_sd: StateDict, child_sds: list[StateDict], **options) -> StateDict:
    """Dispatch a merge by name; unknown methods or options are one sentence."""
    if method not in METHODS:
        raise NeuroError(f"unknown merge method {method!r}; choose one of {sorted(METHODS)}")
    fn = METHODS[method]
    allowed = fn.__code__.co_varnames[2:fn.__code__.co_argcount]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise NeuroError(f"merge method {method!r} takes no option(s) {unknown}; it takes {list(allowed)}")
    return fn(base_sd, child_sds, **options)


def check_family(base, children) -> tuple[dict, list[dict]]:
    """-> (base config, child configs) after checking every child was made from `base` as it is now and
    that all share its architecture, sizes and tokenizer."""
    base_cfg = check_lineage(base)
    base_id = checkpoint_id(base)
    child_cfgs = []
    for child in children:
        cfg = check_lineage(child)
        parents = parents_of(cfg)
        if base_id not in {r["id"] for r in parents}:
            named = ", ".join(r["path"] for r in parents) or "none recorded"
            raise NeuroError(f"{child} is not a child of {base} (its parent is {named}); "
                             f"only fine-tunes of one base can be merged")
        if (cfg["arch"], cfg["model"], cfg["tokenizer"]) != (base_cfg["arch"], base_cfg["model"], base_cfg["tokenizer"]):
            raise NeuroError(f"{child} differs from its base {base} in architecture, size or tokenizer")
        child_cfgs.append(cfg)
    return base_cfg, child_cfgs


def load_family(base, children):
    """-> (base model, tokenizer, base state dict, [child state dicts]) for a checked family."""
    check_family(base, children)
    model, tok, _ = load_checkpoint(base)
    return model, tok, model.state_dict(), [load_checkpoint(c)[0].state_dict() for c in children]


def task_vector_runs(child, base) -> StateDict:
    """The task vector child - base of two run folders, after checking the child's parent is that base."""
    _, _, base_sd, (child_sd,) = load_family(base, [child])
    return task_vector(child_sd, base_sd)


def merge_runs(method: str, base, children: list, out, **options) -> Path:
    """Merge `children` (run folders, fine-tunes of `base`) with `method` into a new run folder `out`;
    -> the checkpoint folder written. Nothing is written if any check fails."""
    out = Path(out)
    if out.is_dir() and read_pointer(out) is not None:
        raise NeuroError(f"{out} already holds a checkpoint; merge into a new folder")
    if not children:
        raise NeuroError("give at least one child to merge")
    _, tok, base_sd, child_sds = load_family(base, children)
    merged = merge_state(method, base_sd, child_sds, **options)
    base_cfg = check_lineage(base)
    model = build_model(base_cfg["arch"], **base_cfg["model"])
    model.load_state_dict(merged)
    how = f"merge:{method}"
    parents = [lineage(base, how, role="base", **options)] + [lineage(c, how, role="child") for c in children]
    plan = describe(base_sd)
    record = {"method": method, "options": options, "merged_tensors": len(plan["merged"]),
              "tied": plan["tied"], "copied": plan["copied"]}
    return save_checkpoint(out, model, tok, extra={"parent": parents, "merge": record})
