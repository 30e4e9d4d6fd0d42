"""A bare training loop for small in-memory experiments: no run folder, no checkpoints, no tokenizer.

The Trainer (trainer.py) owns language-model runs that must survive their process; the module experiments
(bench/aeron_modules/) train dozens of tiny classifiers for a few hundred steps each and only need the same
optimiser and schedule (optim.py: AdamW groups, warmup + cosine) under an equal budget: `steps` optimiser
steps, or `seconds` of training when given (the schedule then follows the clock), whichever ends first.

    out = fit(model, lambda step: loss_of(model, batch(step)), FitConfig(steps=300, lr=3e-3))
    out["losses"], out["steps"], out["train_s"]
Tests: tests/test_aeron_learn.py (the budget is honoured, the loss goes down).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from neuro_lib.optim import make_adamw, warmup_cosine
from neuro_lib.progress import Progress


@dataclass
class FitConfig:
    steps: int = 300              # optimiser steps (the budget unless `seconds` ends first)
    seconds: float | None = None  # wall-clock budget in seconds (None = steps only)
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    min_lr_ratio: float = 0.1
    desc: str = "fit"             # progress label


def fit(model: torch.nn.Module, loss_fn: Callable[[int], torch.Tensor], config: FitConfig) -> dict:
    """Minimise loss_fn(step) -> scalar; -> {"losses": [per step], "steps": done, "train_s": seconds}."""
    if config.steps < 1:
        raise ValueError(f"fit needs at least one step, got {config.steps}")
    opt = make_adamw(model, config.lr, config.weight_decay, betas=(0.9, 0.95))
    model.train()
    losses, t0 = [], time.perf_counter()
    with Progress(config.steps, config.desc, unit="step") as bar:
        for step in range(config.steps):
            elapsed = time.perf_counter() - t0
            if config.seconds is not None and elapsed >= config.seconds:
                break
            progress = elapsed / config.seconds if config.seconds else step / config.steps
            for g in opt.param_groups:
                g["lr"] = config.lr * warmup_cosine(progress, step, config.warmup_steps, config.min_lr_ratio)
            loss = loss_fn(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            losses.append(loss.item())
            bar.update(1, loss=losses[-1])
    model.eval()
    return {"losses": losses, "steps": len(losses), "train_s": time.perf_counter() - t0}
