"""Continual learning for Aeron (seeds/aeron.md, "Memory Systems": `ContinualLearningModule`, EWC-based
Fisher consolidation; task embeddings condition the reasoning).

- `fisher_diagonal(model, logits_fn, batches)`: the diagonal of the Fisher information of the model's
  predictive distribution, estimated on task A's inputs: the mean over examples of the squared gradient of
  log p(y | x), with y drawn from the model itself ("true" Fisher, Kirkpatrick et al. 2017) or, with
  `labels="gold"`, the data's labels (the empirical Fisher).
- `EWC`: anchor weights theta* and Fisher F taken after task A; while training task B the loss adds
  penalty(model) = lambda / 2 * sum_i F_i (theta_i - theta*_i)^2 (Kirkpatrick et al. 2017, eq. 3).
- `TaskEmbedding(n_tasks, d_model)`: task ids (B,) -> (B, C), added to a representation so the same
  weights can hold one behaviour per task ("task embeddings condition branch exploration").

The model is told nothing about data: `logits_fn(model, batch) -> (B, K)` and the batches come from the
caller (bench/aeron_modules/ewc.py).

    ewc = EWC.from_task(model, logits_fn, batches_a, lam=100.0)
    loss = task_b_loss + ewc.penalty(model)
Tests: tests/test_aeron_learn.py (zero at the anchor, gradient against finite differences, the Fisher
against a per-example loop).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F


def fisher_diagonal(model: nn.Module, logits_fn: Callable, batches: Iterable, labels: str = "model",
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Diagonal Fisher, {parameter name: tensor like the parameter}: mean over every example of every
    batch of (d/d theta log p(y | x))^2. `labels="model"` samples y from the model's softmax (the
    Fisher of the model's own predictive distribution), `"gold"` uses batch["y"] (empirical Fisher).
    The model is put in eval mode (dropout off) and restored."""
    if labels not in ("model", "gold"):
        raise ValueError(f"labels must be 'model' or 'gold', got {labels!r}")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training, count = model.training, 0
    model.eval()
    try:
        for batch in batches:
            logp = F.log_softmax(logits_fn(model, batch), dim=-1)  # (B, K)
            if labels == "model":
                y = torch.multinomial(logp.detach().exp(), 1, generator=generator).squeeze(1)
            else:
                y = batch["y"]
            picked = logp.gather(1, y[:, None]).squeeze(1)  # (B,)
            for b in range(picked.shape[0]):  # per-example gradients: the Fisher squares each one
                grads = torch.autograd.grad(picked[b], list(params.values()), retain_graph=True, allow_unused=True)
                for (n, _), g in zip(params.items(), grads):
                    if g is not None:
                        fisher[n] += g.detach() ** 2
            count += picked.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("fisher_diagonal needs at least one example")
    return {n: f / count for n, f in fisher.items()}


@dataclass
class EWCConfig:
    lam: float = 100.0        # lambda: how hard task A's important weights are held (eq. 3)
    labels: str = "model"     # Fisher from the model's sampled labels ("model") or the data's ("gold")


class EWC:
    """Elastic weight consolidation: anchors theta* and Fisher F from task A, a quadratic penalty after.
    Parameters without a Fisher entry (e.g. created after task A) are not penalised."""

    def __init__(self, anchors: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], lam: float):
        if set(anchors) != set(fisher):
            raise ValueError("anchors and fisher must name the same parameters")
        if lam < 0:
            raise ValueError(f"EWC lambda must be non-negative, got {lam}")
        self.anchors = {n: a.detach().clone() for n, a in anchors.items()}
        self.fisher = {n: f.detach().clone() for n, f in fisher.items()}
        self.lam = lam

    @classmethod
    def from_task(cls, model: nn.Module, logits_fn: Callable, batches: Iterable, config: EWCConfig | None = None,
                  generator: torch.Generator | None = None) -> "EWC":
        """Consolidate the model as it is now (after training task A) on task A's batches."""
        config = config or EWCConfig()
        fisher = fisher_diagonal(model, logits_fn, batches, config.labels, generator)
        anchors = {n: p for n, p in model.named_parameters() if n in fisher}
        return cls(anchors, fisher, config.lam)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """lambda / 2 * sum_i F_i (theta_i - theta*_i)^2, a scalar differentiable in the model's weights."""
        params = dict(model.named_parameters())
        missing = set(self.anchors) - set(params)
        if missing:
            raise ValueError(f"the model lacks consolidated parameters {sorted(missing)[:3]}")
        total = sum((self.fisher[n] * (params[n] - self.anchors[n]) ** 2).sum() for n in self.anchors)
        return 0.5 * self.lam * total


class TaskEmbedding(nn.Module):
    """Task ids (B,) -> task vectors (B, C); `condition(h, ids)` adds them to h (B, C) or (B, S, C).
    Initialised at zero so an untrained embedding leaves the representation unchanged."""

    def __init__(self, n_tasks: int, d_model: int):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {n_tasks}")
        self.n_tasks = n_tasks
        self.emb = nn.Embedding(n_tasks, d_model)
        nn.init.zeros_(self.emb.weight)

    def forward(self, task_ids: torch.Tensor) -> torch.Tensor:
        """task_ids (B,) int -> (B, C)."""
        if task_ids.numel() and (int(task_ids.min()) < 0 or int(task_ids.max()) >= self.n_tasks):
            raise ValueError(f"task ids must be in [0, {self.n_tasks}), got {task_ids.tolist()}")
        return self.emb(task_ids)

    def condition(self, h: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """h (B, C) or (B, S, C) plus the task's vector, broadcast over positions."""
        t = self(task_ids)  # (B, C)
        return h + (t[:, None, :] if h.dim() == 3 else t)
