"""Figures for notebook 05's learning sections (EWC, uncertainty, BADGE, vision): each takes the list of
per-seed results of one experiment in bench/aeron_modules/ (`run(seed, steps, ...)` dicts with "with",
"without" and "extra") and draws means with the spread over seeds.

    runs = [ewc.run(s, steps) for s in range(3)]; forgetting_bars(runs).show()
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)), float(np.nanstd(v))


def arm_table(runs: list[dict], key: str = "arms") -> dict:
    """{arm: {metric: "mean ± sd"}} over seeds, from each run's extra[key] (numbers only)."""
    arms = runs[0]["extra"][key]
    out = {}
    for arm, row in arms.items():
        out[arm] = {}
        for metric, v in row.items():
            if isinstance(v, (int, float)):
                m, s = _mean_sd([r["extra"][key][arm][metric] for r in runs])
                out[arm][metric] = f"{m:.3f} ± {s:.3f}" if isinstance(v, float) else f"{m:,.0f}"
    return out


def forgetting_bars(runs: list[dict]) -> go.Figure:
    """EWC: A's accuracy before and after training B, and B's accuracy, per arm."""
    arms = list(runs[0]["extra"]["arms"])
    fig = go.Figure()
    for metric, label in (("acc_A_before", "A before B"), ("acc_A_after", "A after B"), ("acc_B", "B")):
        ms = [_mean_sd([r["extra"]["arms"][a][metric] for r in runs]) for a in arms]
        fig.add_bar(x=arms, y=[m for m, _ in ms], error_y=dict(array=[s for _, s in ms]), name=label)
    fig.update_layout(title=f"task A then task B: test accuracy ({len(runs)} seeds, mean ± sd)", barmode="group",
                      yaxis_range=[0, 1.05], height=380)
    return fig


def reliability_diagrams(run: dict, split: str = "shifted") -> go.Figure:
    """Uncertainty: accuracy against confidence per bin for each method (one seed), the diagonal is calibrated."""
    bins = run["extra"]["bins"]
    methods = list(run["extra"]["methods"])
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, shared_yaxes=True)
    for i, m in enumerate(methods, 1):
        rows = [b for b in bins[f"{m} {split}"] if b["count"]]
        fig.add_bar(x=[(b["lo"] + b["hi"]) / 2 for b in rows], y=[b["accuracy"] for b in rows], width=0.09,
                    name="accuracy", marker_color="#4C78A8", showlegend=i == 1, row=1, col=i)
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="calibrated",
                        showlegend=i == 1, row=1, col=i)
        fig.update_xaxes(title_text="confidence", range=[0, 1], row=1, col=i)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_layout(title=f"reliability diagrams, {split} test inputs", height=330)
    return fig


def selective_curves(runs: list[dict]) -> go.Figure:
    """Uncertainty: accuracy on what is kept against the share abstained, per method."""
    rates = runs[0]["extra"]["abstain"]
    fig = go.Figure()
    for m in runs[0]["extra"]["methods"]:
        ys = [_mean_sd([r["extra"]["methods"][m][f"sel_acc@{int(round(a * 100))}"] for r in runs])[0] for a in rates]
        fig.add_scatter(x=[100 * a for a in rates], y=ys, mode="lines+markers", name=m)
    fig.update_layout(title=f"selective accuracy, in-distribution test ({len(runs)} seeds, mean)",
                      xaxis_title="abstain on the least confident (%)", yaxis_title="accuracy kept", height=360)
    return fig


def label_curves(runs: list[dict]) -> go.Figure:
    """BADGE: test accuracy against the number of labels, per strategy, mean ± sd over seeds."""
    fig = go.Figure()
    for k, c in runs[0]["extra"]["curves"].items():
        acc = np.array([r["extra"]["curves"][k]["acc"] for r in runs])
        fig.add_scatter(x=c["labels"], y=acc.mean(0), error_y=dict(array=acc.std(0)), mode="lines+markers", name=k)
    fig.update_layout(title=f"accuracy vs labels ({len(runs)} seeds, mean ± sd)", xaxis_title="labelled images",
                      yaxis_title="test accuracy", height=380)
    return fig


def vision_bars(runs: list[dict]) -> go.Figure:
    """Vision: exact match per question kind, with and without the picture."""
    arms = list(runs[0]["extra"]["arms"])
    metrics = [k for k in runs[0]["extra"]["arms"][arms[0]] if k.startswith("em_") or k == "exact_match"]
    fig = go.Figure()
    for a in arms:
        ms = [_mean_sd([r["extra"]["arms"][a][k] for r in runs]) for k in metrics]
        fig.add_bar(x=metrics, y=[m for m, _ in ms], error_y=dict(array=[s for _, s in ms]), name=a)
    fig.update_layout(title=f"answers about held-out pictures: exact match ({len(runs)} seeds)", barmode="group",
                      yaxis_range=[0, 1.05], height=380)
    return fig
