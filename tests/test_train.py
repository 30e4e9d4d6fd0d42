import json
import math

import pytest
import torch

from neuro_lib.data.batching import TokenArray
from neuro_lib.models import build_model
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tokenizers.word import WordTokenizer
from neuro_lib.train.evaluate import bits_per_byte, evaluate_bpb, score_windows
from neuro_lib.optim import warmup_cosine
from neuro_lib.train.trainer import TrainConfig, Trainer
from tests.conftest import ENGLISH

import numpy as np


def test_bits_per_byte_hand_computed():
    # 8 bytes costing 16 bits in total = 2 bits per byte
    assert bits_per_byte(16 * math.log(2), 8) == pytest.approx(2.0)


class Uniform(torch.nn.Module):
    """A model that predicts every token with probability 1/vocab."""

    def __init__(self, vocab=256):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(vocab))

    def forward(self, x):
        return self.bias.expand(*x.shape, len(self.bias))


def test_uniform_model_costs_eight_bits_per_byte():
    r = evaluate_bpb(Uniform(), ByteTokenizer(), b"hello world, hello bits", block_size=8)
    assert r["bpb"] == pytest.approx(8.0)
    assert r["bytes"] == len(b"hello world, hello bits") - 1  # first byte has no context, not scored


def test_word_unk_is_charged_eight_bits_per_spelled_byte():
    tok = WordTokenizer.train(b"the cat sat on the mat. the cat sat.", 32)
    text = b"the dog sat on the zebra."  # " dog" and " zebra" are unknown pieces (a word keeps its space)
    ids, lost = tok.encode(text), tok.lost_bytes(text)
    assert len(lost) == len(ids) and sorted(n for n in lost if n) == [4, 6]
    r = evaluate_bpb(Uniform(tok.vocab_size), tok, text, block_size=4)
    # by hand: every scored token costs log2(V) bits, each UNK adds 8 bits per byte of its word,
    # and the first token ("the", 3 bytes) is not scored
    bits = (len(ids) - 1) * math.log2(tok.vocab_size) + 8 * (4 + 6)
    assert r["unk_bytes"] == 10 and r["bytes"] == len(text) - 3
    assert r["bpb"] == pytest.approx(bits / (len(text) - 3))
    # an unknown first token is not scored: neither charged nor counted, by its real length
    r0 = evaluate_bpb(Uniform(tok.vocab_size), tok, b"zebra sat.", block_size=4)
    assert r0["unk_bytes"] == 0 and r0["bytes"] == len(b" sat.")


def test_a_lossy_tokenizer_that_hides_its_losses_is_refused():
    class Lossy(ByteTokenizer):
        def decode(self, ids):
            return bytes(ids).upper()

    with pytest.raises(ValueError, match="does not reproduce the text"):
        evaluate_bpb(Uniform(), Lossy(), b"hello world", block_size=4)


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


def _trainer(out_dir, tiny_gpt_cfg, max_steps=12, dropout=0.1, ckpt_every=0):
    torch.manual_seed(123)  # model init; the Trainer reseeds for training
    model = build_model("gpt", **{**tiny_gpt_cfg, "dropout": dropout})
    ids = TokenArray(np.frombuffer(ENGLISH, dtype=np.uint8))

    def batches(step):
        x, y = ids.batch(4, 16, 7, step)
        return {"tokens": x, "targets": y}

    cfg = TrainConfig(batch_size=4, block_size=16, max_steps=max_steps, eval_every=0, log_every=1, warmup_steps=3,
                      seed=7, ckpt_every=ckpt_every)
    return Trainer(model, ByteTokenizer(), cfg, batches, None, out_dir=out_dir)


def _losses(history):
    return [r["loss"] for r in history if r["kind"] == "train"]


def test_same_seed_same_losses(tmp_path, tiny_gpt_cfg):
    a = _losses(_trainer(tmp_path / "a", tiny_gpt_cfg).fit())
    b = _losses(_trainer(tmp_path / "b", tiny_gpt_cfg).fit())
    assert a == b and len(a) == 12


def test_resume_continues_the_same_run(tmp_path, tiny_gpt_cfg):
    """A crash (an exception out of the loop: no save) after step 7 resumes from the step-4 checkpoint."""
    straight_trainer = _trainer(tmp_path / "straight", tiny_gpt_cfg)
    straight = _losses(straight_trainer.fit())

    def crash(rec):
        if rec["step"] == 7:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        _trainer(tmp_path / "broken", tiny_gpt_cfg, ckpt_every=4).fit(callback=crash)
    assert len((tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()) == 7  # 5..7 beyond the checkpoint
    resumed_trainer = _trainer(tmp_path / "broken", tiny_gpt_cfg, ckpt_every=4)
    resumed = resumed_trainer.fit()
    assert _losses(resumed) == pytest.approx(straight, rel=1e-6)
    steps = [json.loads(line)["step"] for line in (tmp_path / "broken" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # no gap, no duplicate
    for (k, a), b in zip(straight_trainer.model.state_dict().items(), resumed_trainer.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), k


def test_finished_run_is_loaded_not_retrained(tmp_path, tiny_gpt_cfg):
    first = _trainer(tmp_path / "run", tiny_gpt_cfg)
    first.fit()
    again = _trainer(tmp_path / "run", tiny_gpt_cfg)
    assert _losses(again.fit()) == _losses(first.history) and again.step == 12
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))


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

    from neuro_lib.profiles import get_profile
    from neuro_lib.checkpoint import read_config
    from neuro_lib.train.lm import train_lm

    text = tmp_path / "corpus.txt"
    text.write_bytes(ENGLISH * 20)
    assert get_profile("bench").train_sizes(arch).lr == lr
    train_lm(arch, f"text:{text}", profile=get_profile("bench"), out_dir=tmp_path / "run",
             train_overrides={"max_steps": 1, "eval_bytes": 256})
    cfg = read_config(tmp_path / "run")
    assert (cfg["train"]["lr"], cfg["train"]["batch_size"]) == (lr, batch)
    assert cfg["train"]["block_size"] == get_profile("bench").train.block_size <= cfg["model"]["block_size"]
