"""Spherical linear interpolation (SLERP) between two models, tensor by tensor, with a per-layer t.

Shoemake 1985, "Animating Rotation with Quaternion Curves": between unit vectors a and b at angle
Omega = arccos(a . b), slerp(a, b; t) = sin((1 - t) Omega) / sin(Omega) a + sin(t Omega) / sin(Omega) b.
For model weights each tensor is flattened into one vector. When the two are nearly parallel
(|cos Omega| > 0.9995) sin(Omega) is ~0 and the formula is unstable, so the merge falls back to linear
interpolation (1 - t) a + t b, as every implementation does.

Weights are not unit vectors, so "SLERP" has two readings (both tested in tests/test_merging.py):
- `norm="geodesic"` (default, Shoemake's): interpolate the directions on the unit sphere and the norms
  linearly: |theta| = (1 - t)|a| + t|b|, theta / |theta| = slerp(a/|a|, b/|b|; t).
- `norm="raw"` (mergekit's `slerp`): the angle from the normalised vectors, the formula applied to
  the raw ones. It agrees with "geodesic" when |a| = |b|; otherwise its direction is pulled toward
  the longer vector.

`t` is one number or a list of per-layer values (anchors spread evenly over the model's blocks and
interpolated linearly between them, as mergekit's gradients are; a list as long as the model has blocks
gives each block its own t). Tensors outside the blocks (embeddings, final norm) take the mean t.
Tests: tests/test_merging.py.
"""
from __future__ import annotations

import math

import torch

from neuro_lib.errors import NeuroError
from neuro_lib.merging.core import StateDict, layer_group, layer_groups, merge_map

NORMS = ("geodesic", "raw")
DOT_THRESHOLD = 0.9995


def slerp_tensor(a: torch.Tensor, b: torch.Tensor, t: float, norm: str = "geodesic",
                 threshold: float = DOT_THRESHOLD, eps: float = 1e-8) -> torch.Tensor:
    """SLERP of two same-shape tensors, flattened; linear interpolation when nearly parallel."""
    if norm not in NORMS:
        raise NeuroError(f"slerp norm must be one of {NORMS}, got {norm!r}")
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    na, nb = a.norm(), b.norm()
    if na < eps or nb < eps:
        return torch.lerp(a, b, t)
    ua, ub = a / na, b / nb
    dot = float((ua * ub).sum().clamp(-1, 1))
    if abs(dot) > threshold:
        return torch.lerp(a, b, t)
    omega = math.acos(dot)
    s0, s1 = math.sin((1 - t) * omega) / math.sin(omega), math.sin(t * omega) / math.sin(omega)
    if norm == "raw":
        return s0 * a + s1 * b
    return ((1 - t) * na + t * nb) * (s0 * ua + s1 * ub)


def layer_ts(sd: StateDict, t) -> dict[str, float]:
    """{block: t} for every block of `sd` (and "other"), from one t or a list of anchors."""
    groups = [g for g in layer_groups(sd) if g != "other"]
    anchors = [float(t)] if isinstance(t, (int, float)) else [float(x) for x in t]
    if not anchors or any(not 0 <= x <= 1 for x in anchors):
        raise NeuroError(f"slerp t must be in [0, 1] (one value or a list per layer), got {t}")
    out = {}
    for i, g in enumerate(groups):
        if len(anchors) == 1:
            out[g] = anchors[0]
            continue
        x = i / max(len(groups) - 1, 1) * (len(anchors) - 1)  # position among the anchors
        lo = min(int(x), len(anchors) - 2)
        out[g] = anchors[lo] + (x - lo) * (anchors[lo + 1] - anchors[lo])
    out["other"] = sum(anchors) / len(anchors)
    return out


def slerp(a_sd: StateDict, b_sd: StateDict, t=0.5, norm: str = "geodesic",
          threshold: float = DOT_THRESHOLD) -> StateDict:
    """SLERP from model a (t = 0) to model b (t = 1) tensor by tensor (Shoemake 1985); `t` one value or
    per-layer anchors. Returns a at t = 0 and b at t = 1 exactly."""
    ts = layer_ts(a_sd, t)
    return merge_map(lambda k, xs: slerp_tensor(xs[0], xs[1], ts[layer_group(k)], norm, threshold), [a_sd, b_sd])
