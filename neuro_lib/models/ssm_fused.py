"""Mamba's whole selective SSM as one compiled loop (numba): no (B, L, E, N) tensor is ever built.

For x, Δ (B, L, E), A (E, N), B, C (B, L, N) and an initial state h0 (B, E, N):

    a_t = max(Δ_t A, floor)          log-decay, clamped as in models/scans.py
    h_t = e^{a_t} ⊙ h_{t-1} + Δ_t x_t B_t
    y_t = Σ_n h_t[:, n] C_t[n]       -> y (B, L, E) and the last state h_L (B, E, N)

This is what the reference CUDA kernel of Gu & Dao (2023, section 3.3) does on a GPU, done
here for the CPU: the pure-PyTorch path in MambaBlock materialises the log-decays, the
inputs and the states as (B, L, E, N) tensors (134 MB each at batch 32 x 128 x 512 x 16)
and spends most of a training step allocating and walking them. Here each thread carries a
tile of channels through time with its N states in registers. The backward pass recomputes
the tile's states (kept in a thread-local buffer) and runs the adjoint recurrence
λ_t = C_t gy_t + e^{a_{t+1}} λ_{t+1}, accumulating every input's gradient on the way; sums
over channels (for B and C) and over the batch (for A) are per-tile partials added by torch.

    y, h_last = fused_ssm(x, dt, A, Bm, Cm, h0, floor)   # MambaConfig(scan="fused"), "auto" on a CPU in float32
Tests: tests/test_mamba.py (outputs and all six gradients equal the PyTorch composition).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from neuro_lib.models.scan_compiled import set_threads

TILE = 16  # channels per thread job: 16 x N states (1 KiB at N = 16)


@numba.njit(parallel=True, fastmath=True, cache=True)
def _forward(x, dt, A, Bm, Cm, h0, y, h_last, floor):
    Bsz, L, E = x.shape
    N = A.shape[1]
    n_tiles = (E + TILE - 1) // TILE
    for job in numba.prange(Bsz * n_tiles):
        b, lo = job // n_tiles, (job % n_tiles) * TILE
        hi = min(lo + TILE, E)
        state = h0[b, lo:hi].copy()                            # (T, N)
        for t in range(L):
            B_t, C_t = Bm[b, t], Cm[b, t]
            for e in range(lo, hi):
                d = dt[b, t, e]
                dx = d * x[b, t, e]
                s_e, A_e = state[e - lo], A[e]
                acc = np.float32(0.0)
                for n in range(N):
                    s = math.exp(max(d * A_e[n], floor)) * s_e[n] + dx * B_t[n]
                    s_e[n] = s
                    acc += s * C_t[n]
                y[b, t, e] = acc
        h_last[b, lo:hi] = state


@numba.njit(parallel=True, fastmath=True, cache=True)
def _backward(x, dt, A, Bm, Cm, h0, gy, gh_last, floor, gx, gdt, gA_b, gB_tiles, gC_tiles, gh0):
    """Gradients of y (gy) and of the last state (gh_last) back to every input. gA_b (B, E, N) holds
    per-batch partials of dA; gB_tiles, gC_tiles (n_tiles, B, L, N) per-tile partials of dB, dC."""
    Bsz, L, E = x.shape
    N = A.shape[1]
    n_tiles = (E + TILE - 1) // TILE
    for job in numba.prange(Bsz * n_tiles):
        b, tile = job // n_tiles, job % n_tiles
        lo = tile * TILE
        hi = min(lo + TILE, E)
        T = hi - lo
        hs = np.empty((L, T, N), np.float32)                   # states h_t of this tile
        decay = np.empty((L, T, N), np.float32)                # e^{a_t}
        state = h0[b, lo:hi].copy()
        for t in range(L):                                     # recompute the forward states
            for k in range(T):
                d = dt[b, t, lo + k]
                dx = d * x[b, t, lo + k]
                for n in range(N):
                    dec = math.exp(max(d * A[lo + k, n], floor))
                    state[k, n] = dec * state[k, n] + dx * Bm[b, t, n]
                    hs[t, k, n] = state[k, n]
                    decay[t, k, n] = dec
        lam = gh_last[b, lo:hi].copy()                         # λ_L starts from the last state's gradient
        for t in range(L - 1, -1, -1):
            B_t, C_t = Bm[b, t], Cm[b, t]
            gB_t, gC_t = gB_tiles[tile, b, t], gC_tiles[tile, b, t]
            for k in range(T):
                e = lo + k
                d, xe, g = dt[b, t, e], x[b, t, e], gy[b, t, e]
                gd, gxe = np.float32(0.0), np.float32(0.0)
                for n in range(N):
                    if t + 1 < L:
                        lam_n = lam[k, n] * decay[t + 1, k, n] + g * C_t[n]
                    else:
                        lam_n = lam[k, n] + g * C_t[n]
                    lam[k, n] = lam_n
                    gC_t[n] += g * hs[t, k, n]
                    h_prev = hs[t - 1, k, n] if t > 0 else h0[b, e, n]
                    if d * A[e, n] >= floor:                   # the clamp passes no gradient below the floor
                        g_log = lam_n * h_prev * decay[t, k, n]
                        gd += g_log * A[e, n]
                        gA_b[b, e, n] += g_log * d
                    gd += lam_n * xe * B_t[n]
                    gxe += lam_n * B_t[n]
                    gB_t[n] += lam_n * d * xe
                gdt[b, t, e] = gd
                gx[b, t, e] = gxe * d
        for k in range(T):
            for n in range(N):
                gh0[b, lo + k, n] = lam[k, n] * decay[0, k, n]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _FusedSSM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm, h0, floor):
        x, dt, A, Bm, Cm, h0 = (t.contiguous() for t in (x, dt, A, Bm, Cm, h0))
        y = x.new_empty(x.shape)
        h_last = h0.new_empty(h0.shape)
        set_threads()
        _forward(_np(x), _np(dt), _np(A), _np(Bm), _np(Cm), _np(h0), y.numpy(), h_last.numpy(), np.float32(floor))
        ctx.save_for_backward(x, dt, A, Bm, Cm, h0)
        ctx.floor = floor
        return y, h_last

    @staticmethod
    def backward(ctx, gy, gh_last):
        x, dt, A, Bm, Cm, h0 = ctx.saved_tensors
        B, L, E = x.shape
        n_tiles = -(-E // TILE)
        gy, gh_last = gy.contiguous(), gh_last.contiguous()  # autograd passes zeros for an unused output
        gx, gdt, gh0 = torch.empty_like(x), torch.empty_like(dt), torch.empty_like(h0)
        gA_b = A.new_zeros(B, *A.shape)
        gB_tiles, gC_tiles = Bm.new_zeros(n_tiles, *Bm.shape), Cm.new_zeros(n_tiles, *Cm.shape)
        set_threads()
        _backward(_np(x), _np(dt), _np(A), _np(Bm), _np(Cm), _np(h0), _np(gy), _np(gh_last), np.float32(ctx.floor),
                  gx.numpy(), gdt.numpy(), gA_b.numpy(), gB_tiles.numpy(), gC_tiles.numpy(), gh0.numpy())
        return gx, gdt, gA_b.sum(0), gB_tiles.sum(0), gC_tiles.sum(0), gh0, None


def fused_ssm(x, dt, A, Bm, Cm, h0, floor: float):
    """x, dt (B, L, E); A (E, N); Bm, Cm (B, L, N); h0 (B, E, N), all float32 on the CPU ->
    (y (B, L, E), h_last (B, E, N)). Differentiable in every tensor argument."""
    tensors = (x, dt, A, Bm, Cm, h0)
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        raise ValueError("fused_ssm takes float32 CPU tensors; use the PyTorch path elsewhere")
    return _FusedSSM.apply(x, dt, A, Bm, Cm, h0, floor)
