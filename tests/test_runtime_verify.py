"""The fast path's cheap verifier (issue 21 item 5): judge.py's `verify` (rule checks, no model call) in a
`verify` node of the graph, retrieval's support check and refusal, and the doors that choose the router
(RuntimeConfig.router, the cached classifier). Scripted experts stand in for the trained ones."""
from __future__ import annotations

import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.graph import load_graph, parse_graph
from neuro_lib.runtime.judge import verify
from neuro_lib.runtime.types import ExpertAnswer, Query, Route, ToolCall
from test_runtime_honest import HOURS, KETTLE, Doc, code, reason


def calc_answer(*steps: tuple[str, float], text: str | None = None) -> ExpertAnswer:
    """An answer whose calculator calls are `steps` (expression, the result the plan used)."""
    calls = [ToolCall("calc", {"expression": e}, True, v) for e, v in steps]
    return ExpertAnswer(text if text is not None else f"{steps[-1][1]:g}", tool_calls=calls)


# -- the rule checks the verify node runs -------------------------------------------------------------------------
def test_verify_passes_a_right_plan_and_rejects_wrong_ones():
    q = Query("A box holds 12 pens. How many pens are in 4 boxes and 3 loose pens?")
    right = verify(q, calc_answer(("12*4", 48), ("48+3", 51)), "math")
    assert right.passed and right.method == "recomputed"
    for answer, why in [(calc_answer(("12*4", 48), ("48+3", 52)), "48+3 is 51, the plan used 52"),  # wrong result
                        (calc_answer(("12*5", 60), ("60+3", 63)), "5 is not in the question"),      # made-up number
                        (calc_answer(("12*4", 48)), "never uses 3"),                              # skipped quantity
                        (calc_answer(("12*4", 48), ("48+3", 51), text="48"), "is not the last result")]:
        v = verify(q, answer, "math")
        assert not v.passed and v.method == "recomputed" and why in v.reason, v


def test_verify_grounds_json_and_reruns_code():
    q = Query("A blue kettle for $42, in stock.", wants_json=True, schema_id="product_v1")
    good = verify(q, ExpertAnswer('{"name": "blue kettle", "price": 42, "currency": "USD", "in_stock": true}'), "json")
    assert good.passed and good.method == "schema"
    bad = verify(q, ExpertAnswer('{"name": "blue kettle", "price": 24, "currency": "USD"}'), "json")
    assert not bad.passed and "24 is not in the input" in bad.reason
    task = Query("Write a program that prints the sum of 2 and 3.")
    assert verify(task, ExpertAnswer("5", meta={"program": "print(2 + 3)"}), "code").passed
    assert not verify(task, ExpertAnswer("6", meta={"program": "print(2 + 3)"}), "code").passed  # not what it prints
    assert not verify(task, ExpertAnswer("6", meta={"program": "print(6)"}), "code").passed  # ignores the task
    # a known limit (README): a program that uses the task's numbers with a wrong operation passes
    assert verify(task, ExpertAnswer("6", meta={"program": "print(2 * 3)"}), "code").passed
    chat = verify(Query("hello"), ExpertAnswer("hi"), "chat")
    assert chat.method == "none"  # nothing to check a chat reply against: never a verification


def test_verify_never_calls_a_model(monkeypatch):
    """The cheap verifier on retrieval uses the support check, never the trained judge model."""
    import neuro_lib.runtime.judge as judge_mod

    monkeypatch.setattr(judge_mod, "check_model", lambda *a, **k: pytest.fail("the verifier called the judge model"))
    a = ExpertAnswer("ValueError", citations=[{"passage_id": "p", "start": 10, "end": 20}],
                     meta={"retrieved": [{"passage_id": "p", "start": 0, "end": 100, "score": 25.0}], "support": 0.9})
    v = verify(Query("which exception is raised?"), a, "retrieval")
    assert v.passed and v.method == "supported"


def test_retrieval_support_check():
    q = Query("In bufferlib, which exception is raised if the handle was closed?")
    meta = {"retrieved": [{"passage_id": "p", "start": 0, "end": 100, "score": 25.0}], "support": 0.9}
    cite = [{"passage_id": "p", "start": 10, "end": 20}]
    assert verify(q, ExpertAnswer("ValueError", citations=cite, meta=meta), "retrieval").passed
    for answer, why in [(ExpertAnswer("ValueError", meta=meta), "cites no retrieved passage"),
                        (ExpertAnswer("ValueError", citations=[{"passage_id": "x", "start": 200, "end": 210}],
                                      meta=meta), "outside every retrieved passage")]:
        v = verify(q, answer, "retrieval")
        assert not v.passed and v.method == "supported" and why in v.reason, v  # rejected: the run abstains
    weak = verify(q, ExpertAnswer("ValueError", citations=cite, meta={**meta, "support": 0.4}), "retrieval")
    assert not weak.passed and weak.method == "none" and "40% of the question's words" in weak.reason  # undecided


def test_rag_with_no_supporting_passage_abstains(tiny_index, capsys, monkeypatch):
    import neuro_lib.runtime.judge as judge_mod

    from neuro_lib.cli import main
    from neuro_lib.rag.ask import ask
    from neuro_lib.runtime.experts import Retrieval

    off = "Who won the football world cup in 1998?"
    asked = ask(tiny_index, off)
    assert asked.refused and "does not hold the answer" in asked.refused and asked.answer.text == ""
    a = Retrieval(tiny_index).answer(Query(off))
    assert not a.ok and a.abstained and a.error == asked.refused
    on = "In bufferlib, which exception is raised if the buffer handle was closed before the call?"
    assert ask(tiny_index, on).refused is None and ask(tiny_index, on).support > 0.5
    r = RuntimeEngine("default", {"retrieval": Retrieval(tiny_index)}, router=Fixed("fast", "retrieval")).run(off)
    assert r.status == "abstained" and not r.ok and "does not hold the answer" in r.error
    eng = RuntimeEngine("default", {"retrieval": Retrieval(tiny_index)}, router=Fixed("fast", "retrieval"))
    r = eng.run(on)
    score = r.verdicts["retrieval"]["reason"]
    assert r.answer == "ValueError" and r.status in ("verified", "unverified"), (r.status, r.error)
    monkeypatch.setattr(judge_mod, "SUPPORT_SCORE", 0.0)  # the tiny corpus's BM25 scores are small: no score bar
    r = eng.run(on)
    assert r.status == "verified" and r.verdicts["retrieval"]["method"] == "supported", (r.error, score)
    monkeypatch.setattr(judge_mod, "SUPPORT_SCORE", 1e9)  # a bar no passage clears: shown, unverified
    r = eng.run(on)
    assert r.status == "unverified" and r.answer == "ValueError" and "too weak to verify" in r.error
    # the door: `neuro rag ask` refuses with exit 3 (the index saved to disk first)
    path = tiny_index_path(tiny_index, capsys)
    assert main(["rag", "ask", str(path), off]) == 3
    out, err = capsys.readouterr()
    assert out.startswith("refused: the corpus does not hold the answer") and err.startswith("neuro: refused:")


def tiny_index_path(index, capsys):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "idx"
    index.save(path)
    return path


# -- the verify node in the graph ---------------------------------------------------------------------------------
class Fixed:
    name = "fixed"

    def __init__(self, path: str, skill: str):
        self.path, self.skill = path, skill

    def route(self, query):
        return Route(self.path, [self.skill], 0.0, router="fixed")


def test_the_fast_path_has_a_verify_node_that_custom_graphs_can_use_or_skip():
    g = load_graph("default")
    assert g.nodes["check"].kind == "verify" and [e.target for e in g.out_edges["answer"]] == ["check"]
    assert load_graph("fast").nodes["check"].kind == "verify"
    nodes = [{"id": "r", "kind": "router"}, {"id": "a", "kind": "expert"}, {"id": "v", "kind": "verify"},
             {"id": "d", "kind": "exit"}]
    with_check = parse_graph({"name": "v", "entry": "r", "nodes": nodes, "edges": [
        {"from": "r", "to": "a"}, {"from": "a", "to": "v"}, {"from": "v", "to": "d"}]})
    without = parse_graph({"name": "n", "entry": "r", "nodes": [n for n in nodes if n["id"] != "v"], "edges": [
        {"from": "r", "to": "a"}, {"from": "a", "to": "d"}]})
    wrong = {"reason-mini": reason("CALL calc(7*61) -> 427\nANSWER 427")}
    right = {"reason-mini": reason("CALL calc(7*60) -> 420\nANSWER 420")}
    r = RuntimeEngine(with_check, right, router=Fixed("fast", "math")).run(HOURS)
    assert r.status == "verified" and r.ok and r.answer == "420" and r.trace[2].kind == "verify"
    assert r.trace[2].output["math"]["passed"] and r.trace[2].model_calls == 0
    r = RuntimeEngine(with_check, wrong, router=Fixed("fast", "math")).run(HOURS)
    assert r.status == "abstained" and "61 is not in the question" in r.error
    r = RuntimeEngine(without, right, router=Fixed("fast", "math")).run(HOURS)
    assert r.status == "unverified" and r.answer == "420" and "no judge or verify node" in r.error
    # a verify node before any expert has nothing to check: the step fails, in one sentence
    early = parse_graph({"name": "e", "entry": "r", "nodes": [{"id": "r", "kind": "router"}, {"id": "v", "kind": "verify"},
                                                             {"id": "d", "kind": "exit"}],
                         "edges": [{"from": "r", "to": "v"}, {"from": "v", "to": "d"}]})
    r = RuntimeEngine(early, right, router=Fixed("fast", "math")).run(HOURS)
    assert r.status == "failed" and r.error == "verify node 'v' has no answer to check (put an expert node before it)"


def test_a_custom_verifier_and_a_crashing_one():
    seen = []

    def strict(query, answer, skill):
        seen.append(skill)
        raise RuntimeError("boom")

    eng = RuntimeEngine("fast", {"reason-mini": reason("CALL calc(7*60) -> 420\nANSWER 420")},
                        router=Fixed("fast", "math"), verifier=strict)
    r = eng.run(HOURS)
    assert seen == ["math"] and r.status == "unverified" and "the check failed: RuntimeError: boom" in r.error


def test_json_value_absent_from_the_source_abstains_on_the_fast_path():
    eng = RuntimeEngine("default", {"struct-mini": Doc('{"name": "red keyboard", "price": 42, "currency": "USD"}')},
                        router=Fixed("fast", "json"))
    r = eng.run(KETTLE, wants_json=True, schema_id="product_v1")
    assert r.status == "abstained" and "'red keyboard' is not in the input" in r.error
    eng = RuntimeEngine("default", {"code-mini": code("print(2 + 3)")}, router=Fixed("fast", "code"))
    assert eng.run("Write a program that prints the sum of 2 and 3.").status == "verified"


# -- the doors: the router choice --------------------------------------------------------------------------------
def test_config_router_defaults_to_the_measured_best(tmp_path):
    from neuro_lib.runtime.config import DEFAULT_ROUTER, RuntimeConfig, load_config

    assert RuntimeConfig().router == DEFAULT_ROUTER == "classifier"
    f = tmp_path / "neuro.yaml"
    f.write_text("router: keywords\n")
    assert load_config(f).router == "keywords"
    f.write_text("router: oracle\n")
    with pytest.raises(NeuroError, match="router"):
        load_config(f)


def test_cached_router_trains_once_then_loads(tmp_path, capsys):
    from neuro_lib.profiles import RouterSizes
    from neuro_lib.runtime.router_model import cached_router

    sizes = RouterSizes(n_train=40, n_test=10, steps=3, n_math=2, n_tasks=2)
    first = cached_router(sizes, cache_dir=tmp_path)
    assert "[router] training the router classifier on first use" in capsys.readouterr().err
    again = cached_router(sizes, cache_dir=tmp_path)
    assert capsys.readouterr().err == ""  # loaded: nothing trained, nothing said
    queries = [Query("what is 17 * 23 + 4?"), Query("write a function that reverses a string"), Query("hello")]
    assert [first.route(q) for q in queries] == [again.route(q) for q in queries]
    assert len(list(tmp_path.glob("router-*/router.safetensors"))) == 1
