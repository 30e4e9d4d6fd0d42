"""Figures for notebook 05's learning sections (EWC, uncertainty, BADGE, vision): each takes the per-seed
"extra" dicts of one experiment in bench/aeron_modules/, as an `aeron-modules` report keeps them
(`report["extra"][module]`, live from `measure` or recorded in data/reference/), and draws means with the
spread over seeds.

    rec, label = recorded("ewc"); forgetting_bars(rec["extra"]["ewc"]).show()
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)), float(np.nanstd(v))


def arm_table(extras: list[dict], key: str = "arms") -> dict:
    """{arm: {metric: "mean ± sd"}} over seeds, from each seed's extra[key] (numbers only)."""
    arms = extras[0][key]
    out = {}
    for arm, row in arms.items():
        out[arm] = {}
        for metric, v in row.items():
            if isinstance(v, (int, float)):
                m, s = _mean_sd([e[key][arm][metric] for e in extras])
                out[arm][metric] = f"{m:.3f} ± {s:.3f}" if isinstance(v, float) else f"{m:,.0f}"
    return out


def forgetting_bars(extras: list[dict]) -> go.Figure:
    """EWC: A's accuracy before and after training B, and B's accuracy, per arm."""
    arms = list(extras[0]["arms"])
    fig = go.Figure()
    for metric, label in (("acc_A_before", "A before B"), ("acc_A_after", "A after B"), ("acc_B", "B")):
        ms = [_mean_sd([e["arms"][a][metric] for e in extras]) for a in arms]
        fig.add_bar(x=arms, y=[m for m, _ in ms], error_y=dict(array=[s for _, s in ms]), name=label)
    fig.update_layout(title=f"task A then task B: test accuracy ({len(extras)} seeds, mean ± sd)", barmode="group",
                      yaxis_range=[0, 1.05], height=380)
    return fig


def reliability_diagrams(extra: dict, split: str = "shifted") -> go.Figure:
    """Uncertainty: accuracy against confidence per bin for each method (one seed's extra), the diagonal is
    calibrated."""
    bins = extra["bins"]
    methods = list(extra["methods"])
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


def selective_curves(extras: list[dict]) -> go.Figure:
    """Uncertainty: accuracy on what is kept against the share abstained, per method."""
    rates = extras[0]["abstain"]
    fig = go.Figure()
    for m in extras[0]["methods"]:
        ys = [_mean_sd([e["methods"][m][f"sel_acc@{int(round(a * 100))}"] for e in extras])[0] for a in rates]
        fig.add_scatter(x=[100 * a for a in rates], y=ys, mode="lines+markers", name=m)
    fig.update_layout(title=f"selective accuracy, in-distribution test ({len(extras)} seeds, mean)",
                      xaxis_title="abstain on the least confident (%)", yaxis_title="accuracy kept", height=360)
    return fig


def label_curves(extras: list[dict]) -> go.Figure:
    """BADGE: test accuracy against the number of labels, per strategy, mean ± sd over seeds."""
    fig = go.Figure()
    for k, c in extras[0]["curves"].items():
        acc = np.array([e["curves"][k]["acc"] for e in extras])
        fig.add_scatter(x=c["labels"], y=acc.mean(0), error_y=dict(array=acc.std(0)), mode="lines+markers", name=k)
    fig.update_layout(title=f"accuracy vs labels ({len(extras)} seeds, mean ± sd)", xaxis_title="labelled images",
                      yaxis_title="test accuracy", height=380)
    return fig


def vision_bars(extras: list[dict]) -> go.Figure:
    """Vision: exact match per question kind, with and without the picture."""
    arms = list(extras[0]["arms"])
    metrics = [k for k in extras[0]["arms"][arms[0]] if k.startswith("em_") or k == "exact_match"]
    fig = go.Figure()
    for a in arms:
        ms = [_mean_sd([e["arms"][a][k] for e in extras]) for k in metrics]
        fig.add_bar(x=metrics, y=[m for m, _ in ms], error_y=dict(array=[s for _, s in ms]), name=a)
    fig.update_layout(title=f"answers about held-out pictures: exact match ({len(extras)} seeds)", barmode="group",
                      yaxis_range=[0, 1.05], height=380)
    return fig
