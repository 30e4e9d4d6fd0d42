"""TIES-Merging and DARE: sparsify the task vectors, then add them (DARE) or resolve their signs (TIES).

TIES (Yadav et al. 2023, "TIES-Merging: Resolving Interference When Merging Models"), per task vector
tau_t = theta_t - theta_base:
  1. trim: keep the `density` fraction of tau_t's entries of largest magnitude, zero the rest;
  2. elect sign: gamma = sgn(sum_t trimmed tau_t) per entry (the sign with the larger total mass);
  3. disjoint mean: per entry, the mean of the trimmed values whose sign agrees with gamma;
  theta = theta_base + lam * that mean.
DARE (Yu et al. 2024, "Language Models are Super Mario: Absorbing Abilities from Homologous Models as a
Free Lunch"): drop each entry of tau_t with probability p and rescale the survivors by 1 / (1 - p), so
the task vector is unchanged in expectation; then merge by task arithmetic or by TIES' sign election and
disjoint mean (DARE replaces the trim).

Where the paper's definitions and mergekit's differ, the paper's is the default and mergekit's a named
option (both tested in tests/test_merging.py):
- trim scope: `trim="model"` (default) keeps the top `density` of each task vector over the whole
  model, as the paper's released code does (all parameters flattened into one vector);
  `trim="tensor"` keeps the top max(1, int(density * numel)) of every tensor (mergekit's `magnitude`).
- sign ties (an entry whose trimmed values sum to exactly 0): `sign_ties="majority"` (default, the
  paper's code) gives it the sign most entries of the model elected; `sign_ties="positive"` makes it +1
  (mergekit's `sum >= 0`).
- DARE's rescaling: `rescale="inverse"` (default, the paper) multiplies survivors by 1 / (1 - p);
  `rescale="l1"` (mergekit's `rescale: true`) instead scales each dropped tensor back to its original L1
  norm, which is exact per draw in norm but not unbiased per entry.
Tests: tests/test_merging.py.
"""
from __future__ import annotations

import torch

from neuro_lib.errors import NeuroError
from neuro_lib.merging.core import StateDict, check_compatible, merge_map, merged_names, stack_deltas

TRIM_SCOPES = ("model", "tensor")
SIGN_TIES = ("majority", "positive")
RESCALES = ("inverse", "l1")
DARE_ON = ("ta", "ties")


def _deltas(base_sd: StateDict, child_sds: list[StateDict]) -> dict[str, torch.Tensor]:
    """{name: the children's task vectors stacked (N, *shape)} over the merged names, in float32."""
    if not child_sds:
        raise NeuroError("this merge needs at least one child")
    check_compatible([base_sd, *child_sds])
    return {k: stack_deltas([base_sd[k].detach().float(), *(c[k].detach().float() for c in child_sds)])
            for k in merged_names(base_sd)}


def _check_fraction(name: str, value: float, low_open: bool, high_open: bool) -> None:
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise NeuroError(f"{name} must be in {'(' if low_open else '['}0, 1{')' if high_open else ']'}, got {value}")


def trim(deltas: dict[str, torch.Tensor], density: float, scope: str = "model") -> dict[str, torch.Tensor]:
    """TIES step 1: each task vector (row n of every stacked tensor) keeps its top-`density` entries by
    magnitude, over the whole model (`scope="model"`) or within each tensor (`scope="tensor"`)."""
    _check_fraction("density", density, low_open=True, high_open=False)
    if scope not in TRIM_SCOPES:
        raise NeuroError(f"trim scope must be one of {TRIM_SCOPES}, got {scope!r}")
    if scope == "tensor":
        out = {}
        for k, d in deltas.items():
            flat = d.reshape(d.shape[0], -1)  # (N, numel)
            keep = max(1, int(density * flat.shape[1]))  # at least one entry per tensor, as mergekit
            mask = torch.zeros_like(flat, dtype=torch.bool)
            mask.scatter_(1, flat.abs().topk(keep, dim=1).indices, True)
            out[k] = (flat * mask).reshape(d.shape)
        return out
    names = list(deltas)
    flat = torch.cat([deltas[k].reshape(deltas[k].shape[0], -1) for k in names], dim=1)  # (N, all params)
    keep = round(density * flat.shape[1])
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if keep:
        mask.scatter_(1, flat.abs().topk(keep, dim=1).indices, True)
    kept = flat * mask
    out, start = {}, 0
    for k in names:
        n = deltas[k][0].numel()
        out[k] = kept[:, start:start + n].reshape(deltas[k].shape)
        start += n
    return out


def elect_sign(trimmed: dict[str, torch.Tensor], ties: str = "majority") -> dict[str, torch.Tensor]:
    """TIES step 2: gamma = sgn(sum over task vectors) per entry; exact zeros resolved by `ties`."""
    if ties not in SIGN_TIES:
        raise NeuroError(f"sign_ties must be one of {SIGN_TIES}, got {ties!r}")
    signs = {k: t.sum(0).sign() for k, t in trimmed.items()}
    if ties == "positive":
        fill = torch.tensor(1.0)
    else:  # the sign most entries of the whole model elected (+1 if they balance)
        total = sum(s.sum() for s in signs.values())
        fill = torch.tensor(-1.0 if total < 0 else 1.0)
    return {k: torch.where(s == 0, fill, s) for k, s in signs.items()}


def disjoint_mean(trimmed: dict[str, torch.Tensor], signs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TIES step 3: per entry, the mean of the nonzero values that agree with the elected sign (0 if none)."""
    out = {}
    for k, t in trimmed.items():
        agree = (t.sign() == signs[k]) & (t != 0)  # (N, *shape)
        out[k] = (t * agree).sum(0) / agree.sum(0).clamp_min(1)
    return out


def ties(base_sd: StateDict, child_sds: list[StateDict], density: float = 0.2, lam: float = 1.0,
         trim_scope: str = "model", sign_ties: str = "majority") -> StateDict:
    """TIES-Merging (Yadav et al. 2023): trim to `density`, elect sign, disjoint mean, scale by `lam`.
    Defaults are the paper's (density 0.2 of its sweep, lam 1; tune lam on validation)."""
    trimmed = trim(_deltas(base_sd, child_sds), density, trim_scope)
    merged = disjoint_mean(trimmed, elect_sign(trimmed, sign_ties))
    return merge_map(lambda k, ts: ts[0] + lam * merged[k], [base_sd, *child_sds])


def dare_drop(delta: torch.Tensor, p: float, generator: torch.Generator | None = None,
              rescale: str = "inverse") -> torch.Tensor:
    """DARE's drop-and-rescale of one tensor: zero each entry with probability p, then rescale the
    survivors by 1 / (1 - p) (`rescale="inverse"`, unbiased) or to the tensor's L1 norm (`"l1"`)."""
    _check_fraction("drop rate p", p, low_open=False, high_open=True)
    if rescale not in RESCALES:
        raise NeuroError(f"rescale must be one of {RESCALES}, got {rescale!r}")
    keep = torch.rand(delta.shape, generator=generator) >= p  # each entry survives with probability 1 - p
    dropped = delta * keep
    if rescale == "inverse":
        return dropped / (1 - p)
    before, after = delta.abs().sum(), dropped.abs().sum()
    return dropped * (before / after) if after > 1e-12 and before > 1e-12 else dropped


def dare(base_sd: StateDict, child_sds: list[StateDict], p: float = 0.9, on: str = "ta", lam: float = 1.0,
         rescale: str = "inverse", sign_ties: str = "majority", seed: int = 0) -> StateDict:
    """DARE (Yu et al. 2024): drop rate `p` with rescaling on every task vector, then task arithmetic
    (`on="ta"`: base + lam * sum) or TIES' sign election and disjoint mean (`on="ties"`; the drop replaces
    TIES' trim). `seed` fixes the drops; each tied tensor is dropped once."""
    if on not in DARE_ON:
        raise NeuroError(f"DARE runs on one of {DARE_ON}, got {on!r}")
    gen = torch.Generator().manual_seed(seed)
    deltas = _deltas(base_sd, child_sds)
    dropped = {k: torch.stack([dare_drop(d, p, gen, rescale) for d in ds]) for k, ds in deltas.items()}
    if on == "ta":
        merged = {k: d.sum(0) for k, d in dropped.items()}
    else:
        merged = disjoint_mean(dropped, elect_sign(dropped, sign_ties))
    return merge_map(lambda k, ts: ts[0] + lam * merged[k], [base_sd, *child_sds])
