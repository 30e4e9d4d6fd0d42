"""A small Aeron encoder that classifies: the body the continual-learning, uncertainty and active-learning
modules are measured on (bench/aeron_modules/{ewc,uncertainty,badge}.py).

Input is either token ids (B, S) (`inputs="tokens"`) or images (B, ch, H, W) cut into patches by
`VisionPatchEmbedding` (`inputs="image"`). Then Aeron's encoder blocks (RMSNorm, bidirectional GQA with RoPE,
SwiGLU; model.py's `EncoderBlock`), the encoder norm, a mean over positions, an optional `TaskEmbedding`
(continual.py) added to that summary, dropout, and a head: a linear layer (logits) or an `EvidentialHead`
(Dirichlet alpha, uncertainty.py).

    model = AeronClassifier(ClassifierConfig(inputs="image", image_size=(8, 8), patch_size=2, n_classes=10))
    logits = model(images)                     # (B, K); features(images) -> (B, C) is the head's input
Tests: tests/test_aeron_learn.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.aeron.continual import TaskEmbedding
from neuro_lib.models.aeron.model import EncoderBlock
from neuro_lib.models.aeron.uncertainty import EvidentialHead
from neuro_lib.models.aeron.vision import VisionPatchEmbedding
from neuro_lib.models.layers import RMSNorm, RotaryEmbedding

INPUTS = ("tokens", "image")
HEADS = ("linear", "evidential")


@dataclass
class ClassifierConfig:
    n_classes: int = 10
    inputs: str = "tokens"           # "tokens" (B, S) ids or "image" (B, ch, H, W)
    vocab_size: int = 32             # token inputs only
    image_size: tuple = (8, 8)       # image inputs only: (H, W)
    patch_size: int = 2
    channels: int = 1
    d_model: int = 64                # width C
    n_head: int = 4
    n_kv_head: int = 2
    n_layer: int = 2                 # encoder blocks
    d_ff: int = 128                  # SwiGLU hidden width
    dropout: float = 0.1             # in the blocks and before the head (what MC dropout samples)
    n_tasks: int = 0                 # > 0: a TaskEmbedding conditions the summary
    head: str = "linear"             # "linear" (logits) or "evidential" (Dirichlet alpha)
    rope_theta: float = 10_000.0

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        self.image_size = tuple(self.image_size)

    def encoder_config(self) -> AeronConfig:
        """The Aeron config whose encoder blocks this classifier stacks."""
        return AeronConfig(vocab_size=max(self.vocab_size, 1), d_model=self.d_model, n_head=self.n_head,
                           n_kv_head=self.n_kv_head, n_encoder_layer=self.n_layer, n_decoder_layer=1, d_ff=self.d_ff,
                           block_size=4096, rope_theta=self.rope_theta, dropout=self.dropout, mode="encoder-decoder")


class AeronClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        ac = config.encoder_config()
        if config.inputs == "tokens":
            self.embed = nn.Embedding(config.vocab_size, config.d_model)
        else:
            self.embed = VisionPatchEmbedding(config.image_size, config.patch_size, config.channels, config.d_model)
        self.rotary = RotaryEmbedding(ac.head_dim, ac.rope_theta)
        self.blocks = nn.ModuleList(EncoderBlock(ac) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.d_model)
        self.task = TaskEmbedding(config.n_tasks, config.d_model) if config.n_tasks else None
        self.drop = nn.Dropout(config.dropout)
        self.head = (nn.Linear(config.d_model, config.n_classes) if config.head == "linear"
                     else EvidentialHead(config.d_model, config.n_classes))

    def features(self, x: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S) ids or (B, ch, H, W) images -> the head's input (B, C)."""
        h = self.embed(x)  # (B, S or P, C)
        for block in self.blocks:
            h = block(h, self.rotary)
        h = self.norm(h).mean(1)  # (B, C)
        if self.task is not None:
            if task_ids is None:
                raise ValueError("this classifier is task-conditioned: pass task_ids (B,)")
            h = self.task.condition(h, task_ids)
        return self.drop(h)

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        """-> logits (B, K) (linear head) or Dirichlet alpha (B, K) (evidential head)."""
        return self.head(self.features(x, task_ids))

    def probs(self, x: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Class probabilities (B, K) under either head."""
        out = self(x, task_ids)
        return EvidentialHead.probs(out) if self.config.head == "evidential" else out.softmax(-1)
