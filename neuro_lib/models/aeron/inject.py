"""The two small operations every Aeron enhancement module shares (seeds/aeron.md, "Enhancement pipeline"):
pooling the encoder output into one summary per row, and injecting a set of items (knowledge-graph
triples, episodic-memory reads, scratchpad slots) into the encoder output by cross-attention + residual.

    s = masked_mean(h, mask)                    # (B, S, C), (B, S) -> (B, C)
    h = Injection(d_model, n_head)(h, items, item_mask)   # (B, S, C), (B, M, C), (B, M) -> (B, S, C)

A row with no valid item is left exactly as it was (attention over nothing is undefined, so it is not
computed for that row). Tests: tests/test_aeron_modules.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from neuro_lib.models.layers import CrossAttention, RMSNorm


def masked_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """h (B, S, C), mask (B, S) bool (True = real) or None -> (B, C)."""
    if mask is None:
        return h.mean(1)
    w = mask.to(h.dtype)[..., None]                       # (B, S, 1)
    return (h * w).sum(1) / w.sum(1).clamp_min(1.0)


class Injection(nn.Module):
    """x + out(attention(norm(x) -> items)): the encoder output reads a set of items."""

    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.attn = CrossAttention(d_model, n_head, bias=False)

    def update(self, x: torch.Tensor, items: torch.Tensor, item_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, C), items (B, M, C), item_mask (B, M) bool -> what the items add to x, (B, S, C)."""
        if item_mask is None:
            return self.attn(self.norm(x), self.attn.project_kv(items))
        has = item_mask.any(1)                            # (B,) rows with something to read
        if has.all():
            return self.attn(self.norm(x), self.attn.project_kv(items), item_mask)
        out = torch.zeros_like(x)
        rows = has.nonzero().squeeze(1)
        if rows.numel():
            upd = self.attn(self.norm(x[rows]), self.attn.project_kv(items[rows]), item_mask[rows])  # (b, S, C)
            out = out.index_add(0, rows, upd)
        return out

    def forward(self, x: torch.Tensor, items: torch.Tensor, item_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, C), items (B, M, C), item_mask (B, M) bool -> (B, S, C)."""
        return x + self.update(x, items, item_mask)
