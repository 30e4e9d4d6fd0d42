"""Aeron backbone (seeds/aeron.md): a pre-norm transformer with grouped-query attention,
rotary positions, SwiGLU feed-forwards, RMSNorm and tied input/output embeddings.

Two layouts behind the same language-model interface (models/base.py):

- `mode="decoder"` (default, for text): token embedding -> N decoder blocks
  [RMSNorm -> causal GQA self-attention with RoPE -> residual; RMSNorm -> SwiGLU ->
  residual] -> RMSNorm -> tied output projection.
- `mode="encoder-decoder"` (the seed's layout, for seq2seq such as text-to-JSON): the
  source goes through encoder blocks (bidirectional GQA self-attention with RoPE, SwiGLU)
  and an RMSNorm; each decoder block adds RMSNorm -> GQA cross-attention (no RoPE) ->
  residual between its self-attention and its feed-forward. The source is passed as
  `forward(tokens, src=src_ids, src_mask=None)` or, for decoding,
  `init_state(batch_size, src=src_ids)`, which encodes it once and projects every
  decoder layer's cross-attention keys/values once; `step()` reuses them.
  `src_mask` (B, S) bool marks real source tokens (False = padding); for training,
  the batch dict carries "src" / "src_mask" next to "tokens" / "targets".

Incremental decoding caches only the H_kv key/value heads: a contiguous `KVCache` or a
`PagedKVCache` (`init_state(..., cache="paged")`), which give the same logits.
The seed's reasoning engine, memories and learning modules wrap this model (enhanced.py, vision.py);
`encode_embeddings` and `decode` let them work on the source embeddings and on the encoder output between
the two stacks.

    from neuro_lib.models.aeron import Aeron, preset
    model = Aeron(preset("aeron-small", mode="decoder", n_encoder_layer=0))
Tests: tests/test_aeron.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.base import LanguageModel, gpt2_init, masked_cross_entropy
from neuro_lib.models.cache import CACHE_KINDS, KVCache, PagedKVCache, empty_cache
from neuro_lib.models.layers import (CausalSelfAttention, CrossAttention, RMSNorm, RotaryEmbedding, SwiGLU,
                                    dropout_layer)



@dataclass
class AeronState:
    """Decoding state: the decoder's self-attention cache and, in encoder-decoder mode, the
    per-layer cross-attention (k, v) of the encoded source with its padding mask."""
    cache: KVCache | PagedKVCache
    cross_kv: list | None = None           # [(k, v)] per decoder layer, each (B, H_kv, S, D)
    src_mask: torch.Tensor | None = None   # (B, S) bool
    ragged = True                          # rows of different lengths decode together

    @property
    def pos(self):
        return self.cache.pos

    @property
    def lengths(self) -> list[int]:
        return self.cache.lengths

    def checkpoint(self) -> None:
        """Nothing to save: the KV cache truncates to any position and the source never changes."""

    def rollback(self, n) -> list[int]:
        return self.cache.rollback(n)

    def row(self, b: int) -> "AeronState":
        cross = None if self.cross_kv is None else [(k[b:b + 1], v[b:b + 1]) for k, v in self.cross_kv]
        return AeronState(self.cache.row(b), cross, None if self.src_mask is None else self.src_mask[b:b + 1])

    def nbytes(self) -> int:
        return self.cache.nbytes()

    def fork(self, n: int) -> "AeronState":
        cross = None if self.cross_kv is None else [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1))
                                                   for k, v in self.cross_kv]
        return AeronState(self.cache.fork(n), cross, None if self.src_mask is None else self.src_mask.expand(n, -1))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: AeronConfig):
        super().__init__()
        self.norm1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg.d_model, cfg.n_head, cfg.n_kv_head, bias=False, dropout=cfg.dropout,
                                        causal=False)
        self.norm2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = SwiGLU(cfg.d_model, cfg.d_ff, dropout=cfg.dropout)
        self.drop = dropout_layer(cfg.dropout)

    def forward(self, x, rotary, src_mask=None):
        x = x + self.drop(self.attn(self.norm1(x), rotary=rotary, key_mask=src_mask))
        return x + self.ffn(self.norm2(x))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: AeronConfig, cross: bool):
        super().__init__()
        self.norm1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = CausalSelfAttention(cfg.d_model, cfg.n_head, cfg.n_kv_head, bias=False,
                                             dropout=cfg.dropout, qk_norm=cfg.qk_norm)
        if cross:
            self.norm_cross = RMSNorm(cfg.d_model, cfg.norm_eps)
            self.cross_attn = CrossAttention(cfg.d_model, cfg.n_head, cfg.n_kv_head, bias=False,
                                             dropout=cfg.dropout)
        self.norm2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = SwiGLU(cfg.d_model, cfg.d_ff, dropout=cfg.dropout)
        self.drop = dropout_layer(cfg.dropout)

    def forward(self, x, rotary, cache=None, layer=0, cross_kv=None, src_mask=None):
        x = x + self.drop(self.self_attn(self.norm1(x), cache, layer, rotary))
        if cross_kv is not None:
            x = x + self.drop(self.cross_attn(self.norm_cross(x), cross_kv, src_mask))
        return x + self.ffn(self.norm2(x))


class Aeron(LanguageModel):
    cache_kinds = CACHE_KINDS

    def __init__(self, config: AeronConfig):
        super().__init__()
        self.config = config
        self.max_len = config.block_size
        self.encoder_decoder = config.mode == "encoder-decoder"
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.drop = dropout_layer(config.dropout)
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta)
        if self.encoder_decoder:
            self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_encoder_layer))
            self.encoder_norm = RMSNorm(config.d_model, config.norm_eps)
        self.decoder = nn.ModuleList(DecoderBlock(config, self.encoder_decoder)
                                     for _ in range(config.n_decoder_layer))
        self.decoder_norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        if self.tok_emb.weight.device.type != "meta":  # a meta model (budget.py) has shapes, nothing to fill
            gpt2_init(self, config.n_encoder_layer + config.n_decoder_layer,
                      residual_out=("out_proj.weight", "ffn.down.weight"))

    # -- encoder (encoder-decoder mode) ----------------------------------------------------------
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S) ids -> encoder output (B, S, C)."""
        if not self.encoder_decoder:
            raise ValueError("this Aeron is decoder-only (mode='decoder'); it takes no source")
        if src.shape[1] > self.config.block_size:
            raise ValueError(f"source of {src.shape[1]} tokens exceeds block_size "
                             f"{self.config.block_size}")
        return self.encode_embeddings(self.tok_emb(src), src_mask)

    def encode_embeddings(self, x: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Source embeddings (B, S, C), e.g. tokens fused with image patches (vision.py) -> encoder output (B, S, C)."""
        if not self.encoder_decoder:
            raise ValueError("this Aeron is decoder-only (mode='decoder'); it takes no source")
        x = self.drop(x)
        for block in self.encoder:
            x = block(x, self.rotary, src_mask)
        return self.encoder_norm(x)

    def cross_kv(self, memory: torch.Tensor) -> list:
        """Encoder output (B, S, C) -> every decoder layer's cross-attention (k, v)."""
        return [block.cross_attn.project_kv(memory) for block in self.decoder]

    def _source(self, src, src_mask):
        """Check the source against the mode; -> (cross_kv or None, src_mask as bool or None)."""
        if self.encoder_decoder and src is None:
            raise ValueError("encoder-decoder Aeron needs a source: pass src=(B, S) token ids")
        if src is None:
            if src_mask is not None:
                raise ValueError("src_mask given without src")
            return None, None
        if src_mask is not None:
            src_mask = src_mask.bool()
            if src_mask.shape != src.shape:
                raise ValueError(f"src_mask shape {tuple(src_mask.shape)} must equal src shape {tuple(src.shape)}")
        return self.cross_kv(self.encode(src, src_mask)), src_mask

    # -- decoder --------------------------------------------------------------------------------
    def _run(self, tokens, cache=None, cross_kv=None, src_mask=None):
        """tokens (B, T) -> logits (B, T, V), positions starting at the cache's position."""
        B, T = tokens.shape
        pos = cache.pos if cache is not None else 0  # (B,) per-row starts in a ragged batch
        end = int(pos.max()) + T if isinstance(pos, torch.Tensor) else pos + T
        if end > self.config.block_size:
            raise ValueError(f"sequence of {end} tokens exceeds block_size "
                             f"{self.config.block_size}")
        x = self.drop(self.tok_emb(tokens))  # (B, T, C); no absolute positions, RoPE is inside attention
        for i, block in enumerate(self.decoder):
            x = block(x, self.rotary, cache, i, cross_kv[i] if cross_kv is not None else None, src_mask)
        if cache is not None:
            cache.advance(T)
        return self.lm_head(self.decoder_norm(x))

    def forward(self, tokens, src=None, src_mask=None):
        """tokens (B, T) [, src (B, S), src_mask (B, S)] -> logits (B, T, V)."""
        cross_kv, src_mask = self._source(src, src_mask)
        return self._run(tokens, None, cross_kv, src_mask)

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None):
        """tokens (B, T) attending to an encoder output `memory` (B, S, C) computed (and possibly enhanced)
        outside `forward` -> logits (B, T, V)."""
        return self._run(tokens, None, self.cross_kv(memory), None if src_mask is None else src_mask.bool())

    def compute_loss(self, batch: dict):
        logits = self(batch["tokens"], batch.get("src"), batch.get("src_mask"))
        loss = masked_cross_entropy(logits, batch["targets"], batch.get("loss_mask"))
        return loss, {"lm_loss": loss.item()}

    # -- incremental decoding -------------------------------------------------------------------
    def init_state(self, batch_size: int, src=None, src_mask=None, cache: str = "contiguous",
                   block_size: int = 16) -> AeronState:
        """A state for `step()`: an empty KV cache of config.block_size positions (only the
        H_kv heads), `cache="paged"` for a PagedKVCache of `block_size`-token blocks; in
        encoder-decoder mode `src` is encoded here, once."""
        if src is not None and src.shape[0] != batch_size:
            raise ValueError(f"src has batch size {src.shape[0]}, expected {batch_size}")
        c = self.config
        kv = empty_cache(c.n_decoder_layer, batch_size, c.n_kv_head, c.head_dim, c.block_size, next(self.parameters()),
                         cache, block_size)
        cross_kv, src_mask = self._source(src, src_mask)
        return AeronState(kv, cross_kv, src_mask)

    def step(self, tokens, state: AeronState):
        """tokens (B, t) continuing the state's sequence -> (logits (B, t, V), state)."""
        return self._run(tokens, state.cache, state.cross_kv, state.src_mask), state
