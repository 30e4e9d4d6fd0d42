"""LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen Linear plus a trainable
low-rank update, y = x W^T + b + (alpha / r) * x A^T B^T.

A (rank x in) starts Kaiming-uniform (as the paper's reference code and peft do), B (out x rank) starts at zero, so
a freshly wrapped model computes exactly what the base computes and training moves only A and B. `merge()` folds
the update back into one plain nn.Linear (W + scale * B @ A), which is how a LoRA child is saved: an ordinary
checkpoint of the base's arch that merging, export and RLHF read like any other.

    n = apply_lora(model, rank=8)          # wraps the attention and MLP projections; freezes everything else
    ... train ...
    merge_lora(model)                       # back to plain nn.Linear modules, in place
    lora_state(model)                       # only the A/B tensors (the adapter), before merging

Tests: tests/test_family_finetune.py (identity at init, merged == unmerged, only A/B get gradients, peft parity).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

# The projections of the attention and SwiGLU blocks (models/layers.py); embeddings and the LM head stay frozen.
TARGETS = ("q_proj", "kv_proj", "out_proj", "gate", "up", "down")


class LoRALinear(nn.Module):
    """A frozen nn.Linear `base` plus (alpha / rank) * B @ A."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None):
        super().__init__()
        if rank <= 0:
            raise ValueError(f"LoRA rank must be positive, got {rank}")
        self.base = base
        self.rank = rank
        self.alpha = float(alpha if alpha is not None else rank)
        self.scale = self.alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        # peft's default: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)) like nn.Linear's own init
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        y = self.base(x)                          # (..., out)
        h = x @ self.lora_A.t()                   # (..., rank)
        return y + self.scale * (h @ self.lora_B.t())  # (..., out)

    def delta(self) -> torch.Tensor:
        """The weight update scale * B @ A, (out, in)."""
        return self.scale * (self.lora_B @ self.lora_A)

    def merge(self) -> nn.Linear:
        """A plain nn.Linear computing what this module computes (W + scale * B @ A; bias unchanged)."""
        b = self.base
        out = nn.Linear(b.in_features, b.out_features, bias=b.bias is not None, device=b.weight.device,
                        dtype=b.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(b.weight + self.delta())
            if b.bias is not None:
                out.bias.copy_(b.bias)
        return out


def apply_lora(model: nn.Module, rank: int, alpha: float | None = None, targets=TARGETS) -> int:
    """Freeze `model` and wrap every nn.Linear whose name ends in one of `targets` with LoRALinear, in place.
    Returns the number of wrapped layers (0 means no target was found: an error, not a silent no-op)."""
    for p in model.parameters():
        p.requires_grad_(False)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not found:
        raise ValueError(f"no nn.Linear named one of {targets} in {type(model).__name__}")
    for name, m in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(m, rank, alpha))
    return len(found)


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `model` by its merged nn.Linear, in place (parameters trainable again)."""
    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, m in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.merge())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter alone: every lora_A / lora_B tensor by its name in `model`."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith(("lora_A", "lora_B"))}
