"""Aeron's configuration and named presets (seeds/aeron.md, "Default Configuration" and
"Consumer Hardware Scaling").

Field names follow the seed's `NeuralNetConfig`. Only the backbone is configured here:
the seed's reasoning engine, memories and uncertainty heads are separate modules.
The tiny CPU sizes used for training live in profiles.py, not here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MODES = ("decoder", "encoder-decoder")


@dataclass
class AeronConfig:
    vocab_size: int = 50_000            # seed: 50k vocabulary
    d_model: int = 2048                 # hidden size C
    nhead: int = 32                     # query heads H
    num_kv_heads: int = 8               # key/value heads H_kv (GQA; H_kv == H is plain MHA)
    num_encoder_layers: int = 0         # encoder blocks: seed 32 in encoder-decoder mode; must be 0 in decoder mode
    num_decoder_layers: int = 32        # decoder blocks
    dim_feedforward: int = 8192         # seed: "pre-SwiGLU gate dimension"
    ffn_hidden: int = 0                 # SwiGLU hidden width; 0 = derived 2/3 * dim_feedforward (seed: 5461)
    rope_theta: float = 500_000.0       # RoPE base
    max_position_embeddings: int = 32_768  # longest sequence a cache is sized for
    dropout: float = 0.0                # seed: disabled at 4B scale
    norm_eps: float = 1e-6              # RMSNorm epsilon
    tie_word_embeddings: bool = True    # output projection shares the token embedding
    mode: str = "decoder"               # "decoder" (LM) or "encoder-decoder" (seed's layout, seq2seq)

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "nhead", "num_kv_heads", "num_decoder_layers", "dim_feedforward",
                     "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"AeronConfig.{name} must be positive, got {getattr(self, name)}")
        if self.mode not in MODES:
            raise ValueError(f"AeronConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.d_model % self.nhead:
            raise ValueError(f"d_model={self.d_model} must be divisible by nhead={self.nhead}")
        if self.nhead % self.num_kv_heads:
            raise ValueError(f"nhead={self.nhead} must be divisible by num_kv_heads={self.num_kv_heads} "
                             f"(each KV head serves a whole group of query heads)")
        if self.head_dim % 2:
            raise ValueError(f"head dimension d_model/nhead={self.head_dim} must be even for rotary embeddings")
        if self.mode == "decoder" and self.num_encoder_layers != 0:
            raise ValueError(f"decoder mode has no encoder: set num_encoder_layers=0 "
                             f"(got {self.num_encoder_layers}) or mode='encoder-decoder'")
        if self.mode == "encoder-decoder" and self.num_encoder_layers <= 0:
            raise ValueError("encoder-decoder mode needs num_encoder_layers > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rope_theta <= 1.0:
            raise ValueError(f"rope_theta must be greater than 1, got {self.rope_theta}")
        if self.ffn_hidden < 0:
            raise ValueError(f"ffn_hidden must be positive or 0 (derived), got {self.ffn_hidden}")
        if self.ffn_hidden == 0:
            self.ffn_hidden = 2 * self.dim_feedforward // 3  # keeps a 3-matrix SwiGLU near a 2-matrix FFN's size

    @property
    def head_dim(self) -> int:
        return self.d_model // self.nhead


# The seed's default ("~3.85B") and its three consumer configs, in the seed's layout
# (encoder-decoder). The seed leaves vocab_size at its default 50k in the consumer configs.
PRESETS: dict[str, AeronConfig] = {
    "aeron-3.85b": AeronConfig(num_encoder_layers=32, mode="encoder-decoder"),
    "aeron-small": AeronConfig(d_model=512, nhead=8, num_kv_heads=2, num_encoder_layers=6, num_decoder_layers=6,
                               dim_feedforward=2048, max_position_embeddings=2048, mode="encoder-decoder"),
    "aeron-medium": AeronConfig(d_model=1024, nhead=16, num_kv_heads=4, num_encoder_layers=12, num_decoder_layers=12,
                                dim_feedforward=4096, max_position_embeddings=4096, mode="encoder-decoder"),
    "aeron-large": AeronConfig(d_model=1536, nhead=24, num_kv_heads=8, num_encoder_layers=24, num_decoder_layers=24,
                               dim_feedforward=6144, max_position_embeddings=8192, mode="encoder-decoder"),
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
    preset("aeron-small", mode="decoder", num_encoder_layers=0)."""
    if name not in PRESETS:
        raise ValueError(f"unknown Aeron preset {name!r}; choose one of {sorted(PRESETS)}")
    if "dim_feedforward" in overrides:
        overrides.setdefault("ffn_hidden", 0)  # re-derive the SwiGLU width
    return dataclasses.replace(PRESETS[name], **overrides)
