"""The outside evaluation sets (data/eval/): they load, hold at least 100 items per family, their golds are
right (JSON against the schemas, code by reference solutions run in the sandbox), and the scorers and floors
(bench/outside.py, bench/floors.py) mark right and wrong answers as such."""
import json
from fractions import Fraction

import pytest

from eval_code_reference import REFERENCE
from test_bench_runtime import Lookup  # answers its family from a table, others wrongly
from neuro_lib.bench.floors import json_floor, math_floor
from neuro_lib.profiles import OutsideEvalSizes
from neuro_lib.bench.outside import (final_output, is_refusal, json_scores, oracle, outside_sizes,
                                     run_and_score_code, score, summarise, system_rows)
from neuro_lib.data.eval_sets import FAMILIES, EvalItem, load_set, load_sets, parse_number, spread
from neuro_lib.errors import NeuroError
from neuro_lib.runtime.types import ExpertAnswer
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify

SETS = load_sets()


def item(family, id_):
    return next(i for i in SETS[family] if i.id == id_)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_set_loads_with_at_least_100_unique_items(family):
    items = SETS[family]
    assert len(items) >= 100
    assert len({i.id for i in items}) == len(items)
    assert all(i.input.strip() and i.type for i in items)


def test_math_golds_are_exact_numbers():
    for it in SETS["math"]:
        assert parse_number(it.gold) == Fraction(it.gold)
    assert {"division", "percent", "rate", "unit_price", "multistep"} <= {i.type for i in SETS["math"]}


def test_every_json_gold_validates_and_all_six_schemas_are_covered():
    for it in SETS["json"]:
        assert verify(it.gold, load_schema(it.schema)) == [], it.id
    assert {i.schema for i in SETS["json"]} == {"product_v1", "event_v1", "order_v1", "person_v1", "recipe_v1",
                                                 "weather_v1"}


def test_retrieval_has_facts_and_at_least_25_refusals():
    answerable = [i for i in SETS["retrieval"] if not i.refuse]
    absent = [i for i in SETS["retrieval"] if i.refuse]
    assert len(absent) >= 25 and all(i.gold is None for i in absent)
    assert all(isinstance(i.gold, str) and i.gold for i in answerable)
    assert sum("." in i.input for i in answerable) >= 100  # they name functions (heapq.heappop, os.path.join)


@pytest.mark.slow
def test_every_code_gold_is_what_its_reference_solution_prints_in_the_sandbox():
    assert set(REFERENCE) == {i.id for i in SETS["code"]}
    for it in SETS["code"]:
        assert run_and_score_code(it, REFERENCE[it.id]), it.id


def test_code_scorer_runs_programs_in_the_sandbox():
    it = item("code", "code-001")
    assert run_and_score_code(it, REFERENCE["code-001"])
    assert not run_and_score_code(it, "print('neuron')")
    assert not run_and_score_code(it, "raise SystemExit(3)")


def test_scorers_mark_known_right_and_wrong_answers():
    m = item("math", "math-021")  # 216 / 8
    assert score(m, "Each pays $27.") and score(m, "27.00") and not score(m, "26") and not score(m, "")
    c = item("code", "code-002")
    assert score(c, "dlrow olleh\n") and not score(c, "hello world")
    r = next(i for i in SETS["retrieval"] if i.input == "What does heapq.heappop return?")
    assert score(r, "Pop the smallest item off the heap, maintaining the heap invariant.")
    assert not score(r, "Push item onto heap.") and not score(r, "", ok=False)
    absent = next(i for i in SETS["retrieval"] if i.refuse)
    assert score(absent, "", ok=False) and score(absent, "I don't know: it is not in the corpus.")
    assert not score(absent, "It returns a list.")
    j = item("json", "json-009")
    assert score(j, "", value=dict(j.gold)) and score(j, json.dumps(j.gold))
    assert not score(j, "", value={**j.gold, "price": 13})
    k = item("compound", "compound-001")  # 17 * 23 + 4
    assert score(k, "[math] 395\n[code] 395") and score(k, "395") and not score(k, "[math] 395\n[code] 394")
    s = next(i for i in SETS["compound"] if i.gold == "DNUOPMOC")
    assert score(s, "[code] DNUOPMOC") and not score(s, "[code] dnuopmoc")


def test_json_scores_give_field_accuracy_and_validity():
    j = item("json", "json-009")  # the red umbrella
    s = json_scores(j, {**j.gold, "price": 13})
    assert not s["exact"] and s["valid"] and s["field_accuracy"] == pytest.approx(3 / 4)
    assert json_scores(j, "not json") == {"exact": False, "field_accuracy": 0.0, "valid": False}


def test_summary_counts_coverage_selective_accuracy_and_wrong_marked_ok():
    items = [EvalItem(str(n), "math", "t", "q", "1") for n in range(4)]
    t = summarise(items, right=[True, True, False, False], marked_ok=[True, False, True, False])
    assert t["all"] == {"n": 4, "success": 0.5, "coverage": 0.5, "selective_accuracy": 0.5, "wrong_marked_ok": 0.5}
    rows = system_rows("x", t)
    assert rows[0]["name"] == "outside x: math success" and rows[0]["value"] == 0.5
    assert oracle({"a": [True, False, False], "b": [False, False, True]}) == [True, False, True]


def test_refusals_and_final_output():
    assert is_refusal("", True) and is_refusal("anything", False) and is_refusal("That is not in the corpus.")
    assert not is_refusal("Pop the smallest item")
    assert final_output("[math] 12\n[code] 13") == "13" and final_output("plain") == "plain"


def test_floors_on_written_examples():
    assert math_floor("What is 48 divided by 6?") == "8"
    assert math_floor("A jacket costs 120 dollars and is on sale at 25% off. What is the sale price?") == "90"
    assert math_floor("Tell me a story.") is None
    doc = json_floor("The red umbrella is 12 GBP (SKU UMB-0007).", "product_v1")
    assert doc == {"name": "red umbrella", "price": 12, "currency": "GBP", "sku": "UMB-0007"}
    for it in SETS["json"]:  # the extractor never writes a field its schema refuses
        d = json_floor(it.input, it.schema)
        assert not [e for e in verify(d, load_schema(it.schema)) if e.location]


def test_spread_keeps_every_type_and_sizes_follow_the_profile():
    items = SETS["math"]
    picked = spread(items, 20)
    assert len(picked) == 20 and {i.type for i in picked} == {i.type for i in items}
    assert spread(items, 0) == items
    assert outside_sizes(OutsideEvalSizes(n_per_family=7), counts=True) == {f: 7 for f in FAMILIES}
    assert outside_sizes(OutsideEvalSizes(n_per_family=7), 0, counts=True)["math"] == len(items)
    with pytest.raises(NeuroError):
        outside_sizes(OutsideEvalSizes(n_per_family=7), -2)


def test_bad_files_fail_in_one_sentence(tmp_path):
    with pytest.raises(NeuroError, match="unknown evaluation family"):
        load_set("poetry")
    with pytest.raises(NeuroError, match="missing"):
        load_set("math", tmp_path)
    (tmp_path / "math.jsonl").write_text('{"id": "a", "type": "t", "input": "q"}\n')
    with pytest.raises(NeuroError, match="lacks gold"):
        load_set("math", tmp_path)
    (tmp_path / "math.jsonl").write_text('{"id": "a", "type": "t", "input": "q", "gold": "1"}\n' * 2)
    with pytest.raises(NeuroError, match="repeats an id"):
        load_set("math", tmp_path)


class _Fixed:
    """A stub expert: the gold answer (or a wrong one) for the items it is given."""

    def __init__(self, golds: dict, right: bool):
        self.golds, self.right = golds, right

    def answer(self, query):
        gold = self.golds[query.text]
        return ExpertAnswer(str(gold) if self.right else "nonsense 0", ok=True, value=gold if self.right else None)


def test_outside_experts_table_with_stub_experts():
    from neuro_lib.bench.runtime import outside_experts

    items = [item("math", "math-001"), item("code", "code-003"), item("json", "json-001")]
    golds = {i.input: i.gold for i in items}
    golds[items[1].input] = items[1].gold.strip()
    out = outside_experts({"right": _Fixed(golds, True), "wrong": _Fixed(golds, False)}, items)
    assert out["right"]["right"] == [True, True, True] and out["wrong"]["right"] == [False, False, False]
    t = summarise(items, out["wrong"]["right"], out["wrong"]["ok"])
    assert t["all"]["wrong_marked_ok"] == 1.0 and t["all"]["coverage"] == 1.0


def test_run_outside_end_to_end_with_lookup_experts(monkeypatch):
    from neuro_lib.bench import runtime as bench
    from neuro_lib.profiles import get_profile
    from neuro_lib.runtime.router import KeywordRouter

    sets = load_sets(n_per_family=3)
    table = {f: {i.input: (i.gold.strip() if isinstance(i.gold, str) else i.gold) for i in sets[f]}
             for f in ("math", "code", "json")}
    experts = {"reason-mini": Lookup("reason-mini", "math", table["math"]),
               "code-mini": Lookup("code-mini", "code", table["code"]),
               "struct-mini": Lookup("struct-mini", "json", table["json"]),
               "retrieval": Lookup("retrieval", "retrieval", {}), "general": Lookup("general", "chat", {})}
    monkeypatch.setattr("neuro_lib.runtime.experts.build_experts", lambda profile: experts)
    args = type("Args", (), {"profile": "smoke", "n_outside": 3})()
    routers = [{"classifier": KeywordRouter(), "keywords": KeywordRouter()}]
    rows, details = bench.run_outside(args, get_profile("smoke"), routers, [0])
    by = {r["name"]: r for r in rows}
    assert by["outside reason-mini alone: math success"]["value"] == 1.0
    assert by["outside code-mini alone: code success"]["value"] == 1.0
    assert by["outside struct-mini alone: json exact"]["value"] == 1.0
    assert by["outside oracle router: math success"]["value"] == 1.0
    assert by["outside oracle router: compound success"]["value"] == 0.0  # nobody answers a chain here
    assert by["outside general alone: all success"]["wrong_marked_ok"] == 1.0  # "no idea" came back ok
    assert "outside routed (keywords): all success" in by and "outside rule floors: json exact" in by
    assert len(details["items"]) == 15
