"""The scan `sequential_scan` loops over (models/scans.py), compiled by numba: forward and backward.

    h_t = exp(a_t) * h_{t-1} + v_t,   h_0 = 0,   a, v, h: (B, L, E, N)

Why a third scan: on a CPU the recurrence is memory-bound. The pure-PyTorch scans
(models/scans.py) either pay Python overhead per step (`sequential_scan`) or make a dozen
passes over (B, L, E, N) tensors (`chunked_scan`). This loop walks time once per pass,
channel tiles in parallel across threads, with the state in registers: the forward reads
a and v and writes h; the backward (the adjoint recurrence, as in `_ChunkedScan`)
reads a, h and the upstream gradient and writes both input gradients. Both clamp the
log-decay at the floor the other scans use (scans.LOG_DECAY_FLOOR), so all three compute
the same function.

numba compiles the two loops on first use (a few seconds, cached on disk next to this
file); `neuro bench scan` times the result against the loop, the chunked scan and mambapy.
It is `scan="compiled"`; `scan="fused"` (models/ssm_fused.py) fuses the whole SSM around it.
Tests: tests/test_mamba.py (equal to sequential_scan on outputs and gradients).
"""
from __future__ import annotations

import numba
import numpy as np
import torch

TILE = 1024  # channels (E*N) one thread carries through time: 4 KiB of float32 state, fits in L1


@numba.njit(parallel=True, fastmath=True, cache=True)
def _forward(decay, v, h):  # (B, L, M) float32 each; M = E*N
    B, L, M = decay.shape
    n_tiles = (M + TILE - 1) // TILE
    for job in numba.prange(B * n_tiles):
        b, lo = job // n_tiles, (job % n_tiles) * TILE
        hi = min(lo + TILE, M)
        state = np.zeros(hi - lo, np.float32)
        for t in range(L):
            d_t, v_t, h_t = decay[b, t, lo:hi], v[b, t, lo:hi], h[b, t, lo:hi]  # views: the k loop vectorises
            for k in range(hi - lo):
                state[k] = d_t[k] * state[k] + v_t[k]
                h_t[k] = state[k]


@numba.njit(parallel=True, fastmath=True, cache=True)
def _backward(a, decay_ga, h, g, gv, floor):
    """λ_t = g_t + e^{a_{t+1}} λ_{t+1};  dv_t = λ_t;  da_t = λ_t h_{t-1} e^{a_t} (0 where a_t < floor, as
    torch.clamp_min's gradient; h_{-1} = 0). `decay_ga` holds e^{a_t} on entry and da_t on return:
    one fewer (B, L, M) tensor to allocate."""
    B, L, M = decay_ga.shape
    n_tiles = (M + TILE - 1) // TILE
    for job in numba.prange(B * n_tiles):
        b, lo = job // n_tiles, (job % n_tiles) * TILE
        hi = min(lo + TILE, M)
        lam = np.zeros(hi - lo, np.float32)      # λ_{t+1}
        nxt = np.zeros(hi - lo, np.float32)      # e^{a_{t+1}}
        for t in range(L - 1, -1, -1):
            a_t, d_t, g_t, gv_t = a[b, t, lo:hi], decay_ga[b, t, lo:hi], g[b, t, lo:hi], gv[b, t, lo:hi]
            for k in range(hi - lo):
                lam[k] = lam[k] * nxt[k] + g_t[k]
                gv_t[k] = lam[k]
                nxt[k] = d_t[k]
            if t > 0:
                h_prev = h[b, t - 1, lo:hi]
                for k in range(hi - lo):
                    d_t[k] = lam[k] * h_prev[k] * d_t[k] if a_t[k] >= floor else np.float32(0.0)
            else:
                for k in range(hi - lo):  # (a slice assignment here is dropped by numba's parfor pass)
                    d_t[k] = 0.0


def _as_blm(x: torch.Tensor) -> np.ndarray:
    """A contiguous float32 (B, L, E*N) numpy view of a (B, L, E, N) CPU tensor."""
    return x.detach().contiguous().view(x.shape[0], x.shape[1], -1).numpy()


def set_threads():
    """Use as many threads as torch does (torch.set_num_threads is the one knob)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


class _CompiledScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, v, floor):
        set_threads()
        v = v.contiguous()
        h = torch.empty_like(v)
        _forward(_as_blm(a.clamp_min(floor).exp_()), _as_blm(v), _as_blm(h))
        ctx.save_for_backward(a, h)
        ctx.floor = floor
        return h

    @staticmethod
    def backward(ctx, g):
        a, h = ctx.saved_tensors
        g = g.contiguous()
        gv = torch.empty_like(h)
        ga = a.clamp_min(ctx.floor).exp_()  # the decays, recomputed (cheaper than saving them); da in place
        set_threads()
        _backward(_as_blm(a), _as_blm(ga), _as_blm(h), _as_blm(g), _as_blm(gv), np.float32(ctx.floor))
        return ga, gv, None


def compiled_scan(a: torch.Tensor, v: torch.Tensor, floor: float) -> torch.Tensor:
    """The compiled scan: a (log-decays, clamped at `floor`), v (inputs): (B, L, E, N) float32 CPU
    tensors -> h (B, L, E, N)."""
    if a.device.type != "cpu" or v.device.type != "cpu" or a.dtype != torch.float32 or v.dtype != torch.float32:
        raise ValueError(f"compiled_scan takes float32 CPU tensors, got {a.dtype} on {a.device} and {v.dtype} on {v.device}")
    return _CompiledScan.apply(a, v, floor)
