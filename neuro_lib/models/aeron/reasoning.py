"""Aeron's reasoning engine (seeds/aeron.md, "Reasoning Engine" and "Forward Pass Data Flow"):
complexity gate -> tree of thought -> scratchpad write (strictly after ToT returns) -> scratchpad
attention, on the encoder output of an encoder-decoder Aeron.

- ComplexityGate: a learned score in (0, 1) per row from the pooled encoder output. Rows scoring below
  `threshold` (seed: 0.3) are SKIPPED: the engine is not computed for them and their encoder output is
  returned unchanged. For the rows it runs, the engine's update is scaled by the score, so the gate
  learns from the task loss; `gate_cost` (mean score) can be added to the loss as a compute penalty.
  `gate="open"` forces every row through with the update unscaled (the score is still computed and
  reported): the ablation that shows whether the rounds carry anything when the gate cannot close.
- TreeOfThought: k branches (seed: num_tot_branches = 4) seeded from the encoder summary plus a learned
  offset each; `rounds` (seed: max_reasoning_steps) of [branches cross-attend to the encoder output and
  the context (episodic-memory reads, task embedding: the seed's memory bridge) -> cross-branch
  self-attention, O(k^2) -> SwiGLU]; a critic scores each branch, all but the `keep` best are pruned,
  and the survivors merge weighted by softmax(critic score) ("quality-weighted merge"). The seed's
  "dialectical contradiction resolution" is not built: it names no mechanism beyond cross-branch
  attention, which is here.
- The merged thought is written to the scratchpad (scratchpad.py) and the encoder output reads the
  slots by attention.

    engine = ReasoningEngine(ReasoningConfig(d_model=64, n_head=4))
    h2, diag = engine(h, mask)                     # (B, S, C), (B, S) -> (B, S, C), ReasoningDiagnostics
    engine.rows_processed                          # rows the ToT actually ran on (the gate's skips are not)
Tests: tests/test_aeron_modules.py; measured by `neuro bench aeron-modules --module reasoning`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from neuro_lib.models.aeron.inject import masked_mean
from neuro_lib.models.aeron.scratchpad import Scratchpad, ScratchpadStats
from neuro_lib.models.base import check_positive
from neuro_lib.models.layers import CausalSelfAttention, CrossAttention, RMSNorm, SwiGLU


@dataclass
class ReasoningConfig:
    d_model: int                 # width C of the encoder output it reads
    n_head: int = 4              # heads of its attentions
    n_branches: int = 4          # ToT branches k (seed: num_tot_branches)
    keep: int = 2                # branches surviving pruning
    rounds: int = 2              # ToT rounds (seed: max_reasoning_steps, 3 at 4B)
    n_slots: int = 16            # scratchpad slots (seed: num_scratchpad_slots = 64)
    threshold: float = 0.3       # complexity below which the engine is skipped (seed: 0.3)
    d_ff: int = 0                # SwiGLU hidden width of a round (0 = 2 * d_model)
    gate: str = "learned"        # "learned" (the seed's) or "open": every row runs, update unscaled (an ablation
                                 # that tells whether the rounds are used when the gate cannot close on them)

    def __post_init__(self):
        check_positive(self, "d_model", "n_head", "n_branches", "keep", "rounds", "n_slots")
        if self.keep > self.n_branches:
            raise ValueError(f"keep={self.keep} exceeds n_branches={self.n_branches}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.gate not in ("learned", "open"):
            raise ValueError(f"gate must be 'learned' or 'open', got {self.gate!r}")
        self.d_ff = self.d_ff or 2 * self.d_model


@dataclass
class ReasoningDiagnostics:
    gate_scores: torch.Tensor     # (B,) complexity score per row
    skipped: torch.Tensor         # (B,) bool, True where the engine did not run
    branch_scores: torch.Tensor   # (B, k) critic scores (0 for skipped rows)
    kept: torch.Tensor            # (B, k) bool, branches that survived pruning (all False when skipped)
    merge_weights: torch.Tensor   # (B, k) quality weights of the merge (0 for skipped rows)
    scratchpad: ScratchpadStats
    gate_cost: torch.Tensor       # scalar, mean gate score: the compute penalty's term (has gradient)


class ComplexityGate(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.net = nn.Sequential(RMSNorm(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))
        nn.init.constant_(self.net[-1].bias, 2.0)  # starts open (score ~0.88): the engine runs until it learns not to

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """h (B, S, C), mask (B, S) -> complexity score (B,) in (0, 1)."""
        return torch.sigmoid(self.net(masked_mean(h, mask))).squeeze(-1)


class ToTRound(nn.Module):
    def __init__(self, cfg: ReasoningConfig):
        super().__init__()
        c = cfg.d_model
        self.norm_read, self.read = RMSNorm(c), CrossAttention(c, cfg.n_head, bias=False)
        self.norm_cross, self.cross = RMSNorm(c), CausalSelfAttention(c, cfg.n_head, bias=False, causal=False)
        self.norm_ff, self.ff = RMSNorm(c), SwiGLU(c, cfg.d_ff)

    def forward(self, b, kv, kv_mask):
        """branches (b, k, C) read the source kv (b, M, C) -> (b, k, C)."""
        b = b + self.read(self.norm_read(b), self.read.project_kv(kv), kv_mask)
        b = b + self.cross(self.norm_cross(b))   # cross-branch attention, no positions: branches are a set
        return b + self.ff(self.norm_ff(b))


@dataclass
class Thoughts:
    branches: torch.Tensor   # (b, k, C)
    scores: torch.Tensor     # (b, k) critic
    kept: torch.Tensor       # (b, k) bool
    weights: torch.Tensor    # (b, k) merge weights, 0 on pruned branches
    merged: torch.Tensor     # (b, C)


class TreeOfThought(nn.Module):
    def __init__(self, cfg: ReasoningConfig):
        super().__init__()
        self.keep = cfg.keep
        self.seed_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.branch_emb = nn.Parameter(torch.randn(cfg.n_branches, cfg.d_model) * 0.02)  # what makes branches differ
        self.rounds = nn.ModuleList(ToTRound(cfg) for _ in range(cfg.rounds))
        self.critic = nn.Sequential(RMSNorm(cfg.d_model), nn.Linear(cfg.d_model, 1))

    def forward(self, h, mask, context=None, context_mask=None) -> Thoughts:
        """h (b, S, C), mask (b, S) bool, context (b, M, C) with context_mask (b, M) -> Thoughts."""
        kv, kv_mask = h, mask
        if context is not None:
            kv = torch.cat([h, context], 1)                                       # (b, S + M, C)
            cm = context_mask if context_mask is not None else context.new_ones(context.shape[:2], dtype=torch.bool)
            kv_mask = torch.cat([mask, cm], 1)
        br = self.seed_proj(masked_mean(h, mask))[:, None] + self.branch_emb[None]  # (b, k, C)
        for rnd in self.rounds:
            br = rnd(br, kv, kv_mask)
        scores = self.critic(br).squeeze(-1)                                      # (b, k)
        top = scores.topk(self.keep, dim=1).indices
        kept = torch.zeros_like(scores, dtype=torch.bool).scatter(1, top, True)
        weights = scores.masked_fill(~kept, float("-inf")).softmax(1)             # (b, k), 0 where pruned
        merged = (weights[..., None] * br).sum(1)                                 # (b, C)
        return Thoughts(br, scores, kept, weights, merged)


class ReasoningEngine(nn.Module):
    def __init__(self, cfg: ReasoningConfig):
        super().__init__()
        self.config = cfg
        self.gate = ComplexityGate(cfg.d_model)
        self.tot = TreeOfThought(cfg)
        self.scratchpad = Scratchpad(cfg.d_model, cfg.n_slots, cfg.n_head)
        self.rows_processed = 0   # rows the ToT ran on since construction: what the gate saves is visible here

    def forward(self, h, mask=None, context=None, context_mask=None, threshold: float | None = None):
        """h (B, S, C), mask (B, S) bool, context (B, M, C) -> (h' (B, S, C), ReasoningDiagnostics).
        `threshold` overrides the config's for this call (a sweep)."""
        B, S, _ = h.shape
        k = self.config.n_branches
        mask = mask if mask is not None else h.new_ones(B, S, dtype=torch.bool)
        thr = self.config.threshold if threshold is None else threshold
        score = self.gate(h, mask)                                                # (B,)
        active = score >= thr                     # the same in training: what is trained is what runs
        if self.config.gate == "open":
            active = torch.ones_like(active)      # forced open: the score is only reported
        scale = score if self.config.gate == "learned" else torch.ones_like(score)
        rows = active.nonzero().squeeze(1)
        scores, weights = h.new_zeros(B, k), h.new_zeros(B, k)
        kept = torch.zeros(B, k, dtype=torch.bool, device=h.device)
        out = h
        if rows.numel():
            self.rows_processed += rows.numel()
            hr, mr = h[rows], mask[rows]
            ctx = None if context is None else context[rows]
            cmask = None if context_mask is None or context is None else context_mask[rows]
            th = self.tot(hr, mr, ctx, cmask)
            # the scratchpad write happens strictly after ToT has returned; priority = best critic score
            slots = self.scratchpad.write(th.merged, torch.sigmoid(th.scores.max(1).values))  # (b, n_slots, C)
            delta = self.scratchpad.attention.update(hr, slots)                   # (b, S, C)
            out = h.index_add(0, rows, scale[rows, None, None] * delta)
            scores = scores.index_copy(0, rows, th.scores)
            weights = weights.index_copy(0, rows, th.weights)
            kept = kept.index_copy(0, rows, th.kept)
        diag = ReasoningDiagnostics(score.detach(), ~active, scores.detach(), kept, weights.detach(),
                                    self.scratchpad.stats(), score.mean())
        return out, diag
