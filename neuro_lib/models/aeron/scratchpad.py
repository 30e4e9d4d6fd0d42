"""Aeron's internal scratchpad and scratchpad attention (seeds/aeron.md, "Reasoning Engine":
AeronInternalScratchpad, AeronScratchpadAttention).

`n_slots` learned slots (a parameter) plus committed contents (buffers). Each slot carries metadata
the seed names: a type (0 learned/empty, 1 committed thought, 2 written this step), a priority (the
critic's confidence in what was written) and a temporal encoding (age in commits, bucketed); their
embeddings are added to the slot before attention.

The write is gradient-safe and side-effect free: `write(thought, priority)` returns a new per-row slot
tensor (B, n_slots, C) in which the slot a commit would fill next (the oldest) holds this step's
thought; the module's buffers are untouched, so a forward pass never changes the state another row
or a repeated call sees. The reasoning engine calls it strictly after tree-of-thought returns, and the
encoder output then reads the slots through `attention.update`. `commit_write()` persists the last
pass's thoughts (detached) into the oldest slots, one per reasoning row, for later inference calls;
training never commits.

    pad = Scratchpad(d_model=64, n_slots=8, n_head=4)
    slots = pad.write(thought, priority)          # (b, C), (b,) -> (b, n_slots, C)
    delta = pad.attention.update(h, slots)        # (b, S, C)
    pad.commit_write(); pad.stats()
Tests: tests/test_aeron_modules.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.inject import Injection

EMPTY, COMMITTED, CURRENT = 0, 1, 2  # slot types


@dataclass
class ScratchpadStats:
    used_slots: int      # slots holding a committed thought
    total_slots: int
    step_counter: int    # commits so far
    write_slot: int      # the slot this step's thought was written to (the oldest)
    pending: int         # thoughts written by the last pass, not yet committed


class Scratchpad(nn.Module):
    def __init__(self, d_model: int, n_slots: int, n_head: int, max_age: int = 16):
        super().__init__()
        if n_slots < 1:
            raise ValueError(f"the scratchpad needs at least one slot, got n_slots={n_slots}")
        self.n_slots, self.max_age = n_slots, max_age
        self.slots = nn.Parameter(torch.randn(n_slots, d_model) * 0.02)   # learned key/value slots
        self.type_emb = nn.Embedding(3, d_model)
        self.age_emb = nn.Embedding(max_age, d_model)
        self.priority_proj = nn.Linear(1, d_model, bias=False)
        self.write_proj = nn.Linear(d_model, d_model, bias=False)         # thought -> slot content
        self.attention = Injection(d_model, n_head)                       # AeronScratchpadAttention
        self.register_buffer("content", torch.zeros(n_slots, d_model))
        self.register_buffer("priority", torch.zeros(n_slots))
        self.register_buffer("written_at", torch.full((n_slots,), -1, dtype=torch.long))  # -1 = never
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def next_slot(self) -> int:
        """The slot the next write goes to: never written first, else the oldest."""
        return int(self.written_at.argmin())

    def write(self, thought: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
        """thought (b, C), priority (b,) in [0, 1] -> per-row slots (b, n_slots, C), this step's thought in
        the next slot. Pure: no buffer changes (the pending write is kept for `commit_write`)."""
        b, n = thought.shape[0], self.n_slots
        here = torch.arange(n, device=thought.device) == self.next_slot()        # (n,)
        written = self.write_proj(thought)                                        # (b, C)
        content = torch.where(here[None, :, None], written[:, None, :], self.content[None])  # (b, n, C)
        kind = torch.where(self.written_at >= 0, COMMITTED, EMPTY)
        kind = torch.where(here, CURRENT, kind)                                   # (n,)
        age = (self.step - self.written_at).clamp(0, self.max_age - 1)
        age = torch.where(here | (self.written_at < 0), 0, age)                   # (n,)
        prio = torch.where(here[None], priority[:, None], self.priority[None])    # (b, n)
        self._pending = (written.detach(), priority.detach())
        meta = self.type_emb(kind) + self.age_emb(age)                            # (n, C)
        return self.slots + content + meta + self.priority_proj(prio[..., None])  # (b, n, C)

    @torch.no_grad()
    def commit_write(self) -> int:
        """Persist the last pass's thoughts into the oldest slots (one per row, at most n_slots);
        returns how many were committed."""
        if self._pending is None:
            return 0
        written, priority = self._pending
        k = min(len(written), self.n_slots)
        for i in range(k):
            j = self.next_slot()
            self.content[j], self.priority[j], self.written_at[j] = written[i], priority[i], self.step
        self.step += 1
        self._pending = None
        return k

    @torch.no_grad()
    def clear(self) -> None:
        self.content.zero_()
        self.priority.zero_()
        self.written_at.fill_(-1)
        self.step.zero_()
        self._pending = None

    def stats(self) -> ScratchpadStats:
        return ScratchpadStats(used_slots=int((self.written_at >= 0).sum()), total_slots=self.n_slots,
                               step_counter=int(self.step), write_slot=self.next_slot(),
                               pending=0 if self._pending is None else len(self._pending[0]))
