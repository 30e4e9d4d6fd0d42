"""Architecture drawn from a real `nn.Module` tree (networkx graph, plotly figure).

`module_tree(model)` walks `named_children()` into a directed tree whose nodes carry the
module's class, its parameter count (shared tensors once) and, for a `ModuleList` of
identically-shaped blocks, only the first block with a "x N" repeat count, so a
64-layer model draws as clearly as a 2-layer one. `plot_module_tree(graph)` lays the
tree out top-down (leaves evenly spaced, parents centred over their children).

    g = module_tree(model, max_depth=3); plot_module_tree(g, "Aeron").show()
Works on meta-device models, so the seed's 3.85B layout draws without allocating weights.
"""
from __future__ import annotations

import networkx as nx
import plotly.graph_objects as go
import torch.nn as nn


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _same_shape(blocks: list[nn.Module]) -> bool:
    shapes = [[(n, tuple(p.shape)) for n, p in b.named_parameters()] for b in blocks]
    return all(type(b) is type(blocks[0]) for b in blocks) and all(s == shapes[0] for s in shapes)


def module_tree(model: nn.Module, max_depth: int = 3, collapse_repeats: bool = True,
                hide: tuple = (nn.Dropout,)) -> nx.DiGraph:
    """Directed tree: node = module path ("" is the root), attributes type/params/repeat/depth/label.
    Modules of the `hide` types are left out; a module whose weights belong to another
    (tied embeddings) says so in its label."""
    g = nx.DiGraph()
    owner: dict[int, str] = {}  # parameter -> the module that registered it first
    for pname, p in model.named_parameters(remove_duplicate=False):
        owner.setdefault(id(p), pname.rsplit(".", 1)[0] if "." in pname else "")

    def add(path: str, m: nn.Module, depth: int, repeat: int = 1):
        name = path.rsplit(".", 1)[-1] if path else type(m).__name__
        n = _n_params(m)
        times = f" x{repeat}" if repeat > 1 else ""
        shared = sorted({owner[id(p)] for p in m.parameters(recurse=False)} - {path})
        tied = f"<br>weights shared with {shared[0]}" if shared else ""
        g.add_node(path, type=type(m).__name__, params=n, repeat=repeat, depth=depth, shared=bool(shared),
                   label=f"{name}{times}<br>{type(m).__name__}<br>{n:,} params{tied}")
        if depth >= max_depth:
            return
        children = list(m.named_children())
        if collapse_repeats and isinstance(m, nn.ModuleList) and len(children) > 1 and \
                _same_shape([c for _, c in children]):
            children, rep = children[:1], len(children)
        else:
            rep = 1
        for child_name, child in children:
            if isinstance(child, hide):
                continue
            child_path = f"{path}.{child_name}" if path else child_name
            add(child_path, child, depth + 1, rep)
            g.add_edge(path, child_path)

    add("", model, 0)
    return g


def tree_layout(g: nx.DiGraph, root: str = "") -> dict[str, tuple[float, float]]:
    """Top-down positions: leaves at x = 0, 1, 2, ... in DFS order, parents centred above."""
    pos: dict[str, tuple[float, float]] = {}
    next_x = [0.0]

    def place(node):
        kids = list(g.successors(node))
        if not kids:
            x = next_x[0]
            next_x[0] += 1
        else:
            xs = [place(k) for k in kids]
            x = (min(xs) + max(xs)) / 2
        pos[node] = (x, -g.nodes[node]["depth"])
        return x

    place(root)
    return pos


def plot_module_tree(g: nx.DiGraph, title: str = "") -> go.Figure:
    """A plotly figure of `module_tree`'s graph; hover shows class and parameter count."""
    pos = tree_layout(g)
    ex, ey = [], []
    for a, b in g.edges:
        ex += [pos[a][0], pos[b][0], None]
        ey += [pos[a][1], pos[b][1], None]
    nodes = list(g.nodes)
    fig = go.Figure([
        go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="#bbb", width=1), hoverinfo="skip"),
        go.Scatter(x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
                   text=[g.nodes[n]["label"].split("<br>")[0] for n in nodes], textposition="bottom center",
                   hovertext=[g.nodes[n]["label"] for n in nodes], hoverinfo="text",
                   marker=dict(size=[8 + 4 * (g.nodes[n]["params"] > 0) for n in nodes],
                               color=[g.nodes[n]["depth"] for n in nodes], colorscale="Viridis")),
    ])
    fig.update_layout(title=title, showlegend=False, height=420, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig
