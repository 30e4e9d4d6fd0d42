"""Grounded decoding (infer/grounding.py): spans and numbers of the input under the JSON grammar, calculator numbers
from the question, and a tool's result injected as forced tokens on the same cache (equal to a full forward)."""
import json
import re

import pytest
import torch

from neuro_lib.data.sft import MARK, prompt_ids
from neuro_lib.infer.engine import Engine, Sampling, generate
from neuro_lib.infer.grounding import (GroundedJson, NumbersFrom, ToolInjector, chain, dates_in, minutes_in,
                                      numbers_in, source_numbers, times_in)
from neuro_lib.models import build_model
from neuro_lib.runtime.experts.reason import CALL_TRIGGER, allowed_numbers, calc_injector
from neuro_lib.structured.constrain import JsonConstraint
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.task import GROUNDED, make_examples
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tools import get_tool
from neuro_lib.train.seq2seq import aeron_config
from tests.conftest import grounded_values

TINY = dict(vocab_size=257, d_model=32, n_head=2, n_kv_head=1, d_ff=64, rope_theta=10_000.0, dropout=0.0)


def tiny_decoder(seed=0, max_len=512):
    torch.manual_seed(seed)
    return build_model("aeron", **aeron_config("decoder", TINY, 1, 1, max_len)).eval()


class Force:
    """A test processor that forces `text` at the start of the output (what a trained model would write), one
    piece up to each " -> " at a time so that a tool sees every call."""

    def __init__(self, text: bytes):
        self.text = text

    def forced(self, ids):
        rest = self.text[len(ids):]
        cut = rest.find(b"-> ")
        return list(rest[:cut + 3] if cut >= 0 else rest)

    def __call__(self, ids, logits):
        return logits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grounded_json_values_are_spans_and_numbers_of_the_description(seed):
    """An untrained model sampled at temperature 1: whatever it writes, each grounded string is a span of the
    description and each grounded number is written in it, digit for digit; the document stays valid."""
    model, tok = tiny_decoder(seed), ByteTokenizer()
    checked = 0
    for ex in make_examples(6, seed=seed, split="heldout"):
        fields = GROUNDED[ex.schema_id]
        c = JsonConstraint(load_schema(ex.schema_id), tok, budget=256, name=ex.schema_id)
        g = GroundedJson(c, ex.text.encode(), fields)
        out = generate(model, tok, prompt_ids(ex.source), max_new_tokens=256, temperature=1.0, seed=seed,
                       processor=g, eos_id=MARK)
        doc = json.loads(out)
        assert c.accepts(out, tok)
        raw = out.decode()
        for field, value in grounded_values(doc, fields):
            if field in g.ungrounded:  # the grammar refused every candidate the text offers: left to it
                continue
            if fields[field] == "span":
                assert isinstance(value, str) and value in ex.text, (field, value, ex.text)
            elif fields[field] in ("date", "time"):
                assert value.encode() in g.choices[fields[field]], (field, value, ex.text)
            else:
                written = re.search(rf'"{field}":(-?[\d.]+)', raw).group(1)
                assert written.encode() in g.candidates[fields[field]], (field, written, ex.text)
                assert fields[field] == "minutes" or written.encode() in numbers_in(ex.text.encode())
            checked += 1
    assert checked > 10


def test_a_field_the_source_cannot_fill_is_left_to_the_grammar():
    """No number in the text: the grounded number position falls back to the grammar, still valid JSON."""
    tok = ByteTokenizer()
    c = JsonConstraint(load_schema("product_v1"), tok, budget=200, name="product_v1")
    g = GroundedJson(c, b"a red lamp", GROUNDED["product_v1"])
    out = generate(tiny_decoder(), tok, prompt_ids(b"product_v1: a red lamp"), max_new_tokens=200, temperature=1.0,
                   seed=0, processor=g, eos_id=MARK)
    assert c.accepts(out, tok) and g.fallbacks >= 1
    with pytest.raises(ValueError, match="one of 'span', 'number', 'minutes'"):
        GroundedJson(c, b"x", {"name": "copy"})


def test_source_numbers_and_minutes():
    assert source_numbers(b"$1,299.00 or 12.50, serves four, a dozen eggs") == {
        b"1", b"299.00", b"1299.00", b"12.50", b"4", b"12"}
    assert {b"1.5", b"0.75", b"-4", b"0.5", b"2.25"} <= source_numbers(
        "1 1/2 cups, 3/4 tsp, minus 4 degrees, half a lemon, 2 ¼ kg".encode())
    assert source_numbers(b"on 2026/05/03, open 24/7") == {b"2026", b"05", b"03", b"24", b"7"}
    assert minutes_in(b"lasts 1.5 hours") == {b"1.5", b"90"}
    assert b"90" in minutes_in(b"an hour and a half")
    assert {b"60", b"30"} <= minutes_in(b"an hour, then half an hour")
    assert minutes_in(b"45 min") == {b"45", b"2700"}  # the model picks; the grammar's range refuses 2700 later


def test_dates_and_times_the_text_states():
    assert dates_in(b"On 7 Sep 2024; the 15th of May 2024; July 23rd, 2025; 2026-05-03; Dec. 1 2025") == {
        b"2024-09-07", b"2024-05-15", b"2025-07-23", b"2026-05-03", b"2025-12-01"}
    assert dates_in(b"03/05/2026") == {b"2026-05-03", b"2026-03-05"} and dates_in(b"on Feb 30, 2026") == set()
    assert times_in(b"3:30 pm, 3.30pm, 09.15, 1530 hours, noon, 3 pm, 12am, 7:05 AM") == {
        b"15:30", b"09:15", b"12:00", b"15:00", b"00:00", b"07:05"}


def test_spans_stop_at_clause_marks_and_date_fields_take_stated_dates():
    c = JsonConstraint(load_schema("event_v1"), ByteTokenizer(), budget=200, name="event_v1")
    g = GroundedJson(c, b"Lunch on May 3rd, 2026 with Ana / Ben; Kugi, runs 2 hrs, at 3 pm.", GROUNDED["event_v1"])
    assert " " not in _span_mask(g, b"Kugi,") and "/" not in _span_mask(g, b"Ana ")
    assert g.choices == {"date": {b"2026-05-03"}, "time": {b"15:00"}}
    out = generate(tiny_decoder(2), ByteTokenizer(), prompt_ids(b"event_v1: x"), max_new_tokens=200, temperature=1.0,
                   seed=2, processor=g, eos_id=MARK)
    doc = json.loads(out)
    assert doc["date"] == "2026-05-03" and doc.get("start", "15:00") == "15:00"
    assert str(doc.get("duration_min", 120)).encode() in g.candidates["minutes"]  # a number of it, or its hours


def _span_mask(g, buf):
    return {chr(c) for c in g._span_next(buf)}


def test_bounded_spans_start_and_end_on_word_boundaries():
    c = JsonConstraint(load_schema("product_v1"), ByteTokenizer(), budget=200, name="product_v1")
    src = b"The Aurora desk lamp costs $29, SKU LMP-2041."
    bounded, loose = GroundedJson(c, src, GROUNDED["product_v1"]), GroundedJson(c, src, GROUNDED["product_v1"], bounded=False)
    assert _span_mask(bounded, b"") == {"T", "A", "d", "l", "c", "S", "L", "2"}  # word starts only
    assert "u" in _span_mask(loose, b"") and "u" not in _span_mask(bounded, b"")
    assert '"' not in _span_mask(bounded, b"Aurora desk la") and '"' in _span_mask(loose, b"Aurora desk la")
    assert '"' in _span_mask(bounded, b"Aurora desk lamp")
    assert '"' not in _span_mask(bounded, b"Aurora desk lamp ")  # no trailing space
    assert _span_mask(bounded, b"LMP-2041") == {'"', "."}


def test_grounded_decoding_copies_whole_words():
    """An untrained model, bounded spans: every grounded string of the broad generator's documents is a whole-word
    span of the description."""
    from neuro_lib.structured.broad import make_broad_examples

    model, tok = tiny_decoder(1), ByteTokenizer()
    checked = 0
    for ex in make_broad_examples(12, seed=4, split="heldout"):
        fields = GROUNDED[ex.schema_id]
        c = JsonConstraint(load_schema(ex.schema_id), tok, budget=300, name=ex.schema_id)
        g = GroundedJson(c, ex.text.encode(), fields)
        out = generate(model, tok, prompt_ids(ex.source), max_new_tokens=300, temperature=1.0, seed=1,
                       processor=g, eos_id=MARK)
        assert c.accepts(out, tok)
        for field, value in grounded_values(json.loads(out), fields):
            if field in g.ungrounded or fields[field] != "span":
                continue
            assert re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", ex.text), (field, value, ex.text)
            checked += 1
    assert checked > 5


def test_calculator_numbers_come_from_the_question():
    question = "Ana buys 45 boxes of 3 pens. How many hours is 2 days?"
    allowed = allowed_numbers(question)
    assert allowed == {b"45", b"3", b"2", b"24"}  # the question's numbers and the days -> hours factor
    checked = 0
    for seed in range(6):
        out = generate(tiny_decoder(seed), ByteTokenizer(), prompt_ids(question.encode()), max_new_tokens=60,
                       temperature=1.0, seed=seed, processor=chain(Force(b"CALL calc("), NumbersFrom(set(allowed))),
                       eos_id=MARK)
        inside = out[len(b"CALL calc("):].split(b")")[0]
        complete = re.findall(rb"[\d.]+(?=[^\d.])", inside)  # numbers the model finished (not cut by the budget)
        assert all(n in allowed for n in complete), (inside, complete)
        checked += len(complete)
    assert checked > 0


def test_calculator_region_spans_nested_parentheses():
    """"calc((45-40)/40*100)": the region stays open after the inner ")", so numbers after it are grounded too."""
    nums = NumbersFrom({b"45", b"40", b"100"})
    assert nums.region(b"CALL calc((45-40)/") == b"(45-40)/" and nums.region(b"CALL calc(ceil(9/4)") == b"ceil(9/4)"
    assert nums.region(b"CALL calc((45-40)/40*100)") is None and nums.region(b"CALL calc(45) -> 45\n") is None
    mask = nums(list(b"CALL calc((45-40)/"), torch.zeros(257))
    assert mask[ord("4")] == 0 and mask[ord("7")] == float("-inf") and mask[ord(")")] == 0
    after = nums(list(b"CALL calc(45"), torch.zeros(257))  # a complete number: any operator may follow it
    assert all(after[ord(c)] == 0 for c in "+-*/)") and after[ord("7")] == float("-inf")


def test_the_tools_result_is_injected_as_forced_tokens():
    """The injector runs the calculator when the model writes `CALL calc(...) -> ` and the next tokens are the
    result, forced (no model choice), in the same decode."""
    model, tok = tiny_decoder(), ByteTokenizer()
    tool = calc_injector(get_tool("calc"))
    plan = b"CALL calc(17*23+4) -> "
    eng = Engine(model, tok)
    toks = list(eng.stream(prompt_ids(b"q"), Sampling(max_new_tokens=40, temperature=0.0, eos_id=MARK),
                           chain(Force(plan), tool)))
    out = bytes(t.id for t in toks if t.id < 256)
    assert out.startswith(plan + b"395")
    injected = toks[len(plan):len(plan) + 3]
    assert [t.id for t in injected] == list(b"395") and all(t.forced for t in injected)
    assert [c.args["expression"] for c in tool.calls] == ["17*23+4"] and tool.calls[0].value == 395


def test_a_failed_call_or_too_many_calls_end_the_decode():
    tok = ByteTokenizer()
    bad = calc_injector(get_tool("calc"))
    generate(tiny_decoder(), tok, prompt_ids(b"q"), max_new_tokens=40, temperature=0.0,
             processor=chain(Force(b"CALL calc(1/0) -> "), bad), eos_id=MARK)
    assert "calculator refused '1/0'" in bad.error
    many = ToolInjector(CALL_TRIGGER, lambda m: (True, b"2", m.group(1)), eos_id=MARK, max_calls=2)
    out = generate(tiny_decoder(), tok, prompt_ids(b"q"), max_new_tokens=200, temperature=0.0,
                   processor=chain(many, Force(b"CALL calc(1+1) -> 2\nCALL calc(1+1) -> 2\nCALL calc(1+1) -> ")),
                   eos_id=MARK)
    assert "more than 2 calls" in many.error and out.endswith(b"-> ")


class Recorder:
    """Keeps the logits the engine hands the processor at every sampled position."""

    def __init__(self):
        self.seen = []

    def __call__(self, ids, logits):
        self.seen.append((len(ids), logits.clone()))
        return logits


def test_cached_decoding_with_injection_equals_a_full_forward():
    """Injected tokens are fed on the cache in one step: every later next-token distribution equals the one a
    full forward over the same tokens gives (no re-prefill needed, none done)."""
    model, tok = tiny_decoder(3), ByteTokenizer()
    prompt = prompt_ids(b"What is 6 times 7 plus 1?")
    rec = Recorder()
    tool = calc_injector(get_tool("calc"))
    eng = Engine(model, tok)
    toks = list(eng.stream(prompt, Sampling(max_new_tokens=60, temperature=0.0),
                           chain(Force(b"CALL calc(6*7+1) -> "), tool, rec)))
    out = [t.id for t in toks]
    assert bytes(out[:len(b"CALL calc(6*7+1) -> 43")]) == b"CALL calc(6*7+1) -> 43"
    full = prompt + out
    with torch.no_grad():
        ref = Engine(model, tok).step([full], model.init_state(1))[0]  # (T, V): one forward over everything
    assert len(rec.seen) > 5
    for n_out, logits in rec.seen:
        assert torch.allclose(logits, ref[len(prompt) + n_out - 1], atol=1e-4), n_out
    # one prefill, then one step per sampled token and one per forced run (the last token is never fed)
    forced_runs = 1 + 1  # the scripted plan, the injected result
    sampled = sum(not t.forced for t in toks)
    assert eng.calls == 1 + sampled + forced_runs - 1
