"""A nanoGPT-equivalent baseline: the plainest pre-LN GPT, as the yardstick the recipe is timed against.

Written from scratch to the shape of Karpathy's nanoGPT model.py (not copied): learned absolute positions,
pre-LayerNorm blocks, one fused QKV projection, causal attention through `scaled_dot_product_attention`
with `is_causal=True` (the fused kernel, no mask tensor), a 4x GELU MLP, a final LayerNorm and an LM head
tied to the token embedding; GPT-2 initialisation. No dropout module exists at all when dropout is 0, so
the training step holds only the operations the model needs. It decodes with the shared KV cache like GPT
(`init_state`/`step`), so it can also draft or be drafted for.

    neuro bench lm --arch nanogpt,gpt --corpus shakespeare --time-budget 200
Tests: tests/test_recipe.py (cached decoding equals the full pass; same parameter count as GPT at equal sizes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.models.base import LanguageModel, check_positive, gpt2_init
from neuro_lib.models.cache import CACHE_KINDS, KVCache, PagedKVCache, empty_cache
from neuro_lib.models.layers import causal_mask


@dataclass
class NanoGPTConfig:
    vocab_size: int = 256
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    d_ff: int = 512
    block_size: int = 128
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        check_positive(self, "vocab_size", "d_model", "n_layer", "n_head", "d_ff", "block_size")


class Attention(nn.Module):
    def __init__(self, cfg: NanoGPTConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x, cache=None, layer=0):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).unbind(2)  # (B, T, H, D) each
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)          # (B, H, T, D)
        mask = None
        if cache is not None:
            mask = causal_mask(T, cache.pos, x.device)  # queries at pos.. see every cached key up to their own
            k, v = cache.update(layer, k, v)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=p)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: NanoGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, bias=cfg.bias)
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.p = cfg.dropout

    def forward(self, x, cache=None, layer=0):
        a = self.attn(self.ln1(x), cache, layer)      # (B, T, C)
        if self.p and self.training:
            a = F.dropout(a, self.p)
        x = x + a
        m = self.proj(F.gelu(self.fc(self.ln2(x))))    # (B, T, C)
        if self.p and self.training:
            m = F.dropout(m, self.p)
        return x + m


class NanoGPT(LanguageModel):
    cache_kinds = CACHE_KINDS

    def __init__(self, config: NanoGPTConfig):
        super().__init__()
        self.config = config
        self.max_len = config.block_size
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        gpt2_init(self, config.n_layer, residual_out=("out_proj.weight", ".proj.weight"))

    def _run(self, tokens, cache=None):
        B, T = tokens.shape
        pos = cache.pos if cache is not None else 0
        end = int(pos.max()) + T if isinstance(pos, torch.Tensor) else pos + T
        if end > self.config.block_size:
            raise ValueError(f"sequence of {end} tokens exceeds block_size {self.config.block_size}")
        positions = torch.arange(T, device=tokens.device)
        positions = pos[:, None] + positions if isinstance(pos, torch.Tensor) else pos + positions
        x = self.tok_emb(tokens) + self.pos_emb(positions)  # (B, T, C)
        if self.config.dropout and self.training:
            x = F.dropout(x, self.config.dropout)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.advance(T)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    def forward(self, tokens):
        return self._run(tokens)

    def compute_loss(self, batch: dict):
        """Plain mean cross-entropy (one fused op) when no loss mask is given; the shared masked path otherwise."""
        if batch.get("loss_mask") is not None:
            return super().compute_loss(batch)
        logits = self(batch["tokens"])
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), batch["targets"].reshape(-1))
        return loss, {}

    def init_state(self, batch_size: int, cache: str = "contiguous", block_size: int = 16) -> KVCache | PagedKVCache:
        c = self.config
        return empty_cache(c.n_layer, batch_size, c.n_head, c.d_model // c.n_head, c.block_size,
                           next(self.parameters()), cache, block_size)

    def step(self, tokens, state: KVCache | PagedKVCache):
        return self._run(tokens, state), state
