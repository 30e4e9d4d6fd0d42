"""Figures and tables for notebook 05 (Aeron's enhancement modules), from `neuro bench aeron-modules`
reports: a live one (bench.aeron_modules.measure at smoke size) and the recorded ones in
data/reference/aeron_modules*.json, drawn side by side and labelled.

    live = measure(get_profile("smoke"), ["kg"], seeds=1)
    recs = recorded("kg")                     # [(report, label)], oldest first
    arms_figure("kg", live, recs).show(); verdict_table([live] + [r for r, _ in recs], "kg")
"""
from __future__ import annotations

import statistics

import plotly.graph_objects as go

from neuro_lib.bench.reference import load_reference, reference_names


def recorded(module: str) -> list[tuple[dict, str]]:
    """Every recorded report (data/reference/aeron_modules*.json) that measured `module`, oldest first by
    date then file name, each with its label (date, machine, command, seeds, budget); [] when none is
    committed yet."""
    found = []
    for name in reference_names():
        if name.startswith("aeron_modules"):
            ref = load_reference(name)
            if module in ref["config"].get("modules", []):
                found.append((ref["date"], name, ref))
    out = []
    for _, name, ref in sorted(found, key=lambda t: t[:2]):
        m = ref["machine"]
        out.append((ref, f"recorded {ref['date']} ({name}.json), {m.get('cpu', '?')} ({m.get('cores', '?')} cores): "
                         f"`{ref['config'].get('command', 'neuro bench aeron-modules')}`"))
    return out


def _row(report: dict, name: str) -> dict | None:
    return next((r for r in report["results"] if r["name"] == name), None)


def metric_of(report: dict, module: str) -> str:
    return report["config"]["claims"][module]["metric"]


def arms_figure(module: str, live: dict | None, recs: list[tuple[dict, str]]) -> go.Figure:
    """Bars: the module's metric with and without it, mean and spread over seeds, live and recorded."""
    fig = go.Figure()
    runs = [(live, "this run")] + [(ref, f"recorded: {ref['config']['command'].split('--out ')[-1]}") for ref, _ in recs]
    for report, name in runs:
        if report is None or module not in report["config"]["modules"]:
            continue
        metric = metric_of(report, module)
        rows = [_row(report, f"{module} {metric} {arm}") for arm in ("with", "without")]
        fig.add_bar(x=[f"with {module}", "without"], y=[r["value"] for r in rows], name=name,
                    error_y=dict(type="data", array=[r["spread"] for r in rows]),
                    text=[f"{r['value']:.2f}" for r in rows], textposition="outside")
    fig.update_layout(title=f"{module}: task metric with vs without the module (mean ± sd over seeds)",
                      barmode="group", yaxis_range=[0, 1.1], height=380)
    return fig


def depth_figure(report: dict, title: str) -> go.Figure:
    """Reasoning: accuracy by problem depth, with vs without the engine (and with its gate forced open, where
    the report has that arm)."""
    depths = sorted(int(r["name"].split()[-2]) for r in report["results"]
                    if r["name"].startswith("reasoning accuracy depth") and r["arm"] == "with")
    fig = go.Figure()
    for arm in ("with", "without"):
        rows = [_row(report, f"reasoning accuracy depth {d} {arm}") for d in depths]
        fig.add_scatter(x=depths, y=[r["value"] for r in rows], mode="lines+markers", name=f"{arm} engine",
                        error_y=dict(type="data", array=[r["spread"] for r in rows]))
    opened = [e["open"] for e in report["extra"]["reasoning"] if "open" in e]
    if opened:  # the engine with its gate forced open (runs since issue 26), seed mean and spread
        ys = [[o[f"accuracy depth {d}"] for o in opened] for d in depths]
        fig.add_scatter(x=depths, y=[statistics.mean(y) for y in ys], mode="lines+markers", name="engine, gate open",
                        error_y=dict(type="data", array=[statistics.stdev(y) if len(y) > 1 else 0.0 for y in ys]))
    fig.update_layout(title=title, xaxis_title="operations in the chain (depth)", yaxis_title="accuracy",
                      yaxis_range=[0, 1.05], height=380)
    return fig


def gate_sweep_figure(report: dict, title: str) -> go.Figure:
    """Reasoning: share of inputs the gate skips vs the accuracy left, one point per threshold (seed means)."""
    sweeps = [e["gate_sweep"] for e in report["extra"]["reasoning"]]
    pts = []
    for i, p in enumerate(sweeps[0]):
        skipped = sum(s[i]["skipped"] for s in sweeps) / len(sweeps)
        acc = sum(s[i]["accuracy"] for s in sweeps) / len(sweeps)
        pts.append((p["threshold"], skipped, acc))
    fig = go.Figure(go.Scatter(x=[p[1] for p in pts], y=[p[2] for p in pts], mode="lines+markers+text",
                               text=[f"{p[0]:g}" for p in pts], textposition="top center", name="threshold"))
    fig.update_layout(title=title, xaxis_title="share of inputs skipped by the gate", yaxis_title="accuracy",
                      xaxis_range=[-0.05, 1.05], height=380)
    return fig


def verdict_table(reports: list[dict], module: str) -> list[dict]:
    """Rows (one per report) of the module's metric with / without, difference, costs and verdict."""
    out = []
    for rep in reports:
        if rep is None or module not in rep["config"]["modules"]:
            continue
        metric = metric_of(rep, module)
        w, wo, d = (_row(rep, f"{module} {metric} {k}") for k in ("with", "without", "difference"))
        out.append({"run": rep["config"].get("command", "this run"), "metric": metric,
                    "with": f"{w['value']:.3f} ± {w['spread']:.3f}", "without": f"{wo['value']:.3f} ± {wo['spread']:.3f}",
                    "difference": f"{d['value']:+.3f} ± {d['spread']:.3f}", "seeds": rep["config"]["seeds"],
                    "params added": _row(rep, f"{module} params added")["value"],
                    "verdict": _row(rep, f"{module} verdict")["verdict"]})
    return out

