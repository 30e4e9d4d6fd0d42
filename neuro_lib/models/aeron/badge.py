"""BADGE active learning for Aeron's training path (seeds/aeron.md, "Additional Advanced Modules":
`ActiveLearningManager`, BADGE sampling for annotation selection).

BADGE (Ash, Zhang, Krishnamurthy, Langford & Agarwal 2020, "Deep Batch Active Learning by Diverse, Uncertain
Gradient Lower Bounds"): embed every unlabelled example by the gradient of the cross-entropy loss at the
model's own predicted label with respect to the last linear layer, g = (p - e_yhat) (x) h, (N, K*C); its norm
is large where the model is unsure, its direction says what the example would teach. Then pick a batch by
k-means++ seeding on these embeddings (first the largest norm, then each next point with probability
proportional to its squared distance to the nearest point already picked): uncertain and diverse at once.
The baselines: uniform random picks, and the top-k predictive entropy.

`kmeans_pp(X, k, seed, first="random")` draws exactly as scikit-learn's `kmeans_plusplus(..., n_local_trials=1)`
(same RandomState calls), which tests/test_aeron_learn.py checks; BADGE uses `first="max_norm"`.

    idx = select("badge", 20, seed=0, features=h_pool, logits=logits_pool)
Tests: tests/test_aeron_learn.py (gradient embeddings against autograd, selection against a naive loop and
against scikit-learn).
"""
from __future__ import annotations

import numpy as np
import torch

from neuro_lib.models.aeron.uncertainty import predictive_entropy

STRATEGIES = ("badge", "random", "entropy")


def gradient_embeddings(features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """features (N, C) entering the last linear layer, its logits (N, K) -> (N, K*C): d CE(logits, yhat) / d W
    for yhat = argmax logits, W the (K, C) weight (row k of the gradient is (p_k - [k = yhat]) h)."""
    p = logits.softmax(-1)  # (N, K)
    p = p - torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).to(p.dtype)
    return (p[:, :, None] * features[:, None, :]).flatten(1)  # (N, K*C)


def kmeans_pp(X, k: int, seed: int = 0, first: str = "max_norm") -> list[int]:
    """k distinct row indices of X (N, D) by k-means++ seeding. first="max_norm" starts at the largest row norm
    (BADGE), "random" at a uniform draw; each later pick is drawn with probability D(x)^2 / sum D^2, D the
    distance to the nearest pick. Rows all at distance 0 (duplicates) are filled uniformly from the rest."""
    X = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
    N = X.shape[0]
    if not 0 < k <= N:
        raise ValueError(f"cannot pick {k} of {N} points")
    if first not in ("max_norm", "random"):
        raise ValueError(f"first must be 'max_norm' or 'random', got {first!r}")
    rs = np.random.RandomState(seed)
    sq = (X ** 2).sum(1)
    start = int(np.argmax(sq)) if first == "max_norm" else int(rs.choice(N, p=np.full(N, 1.0 / N)))
    picked = [start]
    d2 = np.maximum(sq - 2 * X @ X[start] + sq[start], 0.0)  # squared distance to the nearest pick
    d2[start] = 0.0
    for _ in range(1, k):
        pot = d2.sum()
        if pot <= 0:  # every remaining point coincides with a pick
            rest = np.setdiff1d(np.arange(N), picked)
            nxt = int(rest[rs.randint(len(rest))])
        else:
            nxt = int(np.searchsorted(np.cumsum(d2), rs.uniform(size=1) * pot)[0])
            nxt = min(nxt, N - 1)
        picked.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq - 2 * X @ X[nxt] + sq[nxt], 0.0))
        d2[picked] = 0.0
    return picked


def select(strategy: str, k: int, seed: int = 0, features: torch.Tensor | None = None,
           logits: torch.Tensor | None = None, n_pool: int | None = None) -> list[int]:
    """k pool indices to label. "badge" and "entropy" need the pool's logits (N, K) (BADGE its last-layer
    inputs (N, C) too); "random" needs only the pool size."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; choose one of {STRATEGIES}")
    if strategy == "random":
        N = n_pool if n_pool is not None else logits.shape[0]
        if not 0 < k <= N:
            raise ValueError(f"cannot pick {k} of {N} points")
        return np.random.RandomState(seed).choice(N, size=k, replace=False).tolist()
    if logits is None or (strategy == "badge" and features is None):
        raise ValueError(f"{strategy} selection needs the pool's logits" + (" and features" if strategy == "badge" else ""))
    if strategy == "entropy":
        return torch.topk(predictive_entropy(logits.softmax(-1)), k).indices.tolist()
    return kmeans_pp(gradient_embeddings(features, logits), k, seed, first="max_norm")
