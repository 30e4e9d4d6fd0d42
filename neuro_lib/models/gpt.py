"""GPT baseline: NanoRAG's model (seeds/nanorag.md), a pre-norm decoder-only transformer.

Learned absolute positions, pre-norm LayerNorm, residuals, causal self-attention via
scaled_dot_product_attention, a GELU MLP, a final LayerNorm and an LM head tied to the
token embedding. NanoConfig's defaults are kept as this config's defaults (vocab 10 000,
hidden 384, 6 layers, 6 heads, FFN 1 536, max length 512); the small CPU sizes live in
profiles.py.

    neuro train --arch gpt --corpus stdlib-docs --time-budget 120 --out runs/gpt
Tests: tests/test_gpt.py (KV-cache decoding equals the full forward pass).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.base import LanguageModel, check_positive, gpt2_init
from neuro_lib.models.cache import CACHE_KINDS, KVCache, PagedKVCache, empty_cache
from neuro_lib.models.layers import CausalSelfAttention, dropout_layer


@dataclass
class GPTConfig:
    vocab_size: int = 10_000   # NanoConfig.vocab_size
    d_model: int = 384         # width C (NanoConfig's hidden size)
    n_layer: int = 6           # depth
    n_head: int = 6
    d_ff: int = 1536           # FFN hidden width
    block_size: int = 512      # longest sequence (learned positions), the training context
    dropout: float = 0.1
    bias: bool = True
    tie_weights: bool = True   # LM head shares the token embedding matrix (False: a separate head, the recipe option)
    qk_norm: bool = False      # RMS-normalise queries and keys per head (models/layers.py)

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        check_positive(self, "vocab_size", "d_model", "n_layer", "n_head", "d_ff", "block_size")


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.drop = dropout_layer(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(torch.nn.functional.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg.d_model, cfg.n_head, bias=cfg.bias, dropout=cfg.dropout,
                                        qk_norm=cfg.qk_norm)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = dropout_layer(cfg.dropout)

    def forward(self, x, cache=None, layer=0):
        x = x + self.drop(self.attn(self.ln1(x), cache, layer))
        return x + self.mlp(self.ln2(x))


class GPT(LanguageModel):
    cache_kinds = CACHE_KINDS

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.max_len = config.block_size
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.drop = dropout_layer(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        gpt2_init(self, config.n_layer, residual_out=("out_proj.weight", "mlp.proj.weight"))

    def _run(self, tokens, cache=None):
        """tokens (B, T) -> logits (B, T, V), positions starting at the cache's position."""
        B, T = tokens.shape
        pos = cache.pos if cache is not None else 0  # (B,) per-row starts in a ragged batch
        end = int(pos.max()) + T if isinstance(pos, torch.Tensor) else pos + T
        if end > self.config.block_size:
            raise ValueError(f"sequence of {end} tokens exceeds block_size {self.config.block_size}")
        positions = torch.arange(T, device=tokens.device)
        positions = pos[:, None] + positions if isinstance(pos, torch.Tensor) else pos + positions  # (T,) or (B, T)
        x = self.drop(self.tok_emb(tokens) + self.pos_emb(positions))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.advance(T)
        return self.lm_head(self.ln_f(x))

    def forward(self, tokens):
        return self._run(tokens)

    def init_state(self, batch_size: int, cache: str = "contiguous", block_size: int = 16) -> KVCache | PagedKVCache:
        """The decoding state is the KV cache itself: contiguous (block_size positions per row, preallocated)
        or `cache="paged"` (blocks of `block_size` tokens taken as rows grow; models/cache.py)."""
        c = self.config
        return empty_cache(c.n_layer, batch_size, c.n_head, c.d_model // c.n_head, c.block_size,
                           next(self.parameters()), cache, block_size)

    def step(self, tokens, state: KVCache | PagedKVCache):
        return self._run(tokens, state), state
