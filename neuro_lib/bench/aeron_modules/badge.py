"""Experiment: BADGE active learning (models/aeron/badge.py) against random and max-entropy selection.

Pool-based active learning on scikit-learn's 8x8 digits (data/aeron_learn_tasks.py): the pool is the training
split with its labels hidden, the test split scores. Every strategy starts from the same `n_initial` random
labels; each round a small Aeron encoder classifier over 2x2 patches (models/aeron/classifier.py) is trained
from scratch for `steps` (the same initialisation and batch order for every strategy), scored on the test split,
and then picks `per_round` more pool images to label:
  badge    k-means++ seeding on gradient embeddings (the "with" arm: the seed's ActiveLearningManager)
  random   uniform picks (the "without" arm)
  entropy  the top predictive entropy
Metric: test accuracy at each number of labels; the headline is its mean over the rounds (area under the
learning curve, divided by the number of rounds), and the accuracy at the last round.

    from neuro_lib.bench.aeron_modules import badge
    badge.run(seed=0, steps=150, sizes=get_profile("bench").tasks.aeron_modules)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuro_lib.data.aeron_learn_tasks import batch_indices, digits, digits_split
from neuro_lib.models.aeron.badge import STRATEGIES, select
from neuro_lib.models.aeron.classifier import AeronClassifier, ClassifierConfig
from neuro_lib.bench.aeron_modules.common import params_of, train
from neuro_lib.profiles import AeronModulesSizes

NAME = "badge"
CLAIM = "BADGE sampling picks the examples worth labelling (ActiveLearningManager)"
METRIC = "mean_acc"
HIGHER_IS_BETTER = True


def train_on(x, y, s: dict, steps: int, seconds, seed: int):
    torch.manual_seed(seed)
    model = AeronClassifier(ClassifierConfig(n_classes=10, inputs="image", image_size=(8, 8), **s.model))

    def batches(rng):
        idx = batch_indices(rng, len(y), s.batch_size)
        return {"x": x[idx], "y": y[idx]}

    return model, train(model, batches, lambda b: F.cross_entropy(model(b["x"]), b["y"]), seed, steps, seconds,
                        s.lr, s.warmup, "badge round")


def learning_curve(strategy: str, seed: int, steps: int, seconds, s: dict) -> dict:
    """Labels and test accuracy after each round of one strategy."""
    images, labels = digits()
    tr, te = digits_split()
    pool_x, pool_y = images[tr], labels[tr]
    labelled = np.random.RandomState(seed).choice(len(tr), s.n_initial, replace=False).tolist()
    n_labels, acc, train_s = [], [], 0.0
    for rnd in range(s.rounds + 1):
        model, rec = train_on(pool_x[labelled], pool_y[labelled], s, steps, seconds, seed)
        train_s += rec["train_s"]
        model.eval()
        with torch.no_grad():
            acc.append((model(images[te]).argmax(-1) == labels[te]).float().mean().item())
        n_labels.append(len(labelled))
        if rnd == s.rounds:
            break
        rest = np.setdiff1d(np.arange(len(tr)), labelled)
        with torch.no_grad():
            h = model.features(pool_x[rest])     # (N, C): the last layer's input
            logits = model.head(h)               # (N, K)
        picks = select(strategy, s.per_round, seed=seed * 1000 + rnd, features=h, logits=logits, n_pool=len(rest))
        labelled += rest[picks].tolist()
    return {"labels": n_labels, "acc": acc, "train_s": train_s, "steps": rec["steps"], "params": params_of(model)}


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes.badge
    curves = {k: learning_curve(k, seed, steps, seconds, s) for k in STRATEGIES}
    arms = {k: {"mean_acc": float(np.mean(c["acc"])), "final_acc": c["acc"][-1], "params": c["params"],
                "train_s": c["train_s"], "steps": c["steps"]} for k, c in curves.items()}
    return {"with": arms["badge"], "without": arms["random"],
            "extra": {"arms": arms, "curves": {k: {"labels": c["labels"], "acc": c["acc"]} for k, c in curves.items()},
                      "per_round": s.per_round, "n_initial": s.n_initial}}
