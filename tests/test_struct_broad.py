"""Struct-mini's broad generator (structured/broad.py) and its place in data/sft.py (that the base does not change
is tests/test_broad_problems.py's)."""
import json
import re

import pytest

from neuro_lib.data.sft import task_pairs
from neuro_lib.errors import NeuroError
from neuro_lib.infer.grounding import dates_in, minutes_in, source_numbers, times_in
from neuro_lib.profiles import get_profile
from neuro_lib.structured.broad import SCHEMAS, make_broad_examples, word_pool
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.task import GROUNDED, make_examples
from neuro_lib.structured.verify import verify_text
from tests.conftest import grounded_values


def test_examples_cover_six_schemas_and_are_valid():
    train, held = make_broad_examples(240, seed=0), make_broad_examples(120, seed=0, split="heldout")
    assert {e.schema_id for e in held} == set(SCHEMAS) == set(GROUNDED)
    for ex in train + held:
        assert verify_text(ex.target, load_schema(ex.schema_id))[1] == [], (ex.text, ex.target)
        assert json.loads(ex.target) == ex.doc and ex.source.startswith(ex.schema_id.encode())
        assert len(ex.source) + len(ex.target) + 2 <= get_profile("bench").tasks.family.finetune.max_len
    assert make_broad_examples(7, seed=3) == make_broad_examples(7, seed=3)
    assert make_broad_examples(7, seed=3) != make_broad_examples(7, seed=4)
    with pytest.raises(ValueError, match="split"):
        make_broad_examples(1, split="test")


def test_vocabulary_is_open():
    pool = word_pool()
    assert len(pool) > 1000 and all(re.fullmatch(r"[a-z]{3,10}", w) for w in pool)
    ex = make_broad_examples(600, seed=1)
    names = {e.doc["name"] for e in ex if e.schema_id == "product_v1"}
    cities = {e.doc["city"] for e in ex if e.schema_id == "weather_v1"}
    assert len(names) > 90 and len(cities) > 80  # nearly every example its own value (the narrow generator: 100 / 10)


def test_every_gold_value_is_reachable_under_grounding():
    """What grounded decoding allows must include the gold: spans are whole-word substrings, numbers are stated."""
    for ex in make_broad_examples(300, seed=2) + make_broad_examples(120, seed=2, split="heldout"):
        src = ex.text.encode()
        for field, value in grounded_values(ex.doc, GROUNDED[ex.schema_id]):
            kind = GROUNDED[ex.schema_id][field]
            if kind == "span":
                assert re.search(rb"(?<![\w\x80-\xff])" + re.escape(value.encode()) + rb"(?![\w\x80-\xff])", src), \
                    (field, value, ex.text)
            elif kind in ("date", "time"):
                assert value.encode() in (dates_in if kind == "date" else times_in)(src), (field, value, ex.text)
            else:
                lits = source_numbers(src) if kind == "number" else minutes_in(src)
                assert any(float(x) == value for x in lits), (field, value, ex.text)


def test_heldout_wordings_are_unseen_in_training():
    train = " ".join(e.text for e in make_broad_examples(1200, seed=5))
    held = " ".join(e.text for e in make_broad_examples(300, seed=5, split="heldout"))
    for marker in ("New in:", "Grandma's", "Over in ", "Invite ", "Ref ORD-", "New member ", "yours for"):
        assert marker not in train and marker in held, marker


def test_sft_struct_is_broad_and_the_mixture_keeps_the_templates():
    assert [p.meta for p in task_pairs("struct", 5, seed=1)] == make_broad_examples(5, seed=1)
    assert [p.meta for p in task_pairs("struct", 5, seed=1, variant="templated")] == make_examples(5, seed=1)
    with pytest.raises(NeuroError, match="no 'wide' variant"):
        task_pairs("struct", 1, variant="wide")
    from neuro_lib.train.finetune import recipe
    p = get_profile("smoke")
    assert recipe("struct", p, 10, 0, 0)["data"] == "broad" and "data" not in recipe("chat", p, 10, 0, 0)
