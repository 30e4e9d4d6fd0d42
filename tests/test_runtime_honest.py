"""Honest answers (issue 21 item 5): every path checks its answer, and an answer no check confirmed comes back
unverified (or abstained), never ok with exit 0. Stub experts stand in for the trained ones: ReasonMini and
CodeMini with scripted writers (no training), a Struct-mini stand-in that returns a fixed document; the fast
path's verify node (judge.py's cheap `verify`) and the slow path's judge node check them alike."""
from __future__ import annotations

import copy

import pytest

from neuro_lib.bench.outside import selective
from neuro_lib.cli import main
from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.experts.code import CodeMini
from neuro_lib.runtime.experts.reason import ReasonMini
from neuro_lib.runtime.judge import judge, ungrounded
from neuro_lib.runtime.types import EXIT_CODES, ExpertAnswer, Query, Result, Route
from neuro_lib.structured.schemas import load_schema
from test_runtime_experts import scripted

HOURS = "Convert 7 hours to minutes."
SUM = "Write a program that prints the sum of 2 and 3."
KETTLE = "A blue kettle for $42, in stock."


class Doc:
    """A Struct-mini stand-in: answers every query with one fixed JSON document."""
    name, skills, tools, contract = "struct-mini", ("json",), (), {"input": "text", "output": "json"}

    def __init__(self, text: str):
        self.text = text

    def answer(self, query: Query) -> ExpertAnswer:
        return ExpertAnswer(self.text, value=None, model_calls=1)


class Abstains:
    name, skills, tools, contract = "retrieval", ("retrieval",), (), {"input": "text", "output": "text"}

    def answer(self, query: Query) -> ExpertAnswer:
        return ExpertAnswer("", ok=False, abstained=True, error="the documentation holds nothing relevant")


class Chatty:
    name, skills, tools, contract = "general", ("chat",), (), {"input": "text", "output": "text"}

    def answer(self, query: Query) -> ExpertAnswer:
        return ExpertAnswer("hi")


class BySkill:
    """A router double: the skill named for each query text, on the given path."""
    name = "by-skill"

    def __init__(self, path="fast"):
        self.path = path

    def route(self, query):
        skill = {HOURS: "math", SUM: "code", KETTLE: "json", "hello there": "chat"}.get(query.text.split(" | ")[0],
                                                                                        "retrieval")
        return copy.deepcopy(Route(self.path, [skill], 0.0, router="fixed"))


def reason(plan: str) -> ReasonMini:
    return ReasonMini(None, write=scripted(plan))


def code(program: str) -> CodeMini:
    return CodeMini(None, write=lambda text: program.encode())


def engine(path="fast", **over):
    ex = {"reason-mini": reason("CALL calc(7*60) -> 420\nANSWER 420"), "code-mini": code("print(2 + 3)"),
          "struct-mini": Doc('{"name": "blue kettle", "price": 42, "currency": "USD", "in_stock": true}'),
          "retrieval": Abstains(), **over}
    return RuntimeEngine("default", ex, router=BySkill(path), judge=judge)


def run(path="fast", query=HOURS, **over):
    wants = query == KETTLE
    return engine(path, **over).run(query, wants_json=wants, schema_id="product_v1" if wants else None)


# -- the engine: right answers are verified on either path, wrong ones are not ------------------------------------
@pytest.mark.parametrize("path", ["fast", "slow"])
@pytest.mark.parametrize("query,answer,method", [(HOURS, "420", "recomputed"), (SUM, "5", "executed"),
                                                 (KETTLE, None, "schema")])
def test_right_answers_come_back_verified(path, query, answer, method):
    r = run(path, query)
    assert r.status == "verified" and r.ok and r.error is None, r.error
    assert answer is None or r.answer == answer
    (v,) = r.verdicts.values()
    assert v["passed"] and v["method"] == method


WRONG = [
    # a calculator plan with a number the question does not give (61), and one that skips the question's 7
    ("plan reads 61", HOURS, {"reason-mini": reason("CALL calc(7*61) -> 427\nANSWER 427")}, "61 is not in the question"),
    ("plan skips 7", HOURS, {"reason-mini": reason("CALL calc(60*60) -> 3600\nANSWER 3600")}, "never uses 7"),
    # a program that ignores the task's numbers, and an answer that is not what the program prints
    ("program ignores", SUM, {"code-mini": code("print(6)")}, "does not use 2"),
    ("output claimed", SUM, {"code-mini": type("Liar", (), {
        "name": "code-mini", "skills": ("code",), "tools": (), "contract": {},
        "answer": lambda self, q: ExpertAnswer("6", meta={"program": "print(2 + 3)"})})()}, "re-run printed '5'"),
    # valid JSON whose name and price the description does not hold
    ("json name", KETTLE, {"struct-mini": Doc('{"name": "red keyboard", "price": 42, "currency": "USD"}')},
     "'red keyboard' is not in the input"),
    ("json price", KETTLE, {"struct-mini": Doc('{"name": "blue kettle", "price": 422, "currency": "USD"}')},
     "422 is not in the input"),
]


@pytest.mark.parametrize("path", ["fast", "slow"])
@pytest.mark.parametrize("case,query,over,why", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_answers_are_declined_never_ok(path, case, query, over, why):
    r = run(path, query, **over)
    assert r.status == "abstained" and not r.ok, (r.status, r.error)
    assert r.answer and why in r.error and r.error.startswith("the check rejected the answer")  # kept for the trace
    assert path == "slow" or r.trace[-2].kind == "verify"
    assert r.to_dict()["status"] == "abstained"


def test_abstention_and_nothing_to_check():
    r = run(query="What does math.sqrt return?")
    assert r.status == "abstained" and not r.ok and r.answer == ""
    assert r.error == "the documentation holds nothing relevant"
    a = reason("CALL calc(1+1) -> 2\nANSWER 2").answer(Query("what is two plus three?"))
    assert not a.ok and a.abstained and "no numbers" in a.error  # nothing to plan with: it says so
    # no judge attached: the fast path's verify node still checks (rule checks need no judge)
    r = RuntimeEngine("default", engine().experts, router=BySkill()).run(HOURS)
    assert r.status == "verified" and r.answer == "420"
    # ... the slow path's judge node without a judge checks nothing
    r = RuntimeEngine("default", engine().experts, router=BySkill("slow")).run(HOURS)
    assert r.status == "unverified" and r.answer == "420" and "no judge attached" in r.error
    # a custom graph with no judge or verify node: the answer is shown, never trusted
    from neuro_lib.runtime.graph import parse_graph

    bare = parse_graph({"name": "bare", "entry": "r", "nodes": [{"id": "r", "kind": "router"}, {
        "id": "a", "kind": "expert"}, {"id": "d", "kind": "exit"}], "edges": [{"from": "r", "to": "a"}, {
            "from": "a", "to": "d"}]})
    r = RuntimeEngine(bare, engine().experts, router=BySkill(), judge=judge).run(HOURS)
    assert r.status == "unverified" and r.answer == "420" and "no judge or verify node" in r.error
    # a failed expert (not an abstention) is a failure
    r = run(query=HOURS, **{"reason-mini": reason("ANSWER 12")})
    assert r.status == "failed" and "no calculator call" in r.error


def test_result_keeps_ok_and_status_consistent():
    with pytest.raises(ValueError):
        Result("q", "a", True, None, status="unverified")
    with pytest.raises(ValueError):
        Result("q", "a", False, None, status="verified")
    with pytest.raises(ValueError):
        Result("q", "a", False, None, status="maybe")
    assert Result("q", "a", False, None).status == "failed"


# -- the judge's grounding check -----------------------------------------------------------------------------------
def test_grounding_finds_made_up_values_and_accepts_read_ones():
    from neuro_lib.structured.task import make_examples

    for ex in make_examples(120, seed=3, split="heldout"):  # every generated gold document is grounded in its text
        assert ungrounded(ex.doc, ex.text, load_schema(ex.schema_id)) == [], (ex.text, ex.doc)
    schema = load_schema("event_v1")
    assert ungrounded({"date": "2026-01-19"}, "on 19 January 2026", schema) == []
    assert ungrounded({"date": "2026-02-19"}, "on 19 January 2026", schema) == ["2026-02-19"]
    assert ungrounded({"n": 3.5, "ok": True, "x": None, "tags": ["blue"]}, "3.5 blue", None) == []
    assert ungrounded({"n": 35, "tags": ["red"]}, "3.5 blue", None) == [35, "red"]
    product = load_schema("product_v1")  # a currency sign names its enum value: "$12" is not EUR
    assert ungrounded({"currency": "EUR"}, "The kettle costs $12.", product) == ["EUR"]
    assert ungrounded({"currency": "USD"}, "The kettle costs $12.", product) == []
    assert ungrounded({"currency": "USD"}, "The kettle costs 12.", product) == []


# -- the doors: exit status and labels ---------------------------------------------------------------------------
@pytest.fixture
def stubs(monkeypatch):
    import neuro_lib.runtime.router_model as router_model
    from neuro_lib.runtime.router import KeywordRouter

    chosen = {}
    monkeypatch.setattr(router_model, "cached_router", lambda sizes, **kw: KeywordRouter())  # nothing trains here

    def fake(cls, profile="smoke", graph="default", memory=None, router=None, extra_experts=None, **kw):
        e = engine(**chosen)
        return cls(graph, e.experts, BySkill(), judge, memory, **kw)

    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(fake))
    return chosen


@pytest.mark.parametrize("argv,over,code,out,err", [
    (["run", HOURS], {}, 0, "420\n", ""),
    (["run", HOURS], {"reason-mini": reason("CALL calc(7*61) -> 427\nANSWER 427")}, 3,
     "(abstained: the check rejected the answer: math: step 1: 61 is not in the question)\n",
     "neuro: abstained: the check rejected the answer: math: step 1: 61 is not in the question\n"),
    (["run", HOURS], {"reason-mini": reason("CALL calc(7*60) -> 420\nANSWER 420")}, 0, "420\n", ""),
    (["run", SUM], {"code-mini": code("print(6)")}, 3,
     "(abstained: the check rejected the answer: code: the program does not use 2 from the task)\n",
     "neuro: abstained: the check rejected the answer: code: the program does not use 2 from the task\n"),
    (["run", KETTLE, "--json", "--schema", "product_v1"],
     {"struct-mini": Doc('{"name": "red keyboard", "price": 42, "currency": "USD"}')}, 3,
     "(abstained: the check rejected the answer: json: valid against product_v1, but 'red keyboard' is not in the "
     "input)\n",
     "neuro: abstained: the check rejected the answer: json: valid against product_v1, but 'red keyboard' is not "
     "in the input\n"),
    (["run", "hello there"], {"general": Chatty()}, 3, "hi (unverified)\n",
     "neuro: unverified: nothing could check the answer: chat: chat: nothing to check against\n"),
    (["run", "What does math.sqrt return?"], {}, 3, "(abstained: the documentation holds nothing relevant)\n",
     "neuro: abstained: the documentation holds nothing relevant\n"),
    (["run", HOURS], {"reason-mini": reason("ANSWER 12")}, 1, "\n",
     "neuro: error: the plan made no calculator call\n"),
])
def test_run_exit_status_and_labels(stubs, capsys, argv, over, code, out, err):
    stubs.update(over)
    assert main(argv) == code
    got_out, got_err = capsys.readouterr()
    assert (got_out, got_err) == (out, err)
    assert code == EXIT_CODES[{0: "verified", 3: "unverified", 1: "failed"}[code]] == EXIT_CODES[
        {0: "verified", 3: "abstained", 1: "failed"}[code]]


def test_run_json_format_carries_the_status_and_verdicts(stubs, capsys):
    import json

    stubs.update({"reason-mini": reason("CALL calc(7*61) -> 427\nANSWER 427")})
    assert main(["run", HOURS, "--format", "json"]) == 3
    r = json.loads(capsys.readouterr().out)
    assert r["status"] == "abstained" and r["ok"] is False
    assert r["verdicts"]["math"]["method"] == "recomputed" and not r["verdicts"]["math"]["passed"]


def test_trace_shows_each_experts_answer_program_and_the_verdict(stubs, capsys):
    stubs.update({"code-mini": code("print(6)")})
    assert main(["run", SUM, "--trace"]) == 3
    out = capsys.readouterr().out
    assert "code-mini (code): 6" in out and "program: print(6)" in out
    assert "verdict code: not passed by executed (score 0.00): the program does not use 2 from the task" in out
    assert out.rstrip().endswith("status: abstained (the check rejected the answer: code: the program does not use "
                                 "2 from the task)")


def test_chat_prompt_labels_and_exits_like_run(stubs, capsys, tmp_path):
    db = str(tmp_path / "m.sqlite")
    assert main(["chat", "--memory", db, "--prompt", HOURS, "--graph", "default"]) == 0
    assert capsys.readouterr().out.startswith("420   [")
    stubs.update({"reason-mini": reason("CALL calc(7*61) -> 427\nANSWER 427")})
    assert main(["chat", "--memory", str(tmp_path / "n.sqlite"), "--prompt", HOURS, "--graph", "default"]) == 3
    assert capsys.readouterr().out.startswith("(abstained: the check rejected the answer: math: step 1: 61 is not in "
                                              "the question)   [")


# -- selective accuracy -------------------------------------------------------------------------------------------
def test_selective_accuracy():
    statuses = ["verified", "verified", "unverified", "unverified", "abstained", "failed"]
    right = [True, False, True, False, False, False]
    s = selective(right, [x == "verified" for x in statuses], statuses)
    # 4 wrong answers, 1 of them verified; 2 verified, 1 of them right
    assert s == {"n": 6, "success": 2 / 6, "coverage": 2 / 6, "selective_accuracy": 0.5, "wrong_marked_ok": 0.25,
                 "abstained": 1 / 6}
    empty = selective([], [])
    assert empty["n"] == 0 and empty["coverage"] != empty["coverage"]  # NaN: nothing to cover
    with pytest.raises(ValueError):
        selective([True], [])


def test_memory_keeps_only_verified_answers_for_reuse(tmp_path):
    from neuro_lib.runtime.memory import Memory

    from test_runtime_engine import Echo

    ex = {**engine("slow").experts, "general": Echo("general", "chat")}
    mem = Memory(tmp_path / "m.sqlite")
    eng = RuntimeEngine("default", ex, router=BySkill("slow"), judge=judge, memory=mem)
    first = eng.run(HOURS)
    again = eng.run(HOURS)
    assert first.status == again.status == "verified" and [s.node for s in again.trace] == ["route", "recall", "done"]
    # a chat reply passes the judge with nothing checked (method "none"): stored, but never reused as verified
    chat = RuntimeEngine("default", ex, router=type("R", (), {"name": "r", "route": lambda self, q: Route(
        "slow", ["chat"], 1.0, router="fixed")})(), judge=judge, memory=mem)
    assert chat.run("hello").status == "unverified"
    assert chat.run("hello").status == "unverified" and mem.long.lookup_result("hello") is None


def test_grounding_wants_whole_words_and_uncontradicted_enum_values():
    schema = load_schema("product_v1")
    text = "Leather wallet at 45 USD, tags gift and leather."
    assert ungrounded({"name": "Leather wallet", "price": 45, "currency": "USD"}, text, schema) == []
    # a blank name, a piece of a word, and an enum value the text contradicts (it names USD)
    assert ungrounded({"name": " ", "tags": ["et"], "price": 45, "currency": "EUR"}, text, schema) == [" ", "et", "EUR"]
    # an enum value the text does not contradict (it names no currency at all) is a choice, not a made-up value
    assert ungrounded({"name": "Leather wallet", "price": 45, "currency": "USD"}, "Leather wallet, $45.", schema) == []
