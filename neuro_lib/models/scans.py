"""Mamba's scans: the recurrence h_t = exp(a_t) h_{t-1} + v_t, its reference loop, the faster ways to
compute the same function, and the one dispatch on MambaConfig.scan (`selective_ssm`).

References: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"
(2023), section 3 and algorithm 2; models/mamba.py is the layer that calls `selective_ssm`.

In one Mamba layer a = Δ A is the log-decay and v = Δ B x the input, both (B, L, E, N).
The recurrence, by name (SCANS):

- `sequential`: `sequential_scan`, the plain loop over time, the reference.
- `chunked`: `chunked_scan`, the fastest in pure PyTorch on long sequences, and the one for
  GPUs and low precision. Time is cut into chunks of Q steps. Inside a chunk the states
  have a closed form through cumulative sums of log-decays,
  h_t = e^{S_t - m} · Σ_{s<=t} e^{m - S_s} v_s (S the within-chunk cumsum of a, m its value
  at the chunk's middle, which keeps both exponentials in float32 range); the state
  carried from one chunk to the next is itself a scan over the chunks' total decays and
  end states, solved by the same function recursively, so the Python-level loop is
  replaced by log_Q(L) levels of whole-tensor operations. The backward pass is the
  adjoint recurrence, a reverse scan through the same function (a custom autograd
  Function), so autograd stores two tensors per layer, not every intermediate.
- `compiled`: the same loop compiled by numba, channels in parallel, forward and adjoint
  backward (models/scan_compiled.py).
- `quadratic`: `quadratic_scan`, every state as a masked sum over an (L, L) matrix of decays:
  no loop, so a traced graph keeps the length dynamic (the ONNX export, export/graphs.py);
  quadratic memory, so not for training.

Each of these needs a and v built as (B, L, E, N) tensors. `fused` (models/ssm_fused.py)
never builds them: the whole SSM, decays, inputs, recurrence and the C contraction, is one
compiled loop. "auto" picks "fused" on a CPU in float32 and a PyTorch scan elsewhere;
docs/LOG.md has the timings (`neuro bench scan` times the recurrences).

All scans clamp the per-step log-decay at LOG_DECAY_FLOOR = -16: a decay factor below
e^-16 ≈ 1e-7 is below float32 resolution relative to the incoming term, so the clamp
changes nothing measurable and bounds the exponentials of the closed form.

Tests: tests/test_mamba.py (the scans agree on outputs, final state and gradients, also with
mambapy.pscan; the fused SSM equals the PyTorch composition).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neuro_lib.models.scan_compiled import compiled_scan
from neuro_lib.models.ssm_fused import fused_ssm

LOG_DECAY_FLOOR = -16.0


# ---------------------------------------------------------------------------------------
# Scans: h_t = exp(a_t) * h_{t-1} + v_t with h_0 = 0; a, v, h all (B, L, E, N)
# ---------------------------------------------------------------------------------------

def sequential_scan(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The reference: a plain loop over time. a (log-decays), v (inputs): (B, L, E, N) -> h (B, L, E, N)."""
    decay = torch.exp(a.clamp_min(LOG_DECAY_FLOOR))
    h = torch.zeros_like(v[:, 0])
    hs = []
    for d_t, v_t in zip(decay.unbind(1), v.unbind(1)):  # unbind: O(L) backward, unlike indexing
        h = d_t * h + v_t
        hs.append(h)
    return torch.stack(hs, dim=1)


def _chunked_states(a: torch.Tensor, v: torch.Tensor, chunk: int) -> torch.Tensor:
    """The forward chunked scan, no autograd needed: a, v (B, L, E, N) -> h (B, L, E, N)."""
    B, L = a.shape[:2]
    n_chunks = -(-L // chunk)
    pad = n_chunks * chunk - L
    a = a.clamp_min(LOG_DECAY_FLOOR)
    if pad:  # trailing zeros never affect earlier states
        a = F.pad(a, (0, 0, 0, 0, 0, pad))
        v = F.pad(v, (0, 0, 0, 0, 0, pad))
    a = a.reshape(B, n_chunks, chunk, *a.shape[2:])   # (B, nC, Q, E, N)
    v = v.reshape(B, n_chunks, chunk, *v.shape[2:])
    S = a.cumsum(2)                                # log of the decay from chunk start to t
    total = S[:, :, -1].clone()                    # (B, nC, E, N) log-decay across each chunk
    m = S[:, :, (chunk - 1) // 2].unsqueeze(2).clone()  # (B, nC, 1, E, N) reference at the middle
    scale = S.sub_(m).exp_()                       # e^{S_t - m}, within e^{±16 Q/2}
    h = (v / scale).cumsum(2)                      # Σ_{s<=t} e^{m - S_s} v_s
    if n_chunks > 1:
        local_end = h[:, :, -1] * scale[:, :, -1]                          # zero-initial-state chunk ends
        ends = _chunked_states(total, local_end, chunk)                    # (B, nC, E, N) true chunk ends
        enter = F.pad(ends[:, :-1], (0, 0, 0, 0, 1, 0))                    # state entering each chunk
        h.add_((enter * torch.exp(m.squeeze(2))).unsqueeze(2))             # e^{S_t} h_in = e^{S_t - m} e^{m} h_in
    h.mul_(scale)
    return h.view(B, n_chunks * chunk, *h.shape[3:])[:, :L]


def _fold(a_first: torch.Tensor, v_first: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
    """Fold a carried state into a block's first input: v_0 + e^{a_0} h_carry."""
    return v_first + torch.exp(a_first.clamp_min(LOG_DECAY_FLOOR)) * carry


class _ChunkedScan(torch.autograd.Function):
    """Forward: a short loop over cache-sized blocks of time, each solved by _chunked_states with the
    state carried in. Backward: the adjoint recurrence, a reverse scan over the same blocks:
    λ_t = g_t + e^{a_{t+1}} λ_{t+1};  dL/dv_t = λ_t;  dL/da_t = λ_t h_{t-1} e^{a_t} (0 where clamped)."""

    @staticmethod
    def forward(ctx, a, v, chunk, block):
        L = a.size(1)
        h = torch.empty_like(v)
        for s in range(0, L, block):
            v_b = v[:, s:s + block]
            if s:
                v_b = torch.cat([_fold(a[:, s], v_b[:, 0], h[:, s - 1]).unsqueeze(1), v_b[:, 1:]], dim=1)
            h[:, s:s + block] = _chunked_states(a[:, s:s + block], v_b, chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk, ctx.block = chunk, block
        return h

    @staticmethod
    def backward(ctx, g):
        a, h = ctx.saved_tensors
        L = a.size(1)
        ga, gv = torch.empty_like(a), torch.empty_like(h)
        for s in reversed(range(0, L, ctx.block)):
            e = min(s + ctx.block, L)
            a_next = a[:, s + 1:e + 1]                                   # a_{t+1} for t in [s, e)
            g_b = g[:, s:e]
            if e < L:  # λ_{e-1} = g_{e-1} + e^{a_e} λ_e
                g_b = torch.cat([g_b[:, :-1], _fold(a[:, e], g_b[:, -1], gv[:, e]).unsqueeze(1)], dim=1)
            else:
                a_next = F.pad(a_next, (0, 0, 0, 0, 0, 1))
            lam = _chunked_states(a_next.flip(1), g_b.flip(1), ctx.chunk).flip(1)   # (B, e-s, E, N)
            gv[:, s:e] = lam
            h_prev = h[:, s - 1:e - 1] if s else F.pad(h[:, :e - 1], (0, 0, 0, 0, 1, 0))
            a_b = a[:, s:e]
            ga[:, s:e] = (lam * h_prev * torch.exp(a_b.clamp_min(LOG_DECAY_FLOOR))).masked_fill_(
                a_b < LOG_DECAY_FLOOR, 0.0)
        return ga, gv, None, None


def chunked_scan(a: torch.Tensor, v: torch.Tensor, chunk: int = 8, block: int = 128) -> torch.Tensor:
    """The fast scan: a (log-decays), v (inputs): (B, L, E, N) -> h (B, L, E, N). Closed form inside
    chunks of `chunk` steps (2..8; <= 8 keeps e^{±16 chunk/2} inside float32), recursive across chunks,
    a loop across blocks of `block` steps so the working set stays in cache."""
    if not 2 <= chunk <= 8:
        raise ValueError(f"chunk must be in 2..8 (at least 2 to shrink, at most 8 for float32 range), got {chunk}")
    if block < chunk:
        raise ValueError(f"block ({block}) must be at least chunk ({chunk})")
    return _ChunkedScan.apply(a, v, chunk, block)


def quadratic_scan(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The loop-free form for graph export: h_t = Σ_{s<=t} e^{S_t - S_s} v_s with S the cumsum of the
    clamped log-decays. a, v (B, L, E, N) -> h (B, L, E, N). Every exponent is <= 0 (a <= 0), so it
    cannot overflow, but it builds an (L, L) decay matrix per channel: O(B L^2 E N) memory, for short
    prompts and single decode steps (an ONNX prefill feeds long prompts in pieces)."""
    L = a.size(1)
    S = a.clamp_min(LOG_DECAY_FLOOR).cumsum(1)                               # (B, L, E, N)
    diff = S.unsqueeze(2) - S.unsqueeze(1)                                   # (B, L_t, L_s, E, N) S_t - S_s
    causal = torch.ones(L, L, dtype=torch.bool, device=a.device).tril()      # (L_t, L_s) s <= t
    decay = torch.where(causal[None, :, :, None, None], diff, float("-inf")).exp()  # 0 above the diagonal
    return (decay * v.unsqueeze(1)).sum(2)                                   # (B, L, E, N)


# The recurrence alone, by name: a, v (B, L, E, N) -> h (B, L, E, N).
SCANS = {"sequential": sequential_scan, "chunked": chunked_scan, "quadratic": quadratic_scan,
         "compiled": lambda a, v: compiled_scan(a, v, LOG_DECAY_FLOOR)}
KINDS = (*SCANS, "fused", "auto")  # MambaConfig.scan: a recurrence, the fused SSM, or "auto"
AUTO_CHUNKED_FROM = 512  # "auto" off the CPU: the chunked scan from this length on (docs/LOG.md, bench scan)


def resolve_scan(kind: str, x: torch.Tensor) -> str:
    """MambaConfig.scan for input x: "auto" is "fused" for float32 CPU tensors; elsewhere (GPU, bf16)
    "chunked" for sequences of AUTO_CHUNKED_FROM steps or more, else "sequential"."""
    if kind != "auto":
        return kind
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return "fused"
    return "chunked" if x.size(1) >= AUTO_CHUNKED_FROM else "sequential"


def selective_ssm(kind: str, x, dt, A, Bm, Cm, h0=None, chunk: int = 8):
    """The SSM of one layer, the one dispatch on MambaConfig.scan (KINDS):
    h_t = e^{max(Δ_t A, floor)} h_{t-1} + Δ_t x_t B_t and y_t = C_t · h_t.
    x, dt (B, L, E); A (E, N); Bm, Cm (B, L, N); h0 (B, E, N) or None -> (y (B, L, E), h_L (B, E, N)).
    "fused" runs it all as one compiled loop (models/ssm_fused.py); a SCANS name builds the
    (B, L, E, N) log-decays and inputs in PyTorch and runs that recurrence on them."""
    kind = resolve_scan(kind, x)
    if kind == "fused":
        h0 = x.new_zeros(x.size(0), *A.shape) if h0 is None else h0
        return fused_ssm(x, dt, A, Bm, Cm, h0, LOG_DECAY_FLOOR)
    a = dt.unsqueeze(-1) * A                                            # (B, L, E, N) log-decay
    v = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)                        # (B, L, E, N)
    if h0 is not None:  # fold the carried state into the first input: h_1 = e^{a_1} h_0 + v_1
        v = torch.cat([(v[:, 0] + h0 * torch.exp(a[:, 0].clamp_min(LOG_DECAY_FLOOR))).unsqueeze(1), v[:, 1:]], dim=1)
    h = chunked_scan(a, v, chunk) if kind == "chunked" else SCANS[kind](a, v)  # (B, L, E, N)
    # the last state cloned, so a decoding state does not keep the whole (B, L, E, N) tensor alive
    return (h @ Cm.unsqueeze(-1)).squeeze(-1), h[:, -1].clone()
