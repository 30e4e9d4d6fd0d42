"""Aeron's configuration and named presets (seeds/aeron.md, "Default Configuration" and
"Consumer Hardware Scaling").

Field names are the ones GPT, Mamba and RNK use (vocab_size, d_model, n_layer-style depths,
n_head, n_kv_head, d_ff, block_size, dropout); the seed's `NeuralNetConfig` names are read
through `AeronConfig.from_seed_names`, which the presets below use (alias table SEED_NAMES).
What exists of Aeron is the backbone: model.py (decoder-only and the seed's encoder-decoder
layout; GQA, RoPE, SwiGLU, RMSNorm, tied embeddings; contiguous and paged KV caches) and
budget.py (parameter and KV-cache accounting against the seed's tables). The seed's enhancement
modules wrap this backbone without changing it (enhanced.py: reasoning.py, scratchpad.py,
episodic.py, knowledge_graph.py; continual.py, uncertainty.py, badge.py, vision.py; each with its own
config or arguments); their claimed sizes appear in SEED_BUDGET_M, and this config has no fields for
them. The tiny CPU sizes used for training live in profiles.py, not here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from neuro_lib.models.base import check_positive, renamed

MODES = ("decoder", "encoder-decoder")


# The seed's `NeuralNetConfig` names -> this config's fields (the vocabulary GPT, Mamba and RNK share).
# `dim_feedforward` is not a plain rename: the seed calls it the "pre-SwiGLU gate dimension" and its
# diagram's SwiGLU hidden width is 2/3 of it, so `from_seed_names` sets d_ff = 2 * dim_feedforward // 3.
SEED_NAMES = {
    "nhead": "n_head",
    "num_kv_heads": "n_kv_head",
    "num_encoder_layers": "n_encoder_layer",
    "num_decoder_layers": "n_decoder_layer",
    "max_position_embeddings": "block_size",
    "tie_word_embeddings": "tie_weights",
}


@dataclass
class AeronConfig:
    vocab_size: int = 50_000            # seed: 50k vocabulary
    d_model: int = 2048                 # width C
    n_head: int = 32                    # query heads H (seed: nhead)
    n_kv_head: int = 8                  # key/value heads H_kv (GQA; H_kv == H is plain MHA) (seed: num_kv_heads)
    n_encoder_layer: int = 0            # encoder blocks: seed 32 in encoder-decoder mode; must be 0 in decoder mode
    n_decoder_layer: int = 32           # decoder blocks (seed: num_decoder_layers)
    d_ff: int = 5461                    # SwiGLU hidden width (seed: 2/3 of dim_feedforward 8192)
    block_size: int = 32_768            # longest sequence, what a cache is sized for (seed: max_position_embeddings)
    rope_theta: float = 500_000.0       # RoPE base
    dropout: float = 0.0                # seed: disabled at 4B scale
    norm_eps: float = 1e-6              # RMSNorm epsilon
    tie_weights: bool = True            # output projection shares the token embedding (seed: tie_word_embeddings)
    qk_norm: bool = False               # RMS-normalise decoder self-attention queries and keys per head (layers.py)
    mode: str = "decoder"               # "decoder" (LM) or "encoder-decoder" (seed's layout, seq2seq)

    def __post_init__(self):
        check_positive(self, "vocab_size", "d_model", "n_head", "n_kv_head", "n_decoder_layer", "d_ff", "block_size")
        if self.mode not in MODES:
            raise ValueError(f"AeronConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} must be divisible by n_kv_head={self.n_kv_head} "
                             f"(each KV head serves a whole group of query heads)")
        if self.head_dim % 2:
            raise ValueError(f"head dimension d_model/n_head={self.head_dim} must be even for rotary embeddings")
        if self.mode == "decoder" and self.n_encoder_layer != 0:
            raise ValueError(f"decoder mode has no encoder: set n_encoder_layer=0 "
                             f"(got {self.n_encoder_layer}) or mode='encoder-decoder'")
        if self.mode == "encoder-decoder" and self.n_encoder_layer <= 0:
            raise ValueError("encoder-decoder mode needs n_encoder_layer > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rope_theta <= 1.0:
            raise ValueError(f"rope_theta must be greater than 1, got {self.rope_theta}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_seed_names(cls, **kw) -> "AeronConfig":
        """A config from the seed's field names (SEED_NAMES; this config's own names pass through), e.g.
        AeronConfig.from_seed_names(d_model=512, nhead=8, num_kv_heads=2, dim_feedforward=2048).
        `ffn_hidden`, this config's former name for d_ff, is read too (checkpoints saved before the rename):
        when given and non-zero it wins over dim_feedforward, as it did then."""
        kw = dict(kw)
        ffn_hidden = kw.pop("ffn_hidden", 0)
        if "dim_feedforward" in kw:
            kw.setdefault("d_ff", 2 * kw.pop("dim_feedforward") // 3)  # keeps a 3-matrix SwiGLU near a 2-matrix FFN
        if ffn_hidden:
            kw["d_ff"] = ffn_hidden
        return cls(**renamed(kw, SEED_NAMES, cls.__name__))


# The seed's default ("~3.85B") and its three consumer configs, in the seed's layout
# (encoder-decoder). The seed leaves vocab_size at its default 50k in the consumer configs.
PRESETS: dict[str, AeronConfig] = {
    "aeron-3.85b": AeronConfig.from_seed_names(num_encoder_layers=32, mode="encoder-decoder"),
    "aeron-small": AeronConfig.from_seed_names(
        d_model=512, nhead=8, num_kv_heads=2, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
        max_position_embeddings=2048, mode="encoder-decoder"),
    "aeron-medium": AeronConfig.from_seed_names(
        d_model=1024, nhead=16, num_kv_heads=4, num_encoder_layers=12, num_decoder_layers=12, dim_feedforward=4096,
        max_position_embeddings=4096, mode="encoder-decoder"),
    "aeron-large": AeronConfig.from_seed_names(
        d_model=1536, nhead=24, num_kv_heads=8, num_encoder_layers=24, num_decoder_layers=24, dim_feedforward=6144,
        max_position_embeddings=8192, mode="encoder-decoder"),
}

# What the seed says each preset has, for the notebook's comparison (parameters).
SEED_CLAIMS = {
    "aeron-3.85b": "~3.85B",
    "aeron-small": "~100-150M",
    "aeron-medium": "~400-600M",
    "aeron-large": "~1.5B",
}

# The seed's parameter-budget table for the default config (millions).
SEED_BUDGET_M = {
    "token embeddings (shared with output)": 102,
    "encoder stack (32 layers)": 1376,
    "decoder stack (32 layers)": 2048,
    "KnowledgeGraphAttention": 19,
    "NeuralMemoryNetwork": 15,
    "ContinualLearningModule": 8,
    "UncertaintyQuantification": 18,
    "ActiveLearningManager": 6,
    "AeronReasoningEngine": 170,
    "total (claimed)": 3850,
}


def preset(name: str, **overrides) -> AeronConfig:
    """A fresh copy of a named preset with fields replaced, e.g.
    preset("aeron-small", mode="decoder", n_encoder_layer=0)."""
    if name not in PRESETS:
        raise ValueError(f"unknown Aeron preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
