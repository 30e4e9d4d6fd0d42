"""Train a byte-level source -> target model (an "expert"): the one loop Struct-mini, Reason-mini and
Code-mini share.

Layout (one extra token, id 256 = START = END: start of the answer and end of document):
- `encdec`: Aeron in encoder-decoder mode; the source is encoded, the decoder writes
  `<s> target <end>` cross-attending to it;
- `decoder`: decoder-only; reads `source <s>` then writes `target <end>`; the loss covers only the
  target and the end token.
`prompt_for` gives the decoding engine the same layout at inference time, so training and decoding
never disagree on it.

    res = train_seq2seq(pairs, val_pairs, model_cfg, sizes, "encdec", out_dir="data/cache/x", extra_config={...})
    prompt, src = prompt_for(res.model, source_bytes)           # then infer.engine.generate(..., src=src, eos_id=END)

`pairs` are objects with `source` and `target` bytes (structured.task.Example, data.word_problems.Problem, ...).
Tests: tests/test_struct_mini.py, tests/test_runtime_experts.py.
"""
from __future__ import annotations

import numpy as np
import torch

from neuro_lib.models import build_model
from neuro_lib.profiles import MiniExpertSizes, Profile
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.lm import TrainResult
from neuro_lib.train.trainer import TrainConfig, Trainer

START = END = 256  # the one extra token: answer start (decoder input) and end of document
KINDS = ("encdec", "decoder")


def aeron_config(kind: str, base: dict, enc_layers: int, dec_layers: int, max_len: int) -> dict:
    """An Aeron config for `kind` from the profile's Aeron sizes: encdec (enc_layers + dec_layers) or a decoder-only
    stack of the same total depth."""
    cfg = dict(base, vocab_size=257, block_size=max_len)
    if kind == "encdec":
        return dict(cfg, mode="encoder-decoder", n_encoder_layer=enc_layers, n_decoder_layer=dec_layers)
    if kind == "decoder":
        return dict(cfg, mode="decoder", n_encoder_layer=0, n_decoder_layer=enc_layers + dec_layers)
    raise ValueError(f"expert kind must be one of {KINDS}, got {kind!r}")


def expert_config(kind: str, profile: Profile, sizes: MiniExpertSizes) -> dict:
    """The Aeron config of an expert trained with `sizes` (one of the profile's mini-expert sections)."""
    return aeron_config(kind, profile.model("aeron"), sizes.enc_layers, sizes.dec_layers, sizes.max_len)


def collate(examples, kind: str) -> dict:
    """Padded batch: tokens/targets/loss_mask (B, T), and for encdec src/src_mask (B, S)."""
    srcs = [list(e.source) for e in examples]
    tgts = [list(e.target) for e in examples]
    if kind == "encdec":
        seqs = [[START] + t for t in tgts]
        outs = [t + [END] for t in tgts]
        masks = [[1] * len(o) for o in outs]
    else:
        seqs = [s + [START] + t for s, t in zip(srcs, tgts)]
        outs = [s[1:] + [START] + t + [END] for s, t in zip(srcs, tgts)]
        masks = [[0] * len(s) + [1] * (len(t) + 1) for s, t in zip(srcs, tgts)]
    T = max(map(len, seqs))
    batch = {"tokens": torch.tensor([x + [END] * (T - len(x)) for x in seqs]),
             "targets": torch.tensor([x + [END] * (T - len(x)) for x in outs]),
             "loss_mask": torch.tensor([x + [0] * (T - len(x)) for x in masks], dtype=torch.float32)}
    if kind == "encdec":
        S = max(map(len, srcs))
        batch["src"] = torch.tensor([x + [0] * (S - len(x)) for x in srcs])
        batch["src_mask"] = torch.tensor([[1] * len(x) + [0] * (S - len(x)) for x in srcs], dtype=torch.bool)
    return batch


def expert_kind(model) -> str:
    return "encdec" if getattr(model, "encoder_decoder", False) else "decoder"


def prompt_for(model, source: bytes, prefix: bytes = b"") -> tuple[list[int], list[int] | None]:
    """(decoder prompt ids, encoder source ids or None) to continue the target after `prefix`."""
    if expert_kind(model) == "encdec":
        return [START] + list(prefix), list(source)
    return list(source) + [START] + list(prefix), None


def train_seq2seq(train, val, model_config: dict, sizes: MiniExpertSizes, kind: str, seed: int = 0,
                  steps: int | None = None,
                  out_dir=None, extra_config: dict | None = None, callback=None) -> TrainResult:
    """Train an Aeron `kind` expert on `train` pairs for sizes.steps (or `steps`); validation loss on `val`.
    sizes: a profile's MiniExpertSizes section (batch_size, max_len, lr, warmup_steps, steps, eval_every). Batches are a pure function of (seed, step),
    so an interrupted run in `out_dir` resumes to the same weights and a finished one is loaded, not retrained."""
    torch.manual_seed(seed)
    model = build_model("aeron", **model_config)
    val_batch = collate(val, kind)
    B = min(sizes.batch_size, len(train))
    config = TrainConfig(batch_size=B, block_size=sizes.max_len, lr=sizes.lr, warmup_steps=sizes.warmup_steps,
                         max_steps=steps or sizes.steps, eval_every=sizes.eval_every, log_every=10, seed=seed)

    def batches(step: int) -> dict:
        idx = np.random.default_rng([seed, step]).choice(len(train), B, replace=False)
        return collate([train[i] for i in idx], kind)

    @torch.no_grad()
    def evaluate(m):
        m.eval()
        loss, _ = m.compute_loss(val_batch)
        return {"val_loss": loss.item()}

    trainer = Trainer(model, ByteTokenizer(), config, batches, evaluate, out_dir=out_dir,
                      extra_config=dict(extra_config or {}, expert=kind))
    history = trainer.fit(callback=callback)
    return TrainResult(model.eval(), ByteTokenizer(), history, out_dir)
