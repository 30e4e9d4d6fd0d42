"""How good is a router: skill accuracy, multi-label F1, the top skill's confusion matrix, and the
RouteLLM cost-quality trade-off (APGR). Works for any object with `route(query) -> Route`.

    report = evaluate_router(router, heldout)          # accuracy, micro/macro F1, confusion, path accuracy
    curve = cost_quality_curve(scores, q_fast, q_slow)  # [{"share_slow", "quality", "pgr"}, ...]
    apgr(scores, q_fast, q_slow)                        # area under PGR over the share of slow calls

APGR (Ong et al. 2024, "RouteLLM", section 5.1): with per-query quality on the fast path q_fast[i]
and on the slow path q_slow[i], a router that sends to the slow path every query whose score is at
or above a threshold reaches quality(t) = mean(q_slow[i] if score[i] >= t else q_fast[i]). The
performance gap recovered is PGR(t) = (quality(t) - quality(all fast)) / (quality(all slow) -
quality(all fast)); APGR is the area under PGR plotted against the share of calls sent to the slow
path, from 0 (all fast) to 1 (all slow). Sweeping every threshold adds queries in decreasing score
order; queries with equal scores cannot be separated by a threshold and enter together, joined by a
straight line (the expected curve under random tie-breaking), so a constant score gives 0.5, as does
a random router in expectation; an oracle that sends exactly the queries the slow path fixes first
gets close to 1. The area is exact (trapezoids on the swept points), not RouteLLM's 10-bin estimate.

Tests: tests/test_runtime_router.py (hand-computed APGR, F1 against scikit-learn).
"""
from __future__ import annotations

import math

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.types import SKILLS, Query


def multilabel_f1(gold: list, pred: list, labels=SKILLS) -> dict:
    """Micro and macro F1 over label sets (a label with no gold and no prediction scores 0, as in scikit-learn)."""
    per = {}
    tp_all = fp_all = fn_all = 0
    for lab in labels:
        tp = sum(lab in g and lab in p for g, p in zip(gold, pred))
        fp = sum(lab not in g and lab in p for g, p in zip(gold, pred))
        fn = sum(lab in g and lab not in p for g, p in zip(gold, pred))
        per[lab] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
    denom = 2 * tp_all + fp_all + fn_all
    return {"micro": 2 * tp_all / denom if denom else 0.0, "macro": sum(per.values()) / len(labels), "per_label": per}


def routes_for(router, queries) -> list:
    """Routes for labelled queries (batched when the router offers route_many)."""
    qs = [Query(q.text) for q in queries]
    return router.route_many(qs) if hasattr(router, "route_many") else [router.route(q) for q in qs]


def evaluate_router(router, queries, routes: list | None = None) -> dict:
    """Accuracy (predicted skill set == gold set), micro/macro F1, path accuracy against the gold slow label,
    the share sent to the slow path, and the confusion matrix of the top skill (rows gold, columns predicted)."""
    if not queries:
        raise NeuroError("evaluating a router needs at least one query")
    routes = routes or routes_for(router, queries)
    gold, pred = [set(q.skills) for q in queries], [set(r.skills) for r in routes]
    idx = {s: i for i, s in enumerate(SKILLS)}
    confusion = [[0] * len(SKILLS) for _ in SKILLS]
    for q, r in zip(queries, routes):
        confusion[idx[q.primary]][idx[r.skills[0]]] += 1
    f1 = multilabel_f1(gold, pred)
    n = len(queries)
    return {"router": getattr(router, "name", type(router).__name__), "n": n,
            "accuracy": sum(g == p for g, p in zip(gold, pred)) / n,
            "micro_f1": f1["micro"], "macro_f1": f1["macro"], "f1_per_skill": f1["per_label"],
            "top_skill_accuracy": sum(confusion[i][i] for i in range(len(SKILLS))) / n,
            "path_accuracy": sum((r.path == "slow") == q.slow for q, r in zip(queries, routes)) / n,
            "slow_share": sum(r.path == "slow" for r in routes) / n,
            "confusion": confusion, "labels": list(SKILLS)}


def cost_quality_curve(scores, q_fast, q_slow) -> list[dict]:
    """Swept thresholds: share of slow calls, mean quality and PGR at each distinct score, highest first."""
    n = len(scores)
    if n == 0 or not n == len(q_fast) == len(q_slow):
        raise NeuroError(f"need equally many scores and qualities (>0), got {n}, {len(q_fast)}, {len(q_slow)}")
    lo, hi = sum(q_fast) / n, sum(q_slow) / n
    gap = hi - lo

    def point(k, total):
        quality = total / n
        return {"share_slow": k / n, "quality": quality, "pgr": (quality - lo) / gap if gap else math.nan}

    order = sorted(range(n), key=lambda i: -scores[i])
    total, curve, k = sum(q_fast), [point(0, sum(q_fast))], 0
    while k < n:
        group = [i for i in order[k:] if scores[i] == scores[order[k]]]  # ties enter together
        total += sum(q_slow[i] - q_fast[i] for i in group)
        k += len(group)
        curve.append(point(k, total))
    return curve


def apgr(scores, q_fast, q_slow) -> float:
    """Average performance gap recovered: the area under PGR over the share of slow calls (NaN when the slow path
    is no better or worse on average than the fast one, so no gap exists to recover)."""
    c = cost_quality_curve(scores, q_fast, q_slow)
    return sum((b["share_slow"] - a["share_slow"]) * (a["pgr"] + b["pgr"]) / 2 for a, b in zip(c, c[1:]))


def slow_share_for_pgr(curve: list[dict], target: float = 0.5) -> float:
    """The smallest share of slow calls at which the swept curve reaches a PGR of `target` (RouteLLM's
    "calls to the strong model needed for 50 % PGR"), interpolated between swept points."""
    if curve[0]["pgr"] >= target:
        return curve[0]["share_slow"]
    for a, b in zip(curve, curve[1:]):
        if b["pgr"] >= target:
            return a["share_slow"] + (b["share_slow"] - a["share_slow"]) * (target - a["pgr"]) / (b["pgr"] - a["pgr"])
    return math.nan
