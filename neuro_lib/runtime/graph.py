"""Runtime graphs: YAML files in data/graphs/, checked when they load (TinyLLM's entry -> router ->
specialists -> quality gate -> exit, seeds/tinyllm.md).

    g = load_graph("default")            # data/graphs/default.yaml, or any path to a .yaml file
    g.entry, g.nodes["gate"].retries, g.out_edges["route"], g.to_networkx()

The format (data/graphs/graph.schema.json is the schema; README "Runtime" has an example):

    name: default
    entry: route                 # the one entry node
    step_budget: 24              # steps per run; a run that needs more is cut ("loop cut at budget")
    wall_s: 300                  # optional: seconds per run; a run that takes longer is cut after its step
    nodes:
      - {id: route, kind: router}
      - {id: solve, kind: expert, skills: all, retries: 2}   # re-entered at most twice
      - {id: gate, kind: judge}
      - {id: done, kind: exit}
    edges:                       # tried in file order; the first whose condition holds is taken
      - {from: route, to: solve}
      - {from: solve, to: gate}
      - {from: gate, to: done, when: judge.passed}
      - {from: gate, to: solve, when: not judge.passed}      # a retry, while solve has budget left
      - {from: gate, to: done}                               # budget spent: leave with the best answer

Node kinds: router (the engine's router), expert (`expert: NAME`, or the route's skills' experts:
`skills: top|all`), tool (`tool: calc|python|fetch`, `args` with {query} / {answer} placeholders),
judge (the engine's judge, full checks), verify (the cheap rule verifier, judge.py's `verify`: no model call;
the fast path's check), memory (`op: recall|write`, `k`), combine (`how: join|best`), decompose (`max_steps`,
`step_retries`: a compound query cut into ordered sub-tasks, each routed to its expert and judged, the later
steps given the earlier results, the answers composed; runtime/decompose.py), expand (`n`: the rejected tasks
solved again by recursive expansion or best-of-N, runtime/expansion.py), exit. Conditions are atoms joined by
"and": always, path == fast|slow, skill == S (the top skill), S in skills, compound (several skills),
multistep (the router node's splitter, runtime/decompose.py, cuts the query into ordered steps), decomposed
(a decompose node solved it step by step), judge.passed, memory.hit, wants_json, ok, failed, each negatable
with "not" (or != / not in).
An edge into a node whose retry budget is spent is skipped, so the next matching edge is the
fallback. A failed step (an expert that raised, a tool error) ends the run unless an edge out of it
says `failed`.

A bad graph fails to load with one sentence (NeuroError): not YAML, a schema violation (unknown node
kind, missing field), a field of another kind, a duplicate id, a dangling edge, an unknown condition,
an exit with outgoing edges, a node the entry cannot reach, a node with no path to an exit, or a
cycle on which no node has a retry budget.

Tests: tests/test_runtime_graph.py.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jsonschema
import networkx as nx

from neuro_lib.errors import NeuroError
from neuro_lib.paths import REPO_ROOT
from neuro_lib.runtime.types import PATHS, SKILLS
from neuro_lib.yamlfile import load_yaml

GRAPH_DIR = REPO_ROOT / "data" / "graphs"
SCHEMA_FILE = GRAPH_DIR / "graph.schema.json"
KINDS = ("router", "expert", "tool", "judge", "verify", "memory", "combine", "decompose", "expand", "exit")
# the fields a node kind may carry beyond id, kind, label, retries
KIND_FIELDS = {"expert": {"expert", "skills"}, "tool": {"tool", "args"}, "memory": {"op", "k"}, "combine": {"how"},
               "decompose": {"max_steps", "step_retries"}, "expand": {"n"}}
DEFAULT_STEP_BUDGET = 32


@dataclass
class Node:
    id: str
    kind: str
    retries: int | None = None   # re-entries allowed after the first visit; None: bounded by the step budget only
    label: str = ""
    params: dict = field(default_factory=dict)  # the kind's own fields (expert, skills, tool, args, op, k, how)

    @property
    def max_visits(self) -> float:
        return float("inf") if self.retries is None else 1 + self.retries


@dataclass
class Edge:
    source: str
    target: str
    when: str                              # the condition as written ("always" when none)
    test: Callable[[dict], bool]           # compiled: facts -> bool (see Facts in engine.py)
    on_failure: bool = False               # the condition names `failed`: the edge may carry a failed step


@dataclass
class Graph:
    name: str
    entry: str
    step_budget: int
    nodes: dict[str, Node]
    edges: list[Edge]
    description: str = ""
    source: str = ""                       # the file it came from
    wall_s: float | None = None            # a run's wall-clock budget; None: the engine's default
    out_edges: dict[str, list[Edge]] = field(default_factory=dict)

    def __post_init__(self):
        self.out_edges = {n: [e for e in self.edges if e.source == n] for n in self.nodes}

    @property
    def exits(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.kind == "exit"]

    def to_networkx(self) -> nx.MultiDiGraph:
        """Nodes with their kind, label and retries; one edge per YAML edge, keyed by its position."""
        g = nx.MultiDiGraph(name=self.name, entry=self.entry)
        for n in self.nodes.values():
            g.add_node(n.id, kind=n.kind, label=n.label or n.id, retries=n.retries, **n.params)
        for i, e in enumerate(self.edges):
            g.add_edge(e.source, e.target, key=i, when=e.when)
        return g


# -- conditions --------------------------------------------------------------------------------------------
_ATOMS: list[tuple[re.Pattern, Callable]] = [
    (re.compile(r"always"), lambda m: lambda f: True),
    (re.compile(r"path\s*(==|!=)\s*(\w+)"), lambda m: _compare(m, "path", PATHS, lambda f: f["path"])),
    (re.compile(r"skill\s*(==|!=)\s*(\w+)"), lambda m: _compare(m, "skill", SKILLS, lambda f: f["skill"])),
    (re.compile(r"(\w+)\s+(in|not in)\s+skills"), lambda m: _member(m)),
    (re.compile(r"(not\s+)?(compound|multistep|decomposed|judge\.passed|memory\.hit|wants_json|ok|failed)"),
     lambda m: _flag(m)),
]


def _compare(m, what, allowed, get):
    op, value = m.group(1), m.group(2)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return (lambda f: get(f) == value) if op == "==" else (lambda f: get(f) != value)


def _member(m):
    skill, op = m.group(1), m.group(2)
    if skill not in SKILLS:
        raise ValueError(f"skill must be one of {', '.join(SKILLS)}, not {skill!r}")
    return (lambda f: skill in f["skills"]) if op == "in" else (lambda f: skill not in f["skills"])


def _flag(m):
    negate, name = bool(m.group(1)), m.group(2)
    key = {"judge.passed": "judge_passed", "memory.hit": "memory_hit"}.get(name, name)
    return lambda f: bool(f[key]) != negate


def compile_condition(text: str | None) -> tuple[Callable[[dict], bool], bool]:
    """"a and b" -> (facts -> bool, whether it names `failed`); ValueError on an unknown atom."""
    tests, on_failure = [], False
    for atom in (text or "always").split(" and "):
        atom = atom.strip()
        for pattern, make in _ATOMS:
            m = pattern.fullmatch(atom)
            if m:
                tests.append(make(m))
                on_failure |= atom == "failed"
                break
        else:
            raise ValueError(f"unknown condition {atom!r}")
    return (tests[0] if len(tests) == 1 else lambda f: all(t(f) for t in tests)), on_failure


# -- loading -----------------------------------------------------------------------------------------------
def graph_path(name_or_path: str | Path) -> Path:
    """A registry name ("default" -> data/graphs/default.yaml) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise NeuroError(f"graph file {p} does not exist")
        return p
    p = GRAPH_DIR / f"{name_or_path}.yaml"
    if not p.is_file():
        raise NeuroError(f"unknown graph {str(name_or_path)!r}; graphs in data/graphs: {', '.join(list_graphs())}")
    return p


def list_graphs() -> list[str]:
    return sorted(p.stem for p in GRAPH_DIR.glob("*.yaml"))


_VALIDATOR = None


def _validator() -> jsonschema.Draft202012Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    return _VALIDATOR


def load_graph(name_or_path: str | Path) -> Graph:
    """Read, schema-check and structure-check a graph file; NeuroError (one sentence) when it is bad."""
    p = graph_path(name_or_path)
    return parse_graph(load_yaml(p, f"graph {p.name}"), source=str(p))


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def parse_graph(doc, source: str = "<dict>") -> Graph:
    """A graph from its parsed YAML (a dict); every check of load_graph but the file reading."""
    label = Path(source).name
    fail = lambda msg: NeuroError(f"graph {label}: {msg}")  # noqa: E731 - one prefix for every sentence
    if not isinstance(doc, dict):
        raise fail("the file must hold a mapping with name, entry, nodes and edges")
    nodes_list = doc.get("nodes") if isinstance(doc.get("nodes"), list) else []
    for i, n in enumerate(nodes_list):  # the commonest mistake gets its own sentence
        if isinstance(n, dict) and "kind" in n and n["kind"] not in KINDS:
            raise fail(f"node {n.get('id', i)!r} has unknown kind {n['kind']!r}; kinds are {', '.join(KINDS)}")
    try:
        err = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    except RecursionError:
        raise fail("it is nested too deeply to check") from None
    if err is not None:
        raise fail(f"{_where(err.absolute_path)}: {err.message}")

    nodes: dict[str, Node] = {}
    for n in doc["nodes"]:
        if n["id"] in nodes:
            raise fail(f"node id {n['id']!r} is used twice")
        params = {k: v for k, v in n.items() if k not in ("id", "kind", "label", "retries")}
        stray = set(params) - KIND_FIELDS.get(n["kind"], set())
        if stray:
            raise fail(f"node {n['id']!r} ({n['kind']}) has field {sorted(stray)[0]!r}, which {n['kind']} nodes "
                       f"do not take")
        if n["kind"] == "tool":
            from neuro_lib.tools import TOOLS

            if n["tool"] not in TOOLS:
                raise fail(f"node {n['id']!r} names unknown tool {n['tool']!r}; tools are {', '.join(sorted(TOOLS))}")
        nodes[n["id"]] = Node(n["id"], n["kind"], n.get("retries"), n.get("label", ""), params)

    edges = []
    for i, e in enumerate(doc["edges"]):
        for end in ("from", "to"):
            if e[end] not in nodes:
                raise fail(f"edge {i} ({e['from']} -> {e['to']}) is dangling: there is no node {e[end]!r}")
        if nodes[e["from"]].kind == "exit":
            raise fail(f"exit node {e['from']!r} has an outgoing edge (to {e['to']!r}); exits end the run")
        try:
            test, on_failure = compile_condition(e.get("when"))
        except ValueError as exc:
            raise fail(f"edge {i} ({e['from']} -> {e['to']}) has a bad condition: {exc}") from None
        edges.append(Edge(e["from"], e["to"], e.get("when", "always"), test, on_failure))

    entry = doc["entry"]
    if entry not in nodes:
        raise fail(f"the entry {entry!r} is not a node")
    graph = Graph(doc["name"], entry, doc.get("step_budget", DEFAULT_STEP_BUDGET), nodes, edges,
                  doc.get("description", ""), source, doc.get("wall_s"))
    _check_structure(graph, fail)
    return graph


def _check_structure(graph: Graph, fail) -> None:
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.source, e.target) for e in graph.edges)
    if not graph.exits:
        raise fail("there is no exit node (kind: exit)")
    if graph.nodes[graph.entry].kind == "exit":
        raise fail(f"the entry {graph.entry!r} is an exit, so the graph does nothing")
    reachable = nx.descendants(g, graph.entry) | {graph.entry}
    for n in graph.nodes:  # file order, so the sentence names the first offender
        if n not in reachable:
            raise fail(f"node {n!r} cannot be reached from the entry {graph.entry!r}")
    can_exit = set(graph.exits).union(*(nx.ancestors(g, x) for x in graph.exits))
    for n in graph.nodes:
        if n not in can_exit:
            raise fail(f"node {n!r} has no path to an exit")
    # every cycle must pass through a node with a retry budget: drop those nodes, no cycle may remain
    unbounded = g.subgraph(n for n, node in graph.nodes.items() if node.retries is None)
    try:
        cycle = nx.find_cycle(unbounded)
    except nx.NetworkXNoCycle:
        return
    loop = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
    raise fail(f"the cycle {loop} has no retry bound; give one of its nodes `retries: N`")
