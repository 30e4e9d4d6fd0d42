"""Struct-mini: the description -> JSON task, both experts end to end, `neuro json`."""
import json

import pytest

from neuro_lib.cli import main
from neuro_lib.structured.expert import collate, evaluate_expert, train_expert
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.task import N_HELDOUT, N_TEMPLATES, TASK_SCHEMAS, field_scores, make_examples
from neuro_lib.structured.verify import verify_text
from neuro_lib.profiles import get_profile


def test_examples_are_valid_and_heldout_phrasings_are_unseen():
    train, held = make_examples(120, split="train"), make_examples(60, split="heldout")
    for ex in train + held:
        assert verify_text(ex.target, load_schema(ex.schema_id))[1] == []
        assert json.loads(ex.target) == ex.doc and ex.source.startswith(ex.schema_id.encode())
    assert {e.schema_id for e in held} == set(TASK_SCHEMAS) and N_TEMPLATES - N_HELDOUT >= 2
    # a held-out template's fixed words never occur in training descriptions
    assert not any("You can buy the" in e.text or "Expect " in e.text for e in train)
    assert any("You can buy the" in e.text for e in held) and any("Expect " in e.text for e in held)
    assert make_examples(5, seed=3) == make_examples(5, seed=3)


def test_field_scores():
    gold = {"name": "a", "price": 1, "currency": "USD"}
    assert field_scores(gold, gold) == {"name": True, "price": True, "currency": True}
    assert field_scores({"name": "a", "price": 2, "sku": "x"}, gold) == {
        "name": True, "price": False, "currency": False, "sku": False}
    assert not any(field_scores(None, gold).values())


@pytest.mark.parametrize("kind", ["encdec", "decoder"])
def test_collate_masks_only_the_answer(kind):
    ex = make_examples(3)
    b = collate(ex, kind)
    assert b["tokens"].shape == b["targets"].shape == b["loss_mask"].shape
    n_answer = sum(len(e.target) + 1 for e in ex)  # JSON + end token
    assert int(b["loss_mask"].sum()) == n_answer
    if kind == "encdec":
        assert b["src"].shape[0] == 3 and int(b["src_mask"].sum()) == sum(len(e.source) for e in ex)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["encdec", "decoder"])
def test_expert_trains_and_constrained_output_is_always_valid(kind, tmp_path, capsys):
    res = train_expert(kind, get_profile("smoke"), steps=2, out_dir=tmp_path / kind)
    losses = [r["loss"] for r in res.history if r["kind"] == "train"]
    assert losses and all(x == x for x in losses)
    m = evaluate_expert(res.model, make_examples(2, seed=5, split="heldout"), budget=200)
    assert m["constrained"]["validity"] == 1.0
    assert 0.0 <= m["unconstrained"]["field_accuracy"] <= 1.0 and m["constrained"]["mask_us"]
    # the saved expert through the CLI: its own prompt layout, constrained output valid
    code, out, _ = _run(capsys, "json", "--run", str(tmp_path / kind), "--schema", "event_v1", "--prompt",
                        "Lunch on May 3, 2026 with Ana.", "--max-new-tokens", "120")
    assert code in (0, 3) and out.splitlines()[1] == "valid against event_v1"  # 3: valid, a value not in the prompt
    assert verify_text(out.splitlines()[0], load_schema("event_v1"))[1] == []


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_validate_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"name":"Pen","price":2,"currency":"EUR"}')
    bad.write_text('{"name":"Pen","price":-2,"currency":"EUR","colour":"red"}')
    assert _run(capsys, "json", "validate", str(good), "--schema", "product_v1")[0] == 0
    code, out, _ = _run(capsys, "json", "validate", str(bad), "--schema", "product_v1")
    assert code == 1 and "$.price: minimum" in out and "additionalProperties" in out
    code, _, err = _run(capsys, "json", "validate", str(good), "--schema", "nope")
    assert code == 2 and err.startswith("neuro: error: unknown schema 'nope'") and err.count("\n") == 1


def test_cli_json_from_a_byte_run_is_valid(tmp_path, text_corpus, capsys):
    run = tmp_path / "run"
    tiny = ["--model", "d_model=32", "n_layer=1", "n_head=2", "d_ff=64", "block_size=32"]
    assert _run(capsys, "train", "--corpus", text_corpus, "--steps", "2", "--out", str(run), *tiny)[0] == 0
    code, out, _ = _run(capsys, "json", "--run", str(run), "--schema", "weather_v1", "--prompt", "Oslo, rain",
                        "--temperature", "1.0", "--max-new-tokens", "120")
    assert code in (0, 3)  # 3: valid but unverified (a value the prompt does not hold)
    doc_line, verdict = out.splitlines()[:2]
    assert verify_text(doc_line, load_schema("weather_v1"))[1] == [] and verdict == "valid against weather_v1"
    code, out, _ = _run(capsys, "json", "--run", str(run), "--schema", "weather_v1", "--prompt", "x",
                        "--no-constraint", "--max-new-tokens", "20")
    assert code in (0, 1, 3) and ("invalid:" in out or "valid against" in out)


def test_cli_json_refuses_a_run_without_byte_mapping(tmp_path, text_corpus, capsys):
    run = tmp_path / "run"
    tiny = ["--model", "d_model=32", "n_layer=1", "n_head=2", "d_ff=64", "block_size=32"]
    assert _run(capsys, "train", "--corpus", text_corpus, "--tokenizer", "word:300", "--steps", "1", "--out",
                str(run), *tiny)[0] == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, err = _run(capsys, "json", "--run", str(run), "--schema", "product_v1", "--prompt", "x")
    assert code == 2 and "has no byte mapping" in err and err.count("\n") == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
