"""State-dict plumbing every merge shares, the task vector, and task arithmetic.

A merge here is a pure function over state dicts (`{name: tensor}`, as `model.state_dict()` returns):
it never changes its inputs and returns new tensors. Every method follows one policy, written once:

- Float tensors (weights and float buffers alike) are merged, in float32, and cast back to the
  base's dtype.
- Non-float tensors (integer or bool buffers: step counters, masks) cannot be averaged: they must be
  equal in every input and are copied from the first; if they differ the merge is refused.
- Tied tensors (one storage under several names, like the LM head tied to the token embedding in
  GPT and Aeron) are merged once, under their first name, and the other names point at that one
  output tensor, so a random method (DARE) cannot give the two names different values and no
  tensor is counted twice (TIES' global trim, SLERP's angle). The tie structure must be the same in
  every input (a state dict loaded with `load_checkpoint(...)[0].state_dict()` keeps it).
- Every input has the same names and shapes; anything else is one sentence (NeuroError).

`describe(sd)` says what the policy will do with a state dict (merged, tied, copied).

References: Ilharco et al. 2023, "Editing Models with Task Arithmetic" (task vector tau = theta_ft -
theta_base, theta = theta_base + lambda * sum_t tau_t).
Tests: tests/test_merging.py.
"""
from __future__ import annotations

from typing import Callable

import torch

from neuro_lib.errors import NeuroError

StateDict = dict[str, torch.Tensor]


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def tied_names(sd: StateDict) -> dict[str, str]:
    """{alias: first name} for every name whose tensor shares storage with an earlier name's."""
    first: dict[tuple, str] = {}
    aliases = {}
    for k, v in sd.items():
        key = _storage_key(v)
        if key in first:
            aliases[k] = first[key]
        else:
            first[key] = k
    return aliases


def is_merged(t: torch.Tensor) -> bool:
    """The policy's test: floating-point tensors are merged, others copied."""
    return t.is_floating_point()


def describe(sd: StateDict) -> dict:
    """What a merge does with `sd`: names merged, names tied to a merged one, non-float names copied."""
    aliases = tied_names(sd)
    merged = [k for k, v in sd.items() if k not in aliases and is_merged(v)]
    copied = [k for k, v in sd.items() if k not in aliases and not is_merged(v)]
    return {"merged": merged, "tied": aliases, "copied": copied,
            "merged_params": sum(sd[k].numel() for k in merged)}


def check_compatible(sds: list[StateDict], what: str = "models") -> None:
    """Refuse, in one sentence, inputs that do not share names, shapes and tie structure."""
    if not sds:
        raise NeuroError(f"no {what} to merge")
    ref = sds[0]
    ref_ties = tied_names(ref)
    for i, sd in enumerate(sds[1:], 1):
        if sd.keys() != ref.keys():
            diff = sorted(set(sd) ^ set(ref))[:3]
            raise NeuroError(f"{what} 0 and {i} have different tensors ({diff}); only models of one architecture merge")
        bad = [k for k in ref if sd[k].shape != ref[k].shape]
        if bad:
            raise NeuroError(f"{what} 0 and {i} differ in shape at {bad[:3]}; only models of one size merge")
        if tied_names(sd) != ref_ties:
            raise NeuroError(f"{what} 0 and {i} tie different tensors together; load both the same way")


def merge_map(fn: Callable[[str, list[torch.Tensor]], torch.Tensor], sds: list[StateDict]) -> StateDict:
    """Apply `fn(name, [float32 tensor per input]) -> float32 tensor` to every merged name of `sds` (the
    policy above): non-float names copied (equal in all inputs), tied aliases pointing at their merged twin."""
    check_compatible(sds)
    ref = sds[0]
    aliases = tied_names(ref)
    out: StateDict = {}
    for k, v in ref.items():
        if k in aliases:
            continue
        if not is_merged(v):
            if any(not torch.equal(sd[k], v) for sd in sds[1:]):
                raise NeuroError(f"non-float tensor {k!r} differs between the models; it cannot be averaged")
            out[k] = v.clone()
            continue
        out[k] = fn(k, [sd[k].detach().float() for sd in sds]).to(v.dtype).contiguous()
    for alias, first in aliases.items():
        out[alias] = out[first]
    return {k: out[k] for k in ref}  # the input's order


def task_vector(child_sd: StateDict, base_sd: StateDict) -> StateDict:
    """tau = theta_child - theta_base (Ilharco et al. 2023) over the merged names; tied aliases share one
    tensor, non-float names are left out (they carry no direction). To take it between two run folders,
    with the child's recorded parent checked, use `merging.runs.task_vector_runs`."""
    check_compatible([base_sd, child_sd])
    aliases = tied_names(base_sd)
    out = {k: (child_sd[k].detach().float() - v.detach().float()).to(v.dtype)
           for k, v in base_sd.items() if k not in aliases and is_merged(v)}
    out.update({a: out[f] for a, f in aliases.items() if f in out})
    return out


def merged_names(sd: StateDict) -> list[str]:
    """The names a merge computes (float tensors, tied aliases once), in order."""
    aliases = tied_names(sd)
    return [k for k, v in sd.items() if k not in aliases and is_merged(v)]


def task_arithmetic(base_sd: StateDict, child_sds: list[StateDict], lam: float = 1.0,
                    weights: list[float] | None = None) -> StateDict:
    """Task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic"):
    theta = theta_base + lam * sum_t w_t * (theta_t - theta_base), with w_t = 1 by default (the paper's
    sum, scaled by one lam chosen on validation). lam = 0 returns the base; one child at lam = 1 returns it."""
    if not child_sds:
        raise NeuroError("task arithmetic needs at least one child")
    weights = [1.0] * len(child_sds) if weights is None else list(weights)
    if len(weights) != len(child_sds):
        raise NeuroError(f"{len(weights)} weights given for {len(child_sds)} children")

    def merge(name, ts):
        base, children = ts[0], ts[1:]
        delta = sum(w * (c - base) for w, c in zip(weights, children))
        return base + lam * delta
    return merge_map(merge, [base_sd, *child_sds])


def stack_deltas(ts: list[torch.Tensor]) -> torch.Tensor:
    """[base, child...] float tensors -> the children's task vectors stacked (N, *shape)."""
    return torch.stack([c - ts[0] for c in ts[1:]])


def layer_group(name: str) -> str:
    """The block a tensor belongs to: the name up to its first numeric part ("decoder.3" for
    "decoder.3.ffn.up.weight", "blocks.0" in GPT), or "other" (embeddings, final norm, head)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return "other"


def layer_groups(sd: StateDict) -> list[str]:
    """The blocks of a state dict in order of first appearance, "other" last if present."""
    groups = list(dict.fromkeys(layer_group(k) for k in merged_names(sd)))
    return [g for g in groups if g != "other"] + (["other"] if "other" in groups else [])
