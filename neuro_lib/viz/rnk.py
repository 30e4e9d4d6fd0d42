"""Figures for notebook 04 (Mamba scan, scaling, RNK training): plain functions of bench rows."""
from __future__ import annotations

import matplotlib.pyplot as plt
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from neuro_lib.models.scans import chunked_scan, sequential_scan

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def scan_picture(length: int = 24, chunk: int = 4, block: int = 12, seed: int = 0):
    """One channel of h_t = e^{a_t} h_{t-1} + v_t solved by both scans, chunks and blocks marked."""
    g = torch.Generator().manual_seed(seed)
    a = -torch.rand(1, length, 1, 1, generator=g) * 0.8
    v = torch.randn(1, length, 1, 1, generator=g)
    seq = sequential_scan(a, v).flatten()
    fast = chunked_scan(a, v, chunk=chunk, block=block).detach().flatten()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True)
    t = range(length)
    top.bar(t, v.flatten(), color="#bbb", label="input v_t")
    top.plot(t, torch.exp(a.flatten()), "k.", label="decay e^{a_t}")
    top.legend(loc="upper right", fontsize=8)
    top.set_title(f"h_t = e^{{a_t}} h_{{t-1}} + v_t: chunks of {chunk} (closed form), blocks of {block} (loop)")
    bottom.plot(t, seq, "o-", color="#1f77b4", label="sequential loop")
    bottom.plot(t, fast, "x", color="#d62728", markersize=9, label="chunked scan")
    for s in range(0, length, chunk):
        bottom.axvline(s - 0.5, color="#999", lw=0.6, ls=":")
    for s in range(0, length, block):
        for ax in (top, bottom):
            ax.axvline(s - 0.5, color="#444", lw=1.2)
    bottom.set_xlabel("time step t")
    bottom.set_ylabel("state h_t")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def scan_timing_figure(rows: list[dict], recorded: list[dict] | None = None, recorded_label: str = "") -> go.Figure:
    """ms per forward+backward (minimum of repeats) against sequence length, one line per scan; `recorded`
    rows (same fields, from data/reference/) are drawn dotted beside them."""
    fig = go.Figure()
    colors = dict(zip(dict.fromkeys(r["scan"] for r in [*rows, *(recorded or [])]), COLORS))
    for scan in dict.fromkeys(r["scan"] for r in rows):
        rs = [r for r in rows if r["scan"] == scan]
        fig.add_scatter(x=[r["length"] for r in rs], y=[r["min_ms"] for r in rs], mode="lines+markers", name=scan,
                        line_color=colors[scan])
    for scan in dict.fromkeys(r["scan"] for r in recorded or []):
        rs = [r for r in recorded if r["scan"] == scan]
        fig.add_scatter(x=[r["length"] for r in rs], y=[r["min_ms"] for r in rs], mode="lines+markers",
                        name=f"{scan} (recorded)", line=dict(color=colors[scan], dash="dot"), marker_symbol="x")
    title = "selective scan, forward + backward" + (f"<br><sup>dotted: {recorded_label}</sup>" if recorded else "")
    fig.update_layout(title=title, xaxis_title="sequence length L",
                      yaxis_title="ms (min of repeats)", xaxis_type="log", yaxis_type="log", height=420)
    return fig


def scaling_figure(rows: list[dict], recorded: list[dict] | None = None, recorded_label: str = "") -> go.Figure:
    """Microseconds per byte against context length: full forward pass and one decoding step; `recorded`
    points (same fields, from data/reference/) are drawn as crosses."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward pass over L bytes", "one decode step at context L"))
    archs = list(dict.fromkeys(r["arch"] for r in [*rows, *(recorded or [])]))
    for i, arch in enumerate(archs):
        for col, mode in enumerate(("forward", "decode"), start=1):
            rs = [r for r in rows if r["arch"] == arch and r["mode"] == mode]
            if rs:
                fig.add_scatter(x=[r["length"] for r in rs], y=[r["us_per_byte_min"] for r in rs], name=arch,
                                mode="lines+markers", line_color=COLORS[i % len(COLORS)], showlegend=col == 1,
                                row=1, col=col)
            rec = [r for r in recorded or [] if r["arch"] == arch and r["mode"] == mode]
            if rec:
                fig.add_scatter(x=[r["length"] for r in rec], y=[r["us_per_byte_min"] for r in rec],
                                name=f"{arch} (recorded)", mode="markers", marker=dict(symbol="x", size=11,
                                color=COLORS[i % len(COLORS)]), showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(type="log", title_text="context length L")
    fig.update_yaxes(title_text="µs per byte", row=1, col=1)
    title = "cost per byte against context length" + (f"<br><sup>crosses: {recorded_label}</sup>" if recorded else "")
    fig.update_layout(height=420, title=title)
    return fig


def loss_terms_figure(history: list[dict], title: str = "RNK loss terms") -> go.Figure:
    """Each loss term of RNK.compute_loss (train: lines; held-out validation: markers) against step."""
    terms = ["token_loss", "stop_loss", "intent_loss", "answerable_loss", "contrastive_loss"]
    fig = go.Figure()
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    for term, color in zip(terms, colors):
        tr = [r for r in history if r.get("kind") == "train" and term in r]
        va = [r for r in history if r.get("kind") == "val" and f"val_{term}" in r]
        fig.add_scatter(x=[r["step"] for r in tr], y=[r[term] for r in tr], name=term, line_color=color)
        fig.add_scatter(x=[r["step"] for r in va], y=[r[f"val_{term}"] for r in va], name=f"held-out {term}",
                        mode="markers", marker=dict(color=color, symbol="x", size=9))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss (nats)", height=420)
    return fig
