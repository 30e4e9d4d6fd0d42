"""Runtime graphs (neuro_lib/runtime/graph.py): the shipped graphs load, and every kind of bad graph fails
to load with one sentence that names the problem."""
from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.graph import SCHEMA_FILE, compile_condition, list_graphs, load_graph, parse_graph

GOOD = {
    "name": "t", "entry": "route", "step_budget": 10,
    "nodes": [{"id": "route", "kind": "router"}, {"id": "solve", "kind": "expert", "retries": 1},
              {"id": "gate", "kind": "judge"}, {"id": "done", "kind": "exit"}],
    "edges": [{"from": "route", "to": "solve"}, {"from": "solve", "to": "gate"},
              {"from": "gate", "to": "done", "when": "judge.passed"},
              {"from": "gate", "to": "solve", "when": "not judge.passed"}, {"from": "gate", "to": "done"}],
}


def _bad(mutate) -> str:
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(NeuroError) as e:
        parse_graph(doc, "bad.yaml")
    msg = str(e.value)
    assert msg.startswith("graph bad.yaml: ") and "\n" not in msg
    return msg


def test_shipped_graphs_load_and_the_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(yaml.safe_load(SCHEMA_FILE.read_text()))
    assert {"default", "fast"} <= set(list_graphs())
    for name in list_graphs():
        g = load_graph(name)
        assert g.exits and g.entry in g.nodes
    g = load_graph("default")
    assert g.nodes["solve"].retries == 2 and g.nodes["solve"].params == {"skills": "all"}
    assert [e.target for e in g.out_edges["gate"]] == ["combine", "solve", "combine"]  # file order is kept
    nx_graph = g.to_networkx()
    assert nx_graph.number_of_edges() == len(g.edges) and nx_graph.nodes["recall"]["kind"] == "memory"


def test_good_graph_parses_and_loads_from_a_path(tmp_path):
    g = parse_graph(copy.deepcopy(GOOD))
    assert g.nodes["solve"].max_visits == 2 and g.nodes["gate"].max_visits == float("inf")
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    assert load_graph(p).name == "t" and load_graph(str(p)).source == str(p)


def test_unknown_node_kind():
    msg = _bad(lambda d: d["nodes"].append({"id": "x", "kind": "oracle"}))
    assert "node 'x' has unknown kind 'oracle'" in msg and "router" in msg


def test_dangling_edge():
    assert "dangling: there is no node 'nowhere'" in _bad(lambda d: d["edges"].append({"from": "gate", "to": "nowhere"}))
    assert "there is no node 'ghost'" in _bad(lambda d: d["edges"].insert(0, {"from": "ghost", "to": "gate"}))


def test_no_path_to_an_exit():
    def trap(d):  # a node the entry reaches that can never leave
        d["nodes"].append({"id": "trap", "kind": "combine"})
        d["edges"].insert(0, {"from": "route", "to": "trap", "when": "compound"})
    assert "node 'trap' has no path to an exit" in _bad(trap)
    assert "there is no exit node" in _bad(lambda d: d.update(
        nodes=[n for n in d["nodes"] if n["kind"] != "exit"], edges=[e for e in d["edges"] if e["to"] != "done"]))


def test_cycle_without_a_retry_bound():
    msg = _bad(lambda d: d["nodes"][1].pop("retries"))
    assert "the cycle solve -> gate -> solve has no retry bound; give one of its nodes `retries: N`" in msg
    # a bound on any node of the cycle is enough; a second, unbounded cycle is still caught
    doc = copy.deepcopy(GOOD)
    doc["nodes"][1].pop("retries")
    doc["nodes"][2]["retries"] = 3
    parse_graph(doc)
    doc["edges"].insert(2, {"from": "gate", "to": "gate", "when": "compound"})  # self-loop on the bounded node: fine
    parse_graph(doc)
    assert "the cycle route -> solve -> route has no retry bound" in _bad(lambda d: (
        d["nodes"][1].pop("retries"), d["nodes"][2].update(retries=1),
        d["edges"].insert(0, {"from": "solve", "to": "route", "when": "compound"})))


def test_unreachable_node_and_entry_problems():
    def island(d):
        d["nodes"].append({"id": "island", "kind": "combine"})
        d["edges"].append({"from": "island", "to": "done"})
    assert "node 'island' cannot be reached from the entry 'route'" in _bad(island)
    assert "the entry 'nope' is not a node" in _bad(lambda d: d.update(entry="nope"))
    assert "exit node 'done' has an outgoing edge" in _bad(lambda d: d["edges"].append({"from": "done", "to": "route"}))


def test_schema_violations_name_the_place():
    assert "nodes[1].retries" in _bad(lambda d: d["nodes"][1].update(retries=-1))
    assert "'entry' is a required property" in _bad(lambda d: d.pop("entry"))
    assert "nodes[2]" in _bad(lambda d: d["nodes"].insert(2, {"id": "calc", "kind": "tool"}))  # tool needs tool + args
    assert "step_budget" in _bad(lambda d: d.update(step_budget=0))
    assert "node id 'gate' is used twice" in _bad(lambda d: d["nodes"].append({"id": "gate", "kind": "judge"}))
    assert "field 'tool', which judge nodes do not take" in _bad(lambda d: d["nodes"][2].update(tool="calc"))
    assert "unknown tool 'abacus'" in _bad(lambda d: d["nodes"].insert(
        2, {"id": "t", "kind": "tool", "tool": "abacus", "args": {}}))


def test_bad_conditions():
    assert "bad condition: unknown condition 'judge.happy'" in _bad(lambda d: d["edges"][2].update(when="judge.happy"))
    assert "path must be one of fast, slow, not 'medium'" in _bad(lambda d: d["edges"][0].update(when="path == medium"))
    assert "skill must be one of" in _bad(lambda d: d["edges"][0].update(when="poetry in skills"))


def test_conditions_evaluate():
    facts = {"path": "slow", "skill": "math", "skills": ["math", "code"], "compound": True, "judge_passed": False,
             "memory_hit": False, "wants_json": False, "ok": True, "failed": False}
    expect = {"always": True, "path == slow": True, "path != slow": False, "skill == math": True,
              "skill == code": False, "code in skills": True, "json not in skills": True, "compound": True,
              "not judge.passed": True, "judge.passed": False, "path == slow and compound": True,
              "path == slow and judge.passed": False, "failed": False, "not memory.hit": True}
    for text, want in expect.items():
        test, on_failure = compile_condition(text)
        assert test(facts) is want, text
        assert on_failure == (text == "failed")


def test_file_errors(tmp_path):
    with pytest.raises(NeuroError, match="unknown graph 'nope'; graphs in data/graphs: .*default"):
        load_graph("nope")
    with pytest.raises(NeuroError, match="does not exist"):
        load_graph(tmp_path / "missing.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nnodes: [\n  - {id: a\n")
    with pytest.raises(NeuroError, match=r"graph broken.yaml is not valid YAML at line \d+"):
        load_graph(p)
    p.write_text("- just\n- a list\n")
    with pytest.raises(NeuroError, match="must hold a mapping"):
        load_graph(p)

