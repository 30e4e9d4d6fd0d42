"""Knowledge-graph attention (seeds/aeron.md, "Memory Systems": KnowledgeGraphAttention, entity and
relation embeddings injected into the encoder output before reasoning).

The triples that come with an input (head, relation, tail), e.g. the subgraph around the entities a
question names, are embedded as one vector each, MLP([E[head]; R[relation]; E[tail]]), and every
encoder position reads them by cross-attention + residual. Entity and relation ids are the graph's
own (their embeddings are separate from the token embeddings). Padding triples have head = -1.

    kg = KnowledgeGraphAttention(KGConfig(d_model=64, n_entities=100, n_relations=8))
    h2 = kg(h, triples)           # (B, S, C), (B, M, 3) long -> (B, S, C)
Tests: tests/test_aeron_modules.py; measured by `neuro bench aeron-modules --module kg`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.inject import Injection
from neuro_lib.models.base import check_positive


@dataclass
class KGConfig:
    d_model: int           # width C of the encoder output
    n_entities: int        # entity vocabulary
    n_relations: int       # relation vocabulary
    n_head: int = 4        # heads of the injection attention

    def __post_init__(self):
        check_positive(self, "d_model", "n_entities", "n_relations", "n_head")


class KnowledgeGraphAttention(nn.Module):
    def __init__(self, cfg: KGConfig):
        super().__init__()
        self.config = cfg
        c = cfg.d_model
        self.entity = nn.Embedding(cfg.n_entities, c)
        self.relation = nn.Embedding(cfg.n_relations, c)
        self.triple = nn.Sequential(nn.Linear(3 * c, c), nn.GELU(), nn.Linear(c, c))
        self.inject = Injection(c, cfg.n_head)

    def embed(self, triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """triples (B, M, 3) long, head -1 = padding -> (embeddings (B, M, C), mask (B, M) bool)."""
        if triples.dim() != 3 or triples.shape[-1] != 3:
            raise ValueError(f"triples must be (batch, M, 3) (head, relation, tail), got {tuple(triples.shape)}")
        mask = triples[..., 0] >= 0
        t = triples.clamp_min(0)
        c = self.config
        if (t[..., 0] >= c.n_entities).any() or (t[..., 2] >= c.n_entities).any() or (t[..., 1] >= c.n_relations).any():
            raise ValueError(f"triple ids out of range: {c.n_entities} entities, {c.n_relations} relations")
        x = torch.cat([self.entity(t[..., 0]), self.relation(t[..., 1]), self.entity(t[..., 2])], -1)  # (B, M, 3C)
        return self.triple(x), mask

    def forward(self, h: torch.Tensor, triples: torch.Tensor) -> torch.Tensor:
        """h (B, S, C), triples (B, M, 3) -> (B, S, C)."""
        if triples.shape[0] != h.shape[0]:
            raise ValueError(f"triples have batch {triples.shape[0]}, the encoder output {h.shape[0]}")
        items, mask = self.embed(triples)
        return self.inject(h, items, mask)
