"""`neuro bench experts`: the runtime's tiny experts and the judge, each on its held-out test.

    neuro bench experts --profile smoke --json
    neuro bench experts --profile bench --struct-profile smoke --threads 2 --out data/reference/experts_bench.json
    neuro bench experts --profile bench --experts reason,code --eval outside --n-outside 0   # two experts only
    neuro bench experts --profile bench --experts reason,code --variant templated   # the original held-out split

Quality only (step budgets, machine-independent): Reason-mini exact match on held-out-template word problems
with the calculator and without it (the model's own arithmetic), per family; Code-mini accuracy (the program's
sandboxed output equals the reference) on held-out-template tasks; judge agreement with ground truth on
held-out expert outputs (overall, per method, right answers passed, wrong answers failed), the judge model's
held-out accuracy, pairwise accuracy and swap consistency. Experts are trained on first use and cached
(runtime/experts.py); `--struct-profile` picks Struct-mini's sizes separately (its bench budget is the
longest to train). `--experts` picks some of reason, code, struct, rag (the judge needs all four; with fewer
its rows are left out, and on the outside sets only the chosen experts' families and their floors are scored);
`--variant` picks the generator whose held-out phrasings Reason-mini and Code-mini are scored on (data/sft.VARIANTS;
default: the current one, which they are trained on). `neuro bench runtime` calls the same evaluate_* functions.
"""
from __future__ import annotations

from dataclasses import asdict

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import OutsideEvalSizes, get_profile
from neuro_lib.bench.expert_eval import evaluate_code_mini, evaluate_reason_mini
from neuro_lib.runtime.experts import StructMini, build_experts, cached_model
from neuro_lib.runtime.judge import evaluate_judge
from neuro_lib.bench.flags import add_seed, add_threads
from neuro_lib.bench.outside import (add_eval, expert_answer, floor_answers, json_rows, json_scores, outside_sizes,
                                     retrieval_rows, score, summarise, system_rows)

# which outside families each expert is asked (its skill's own family; compound goes to both of its experts)
OUTSIDE_FAMILIES = {"reason-mini": ("math", "compound"), "code-mini": ("code", "compound"),
                    "struct-mini": ("json",), "retrieval": ("retrieval",)}


EXPERT_FLAG = {"reason": "reason-mini", "code": "code-mini", "struct": "struct-mini", "rag": "retrieval"}


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks reason_mini, code_mini, experts)")
    p.add_argument("--experts", default=",".join(EXPERT_FLAG),
                   help=f"comma-separated experts to score, from {', '.join(EXPERT_FLAG)} (default: all; the judge "
                        "is scored only with all four)")
    p.add_argument("--variant", choices=("templated", "broad"), default=None,
                   help="the generator whose held-out phrasings reason and code are scored on (default: the current "
                        "one, data/sft.VARIANTS)")
    p.add_argument("--struct-profile", default=None, help="Struct-mini's profile for the judge cases (default: --profile)")
    p.add_argument("--n", type=int, default=0, help="held-out problems per expert (0 = the profile's n_eval)")
    add_eval(p)
    add_threads(p)
    add_seed(p, 0)


def chosen_experts(text: str) -> tuple[str, ...]:
    """--experts "reason,code" (or the experts' own names, "struct-mini") -> ("reason-mini", "code-mini"), or one
    sentence naming the unknown one."""
    full = {**EXPERT_FLAG, **{v: v for v in EXPERT_FLAG.values()}}
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in full]
    if bad or not names:
        raise NeuroError(f"unknown expert {bad[0] if bad else text!r} for --experts; choose from "
                         f"{', '.join(EXPERT_FLAG)}")
    return tuple(dict.fromkeys(full[x] for x in names))


def result_rows(reason: dict | None, code: dict | None, judge: dict | None) -> list[dict]:
    rows = []
    for mode in ("with_tool", "grounded", "without_tool") if reason else ():  # grounded: the runtime's mode
        m = reason[mode]
        rows.append({"name": f"reason-mini exact match {mode.replace('_', ' ')}", "value": round(m["exact_match"], 4),
                     "unit": "fraction", "n": reason["n"]})
        rows += [{"name": f"reason-mini {mode.replace('_', ' ')}: {fam}", "value": round(v, 4), "unit": "fraction"}
                 for fam, v in m["per_family"].items()]
        rows.append({"name": f"reason-mini model calls {mode.replace('_', ' ')}",
                     "value": round(m["model_calls_per_problem"], 3), "unit": "calls/problem"})
    if code:
        rows.append({"name": "code-mini accuracy", "value": round(code["accuracy"], 4), "unit": "fraction",
                     "n": code["n"]})
        rows.append({"name": "code-mini programs ran ok", "value": round(code["ran_ok"], 4), "unit": "fraction"})
        rows += [{"name": f"code-mini: {fam}", "value": round(v, 4), "unit": "fraction"}
                 for fam, v in code["per_family"].items()]
    if not judge:
        return rows
    for part in ("all", "experts_only"):
        m = judge[part]
        rows.append({"name": f"judge agreement ({part.replace('_', ' ')})", "value": round(m["agreement"], 4),
                     "unit": "fraction", "n": m["n"]})
    for method, m in judge["per_method"].items():
        rows.append({"name": f"judge agreement: {method}", "value": round(m["agreement"], 4), "unit": "fraction",
                     "n": m["n"], "passed_right": m["passed_right"], "failed_wrong": m["failed_wrong"]})
    rows.append({"name": "judge model held-out accuracy", "value": round(judge["judge_model_heldout_accuracy"], 4),
                 "unit": "fraction"})
    rows.append({"name": "pairwise accuracy (right vs wrong)", "value": round(judge["pairwise"]["accuracy"], 4),
                 "unit": "fraction", "n": judge["pairwise"]["right_vs_wrong_pairs"]})
    rows.append({"name": "pairwise swap consistency", "value": round(judge["pairwise"]["swap_consistency"], 4),
                 "unit": "fraction", "n": judge["pairwise"]["pairs"]})
    return rows


def outside_rows(experts: dict, sizes: OutsideEvalSizes, n: int) -> list[dict]:
    """Each expert of `experts` on its families of the outside sets, and the rule floors on the same families."""
    from neuro_lib.runtime.experts import Retrieval

    sets = outside_sizes(sizes, n)
    rows = []
    for name, fams in OUTSIDE_FAMILIES.items():
        if name not in experts:
            continue
        items = [it for f in fams for it in sets[f]]
        answers = [expert_answer(experts[name], it) for it in items]
        right = [score(it, a.text, a.value, a.ok) for it, a in zip(items, answers)]
        rows += system_rows(name, summarise(items, right, [a.ok for a in answers]))
        rows += json_rows(name, [json_scores(it, a.value if a.value is not None else a.text)
                                 for it, a in zip(items, answers) if it.family == "json"],
                          [it.schema for it in items if it.family == "json"])
        rows += retrieval_rows(name, items, [a.text for a in answers], [a.ok for a in answers])
    scored = {f for name in experts for f in OUTSIDE_FAMILIES.get(name, ())}
    items = [it for fam, f in sets.items() if fam in scored for it in f]
    floor = Retrieval(experts["retrieval"].index, "bm25") if "retrieval" in experts else None
    right, ok, js = floor_answers(items, floor)
    rows += system_rows("rule floors", summarise(items, right, ok))
    rows += json_rows("rule floors", js, [it.schema for it in items if it.family == "json"])
    if floor is not None:
        rows += retrieval_rows("rule floors", items, [expert_answer(floor, it).text if it.family == "retrieval"
                                                       else "" for it in items], [True] * len(items))
    return rows


def run(args) -> dict:
    if args.threads < 0:
        raise NeuroError(f"--threads must be non-negative, got {args.threads}")
    if args.n < 0:
        raise NeuroError(f"--n must be non-negative, got {args.n}")
    args.eval, args.n_outside = getattr(args, "eval", "heldout"), getattr(args, "n_outside", -1)  # callers' Namespaces
    if args.n_outside < -1:
        raise NeuroError(f"--n-outside must be 0 (all) or positive, got {args.n_outside}")
    if args.threads:
        torch.set_num_threads(args.threads)
    struct_profile = args.struct_profile or args.profile
    profile, struct = get_profile(args.profile), get_profile(struct_profile)  # an unknown one fails before any work
    n = args.n or None
    names = chosen_experts(getattr(args, "experts", ",".join(EXPERT_FLAG)))
    variant = getattr(args, "variant", None)
    experts = build_experts(profile, tuple(x for x in names if x != "struct-mini"))
    if "struct-mini" in names:
        experts["struct-mini"] = StructMini(cached_model("struct-mini", struct)[0], struct.tasks.struct_mini.budget)
    if args.eval == "outside":  # the hand-written sets (data/eval/) instead of the generators' held-out phrasings
        config = {"profile": args.profile, "struct_profile": struct_profile, "eval": "outside (data/eval/)",
                  "scored": list(names), "outside": outside_sizes(profile.tasks.outside_eval, args.n_outside,
                                                                    counts=True)}
        return make_report("experts", config, outside_rows(experts, profile.tasks.outside_eval, args.n_outside))
    reason = evaluate_reason_mini(profile, experts["reason-mini"].model, n, args.seed, variant=variant) \
        if "reason-mini" in experts else None
    code = evaluate_code_mini(profile, experts["code-mini"].model, n, args.seed, variant=variant) \
        if "code-mini" in experts else None
    judge = evaluate_judge(profile, experts, n, args.seed) if len(names) == len(EXPERT_FLAG) else None
    tasks = profile.tasks
    config = {"profile": args.profile, "struct_profile": struct_profile, "seed": args.seed, "scored": list(names),
              "variant": variant or "current", "reason_mini": asdict(tasks.reason_mini),
              "code_mini": asdict(tasks.code_mini), "experts": asdict(tasks.experts),
              "eval": "held-out phrasing templates; RAG test-split sections"}
    report = make_report("experts", config, result_rows(reason, code, judge))
    if judge:
        report["examples"] = judge["examples"]
    return report
