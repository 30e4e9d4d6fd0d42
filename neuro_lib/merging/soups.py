"""Model soups: averages of models fine-tuned from one base on one task with different seeds.

Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned models improves accuracy
without increasing inference time":
- uniform soup: theta = mean_i theta_i;
- greedy soup: sort the ingredients by their validation score, best first; start the soup with the
  best, then add each next ingredient if the soup's validation score with it (uniform mean of the
  chosen) is at least the score without it.
A soup of one model is that model. The ingredients must share a base (checked for run folders in
merging/runs.py); soups mix same-task children, task arithmetic and TIES mix different tasks.
Tests: tests/test_merging.py.
"""
from __future__ import annotations

from typing import Callable

from neuro_lib.errors import NeuroError
from neuro_lib.merging.core import StateDict, merge_map


def uniform_soup(sds: list[StateDict], weights: list[float] | None = None) -> StateDict:
    """The (weighted) mean of the ingredients' weights; weights are normalised to sum to 1."""
    if not sds:
        raise NeuroError("a soup needs at least one model")
    weights = [1.0] * len(sds) if weights is None else [float(w) for w in weights]
    if len(weights) != len(sds) or sum(weights) <= 0 or min(weights) < 0:
        raise NeuroError(f"soup weights must be {len(sds)} non-negative numbers with a positive sum, got {weights}")
    total = sum(weights)
    return merge_map(lambda k, ts: sum((w / total) * t for w, t in zip(weights, ts)), sds)


def greedy_soup(sds: list[StateDict], score: Callable[[StateDict], float],
                scores: list[float] | None = None) -> tuple[StateDict, list[int]]:
    """Greedy soup (Wortsman et al. 2022, Recipe 1): -> (soup, indices of the ingredients kept, in the
    order added). `score(state_dict)` is the validation score, higher is better; `scores`, if given, are
    the ingredients' own scores (saves recomputing them)."""
    if not sds:
        raise NeuroError("a soup needs at least one model")
    scores = [score(sd) for sd in sds] if scores is None else list(scores)
    order = sorted(range(len(sds)), key=lambda i: -scores[i])
    chosen = [order[0]]
    best, soup = scores[order[0]], uniform_soup([sds[order[0]]])
    for i in order[1:]:
        trial = uniform_soup([sds[j] for j in chosen + [i]])
        s = score(trial)
        if s >= best:
            chosen, best, soup = chosen + [i], s, trial
    return soup, chosen
