"""Figures for notebook 09 (RAG): Recall@k curves, reader EM/F1 bars, retrieval latency, and
answers with their cited byte spans highlighted in the passage they came from.

All take the dict of rag.experiment.run_rag_experiment.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go


def recall_curves(result: dict) -> go.Figure:
    fig = go.Figure()
    for name, m in result["retrieval"].items():
        ks = sorted(m["recall"])
        fig.add_scatter(x=ks, y=[m["recall"][k] for k in ks], mode="lines+markers", name=f"{name} (MRR {m['mrr']:.2f})")
    n = result["n_questions"]["test"]
    fig.update_layout(title=f"Recall@k on {n} held-out questions", xaxis_title="k (passages retrieved)",
                      yaxis_title="gold passage retrieved", yaxis_range=[0, 1.02], height=400)
    return fig


def reader_bars(result: dict) -> go.Figure:
    names = list(result["readers"])
    fig = go.Figure()
    for metric, label in (("em", "EM"), ("f1", "F1"), ("fact", "holds the fact")):
        if not all(metric in result["readers"][n] for n in names):  # a result recorded before "fact" existed
            continue
        fig.add_bar(x=names, y=[result["readers"][n][metric] for n in names], name=label,
                    text=[f"{result['readers'][n][metric]:.2f}" for n in names], textposition="outside")
    fig.update_layout(title="readers on held-out questions: exact match, token F1, answer holds the gold",
                      barmode="group",
                      yaxis_range=[0, 1.1], height=400)
    return fig


def latency_bars(result: dict) -> go.Figure:
    names = list(result["retrieval"])
    fig = go.Figure()
    for q in ("p50", "p95"):
        fig.add_bar(x=names, y=[result["retrieval"][n][f"latency_{q}_ms"] for n in names], name=q)
    fig.update_layout(title="query latency, one query at a time (ms)", barmode="group", yaxis_title="ms",
                      height=360)
    return fig


def cited_html(result: dict, index, n: int = 4, readers=("lite", "retrieval", "oracle")) -> str:
    """HTML: for the first n examples, each reader's answer and its cited bytes highlighted in the passage."""
    data, rows = index.corpus.data, []
    for ex in result["examples"][:n]:
        rows.append(f"<h4>{html.escape(ex['question'])}</h4><p>gold: <b>{html.escape(ex['gold'])}</b> "
                    f"[{html.escape(ex['gold_passage'])}]</p>")
        for name in readers:
            if name not in ex or not ex[name]["citations"]:
                continue
            c = ex[name]["citations"][0]
            p = index.passages[index.by_id[c["passage_id"]]]
            before = data[p.start:c["start"]].decode("utf-8", "replace")
            cited = data[c["start"]:c["end"]].decode("utf-8", "replace")
            after = data[c["end"]:p.end].decode("utf-8", "replace")
            rows.append(f"<p><b>{name}</b>: {html.escape(ex[name]['answer'])!s} &nbsp;<small>cites "
                        f"[{html.escape(p.id)}] bytes {c['start']}&ndash;{c['end']}</small></p>"
                        f"<pre style='white-space:pre-wrap;font-size:85%'>{html.escape(before)}"
                        f"<mark>{html.escape(cited)}</mark>{html.escape(after)}</pre>")
    return "\n".join(rows)
