"""A contextual decoder for the VQ tokenizer's lossy mode: a code is decoded with its neighbours.

Why: the per-patch decoder (vq.py) maps each code to one fixed patch, so with K codes at most K
distinct patches come back, and on word-like patches that caps lossy byte fidelity near 91 % at
K = 4096 (docs/LOG.md). Here the code of patch i is decoded from the codes of patches
i - w .. i + w, so one code can stand for different patches in different contexts (the
encoder is unchanged and frozen: the codes, hence bytes/token, stay those of lossy mode).

    codes (N,) ─ pad w each side with a boundary id K ─ windows (N, 2w+1)
    embed each (learned, d_ctx) ─ flatten ─ MLP ─ residual logits (N, L, 257)
    logits = per-patch decoder's logits of the centre code + residual   (starts as the per-patch decoder)

Trained with cross-entropy on the patch bytes of the training text in order (its lossy codes
as input). Not used in lossless mode: there a code must decode to its bytes on its own.
Not persisted with the tokenizer (train it again after loading).

    ctx = train_context_decoder(tok, text, steps=300)
    lossy = tok.contextual(ctx); lossy.decode(lossy.encode(text))
    pytest tests/test_vq_context.py
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.errors import NeuroError
from neuro_lib.optim import make_adamw, warmup_cosine
from neuro_lib.tokenizers.vq import N_SYMBOLS, VQVAE, from_symbols, patches_of, to_tensor


@dataclass
class ContextConfig:
    window: int = 2          # w, neighbouring codes each side
    d_ctx: int = 64          # code embedding width
    d_hidden: int = 512      # MLP width

    def __post_init__(self):
        if self.window < 0 or self.d_ctx < 1 or self.d_hidden < 1:
            raise NeuroError("the context decoder needs window >= 0 and positive widths")


@dataclass
class ContextTrainConfig:
    steps: int = 300
    batch_size: int = 512    # patches per step
    lr: float = 2e-3
    warmup_steps: int = 20
    seed: int = 1337


class ContextDecoder(nn.Module):
    """Codes of a patch sequence -> byte logits of every patch, each read with its 2w neighbours."""

    def __init__(self, vq: VQVAE, config: ContextConfig):
        super().__init__()
        self.config = config
        self.vq = vq.eval()
        for p in self.vq.parameters():
            p.requires_grad_(False)
        K, L, w = vq.config.codebook_size, vq.config.patch_len, config.window
        self.K, self.L = K, L
        self.emb = nn.Embedding(K + 1, config.d_ctx)                       # id K marks "outside the text"
        self.mlp = nn.Sequential(nn.Linear((2 * w + 1) * config.d_ctx, config.d_hidden), nn.GELU(),
                                 nn.Linear(config.d_hidden, L * N_SYMBOLS))
        nn.init.zeros_(self.mlp[-1].weight)                                # starts as the per-patch decoder
        nn.init.zeros_(self.mlp[-1].bias)

    def windows(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (N,) -> (N, 2w+1): each code with its neighbours, K beyond the ends."""
        w = self.config.window
        padded = F.pad(ids, (w, w), value=self.K)                          # (N + 2w,)
        return padded.unfold(0, 2 * w + 1, 1)                              # (N, 2w+1)

    def forward(self, win: torch.Tensor) -> torch.Tensor:
        """win (B, 2w+1) code windows -> logits (B, L, 257)."""
        centre = win[:, self.config.window]                                # (B,)
        base = self.vq.decoder(self.vq.quantizer.codebook[centre])         # (B, L, 257) per-patch decoder
        h = self.emb(win).flatten(1)                                       # (B, (2w+1)*d_ctx)
        return base + self.mlp(h).view(-1, self.L, N_SYMBOLS)              # (B, L, 257)

    @torch.no_grad()
    def decode(self, ids) -> bytes:
        """A sequence of lossy codes -> bytes, each patch decoded in its context."""
        ids = torch.as_tensor(list(ids), dtype=torch.long)
        if len(ids) == 0:
            return b""
        if int(ids.min()) < 0 or int(ids.max()) >= self.K:
            raise NeuroError(f"a contextual VQ decode takes code ids 0..{self.K - 1} (lossy mode has no escapes)")
        symbols = self(self.windows(ids)).argmax(-1).tolist()               # (N, L)
        return b"".join(from_symbols(r) for r in symbols)


def train_context_decoder(tok, text: bytes, steps: int | None = None, config: ContextConfig | None = None,
                          train: ContextTrainConfig | dict | None = None, callback=None) -> ContextDecoder:
    """Fit a ContextDecoder on `text` (the patches in order, their lossy codes from the frozen encoder)."""
    tc = train if isinstance(train, ContextTrainConfig) else ContextTrainConfig(**(train or {}))
    if steps is not None:
        tc.steps = steps
    patches = patches_of(text, tok.L)
    if not patches:
        raise NeuroError("cannot train a contextual decoder on an empty text")
    model = ContextDecoder(tok.model, config or ContextConfig())
    targets = to_tensor(patches, tok.L)                                     # (N, L)
    with torch.no_grad():
        codes = torch.cat([tok.model.encode_patches(targets[i:i + 8192]) for i in range(0, len(targets), 8192)])
    return fit_context(model, model.windows(codes), targets, tc, callback)


def fit_context(model: ContextDecoder, win: torch.Tensor, targets: torch.Tensor, tc: ContextTrainConfig,
                callback=None) -> ContextDecoder:
    """The training loop: windows (N, 2w+1) of codes -> the centre patch's symbols targets (N, L)."""
    g = torch.Generator().manual_seed(tc.seed)
    torch.manual_seed(tc.seed)
    opt = make_adamw(model, tc.lr, weight_decay=0.0)  # skips the frozen VQ
    model.train()
    model.vq.eval()
    t0 = time.time()
    for step in range(1, tc.steps + 1):
        lr = tc.lr * warmup_cosine(step / tc.steps, step - 1, tc.warmup_steps, 0.1)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(0, len(win), (tc.batch_size,), generator=g)
        logits = model(win[idx])                                            # (B, L, 257)
        loss = F.cross_entropy(logits.reshape(-1, N_SYMBOLS), targets[idx].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if callback and (step % 25 == 0 or step == tc.steps):
            callback({"step": step, "loss": loss.item(), "elapsed_s": round(time.time() - t0, 3)})
    return model.eval()
