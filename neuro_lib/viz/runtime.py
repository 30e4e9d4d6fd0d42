"""Figures for notebook 08 (the runtime): the router's confusion matrix, the cost-quality curve (PGR
against the share of slow calls), expansion vs best-of-N at equal calls, success by family and path,
and latency by path; the experts against the rule floors and issue 21's goals on the outside sets (recorded).

They take the dicts of bench/runtime.py's parts (router_part, expansion_part, runtime_part) or a
recorded bench report's `details`.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from neuro_lib.bench import reference
from neuro_lib.runtime.types import SKILLS

METHODS = {"direct": "direct (1 call)", "expansion": "recursive expansion", "bon_vote": "best-of-N, majority vote",
           "bon_logprob": "best-of-N, mean log-prob"}


def confusion_heatmap(report: dict, title: str = "") -> go.Figure:
    """Top-skill confusion of one evaluate_router report (rows: gold, columns: predicted)."""
    m, labels = report["confusion"], report.get("labels", list(SKILLS))
    fig = go.Figure(go.Heatmap(z=m, x=labels, y=labels, colorscale="Blues", text=m, texttemplate="%{text}",
                               showscale=False))
    fig.update_layout(title=title or f"{report.get('router', 'router')}: top skill, gold (rows) vs predicted",
                      xaxis_title="predicted", yaxis_title="gold", yaxis_autorange="reversed", height=380, width=460)
    return fig


def pgr_curves(curves: dict, title: str) -> go.Figure:
    """{router: cost_quality_curve points} -> PGR over the share of slow calls."""
    fig = go.Figure()
    for name, c in curves.items():
        fig.add_scatter(x=[p["share_slow"] for p in c], y=[p["pgr"] for p in c], mode="lines", name=name)
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="random (expected)")
    fig.update_layout(title=title, xaxis_title="share of calls sent to the slow path",
                      yaxis_title="performance gap recovered", height=400)
    return fig


def expansion_lines(rows: list, title: str) -> go.Figure:
    """Accuracy per problem size for each method (expansion and best-of-N at the same calls)."""
    fig = go.Figure()
    sizes = [r["size"] for r in rows]
    for key, label in METHODS.items():
        calls = [r["calls_direct"] if key == "direct" else r["calls_expansion"] for r in rows]
        fig.add_scatter(x=sizes, y=[r[key] for r in rows], mode="lines+markers", name=label,
                        text=[f"{c:.2f} calls" for c in calls], hovertemplate="%{y:.2f} at %{x} operands, %{text}")
    fig.update_layout(title=title, xaxis_title="operands in the sum (problem size)", yaxis_title="accuracy",
                      yaxis_range=[-0.02, 1.02], height=400)
    return fig


def success_bars(rt: dict) -> go.Figure:
    """Success per family: each expert alone, and the engine routed by each router."""
    fams = rt["families"]
    fig = go.Figure()
    for name, v in {**{f"{n} alone": v for n, v in rt["single"].items()},
                    **{f"routed ({n})": v for n, v in rt["routed"].items()}}.items():
        fig.add_bar(x=fams, y=[v[f] for f in fams], name=name)
    fig.update_layout(title="task success by family", barmode="group", yaxis_title="success", yaxis_range=[0, 1.05],
                      height=420)
    return fig


def path_bars(rt: dict, router: str = "classifier") -> go.Figure:
    """Success per family when every task takes the fast path, and when every task takes the slow path."""
    fams, tables = rt["families"], rt["tables"][router]
    fig = go.Figure()
    for path in ("fast", "slow"):
        q = tables[path]
        fig.add_bar(x=fams, y=[_mean([x for x, f in zip(q, rt["task_families"]) if f == fam]) for fam in fams],
                    name=f"all {path}")
    fig.update_layout(title=f"success by family and path ({router}'s skills)", barmode="group",
                      yaxis_title="success", yaxis_range=[0, 1.05], height=380)
    return fig


def latency_histogram(latency_ms: dict, label: str) -> go.Figure:
    fig = go.Figure()
    for path, xs in latency_ms.items():
        fig.add_histogram(x=xs, name=f"{path} path", opacity=0.7, nbinsx=30)
    fig.update_layout(title=f"end-to-end latency per query ({label})", barmode="overlay", xaxis_title="ms",
                      yaxis_title="queries", height=360)
    return fig


def _mean(xs: list) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


# (family, metric) -> (record, expert row, floor row, issue 21's goal): the outside sets (data/eval/), bench size
OUTSIDE_RECORDS = {
    ("math", "success"): ("experts_outside_bench_reason", "outside reason-mini: math success",
                          "outside rule floors: math success", 0.7),
    ("code", "success"): ("experts_outside_bench_reason", "outside code-mini: code success",
                          "outside rule floors: code success", 0.8),
    ("json", "field accuracy"): ("experts_outside_bench_struct", "outside struct-mini: json field_accuracy",
                                 "outside rule floors: json field_accuracy", 0.85),
    ("json", "exact"): ("experts_outside_bench_struct", "outside struct-mini: json exact",
                        "outside rule floors: json exact", 0.6),
    ("retrieval", "answer holds the fact"): ("rag_outside", "stdlib-api names sentence: answer holds the fact",
                                             "stdlib-docs bm25 span: answer holds the fact", 0.6),
}


def outside_table() -> pd.DataFrame:
    """The recorded outside-set figures (OUTSIDE_RECORDS) as rows: family, metric, expert, floor, goal, gap to the
    goal, and the record's label."""
    rows = []
    for (family, metric), (name, expert, floor, goal) in OUTSIDE_RECORDS.items():
        ref = reference.load_reference(name)
        got = reference.value(ref, expert)
        rows.append({"family": family, "metric": metric, "expert": got, "floor": reference.value(ref, floor),
                     "goal": goal, "gap to goal": round(goal - got, 4), "recorded": reference.label(ref)})
    return pd.DataFrame(rows)


def outside_bars(table: pd.DataFrame) -> go.Figure:
    """Expert vs floor vs goal per family and metric (outside_table's rows)."""
    x = [f"{f}: {m}" for f, m in zip(table["family"], table["metric"])]
    fig = go.Figure()
    fig.add_bar(x=x, y=table["expert"], name="expert (a fine-tune of the base; retrieval: names + rule reader)")
    fig.add_bar(x=x, y=table["floor"], name="floor (rule parser / regex / BM25 span over stdlib-docs)")
    fig.add_scatter(x=x, y=table["goal"], mode="markers", marker_symbol="line-ew-open", marker_size=30, name="goal")
    fig.update_layout(title="outside sets, bench size (recorded)", barmode="group", yaxis_range=[0, 1.05], height=420)
    return fig
