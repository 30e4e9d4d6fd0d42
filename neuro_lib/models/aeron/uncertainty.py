"""Uncertainty for Aeron's classifier heads (seeds/aeron.md, "Additional Advanced Modules":
`UncertaintyQuantification` = Monte Carlo dropout, deep ensembles, evidential deep learning).

- `EvidentialHead(d_model, n_classes)`: features (B, C) -> Dirichlet concentrations alpha = softplus(Wh + b) + 1
  (B, K); expected probabilities alpha / S and vacuity K / S, S = sum alpha (Sensoy, Kaplan & Kandemir 2018).
- `evidential_loss(alpha, y, kl_weight, kind)`: their eq. 5 (expected squared error under the Dirichlet: error plus
  variance), eq. 4 (expected cross-entropy, digamma) or eq. 3 (log), plus kl_weight * KL(Dir(alpha~) || Dir(1)),
  alpha~ = y + (1 - y) * alpha (the misleading evidence); `annealed_kl_weight`: their min(1, epoch / 10).
- `mc_dropout_predict`: mean softmax over passes with only the dropout layers sampling (Gal & Ghahramani 2016).
- `ensemble_predict`: mean softmax of independently initialised and trained members (Lakshminarayanan et al. 2017).
- `expected_calibration_error`, `reliability_bins`: equal-width confidence bins (Guo et al. 2017).
- `selective_accuracy`: accuracy on what is left after abstaining on the most uncertain fraction.

    probs, samples = mc_dropout_predict(lambda: model(x).softmax(-1), model, n_samples=20)
    expected_calibration_error(probs, y)
Tests: tests/test_aeron_learn.py (loss against its formula, ECE against a hand count, shapes).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class EvidentialHead(nn.Module):
    """(B, C) -> Dirichlet alpha (B, K), every entry >= 1 (evidence >= 0 through softplus)."""

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"an evidential head needs at least 2 classes, got {n_classes}")
        self.proj = nn.Linear(d_model, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.proj(h)) + 1.0  # (B, K)

    @staticmethod
    def probs(alpha: torch.Tensor) -> torch.Tensor:
        """Expected class probabilities alpha / S (B, K)."""
        return alpha / alpha.sum(-1, keepdim=True)

    @staticmethod
    def vacuity(alpha: torch.Tensor) -> torch.Tensor:
        """K / S (B,): 1 with no evidence at all, towards 0 as evidence grows."""
        return alpha.shape[-1] / alpha.sum(-1)


def kl_to_uniform_dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(alpha) || Dir(1, ..., 1)) per row (B,)."""
    K = alpha.shape[-1]
    S = alpha.sum(-1)
    return (torch.lgamma(S) - math.lgamma(K) - torch.lgamma(alpha).sum(-1)
            + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(S)[:, None])).sum(-1))


EVIDENTIAL_LOSSES = ("mse", "digamma", "log")


def evidential_loss(alpha: torch.Tensor, y: torch.Tensor, kl_weight: float = 0.0, kind: str = "mse") -> torch.Tensor:
    """Mean over the batch of a Sensoy et al. (2018) data term + kl_weight * KL(Dir(alpha~) || Dir(1)),
    alpha~ = y + (1 - y) * alpha (the misleading evidence), p = alpha / S. The data terms (their eqs. 3-5):
      "mse"      sum_j (y_j - p_j)^2 + p_j (1 - p_j) / (S + 1)   (eq. 5, expected squared error)
      "digamma"  sum_j y_j (digamma(S) - digamma(alpha_j))        (eq. 4, expected cross-entropy)
      "log"      sum_j y_j (log S - log alpha_j)                   (eq. 3, type II maximum likelihood)
    The paper anneals kl_weight as min(1, epoch / 10) (`annealed_kl_weight`). alpha (B, K), y (B,) class ids."""
    if kind not in EVIDENTIAL_LOSSES:
        raise ValueError(f"evidential loss kind must be one of {EVIDENTIAL_LOSSES}, got {kind!r}")
    onehot = F.one_hot(y, alpha.shape[-1]).to(alpha.dtype)  # (B, K)
    S = alpha.sum(-1, keepdim=True)
    if kind == "mse":
        p = alpha / S
        data = ((onehot - p) ** 2 + p * (1 - p) / (S + 1)).sum(-1)  # (B,)
    elif kind == "digamma":
        data = (onehot * (torch.digamma(S) - torch.digamma(alpha))).sum(-1)
    else:
        data = (onehot * (S.log() - alpha.log())).sum(-1)
    if kl_weight == 0.0:
        return data.mean()
    alpha_tilde = onehot + (1 - onehot) * alpha
    return (data + kl_weight * kl_to_uniform_dirichlet(alpha_tilde)).mean()


def annealed_kl_weight(step: int, steps_per_epoch: int, anneal_epochs: int = 10) -> float:
    """Sensoy et al.'s schedule: lambda_t = min(1, t / anneal_epochs), t the epoch index (0 in the first
    epoch), with an epoch = `steps_per_epoch` optimiser steps (the training set over the batch size)."""
    if steps_per_epoch < 1 or anneal_epochs < 1 or step < 0:
        raise ValueError("steps_per_epoch and anneal_epochs must be at least 1, step non-negative")
    return min(1.0, (step // steps_per_epoch) / anneal_epochs)


def enable_dropout(model: nn.Module) -> list[nn.Module]:
    """Put only the nn.Dropout layers in training mode (norms and the rest stay in eval); -> those layers."""
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for m in layers:
        m.train()
    return layers


@torch.no_grad()
def mc_dropout_predict(predict: Callable[[], torch.Tensor], model: nn.Module, n_samples: int = 20):
    """`predict()` -> probabilities (B, K), called n_samples times with the model's dropout sampling.
    -> (mean probabilities (B, K), every pass (N, B, K)). The model's mode is restored."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    if not any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        raise ValueError("MC dropout needs a model with dropout (p > 0); every pass would be the same")
    was_training = model.training
    model.eval()
    enable_dropout(model)
    try:
        samples = torch.stack([predict() for _ in range(n_samples)])  # (N, B, K)
    finally:
        model.train(was_training)
    return samples.mean(0), samples


@torch.no_grad()
def ensemble_predict(predict: Callable[[nn.Module], torch.Tensor], members: Sequence[nn.Module]):
    """`predict(member)` -> probabilities (B, K) for each member in eval mode -> (mean (B, K), all (M, B, K))."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    out = []
    for m in members:
        was = m.training
        m.eval()
        out.append(predict(m))
        m.train(was)
    samples = torch.stack(out)  # (M, B, K)
    return samples.mean(0), samples


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """H[p] per row (B,), in nats."""
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> list[dict]:
    """Equal-width bins of confidence (max probability) over (0, 1]; bin b holds (b/n, (b+1)/n].
    -> [{"lo", "hi", "count", "confidence" (mean), "accuracy"}] (confidence/accuracy None when empty)."""
    conf, pred = probs.max(-1)
    correct = (pred == labels).float()
    # bin index: ceil(conf * n) - 1, so a confidence of exactly b/n falls in the bin below, 1.0 in the last
    idx = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        n = int(sel.sum())
        rows.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": n,
                     "confidence": float(conf[sel].mean()) if n else None,
                     "accuracy": float(correct[sel].mean()) if n else None})
    return rows


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE = sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)| over `reliability_bins`."""
    N = probs.shape[0]
    if N == 0:
        raise ValueError("ECE of an empty set")
    return sum(r["count"] / N * abs(r["accuracy"] - r["confidence"]) for r in reliability_bins(probs, labels, n_bins)
               if r["count"])


def selective_accuracy(correct: torch.Tensor, uncertainty: torch.Tensor, abstain: Sequence[float]) -> dict[float, float]:
    """Accuracy on the examples kept after abstaining on the round(rate * N) most uncertain, per rate.
    correct (N,) bool, uncertainty (N,) (higher = less sure); ties broken by position (stable sort)."""
    N = correct.shape[0]
    order = torch.sort(uncertainty, stable=True).indices  # most certain first
    out = {}
    for rate in abstain:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"abstain rates must be in [0, 1), got {rate}")
        keep = order[: N - int(round(rate * N))]
        out[rate] = float(correct[keep].float().mean())
    return out
