import math

import pytest
import torch

from neuro_lib.data.batching import TokenArray
from neuro_lib.models import build_model
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.evaluate import bits_per_byte, evaluate_bpb, score_windows
from neuro_lib.train.optim import warmup_cosine
from neuro_lib.train.trainer import TrainConfig, Trainer
from tests.conftest import ENGLISH

import numpy as np


def test_bits_per_byte_hand_computed():
    # 8 bytes costing 16 bits in total = 2 bits per byte
    assert bits_per_byte(16 * math.log(2), 8) == pytest.approx(2.0)


class Uniform(torch.nn.Module):
    """A model that predicts every byte with probability 1/256."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(256))

    def forward(self, x):
        return self.bias.expand(*x.shape, 256)


def test_uniform_model_costs_eight_bits_per_byte():
    r = evaluate_bpb(Uniform(), ByteTokenizer(), b"hello world, hello bits", block_size=8)
    assert r["bpb"] == pytest.approx(8.0)
    assert r["bytes"] == len(b"hello world, hello bits") - 1  # first byte has no context, not scored


@pytest.mark.parametrize("n,block,stride", [(2, 8, 4), (100, 8, 4), (101, 16, 16), (50, 16, 1), (9, 8, 3)])
def test_score_windows_cover_every_target_once(n, block, stride):
    scored = []
    for s, e, b in score_windows(n, block, stride):
        assert e - s <= block and s <= b - 1 and b <= e
        scored += list(range(b, e + 1))
    assert scored == list(range(1, n))


def test_warmup_cosine():
    assert warmup_cosine(0.0, 0, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(0.0, 10, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(0.5, 100, 10, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(1.0, 100, 10, 0.1) == pytest.approx(0.1)


def _trainer(out_dir, tiny_gpt_cfg, max_steps=12, dropout=0.1):
    torch.manual_seed(123)  # model init; the Trainer reseeds for training
    model = build_model("gpt", **{**tiny_gpt_cfg, "dropout": dropout})
    ids = TokenArray(np.frombuffer(ENGLISH, dtype=np.uint8))

    def batches(step):
        x, y = ids.batch(4, 16, 7, step)
        return {"tokens": x, "targets": y}

    cfg = TrainConfig(batch_size=4, block_size=16, max_steps=max_steps, eval_every=0, log_every=1, warmup_steps=3,
                      seed=7)
    return Trainer(model, ByteTokenizer(), cfg, batches, None, out_dir=out_dir)


def _losses(history):
    return [r["loss"] for r in history if r["kind"] == "train"]


def test_same_seed_same_losses(tmp_path, tiny_gpt_cfg):
    a = _losses(_trainer(tmp_path / "a", tiny_gpt_cfg).fit())
    b = _losses(_trainer(tmp_path / "b", tiny_gpt_cfg).fit())
    assert a == b and len(a) == 12


def test_resume_continues_the_same_run(tmp_path, tiny_gpt_cfg):
    straight = _losses(_trainer(tmp_path / "straight", tiny_gpt_cfg).fit())
    _trainer(tmp_path / "broken", tiny_gpt_cfg).fit(stop_after_steps=5)  # "interrupted" after a checkpoint
    resumed = _trainer(tmp_path / "broken", tiny_gpt_cfg).fit()
    assert _losses(resumed) == pytest.approx(straight, rel=1e-6)
    logged = [line for line in (tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 12  # no duplicated records after the resume


def test_batches_deterministic_in_seed_and_step():
    ids = TokenArray(np.arange(1000, dtype=np.uint16))
    x1, y1 = ids.batch(4, 8, seed=1, step=5)
    x2, y2 = ids.batch(4, 8, seed=1, step=5)
    x3, _ = ids.batch(4, 8, seed=1, step=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert torch.equal(y1[:, :-1], x1[:, 1:])


@pytest.mark.parametrize("arch,lr,batch", [("gpt", 6e-3, 16), ("mamba", 2e-3, 32), ("aeron", 6e-3, 16)])
def test_profile_train_sizes_are_per_arch(tmp_path, arch, lr, batch):
    """The bench profile's GPT and Aeron have their own tuned optimiser (Profile.arch_train); Mamba keeps the
    profile's. All train on the profile's block, Aeron too, though its block_size (cache) is 8x longer."""
    import json

    from neuro_lib.profiles import get_profile
    from neuro_lib.train.lm import train_lm

    text = tmp_path / "corpus.txt"
    text.write_bytes(ENGLISH * 20)
    assert get_profile("bench").train_sizes(arch).lr == lr
    train_lm(arch, f"text:{text}", profile="bench", out_dir=tmp_path / "run",
             train_overrides={"max_steps": 1, "eval_bytes": 256})
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (cfg["train"]["lr"], cfg["train"]["batch_size"]) == (lr, batch)
    assert cfg["train"]["block_size"] == get_profile("bench").train.block_size <= cfg["model"]["block_size"]
