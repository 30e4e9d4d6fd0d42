"""RuntimeEngine (neuro_lib/runtime/engine.py) and the keyword router, with test-double experts and judges:
routing, conditions, compound queries combined, retries with the judge's feedback, the loop cut at the
step budget, the trace's contents, and every failure ending in a Result (ok=False, one sentence, trace)."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.engine import RuntimeEngine, join_answers
from neuro_lib.runtime.graph import load_graph, parse_graph
from neuro_lib.runtime.memory import Memory
from neuro_lib.runtime.router import KeywordRouter, KeywordRouterConfig, Router, complexity_features
from neuro_lib.runtime.types import SKILLS, Expert, ExpertAnswer, Query, Route, ToolCall, Verdict


class Echo:
    """A test double: answers "<name>: <query>", remembers every query it was asked."""

    def __init__(self, name, skill, ok=True, raises=None, value=None):
        self.name, self.skills, self.tools = name, (skill,), ()
        self.contract = {"input": "text", "output": "text"}
        self.ok, self.raises, self.value, self.seen = ok, raises, value, []

    def answer(self, query: Query) -> ExpertAnswer:
        self.seen.append(query)
        if self.raises:
            raise self.raises
        again = f" (try {query.attempt + 1})" if query.attempt else ""  # a retry gives a new answer
        return ExpertAnswer(f"{self.name}: {query.text}{again}", ok=self.ok, value=self.value or len(self.seen),
                            tool_calls=[ToolCall("calc", {"expression": "1+1"}, True, 2)], model_calls=2, tokens=5,
                            citations=[{"passage_id": self.name}], error=None if self.ok else f"{self.name} gave up")


def experts(**over):
    names = {"math": "reason-mini", "json": "struct-mini", "code": "code-mini", "retrieval": "retrieval",
             "chat": "general"}
    return {n: over.get(n) or Echo(n, s) for s, n in names.items()}


class ScriptedJudge:
    """Verdicts from a list per skill (the last one repeats); records what it judged."""

    def __init__(self, **script):
        self.script, self.seen = script, []

    def __call__(self, query, answer, skill):
        self.seen.append((skill, answer.text))
        plan = self.script.get(skill, [True])
        passed = plan[min(sum(s == skill for s, _ in self.seen) - 1, len(plan) - 1)]
        score = passed if isinstance(passed, float) else float(bool(passed))
        ok = score >= 0.5
        return Verdict(ok, score, "recomputed", "" if ok else f"{skill} is wrong")


class Fixed:
    """A router double: always the same route."""
    name = "fixed"

    def __init__(self, path="fast", skills=("chat",)):
        self.r = Route(path, list(skills), 0.0 if path == "fast" else 1.0, router="fixed")

    def route(self, query):
        return copy.deepcopy(self.r)


# several skills in one task (no "then": the splitter leaves it whole, so it takes the slow path's experts; the
# decompose node has its own tests in test_runtime_compound.py)
COMPOUND = "compute 17 * 23 + 4 in a python function that prints the result"


# -- the keyword router ------------------------------------------------------------------------------------
def test_keyword_router_labels_and_paths():
    r = KeywordRouter()
    assert isinstance(r, Router)
    easy = r.route(Query("hello, how are you?"))
    assert (easy.path, easy.skills, easy.router) == ("fast", ["chat"], "keywords")
    assert r.route(Query("what is 12 * 7?")).skills[0] == "math"
    compound = r.route(Query(COMPOUND))
    assert compound.path == "slow" and set(compound.skills) == {"math", "code"}
    assert compound.complexity > easy.complexity and 0 <= compound.complexity <= 1
    assert r.route(Query("which exception does gzip raise when the file has no fileno?")).skills[0] == "retrieval"
    js = r.route(Query("the blue kettle costs 12 dollars", wants_json=True))
    assert js.skills[0] == "json" and js.scores["json"] == 1.0
    assert r.route(Query("zzz qqq")).skills == ["chat"]  # nothing fires: the default skill
    assert set(compound.scores) == set(SKILLS)


def test_keyword_router_threshold_and_features():
    f = complexity_features("add 3 + 4 then 5 * 6; and finally 2 - 1")
    assert f["operators"] == 3 and f["numbers"] == 6 and f["clauses"] >= 2
    q = Query("what is 12 * 7?")
    assert KeywordRouter(KeywordRouterConfig(threshold=0.0)).route(q).path == "slow"
    assert KeywordRouter(KeywordRouterConfig(threshold=1.01)).route(q).path == "fast"
    with pytest.raises(ValueError, match="unknown skills"):
        KeywordRouter(KeywordRouterConfig(rules={"poetry": (r"poem",)}))


# -- paths, trace, combine ---------------------------------------------------------------------------------
def test_fast_path_trace():
    ex = experts()
    # the fast path's verify node checks with the engine's verifier (here a scripted one: it passes)
    r = RuntimeEngine("default", ex, judge=ScriptedJudge(), verifier=ScriptedJudge()).run("hello there")
    assert r.ok and r.status == "verified" and r.error is None and r.answer == "general: hello there"
    assert [(s.step, s.node, s.kind) for s in r.trace] == [(1, "route", "router"), (2, "answer", "expert"),
                                                           (3, "check", "verify"), (4, "done", "exit")]
    assert r.trace[2].output == {"chat": {"passed": True, "score": 1.0, "method": "recomputed", "reason": ""}}
    assert r.route.path == "fast" and r.trace[0].output["path"] == "fast"
    ex_step = r.trace[1]
    assert (ex_step.tokens, ex_step.model_calls, ex_step.ok) == (5, 2, True)
    assert ex_step.input[0]["expert"] == "general" and ex_step.output[0]["tool_calls"][0]["tool"] == "calc"
    assert all(s.seconds >= 0 for s in r.trace) and r.timings["total_s"] >= sum(s.seconds for s in r.trace)
    assert set(r.timings) == {"total_s", "router_s", "expert_s", "verify_s", "exit_s"}
    assert r.citations == [{"passage_id": "general"}] and r.to_dict()["route"]["path"] == "fast"
    assert not ex["reason-mini"].seen  # only the one expert was asked


def test_compound_query_goes_to_several_experts_and_is_combined():
    ex, judge = experts(), ScriptedJudge()
    r = RuntimeEngine("default", ex, judge=judge).run(COMPOUND)
    assert r.ok, r.error
    assert [s.node for s in r.trace] == ["route", "recall", "solve", "gate", "combine", "remember", "done"]
    assert {s for s, _ in judge.seen} == {"math", "code"}
    assert "[math] reason-mini:" in r.answer and "[code] code-mini:" in r.answer
    assert set(r.value) == {"math", "code"}
    assert {c["passage_id"] for c in r.citations} == {"reason-mini", "code-mini"}
    solve = r.trace[2]
    assert solve.tokens == 10 and solve.model_calls == 4  # both experts' costs
    assert r.trace[5].output == "no memory attached to this engine"


def test_join_answers_marks_failures():
    a, b = ExpertAnswer("1", value=1), ExpertAnswer("?", ok=False, error="no parse")
    joined = join_answers({"math": a, "code": b})
    assert not joined.ok and joined.error == "code: no parse" and joined.value == {"math": 1, "code": None}
    assert join_answers({"math": a}) is a


def test_skill_condition_and_fixed_expert_nodes():
    g = parse_graph({"name": "s", "entry": "route", "nodes": [
        {"id": "route", "kind": "router"}, {"id": "calc_expert", "kind": "expert", "expert": "reason-mini"},
        {"id": "chatty", "kind": "expert", "expert": "general"}, {"id": "done", "kind": "exit"}],
        "edges": [{"from": "route", "to": "calc_expert", "when": "skill == math"},
                  {"from": "route", "to": "chatty"}, {"from": "calc_expert", "to": "done"},
                  {"from": "chatty", "to": "done"}]})
    eng = RuntimeEngine(g, experts())
    assert eng.run("what is 3 * 4?").answer.startswith("reason-mini")
    assert eng.run("tell me a joke").answer.startswith("general")
    bad = {"name": "b", "entry": "route", "nodes": [{"id": "route", "kind": "router"},
                                                    {"id": "x", "kind": "expert", "expert": "oracle"},
                                                    {"id": "done", "kind": "exit"}],
           "edges": [{"from": "route", "to": "x"}, {"from": "x", "to": "done"}]}
    with pytest.raises(NeuroError, match="names expert 'oracle', which this engine does not have"):
        RuntimeEngine(parse_graph(bad), experts())


def test_missing_skill_expert_falls_back_to_general():
    ex = experts()
    del ex["code-mini"]
    r = RuntimeEngine("fast", ex, router=Fixed("fast", ["code"])).run("write a function")
    # the fast graph's verify node checks the general model's answer as code: no program, so it is declined
    assert r.status == "abstained" and not r.ok and r.answer.startswith("general")
    assert r.error == "the check rejected the answer: code: no program to run"
    ex.pop("general")
    r = RuntimeEngine("fast", ex, router=Fixed("fast", ["code"])).run("write a function")
    assert not r.ok and "no expert serves skill 'code'" in r.error and r.trace[-1].ok is False


# -- retries, budgets, loops -------------------------------------------------------------------------------
def test_retry_asks_only_the_failed_task_again_with_the_judges_reason():
    ex = experts()
    judge = ScriptedJudge(math=[False, True], code=[True])
    r = RuntimeEngine("default", ex, judge=judge).run(COMPOUND)
    assert r.ok, r.error
    assert [s.node for s in r.trace] == ["route", "recall", "solve", "gate", "solve", "gate", "combine", "remember",
                                         "done"]
    assert r.trace[4].note == "retry 1/2"
    assert len(ex["reason-mini"].seen) == 2 and len(ex["code-mini"].seen) == 1
    retry_query = ex["reason-mini"].seen[1]
    assert retry_query.context[-1] == {"role": "judge", "text": "the previous answer was rejected: math is wrong"}
    assert (ex["reason-mini"].seen[0].attempt, retry_query.attempt) == (0, 1)
    assert [s for s, _ in judge.seen] == ["math", "code", "math"]


def test_spent_retries_return_the_best_answer_marked_failed():
    ex = experts()
    judge = ScriptedJudge(chat=[0.4, 0.1, 0.2])  # never passes; the first answer scores best
    r = RuntimeEngine("default", ex, judge=judge, router=Fixed("slow", ["chat"])).run("hi")
    # the judge rejected every attempt: the run declines, keeping the best answer for the trace
    assert not r.ok and r.status == "abstained" and r.error == "the check rejected the answer: chat: chat is wrong"
    assert [s.node for s in r.trace].count("solve") == 3  # first try + 2 retries
    assert r.trace[-3].node == "combine" and r.value == 1  # the first answer (value 1) was kept: best score
    assert r.answer == "general: hi"


def test_retry_budget_spent_without_a_fallback_edge_fails():
    doc = {"name": "r", "entry": "solve", "nodes": [
        {"id": "solve", "kind": "expert", "retries": 1}, {"id": "gate", "kind": "judge"}, {"id": "done", "kind": "exit"}],
        "edges": [{"from": "solve", "to": "gate"}, {"from": "gate", "to": "done", "when": "judge.passed"},
                  {"from": "gate", "to": "solve", "when": "not judge.passed"}]}
    r = RuntimeEngine(parse_graph(doc), experts(), judge=ScriptedJudge(chat=[False])).run("hi")
    assert not r.ok and r.error == "node 'solve' spent its retry budget of 1 and no other edge leads on from 'gate'"
    assert [s.node for s in r.trace] == ["solve", "gate", "solve", "gate"]


def test_loop_is_cut_at_the_step_budget():
    doc = {"name": "loop", "entry": "solve", "step_budget": 7, "nodes": [
        {"id": "solve", "kind": "expert", "retries": 50}, {"id": "gate", "kind": "judge"}, {"id": "done", "kind": "exit"}],
        "edges": [{"from": "solve", "to": "gate"}, {"from": "gate", "to": "done", "when": "judge.passed"},
                  {"from": "gate", "to": "solve"}]}
    r = RuntimeEngine(parse_graph(doc), experts(), judge=ScriptedJudge(chat=[False])).run("hi")
    assert not r.ok and len(r.trace) == 7
    assert r.error == "the run was cut at its step budget of 7 steps (node 'solve' ran 4 times)"
    assert r.trace[-1].note.endswith("loop cut at budget") and r.answer == "general: hi"
    short = RuntimeEngine(parse_graph(doc), experts(), judge=ScriptedJudge(chat=[False]), step_budget=3).run("hi")
    assert len(short.trace) == 3 and "step budget of 3" in short.error


def test_a_retry_without_progress_stops_retrying():
    class Stubborn(Echo):  # ignores the attempt: a greedy expert that cannot use the judge's feedback
        def answer(self, query):
            return super().answer(replace(query, attempt=0))

    ex = experts(general=Stubborn("general", "chat"))
    r = RuntimeEngine("default", ex, judge=ScriptedJudge(chat=[False]), router=Fixed("slow", ["chat"])).run("hi")
    assert [s.node for s in r.trace] == ["route", "recall", "solve", "gate", "solve", "gate", "combine", "remember",
                                         "done"]  # one retry, not two
    assert r.trace[4].note == "retry 1/2; no progress (same answers as the last attempt): no more retries"
    assert not r.ok and r.error.startswith("the check rejected the answer")
    doc = {"name": "r", "entry": "solve", "nodes": [
        {"id": "solve", "kind": "expert", "retries": 5}, {"id": "gate", "kind": "judge"}, {"id": "done", "kind": "exit"}],
        "edges": [{"from": "solve", "to": "gate"}, {"from": "gate", "to": "done", "when": "judge.passed"},
                  {"from": "gate", "to": "solve", "when": "not judge.passed"}]}
    r = RuntimeEngine(parse_graph(doc), ex, judge=ScriptedJudge(chat=[False])).run("hi")
    assert r.error == "node 'solve' made no progress on its last retry and no other edge leads on from 'gate'"


def test_no_judge_uses_the_experts_ok_flag():
    ex = experts(general=Echo("general", "chat", ok=False))
    r = RuntimeEngine("default", ex, router=Fixed("slow", ["chat"])).run("hi")
    assert not r.ok and r.trace[3].output["chat"]["method"] == "none"
    assert r.error == "general gave up"


# -- failed results: never a traceback ---------------------------------------------------------------------
def test_bad_input_is_a_failed_result():
    eng = RuntimeEngine("default", experts(), judge=ScriptedJudge(), verifier=ScriptedJudge())
    for query, kwargs, error in [("", {}, "the query is empty"), ("   \n", {}, "the query is empty"),
                                 ("a kettle", {"wants_json": True, "schema_id": "nope_v9"}, "unknown schema 'nope_v9'"),
                                 ("a kettle", {"wants_json": True}, "a JSON answer needs a schema id")]:
        r = eng.run(query, **kwargs)
        assert not r.ok and r.error.startswith(error) and "\n" not in r.error and r.trace == [] and r.route is None
    for _ in range(2):  # the second time the schema id is known to be good (checked once per engine)
        r = eng.run("the blue kettle costs 12 dollars", wants_json=True, schema_id="product_v1")
        assert r.ok and r.route.skills[0] == "json" and r.answer.startswith("struct-mini")
    g = parse_graph({"name": "x", "entry": "route", "nodes": [{"id": "route", "kind": "router"},
                                                              {"id": "done", "kind": "exit"}],
                     "edges": [{"from": "route", "to": "done"}]})
    r = RuntimeEngine(g, experts()).run("hi")  # a graph that reaches its exit without asking anyone
    assert not r.ok and r.error == "the run reached exit 'done' without an answer" and r.trace[-1].ok is False


def test_expert_exception_and_failed_answer():
    ex = experts(general=Echo("general", "chat", raises=RuntimeError("CUDA out of\nmemory")))
    r = RuntimeEngine("default", ex).run("hello")
    assert not r.ok and r.error == "expert 'general' failed on skill chat: RuntimeError: CUDA out of memory"
    assert [s.node for s in r.trace] == ["route", "answer"] and r.trace[-1].ok is False
    assert r.trace[-1].note == r.error
    ex = experts(general=Echo("general", "chat", ok=False))
    r = RuntimeEngine("fast", ex).run("hello")
    assert not r.ok and r.error == "general gave up" and r.answer == "general: hello"


def _tool_graph(expression, failed_edge=False):
    nodes = [{"id": "route", "kind": "router"}, {"id": "calc", "kind": "tool", "tool": "calc",
                                                 "args": {"expression": expression}}, {"id": "done", "kind": "exit"}]
    edges = [{"from": "route", "to": "calc"}, {"from": "calc", "to": "done"}]
    if failed_edge:
        nodes.append({"id": "rescue", "kind": "expert", "expert": "general"})
        edges[1:1] = [{"from": "calc", "to": "rescue", "when": "failed"}]
        edges.append({"from": "rescue", "to": "done"})
    return parse_graph({"name": "tool", "entry": "route", "nodes": nodes, "edges": edges})


def test_tool_node_and_tool_error_mid_graph():
    r = RuntimeEngine(_tool_graph("{query}"), experts()).run("17 * 23 + 4")
    # a tool node's answer belongs to no expert task, so nothing verifies it
    assert r.status == "unverified" and r.value == 395 and r.answer == "395" and r.trace[1].output == 395
    r = RuntimeEngine(_tool_graph("{query}"), experts()).run("17 * / 4")
    assert not r.ok and r.error.startswith("tool 'calc' at node 'calc' failed:") and "\n" not in r.error
    assert [(s.node, s.ok) for s in r.trace] == [("route", True), ("calc", False)]
    # an edge that says `failed` carries the failure on: here to a rescue expert
    r = RuntimeEngine(_tool_graph("{query}", failed_edge=True), experts()).run("17 * / 4")
    assert r.status == "unverified" and r.answer == "general: 17 * / 4" and [s.node for s in r.trace] == ["route", "calc", "rescue", "done"]


class Const(Echo):
    """Always the same text (an expression a tool can evaluate)."""

    def __init__(self, name, skill, text):
        super().__init__(name, skill)
        self.text = text

    def answer(self, query):
        self.seen.append(query)
        return ExpertAnswer(self.text, tool_calls=[ToolCall("calc", {"expression": "1"}, True, 1)])


def test_tool_node_reads_the_answer_and_combine_best_picks_the_top_score():
    doc = {"name": "t", "entry": "route", "nodes": [
        {"id": "route", "kind": "router"}, {"id": "ask", "kind": "expert", "skills": "all"},
        {"id": "gate", "kind": "judge"}, {"id": "pick", "kind": "combine", "how": "best"},
        {"id": "check", "kind": "tool", "tool": "calc", "args": {"expression": "({answer}) + 0"}},
        {"id": "done", "kind": "exit"}],
        "edges": [{"from": "route", "to": "ask"}, {"from": "ask", "to": "gate"}, {"from": "gate", "to": "pick"},
                  {"from": "pick", "to": "check"}, {"from": "check", "to": "done"}]}
    ex = experts(**{"reason-mini": Const("reason-mini", "math", "6 * 7"), "code-mini": Const("code-mini", "code", "1")})
    judge = ScriptedJudge(math=[0.9], code=[0.6])
    r = RuntimeEngine(parse_graph(doc), ex, judge=judge).run(COMPOUND)
    assert r.ok and r.trace[3].output == "6 * 7"  # the best-scored answer (math, 0.9) was picked
    assert r.value == 42 and r.trace[4].input == {"expression": "(6 * 7) + 0"}
    assert [s.node for s in r.trace] == ["route", "ask", "gate", "pick", "check", "done"]


def test_memory_short_term_window_and_long_term_hit():
    mem = Memory(window=4)
    ex = experts()
    eng = RuntimeEngine("default", ex, judge=ScriptedJudge(), memory=mem)
    first = eng.run(COMPOUND)
    assert first.ok and mem.long.count("result") == 1
    again = eng.run(COMPOUND)  # a verified past answer to the same question ends the run at recall
    assert again.ok and again.answer == first.answer and [s.node for s in again.trace] == ["route", "recall", "done"]
    assert len(ex["reason-mini"].seen) == 1
    eng.run("hello there")
    seen = ex["general"].seen[-1]
    assert [t["role"] for t in seen.context] == ["user", "assistant", "user", "assistant"]  # the window (4 turns)
    assert seen.context[0]["text"] == COMPOUND
    assert [t["role"] for t in mem.short.turns()] == ["user", "assistant"] * 2


def test_engine_needs_experts_for_skill_nodes():
    with pytest.raises(NeuroError, match="has no experts"):
        RuntimeEngine("default", {})
    assert isinstance(experts()["general"], Expert)
    assert load_graph("default").step_budget == RuntimeEngine("default", experts()).step_budget
