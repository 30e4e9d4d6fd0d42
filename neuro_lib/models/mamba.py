"""Mamba: a selective state-space language model in PyTorch. Config, block, model.

References: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces" (2023), section 3 and algorithm 2. The RNK seed (seeds/rnk.md) stacks these
blocks over raw bytes.

One layer (MambaBlock), for input u (B, L, d_model):

    x, z = in_proj(RMSNorm(u))                 # two (B, L, E) streams, E = expand * d_model
    x = SiLU(causal depthwise conv(x))         # kernel d_conv
    Δ, B, C = x_proj(x)                        # Δ from a rank-R bottleneck, B and C (B, L, N)
    Δ = softplus(dt_proj(Δ))                   # input-dependent step size (B, L, E)
    A = -exp(A_log)                            # diagonal, negative real (E, N)
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t   # selective SSM, state (B, E, N)
    y_t = C_t · h_t + D ⊙ x_t
    out = u + out_proj(y ⊙ SiLU(z))

The selective SSM (the h and y lines) is `selective_ssm` in models/scans.py, which runs it
the way MambaConfig.scan names: a recurrence over built tensors ("sequential", the
reference; "chunked"; "compiled") or the whole SSM as one compiled loop ("fused").

    neuro train --arch mamba --corpus stdlib-docs --time-budget 60 --out runs/mamba
    neuro bench scan
Tests: tests/test_mamba.py (step() equals forward(); the scans, models/scans.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.models.base import LanguageModel, check_positive
from neuro_lib.models.layers import RMSNorm
from neuro_lib.models.scans import KINDS, selective_ssm


@dataclass
class MambaConfig:
    vocab_size: int = 256      # bytes
    d_model: int = 256         # D, the residual width
    n_layer: int = 4
    d_state: int = 16          # N, SSM state size per channel
    d_conv: int = 4            # depthwise causal conv kernel
    expand: int = 2            # E = expand * d_model inner channels
    dt_rank: int = 0           # R, rank of the Δ projection (0 = ceil(d_model / 16))
    dt_min: float = 1e-3       # initial Δ range (log-uniform)
    dt_max: float = 1e-1
    scan: str = "auto"         # models/scans.py: "fused" (whole SSM compiled, CPU), "compiled", "chunked",
                               # "sequential" (reference) or "auto"
    chunk: int = 8             # Q, steps per chunk of the chunked scan
    block_size: int = 256      # training window (the model itself has no length limit)

    def __post_init__(self):
        check_positive(self, "vocab_size", "d_model", "n_layer", "d_state", "d_conv", "expand", "block_size")
        if self.scan not in KINDS:
            raise ValueError(f"MambaConfig.scan must be one of {list(KINDS)}, got {self.scan!r}")
        if self.dt_rank == 0:
            self.dt_rank = math.ceil(self.d_model / 16)

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba layer. State for decoding: (conv_state (B, E, d_conv-1), ssm_state (B, E, N))."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        E, N, R = cfg.d_inner, cfg.d_state, cfg.dt_rank
        self.cfg = cfg
        self.norm = RMSNorm(cfg.d_model)
        self.in_proj = nn.Linear(cfg.d_model, 2 * E, bias=False)
        self.conv = nn.Conv1d(E, E, cfg.d_conv, groups=E, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, cfg.d_model, bias=False)
        # Δ = softplus(bias) starts log-uniform in [dt_min, dt_max] (Mamba's init)
        dt = torch.exp(torch.rand(E) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            nn.init.uniform_(self.dt_proj.weight, -R ** -0.5, R ** -0.5)

    def forward(self, u: torch.Tensor, state=None):
        """u (B, L, D) -> (out (B, L, D), new state). state None = start of sequence."""
        cfg, (B, L, _) = self.cfg, u.shape
        E, N, K = cfg.d_inner, cfg.d_state, cfg.d_conv
        x, z = self.in_proj(self.norm(u)).chunk(2, dim=-1)                  # (B, L, E) each
        conv_prev = x.new_zeros(B, E, K - 1) if state is None else state[0]
        x_pad = torch.cat([conv_prev, x.transpose(1, 2)], dim=2)           # (B, E, K-1+L)
        x = F.silu(self.conv(x_pad)).transpose(1, 2)                        # (B, L, E) causal conv
        dt, Bm, Cm = self.x_proj(x).split([cfg.dt_rank, N, N], dim=-1)     # (B, L, R), (B, L, N) x2
        dt = F.softplus(self.dt_proj(dt))                                   # (B, L, E)
        A = -torch.exp(self.A_log)                                          # (E, N)
        y, h_last = selective_ssm(cfg.scan, x, dt, A, Bm, Cm, None if state is None else state[1], cfg.chunk)
        y = y + self.D * x                                                  # (B, L, E)
        out = u + self.out_proj(y * F.silu(z))
        return out, (x_pad[:, :, x_pad.size(2) - (K - 1):].clone(), h_last)


class Mamba(LanguageModel):
    """Byte-level Mamba LM: embedding, n_layer MambaBlocks, RMSNorm, tied LM head."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.config = config
        self.max_len = None  # a recurrent model: no context limit
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        nn.init.normal_(self.tok_emb.weight, 0.0, 0.02)
        for blk in self.blocks:
            nn.init.normal_(blk.in_proj.weight, 0.0, 0.02)
            nn.init.normal_(blk.x_proj.weight, 0.0, 0.02)
            nn.init.normal_(blk.out_proj.weight, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    def hidden(self, tokens: torch.Tensor, state=None):
        """tokens (B, T) -> (final hidden states (B, T, D), per-layer states)."""
        x = self.tok_emb(tokens)                                            # (B, T, D)
        states = []
        for i, blk in enumerate(self.blocks):
            x, s = blk(x, None if state is None else state[i])
            states.append(s)
        return self.norm_f(x), states

    def forward(self, tokens):
        """tokens (B, T) -> logits (B, T, V)."""
        return self.lm_head(self.hidden(tokens)[0])

    def init_state(self, batch_size: int):
        c, p = self.config, next(self.parameters())
        return [(p.new_zeros(batch_size, c.d_inner, c.d_conv - 1), p.new_zeros(batch_size, c.d_inner, c.d_state))
                for _ in range(c.n_layer)]

    def step(self, tokens, state):
        """tokens (B, t) continuing from state -> (logits (B, t, V), new state)."""
        h, state = self.hidden(tokens, state)
        return self.lm_head(h), state
