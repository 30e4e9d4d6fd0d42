"""Aeron's vision path (seeds/aeron.md, "Additional Advanced Modules": `VisionPatchEmbedding` + `MultimodalFusion`;
"Forward Pass Data Flow": [Optional] Vision Patch Embedding -> Absolute PE -> Multimodal Fusion, before the
encoder; RoPE on the text path, absolute sinusoidal positions only on the vision path).

- `sinusoidal_positions(n, d)`: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))
  (Vaswani et al. 2017, section 3.5).
- `VisionPatchEmbedding(image_size, patch_size, channels, d_model)`: images (B, ch, H, W) cut into
  non-overlapping patch_size x patch_size patches, each flattened and projected (a strided convolution, as in
  ViT, Dosovitskiy et al. 2021), plus the sinusoidal position of the patch in row-major order -> (B, P, C).
- `MultimodalFusion(d_model, n_head)`: the text embeddings attend to the patches, (B, S, C) + cross-attention
  (RMSNorm'd queries and keys, no rotary) -> (B, S, C); a residual, so the text passes through unchanged when
  the patches carry nothing.
- `VisionAeron`: an encoder-decoder Aeron whose source embeddings are fused with an image before the encoder.
  Without an image it is the text-only model (the baseline that cannot see).

    model = VisionAeron(aeron_cfg, image_size=(8, 16), patch_size=4)
    logits = model(answer_in, src=question_ids, images=images)   # (B, T, V)
Tests: tests/test_aeron_learn.py (shapes, positions against the formula, fusion of zero patches is identity).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.aeron.model import Aeron
from neuro_lib.models.layers import CrossAttention, RMSNorm


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    """(n, d) absolute sinusoidal position table; d must be even."""
    if d % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {d}")
    pos = torch.arange(n, dtype=torch.float32)[:, None]                          # (n, 1)
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv)
    return pe


def _pair(x) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class VisionPatchEmbedding(nn.Module):
    """images (B, ch, H, W) -> patch embeddings with absolute positions (B, P, C), P = (H/p) * (W/p)."""

    def __init__(self, image_size, patch_size: int, channels: int, d_model: int):
        super().__init__()
        self.image_size = _pair(image_size)
        H, W = self.image_size
        if H % patch_size or W % patch_size:
            raise ValueError(f"image size {H}x{W} is not a whole number of {patch_size}x{patch_size} patches")
        self.patch_size, self.channels = patch_size, channels
        self.grid = (H // patch_size, W // patch_size)
        self.n_patches = self.grid[0] * self.grid[1]
        self.proj = nn.Conv2d(channels, d_model, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos", sinusoidal_positions(self.n_patches, d_model), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.channels, *self.image_size):
            raise ValueError(f"images must be (B, {self.channels}, {self.image_size[0]}, {self.image_size[1]}), "
                             f"got {tuple(images.shape)}")
        x = self.proj(images)                 # (B, C, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)      # (B, P, C), patches in row-major order
        return x + self.pos                   # (B, P, C)


class MultimodalFusion(nn.Module):
    """text (B, S, C), patches (B, P, C) -> text + CrossAttention(norm(text) -> norm(patches)) (B, S, C)."""

    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm_text = RMSNorm(d_model)
        self.norm_image = RMSNorm(d_model)
        self.attn = CrossAttention(d_model, n_head, n_kv_head, bias=False, dropout=dropout)

    def forward(self, text: torch.Tensor, patches: torch.Tensor, patch_mask: torch.Tensor | None = None):
        if patches.shape[1] == 0:  # nothing to look at: the text path alone
            return text
        kv = self.attn.project_kv(self.norm_image(patches))  # (B, H_kv, P, D) each
        return text + self.attn(self.norm_text(text), kv, patch_mask)  # (B, S, C)


class VisionAeron(nn.Module):
    """Encoder-decoder Aeron with the optional vision path before the encoder (the seed's order):
    source ids -> token embeddings -> [fusion with the image's patches] -> encoder -> decoder -> logits."""

    def __init__(self, config: AeronConfig, image_size, patch_size: int, channels: int = 1):
        super().__init__()
        if config.mode != "encoder-decoder":
            raise ValueError("VisionAeron needs an encoder-decoder Aeron (the image is fused into the source)")
        self.aeron = Aeron(config)
        self.patches = VisionPatchEmbedding(image_size, patch_size, channels, config.d_model)
        self.fusion = MultimodalFusion(config.d_model, config.n_head, config.n_kv_head)

    @property
    def config(self) -> AeronConfig:
        return self.aeron.config

    def encode(self, src: torch.Tensor, images: torch.Tensor | None = None, src_mask=None) -> torch.Tensor:
        """src (B, S) [, images (B, ch, H, W)] -> encoder output (B, S, C)."""
        x = self.aeron.tok_emb(src)  # (B, S, C)
        if images is not None:
            x = self.fusion(x, self.patches(images))  # (B, S, C)
        return self.aeron.encode_embeddings(x, src_mask)

    def forward(self, tokens: torch.Tensor, src: torch.Tensor, images: torch.Tensor | None = None, src_mask=None):
        """tokens (B, T), src (B, S) [, images] -> logits (B, T, V)."""
        return self.aeron.decode(tokens, self.encode(src, images, src_mask), src_mask)
