"""Shared transformer blocks: causal self-attention with an optional KV cache.

Attention goes through `F.scaled_dot_product_attention`. With a cache, queries at
positions pos..pos+t-1 attend to every cached key up to their own position.
Grouped-query attention: `n_kv_head` key/value heads shared by n_head/n_kv_head
query heads each (n_kv_head == n_head is ordinary multi-head attention).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_mask(t: int, pos: int, device) -> torch.Tensor:
    """(t, pos+t) bool mask: query i (absolute pos+i) may see key j iff j <= pos+i."""
    q = torch.arange(pos, pos + t, device=device)[:, None]
    k = torch.arange(pos + t, device=device)[None, :]
    return k <= q


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None, bias: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        n_kv_head = n_kv_head or n_head
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        if n_head % n_kv_head:
            raise ValueError(f"n_head={n_head} must be divisible by n_kv_head={n_kv_head}")
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * n_kv_head * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0, rotary=None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C). `rotary(q, k, pos)` applies position rotations if given."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k, v = self.kv_proj(x).view(B, T, 2, self.n_kv_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, Hkv, T, D)
        pos = cache.pos if cache is not None else 0
        if rotary is not None:
            q, k = rotary(q, k, pos)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        p = self.dropout if self.training else 0.0
        gqa = self.n_kv_head != self.n_head
        if pos == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, enable_gqa=gqa)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(T, pos, x.device), dropout_p=p,
                                               enable_gqa=gqa)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))
