"""Runtime graphs and traced runs drawn (networkx layout, plotly figures, a matplotlib static version).

    g = load_graph("default")
    graph_figure(g).show()                     # nodes by kind, edges with their conditions, retries dashed
    trace_figure(g, engine.run("...")).show()  # the run step by step: a slider walks through the steps
    trace_timeline(result).show()              # each step's time, in order
    trace_html(g, result)                      # both on one offline page (neuro run --trace-out FILE.html)
    save_graph_png(g, "figures/graph_default.png")

Layout: layers from the entry by longest path over the graph without its back edges (the retries),
exits in the last layer; a back edge is drawn as a dashed arc so it does not hide the forward edge.

Tests: tests/test_cli_runtime.py (figures built from a real run).
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import plotly.graph_objects as go

from neuro_lib.runtime.graph import Graph

KIND_COLOURS = {"router": "#f57f17", "expert": "#2e7d32", "tool": "#c2185b", "judge": "#ef6c00",
                "verify": "#f9a825", "memory": "#1565c0", "combine": "#7b1fa2", "decompose": "#5d4037",
                "expand": "#455a64", "exit": "#00695c"}


def back_edges(g: Graph) -> set[tuple[str, str]]:
    """Edges that close a cycle when walked depth-first from the entry (the retry edges)."""
    dg = nx.DiGraph([(e.source, e.target) for e in g.edges])
    return {(u, v) for u, v, d in nx.dfs_labeled_edges(dg, g.entry) if d == "nontree" and nx.has_path(dg, v, u)}


def layout(g: Graph) -> dict[str, tuple[float, float]]:
    """x: the layer (longest path from the entry without back edges, exits last); y: spread in the layer."""
    back = back_edges(g)
    dag = nx.DiGraph()
    dag.add_nodes_from(g.nodes)
    dag.add_edges_from((e.source, e.target) for e in g.edges if (e.source, e.target) not in back)
    layer = {n: 0 for n in g.nodes}
    for n in nx.topological_sort(dag):
        for m in dag.successors(n):
            layer[m] = max(layer[m], layer[n] + 1)
    last = max(layer.values())
    for x in g.exits:
        layer[x] = last
    pos, columns = {}, {}
    for n in g.nodes:  # file order within a layer
        columns.setdefault(layer[n], []).append(n)
    for x, col in columns.items():
        for i, n in enumerate(col):
            pos[n] = (float(x), (len(col) - 1) / 2 - i)
    return pos


def _edge_path(a, b, back: bool, n: int = 20):
    """Points of a straight edge, or of an arc above both ends for a back edge."""
    if not back:
        return [a[0], b[0]], [a[1], b[1]]
    lift = 0.6 + 0.15 * abs(a[0] - b[0])
    xs, ys = [], []
    for i in range(n + 1):
        t = i / n
        cx, cy = (a[0] + b[0]) / 2, max(a[1], b[1]) + lift  # quadratic Bezier through a raised midpoint
        xs.append((1 - t) ** 2 * a[0] + 2 * (1 - t) * t * cx + t ** 2 * b[0])
        ys.append((1 - t) ** 2 * a[1] + 2 * (1 - t) * t * cy + t ** 2 * b[1])
    return xs, ys


def _edge_traces(g: Graph, pos, highlight: set[tuple[str, str]] = frozenset()) -> list[go.Scatter]:
    back = back_edges(g)
    labels: dict[tuple[str, str], list[str]] = {}
    for e in g.edges:
        labels.setdefault((e.source, e.target), []).append(e.when)
    traces = []
    for (u, v), whens in labels.items():
        xs, ys = _edge_path(pos[u], pos[v], (u, v) in back)
        on = (u, v) in highlight
        traces.append(go.Scatter(
            x=xs, y=ys, mode="lines", hoverinfo="text", hovertext=f"{u} -> {v}: {' | '.join(whens)}",
            line=dict(color="#d32f2f" if on else "#9e9e9e", width=3 if on else 1.2,
                      dash="dash" if (u, v) in back else "solid"), showlegend=False))
        text = " | ".join(w for w in whens if w != "always")
        if text:
            lx, ly = ((xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2) if len(xs) == 2 else (xs[len(xs) // 2], ys[len(ys) // 2])
            traces.append(go.Scatter(x=[lx], y=[ly + 0.08], mode="text", text=[text], hoverinfo="skip",
                                     textfont=dict(size=9, color="#616161"), showlegend=False))
    return traces


def _arrows(g: Graph, pos) -> list[dict]:
    """Plotly annotations: an arrow head near each edge's target."""
    back = back_edges(g)
    out = []
    for u, v in {(e.source, e.target) for e in g.edges}:
        xs, ys = _edge_path(pos[u], pos[v], (u, v) in back)
        ax, ay = (xs[-2], ys[-2]) if len(xs) > 2 else (xs[0] + 0.75 * (xs[1] - xs[0]), ys[0] + 0.75 * (ys[1] - ys[0]))
        out.append(dict(x=xs[-1], y=ys[-1], ax=ax, ay=ay, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                        arrowhead=2, arrowsize=1.2, arrowwidth=1, arrowcolor="#757575", standoff=14, text=""))
    return out


def _node_trace(g: Graph, pos, text: dict[str, str] | None = None, colours: dict[str, str] | None = None,
                hover: dict[str, str] | None = None) -> go.Scatter:
    ids = list(g.nodes)
    return go.Scatter(
        x=[pos[n][0] for n in ids], y=[pos[n][1] for n in ids], mode="markers+text",
        text=[(text or {}).get(n, n) for n in ids], textposition="bottom center",
        marker=dict(size=24, color=[(colours or {}).get(n, KIND_COLOURS[g.nodes[n].kind]) for n in ids],
                    line=dict(color="#212121", width=1)),
        hovertext=[(hover or {}).get(n, f"{n} ({g.nodes[n].kind})"
                                        + (f", retries {g.nodes[n].retries}" if g.nodes[n].retries is not None else "")
                                        + (f"<br>{g.nodes[n].label}" if g.nodes[n].label else "")) for n in ids],
        hoverinfo="text", showlegend=False)


def _layout_figure(fig: go.Figure, title: str, g: Graph, pos) -> go.Figure:
    for kind in dict.fromkeys(n.kind for n in g.nodes.values()):  # a legend of the kinds present
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=kind,
                                 marker=dict(size=12, color=KIND_COLOURS[kind])))
    ys = [p[1] for p in pos.values()]
    fig.update_layout(title=title, height=300 + 60 * (max(ys) - min(ys)), margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, range=[min(ys) - 0.7, max(ys) + 1.4]),
                      plot_bgcolor="white", annotations=_arrows(g, pos), legend=dict(orientation="h", y=-0.05))
    return fig


def graph_figure(g: Graph, title: str | None = None) -> go.Figure:
    """The graph as drawn from its YAML: nodes coloured by kind, edges labelled with their conditions."""
    pos = layout(g)
    fig = go.Figure(_edge_traces(g, pos) + [_node_trace(g, pos)])
    return _layout_figure(fig, title or f"graph {g.name}: {g.description or ''}".rstrip(": "), g, pos)


def trace_figure(g: Graph, result, title: str | None = None) -> go.Figure:
    """A traced run on its graph, step by step: the slider's step k shows the nodes and edges taken so far,
    each visited node labelled with its step numbers; hover gives the step's time, tokens and note."""
    pos = layout(g)
    steps = result.trace
    node_of = {s.step: s.node.split(".")[0] for s in steps}  # a sub-task's step "split.2" is drawn on node split

    def state(k: int) -> list[go.Scatter]:
        done = steps[:k]
        taken = {(node_of[a.step], node_of[b.step]) for a, b in zip(done, done[1:])}
        visits: dict[str, list] = {}
        for s in done:
            visits.setdefault(node_of[s.step], []).append(s)
        text = {n: f"{n} ({','.join(str(s.step) for s in v)})" for n, v in visits.items()}
        colours = {n: ("#d32f2f" if not v[-1].ok else KIND_COLOURS[g.nodes[n].kind]) for n, v in visits.items()}
        colours.update({n: "#e0e0e0" for n in g.nodes if n not in visits})
        hover = {n: "<br>".join(f"step {s.step}: {s.seconds * 1e3:.2f} ms, {s.tokens} tokens, {s.model_calls} calls"
                                + (f", {s.note}" if s.note else "") for s in v) for n, v in visits.items()}
        return _edge_traces(g, pos, taken) + [_node_trace(g, pos, text, colours, hover)]

    fig = go.Figure(state(len(steps)), frames=[go.Frame(data=state(k), name=str(k)) for k in range(1, len(steps) + 1)])
    status = result.status if result.ok else f"{result.status}: {result.error}"
    fig = _layout_figure(fig, title or f"trace of {result.query!r} ({status})", g, pos)
    fig.update_layout(sliders=[dict(active=len(steps) - 1, currentvalue=dict(prefix="step "), pad=dict(t=30),
                                    steps=[dict(label=f"{k} {steps[k - 1].node}", method="animate",
                                                args=[[str(k)], dict(mode="immediate", frame=dict(duration=0))])
                                           for k in range(1, len(steps) + 1)])])
    return fig


def trace_timeline(result, title: str = "time per step") -> go.Figure:
    """Each step as a bar from its start to its end (milliseconds), in order, coloured by kind."""
    fig, start = go.Figure(), 0.0
    for s in result.trace:
        ms = s.seconds * 1e3
        fig.add_bar(x=[ms], base=[start], y=[f"{s.step} {s.node}"], orientation="h", showlegend=False,
                    marker_color=KIND_COLOURS.get(s.kind, "#9e9e9e"), hovertext=f"{s.kind}, {ms:.2f} ms {s.note}")
        start += ms
    fig.update_layout(title=title, xaxis_title="milliseconds since the run started", barmode="overlay",
                      yaxis=dict(autorange="reversed"), height=140 + 28 * len(result.trace))
    return fig


def trace_html(g: Graph, result) -> str:
    """One offline HTML page: the traced run on its graph (step slider) and its timeline."""
    import html

    parts = [trace_figure(g, result).to_html(full_html=False, include_plotlyjs=True),
             trace_timeline(result).to_html(full_html=False, include_plotlyjs=False),
             "<pre>" + html.escape("\n".join(result.explain())) + "</pre>"]  # answers, programs, verdicts, status
    return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n" + "\n".join(parts) + \
        "\n</body></html>\n"


def save_graph_png(g: Graph, path: str | Path) -> Path:
    """A static picture of the graph (matplotlib, byte-stable) for figures/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro_lib.viz.curves import save_figure

    pos = layout(g)
    back = back_edges(g)
    dg = nx.DiGraph([(e.source, e.target) for e in g.edges])
    dg.add_nodes_from(g.nodes)
    xs = [p[0] for p in pos.values()]
    fig, ax = plt.subplots(figsize=(1.6 + 1.7 * (max(xs) - min(xs)), 3.6))
    nx.draw_networkx_nodes(dg, pos, ax=ax, node_color=[KIND_COLOURS[g.nodes[n].kind] for n in dg.nodes],
                           node_size=500)
    nx.draw_networkx_edges(dg, pos, ax=ax, edgelist=[e for e in dg.edges if e not in back], arrows=True,
                           node_size=500)
    nx.draw_networkx_edges(dg, pos, ax=ax, edgelist=sorted(back), arrows=True, style="dashed",
                           connectionstyle="arc3,rad=-0.5", node_size=500)
    nx.draw_networkx_labels(dg, {n: (x, y - 0.22) for n, (x, y) in pos.items()}, ax=ax, font_size=8)
    from matplotlib.lines import Line2D

    kinds = list(dict.fromkeys(n.kind for n in g.nodes.values()))
    ax.legend(handles=[Line2D([], [], marker="o", ls="", color=KIND_COLOURS[k], label=k) for k in kinds],
              loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=len(kinds), frameon=False, fontsize=8)
    ax.margins(0.08, 0.22)  # room for the labels under the outer nodes
    ax.set_title(f"graph {g.name}", fontsize=10)
    ax.axis("off")
    path = Path(path)
    out = save_figure(fig, path.name, path.parent)
    plt.close(fig)
    return out
