"""The broad Reason-mini and Code-mini generators (data/broad_problems.py, data/broad_code.py): held-out phrasings
never in training, plans that recompute with the calculator and pass the expert's grounding, programs that print
their expected output in the sandbox; the variants of data/sft.py, the base's mixture pinned to the original
generators (its bytes hash as before), and fine-tunes of new data get a new identity and cache folder."""
import hashlib
import re

import pytest
import torch

from neuro_lib.data.broad_code import CODE_FAMILIES, make_broad_code_tasks
from neuro_lib.data.broad_problems import (DISTRACTORS, N_HELDOUT_DISTRACTORS, N_HELDOUT_Q, REASON_FAMILIES,
                                           fixed_words, make_broad_problems)
from neuro_lib.data.sft import VARIANTS, task_pairs, task_variant
from neuro_lib.data.word_problems import fmt_number, make_code_tasks, make_problems, plan_constants
from neuro_lib.errors import NeuroError
from neuro_lib.infer.grounding import NumbersFrom, numbers_in
from neuro_lib.profiles import get_profile
from neuro_lib.runtime.experts.code import run_program
from neuro_lib.runtime.experts.reason import allowed_numbers, parse_plan
from neuro_lib.tools import get_tool

# sha256 of data/mixture.py's "tasks" source tokens (build_tasks, then one MARK after each document) as the cached
# bench and smoke bases (base-bench-fd45ee937bbeafe9, base-smoke-6f7d85e1f0fd9116) were pretrained on
MIXTURE_TASKS_SHA256 = "ff4d2c5fe66fd7733ff908ac45564f1dae76b51a2c994671d3e79df3c0426a27"


def _reason_phrasings(fam):
    """Every phrasing list of a family with its held-out count: the questions, then each fact."""
    return [(fam.questions, N_HELDOUT_Q)] + [(f, 1) for f in fam.facts if len(f) > 1]


def test_reason_heldout_phrasings_never_appear_in_training():
    train, held = make_broad_problems(3000, seed=0), make_broad_problems(600, seed=0, split="heldout")
    texts = " ".join(p.text for p in train)
    for name, fam in REASON_FAMILIES.items():
        n = len(fam.questions)
        assert {p.template for p in train if p.family == name} <= set(range(n - N_HELDOUT_Q)), name
        assert {p.template for p in held if p.family == name} <= set(range(n - N_HELDOUT_Q, n)), name
        for phrasings, k in _reason_phrasings(fam):
            for phrasing in phrasings[len(phrasings) - k:]:
                for piece in fixed_words(phrasing):
                    assert piece not in texts, (name, piece)
    for d in DISTRACTORS[-N_HELDOUT_DISTRACTORS:]:
        for piece in fixed_words(d):
            assert piece not in texts, piece
    assert make_broad_problems(5, seed=3) == make_broad_problems(5, seed=3) != make_broad_problems(5, seed=4)
    with pytest.raises(ValueError):
        make_broad_problems(1, split="test")


def test_code_heldout_phrasings_never_appear_in_training():
    train = make_broad_code_tasks(3000, seed=0)
    held = make_broad_code_tasks(300, seed=0, split="heldout")
    texts = " ".join(t.text for t in train)
    for name, fam in CODE_FAMILIES.items():
        n = len(fam.phrasings)
        assert {t.template for t in train if t.family == name} <= set(range(n - N_HELDOUT_Q)), name
        assert {t.template for t in held if t.family == name} <= set(range(n - N_HELDOUT_Q, n)), name
        for piece in fixed_words(fam.phrasings[-1]):
            assert piece not in texts, (name, piece)
    with pytest.raises(ValueError):
        make_broad_code_tasks(1, split="test")


def test_broad_generators_cover_many_families_and_words():
    ps = make_broad_problems(2000, seed=1)
    assert len(REASON_FAMILIES) >= 30 and {p.family for p in ps} == set(REASON_FAMILIES)
    assert len({w for p in ps for w in re.findall(r"[A-Za-z]+", p.text)}) > 600  # open vocabularies
    assert len(CODE_FAMILIES) >= 50 and {t.family for t in make_broad_code_tasks(400, seed=1)} == set(CODE_FAMILIES)


def test_reason_plans_recompute_with_the_calculator_and_use_only_grounded_numbers():
    calc = get_tool("calc")
    for split in ("train", "heldout"):
        for p in make_broad_problems(2 * len(REASON_FAMILIES), seed=2, split=split):
            steps, answer = parse_plan(p.target.decode())
            assert [e for e, _ in steps] == p.steps and answer == p.answer, p
            known = numbers_in(p.text.encode()) | {c.encode() for c in plan_constants(p.text)}
            for expr, claimed in steps:
                r = calc.call({"expression": expr})
                assert r.ok and fmt_number(r.value) == claimed, (p.text, expr)
                unread = [x for x in re.findall(rb"\d+(?:\.\d+)?", expr.encode()) if x not in known]
                assert not unread, (p.text, expr, unread)
                known.add(claimed.encode())


def test_the_experts_grounding_never_blocks_a_generated_plan():
    """Feed each target through NumbersFrom byte by byte (the tool's results as written): the next byte is always
    allowed, so grounded decoding can write every plan the generator teaches (nested parentheses included)."""
    for p in make_broad_problems(len(REASON_FAMILIES), seed=3, split="heldout"):
        allowed = allowed_numbers(p.text)
        nums = NumbersFrom(allowed)
        target = p.target
        for i in range(len(target)):
            if target[:i].endswith(b" -> "):  # a result the tool injects becomes a number later calls may use
                allowed.add(target[i:].split(b"\n")[0])
            out = nums(list(target[:i]), torch.zeros(257))
            assert out[target[i]] > float("-inf"), (p.text, target[:i + 1])
        assert nums.fallbacks == 0


def test_code_programs_print_the_expected_output_in_the_sandbox():
    tasks = make_broad_code_tasks(len(CODE_FAMILIES), seed=4, split="heldout")  # one per family
    for t in tasks:
        a, value = run_program(t.program)
        assert a.ok and a.text == t.expected and value["exit_code"] == 0, (t.program, value)
        assert t.program.splitlines()[-1].startswith("print(")


def test_plan_constants_are_the_numbers_words_bring():
    assert plan_constants("Convert 3 km to meters.") == {"1000"}
    assert plan_constants("How many kilometers is 4000 meters?") == {"1000"}
    assert "100" in plan_constants("What is 15% of 80?") and "100" in plan_constants("a 12 percent tip")
    assert {"3", "5"} <= plan_constants("Five friends eat a third of the 60 cookies.")
    assert "1200" in plan_constants("It costs $1,200.")
    assert {"2", "3"} <= plan_constants("What is the average of 4, 8 and 9?")
    assert plan_constants("kilometers of rope") == set()  # one unit named: no pair, no factor


def test_variants_pin_the_original_generators():
    assert task_variant("reason") == VARIANTS["reason"][-1] == "broad" and task_variant("chat") == "templated"
    old = task_pairs("reason", 5, seed=1, variant="templated")
    assert [p.meta for p in old] == make_problems(5, seed=1)
    assert [p.meta for p in task_pairs("code", 5, seed=1, variant="templated")] == make_code_tasks(5, seed=1)
    assert [p.meta for p in task_pairs("code", 5, seed=1)] == make_broad_code_tasks(5, seed=1)
    with pytest.raises(NeuroError, match="no 'broad' variant"):
        task_pairs("chat", 1, variant="broad")


def test_the_base_mixtures_task_documents_are_unchanged():
    """The bases' cache keys cover the mixture's task documents: they must stay the original generators' bytes."""
    from neuro_lib.data.mixture import _tokens, build_tasks
    assert hashlib.sha256(_tokens(build_tasks()).tobytes()).hexdigest() == MIXTURE_TASKS_SHA256


def test_new_training_data_is_a_new_fine_tune():
    from neuro_lib.runtime.experts import _recipe_tag
    from neuro_lib.train.finetune import default_steps, recipe
    p = get_profile("smoke")
    s = p.tasks.family.finetune
    assert default_steps("reason", p) == s.steps * s.task_scale["reason"] and default_steps("struct", p) == s.steps
    assert recipe("reason", p, 10, 0, 0)["data"] == "broad" and "data" not in recipe("chat", p, 10, 0, 0)
    assert _recipe_tag("chat", p) == ""  # children of the original data and steps keep their folders
    tag = _recipe_tag("reason", p)
    assert re.fullmatch(r"-[0-9a-f]{8}", tag) and tag != _recipe_tag("code", p)
