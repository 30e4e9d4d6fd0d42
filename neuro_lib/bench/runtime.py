"""`neuro bench runtime`: the runtime measured (issue 15) — the router, recursive expansion, the experts
alone and routed, the judge, latency by path.

    neuro bench runtime --profile bench --seeds 3 --out data/reference/runtime_bench.json
    neuro bench runtime --profile smoke --parts router,expansion      # no expert training

Parts (`--parts`, all by default):
- router: the trained classifier (runtime/router_model.py) against the keyword rules
  (runtime/router.py) and the random router, on held-out phrasings (data/queries.py templates and the
  experts' own generators, runtime/tasks.py): exact-set accuracy, micro/macro F1, path accuracy
  against the gold slow label, share sent to the slow path; one classifier per seed.
- expansion: the adding GPT (runtime/sum_solver.py) trained for a step budget; each family (operand
  count) probed; direct vs recursive expansion vs best-of-N at equal model calls (vote and mean
  log-prob selection), per size (runtime/expansion.py). Then the cost-quality trade-off on math
  queries (sums) whose fast path is the direct answer and slow path the expanded one: APGR and the
  slow share needed for 50 % PGR, per router (runtime/router_eval.py).
- runtime: the experts of the profile (runtime/experts.py, trained or loaded from data/cache/runtime/)
  on held-out tasks of each family (runtime/tasks.py): each expert alone (the general model among
  them), and the RuntimeEngine on the default graph with each router. Every task runs on the forced
  fast path and the forced slow path (the router's skills, its path overridden); a router's success is
  the path it picks, its APGR comes from the same two tables, and latency (Result.timings total_s) is
  reported per path: a timing, re-measure it on a quiet machine. Success counts an answer shown (verified
  or unverified) that is the gold one; selective accuracy (bench/outside.py's selective(): coverage = share
  verified, accuracy of the verified answers, share of wrong answers marked verified) is reported per router
  and path. Judge agreement comes from
  runtime/judge.py's evaluate_judge when that module exists.

Quality figures use step budgets and fixed seeds, so they do not depend on the machine's load; the
latency rows do.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, replace

import numpy as np
import torch

from neuro_lib.bench.report import make_report, percentile
from neuro_lib.data.arith import sum_problems
from neuro_lib.data.queries import generate_queries, math_queries
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import ExpansionSizes, Profile, RouterSizes, get_profile
from neuro_lib.runtime.expansion import Expander, compare_at_equal_calls, probe_families
from neuro_lib.runtime.router import KeywordRouter
from neuro_lib.runtime.router_eval import (apgr, cost_quality_curve, evaluate_router, routes_for,
                                           slow_share_for_pgr)
from neuro_lib.runtime.router_model import RandomRouter, RouterConfig, train_router, training_queries
from neuro_lib.runtime.sum_solver import train_sum_solver
from neuro_lib.runtime.tasks import FAMILIES, answer_succeeds, family_tasks, router_examples, succeeded
from neuro_lib.runtime.types import Query
from neuro_lib.bench.flags import add_threads
from neuro_lib.bench.outside import (ANSWERED, add_eval, expert_answer, floor_answers, judge_agreement, json_rows,
                                     json_scores, oracle, outside_sizes, retrieval_rows, score, selective, splitter_rows,
                                     summarise, system_rows)

PARTS = ("router", "expansion", "runtime")
METRICS = (("accuracy", "exact skill set"), ("micro_f1", "micro F1"), ("macro_f1", "macro F1"),
           ("path_accuracy", "path accuracy"), ("slow_share", "slow share"))


def add_arguments(p):
    p.add_argument("--profile", default="bench", help="sizes from profiles.py (tasks.router, tasks.expansion)")
    p.add_argument("--seeds", type=int, default=0, help="seeds for the router and the adding model (default: "
                                                        "the profile's)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    add_eval(p)
    add_threads(p)


# -- router -------------------------------------------------------------------------------------------------------
def router_data(sizes: RouterSizes, seed: int) -> tuple[list, list]:
    """(training, held-out) labelled queries: data/queries.py's templates and the experts' generators."""
    train = training_queries(sizes, seed)
    test = (generate_queries(sizes.n_test, seed=seed + 1000, split="heldout")
            + router_examples(sizes.n_test // 2, seed + 1000, "heldout"))
    return train, test


def routers_for(sizes: RouterSizes, seed: int, train: list) -> dict:
    return {"classifier": train_router(train, RouterConfig(), steps=sizes.steps, seed=seed),
            "keywords": KeywordRouter(), "random": RandomRouter(seed=seed)}


def router_part(sizes: RouterSizes, seed: int) -> tuple[dict, dict]:
    """({router name: evaluate_router report}, the routers) for one seed."""
    train, test = router_data(sizes, seed)
    routers = routers_for(sizes, seed, train)
    return {name: evaluate_router(r, test) for name, r in routers.items()}, routers


# -- expansion and the math cost-quality trade-off --------------------------------------------------------------
def expansion_part(sizes: ExpansionSizes, rsizes: RouterSizes, seed: int, routers: dict,
                   steps: int | None = None) -> dict:
    """Expansion vs best-of-N rows per size, and per router the APGR on sums (fast = direct, slow = expanded)."""
    solver = train_sum_solver(sizes, steps=steps, seed=seed)
    failure = probe_families(solver, {k: sum_problems(sizes.probe, k, seed=seed + 2) for k in sizes.sizes})
    expander = Expander(solver, failure, sizes.threshold)
    problems = {k: sum_problems(sizes.problems, k, seed=seed + 3) for k in sizes.sizes}
    rows = compare_at_equal_calls(solver, expander, problems, seed=seed)
    queries = math_queries(rsizes.n_math, sizes.sizes, seed=seed + 4)
    q_fast = [float(solver.direct(q.operands).value == q.value) for q in queries]
    q_slow = [float(expander.solve(q.operands).value == q.value) for q in queries]
    tradeoff = {}
    # the oracle ranks by what the slow path gains on each query: the ceiling any router's APGR can reach
    scored = {"oracle": [s - f for f, s in zip(q_fast, q_slow)],
              **{name: [route.complexity for route in routes_for(r, queries)] for name, r in routers.items()}}
    for name, scores in scored.items():
        curve = cost_quality_curve(scores, q_fast, q_slow)
        tradeoff[name] = {"apgr": apgr(scores, q_fast, q_slow), "share_for_half": slow_share_for_pgr(curve),
                          "curve": curve}
    return {"failure": failure, "rows": rows, "tradeoff": tradeoff, "quality_fast": float(np.mean(q_fast)),
            "quality_slow": float(np.mean(q_slow)), "n_math": len(queries)}


# -- the runtime end to end ---------------------------------------------------------------------------------------
class FixedPath:
    """A router's skills with the path forced (the fast or slow table of the cost-quality test)."""

    def __init__(self, inner, path: str):
        self.inner, self.path, self.name = inner, path, f"{inner.name}-{path}"

    def route(self, query: Query):
        return replace(self.inner.route(query), path=self.path)


def load_judge():
    """rt-experts' rule judge and its evaluation, or (None, None) when runtime/judge.py is not there."""
    try:
        from neuro_lib.runtime.judge import evaluate_judge, judge
    except ImportError:
        return None, None
    return judge, evaluate_judge


def runtime_part(experts: dict, tasks: list, routers: dict, judge=None) -> dict:
    """Success per family of each expert alone and of the engine routed by each router; per-path tables,
    APGR and latencies."""
    from neuro_lib.runtime.engine import RuntimeEngine

    fams = [f for f in FAMILIES if any(t.family == f for t in tasks)]

    def by_family(ok: list) -> dict:
        out = {f: float(np.mean([o for o, t in zip(ok, tasks) if t.family == f])) for f in fams}
        out["all"] = float(np.mean(ok))
        return out

    single = {name: by_family([answer_succeeds(t, *_answer(e, t.query)) for t in tasks]) for name, e in experts.items()}
    routed, tables, latency, selectives = {}, {}, {"fast": [], "slow": []}, {}
    for name in ("classifier", "keywords"):
        r = routers[name]
        q = {}
        for path in ("fast", "slow"):
            engine = RuntimeEngine("default", experts, FixedPath(r, path), judge)
            results = [engine.run(t.query) for t in tasks]
            q[path] = [float(succeeded(t, res)) for t, res in zip(tasks, results)]
            selectives[f"{name} {path}"] = selective(  # right = the shown answer is the gold one; marked = verified
                [answer_succeeds(t, res.answer, res.value) and res.status in ANSWERED for t, res in zip(tasks, results)],
                [res.ok for res in results], [res.status for res in results])
            if name == "classifier":
                latency[path] = [1000 * res.timings["total_s"] for res in results]
        tables[name] = q
        paths = [route.path for route in (r.route(t.query) for t in tasks)]
        routed[name] = by_family([q[p][i] for i, p in enumerate(paths)])
        routed[name]["slow_share"] = paths.count("slow") / len(paths)
    tradeoff = {}
    # the random router and the oracle (ranked by what the slow path gains) use the classifier's skill tables
    scored = {name: [r.route(t.query).complexity for t in tasks] for name, r in routers.items()}
    scored["oracle"] = [s - f for f, s in zip(tables["classifier"]["fast"], tables["classifier"]["slow"])]
    for name, scores in scored.items():
        q = tables.get(name, tables["classifier"])
        gap = np.mean(q["slow"]) - np.mean(q["fast"])
        tradeoff[name] = {"apgr": apgr(scores, q["fast"], q["slow"]) if gap else float("nan"),
                          "quality_fast": float(np.mean(q["fast"])), "quality_slow": float(np.mean(q["slow"]))}
    return {"families": fams, "single": single, "routed": routed, "tradeoff": tradeoff, "latency_ms": latency,
            "n_tasks": len(tasks), "tables": tables, "task_families": [t.family for t in tasks],
            "selective": selectives}


def judge_rows(j: dict) -> list[tuple[str, float, int]]:
    """(name, value, cases) rows of runtime/judge.py's evaluate_judge report."""
    rows = [("judge agreement (all)", j["all"]["agreement"], j["all"]["n"]),
            ("judge agreement (expert answers)", j["experts_only"]["agreement"], j["experts_only"]["n"])]
    rows += [(f"judge agreement ({m})", s["agreement"], s["n"]) for m, s in j["per_method"].items()]
    p = j["pairwise"]
    rows += [("judge pairwise swap consistency", p["swap_consistency"], p["pairs"]),
             ("judge pairwise accuracy", p["accuracy"], p["right_vs_wrong_pairs"]),
             ("judge model held-out accuracy", j["judge_model_heldout_accuracy"], 0)]
    return rows


def _answer(expert, query: Query) -> tuple[str, object]:
    try:
        a = expert.answer(query)
    except Exception:  # noqa: BLE001 - an expert that crashes on another family's task has simply failed it
        return "", None
    return (a.text, a.value) if a.ok else ("", None)


# -- the outside sets (data/eval/, issue 21) -----------------------------------------------------------------------
def outside_experts(experts: dict, items: list) -> dict:
    """Each expert alone on every outside item -> {name: {"answers", "right", "ok", "text", "json"}}."""
    out = {}
    for name, e in experts.items():
        answers = [expert_answer(e, it) for it in items]
        out[name] = {"answers": answers, "right": [score(it, a.text, a.value, a.ok) for it, a in zip(items, answers)],
                     "ok": [a.ok for a in answers], "text": [a.text for a in answers],
                     "json": [json_scores(it, a.value if a.value is not None else a.text)
                              for it, a in zip(items, answers) if it.family == "json"]}
    return out


def outside_routed(experts: dict, items: list, router, judge) -> dict:
    """The engine on the default graph, forced fast, forced slow, and on the router's own path."""
    from neuro_lib.bench.outside import query_for
    from neuro_lib.runtime.engine import RuntimeEngine

    by_path = {}
    for path in ("fast", "slow"):
        engine = RuntimeEngine("default", experts, FixedPath(router, path), judge)
        results = [engine.run(query_for(it)) for it in items]
        # scored as shown (an unverified answer is still an answer; abstained/failed ones are refusals); marked
        # ok only when verified
        shown = [r.status in ANSWERED for r in results]
        texts = [r.answer if a else "" for r, a in zip(results, shown)]
        values = [r.value if a else None for r, a in zip(results, shown)]
        by_path[path] = {"right": [score(it, t, v, a) for it, t, v, a in zip(items, texts, values, shown)],
                         "ok": [bool(r.ok) for r in results], "shown": shown, "status": [r.status for r in results],
                         "text": texts,
                         "json": [json_scores(it, v if v is not None else t or None)
                                  for it, t, v in zip(items, texts, values) if it.family == "json"],
                         "ms": [1000 * r.timings["total_s"] for r in results]}
    paths = [router.route(query_for(it)).path for it in items]
    routed = {k: [by_path[p][k][i] for i, p in enumerate(paths)] for k in ("right", "ok", "shown", "status", "text")}
    routed["json"] = [by_path[p]["json"][j] for j, p in enumerate(p for p, it in zip(paths, items) if it.family == "json")]
    routed["slow_share"] = paths.count("slow") / len(paths)
    return {"fast": by_path["fast"], "slow": by_path["slow"], "routed": routed}


def outside_rows(system: str, items: list, r: dict) -> list[dict]:
    return (system_rows(system, summarise(items, r["right"], r["ok"])) + json_rows(system, r.get("json", []))
            + retrieval_rows(system, items, r["text"], r.get("shown", r["ok"])))


def run_outside(args, profile: Profile, per_seed_routers: list, seeds: list) -> tuple[list[dict], dict]:
    """Rows of every system on the outside sets; routers per seed, experts and floors once (greedy, no seed)."""
    from neuro_lib.data.eval_sets import load_set
    from neuro_lib.runtime.experts import Retrieval, build_experts

    items = [it for fam in outside_sizes(profile.tasks.outside_eval, args.n_outside).values() for it in fam]
    experts = build_experts(profile)
    judge, _ = load_judge()
    alone = outside_experts(experts, items)
    results = []
    for name, r in alone.items():
        results += outside_rows(f"{name} alone", items, r)
    agreement = {}
    if judge is not None:  # the engine's judge on each family's expert's own answers, against the gold scorer
        agreement = judge_agreement(items, alone, {n: r["answers"] for n, r in alone.items()}, judge)
        for fam, a in agreement.items():
            for key in ("agreement", "wrong_passed"):
                if a[key] == a[key]:
                    results.append({"name": f"outside judge: {fam} {key.replace('_', ' ')}", "unit": "ratio",
                                    "value": round(a[key], 4), "n": a["n"] if key == "agreement" else a["wrong"]})
    right_oracle = oracle({n: r["right"] for n, r in alone.items()})
    results += system_rows("oracle router", summarise(items, right_oracle, right_oracle))
    index = getattr(experts.get("retrieval"), "index", None)
    f_right, f_ok, f_json = floor_answers(items, Retrieval(index, "bm25") if index is not None else None)
    results += system_rows("rule floors", summarise(items, f_right, f_ok)) + json_rows("rule floors", f_json)
    # issue 21 item 6: the rule splitter on every compound item (cheap: no model runs), against its gold structure
    results += splitter_rows(load_set("compound"), {n: per_seed_routers[0][n] for n in ("keywords", "classifier")})
    per_seed = []
    for i, s in enumerate(seeds):
        per_seed.append({name: outside_routed(experts, items, per_seed_routers[i][name], judge)
                         for name in ("classifier", "keywords")})
    for name in ("classifier", "keywords"):
        for kind in ("routed", "fast", "slow"):
            tables = [summarise(items, r[name][kind]["right"], r[name][kind]["ok"], r[name][kind]["status"])
                      for r in per_seed]
            system = f"routed ({name})" if kind == "routed" else f"routed ({name}, forced {kind})"
            for fam in tables[0]:
                vals = {k: [t[fam][k] for t in tables] for k in tables[0][fam] if k != "n"}
                results.append({"name": f"outside {system}: {fam} success", "unit": "ratio", "n": tables[0][fam]["n"],
                                "value": round(float(np.mean(vals["success"])), 4),
                                "per_seed": [round(v, 4) for v in vals["success"]],
                                **{k: round(float(np.nanmean(v)), 4) if not all(x != x for x in v) else None
                                   for k, v in vals.items() if k != "success"}})
            if kind == "routed":
                results += json_rows(system, per_seed[0][name][kind]["json"])
                results += retrieval_rows(system, items, per_seed[0][name][kind]["text"], per_seed[0][name][kind]["shown"])
        results.append({"name": f"outside routed ({name}): slow share", "unit": "ratio",
                        "value": round(float(np.mean([r[name]["routed"]["slow_share"] for r in per_seed])), 4)})
    for path in ("fast", "slow"):
        xs = [x for r in per_seed for x in r["classifier"][path]["ms"]]
        results.append({"name": f"outside latency {path} path p95", "value": round(percentile(xs, 95), 2),
                        "unit": "ms", "timing": True, "runs": len(xs)})
    details = {"items": [it.id for it in items], "alone_right": {n: r["right"] for n, r in alone.items()},
               "floor_right": f_right, "judge": judge is not None, "judge_agreement": agreement}
    return results, details


# -- the suite ---------------------------------------------------------------------------------------------------
def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise NeuroError(f"unknown --parts {unknown or parts}; choose from {', '.join(PARTS)}")
    if args.seeds < 0:
        raise NeuroError("--seeds must be positive")
    args.eval, args.n_outside = getattr(args, "eval", "heldout"), getattr(args, "n_outside", -1)  # callers' Namespaces
    if args.n_outside < -1:
        raise NeuroError(f"--n-outside must be 0 (all) or positive, got {args.n_outside}")
    profile = get_profile(args.profile)
    rsizes, esizes = profile.tasks.router, profile.tasks.expansion
    seeds = list(range(args.seeds or esizes.seeds))
    results, details, missing = [], {}, []
    per_seed_router, per_seed_routers = [], []
    for s in seeds:  # routers are needed by every part (the trade-off scores them)
        rep, routers = router_part(rsizes, s)
        per_seed_router.append(rep)
        per_seed_routers.append(routers)
    if args.eval == "outside":  # the hand-written sets instead of the generators' held-out phrasings
        results, details["outside"] = run_outside(args, profile, per_seed_routers, seeds)
        config = {"profile": args.profile, "eval": "outside (data/eval/)", "seeds": seeds, "router": asdict(rsizes),
                  "outside": outside_sizes(profile.tasks.outside_eval, args.n_outside, counts=True),
                  "threads": torch.get_num_threads()}
        report = make_report("runtime", config, results)
        report["details"] = details
        return report
    if "router" in parts:
        for name in per_seed_router[0]:
            for key, label in METRICS:
                vals = [rep[name][key] for rep in per_seed_router]
                results.append({"name": f"router {name} {label}", "value": round(statistics.mean(vals), 4),
                                "unit": "ratio", "per_seed": [round(v, 4) for v in vals]})
        details["router"] = {name: {k: per_seed_router[0][name][k] for k in ("confusion", "labels", "f1_per_skill")}
                             for name in per_seed_router[0]}
    if "expansion" in parts:
        runs = [expansion_part(esizes, rsizes, s, per_seed_routers[i]) for i, s in enumerate(seeds)]
        for j, row in enumerate(runs[0]["rows"]):
            k = row["size"]
            for method in ("direct", "expansion", "bon_vote", "bon_logprob"):
                vals = [r["rows"][j][method] for r in runs]
                calls = "calls_direct" if method == "direct" else "calls_expansion"
                results.append({"name": f"sum of {k}: {method} accuracy", "value": round(statistics.mean(vals), 4),
                                "unit": "ratio", "per_seed": [round(v, 4) for v in vals],
                                "calls": round(statistics.mean(r["rows"][j][calls] for r in runs), 2)})
            results.append({"name": f"sum of {k}: probe failure", "unit": "ratio",
                            "value": round(statistics.mean(r["failure"][k] for r in runs), 4),
                            "per_seed": [round(r["failure"][k], 4) for r in runs],
                            "expanded": [r["rows"][j]["expanded"] for r in runs]})
        for name in runs[0]["tradeoff"]:
            vals = [r["tradeoff"][name]["apgr"] for r in runs]
            results.append({"name": f"router {name} APGR (sums)", "value": round(float(np.mean(vals)), 4),
                            "unit": "ratio", "per_seed": [round(v, 4) for v in vals]})
            half = [r["tradeoff"][name]["share_for_half"] for r in runs]
            results.append({"name": f"router {name} slow share for 50% PGR (sums)", "unit": "ratio",
                            "value": round(float(np.mean(half)), 4), "per_seed": [round(v, 4) for v in half]})
        results.append({"name": "sums quality all fast", "unit": "ratio",
                        "value": round(statistics.mean(r["quality_fast"] for r in runs), 4)})
        results.append({"name": "sums quality all slow", "unit": "ratio",
                        "value": round(statistics.mean(r["quality_slow"] for r in runs), 4)})
        details["expansion"] = [{"rows": r["rows"], "curves": {n: t["curve"] for n, t in r["tradeoff"].items()}}
                                for r in runs]
    if "runtime" in parts:
        from neuro_lib.runtime.experts import build_experts

        experts = build_experts(profile)
        judge, evaluate_judge = load_judge()
        if judge is None:
            missing.append("runtime/judge.py (judge agreement; the slow path ran without a judge)")
        index = getattr(experts.get("retrieval"), "index", None)
        tasks = family_tasks(rsizes.n_tasks, seed=0, split="heldout", index=index)
        rt = runtime_part(experts, tasks, per_seed_routers[0], judge)
        for system, fams in [*((f"{n} alone", v) for n, v in rt["single"].items()),
                             *((f"routed ({n})", v) for n, v in rt["routed"].items())]:
            for fam, v in fams.items():
                results.append({"name": f"{system}: {fam} success" if fam != "slow_share" else f"{system}: slow share",
                                "value": round(v, 4), "unit": "ratio"})
        for name, t in rt["tradeoff"].items():
            results.append({"name": f"router {name} APGR (runtime)", "value": round(t["apgr"], 4), "unit": "ratio",
                            "quality_fast": round(t["quality_fast"], 4), "quality_slow": round(t["quality_slow"], 4)})
        for system, sel in rt["selective"].items():  # coverage vs accuracy of the verified answers, per path
            for key in ("coverage", "selective_accuracy", "wrong_marked_ok", "abstained"):
                if sel[key] == sel[key]:  # NaN (nothing verified) is left out
                    results.append({"name": f"engine ({system}): {key.replace('_', ' ')}", "value": round(sel[key], 4),
                                    "unit": "ratio", "n": sel["n"]})
        for path, xs in rt["latency_ms"].items():
            for p in (50, 95):
                results.append({"name": f"latency {path} path p{p}", "value": round(percentile(xs, p), 2),
                                "unit": "ms", "timing": True, "runs": len(xs)})
            results.append({"name": f"latency {path} path mean", "value": round(float(np.mean(xs)), 2), "unit": "ms",
                            "timing": True, "runs": len(xs)})
        if evaluate_judge is not None:
            j = evaluate_judge(profile, experts=experts)
            results += [{"name": name, "value": round(v, 4), "unit": "ratio", "n": n} for name, v, n in judge_rows(j)]
            details["judge"] = {k: v for k, v in j.items() if k != "examples"}
        details["runtime"] = {k: rt[k] for k in ("families", "single", "routed", "latency_ms", "tables", "task_families",
                                                  "selective")}
    config = {"profile": args.profile, "parts": parts, "seeds": seeds, "router": asdict(rsizes), "expansion": asdict(esizes),
              "threads": torch.get_num_threads(), "missing": missing}
    report = make_report("runtime", config, results)
    report["details"] = details
    return report
