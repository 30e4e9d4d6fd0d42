"""Logit ensembles: one model whose output is the average of its members' outputs, decoded as one.

No weights are merged: every member runs, so inference costs the sum of the members (the price merging
avoids). Two averages (Lakshminarayanan et al. 2017, "Simple and Scalable Predictive Uncertainty
Estimation using Deep Ensembles", average probabilities; averaging logits is the product-of-experts
form common for LMs):
- `space="logits"` (default): logits = sum_i w_i logits_i;
- `space="probs"`: logits = log sum_i w_i softmax(logits_i) (a mixture; softmax of it is the mixture).

The ensemble has the language-model interface the engine decodes (models/base.py): `forward`,
`init_state(batch_size, **kw)` and `step(tokens, state)` over an `EnsembleState` that holds one state per
member and forwards `lengths`, `checkpoint`, `rollback`, `row`, `fork` and `nbytes` to them, plus
`compute_loss`, `max_len` (the smallest member's) and `cache_kinds` (those every member has).
It is an inference-time object, not a checkpoint: save its members instead.

    ens = LogitEnsemble([m1, m2, m3]); Engine(ens, tokenizer).generate("2+2=", Sampling(temperature=0))
Tests: tests/test_merging.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from neuro_lib.errors import NeuroError
from neuro_lib.models.base import masked_cross_entropy

SPACES = ("logits", "probs")


class EnsembleState:
    """One decoding state per member, moved together."""

    def __init__(self, states: list):
        self.states = states
        self.ragged = all(getattr(s, "ragged", True) for s in states)

    @property
    def lengths(self) -> list[int]:
        return self.states[0].lengths

    @property
    def pos(self):
        return self.states[0].pos

    def checkpoint(self) -> None:
        for s in self.states:
            s.checkpoint()

    def rollback(self, n) -> list[int]:
        reached = [s.rollback(n) for s in self.states]
        if any(r != reached[0] for r in reached[1:]):
            raise RuntimeError(f"ensemble members rolled back to different lengths {reached}")
        return reached[0]

    def row(self, b: int) -> "EnsembleState":
        return EnsembleState([s.row(b) for s in self.states])

    def fork(self, n: int) -> "EnsembleState":
        return EnsembleState([s.fork(n) for s in self.states])

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self.states)


class LogitEnsemble(nn.Module):
    def __init__(self, models: list[nn.Module], weights: list[float] | None = None, space: str = "logits"):
        super().__init__()
        if not models:
            raise NeuroError("an ensemble needs at least one model")
        if space not in SPACES:
            raise NeuroError(f"ensemble space must be one of {SPACES}, got {space!r}")
        vocab = {m.config.vocab_size for m in models}
        if len(vocab) != 1:
            raise NeuroError(f"ensemble members have different vocabularies {sorted(vocab)}; they cannot be averaged")
        weights = [1.0] * len(models) if weights is None else [float(w) for w in weights]
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise NeuroError(f"ensemble weights must be {len(models)} non-negative numbers with a positive sum")
        self.members = nn.ModuleList(models)
        self.register_buffer("weights", torch.tensor(weights) / sum(weights), persistent=False)
        self.space = space
        self.config = models[0].config
        lens = [m.max_len for m in models if getattr(m, "max_len", None)]
        self.max_len = min(lens) if lens else None
        kinds = [set(getattr(m, "cache_kinds", ())) for m in models]
        self.cache_kinds = tuple(k for k in getattr(models[0], "cache_kinds", ()) if all(k in s for s in kinds))

    def combine(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """[member logits (B, T, V)] -> the ensemble's logits (B, T, V)."""
        stacked = torch.stack([o.float() for o in outputs])        # (M, B, T, V)
        w = self.weights.view(-1, *([1] * (stacked.dim() - 1)))    # (M, 1, 1, 1)
        if self.space == "logits":
            return (w * stacked).sum(0)
        return torch.logsumexp(torch.log_softmax(stacked, -1) + w.log(), dim=0)

    def forward(self, tokens, *args, **kwargs):
        """tokens (B, T) -> averaged logits (B, T, V)."""
        return self.combine([m(tokens, *args, **kwargs) for m in self.members])

    def compute_loss(self, batch: dict):
        logits = self(batch["tokens"])
        loss = masked_cross_entropy(logits, batch["targets"], batch.get("loss_mask"))
        return loss, {"lm_loss": loss.item()}

    def init_state(self, batch_size: int, **kwargs) -> EnsembleState:
        return EnsembleState([m.init_state(batch_size, **kwargs) for m in self.members])

    def step(self, tokens, state: EnsembleState):
        """tokens (B, t) -> (averaged logits (B, t, V), state), every member's state advanced."""
        outs = [m.step(tokens, s)[0] for m, s in zip(self.members, state.states)]
        return self.combine(outs), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
