"""AdamW with decay / no-decay parameter groups and the warmup + cosine schedule.

Shared by the Trainer (train/trainer.py) and the VQ-VAE tokenizer (tokenizers/vq.py), so it sits
below both layers and imports nothing from neuro_lib. Tests: tests/test_train.py.
"""
from __future__ import annotations

import math

import torch


def make_adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """Matrices (dim >= 2) decay; biases, norm gains and other vectors do not."""
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_cosine(progress: float, step: int, warmup_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup over `warmup_steps`, then cosine from 1 to `min_ratio` as
    `progress` (fraction of the budget spent, steps or seconds) goes from 0 to 1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
