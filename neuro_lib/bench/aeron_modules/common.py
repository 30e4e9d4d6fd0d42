"""What every aeron-modules experiment shares: the small encoder-decoder backbone, the training loop
with an equal budget for both arms (optimiser steps, or wall-clock seconds), and answer accuracy.

Both arms of an experiment start from the same backbone weights (built under the same seed) and see
the same batches in the same order (a data rng per seed); the "with" arm adds the module under test.
"""
from __future__ import annotations

import random
import time
from typing import Callable

import torch

from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.aeron.enhanced import AeronEnhanced, EnhancedConfig
from neuro_lib.optim import make_adamw, warmup_cosine
from neuro_lib.progress import Progress


def build(seed: int, vocab_size: int, model: dict, config: EnhancedConfig | None = None, **plugins) -> AeronEnhanced:
    """The backbone under `seed` (the same weights for both arms), wrapped with the modules in `config`."""
    torch.manual_seed(seed)
    backbone = Aeron(AeronConfig(vocab_size=vocab_size, mode="encoder-decoder", **model))
    torch.manual_seed(seed + 1)
    return AeronEnhanced(backbone, config, **plugins)


def train(model: torch.nn.Module, batches: Callable[..., dict], loss: Callable[[dict], torch.Tensor],
          seed: int, steps: int, seconds: float | None, lr: float, warmup: int, desc: str,
          curriculum: bool = False) -> dict:
    """Train for `steps` optimiser steps, or for `seconds` of wall clock when given (then `steps` only
    shapes nothing). `curriculum`: batches are drawn as batches(rng, frac), frac in [0, 1) the share of the
    budget spent (steps or seconds), so a curriculum follows either budget the same way.
    -> {"train_s", "steps", "curve": [(step, loss)]}."""
    opt = make_adamw(model, lr, weight_decay=0.0)
    rng = random.Random(seed * 7919 + 17)       # the same batches for both arms
    model.train()
    curve, step, t0, run_loss = [], 0, time.perf_counter(), None
    with Progress(seconds or steps, desc, unit="s" if seconds else "step") as bar:
        while True:
            spent = time.perf_counter() - t0
            if (seconds and spent >= seconds) or (not seconds and step >= steps):
                break
            frac = spent / seconds if seconds else step / steps
            for g in opt.param_groups:
                g["lr"] = lr * warmup_cosine(frac, step, warmup, 0.1)
            value = loss(batches(rng, frac) if curriculum else batches(rng))
            opt.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            run_loss = value.item() if run_loss is None else 0.9 * run_loss + 0.1 * value.item()
            step += 1
            if step % 25 == 0:
                curve.append((step, round(run_loss, 4)))
            bar.update(time.perf_counter() - t0 - spent if seconds else 1, loss=run_loss)
    model.eval()
    return {"train_s": time.perf_counter() - t0, "steps": step, "curve": curve}


def correct(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """(B,) bool: the answer token is the argmax at the last decoder position (the only one: [BOS] -> answer, or
    the question fed to the decoder, [BOS, ASK, name] -> answer)."""
    return logits[:, -1].argmax(-1) == batch["targets"][:, -1]


def params_of(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
