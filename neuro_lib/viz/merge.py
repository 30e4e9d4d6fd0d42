"""Figures for notebook 11 (model merging): normalized score per method with its 95 % interval, this run's
beside a recorded one, and the per-task table.

Both take reports of `neuro bench merge` (bench/merge.py: `run`, or `run_seeds` for a live run, or a
data/reference/merge_*.json loaded with json).
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

REFERENCES = ("base", "routed oracle", "multi-task fine-tune", "logit ensemble")


def method_rows(report: dict) -> list[dict]:
    return [r for r in report["results"] if r["name"].endswith(" normalized")]


def normalized_bars(report: dict, recorded: dict | None = None, recorded_label: str = "recorded") -> go.Figure:
    """Mean normalized score (merged / child, averaged over tasks) per method, 95 % t-interval over seeds as
    error bars; the routed oracle is 1 by definition (dashed line)."""
    fig = go.Figure()
    for label, rep in (("this run", report), (recorded_label, recorded)):
        if rep is None:
            continue
        rows = method_rows(rep)
        seeds = rep["config"]["seeds"]
        fig.add_bar(x=[r["method"] for r in rows], y=[r["value"] for r in rows],
                    error_y=dict(type="data", symmetric=False, array=[r["ci95"][1] - r["value"] for r in rows],
                                 arrayminus=[r["value"] - r["ci95"][0] for r in rows]),
                    name=f"{label} ({rep['config']['profile']}, {seeds} seed{'s' * (seeds > 1)})",
                    marker_pattern_shape=["/" if r["method"] in REFERENCES else "" for r in rows])
    fig.add_hline(y=1.0, line_dash="dash", annotation_text="routed oracle (each task's own child)")
    fig.update_layout(title="normalized test score per method (merged / child, mean over tasks; hatched: references)",
                      barmode="group", yaxis_title="normalized score", height=460, xaxis_tickangle=-30)
    return fig


def method_table(report: dict) -> pd.DataFrame:
    """One row per method: normalized score and interval, each task's normalized score, cost."""
    rows = []
    for r in method_rows(report):
        rows.append({"method": r["method"], "normalized": r["value"], "ci95 lo": r["ci95"][0], "ci95 hi": r["ci95"][1],
                     **{f"{t} (norm.)": v for t, v in r["normalized_tasks"].items()},
                     "models/token": r["models_per_token"], "val evals": r["val_evals"], "merge s": r["merge_s"]})
    return pd.DataFrame(rows).set_index("method").round(3)
