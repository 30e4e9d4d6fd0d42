"""Layer-wise merging: task arithmetic with one coefficient per block, chosen on a validation split.

One lam for the whole model (task arithmetic) treats every block alike, but fine-tuning moves blocks
unequally and interference is not uniform over depth. Layer-wise merging gives block l its own lam_l,
theta_l = theta_base,l + lam_l * sum_t tau_t,l, as in AdaMerging (Yang et al. 2024, "AdaMerging:
Adaptive Model Merging for Multi-Task Learning", layer-wise variant). AdaMerging learns lam_l by entropy
minimisation on unlabelled test inputs; here lam_l is chosen on a labelled validation split by
coordinate ascent over a grid (no test data is touched): start from the best single lam on the grid,
then for each block in turn try every grid value and keep the one that improves the validation score.
By construction the result scores at least the best single lam on validation; whether that holds on
the test split is what `neuro bench merge` measures.
Tests: tests/test_merging.py.
"""
from __future__ import annotations

from typing import Callable, Iterable

from neuro_lib.errors import NeuroError
from neuro_lib.merging.core import StateDict, layer_group, layer_groups, merge_map

GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)


def layerwise(base_sd: StateDict, child_sds: list[StateDict], coeffs) -> StateDict:
    """theta = theta_base + lam_l * sum_t (theta_t - theta_base) per block l; `coeffs` is {block: lam}
    (blocks from `merging.core.layer_groups`, "other" for tensors outside the blocks) or one number."""
    if not child_sds:
        raise NeuroError("layer-wise merging needs at least one child")
    groups = layer_groups(base_sd)
    coeffs = dict.fromkeys(groups, float(coeffs)) if isinstance(coeffs, (int, float)) else dict(coeffs)
    missing = [g for g in groups if g not in coeffs]
    if missing:
        raise NeuroError(f"layer-wise coefficients missing for block(s) {missing[:3]}")
    return merge_map(lambda k, ts: ts[0] + coeffs[layer_group(k)] * sum(c - ts[0] for c in ts[1:]),
                     [base_sd, *child_sds])


def best_of(candidates: Iterable, make: Callable, score: Callable[[StateDict], float]):
    """-> (best candidate, its score, [(candidate, score)]) with `score(make(candidate))` highest
    (the first of equals): how every merge hyperparameter is chosen on validation."""
    tried = [(c, score(make(c))) for c in candidates]
    if not tried:
        raise NeuroError("no candidates to choose from")
    best = max(tried, key=lambda cs: cs[1])
    return best[0], best[1], tried


def tune_layerwise(base_sd: StateDict, child_sds: list[StateDict], score: Callable[[StateDict], float],
                   grid: Iterable[float] = GRID, sweeps: int = 1) -> tuple[dict, StateDict, float]:
    """Coordinate ascent over `grid` per block on the validation `score` (higher is better), from the
    best single coefficient -> ({block: lam}, merged state dict, its validation score)."""
    grid = list(grid)
    groups = layer_groups(base_sd)
    lam, best, _ = best_of(grid, lambda c: layerwise(base_sd, child_sds, c), score)
    coeffs = dict.fromkeys(groups, lam)
    for _ in range(sweeps):
        for g in groups:
            for value in grid:
                if value == coeffs[g]:
                    continue
                trial = {**coeffs, g: value}
                s = score(layerwise(base_sd, child_sds, trial))
                if s > best:
                    coeffs, best = trial, s
    return coeffs, layerwise(base_sd, child_sds, coeffs), best
