"""Compound queries and expansion as graph nodes (issue 21 item 6): the rule splitter and the hand-off
(runtime/decompose.py), the default graph's decompose node (ordered sub-tasks, each routed to its expert and
judged, the later step given the earlier result, the program and its output composed, a trace step per
sub-task), and the expand node (runtime/expansion.py's best-of-N and recursive expansion after the judge's
retries are spent). Test-double experts, except one run through the real sandbox and the real judge.
The queries here are written for these tests, not taken from data/eval/."""
from __future__ import annotations

import re
import time
import pytest

from neuro_lib.bench.outside import final_output
from neuro_lib.errors import NeuroError
from neuro_lib.runtime.decompose import Step, compose, hand_off, schema_for, source_text, split_query
from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.expansion import best_of_n
from neuro_lib.runtime.graph import load_graph, parse_graph
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall, Verdict
from neuro_lib.tools import get_tool

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


# -- test doubles --------------------------------------------------------------------------------------------
class Calc:
    """A math expert double that really computes: the arithmetic in the text through the calculator tool
    ("halve X" and "square X" as words), with the calc call recorded as Reason-mini records it."""
    name, skills, tools, contract = "reason-mini", ("math",), ("calc",), {"input": "text", "output": "text"}

    def __init__(self):
        self.seen = []

    def answer(self, query: Query) -> ExpertAnswer:
        self.seen.append(query)
        text = query.text.lower()
        if m := re.search(r"halve (\d+)", text):
            expr = f"{m[1]} / 2"
        elif m := re.search(r"square (\d+)", text):
            expr = f"{m[1]} ** 2"
        elif m := re.search(r"add (\d+) to (\d+)", text):
            expr = f"{m[2]} + {m[1]}"
        elif m := re.search(r"multiply (\d+) by (\d+)|\((\d+)\) of (\d+)", text):
            expr = f"{m[1] or m[3]} * {m[2] or m[4]}"
        else:
            expr = "".join(re.findall(r"[\d\s()+*/-]+", text)).strip()
        r = get_tool("calc").call({"expression": expr})
        if not r.ok:
            return ExpertAnswer("", ok=False, error=f"no arithmetic in {query.text!r}", model_calls=1)
        value = int(r.value) if float(r.value).is_integer() else r.value
        return ExpertAnswer(str(value), value=value, model_calls=1, tokens=3,
                            tool_calls=[ToolCall("calc", {"expression": expr}, True, r.value)])


class Printer:
    """A code expert double: a program that prints the first number or quoted string of the task."""
    name, skills, tools, contract = "code-mini", ("code",), ("python",), {"input": "text", "output": "text"}

    def __init__(self):
        self.seen = []

    def answer(self, query: Query) -> ExpertAnswer:
        self.seen.append(query)
        quoted = re.search(r"'([^']*)'", query.text)
        arg = repr(quoted[1]) if quoted else (NUMBER.findall(query.text) or ["0"])[0]
        program = f"def show():\n    print({arg})\n\nshow()"
        out = str(eval(arg))  # noqa: S307 - the double's own literal
        return ExpertAnswer(out, value=out, model_calls=1, tokens=len(program), meta={"program": program})


class Record:
    """A JSON expert double: a product record read from the description."""
    name, skills, tools, contract = "struct-mini", ("json",), (), {"input": "text", "output": "json"}

    def __init__(self):
        self.seen = []

    def answer(self, query: Query) -> ExpertAnswer:
        self.seen.append(query)
        name = re.search(r"the (\w+ \w+) costs", query.text)[1]
        doc = {"name": name, "price": int(NUMBER.findall(query.text)[0]), "currency": "USD"}
        return ExpertAnswer(str(doc), value=doc, model_calls=1)


class Never:
    """An expert that fails every time (ok=False)."""
    def __init__(self, name, skill):
        self.name, self.skills, self.tools, self.contract, self.seen = name, (skill,), (), {}, []

    def answer(self, query):
        self.seen.append(query)
        return ExpertAnswer("", ok=False, error=f"{self.name} cannot do this")


def team(**over):
    out = {"reason-mini": Calc(), "code-mini": Printer(), "struct-mini": Record(),
           "retrieval": Never("retrieval", "retrieval"), "general": Never("general", "chat")}
    out.update(over)
    return out


def passing_judge(query, answer, skill):
    return Verdict(answer.ok, float(answer.ok), "stub", "" if answer.ok else "failed")  # a real check (not "none"): verifies


# -- the splitter ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, pieces", [
    ("multiply 12 by 11, then write a program that prints it", ["multiply 12 by 11", "write a program that prints it"]),
    ("What is 81 / 9? After that, write code that prints the answer.",
     ["What is 81 / 9", "write code that prints the answer."]),
    ("halve 64 and then add 3 to the result", ["halve 64", "add 3 to the result"]),
    ("Subtract 9 from 50 and write a script that outputs the difference",
     ["Subtract 9 from 50", "write a script that outputs the difference"]),
    ("Sort [5, 2, 9]; then print its first element", ["Sort [5, 2, 9]", "print its first element"]),
    ("Add 2 and 3. Then square it. Finally, write code that prints the result.",
     ["Add 2 and 3", "square it", "write code that prints the result."]),
    ("work out 7 * 6, and use it to write a program that prints it twice",
     ["work out 7 * 6", "use it to write a program that prints it twice"]),
])
def test_splitter_cuts_at_sequence_connectives(text, pieces):
    steps = split_query(text)
    assert [s.text for s in steps] == pieces
    assert steps[0].refers is False and all(s.refers for s in steps[1:])


@pytest.mark.parametrize("text", [
    "what is 2 + 3?",
    "A bakery sells rolls at 4 dollars each. How much do 9 rolls cost?",
    "reverse the string 'first this, then that'",              # the connective is inside quotes
    "if the number is even then print it, else print zero",     # "if ... then" is a condition, not a sequence
    "write a program that prints the next prime after 20",      # "next" inside a clause
    "write a function that adds two numbers and returns the sum",  # "and returns" is not an imperative
])
def test_splitter_leaves_one_task_alone(text):
    assert split_query(text) == [Step(text, False)]


def test_splitter_keeps_the_rest_in_the_last_step():
    steps = split_query("add 1 and 2, then double it, then square it, then halve it", max_steps=3)
    assert [s.text for s in steps] == ["add 1 and 2", "double it", "square it then halve it"]


def test_hand_off_writes_the_earlier_result_in():
    assert hand_off("write code that prints it", "395") == "write code that prints 395"
    assert hand_off("print the reversed word in capitals", "olleh") == "print 'olleh' in capitals"
    assert hand_off("print its second element", "[4, 5, 6]") == "print the second element of [4, 5, 6]"
    assert hand_off("write a program that prints the sum of 2 and 3", "9") == \
        "write a program that prints the sum of 2 and 3"  # "the sum of ..." names its own operands
    assert hand_off("compute the price of 4 mugs", {"name": "green mug", "price": 9, "currency": "USD"}) == \
        "compute the price (9) of 4 mugs"
    assert hand_off("write code that prints hello", "7") == "write code that prints hello"  # nothing refers back


def test_json_step_helpers():
    assert source_text("From 'The green mug costs 9 dollars', build the product record") == \
        "The green mug costs 9 dollars"
    assert source_text("build the product record for it") == "build the product record for it"
    schemas = ["event_v1", "order_v1", "product_v1"]
    assert schema_for("build the product record", schemas) == "product_v1"
    assert schema_for("extract the orders", schemas) == "order_v1"
    assert schema_for("build a record", schemas, default="event_v1") == "event_v1"


def test_compose_shows_the_program_and_ends_with_the_final_output():
    a = ExpertAnswer("395", value=395)
    b = ExpertAnswer("395", value="395", meta={"program": "print(395)"})
    c = compose([("math", a), ("code", b)])
    assert c.ok and c.text == "[math] 395\n[code] program:\n    print(395)\n[code] 395"
    assert final_output(c.text) == "395" and c.value == {"math": 395, "code": "395"}
    failed = compose([("math", ExpertAnswer("", ok=False, error="no plan"))], planned=2)
    assert not failed.ok and failed.error == "step 1 (math): no plan" and "(failed: no plan)" in failed.text
    assert not compose([("math", a)], planned=2).ok


# -- the decompose node in the default graph ------------------------------------------------------------------
def test_default_graph_decomposes_and_passes_the_result_on():
    ex = team()
    r = RuntimeEngine("default", ex, judge=passing_judge).run("compute 19 * 21 + 5, then write a python function "
                                                              "that prints it")
    assert r.ok, r.error
    assert [s.node for s in r.trace] == ["route", "recall", "split", "split.1", "split.2", "remember", "done"]
    assert [s.step for s in r.trace] == list(range(1, 8))
    assert ex["reason-mini"].seen[0].text == "compute 19 * 21 + 5"
    assert ex["code-mini"].seen[0].text == "write a python function that prints 404"  # the number handed on
    assert ex["code-mini"].seen[0].context[-1] == {"role": "step", "text": "step 1 (math): 404"}
    assert "def show():\n        print(404)" in r.answer and final_output(r.answer) == "404"  # program and output
    assert r.value == {"math": 404, "code": "404"}
    sub = r.trace[3:5]
    assert [s.kind for s in sub] == ["expert", "expert"]
    assert sub[0].note == "step 1/2: math -> reason-mini; passed"
    assert sub[1].note == "step 2/2: code -> code-mini; given step 1's result; passed"
    assert sub[1].output["program"].startswith("def show()") and sub[1].model_calls == 1
    assert r.trace[2].output == r.answer and r.trace[2].model_calls == 0  # the calls are on the sub-steps
    assert r.trace[2].input["handed_on"] == [False, True]
    assert r.timings["expert_s"] == pytest.approx(sum(s.seconds for s in sub))


def test_single_skill_chain_and_three_steps():
    ex = team()
    r = RuntimeEngine("default", ex, judge=passing_judge).run(
        "compute 90 / 2, then multiply the result by 3, then add 7 to it")
    assert r.ok, r.error
    assert [q.text for q in ex["reason-mini"].seen] == ["compute 90 / 2", "multiply 45 by 3", "add 7 to 135"]
    assert r.answer.splitlines()[-1] == "[math] 142"


def test_independent_steps_run_on_their_own_text():
    ex = team()
    r = RuntimeEngine("default", ex, judge=passing_judge).run("What is 6 * 7? Also, write code that prints 'hi'.")
    assert r.ok, r.error
    assert ex["code-mini"].seen[0].text == "write code that prints 'hi'."  # no anaphor: nothing handed on
    assert r.answer.splitlines()[-1] == "[code] hi"


def test_record_step_hands_its_fields_to_the_next_step():
    ex = team()
    r = RuntimeEngine("default", ex, judge=passing_judge).run(
        "From 'the green mug costs 9 dollars today', build the product record, then compute the price of 4 mugs")
    assert r.ok, r.error
    asked = ex["struct-mini"].seen[0]
    assert (asked.text, asked.wants_json, asked.schema_id) == ("the green mug costs 9 dollars today", True,
                                                                "product_v1")
    assert ex["reason-mini"].seen[0].text == "compute the price (9) of 4 mugs"
    assert final_output(r.answer) == "36"


def test_a_failed_step_stops_the_chain_and_the_result_is_not_ok():
    ex = team(**{"reason-mini": Never("reason-mini", "math")})
    r = RuntimeEngine("default", ex, judge=passing_judge).run("compute 3 * 3, then write code that prints it")
    assert not r.ok and "step 1 (math): reason-mini cannot do this" in r.error
    assert not ex["code-mini"].seen  # step 2 needed step 1's result
    assert [s.node for s in r.trace] == ["route", "recall", "split", "split.1", "remember", "done"]
    assert r.trace[2].note == "2 steps: math (stopped after step 1)"


def test_a_failed_step_does_not_stop_an_independent_one():
    ex = team(**{"reason-mini": Never("reason-mini", "math")})
    r = RuntimeEngine("default", ex, judge=passing_judge).run("What is 6 * 7? Also, write code that prints 'hi'.")
    assert not r.ok and r.error == "step 1 (math): reason-mini cannot do this"
    assert r.answer == "[math] (failed: reason-mini cannot do this)\n[code] program:\n    def show():\n" \
                       "        print('hi')\n    \n    show()\n[code] hi"


def test_a_rejected_step_is_retried_with_the_reason_then_marked_failed():
    seen = []

    def judge(query, answer, skill):
        seen.append((skill, query.attempt))
        ok = skill != "code"
        return Verdict(ok, float(ok), "executed", "" if ok else "the program does not use 9")

    ex = team()
    r = RuntimeEngine("default", ex, judge=judge).run("compute 3 * 3, then write code that prints it")
    assert not r.ok and r.error == "the check rejected the answer: step 2 (code): the program does not use 9"
    retry = ex["code-mini"].seen[1]
    assert retry.attempt == 1 and retry.context[-1]["text"] == "the previous answer was rejected: the program " \
                                                               "does not use 9"
    # the double answers the same on the retry: no third try (step_retries 1 in default.yaml anyway)
    assert seen == [("math", 0), ("code", 0), ("code", 1)]
    assert r.trace[4].note == "step 2/2: code -> code-mini; given step 1's result; rejected after 2 tries"


def test_one_task_queries_keep_their_old_paths():
    ex = team()
    r = RuntimeEngine("default", ex, judge=passing_judge).run("compute 17 * 23 + 4 in a python function")
    assert [s.node for s in r.trace][:3] == ["route", "recall", "solve"]  # several skills, one step: no split
    fast = RuntimeEngine("default", ex, judge=passing_judge).run("what is 2 + 3?")
    assert [s.node for s in fast.trace] == ["route", "answer", "check", "done"] and fast.answer == "5"


def test_decompose_with_the_real_sandbox_and_judge():
    from neuro_lib.runtime.experts.code import CodeMini
    from neuro_lib.runtime.judge import judge

    code = CodeMini(None, write=lambda text: f"print({NUMBER.findall(text)[0]})".encode())
    r = RuntimeEngine("default", team(**{"code-mini": code}), judge=judge).run(
        "compute 12 * 12 - 4, then write a python program that prints it")
    assert r.ok, r.error
    assert r.answer == "[math] 140\n[code] program:\n    print(140)\n[code] 140"
    assert [s.output["verdict"]["method"] for s in r.trace if s.node.startswith("split.")] == ["recomputed",
                                                                                               "executed"]


def test_wall_clock_budget_stops_between_steps():
    class Slow(Calc):
        def answer(self, query):
            time.sleep(0.3)
            return super().answer(query)

    ex = team(**{"reason-mini": Slow()})
    r = RuntimeEngine("default", ex, judge=passing_judge, wall_s=0.2).run("compute 8 / 2, then multiply it by 3")
    assert not r.ok and len(ex["reason-mini"].seen) == 1


def test_trace_figure_draws_sub_steps_on_their_node():
    from neuro_lib.viz.graph import trace_figure

    eng = RuntimeEngine("default", team(), judge=passing_judge)
    r = eng.run("compute 8 / 2, then multiply it by 3")
    assert r.ok, r.error
    fig = trace_figure(eng.graph, r)
    assert len(fig.frames) == len(r.trace)


# -- graph files -------------------------------------------------------------------------------------------
def _graph(**node):
    return {"name": "g", "entry": "route", "nodes": [{"id": "route", "kind": "router"}, {"id": "x", **node},
                                                      {"id": "done", "kind": "exit"}],
            "edges": [{"from": "route", "to": "x", "when": "multistep"}, {"from": "route", "to": "done"},
                      {"from": "x", "to": "done", "when": "decomposed"}, {"from": "x", "to": "done"}]}


def test_graph_files_with_the_new_kinds():
    assert parse_graph(_graph(kind="decompose", max_steps=3, step_retries=0)).nodes["x"].params == \
        {"max_steps": 3, "step_retries": 0}
    assert parse_graph(_graph(kind="expand", n=2)).nodes["x"].params == {"n": 2}
    with pytest.raises(NeuroError, match="node 'x' \\(decompose\\) has field 'n'"):
        parse_graph(_graph(kind="decompose", n=2))
    with pytest.raises(NeuroError, match="max_steps"):
        parse_graph(_graph(kind="decompose", max_steps=1))
    g = load_graph("default")
    assert g.nodes["split"].kind == "decompose"
    e = load_graph("expand")
    assert e.nodes["widen"].kind == "expand" and e.nodes["widen"].params == {"n": 4}


def test_a_decompose_node_passes_a_one_task_query_on():
    r = RuntimeEngine(parse_graph(_graph(kind="decompose")), team(), judge=passing_judge,
                      router=_Always()).run("what is 4 * 4?")
    # the edge into x needs multistep: a one-task query skips it; forced through, it passes on untouched
    assert [s.node for s in r.trace] == ["route", "done"] and not r.ok  # nothing answered it
    forced = parse_graph({**_graph(kind="decompose"), "edges": [
        {"from": "route", "to": "x"}, {"from": "x", "to": "done", "when": "decomposed"}, {"from": "x", "to": "done"}]})
    r = RuntimeEngine(forced, team(), judge=passing_judge).run("what is 4 * 4?")
    assert r.trace[1].note == "one task: not decomposed" and "without an answer" in r.error


class _Always:
    name = "always-math"

    def route(self, query):
        from neuro_lib.runtime.types import Route

        return Route("fast", ["math"], 0.0, router=self.name)


# -- expansion as a node -----------------------------------------------------------------------------------------
class Guess:
    """A math double whose answer depends on the attempt: attempt k answers `answers[k]` (the last repeats)."""
    name, skills, tools, contract = "reason-mini", ("math",), (), {}

    def __init__(self, answers):
        self.answers, self.seen = answers, []

    def answer(self, query):
        self.seen.append(query.attempt)
        v = self.answers[min(query.attempt, len(self.answers) - 1)]
        return ExpertAnswer(str(v), value=v, model_calls=1, tokens=2)


def judge_value(right):
    def judge(query, answer, skill):
        ok = answer.value == right
        return Verdict(ok, 1.0 if ok else 0.2, "recomputed", "" if ok else f"{answer.value} is not right")
    return judge


def test_expand_node_finds_a_passing_answer_after_retries():
    ex = team(**{"reason-mini": Guess([1, 2, 3, 8, 5])})
    r = RuntimeEngine("expand", ex, judge=judge_value(8), router=_Always()).run("what is 2 ** 3?")
    assert r.ok and r.answer == "8", r.error
    assert [s.node for s in r.trace] == ["route", "solve", "gate", "solve", "gate", "widen", "combine", "done"]
    widen = r.trace[5]
    assert widen.kind == "expand" and widen.note == "best-of-4 on math"
    assert widen.output["math"]["samples"] == [{"text": "8", "passed": True, "score": 1.0}]  # stops at a pass
    assert ex["reason-mini"].seen == [0, 1, 3]  # attempts the retries did not use: new samples


def test_expand_node_votes_when_nothing_passes_and_stays_not_ok():
    ex = team(**{"reason-mini": Guess([1, 2, 7, 7, 9, 7])})
    r = RuntimeEngine("expand", ex, judge=judge_value(100), router=_Always()).run("what is 2 ** 3?")
    assert not r.ok and "the check rejected the answer" in r.error
    widen = next(s for s in r.trace if s.node == "widen")
    assert widen.model_calls == 4 and [x["text"] for x in widen.output["math"]["samples"]] == ["7", "9", "7", "7"]
    assert widen.output["math"]["chosen"] == "7" and r.answer == "7"  # the majority, still marked failed


def test_expand_node_expands_a_multistep_query_recursively():
    class Stubborn:
        name, skills, tools, contract = "reason-mini", ("math",), (), {}

        def __init__(self):
            self.calc, self.seen = Calc(), []

        def answer(self, query):  # the whole two-step question is too much; each step alone is fine
            self.seen.append(query.text)
            if "then" in query.text:
                return ExpertAnswer("1", value=1, model_calls=1)
            return self.calc.answer(query)

    ex = team(**{"reason-mini": Stubborn()})
    r = RuntimeEngine("expand", ex, judge=judge_value_any_step(), router=_Always()).run(
        "compute 30 / 2, then multiply it by 5")
    assert r.ok, r.error
    assert r.answer.splitlines()[-1] == "[math] 75"
    assert [s.node for s in r.trace] == ["route", "solve", "gate", "solve", "gate", "widen", "widen.1", "widen.2",
                                         "combine", "done"]
    assert r.trace[5].note == "recursive: 2 steps"


def judge_value_any_step():
    """Rejects the whole two-step question's answer 1, passes the step answers."""
    def judge(query, answer, skill):
        ok = answer.value != 1
        return Verdict(ok, float(ok), "recomputed", "" if ok else "wrong")
    return judge


def test_best_of_n_selection_and_budget():
    answers = iter([ExpertAnswer("3", value=3), ExpertAnswer("4", value=4), ExpertAnswer("4", value=4)])
    a, v, samples = best_of_n(lambda k: next(answers), lambda a: Verdict(False, 0.1 * a.value, "none"), 3)
    assert a.value == 4 and len(samples) == 3  # the majority value
    a, v, samples = best_of_n(lambda k: ExpertAnswer(str(k), value=k),
                              lambda a: Verdict(a.value == 1, 1.0, "none"), 3)
    assert a.value == 1 and v.passed
    calls = []
    best_of_n(lambda k: calls.append(k) or ExpertAnswer("x", value=1), lambda a: Verdict(False, 0.0, "none"), 5,
              deadline=time.monotonic() - 1)
    assert calls == [0]  # past the deadline: one answer, no more
    with pytest.raises(NeuroError, match="n >= 1"):
        best_of_n(lambda k: None, lambda a: None, 0)


def test_expand_without_rejections_does_nothing():
    ex = team()
    r = RuntimeEngine("expand", ex, judge=passing_judge, router=_Always()).run("what is 2 + 2?")
    assert r.ok and [s.node for s in r.trace] == ["route", "solve", "gate", "combine", "done"]
    doc = {"name": "e", "entry": "route", "nodes": [
        {"id": "route", "kind": "router"}, {"id": "ask", "kind": "expert"}, {"id": "more", "kind": "expand"},
        {"id": "done", "kind": "exit"}],
        "edges": [{"from": "route", "to": "ask"}, {"from": "ask", "to": "more"}, {"from": "more", "to": "done"}]}
    r = RuntimeEngine(parse_graph(doc), team(), judge=passing_judge, router=_Always()).run("what is 2 + 2?")
    assert r.ok and r.trace[2].note == "every answer passed: nothing to expand"  # judged first, then passed
    bare = {**doc, "edges": [{"from": "route", "to": "more"}, {"from": "more", "to": "done"}],
            "nodes": [n for n in doc["nodes"] if n["id"] != "ask"]}
    r = RuntimeEngine(parse_graph(bare), team(), judge=passing_judge, router=_Always()).run("what is 2 + 2?")
    assert not r.ok and "has no answers to expand" in r.error


def test_rejected_steps_are_not_resampled_by_expand_after_a_decomposition():
    doc = {"name": "d", "entry": "route", "nodes": [
        {"id": "route", "kind": "router"}, {"id": "split", "kind": "decompose", "step_retries": 0},
        {"id": "more", "kind": "expand", "n": 2}, {"id": "done", "kind": "exit"}],
        "edges": [{"from": "route", "to": "split"}, {"from": "split", "to": "more"}, {"from": "more", "to": "done"}]}
    ex = team()
    r = RuntimeEngine(parse_graph(doc), ex, judge=judge_value(-1)).run("compute 8 / 2, then multiply it by 3")
    assert not r.ok and r.trace[-2].note == "best-of-2 on nothing resampleable"
    assert len(ex["reason-mini"].seen) == 2  # the two steps, asked once each



@pytest.mark.parametrize("unit", [" ", "[", "(", "if ", ", ", "the ", "'", " and", ", then", "if x then "])
def test_splitter_on_a_hostile_query_of_the_longest_length(unit):
    """Every rule scans the text once (no rule backtracks from each start): the engine's longest query splits."""
    from neuro_lib.runtime.engine import MAX_QUERY_CHARS

    text = "x" + unit * (MAX_QUERY_CHARS // len(unit) - 10) + " then y"
    steps = split_query(text)
    assert 1 <= len(steps) <= 4 and steps[-1].text.endswith("y")  # nothing dropped, at most MAX_STEPS pieces
    assert hand_off(text, "5").count("5") <= 1
