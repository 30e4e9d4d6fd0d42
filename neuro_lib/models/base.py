"""The language-model interface every model in neuro_lib implements (DESIGN.md).

    forward(tokens[B,T]) -> logits[B,T,V]          # the full pass, one name in every model
    forward_aux(tokens) -> (logits, aux: dict)     # the same pass with a model's extra outputs ({} if none)
    init_state(batch_size) -> state;  step(tokens[B,t], state) -> (logits[B,t,V], state)
    compute_loss(batch) -> (loss, parts)   # the one place auxiliary losses enter
    config (a JSON-serialisable dataclass), num_params(), max_len (None = unbounded)

`compute_loss` takes a batch dict with "tokens" and "targets" (B, T) and optionally
"loss_mask" (B, T; 1 where the target counts). Models with auxiliary heads override it
and return their extra terms in `parts` (floats for logging); the Trainer only ever
calls this method, so every model trains with the same loop.

A decoding state (GPT's KV cache, AeronState, MambaState, RNKState) is a typed object with
`lengths` (positions per row), `checkpoint()`, `rollback(n) -> lengths reached` (KV caches
truncate anywhere; recurrent states return to their checkpoint and the caller re-feeds the
rest), `row(b)` (a one-row view; absent where `ragged` is False), `fork(n)` (n rows continuing
a one-row state) and `nbytes()`. `cache_kinds` lists the `cache=` values `init_state` takes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def check_positive(config, *names: str) -> None:
    """Raise ValueError naming the first of `config`'s fields `names` that is not positive."""
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {value}")


def renamed(kw: dict, names: dict[str, str], owner: str) -> dict:
    """kw with each alias in `names` (alias -> field) replaced by its field; giving both is an error."""
    out = dict(kw)
    for alias, field in names.items():
        if alias in out:
            if field in out:
                raise ValueError(f"{owner}: {alias!r} and {field!r} name the same field; give one")
            out[field] = out.pop(alias)
    return out


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean next-token cross-entropy in nats over positions where mask is 1."""
    if mask is None:  # one fused op: no per-position loss buffer and mean
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction="none")
    mask = mask.reshape(-1).to(losses.dtype)
    return (losses * mask).sum() / mask.sum().clamp_min(1.0)


def gpt2_init(model: nn.Module, depth: int, residual_out: tuple[str, ...]) -> None:
    """GPT-2's initialisation (Radford et al. 2019): every Linear and Embedding weight N(0, 0.02), Linear
    biases zero, and the weights that write into the residual stream (parameter names ending in
    `residual_out`) N(0, 0.02 / sqrt(2 * depth)), so the residual's variance does not grow with depth."""
    def init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    model.apply(init)
    for name, p in model.named_parameters():
        if name.endswith(residual_out):
            nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * depth))


def param_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level child module (shared tensors counted once, where first seen)."""
    seen, out = set(), {}
    for name, child in model.named_children():
        n = 0
        for p in child.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        out[name] = n
    return out


class LanguageModel(nn.Module):
    config: object
    max_len: int | None = None
    cache_kinds: tuple = ()  # the `cache=` values init_state takes (models with a KV cache: contiguous, paged)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Embedding))
        return n

    def forward_aux(self, tokens: torch.Tensor, **kw):
        """tokens (B, T) -> (logits (B, T, V), the model's extra outputs: {} here; RNK's per-chunk heads)."""
        return self(tokens, **kw), {}

    def compute_loss(self, batch: dict):
        logits = self(batch["tokens"])
        loss = masked_cross_entropy(logits, batch["targets"], batch.get("loss_mask"))
        return loss, {"lm_loss": loss.item()}

    def init_state(self, batch_size: int):
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state):
        raise NotImplementedError
