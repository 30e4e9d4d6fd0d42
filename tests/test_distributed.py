"""Data-parallel training (train/distributed.py, the Trainer under DDP, `neuro train --nproc`).

One launch of 2 local processes (gloo on 127.0.0.1, a free port) runs every world-2 experiment of
this file on the tiny GPT of profiles.py (DDP.tiny, no dropout), through the real Trainer:
- world 2 x B/2 rows each equals world 1 x B over 50 AdamW steps (loss and weights within 1e-5);
- 2 micro-batches per rank under `no_sync` equal the large batch;
- the fp16 compression hook stays within 1e-3 of the uncompressed loss; PowerSGD rank 1 and 4
  (compressing from step 3) report their loss gap and bytes, fewer bytes than the plain all-reduce;
- a run checkpointed by 2 processes resumes in 1, and one of 1 process resumes in 2, each ending
  where an unbroken run ends (the data position is the step: step x global batch samples).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuro_lib.bench import ddp
from neuro_lib.checkpoint import load_train_state
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from neuro_lib.profiles import get_profile
from neuro_lib.train import distributed
from neuro_lib.train.trainer import TrainConfig

SIZES = get_profile("smoke").tasks.ddp
BASE = dict(tiny=SIZES.tiny, batch=SIZES.tiny_batch, steps=50, seed=3, threads=1)
HOOKS = ["allreduce", "fp16", "powersgd:1:3", "powersgd:4:3"]
HOOK_STEPS = 20
RESUME = dict(BASE, steps=10, ckpt_every=4, crash_at=6)  # checkpoint at 4, interrupted after 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("ddp")
    one_first = ddp.tiny_run(dict(RESUME, out_dir=str(tmp / "one_then_two")))  # world 1, interrupted
    assert one_first["crashed"] == 6
    specs = ([dict(BASE), dict(BASE, grad_accum=2)]
             + [dict(BASE, steps=HOOK_STEPS, comm_hook=h) for h in HOOKS]
             + [dict(RESUME, out_dir=str(tmp / "two_then_one")),           # world 2, interrupted
                dict(RESUME, out_dir=str(tmp / "one_then_two"), crash_at=None)])  # world 2 resumes world 1's
    two = distributed.launch(ddp.worker, 2, specs)[0]
    return {"one": ddp.tiny_run(dict(BASE)), "two": two[0], "accum": two[1],
            "hooks": dict(zip(HOOKS, two[2:6])), "two_first": two[6], "one_then_two": two[7],
            "two_then_one": ddp.tiny_run(dict(RESUME, out_dir=str(tmp / "two_then_one"), crash_at=None)),
            "straight": ddp.tiny_run(dict(RESUME, crash_at=None)), "tmp": tmp}


@pytest.mark.slow
def test_world_two_equals_one_process_with_the_whole_batch(runs):
    one, two = runs["one"], runs["two"]
    assert len(one["losses"]) == len(two["losses"]) == 50
    assert ddp.max_loss_diff(one["losses"], two["losses"]) <= 1e-5
    assert ddp.max_weight_diff(one["weights"], two["weights"]) <= 1e-5
    assert one["losses"][-1] < one["losses"][0] - 1.0  # it trained: the comparison is not of two idle models


@pytest.mark.slow
def test_accumulation_under_no_sync_equals_the_large_batch(runs):
    one, accum = runs["one"], runs["accum"]
    assert ddp.max_loss_diff(one["losses"], accum["losses"]) <= 1e-5
    assert ddp.max_weight_diff(one["weights"], accum["weights"]) <= 1e-5


@pytest.mark.slow
def test_fp16_compression_stays_within_1e_3_of_the_uncompressed_loss(runs):
    plain, fp16 = runs["hooks"]["allreduce"], runs["hooks"]["fp16"]
    assert ddp.max_loss_diff(plain["losses"], fp16["losses"]) <= 1e-3
    assert fp16["bytes"] == plain["bytes"] // 2  # every gradient sent in half precision


@pytest.mark.slow
def test_powersgd_reports_its_loss_gap_and_sends_fewer_bytes(runs):
    plain = runs["hooks"]["allreduce"]
    params = sum(p.numel() for p in build_model("gpt", **SIZES.tiny).parameters())  # the tied embedding once
    assert plain["bytes"] == HOOK_STEPS * 4 * params  # fp32 gradients, tied embedding once, every step
    gaps = {}
    for rank in (1, 4):
        r = runs["hooks"][f"powersgd:{rank}:3"]
        assert len(r["losses"]) == HOOK_STEPS and all(np.isfinite(r["losses"]))
        assert r["bytes"] < plain["bytes"]
        gaps[rank] = abs(r["losses"][-1] - plain["losses"][-1])
        assert gaps[rank] < 0.5  # compressed, not broken: the same run within half a nat after 20 steps
        print(f"PowerSGD rank {rank}: final loss gap {gaps[rank]:.2e} nats, {r['bytes']:,} bytes vs {plain['bytes']:,}")
    assert runs["hooks"]["powersgd:1:3"]["bytes"] < runs["hooks"]["powersgd:4:3"]["bytes"]


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["two_then_one", "one_then_two"])
def test_resume_with_another_world_size_continues_the_data_stream(runs, name):
    straight, resumed = runs["straight"], runs[name]
    assert resumed["step"] == 10 and resumed["crashed"] is None
    assert ddp.max_loss_diff(straight["losses"], resumed["losses"]) <= 1e-5  # steps 1-4 restored, 5-10 trained
    assert ddp.max_weight_diff(straight["weights"], resumed["weights"]) <= 1e-5
    run_dir = runs["tmp"] / name
    assert _steps(run_dir) == list(range(1, 11))  # rank 0 alone wrote the log: no gap, no duplicate
    state = load_train_state(run_dir)
    assert state["samples_seen"] == 10 * RESUME["batch"]
    assert state["world_size"] == (1 if name == "two_then_one" else 2)
    if name == "two_then_one":
        assert runs["two_first"]["crashed"] == 6


def test_shard_is_distributed_samplers_split():
    """Each rank's rows of the global batch are the indices torch's DistributedSampler gives that rank."""
    from torch.utils.data import DistributedSampler

    batch = {"tokens": torch.arange(24).view(12, 2), "targets": torch.arange(24).view(12, 2) + 1, "name": "x"}
    rows = []
    for rank in range(3):
        part = distributed.shard(batch, rank, 3)
        expected = list(DistributedSampler(range(12), num_replicas=3, rank=rank, shuffle=False))
        assert torch.equal(part["tokens"], batch["tokens"][expected]) and part["name"] == "x"
        rows += part["tokens"][:, 0].tolist()
    assert sorted(rows) == batch["tokens"][:, 0].tolist()  # disjoint, and together the whole batch


def test_bad_settings_are_one_sentence():
    with pytest.raises(NeuroError, match="does not split evenly over 3"):
        distributed.check_divisible(16, distributed.World(0, 3, 0))
    with pytest.raises(NeuroError, match="unknown communication hook"):
        TrainConfig(max_steps=1, comm_hook="powersgd:0")
    with pytest.raises(NeuroError, match="grad_accum"):
        TrainConfig(max_steps=1, batch_size=8, grad_accum=3)
    assert distributed.parse_hook("powersgd:4") == ("powersgd", 4, 10)


def test_nproc_under_torchrun_is_refused(monkeypatch, tmp_path, capsys):
    from neuro_lib.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--steps", "2", "--out", str(tmp_path / "x"), "--nproc", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_cli_nproc_trains_and_checkpoints_once(tmp_path, capsys):
    """`neuro train --nproc 2` end to end: one summary line, a checkpoint rank 0 wrote, loadable without a trainer."""
    from neuro_lib.checkpoint import load_checkpoint
    from neuro_lib.cli import main

    text = tmp_path / "text.txt"
    text.write_bytes(ddp.__doc__.encode() * 4)
    out = tmp_path / "run"
    argv = ["train", "--corpus", f"text:{text}", "--steps", "4", "--ckpt-every", "2", "--out", str(out),
            "--model", "n_layer=1", "d_model=32", "n_head=2", "d_ff=64"]
    assert main([*argv, "--nproc", "2"]) == 0
    model, _, cfg = load_checkpoint(out)
    assert cfg["step"] == 4 and load_train_state(out)["world_size"] == 2
    assert _steps(out)[-1] == 4
    assert main(argv) == 0  # the same command in one process: a finished run, nothing retrained
    assert load_checkpoint(out)[2]["folder"] == cfg["folder"]
    assert "checkpoint in" in capsys.readouterr().out


def test_summary_of_a_record_by_part():
    record = {"results": [{"name": "a", "value": 1e-7, "unit": "nats", "part": "equivalence", "steps": 50},
                          {"name": "b", "value": 100, "unit": "bytes", "part": "compression", "hook": "fp16"}]}
    eq = ddp.summary(record, "equivalence")
    assert list(eq.index) == ["a"] and "hook" not in eq.columns and eq.loc["a", "steps"] == 50
    assert ddp.summary(record, "speed").empty
    assert len(ddp.summary(record)) == 2
