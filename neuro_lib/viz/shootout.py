"""Figures and tables for notebook 02 (the architecture shoot-out): plain functions of an `lm` bench report
(bench/lm.py: rows with `corpus` and `arm` fields, and the report's `curves`), live or recorded alike.

    shootout_table(report)                 # one row per (corpus, arm): val bpb, tokens/s, params, steps, FLOPs
    anchor_table(report)                   # gzip / bz2 / xz per corpus
    curves_figure(report, x="seconds")     # val bpb against training seconds (or x="flops"), a panel per corpus
    winners(report)                        # per corpus: the arm with the lowest val bpb
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
METRICS = {"val bpb": "val bpb", "train tokens/s": "tokens/s", "params": "params", "steps": "steps",
           "train time": "train s", "train FLOPs": "train FLOPs"}
ANCHORS = ("gzip -9", "bz2 -9", "xz -9e")


def _rows(report: dict) -> pd.DataFrame:
    """The report's rows that carry corpus and arm, with the metric name split off."""
    rows = [r for r in report["results"] if "corpus" in r and "arm" in r]
    df = pd.DataFrame(rows, columns=["name", "value", "unit", "corpus", "arm"])
    # names are "ARM METRIC", or "CORPUS ARM METRIC" in a report of several corpora
    df["metric"] = [n.removeprefix(f"{c} ").removeprefix(f"{a} ") if n.startswith(f"{c} {a} ") else
                    n.removeprefix(f"{a} ") for n, c, a in zip(df["name"], df["corpus"], df["arm"])]
    return df


def shootout_table(report: dict) -> pd.DataFrame:
    """One row per (corpus, arm), the model arms only, sorted by val bpb within each corpus."""
    df = _rows(report)
    df = df[df["metric"].isin(METRICS)]
    table = df.pivot_table(index=["corpus", "arm"], columns="metric", values="value", aggfunc="first", sort=False)
    table = table.rename(columns=METRICS)
    table = table[[v for v in METRICS.values() if v in table.columns]]
    return table.sort_values(["corpus", "val bpb"])


def anchor_table(report: dict) -> pd.DataFrame:
    """The compressors' conditional bpb, a column per compressor, a row per corpus."""
    df = _rows(report)
    df = df[df["arm"].isin(ANCHORS)]
    if df.empty:
        return pd.DataFrame()
    return df.pivot_table(index="corpus", columns="arm", values="value", aggfunc="first", sort=False)


def winners(report: dict) -> dict[str, str]:
    """{corpus: the arm with the lowest val bpb}."""
    table = shootout_table(report).reset_index()
    return {c: g.sort_values("val bpb")["arm"].iloc[0] for c, g in table.groupby("corpus", sort=False)}


def curves_figure(report: dict, x: str = "seconds", title: str = "") -> go.Figure:
    """Val bpb curves, one panel per corpus, one line per arm, the compressors as dotted levels. `x` is
    "seconds" (training seconds) or "flops" (training FLOPs, log axis)."""
    if x not in ("seconds", "flops"):
        raise ValueError(f"x must be 'seconds' or 'flops', got {x!r}")
    curves = report.get("curves", [])
    corpora = list(dict.fromkeys(c["corpus"] for c in curves))
    arms = list(dict.fromkeys(c["arm"] for c in curves))
    anchors = anchor_table(report)
    fig = make_subplots(rows=1, cols=max(1, len(corpora)), subplot_titles=corpora, shared_yaxes=True)
    for c in curves:
        col, colour = corpora.index(c["corpus"]) + 1, COLORS[arms.index(c["arm"]) % len(COLORS)]
        fig.add_scatter(x=c[x], y=c["val_bpb"], mode="lines+markers", name=c["arm"], legendgroup=c["arm"],
                        showlegend=col == 1, line={"color": colour}, row=1, col=col)
    for corpus, levels in anchors.iterrows():
        col = corpora.index(corpus) + 1 if corpus in corpora else None
        for comp, bpb in levels.dropna().items():
            if col is not None and comp != "gzip -9":  # gzip sits far above: it would flatten the curves
                fig.add_hline(y=bpb, line={"dash": "dot", "color": "gray", "width": 1}, row=1, col=col,
                              annotation_text=comp, annotation_position="top right")
    fig.update_xaxes(title_text="training seconds" if x == "seconds" else "training FLOPs",
                     type="log" if x == "flops" else "linear")
    fig.update_yaxes(title_text="val bits per byte", row=1, col=1)
    fig.update_layout(title=title or f"validation bpb against training {'seconds' if x == 'seconds' else 'FLOPs'}",
                      height=420, legend={"orientation": "h", "yanchor": "top", "y": -0.2})
    return fig


def recorded_label(ref: dict) -> str:
    """'recorded DATE, MACHINE; written by `COMMAND`, commit SHA' for a committed record (data/reference/)."""
    from neuro_lib.bench.reference import label

    git = ref.get("git", {})
    return f"{label(ref)}, commit {git.get('sha', 'unknown')}" + (" (uncommitted changes)" if git.get("dirty") else "")



def merged(refs: list[dict]) -> dict:
    """Several `lm` reports (e.g. one per corpus) as one for the table and figure helpers: their rows and curves
    together (every row carries its corpus and arm, so names may repeat across the files)."""
    return {"results": [r for ref in refs for r in ref["results"]],
            "curves": [c for ref in refs for c in ref.get("curves", [])]}


_ATTN = "gpt@best,gpt,aeron,nanogpt"
_ALL = "gpt@best,aeron@best,aeron,mamba,rnk,nanogpt"  # each arch with its best screened recipe; Aeron also plain
_CORPORA = "stdlib-docs,shakespeare,stdlib-src"
_STEPS = "--sizes matched --max-steps 200 --eval-bytes 50000 --curve-points 4 --profile bench --threads 1 --seed 0"
_TIME = "--time-budget 45 --eval-bytes 50000 --curve-points 4 --profile bench --threads 2 --seed 0"
# The bench-size records notebook 02 reads: kind -> (title, [(file stem in data/reference/, the command writing it)]).
# Equal steps measure quality per step and per FLOP on any machine (one file per corpus for the attention arms, so
# the three run side by side; Mamba and RNK, ten times slower a step on the CPU, in files of their own); the two
# equal wall-clock records need a quiet machine.
RECORDS = {
    "steps": ("equal steps (200), equal parameters", [
        *[(f"shootout_steps_{arms}{short}", f"neuro bench lm --arch {arch} --corpus {corpus} {_STEPS} "
                                            f"--out data/reference/shootout_steps_{arms}{short}.json")
          for arms, arch in (("", _ATTN), ("ssm_", "mamba,rnk"))
          for short, corpus in (("docs", "stdlib-docs"), ("plays", "shakespeare"), ("src", "stdlib-src"))]]),
    "time": ("equal wall-clock (45 s), each arch at its own size", [
        ("shootout_time", f"neuro bench lm --arch {_ALL} --corpus {_CORPORA} --sizes profile {_TIME} "
                          "--out data/reference/shootout_time.json")]),
    "params": ("equal wall-clock (45 s), equal parameters", [
        ("shootout_params", f"neuro bench lm --arch {_ALL} --corpus {_CORPORA} --sizes matched {_TIME} "
                            "--out data/reference/shootout_params.json")]),
}
