"""Shared transformer blocks: norms, rotary positions, attention with a KV cache, SwiGLU.

- `RMSNorm`: root-mean-square normalisation with a learned gain, no mean-centring
  (Zhang & Sennrich 2019).
- `RotaryEmbedding`: rotary position embeddings (RoPE, Su et al. 2021), "rotate half"
  layout, configurable base `theta`; angles are computed for the positions in use, so a
  model can be evaluated past its training length (extrapolation is measured, not assumed).
- `CausalSelfAttention`: self-attention through `F.scaled_dot_product_attention`, causal
  by default, bidirectional with `causal=False` (an encoder). With a cache, queries at
  positions pos..pos+t-1 attend to every cached key up to their own position.
  Grouped-query attention: `n_kv_head` key/value heads shared by n_head/n_kv_head query
  heads each (n_kv_head == n_head is ordinary multi-head attention); only KV heads are cached.
  `qk_norm=True` RMS-normalises each head's query and key (learned gain per head dimension) before
  rotary and the dot product (Dehghani et al. 2023; modded-nanoGPT), which bounds the attention logits.
- `CrossAttention`: queries from the decoder, keys/values projected once from an
  encoder's output (`project_kv`) and reused at every decoding step; GQA, no rotary.
- `SwiGLU`: the gated feed-forward down(silu(gate(x)) * up(x)) (Shazeer 2020).

Tests: tests/test_gpt.py (GPT uses the attention), tests/test_aeron.py (all of them).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_mask(t: int, pos, device) -> torch.Tensor:
    """Query i (absolute pos+i) may see key j iff j <= pos+i: a (t, pos+t) bool mask, or with
    per-row positions pos (B,) of a ragged batch a (B, 1, t, max(pos)+t) one."""
    if isinstance(pos, torch.Tensor):
        q = (pos[:, None] + torch.arange(t, device=device))[:, None, :, None]  # (B, 1, t, 1)
        k = torch.arange(int(pos.max()) + t, device=device)                    # (S,)
        return k <= q
    q = torch.arange(pos, pos + t, device=device)[:, None]
    k = torch.arange(pos + t, device=device)[None, :]
    return k <= q


def _attention_mask(t: int, pos: int, causal: bool, key_mask: torch.Tensor | None, device):
    """The attn_mask for sdpa (None when `is_causal` can do the job), broadcastable to (B, H, t, S).
    key_mask: (B, S) bool, True where a key may be attended (padding is False)."""
    ragged = isinstance(pos, torch.Tensor)
    mask = causal_mask(t, pos, device) if causal and (ragged or pos > 0 or key_mask is not None) else None
    if key_mask is not None:
        km = key_mask[:, None, None, :]  # (B, 1, 1, S)
        mask = km if mask is None else mask & km
    return mask


def dropout_layer(p: float) -> nn.Module:
    """nn.Dropout(p), or nn.Identity when p is 0: a zero dropout still dispatches an op per call and step."""
    return nn.Dropout(p) if p else nn.Identity()


class RMSNorm(nn.Module):
    """x / rms(x) * g over the last dimension, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight


class RotaryEmbedding(nn.Module):
    """RoPE: rotates each (x_i, x_{i+D/2}) pair of a head by angle pos * theta^(-2i/D).

    Called as `rotary(q, k, pos)` with q (B, H, T, D), k (B, H_kv, T, D) whose first
    position is `pos`; returns rotated (q, k). The dot product of a query at position m
    and a key at n then depends on m - n only.
    """

    def __init__(self, head_dim: int, theta: float = 10_000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def angles(self, pos, t: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape (t, D/2) for positions pos..pos+t-1; (B, 1, t, D/2) for per-row pos (B,)."""
        p = torch.arange(t, device=device, dtype=torch.float32)
        if isinstance(pos, torch.Tensor):  # a ragged batch: row b starts at pos[b]
            p = (pos.to(device=device, dtype=torch.float32)[:, None] + p)[:, None]  # (B, 1, t)
        else:
            p = p + pos
        ang = p[..., None] * self.inv_freq.to(device)  # (..., t, D/2)
        return ang.cos(), ang.sin()

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.float().chunk(2, dim=-1)  # (..., T, D/2) each
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)

    def forward(self, q: torch.Tensor, k: torch.Tensor, pos: int = 0):
        cos, sin = self.angles(pos, q.shape[-2], q.device)
        return self.rotate(q, cos, sin), self.rotate(k, cos, sin)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None, bias: bool = True,
                 dropout: float = 0.0, causal: bool = True, qk_norm: bool = False):
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
        self.causal = causal
        if qk_norm:  # absent otherwise: checkpoints without it keep their state_dict keys
            self.q_norm = RMSNorm(self.head_dim)
            self.k_norm = RMSNorm(self.head_dim)

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0, rotary=None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C). `rotary(q, k, pos)` applies position rotations if given;
        key_mask (B, S) bool marks keys that may be attended (S = cached + new positions)."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k, v = self.kv_proj(x).view(B, T, 2, self.n_kv_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, Hkv, T, D)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)  # (B, H, T, D), (B, Hkv, T, D): unit RMS per head, then gains
        pos = cache.pos if cache is not None else 0
        if rotary is not None:
            q, k = rotary(q, k, pos)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        mask = _attention_mask(T, pos, self.causal, key_mask, x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           enable_gqa=self.n_kv_head != self.n_head)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class CrossAttention(nn.Module):
    """Decoder queries attend to an encoder output `memory` (B, S, C) through GQA, no rotary."""

    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None, bias: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        n_kv_head = n_kv_head or n_head
        if d_model % n_head or n_head % n_kv_head:
            raise ValueError(f"d_model={d_model}, n_head={n_head}, n_kv_head={n_kv_head} do not divide evenly")
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * n_kv_head * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """memory (B, S, C) -> k, v (B, H_kv, S, D); computed once per source and reused."""
        B, S, _ = memory.shape
        k, v = self.kv_proj(memory).view(B, S, 2, self.n_kv_head, self.head_dim).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor],
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C), kv from `project_kv`, key_mask (B, S) bool -> (B, T, C)."""
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        mask = key_mask[:, None, None, :] if key_mask is not None else None  # (B, 1, 1, S)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           enable_gqa=self.n_kv_head != self.n_head)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): (B, T, C) -> (B, T, C) through a hidden width `hidden`."""

    def __init__(self, d_model: int, hidden: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.gate = nn.Linear(d_model, hidden, bias=bias)
        self.up = nn.Linear(d_model, hidden, bias=bias)
        self.down = nn.Linear(hidden, d_model, bias=bias)
        self.drop = dropout_layer(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))
