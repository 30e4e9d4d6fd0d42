"""The scan, scaling and rnk benchmark suites produce DESIGN.md reports; chat CLI round trip."""
import argparse
import json

import pytest
import torch

from neuro_lib.bench import SUITES
from neuro_lib.bench.rnk import head_metrics, reply_metrics
from neuro_lib.bench.scaling import measure_scaling
from neuro_lib.cli import main
from neuro_lib.data.chat import generate_chat, write_chat_jsonl
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model


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
    rows = measure_scaling(["gpt", "mamba"], [16, 32], profile="smoke", repeats=1, decode_steps=2)
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


def test_chat_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "rnk"
    assert main(["train", "--arch", "rnk", "--task", "chat", "--steps", "2", "--out", str(out),
                 "--model", "d_model=32", "n_layer=1", "d_state=4", "expand=1", "d_plan=16", "hrm_steps=1",
                 "d_dec=24"]) == 0
    capsys.readouterr()
    assert main(["chat", str(out), "--prompt", "What is 2 + 2?", "--max-new-bytes", "8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"reply", "intent", "answerable"}
    assert main(["train", "--arch", "gpt", "--task", "chat", "--steps", "2", "--out", str(tmp_path / "g")]) == 2
    bad = tmp_path / "bad.jsonl"
    write_chat_jsonl(bad, generate_chat(2))
    bad.write_text(bad.read_text() + '{"user": "Hi", "model": "Yo", "intent": "greeting"}\n')
    assert main(["train", "--arch", "rnk", "--task", "chat", "--chat-data", str(bad), "--steps", "1",
                 "--out", str(tmp_path / "b")]) == 2
    assert "chat record 3 lacks" in capsys.readouterr().err
