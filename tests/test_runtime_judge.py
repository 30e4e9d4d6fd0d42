"""The judge: rule checks on fixed right and wrong answers (schema, executed, recomputed), the trained judge
model on a tiny index, pairwise judging and its consistency when the answers swap places."""
import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.judge import JudgeModel, examples, features, judge, pairwise
from neuro_lib.runtime.experts.reason import solve
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall

PROBLEM = Query("A car drives at 45 kilometers per hour for 3 hours. How many meters does it travel?")


def calc(expr, value, ok=True):
    return ToolCall("calc", {"expression": expr}, ok, value)


def math_answer(text, calls=(), plan=""):
    return ExpertAnswer(text, value=text, tool_calls=list(calls), meta={"plan": plan})


# -- math: recomputed -----------------------------------------------------------------------------------------
RIGHT_CALLS = [calc("45*3", 135), calc("135*1000", 135000)]


@pytest.mark.parametrize("answer,passed,why", [
    (math_answer("135000", RIGHT_CALLS), True, "every step"),
    (math_answer("135001", RIGHT_CALLS), False, "not the last result"),                  # answer != last result
    (math_answer("13500", [calc("45*3", 135), calc("135*100", 13500)]), False, "100"),   # 100 is not in the problem
    (math_answer("136000", [calc("45*3", 136), calc("136*1000", 136000)]), False, "is 135"),  # a wrong result used
    (math_answer("90000", [calc("45*2", 90), calc("90*1000", 90000)]), False, "2 is not"),  # misread the problem
    (math_answer("135000", plan="CALL calc(45*3) -> 135\nCALL calc(135*1000) -> 135000\nANSWER 135000"), True, ""),
    (math_answer("13000", plan="CALL calc(45*3) -> 13\nCALL calc(13*1000) -> 13000\nANSWER 13000"), False, "is 135"),
    (math_answer("7"), False, "no calculator steps"),
])
def test_math_is_recomputed(answer, passed, why):
    v = judge(PROBLEM, answer, "math")
    assert v.passed is passed and v.method == "recomputed" and why in v.reason
    assert (v.score == 1.0) is passed and 0.0 <= v.score <= 1.0


def test_every_generated_plan_passes_and_an_off_by_one_answer_fails():
    from neuro_lib.data.word_problems import make_problems
    for p in make_problems(120, seed=5, split="heldout"):
        calls = [calc(e, v) for e, v in zip(p.steps, p.values)]
        assert judge(Query(p.text), math_answer(p.answer, calls), "math").passed, p.text
        assert not judge(Query(p.text), math_answer(str(int(p.values[-1]) + 1), calls), "math").passed


def test_math_judge_on_the_tool_loops_own_answers():
    plan = b"CALL calc(45*3) -> 130\nCALL calc(130*1000) -> 130000\nANSWER 130000"  # the model's arithmetic is off

    def write(source, stop, processor=None):  # without the tool the plan is written in one call
        return plan

    assert not judge(PROBLEM, solve(write, PROBLEM.text, use_tool=False), "math").passed  # 45*3 is not 130


# -- json: schema ---------------------------------------------------------------------------------------------
def test_json_is_checked_against_the_querys_schema():
    q = Query("A blue kettle for $12.50.", wants_json=True, schema_id="product_v1")
    good = ExpertAnswer('{"name":"blue kettle","price":12.5,"currency":"USD"}')
    assert judge(q, good, "json").passed and judge(q, good, "json").method == "schema"
    # valid but made up: a name and a price the description does not hold
    for text, bad in (('{"name":"red keyboard","price":12.5,"currency":"USD"}', "'red keyboard'"),
                      ('{"name":"blue kettle","price":125,"currency":"USD"}', "125")):
        v = judge(q, ExpertAnswer(text), "json")
        assert not v.passed and v.score == 0.5 and v.reason.endswith(f"{bad} is not in the input"), v
    for text in ('{"name":"blue kettle","price":-1,"currency":"USD"}', '{"name":"x"', "not json"):
        v = judge(q, ExpertAnswer(text), "json")
        assert not v.passed and v.score == 0.0 and v.reason
    assert "no schema" in judge(Query("x"), good, "json").reason
    assert not judge(Query("x", schema_id="nope"), good, "json").passed


# -- code: executed -------------------------------------------------------------------------------------------
CODE_Q = Query("sum of squares of numbers from 3 to 9")


def code_answer(text, program):
    return ExpertAnswer(text, value=text, meta={"program": program})


@pytest.mark.parametrize("text,program,passed", [
    ("280", "print(sum(i*i for i in range(3, 9+1)))", True),
    ("281", "print(sum(i*i for i in range(3, 9+1)))", False),   # the answer is not what the program prints
    ("280", "print(1/0)", False),                               # the program fails on re-run
    ("280", "print(280)", False),                               # does not use the task's numbers
    ("", "", False),                                            # no program
])
def test_code_is_executed_again(text, program, passed):
    v = judge(CODE_Q, code_answer(text, program), "code")
    assert v.passed is passed and v.method == "executed"


def test_a_failed_expert_fails_and_unknown_skills_are_refused():
    v = judge(CODE_Q, ExpertAnswer("", ok=False, error="boom"), "code")
    assert not v.passed and "boom" in v.reason
    with pytest.raises(NeuroError, match="unknown skill"):
        judge(CODE_Q, ExpertAnswer("x"), "poetry")
    assert judge(Query("hi"), ExpertAnswer("hello"), "chat").method == "none"


# -- the judge model ------------------------------------------------------------------------------------------
def test_judge_model_scores_gold_answers_above_corrupted_ones(tiny_index):
    m = JudgeModel.train(tiny_index, n=50, seed=0)
    xs, ys = examples(tiny_index, "test", 50, seed=1)
    p = m.clf.predict_proba(m.vectorizer.transform(xs))[:, 1]
    right = [s for s, y in zip(p, ys) if y == 1]
    wrong = [s for s, y in zip(p, ys) if y == 0]
    assert right and wrong and sum(right) / len(right) > sum(wrong) / len(wrong)
    f = features("In socketlib, which exception is raised if closed?", "ValueError", "Raises ValueError if closed.")
    assert f["found"] == 1.0 and f["kind=raises|shape=exception"] == 1.0
    q = tiny_index.questions[0]
    passage = tiny_index.passages[tiny_index.by_id[q.passage_id]]
    gold = ExpertAnswer(q.answer, citations=[{"passage_id": passage.id, "start": q.answer_start,
                                              "end": q.answer_end}],
                        meta={"retrieved": [{"passage_id": passage.id, "start": passage.start, "end": passage.end}]})
    v = judge(Query(q.text), gold, "retrieval", m)
    assert v.method == "model" and 0.0 <= v.score <= 1.0
    # without a model: the support check; a passage with no retrieval score cannot clear its bar (undecided)
    assert judge(Query(q.text), gold, "retrieval").method == "none"


# -- pairwise -------------------------------------------------------------------------------------------------
MIRROR = {"a": "b", "b": "a", "tie": "tie"}
CASES = [
    (PROBLEM, "math", math_answer("135000", RIGHT_CALLS), math_answer("135001", RIGHT_CALLS)),
    (CODE_Q, "code", code_answer("280", "print(sum(i*i for i in range(3, 9+1)))"), code_answer("280", "print(1/0)")),
    (Query("k", schema_id="product_v1"), "json", ExpertAnswer('{"name":"k","price":1,"currency":"USD"}'),
     ExpertAnswer('{"name":"k"}')),
]


@pytest.mark.parametrize("query,skill,right,wrong", CASES)
def test_pairwise_prefers_the_right_answer_whichever_side_it_is_on(query, skill, right, wrong):
    assert pairwise(query, right, wrong, skill) == "a"
    assert pairwise(query, wrong, right, skill) == "b"
    assert pairwise(query, right, right, skill) == "tie"


def test_pairwise_breaks_equal_verdicts_by_cost_and_is_swap_consistent():
    cheap = math_answer("135000", RIGHT_CALLS)
    dear = math_answer("135000", RIGHT_CALLS)
    cheap.model_calls, dear.model_calls = 2, 3
    assert pairwise(PROBLEM, cheap, dear, "math") == "a" and pairwise(PROBLEM, dear, cheap, "math") == "b"
    answers = [c[2] for c in CASES[:1]] + [c[3] for c in CASES[:1]] + [cheap, dear, math_answer("7")]
    for a in answers:
        for b in answers:
            assert pairwise(PROBLEM, b, a, "math") == MIRROR[pairwise(PROBLEM, a, b, "math")]


# -- the bench suite's refusals (its full run trains the experts: `neuro bench experts`) ----------------------
@pytest.mark.parametrize("argv,msg", [(["--n", "-1"], "--n"), (["--profile", "huge"], "unknown profile"),
                                      (["--experts", "reason,vision"], "unknown expert 'vision'")])
def test_bench_experts_refuses_bad_arguments_before_any_work(argv, msg):
    import argparse

    from neuro_lib.bench import SUITES
    p = argparse.ArgumentParser()
    SUITES["experts"].add_arguments(p)
    with pytest.raises(NeuroError, match=msg):
        SUITES["experts"].run(p.parse_args(argv))
    with pytest.raises(SystemExit):  # the shared --threads flag (bench/flags.py) is checked as it is parsed
        p.parse_args(["--threads", "-1"])
