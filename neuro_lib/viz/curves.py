"""Training curves and bpb comparisons.

`LiveCurve` is a Trainer callback that redraws a plotly learning curve in place while a
notebook trains in JupyterLab (an IPython display handle, no widgets needed, throttled
to one redraw every few seconds). Headless (papermill, nbval) nobody watches and display
updates would pile up as extra outputs, so it draws once, when `show()` is called.
"""
from __future__ import annotations

import time
from pathlib import Path

import plotly.graph_objects as go

from neuro_lib.paths import REPO_ROOT
from neuro_lib.progress import progress_mode


class LiveCurve:
    def __init__(self, title: str = "learning curve", every_s: float = 3.0, label: str = ""):
        self.title, self.every_s, self.label = title, every_s, label
        self.train, self.val = [], []
        self._handle, self._last = None, 0.0
        self.live = progress_mode() == "bar"

    def __call__(self, rec: dict) -> None:
        if rec.get("kind") == "train":
            self.train.append((rec["step"], rec["loss"] / 0.6931471805599453))  # nats -> bits per token
        elif rec.get("kind") == "val" and "val_bpb" in rec:
            self.val.append((rec["step"], rec["val_bpb"]))
        if self.live and time.time() - self._last >= self.every_s:
            self.show()

    def figure(self) -> go.Figure:
        fig = go.Figure()
        if self.train:
            fig.add_scatter(x=[s for s, _ in self.train], y=[v for _, v in self.train], mode="lines",
                            name=f"{self.label} train (bits/token)".strip())
        if self.val:
            fig.add_scatter(x=[s for s, _ in self.val], y=[v for _, v in self.val], mode="lines+markers",
                            name=f"{self.label} val (bits/byte)".strip())
        fig.update_layout(title=self.title, xaxis_title="step", yaxis_title="bits", height=380)
        return fig

    def show(self) -> None:
        from IPython.display import display

        self._last = time.time()
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def bpb_bar(values: dict[str, float], title: str = "validation bits per byte (lower is better)") -> go.Figure:
    """Horizontal bars of bpb, models and compressor anchors side by side."""
    names = sorted(values, key=values.get)
    fig = go.Figure(go.Bar(x=[values[n] for n in names], y=names, orientation="h",
                           text=[f"{values[n]:.3f}" for n in names], textposition="auto"))
    fig.update_layout(title=title, xaxis_title="bits per byte", height=120 + 40 * len(names))
    return fig


def beside_recorded(live: dict[str, float], recorded: dict[str, float], live_name: str, recorded_name: str,
                    title: str, axis_title: str = "bits per byte") -> go.Figure:
    """Grouped bars: this run's figures next to a recorded run's (data/reference/), one group per key;
    a key missing on one side is simply not drawn there. The recorded trace's name carries its label."""
    keys = list(dict.fromkeys([*live, *recorded]))
    fig = go.Figure()
    for name, vals, colour in ((live_name, live, "#1f77b4"), (recorded_name, recorded, "#9e9e9e")):
        ks = [k for k in keys if k in vals]
        fig.add_bar(x=ks, y=[vals[k] for k in ks], name=name, marker_color=colour,
                    text=[f"{vals[k]:.3f}" for k in ks], textposition="auto")
    fig.update_layout(barmode="group", title=title, yaxis_title=axis_title, height=420,
                      legend=dict(orientation="h", yanchor="top", y=-0.15))
    return fig


def save_figure(fig, name: str, folder=None) -> Path:
    """Save a matplotlib figure byte-stably (no timestamps/software metadata) under figures/."""
    folder = Path(folder) if folder else REPO_ROOT / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    meta = {"Date": None} if path.suffix in (".svg", ".pdf") else {"Software": None}
    fig.savefig(path, metadata=meta, dpi=110, bbox_inches="tight")
    return path
