"""The scan, scaling and rnk benchmark suites produce DESIGN.md reports; chat CLI round trip."""
import argparse
import json

import pytest
import torch

from neuro_lib.bench import SUITES
from neuro_lib.bench import rnk as rnk_bench
from neuro_lib.bench.rnk import head_metrics, reply_metrics
from neuro_lib.bench.scaling import measure_scaling
from neuro_lib.cli import main
from neuro_lib.data.chat import INTENTS, ChatExample, collate_chat, generate_chat, write_chat_jsonl
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from neuro_lib.profiles import get_profile


def _args(suite, argv):
    p = argparse.ArgumentParser()
    SUITES[suite].add_arguments(p)
    return p.parse_args(argv)


def test_scan_suite_report():
    rep = SUITES["scan"].run(_args("scan", ["--lengths", "16,40", "--d-inner", "4", "--d-state", "2",
                                            "--repeats", "1", "--threads", "0"]))
    assert rep["suite"] == "scan" and {"machine", "git", "config"} <= set(rep)
    names = [r["name"] for r in rep["results"]]
    assert "chunked fwd+bwd L=40" in names and "mambapy fwd+bwd L=16" in names
    assert all(r["value"] > 0 and r["saved_mb"] > 0 for r in rep["results"])
    with pytest.raises(NeuroError, match="comma-separated"):
        SUITES["scan"].run(_args("scan", ["--lengths", "1k"]))


def test_scaling_rows_cover_both_modes():
    rows = measure_scaling(["gpt", "mamba"], [16, 32], profile=get_profile("smoke"), repeats=1, decode_steps=2)
    assert {(r["arch"], r["mode"], r["length"]) for r in rows} == {
        (a, m, L) for a in ("gpt", "mamba") for m in ("forward", "decode") for L in (16, 32)}
    assert all(r["us_per_byte_min"] > 0 for r in rows)


def test_rnk_metrics_on_an_untrained_model():
    torch.manual_seed(0)
    model = build_model("rnk", d_model=32, n_layer=1, d_state=4, expand=1, chunk_len=8, d_plan=16, hrm_steps=1,
                        hrm_low_steps=1, d_dec=24)
    held = generate_chat(14, seed=1, split="heldout")
    heads = head_metrics(model, held)
    assert set(heads) == {"intent_acc", "answerable_f1", "stop_acc"} and all(0 <= v <= 1 for v in heads.values())
    replies, rows = reply_metrics(model, held[:7])
    assert len(rows) == 7 and 0 <= replies["refusal_rate_unanswerable"] <= 1


class _Scripted(torch.nn.Module):
    """Stands in for RNK: `forward_aux` returns head logits fixed by the test, so the metrics are known by hand."""

    def __init__(self, heads, chunk_len):
        super().__init__()
        self.heads, self.config = heads, type("C", (), {"chunk_len": chunk_len})()

    def forward_aux(self, tokens):
        return None, self.heads


def test_head_metrics_match_hand_computed_values():
    examples = [ChatExample("Hi", "Hello!", "greeting", True),
                ChatExample("What is 2 + 3?", "2 + 3 = 5", "math", True),
                ChatExample("Capital of Zorbia?", "I do not know a country called Zorbia.", "refusal", False),
                ChatExample("What is the capital of Peru?", "The capital of Peru is Lima.", "question", True)]
    P = 8
    batch = collate_chat(examples, P)
    B, C = batch["stop_mask"].shape
    rows, pc = torch.arange(B), batch["prompt_chunk"]
    intent = torch.zeros(B, C, len(INTENTS))
    # predicted: greeting (right), math (right), question (wrong: refusal), fact (wrong: question) -> 2/4
    for i, name in enumerate(["greeting", "math", "question", "fact"]):
        intent[i, pc[i], INTENTS.index(name)] = 5.0
    answerable = torch.full((B, C), -1.0)
    # gold answerable T T F T, predicted T F T T: tp 2, fp 1, fn 1 -> F1 = 2*2 / (2*2 + 1 + 1) = 2/3
    answerable[rows, pc] = torch.tensor([1.0, -1.0, 1.0, 1.0])
    stop = batch["stop_target"] * 2 - 1  # every chunk right...
    masked = batch["stop_mask"].nonzero()
    i, c = masked[0]
    stop[i, c] = -stop[i, c]  # ...but one masked chunk wrong
    unmasked = (batch["stop_mask"] == 0).nonzero()
    if len(unmasked):
        stop[tuple(unmasked[0])] = 7.0  # chunks outside the mask do not count
    m = head_metrics(_Scripted({"intent": intent, "answerable": answerable, "stop": stop}, P), examples)
    assert m["intent_acc"] == pytest.approx(0.5)
    assert m["answerable_f1"] == pytest.approx(2 / 3)
    assert m["stop_acc"] == pytest.approx(1 - 1 / len(masked))


def test_reply_metrics_match_hand_computed_values(monkeypatch):
    cases = [  # (gold intent, expected reply, model reply)
        ("math", "2 + 3 = 5", "2 + 3 = 5"),                  # exact, result right
        ("math", "4 * 6 = 24", "4 * 5 = 24"),                # not exact, result right
        ("math", "9 - 2 = 7", "9 - 2 = 8"),                  # neither
        ("math", "1 + 1 = 2", "one plus one"),               # no "= number" at all
        ("question", "The capital of Peru is Lima.", "The capital of Peru is Lima."),  # exact
        ("fact", "Water boils at 100 C.", "I do not know that."),                     # wrong, a false refusal
        ("refusal", "I do not know a country called Zorbia.", "I do not know."),      # refused
        ("refusal", "I do not know a country called Blorv.", "The capital of Blorv is Lima."),  # did not
        ("greeting", "Hello!", "Hello!"),
    ]
    examples = [ChatExample(f"prompt {k}", exp, intent, intent != "refusal") for k, (intent, exp, _) in enumerate(cases)]
    replies = {f"prompt {k}": got for k, (_, _, got) in enumerate(cases)}
    monkeypatch.setattr(rnk_bench, "chat_reply", lambda model, user: {
        "reply": replies[user], "intent": "math", "answerable": True, "calculator": None})
    m, rows = reply_metrics(None, examples)
    assert len(rows) == len(cases) and rows[1]["reply"] == "4 * 5 = 24"
    assert m == pytest.approx({"math_exact": 1 / 4, "math_result_acc": 2 / 4, "fact_exact": 1 / 2,
                               "refusal_rate_unanswerable": 1 / 2, "false_refusal_rate": 1 / 7})


def test_chat_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "rnk"
    assert main(["train", "--arch", "rnk", "--task", "chat", "--steps", "2", "--out", str(out),
                 "--model", "d_model=32", "n_layer=1", "d_state=4", "expand=1", "d_plan=16", "hrm_steps=1",
                 "d_dec=24"]) == 0
    capsys.readouterr()
    code = main(["chat", str(out), "--prompt", "What is 2 + 2?", "--max-new-bytes", "8", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"reply", "intent", "answerable", "status"}
    assert code == {"verified": 0, "unverified": 3, "abstained": 3}[r["status"]]  # a 2-step model's reply: not ok
    assert main(["train", "--arch", "gpt", "--task", "chat", "--steps", "2", "--out", str(tmp_path / "g")]) == 2
    bad = tmp_path / "bad.jsonl"
    write_chat_jsonl(bad, generate_chat(2))
    bad.write_text(bad.read_text() + '{"user": "Hi", "model": "Yo", "intent": "greeting"}\n')
    assert main(["train", "--arch", "rnk", "--task", "chat", "--chat-data", str(bad), "--steps", "1",
                 "--out", str(tmp_path / "b")]) == 2
    assert "chat record 3 lacks" in capsys.readouterr().err
