"""Mamba: a selective state-space language model in PyTorch, with three scans and a fused SSM.

References: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces" (2023), section 3 and algorithm 2. The RNK seed (seeds/rnk.md) stacks these
blocks over raw bytes.

One layer (MambaBlock), for input u (B, L, d_model):

    x, z = in_proj(RMSNorm(u))                 # two (B, L, E) streams, E = expand * d_model
    x = SiLU(causal depthwise conv(x))         # kernel d_conv
    Δ, B, C = x_proj(x)                        # Δ from a rank-R bottleneck, B and C (B, L, N)
    Δ = softplus(dt_proj(Δ))                   # input-dependent step size (B, L, E)
    A = -exp(A_log)                            # diagonal, negative real (E, N)
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t   # selective SSM, state (B, E, N)
    y_t = C_t · h_t + D ⊙ x_t
    out = u + out_proj(y ⊙ SiLU(z))

The recurrence h_t = exp(a_t) h_{t-1} + v_t (a = Δ A the log-decay, v = Δ B x) is
computed by one of three scans over the same numbers (MambaConfig.scan; "auto" picks):

- `sequential_scan`: the plain loop over time, the reference.
- `fused_scan` (models/fused_scan.py): the same loop compiled by numba, channels in parallel,
  forward and adjoint backward; the fastest recurrence on CPU at every shape measured.
- `chunked_scan`: the fastest in pure PyTorch on long sequences, and the one for GPUs and
  low precision. Time is cut into chunks of Q steps. Inside a chunk
  the states have a closed form through cumulative sums of log-decays,
  h_t = e^{S_t - m} · Σ_{s<=t} e^{m - S_s} v_s (S the within-chunk cumsum of a, m its value
  at the chunk's middle, which keeps both exponentials in float32 range); the state
  carried from one chunk to the next is itself a scan over the chunks' total decays and
  end states, solved by the same function recursively, so the Python-level loop is
  replaced by log_Q(L) levels of whole-tensor operations. The backward pass is the
  adjoint recurrence, a reverse scan through the same function (a custom autograd
  Function), so autograd stores two tensors per layer, not every intermediate.

The layer itself (`selective_ssm`) builds a and v as (B, L, E, N) tensors and scans them,
except with scan="fused" ("auto" on a CPU in float32), where the whole SSM, decays, inputs,
recurrence and the C contraction, is one compiled loop that never builds them
(models/selective_scan.py); docs/LOG.md has the timings.

All scans clamp the per-step log-decay at LOG_DECAY_FLOOR = -16: a decay factor below
e^-16 ≈ 1e-7 is below float32 resolution relative to the incoming term, so the clamp
changes nothing measurable and bounds the exponentials of the closed form.

    neuro train --arch mamba --corpus stdlib-docs --time-budget 60 --out runs/mamba
    neuro bench scan
Tests: tests/test_mamba.py (the scans agree on outputs, final state and gradients, also with
mambapy.pscan; step() equals forward()).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.models.base import LanguageModel
from neuro_lib.models.fused_scan import fused_scan
from neuro_lib.models.layers import RMSNorm
from neuro_lib.models.selective_scan import selective_scan

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


SCANS = {"sequential": sequential_scan, "chunked": chunked_scan,
         "fused": lambda a, v: fused_scan(a, v, LOG_DECAY_FLOOR)}
AUTO_CHUNKED_FROM = 512  # "auto" off the CPU: the chunked scan from this length on (docs/LOG.md, bench scan)


def resolve_scan(kind: str, x: torch.Tensor) -> str:
    """MambaConfig.scan for input x: "auto" is "fused" for float32 CPU tensors; elsewhere (GPU, bf16)
    "chunked" for sequences of AUTO_CHUNKED_FROM steps or more, else "sequential"."""
    if kind != "auto":
        return kind
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return "fused"
    return "chunked" if x.size(1) >= AUTO_CHUNKED_FROM else "sequential"


def run_scan(kind: str, a: torch.Tensor, v: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """The recurrence alone, by MambaConfig.scan: a, v (B, L, E, N) -> h (B, L, E, N)."""
    kind = resolve_scan(kind, v)
    return chunked_scan(a, v, chunk) if kind == "chunked" else SCANS[kind](a, v)


def selective_ssm(kind: str, x, dt, A, Bm, Cm, h0=None, chunk: int = 8):
    """The SSM of one layer: h_t = e^{max(Δ_t A, floor)} h_{t-1} + Δ_t x_t B_t and y_t = C_t · h_t.
    x, dt (B, L, E); A (E, N); Bm, Cm (B, L, N); h0 (B, E, N) or None -> (y (B, L, E), h_L (B, E, N)).
    "fused" runs it as one compiled loop (models/selective_scan.py); the others build the
    (B, L, E, N) log-decays and inputs in PyTorch and scan them."""
    kind = resolve_scan(kind, x)
    if kind == "fused":
        h0 = x.new_zeros(x.size(0), *A.shape) if h0 is None else h0
        return selective_scan(x, dt, A, Bm, Cm, h0, LOG_DECAY_FLOOR)
    a = dt.unsqueeze(-1) * A                                            # (B, L, E, N) log-decay
    v = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)                        # (B, L, E, N)
    if h0 is not None:  # fold the carried state into the first input: h_1 = e^{a_1} h_0 + v_1
        v = torch.cat([(v[:, 0] + h0 * torch.exp(a[:, 0].clamp_min(LOG_DECAY_FLOOR))).unsqueeze(1), v[:, 1:]], dim=1)
    h = run_scan(kind, a, v, chunk)                                     # (B, L, E, N)
    # the last state cloned, so a decoding state does not keep the whole (B, L, E, N) tensor alive
    return (h @ Cm.unsqueeze(-1)).squeeze(-1), h[:, -1].clone()


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------

@dataclass
class MambaConfig:
    vocab_size: int = 256      # bytes
    d_model: int = 256         # D, the residual width
    n_layer: int = 4
    d_state: int = 16          # N, SSM state size per channel
    d_conv: int = 4            # depthwise causal conv kernel
    expand: int = 2            # E = expand * d_model inner channels
    dt_rank: int = 0           # R, rank of the Δ projection (0 = ceil(d_model / 16))
    dt_min: float = 1e-3       # initial Δ range (log-uniform)
    dt_max: float = 1e-1
    scan: str = "auto"         # "fused" (compiled, CPU), "chunked", "sequential" (reference) or "auto"
    chunk: int = 8             # Q, steps per chunk of the chunked scan
    block_size: int = 256      # training window (the model itself has no length limit)

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "n_layer", "d_state", "d_conv", "expand", "block_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MambaConfig.{name} must be positive, got {getattr(self, name)}")
        if self.scan not in (*SCANS, "auto"):
            raise ValueError(f"MambaConfig.scan must be one of {[*SCANS, 'auto']}, got {self.scan!r}")
        if self.dt_rank == 0:
            self.dt_rank = math.ceil(self.d_model / 16)

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba layer. State for decoding: (conv_state (B, E, d_conv-1), ssm_state (B, E, N))."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        E, N, R = cfg.d_inner, cfg.d_state, cfg.dt_rank
        self.cfg = cfg
        self.norm = RMSNorm(cfg.d_model)
        self.in_proj = nn.Linear(cfg.d_model, 2 * E, bias=False)
        self.conv = nn.Conv1d(E, E, cfg.d_conv, groups=E, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(E, 1))  # (E, N)
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, cfg.d_model, bias=False)
        # Δ = softplus(bias) starts log-uniform in [dt_min, dt_max] (Mamba's init)
        dt = torch.exp(torch.rand(E) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            nn.init.uniform_(self.dt_proj.weight, -R ** -0.5, R ** -0.5)

    def forward(self, u: torch.Tensor, state=None):
        """u (B, L, D) -> (out (B, L, D), new state). state None = start of sequence."""
        cfg, (B, L, _) = self.cfg, u.shape
        E, N, K = cfg.d_inner, cfg.d_state, cfg.d_conv
        x, z = self.in_proj(self.norm(u)).chunk(2, dim=-1)                  # (B, L, E) each
        conv_prev = x.new_zeros(B, E, K - 1) if state is None else state[0]
        x_pad = torch.cat([conv_prev, x.transpose(1, 2)], dim=2)           # (B, E, K-1+L)
        x = F.silu(self.conv(x_pad)).transpose(1, 2)                        # (B, L, E) causal conv
        dt, Bm, Cm = self.x_proj(x).split([cfg.dt_rank, N, N], dim=-1)     # (B, L, R), (B, L, N) x2
        dt = F.softplus(self.dt_proj(dt))                                   # (B, L, E)
        A = -torch.exp(self.A_log)                                          # (E, N)
        y, h_last = selective_ssm(cfg.scan, x, dt, A, Bm, Cm, None if state is None else state[1], cfg.chunk)
        y = y + self.D * x                                                  # (B, L, E)
        out = u + self.out_proj(y * F.silu(z))
        return out, (x_pad[:, :, x_pad.size(2) - (K - 1):].clone(), h_last)


@dataclass
class MambaState:
    """Decoding state: per layer (conv window (B, E, K-1), SSM state (B, E, N)) and positions per row.

    `step` writes new values into these tensors in place, so a `row(b)` view's writes land in the
    parent (the engine prefills ragged prompts row by row; a recurrent state has no length, so rows
    of different lengths decode together). Rollback restores what `checkpoint()` saved: a recurrent
    state cannot forget tokens, so `rollback(n)` returns the positions it reached (the checkpoint's,
    or n where a row has not moved) and the caller re-feeds the tokens from there to n.
    """
    layers: list                     # [(conv (B, E, K-1), ssm (B, E, N))] per layer
    len_t: torch.Tensor              # (B,) positions consumed, on the CPU
    saved: tuple | None = None       # (len_t, layers) cloned by checkpoint()
    ragged = True

    @property
    def lengths(self) -> list[int]:
        return self.len_t.tolist()

    def update(self, layers: list, t: int) -> None:
        for (conv, ssm), (new_conv, new_ssm) in zip(self.layers, layers):
            conv.copy_(new_conv)
            ssm.copy_(new_ssm)
        self.len_t += t

    def checkpoint(self) -> None:
        self.saved = (self.len_t.clone(), [(c.clone(), h.clone()) for c, h in self.layers])

    def rollback(self, n) -> list[int]:
        n = torch.as_tensor(n, dtype=torch.long).expand_as(self.len_t).tolist()
        for b, (m, cur) in enumerate(zip(n, self.lengths)):
            if m == cur:
                continue
            if self.saved is None or not int(self.saved[0][b]) <= m <= cur:
                raise ValueError(f"cannot roll back row {b} to {m}: no checkpoint at or before it "
                                 f"(row at {cur})")
            for (conv, ssm), (c0, h0) in zip(self.layers, self.saved[1]):
                conv[b].copy_(c0[b])
                ssm[b].copy_(h0[b])
            self.len_t[b] = self.saved[0][b]
        return self.lengths

    def row(self, b: int) -> "MambaState":
        saved = None if self.saved is None else (self.saved[0][b:b + 1],
                                                 [(c[b:b + 1], h[b:b + 1]) for c, h in self.saved[1]])
        return MambaState([(c[b:b + 1], h[b:b + 1]) for c, h in self.layers], self.len_t[b:b + 1], saved)

    def nbytes(self) -> int:
        return sum(c.numel() * c.element_size() + h.numel() * h.element_size() for c, h in self.layers)

    def fork(self, n: int) -> "MambaState":
        """n copies of this one-row state (a recurrent state is small: copying is the sharing)."""
        return MambaState([(c.repeat(n, 1, 1), h.repeat(n, 1, 1)) for c, h in self.layers], self.len_t.repeat(n))


class Mamba(LanguageModel):
    """Byte-level Mamba LM: embedding, n_layer MambaBlocks, RMSNorm, tied LM head."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.config = config
        self.max_len = None  # a recurrent model: no context limit
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        nn.init.normal_(self.tok_emb.weight, 0.0, 0.02)
        for blk in self.blocks:
            nn.init.normal_(blk.in_proj.weight, 0.0, 0.02)
            nn.init.normal_(blk.x_proj.weight, 0.0, 0.02)
            nn.init.normal_(blk.out_proj.weight, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    def hidden(self, tokens: torch.Tensor, state=None):
        """tokens (B, T) -> (final hidden states (B, T, D), per-layer states)."""
        x = self.tok_emb(tokens)                                            # (B, T, D)
        states = []
        for i, blk in enumerate(self.blocks):
            x, s = blk(x, None if state is None else state[i])
            states.append(s)
        return self.norm_f(x), states

    def forward(self, tokens):
        """tokens (B, T) -> logits (B, T, V)."""
        return self.lm_head(self.hidden(tokens)[0])

    def init_state(self, batch_size: int) -> MambaState:
        c, p = self.config, next(self.parameters())
        return MambaState([(p.new_zeros(batch_size, c.d_inner, c.d_conv - 1),
                            p.new_zeros(batch_size, c.d_inner, c.d_state)) for _ in range(c.n_layer)],
                          torch.zeros(batch_size, dtype=torch.long))

    def step(self, tokens, state: MambaState):
        """tokens (B, t) continuing from state -> (logits (B, t, V), the state, updated in place)."""
        h, layers = self.hidden(tokens, state.layers)
        state.update(layers, tokens.shape[1])
        return self.lm_head(h), state
