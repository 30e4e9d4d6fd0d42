"""Episodic external memory (seeds/aeron.md, "Memory Systems": NeuralMemoryNetwork, 1000 slots,
memory_dim independent of d_model, bridged into the tree of thought).

A per-row slot store: keys and values (B, N, memory_dim), written one item per row per call and read
by similarity, so what was seen in an earlier call (an earlier episode, beyond the context window)
reaches a later one. The state is plain tensors, not buffers: within a training episode the writes keep
their autograd graph, so the read loss trains the projections that wrote them; `detach_state()` cuts it.

- write(key, value): exact-key overwrite; else the first empty slot; else the least-used slot (reads
  so far), ties to the oldest.
- read(key): the value under the most similar key (cosine), top-1: the written item for an exact key.
- retrieval_logits(query): scale * cosine to every slot, the logits a supervised retrieval loss trains.
- forward(h, mask): the pooled encoder output is the query; softmax(scale * cosine) over the top_k
  used slots weighs their values; the read is bridged memory_dim -> d_model (the seed's memory_bridge,
  with its shape guard) into one memory token, injected into the encoder output by attention and handed
  on as context for the tree of thought.

    mem = EpisodicMemory(EpisodicConfig(d_model=64)); mem.reset(batch_size=8)
    mem.write(k, v); mem.read(k)                       # == v
    h2, token, token_mask, stats = mem(h, mask)        # (B,S,C) -> (B,S,C), (B,1,C), (B,1), MemoryStats
Tests: tests/test_aeron_modules.py; measured by `neuro bench aeron-modules --module episodic`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.models.aeron.inject import Injection, masked_mean
from neuro_lib.models.base import check_positive


@dataclass
class EpisodicConfig:
    d_model: int            # width C of the encoder output
    n_slots: int = 64       # slots N per row (seed: 1000)
    memory_dim: int = 32    # key/value width, independent of d_model (seed: 512)
    top_k: int = 4          # slots a read weighs
    n_head: int = 4         # heads of the injection attention

    def __post_init__(self):
        check_positive(self, "d_model", "n_slots", "memory_dim", "top_k", "n_head")
        self.top_k = min(self.top_k, self.n_slots)


@dataclass
class MemoryStats:
    used_slots: torch.Tensor     # (B,) slots holding an item, per row
    total_slots: int
    writes: int                  # write calls since reset
    read_slots: torch.Tensor     # (B, top_k) slot indices the read weighed
    read_weights: torch.Tensor   # (B, top_k) their weights (0 on empty slots)
    query: torch.Tensor          # (B, memory_dim) the read's query key, with its graph (for a retrieval loss)


class EpisodicMemory(nn.Module):
    def __init__(self, cfg: EpisodicConfig):
        super().__init__()
        self.config = cfg
        self.key_proj = nn.Linear(cfg.d_model, cfg.memory_dim, bias=False)
        self.value_proj = nn.Linear(cfg.d_model, cfg.memory_dim, bias=False)
        self.bridge = nn.Linear(cfg.memory_dim, cfg.d_model, bias=False)   # memory_bridge
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))       # sharpness of the similarity read
        self.inject = Injection(cfg.d_model, cfg.n_head)
        self.reset(1)

    # -- state ----------------------------------------------------------------------------------
    def reset(self, batch_size: int, device=None) -> None:
        """An empty memory for `batch_size` independent rows (episodes)."""
        n, d = self.config.n_slots, self.config.memory_dim
        device = device or self.bridge.weight.device
        self.keys = torch.zeros(batch_size, n, d, device=device)
        self.values = torch.zeros(batch_size, n, d, device=device)
        self.used = torch.zeros(batch_size, n, dtype=torch.bool, device=device)
        self.usage = torch.zeros(batch_size, n, device=device)
        self.written_at = torch.zeros(batch_size, n, device=device)
        self.writes = 0

    def detach_state(self) -> None:
        self.keys, self.values = self.keys.detach(), self.values.detach()

    def _check(self, x: torch.Tensor, what: str) -> None:
        if x.dim() != 2 or x.shape != (self.keys.shape[0], self.config.memory_dim):
            raise ValueError(f"{what} must be (batch={self.keys.shape[0]}, memory_dim={self.config.memory_dim}), "
                             f"got {tuple(x.shape)}; call reset(batch_size) for another batch size")

    def _similarity(self, key: torch.Tensor) -> torch.Tensor:
        """key (B, D) -> cosine similarity to every slot (B, N), -inf on empty slots."""
        sim = F.cosine_similarity(key[:, None], self.keys, dim=-1)          # (B, N)
        return sim.masked_fill(~self.used, float("-inf"))

    # -- write policy ---------------------------------------------------------------------------
    def write(self, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """key, value (B, memory_dim): one item per row -> the slot each went to (B,)."""
        self._check(key, "key")
        self._check(value, "value")
        self.writes += 1
        with torch.no_grad():
            exact = self._similarity(key) > 1 - 1e-6                           # (B, N)
            n = self.config.n_slots
            empty_rank = torch.arange(n, device=key.device, dtype=torch.float64) / n
            # lexicographic: exact match < empty (lowest index) < least used, ties to the oldest write
            prio = self.usage.double() * 1e9 + self.written_at.double() + 2.0
            prio = torch.where(self.used, prio, empty_rank[None])
            prio = torch.where(exact, -1.0, prio)
            slot = prio.argmin(1)                                                # (B,)
        here = F.one_hot(slot, n).bool()                                         # (B, N)
        self.keys = torch.where(here[..., None], key[:, None], self.keys)       # keeps the graph (episode)
        self.values = torch.where(here[..., None], value[:, None], self.values)
        self.used = self.used | here
        self.usage = self.usage.masked_fill(here, 0.0)
        self.written_at = self.written_at.masked_fill(here, float(self.writes))
        return slot

    # -- reads ----------------------------------------------------------------------------------
    def read(self, key: torch.Tensor) -> torch.Tensor:
        """key (B, memory_dim) -> the value under the most similar key (B, memory_dim); zeros for a row
        with an empty memory."""
        self._check(key, "key")
        sim = self._similarity(key)
        slot = sim.argmax(1)                                                     # (B,)
        out = self.values.gather(1, slot[:, None, None].expand(-1, 1, self.values.shape[-1])).squeeze(1)
        return out * self.used.any(1, keepdim=True).to(out.dtype)

    def retrieval_logits(self, query: torch.Tensor) -> torch.Tensor:
        """query (B, memory_dim) -> scale * cosine similarity to every slot (B, N), -1e4 on empty slots: the
        logits of which slot a read should pick, for a supervised retrieval loss (cross-entropy against the
        slot the asked-for item was written to)."""
        self._check(query, "query")
        sim = F.cosine_similarity(query[:, None], self.keys, dim=-1)             # (B, N)
        return (sim * self.log_scale.exp()).masked_fill(~self.used, -1e4)

    def attend(self, query: torch.Tensor):
        """query (B, memory_dim) -> (read (B, memory_dim), slots (B, k), weights (B, k)), softmax over the
        top-k used slots; counts the reads toward each slot's usage."""
        self._check(query, "query")
        sim = self._similarity(query)
        top, slots = sim.topk(self.config.top_k, dim=1)                          # (B, k)
        valid = torch.isfinite(top)
        # finite stand-ins before anything is multiplied: an -inf times a zero gradient is a NaN gradient
        # (it happened when near-identical keys overwrote each other and fewer than top_k slots were used)
        logits = (top.masked_fill(~valid, 0.0) * self.log_scale.exp()).masked_fill(~valid, -1e4)
        weights = logits.softmax(1) * valid                                      # (B, k), 0 on empty slots
        vals = self.values.gather(1, slots[..., None].expand(-1, -1, self.values.shape[-1]))  # (B, k, D)
        with torch.no_grad():
            self.usage = self.usage.scatter_add(1, slots, weights.detach())
        return (weights[..., None] * vals).sum(1), slots, weights

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None):
        """h (B, S, C), mask (B, S) -> (h' (B, S, C), memory token (B, 1, C), its mask (B, 1), MemoryStats)."""
        if h.shape[0] != self.keys.shape[0]:
            raise ValueError(f"memory holds {self.keys.shape[0]} rows, the batch has {h.shape[0]}: "
                             f"call reset(batch_size) first")
        query = self.key_proj(masked_mean(h, mask))                               # (B, D)
        r, slots, weights = self.attend(query)
        token = self.bridge(r)[:, None]                                           # (B, 1, C)
        token_mask = self.used.any(1, keepdim=True)                               # (B, 1) nothing to read: no token
        stats = MemoryStats(self.used.sum(1), self.config.n_slots, self.writes, slots, weights.detach(), query)
        return self.inject(h, token, token_mask), token, token_mask, stats

    def memorize(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Write the pooled encoder output of an item (B, S, C), or of F items in order (B, F, S, C)
        -> the slots they went to (B,) or (B, F)."""
        if h.dim() == 4:
            B, F_, S, C = h.shape
            s = masked_mean(h.reshape(B * F_, S, C), None if mask is None else mask.reshape(B * F_, S))
            keys, values = self.key_proj(s).view(B, F_, -1), self.value_proj(s).view(B, F_, -1)
            return torch.stack([self.write(keys[:, f], values[:, f]) for f in range(F_)], 1)
        s = masked_mean(h, mask)
        return self.write(self.key_proj(s), self.value_proj(s))
