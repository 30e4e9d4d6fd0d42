"""RNK: a byte-level Mamba with chunked latent planning, a neuro-symbolic refiner and a GRU
decoder (seeds/rnk.md), built for real and measured.

    bytes (B, T) ─ embed ─ Mamba layers ─ H (B, T, D)          causal, O(T)
    every P = chunk_len bytes: summary s_c = H at the chunk's last byte
    HRM planner: per chunk, K high-level steps, each after `hrm_low_steps` low-level steps
        z_L <- GRU_L([W s_c, z_H], z_L);  z_H <- GRU_H(z_L, z_H);  plan p_c = W s_c + z_H  (z carried)
    heads on p_c: intent (n_intent), answerable (1), stop (1: "the next chunk ends the reply")
    NS refiner, rule R1 "unanswerable => refusal": π' = a π + (1 - a) e_refusal, a = σ(answerable)
        p'_c = p_c + MLP([p_c, π', a])
        rule R2 "math => digits a calculator confirms" acts at decoding (infer/chat.py, through the
        calculator tool): after "= " the calculator's result is emitted, not the network's guess.
    GRU decoder: the bytes of chunk c+1 from h_0 = tanh(W p'_c + E π'_c), input [embed(x_t), H_t] at each byte
    logits (B, T, 256): next-byte prediction, so RNK is an ordinary LM too (forward, init_state, step).

Intent and answerable are read from the plan of the last prompt chunk; prompts are padded
to a chunk boundary (data/chat.py), and everything is causal, so they cannot see the reply.
Loss (compute_loss) = token + 0.5 stop + 0.2 intent + 0.3 answerable + 0.1 contrastive
(weights in RNKConfig); a batch without chat labels trains the token loss alone (train_lm).
The contrastive term is InfoNCE between the prompt plan and the reply's last plan.

Ablations: use_hrm=False (plan = W s_c, no multi-step refinement, no carry across chunks),
use_refiner=False (no R1, no R2), w_contrastive=0.

Decoder variants (`decoder`): "full" is the seed's GRU, fed [embed(x_t), H_t] at every byte, so it
can predict from the Mamba state and ignore the plan. "plan_only" feeds it embed(x_t) alone: within
a chunk the decoder knows only the bytes of that chunk so far and h_0, so everything it knows about
earlier text comes through the plan (tests check that changing H with the plans fixed leaves its
outputs unchanged). `forward_aux(tokens, drop_plan=True)` starts every chunk from the learned start
state instead of the plan: the loss it adds is how much the decoder reads the plan.

    neuro bench rnk --steps 300
Tests: tests/test_rnk.py.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.models.base import LanguageModel, check_positive, masked_cross_entropy
from neuro_lib.models.mamba import Mamba, MambaConfig


DECODERS = ("full", "plan_only")


@dataclass
class RNKConfig:
    vocab_size: int = 256       # raw bytes, no tokenizer
    d_model: int = 256          # byte embedding and Mamba width
    n_layer: int = 4            # Mamba layers
    d_state: int = 16           # Mamba N
    d_conv: int = 4
    expand: int = 2
    scan: str = "auto"          # Mamba scan (models/mamba.py)
    chunk_len: int = 32         # P, bytes per chunk
    d_plan: int = 256           # latent plan width (HRM z_L, z_H)
    hrm_steps: int = 5          # K, high-level planning steps per chunk
    hrm_low_steps: int = 2      # low-level steps per high-level step
    d_dec: int = 384            # GRU decoder hidden size
    n_intent: int = 7           # intent classes the data has (data/chat.py passes its own: chat.model_sizes())
    refusal_intent: int = 3     # the intent rule R1 forces when the answerable head says no
    use_hrm: bool = True        # ablation switch
    use_refiner: bool = True    # ablation switch (rules R1 and R2)
    w_stop: float = 0.5         # loss weights (seed: token + 0.5 stop + 0.2 intent + 0.3 answerable + 0.1 contr.)
    w_intent: float = 0.2
    w_answerable: float = 0.3
    w_contrastive: float = 0.1
    temperature: float = 0.1    # InfoNCE temperature
    block_size: int = 256       # training window when used as a plain LM
    decoder: str = "full"       # "full": GRU input [embed, H]; "plan_only": GRU input embed (see the docstring)

    def __post_init__(self):
        check_positive(self, "vocab_size", "d_model", "n_layer", "chunk_len", "d_plan", "hrm_steps", "hrm_low_steps",
                       "d_dec", "block_size", "n_intent")
        if not 0 <= self.refusal_intent < self.n_intent:
            raise ValueError(f"RNKConfig.refusal_intent must be an intent index in 0..{self.n_intent - 1}, "
                             f"got {self.refusal_intent}")
        if self.decoder not in DECODERS:
            raise ValueError(f"RNKConfig.decoder must be one of {DECODERS}, got {self.decoder!r}")
        if min(self.w_stop, self.w_intent, self.w_answerable, self.w_contrastive) < 0:
            raise ValueError("RNKConfig loss weights must be non-negative")


def _clone(x):
    """A deep copy of a state field's tensors (tuples, lists and dicts of them)."""
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, dict):
        return {k: _clone(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_clone(v) for v in x)
    return x


@dataclass
class RNKState:
    """Decoding state: the Mamba layers' states, the planner's (z_L, z_H), the GRU decoder's h, the last
    completed chunk's heads and the position. Rows advance in lockstep (chunk boundaries are shared),
    so a ragged batch decodes one prompt at a time (`ragged = False`). Rollback restores what
    `checkpoint()` saved and returns the position reached; the caller re-feeds the rest."""
    mamba: list                      # [(conv, ssm)] per Mamba layer, as Mamba.hidden takes them
    z: tuple                         # (z_L, z_H), each (B, d_plan)
    h: torch.Tensor                  # (B, d_dec)
    heads: dict | None = None        # intent, answerable, stop, plan, intent_refined of the last chunk
    pos: int = 0
    saved: "RNKState | None" = None
    ragged = False

    @property
    def lengths(self) -> list[int]:
        return [self.pos] * self.h.shape[0]

    def checkpoint(self) -> None:
        self.saved = RNKState(*(_clone(getattr(self, f.name)) for f in fields(self) if f.name != "saved"))

    def rollback(self, n) -> list[int]:
        n = n if isinstance(n, int) else n[0]
        if n != self.pos:
            if self.saved is None or not self.saved.pos <= n <= self.pos:
                raise ValueError(f"cannot roll back to {n}: no checkpoint at or before it (at {self.pos})")
            for f in fields(self):
                if f.name != "saved":
                    setattr(self, f.name, _clone(getattr(self.saved, f.name)))
        return self.lengths

    def nbytes(self) -> int:
        tensors = [t for c, s in self.mamba for t in (c, s)] + [*self.z, self.h]
        return sum(t.numel() * t.element_size() for t in tensors)

    def fork(self, n: int) -> "RNKState":
        """n copies of this one-row state."""
        rep = lambda x: x.repeat(n, *[1] * (x.dim() - 1))  # noqa: E731
        heads = None if self.heads is None else {k: rep(v) for k, v in self.heads.items()}
        return RNKState([(rep(c), rep(s)) for c, s in self.mamba], tuple(rep(z) for z in self.z), rep(self.h),
                        heads, self.pos)


class HRMPlanner(nn.Module):
    """Hierarchical planner: a fast low-level GRU and a slow high-level GRU refine the plan K times per chunk."""

    def __init__(self, cfg: RNKConfig):
        super().__init__()
        self.cfg = cfg
        self.low = nn.GRUCell(2 * cfg.d_plan, cfg.d_plan)
        self.high = nn.GRUCell(cfg.d_plan, cfg.d_plan)

    def forward(self, x, z):
        """x (B, d_plan) the chunk summary, z = (z_L, z_H) -> (plan = x + z_H (B, d_plan), new z)."""
        z_L, z_H = z
        for _ in range(self.cfg.hrm_steps):
            for _ in range(self.cfg.hrm_low_steps):
                z_L = self.low(torch.cat([x, z_H], -1), z_L)
            z_H = self.high(z_L, z_H)
        return x + z_H, (z_L, z_H)


class NSRefiner(nn.Module):
    """Rule R1 as a projection of the intent distribution, then a residual MLP on the plan."""

    def __init__(self, cfg: RNKConfig):
        super().__init__()
        self.refusal_intent = cfg.refusal_intent
        self.mlp = nn.Sequential(nn.Linear(cfg.d_plan + cfg.n_intent + 1, 2 * cfg.d_plan), nn.GELU(),
                                 nn.Linear(2 * cfg.d_plan, cfg.d_plan))

    def forward(self, plan, intent_logits, answerable_logit):
        """plan (..., d_plan), intent_logits (..., n_intent), answerable_logit (...) -> (p', π')."""
        a = torch.sigmoid(answerable_logit).unsqueeze(-1)                  # (..., 1)
        refusal = F.one_hot(torch.tensor(self.refusal_intent), intent_logits.size(-1)).to(plan.dtype)
        pi = a * intent_logits.softmax(-1) + (1 - a) * refusal             # R1: unanswerable => refusal
        return plan + self.mlp(torch.cat([plan, pi, a], -1)), pi


class RNK(LanguageModel):
    def __init__(self, config: RNKConfig):
        super().__init__()
        c = self.config = config
        self.max_len = None
        self.backbone = Mamba(MambaConfig(vocab_size=c.vocab_size, d_model=c.d_model, n_layer=c.n_layer,
                                          d_state=c.d_state, d_conv=c.d_conv, expand=c.expand, scan=c.scan,
                                          block_size=c.block_size))
        self.summary = nn.Linear(c.d_model, c.d_plan)
        self.planner = HRMPlanner(c) if c.use_hrm else None
        self.intent_head = nn.Linear(c.d_plan, c.n_intent)
        self.answerable_head = nn.Linear(c.d_plan, 1)
        self.stop_head = nn.Linear(c.d_plan, 1)
        self.refiner = NSRefiner(c) if c.use_refiner else None
        self.dec_init = nn.Linear(c.d_plan, c.d_dec)
        self.intent_emb = nn.Linear(c.n_intent, c.d_dec, bias=False)
        self.start_h = nn.Parameter(torch.zeros(c.d_dec))                  # decoder state for the first chunk
        d_in = 2 * c.d_model if c.decoder == "full" else c.d_model
        self.decoder = nn.GRU(d_in, c.d_dec, batch_first=True)
        self.out_head = nn.Linear(c.d_dec, c.vocab_size)
        self.proj_prompt = nn.Linear(c.d_plan, c.d_plan)                   # contrastive projections
        self.proj_reply = nn.Linear(c.d_plan, c.d_plan)

    # -- pieces shared by forward and step -------------------------------------------------
    def _plan(self, s, z):
        """Chunk summary s (B, D) and planner state -> (plan, heads dict, decoder h0 (B, d_dec), new z)."""
        x = self.summary(s)
        if self.planner is not None:
            plan, z = self.planner(x, z)
        else:
            plan = x
        heads = {"intent": self.intent_head(plan), "answerable": self.answerable_head(plan).squeeze(-1),
                 "stop": self.stop_head(plan).squeeze(-1), "plan": plan}
        if self.refiner is not None:
            refined, pi = self.refiner(plan, heads["intent"], heads["answerable"])
        else:
            refined, pi = plan, heads["intent"].softmax(-1)
        heads["intent_refined"] = pi
        return heads, torch.tanh(self.dec_init(refined) + self.intent_emb(pi)), z

    def _dec_input(self, emb, H):
        """What the GRU decoder reads at each byte: [embed, H] (full) or embed alone (plan_only)."""
        return torch.cat([emb, H], -1) if self.config.decoder == "full" else emb

    def decode_chunks(self, emb, H, h0):
        """emb, H (B, C*P, D), h0 (B, C, d_dec) the state each chunk starts from -> logits (B, C*P, V)."""
        B, C, P = h0.shape[0], h0.shape[1], self.config.chunk_len
        inp = self._dec_input(emb, H).reshape(B * C, P, -1)                # (B*C, P, D or 2D)
        out, _ = self.decoder(inp, h0.reshape(1, B * C, -1))               # (B*C, P, d_dec)
        return self.out_head(out).view(B, C * P, -1)                       # (B, C*P, V)

    def _zero_z(self, batch_size: int, like: torch.Tensor):
        z = like.new_zeros(batch_size, self.config.d_plan)
        return (z, z)

    # -- full sequence ---------------------------------------------------------------------
    def forward_aux(self, tokens: torch.Tensor, drop_plan: bool = False):
        """tokens (B, T) -> (logits (B, T, V), heads: dict of (B, C, ...) per chunk, C = ceil(T / P)).
        drop_plan: every chunk's decoder starts from the start state, not the previous chunk's plan."""
        c, (B, T) = self.config, tokens.shape
        P = c.chunk_len
        C = -(-T // P)
        x = F.pad(tokens, (0, C * P - T))                                   # (B, C*P) right-padded
        emb = self.backbone.tok_emb(x)                                      # (B, C*P, D)
        H, _ = self.backbone.hidden(x)                                      # (B, C*P, D)
        summaries = H[:, P - 1::P]                                          # (B, C, D)
        z, per_chunk, h0s = self._zero_z(B, H), [], []
        for ci in range(C):
            heads, h0, z = self._plan(summaries[:, ci], z)
            per_chunk.append(heads)
            h0s.append(h0)
        heads = {k: torch.stack([h[k] for h in per_chunk], 1) for k in per_chunk[0]}
        start = torch.tanh(self.start_h).expand(B, 1, -1)
        h0 = torch.cat([start, *(h.unsqueeze(1) for h in h0s[:-1])], 1)     # (B, C, d_dec): chunk c uses plan c-1
        if drop_plan:
            h0 = start.expand(B, C, -1)                                     # (B, C, d_dec): no plan read
        logits = self.decode_chunks(emb, H, h0)[:, :T]                      # (B, T, V)
        return logits, heads

    def forward(self, tokens):
        return self.forward_aux(tokens)[0]

    def compute_loss(self, batch: dict):
        c = self.config
        logits, heads = self.forward_aux(batch["tokens"])
        token = masked_cross_entropy(logits, batch["targets"], batch.get("loss_mask"))
        if "intent" not in batch:  # plain byte-LM batch (train_lm): token loss only
            return token, {"token_loss": token.item()}
        rows, pc, rc = torch.arange(len(batch["intent"])), batch["prompt_chunk"], batch["response_chunk"]
        intent = F.cross_entropy(heads["intent"][rows, pc], batch["intent"])
        answerable = F.binary_cross_entropy_with_logits(heads["answerable"][rows, pc], batch["answerable"])
        stop_all = F.binary_cross_entropy_with_logits(heads["stop"], batch["stop_target"], reduction="none")
        stop = (stop_all * batch["stop_mask"]).sum() / batch["stop_mask"].sum().clamp_min(1.0)
        q = F.normalize(self.proj_prompt(heads["plan"][rows, pc]), dim=-1)
        r = F.normalize(self.proj_reply(heads["plan"][rows, rc]), dim=-1)
        sim = q @ r.T / c.temperature                                       # (B, B)
        contrastive = 0.5 * (F.cross_entropy(sim, rows) + F.cross_entropy(sim.T, rows))
        loss = (token + c.w_stop * stop + c.w_intent * intent + c.w_answerable * answerable
                + c.w_contrastive * contrastive)
        return loss, {"token_loss": token.item(), "stop_loss": stop.item(), "intent_loss": intent.item(),
                      "answerable_loss": answerable.item(), "contrastive_loss": contrastive.item()}

    # -- incremental decoding --------------------------------------------------------------
    def init_state(self, batch_size: int) -> RNKState:
        p = next(self.parameters())
        return RNKState(self.backbone.init_state(batch_size).layers, self._zero_z(batch_size, p),
                        torch.tanh(self.start_h).expand(batch_size, -1).contiguous())

    def step(self, tokens, state: RNKState):
        """tokens (B, t) -> (logits (B, t, V), state). state.heads holds the last completed chunk's heads."""
        P, outs = self.config.chunk_len, []
        for i in range(tokens.size(1)):
            x = tokens[:, i:i + 1]                                          # (B, 1)
            H, state.mamba = self.backbone.hidden(x, state.mamba)           # (B, 1, D)
            inp = self._dec_input(self.backbone.tok_emb(x), H)              # (B, 1, 2D or D)
            out, h = self.decoder(inp, state.h.unsqueeze(0))
            outs.append(self.out_head(out))
            state.h, state.pos = h[0], state.pos + 1
            if state.pos % P == 0:  # chunk complete: plan, heads, refine, reset the decoder
                state.heads, state.h, state.z = self._plan(H[:, 0], state.z)
        return torch.cat(outs, 1), state
