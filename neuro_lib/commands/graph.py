"""`neuro graph show` and `neuro init`: draw or list a runtime graph; write a starter graph and settings."""
from __future__ import annotations

from pathlib import Path

from neuro_lib.errors import NeuroError
from neuro_lib.paths import check_new_file, check_output


def cmd_graph(a):
    """neuro graph show FILE: nodes and edges of a graph (checked as it loads), or its picture with --out."""
    from neuro_lib.runtime.graph import load_graph

    g = load_graph(a.file)
    if a.out:
        import tempfile

        from neuro_lib.atomic import write_atomic
        from neuro_lib.viz.graph import graph_figure, save_graph_png

        out = check_new_file(a.out, (".html", ".png"), a.force)
        if out.suffix == ".html":
            write_atomic(out, graph_figure(g).to_html(include_plotlyjs=True))
        else:
            with tempfile.TemporaryDirectory() as d:  # drawn aside, then moved in whole: no half-written --out
                write_atomic(out, save_graph_png(g, Path(d) / "graph.png").read_bytes())
        print(f"wrote {out}")
        return 0
    print(f"graph {g.name}: entry {g.entry}, exits {', '.join(g.exits)}, step budget {g.step_budget}"
          + (f"\n{g.description}" if g.description else ""))
    print("nodes:")
    for n in g.nodes.values():
        extra = " ".join(f"{k}={v}" for k, v in n.params.items())
        retries = f" retries={n.retries}" if n.retries is not None else ""
        print(f"  {n.id:<12} {n.kind:<8}{retries} {extra}".rstrip())
    print("edges:")
    for e in g.edges:
        print(f"  {e.source} -> {e.target}" + ("" if e.when == "always" else f"   when {e.when}"))
    return 0


def cmd_init(a):
    """neuro init [DIR]: a starter graph and settings file; refuses to overwrite anything."""
    from neuro_lib.runtime.config import RuntimeConfig
    from neuro_lib.runtime.graph import graph_path

    folder = check_output(a.dir, "", folder=True, exist_ok=True)
    files = {folder / "graph.yaml": graph_path("default").read_text(encoding="utf-8"),
             folder / "neuro.yaml": "# neuro_lib runtime settings: neuro run --config neuro.yaml \"query\"\n"
                                    "# (neuro_lib/runtime/config.py explains each field)\n"
                                    + RuntimeConfig(graph="graph.yaml", memory="memory.sqlite").to_yaml()}
    taken = [str(p) for p in files if p.exists() and not p.is_symlink()]
    if taken:
        raise NeuroError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; neuro init never "
                         f"overwrites files")
    for p in files:
        check_output(p, "")  # a planted link (even a dangling one) would send the write elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    for p, text in files.items():
        with open(p, "x", encoding="utf-8") as f:  # exclusive: never through a link made since the check
            f.write(text)
    print(f"wrote {', '.join(str(p) for p in files)}; try: neuro run --config {folder / 'neuro.yaml'} "
          f"\"what is 17 * 23?\" --trace")


def register(sub) -> None:
    gr = sub.add_parser("graph", help="runtime graphs: show one (checked as it loads)")
    gsub = gr.add_subparsers(dest="graph_command", required=True)
    gs = gsub.add_parser("show", help="print a graph's nodes and edges, or draw it with --out FILE.html|.png")
    gs.add_argument("file", help="a graph file, or a name in data/graphs/ (default, fast, chat)")
    gs.add_argument("--out", help="write a picture: .html (plotly, interactive) or .png (matplotlib)")
    gs.add_argument("--force", action="store_true", help="replace an existing --out file")
    gs.set_defaults(func=cmd_graph)
    it = sub.add_parser("init", help="write a starter runtime graph and settings file (never overwrites)")
    it.add_argument("dir", nargs="?", default=".", help="the folder (created if missing; default: here)")
    it.set_defaults(func=cmd_init)
