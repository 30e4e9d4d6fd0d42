"""VQ-VAE neural tokenizer (NeuroTiny's NeuroTokenizer, "no BPE"), spec `vq:K`.

What: an autoencoder over byte patches with a discrete bottleneck (van den Oord et al.
2017, "Neural Discrete Representation Learning"). The encoder maps a patch of up to L
bytes to a vector z; the quantizer replaces z by the nearest of K codebook vectors
(straight-through gradient, commitment loss beta * |z - sg(e)|^2, codebook updated by
exponential moving averages, unused codes restarted from the batch); the decoder maps
the code back to L byte distributions (256 bytes + an END symbol that pads short patches).
Codebook usage (perplexity, dead codes) is logged during training.

Patching: the text is cut into word-like pieces (pretokenize.WORD: " word", a digit run,
one punctuation mark, a whitespace run), pieces longer than L are cut into L-byte parts.
These are the patches; each patch is one token. Fixed L-byte patches were measured too
and compress worse at any fidelity (docs/LOG.md).

Two modes, both `encode(data) -> ids`, `decode(ids) -> bytes`:
- lossy: one code per patch, the pure VQ-VAE; a patch the decoder gets wrong decodes to
  other bytes (measured as byte fidelity by `neuro bench tokenizers`).
- lossless (default, what a language model sees): boundaries chosen by the model. At
  each position of a patch the tokenizer emits the code of the longest prefix that the
  VQ-VAE reconstructs exactly, i.e. decoder(quantize(encoder(p))) == p; a byte no such
  prefix covers is emitted as a raw-byte escape id K + byte. So decode(encode(x)) == x
  for every byte string, and compression counts the escapes. The exactly reconstructed
  patches are precisely the decoded code strings s_c with encoder(s_c) -> c (if p
  reconstructs via code c then p == s_c), so the search runs on that precomputed set
  instead of calling the network per candidate (tests check the equivalence).

vocab_size = K codes + 256 escape ids. Decoding is a table lookup (the decoder is
evaluated once per code), so it is exact and fast.

    tok = VQTokenizer.train(text, 4096, train={"steps": 2000})
    tok.encode("hello"); tok.lossy().encode("hello"); tok.history  # training curves
    pytest tests/test_vq.py
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.errors import NeuroError
from neuro_lib.progress import Progress
from neuro_lib.tokenizers.base import PieceCache, Tokenizer, as_bytes
from neuro_lib.tokenizers.pretokenize import WORD, split
from neuro_lib.optim import make_adamw, warmup_cosine

END = 256          # pads a patch shorter than L; the decoder predicts it to mark the end
N_SYMBOLS = 257    # 256 byte values + END
WEIGHTS_FILE = "vq_model.safetensors"
HISTORY_FILE = "vq_metrics.jsonl"


@dataclass
class VQConfig:
    codebook_size: int = 4096     # K, codes in the codebook
    patch_len: int = 8            # L, most bytes per patch
    d_byte: int = 32              # byte embedding width per patch position
    d_hidden: int = 256           # encoder/decoder MLP width
    d_code: int = 32              # D, width of z and of each (unit-norm) codebook vector e_k
    beta: float = 0.25            # commitment loss weight (beta in the paper)
    ema_decay: float = 0.95       # gamma of the EMA codebook update
    dead_usage: float = 0.03      # codes whose EMA batch count falls below this are restarted

    def __post_init__(self):
        if self.codebook_size < 2:
            raise NeuroError(f"vq:{self.codebook_size} needs at least 2 codes")
        if not 1 <= self.patch_len <= 64:
            raise NeuroError(f"patch_len must be in 1..64, got {self.patch_len}")


@dataclass
class VQTrainConfig:
    steps: int = 1500             # optimiser steps
    batch_size: int = 1024        # patches per step
    lr: float = 2e-3
    warmup_steps: int = 50
    suffix_share: float = 0.5     # share of training patches that are suffixes of pieces (what lossless mode needs)
    count_power: float = 0.7      # patches are sampled with probability ~ count^power (flattened towards rare)
    restart_every: int = 10       # steps between dead-code restarts
    ae_warmup: float = 0.2        # share of steps trained as a plain autoencoder (no quantization) before the
                                  # codebook is initialised from encoder outputs
    log_every: int = 25
    seed: int = 1337


# -- patches ---------------------------------------------------------------------------------
def patches_of(data: bytes, patch_len: int) -> list[bytes]:
    """Word-like pieces of `data`, each cut into parts of at most `patch_len` bytes."""
    return [p[i:i + patch_len] for p in split(data, WORD) for i in range(0, len(p), patch_len)]


def to_tensor(patches: list[bytes], patch_len: int) -> torch.Tensor:
    """(N, L) long tensor of byte values, END-padded."""
    out = torch.full((len(patches), patch_len), END, dtype=torch.long)
    for r, p in enumerate(patches):
        out[r, :len(p)] = torch.frombuffer(bytearray(p), dtype=torch.uint8) if p else out[r, :0]
    return out


def from_symbols(row) -> bytes:
    """Decoded symbols (L,) -> bytes up to the first END."""
    out = bytearray()
    for s in row:
        if s == END:
            break
        out.append(s)
    return bytes(out)


# -- blocks ----------------------------------------------------------------------------------
class PatchEncoder(nn.Module):
    def __init__(self, c: VQConfig):
        super().__init__()
        self.emb = nn.Embedding(N_SYMBOLS, c.d_byte)
        self.pos = nn.Parameter(torch.randn(c.patch_len, c.d_byte) * 0.02)
        self.mlp = nn.Sequential(nn.Linear(c.patch_len * c.d_byte, c.d_hidden), nn.GELU(),
                                 nn.Linear(c.d_hidden, c.d_hidden), nn.GELU(), nn.Linear(c.d_hidden, c.d_code))

    def forward(self, x):
        """x (B, L) symbols -> z (B, D)."""
        h = self.emb(x) + self.pos     # (B, L, d_byte)
        return self.mlp(h.flatten(1))  # (B, L*d_byte) -> (B, D)


class PatchDecoder(nn.Module):
    def __init__(self, c: VQConfig):
        super().__init__()
        self.L = c.patch_len
        self.mlp = nn.Sequential(nn.Linear(c.d_code, c.d_hidden), nn.GELU(), nn.Linear(c.d_hidden, c.d_hidden),
                                 nn.GELU(), nn.Linear(c.d_hidden, c.patch_len * N_SYMBOLS))

    def forward(self, q):
        """q (B, D), unit norm -> logits (B, L, 257). Scaled by sqrt(D) so inputs are O(1) per coordinate."""
        return self.mlp(q * q.shape[1] ** 0.5).view(q.shape[0], self.L, N_SYMBOLS)  # (B, L*257) -> (B, L, 257)


class Quantizer(nn.Module):
    """Nearest-codebook-vector quantization with EMA updates and dead-code restarts."""

    def __init__(self, c: VQConfig):
        super().__init__()
        self.c = c
        K, D = c.codebook_size, c.d_code
        self.register_buffer("codebook", F.normalize(torch.randn(K, D), dim=-1))  # e_k, unit norm
        self.register_buffer("ema_count", torch.ones(K))          # N_k, EMA of assignments per batch
        self.register_buffer("ema_sum", self.codebook.clone())    # m_k, EMA of the sum of assigned z
        self.register_buffer("initialised", torch.tensor(False))

    def nearest(self, z):
        """z (B, D), unit norm -> code ids (B,): the largest cosine similarity."""
        return (z @ self.codebook.T).argmax(1)  # (B, K) -> (B,)

    def forward(self, z):
        """z (B, D), unit norm (a cosine codebook, as in ViT-VQGAN, keeps codes in use)
        -> (q (B, D) with straight-through gradient, ids (B,), commitment loss)."""
        if self.training and not bool(self.initialised):
            self._reset(torch.arange(self.c.codebook_size), z.detach())
            self.initialised.fill_(True)
        ids = self.nearest(z.detach())
        e = self.codebook[ids]                                     # (B, D)
        if self.training:
            self._ema_update(z.detach(), ids)
        commit = F.mse_loss(z, e)
        return z + (e - z).detach(), ids, commit

    @torch.no_grad()
    def _ema_update(self, z, ids):
        K, g = self.c.codebook_size, self.c.ema_decay
        counts = torch.bincount(ids, minlength=K).float()
        sums = torch.zeros_like(self.ema_sum).index_add_(0, ids, z)
        self.ema_count.mul_(g).add_(counts, alpha=1 - g)
        self.ema_sum.mul_(g).add_(sums, alpha=1 - g)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + K * 1e-5) * n  # Laplace smoothing keeps counts > 0
        self.codebook.copy_(F.normalize(self.ema_sum / smoothed[:, None], dim=-1))

    @torch.no_grad()
    def _reset(self, which, z):
        pick = torch.randint(0, z.shape[0], (len(which),))
        self.codebook[which] = z[pick]
        self.ema_sum[which] = z[pick]
        self.ema_count[which] = 1.0

    @torch.no_grad()
    def restart_dead(self, z) -> int:
        """Move codes nobody uses onto encoder outputs of the batch; returns how many moved."""
        dead = (self.ema_count < self.c.dead_usage).nonzero().flatten()
        if len(dead):
            self._reset(dead, z.detach())
        return len(dead)


# -- the model -------------------------------------------------------------------------------
class VQVAE(nn.Module):
    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        self.encoder, self.quantizer, self.decoder = PatchEncoder(config), Quantizer(config), PatchDecoder(config)

    def forward(self, x):
        """x (B, L) symbols -> (logits (B, L, 257), ids (B,), commitment loss, unit-norm z (B, D))."""
        z = F.normalize(self.encoder(x), dim=-1)
        q, ids, commit = self.quantizer(z)
        return self.decoder(q), ids, commit, z

    def compute_loss(self, x, quantize: bool = True):
        """Reconstruction cross-entropy + beta * commitment; `quantize=False` bypasses the codebook (warm-up)."""
        if quantize:
            logits, ids, commit, z = self(x)
        else:
            z = F.normalize(self.encoder(x), dim=-1)
            logits, commit = self.decoder(z), torch.zeros(())
            ids = self.quantizer.nearest(z.detach())
        recon = F.cross_entropy(logits.reshape(-1, N_SYMBOLS), x.reshape(-1))
        loss = recon + self.config.beta * commit
        with torch.no_grad():
            hit = logits.argmax(-1) == x                                    # (B, L)
            probs = torch.bincount(ids, minlength=self.config.codebook_size).float() / len(ids)
            ppl = math.exp(-(probs[probs > 0] * probs[probs > 0].log()).sum().item())
        parts = {"recon": recon.item(), "commit": commit.item(), "patch_acc": hit.all(1).float().mean().item(),
                 "symbol_acc": hit.float().mean().item(), "perplexity": ppl, "codes_in_batch": int((probs > 0).sum())}
        return loss, parts, z

    @torch.no_grad()
    def encode_patches(self, x):
        """x (B, L) -> code ids (B,)."""
        return self.quantizer.nearest(F.normalize(self.encoder(x), dim=-1))

    @torch.no_grad()
    def decode_codes(self, ids):
        """ids (B,) -> symbols (B, L)."""
        return self.decoder(self.quantizer.codebook[ids]).argmax(-1)


# -- the tokenizer ---------------------------------------------------------------------------
class VQTokenizer(Tokenizer):
    kind = "vq"

    def __init__(self, model: VQVAE, history: list | None = None, lossless: bool = True):
        self.model = model.eval()
        self.history = history or []
        self.lossless = lossless
        self.context = None   # a ContextDecoder (vq_context.py) that lossy decoding reads codes with
        c = model.config
        self.K, self.L = c.codebook_size, c.patch_len
        with torch.no_grad():
            codes = torch.arange(self.K)
            strings = [from_symbols(r) for r in model.decode_codes(codes).tolist()]
            # a code reconstructs exactly iff the encoder maps its decoded string back to it
            known = [i for i, s in enumerate(strings) if s]
            back = model.encode_patches(to_tensor([strings[i] for i in known], self.L)).tolist() if known else []
        self._surface = strings + [bytes([b]) for b in range(256)]  # id -> bytes
        self.exact = {strings[i]: i for i, j in zip(known, back) if i == j}  # patch -> code
        self._cache = PieceCache()                                           # patch -> ids (per mode)

    def lossy(self) -> "VQTokenizer":
        """The same model in lossy mode: one code per patch, no escapes."""
        other = VQTokenizer.__new__(VQTokenizer)
        other.__dict__.update(self.__dict__, lossless=False, _cache=PieceCache())
        return other

    def contextual(self, context) -> "VQTokenizer":
        """Lossy mode decoded by `context` (vq_context.ContextDecoder): each code read with its neighbours."""
        other = self.lossy()
        other.context = context
        return other

    @property
    def vocab_size(self) -> int:
        return self.K + 256

    @property
    def spec(self) -> str:
        return f"vq:{self.K}"

    def is_escape(self, i: int) -> bool:
        return i >= self.K

    def encode(self, data: str | bytes) -> list[int]:
        def encode_new(patches):
            if self.lossless:
                return [self._greedy(p) for p in patches]
            return [[c] for c in self.model.encode_patches(to_tensor(patches, self.L)).tolist()]

        return self._cache.encode(patches_of(as_bytes(data), self.L), encode_new)

    def _greedy(self, patch: bytes) -> list[int]:
        """Longest exactly-reconstructed prefix first; a raw-byte escape where none covers a byte."""
        ids, i, exact = [], 0, self.exact
        while i < len(patch):
            for j in range(len(patch), i, -1):
                code = exact.get(patch[i:j])
                if code is not None:
                    ids.append(code)
                    i = j
                    break
            else:
                ids.append(self.K + patch[i])
                i += 1
        return ids

    def decode(self, ids) -> bytes:
        if self.context is not None:
            return self.context.decode(ids)
        surface, n = self._surface, len(self._surface)
        out = []
        for i in ids:
            if not 0 <= i < n:
                raise NeuroError(f"token id {i} is outside the vocabulary (0..{n - 1})")
            out.append(surface[i])
        return b"".join(out)

    # -- training ----------------------------------------------------------------------------
    @classmethod
    def train(cls, text: bytes, size: int | None = None, train: dict | VQTrainConfig | None = None,
              callback=None, **model_overrides) -> "VQTokenizer":
        """Train a VQ-VAE with `size` codes on the patches of `text`; `callback(record)` sees each log record."""
        if size is None:
            raise NeuroError("the VQ tokenizer needs a codebook size, e.g. vq:4096")
        if not text:
            raise NeuroError("cannot train a tokenizer on an empty corpus")
        tc = train if isinstance(train, VQTrainConfig) else VQTrainConfig(**(train or {}))
        model = VQVAE(VQConfig(codebook_size=size, **model_overrides))
        x_all, weights = training_patches(as_bytes(text), model.config.patch_len, tc)
        history = fit_vq(model, x_all, weights, tc, callback)
        return cls(model, history)

    # -- persistence -------------------------------------------------------------------------
    def _meta(self) -> dict:
        return {"config": dataclasses.asdict(self.model.config), "exact_codes": len(self.exact)}

    def _save_files(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(path / WEIGHTS_FILE))
        (path / HISTORY_FILE).write_text("".join(json.dumps(r) + "\n" for r in self.history))

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(dataclasses.asdict(self.model.config), sort_keys=True).encode())
        for k, v in sorted(self.model.state_dict().items()):
            h.update(k.encode())
            h.update(v.float().numpy().tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def load(cls, path) -> "VQTokenizer":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        meta = cls.read_meta(path)
        path = Path(path)
        try:
            model = VQVAE(VQConfig(**meta["config"]))
        except (KeyError, TypeError):
            raise NeuroError(f"{path} has a VQ tokenizer meta file without a valid model config") from None
        try:
            state = load_file(str(path / WEIGHTS_FILE))
            model.load_state_dict(state)
        except (SafetensorError, OSError, RuntimeError) as e:
            raise NeuroError(f"{path / WEIGHTS_FILE} does not hold this VQ tokenizer's weights ({type(e).__name__})") from None
        hist = path / HISTORY_FILE
        history = [json.loads(x) for x in hist.read_text().splitlines() if x.strip()] if hist.exists() else []
        return cls(model, history)


def training_patches(text: bytes, patch_len: int, tc: VQTrainConfig):
    """Distinct training patches (M, L) and their sampling weights (M,): whole patches and
    their proper suffixes (where lossless mode restarts after a prefix), weighted count^power."""
    counts = Counter(patches_of(text, patch_len))
    mixed: Counter = Counter()
    for p, n in counts.items():
        mixed[p] += n * (1 - tc.suffix_share) if len(p) > 1 else n
        for i in range(1, len(p)):
            mixed[p[i:]] += n * tc.suffix_share / (len(p) - 1)
    patches = sorted(mixed)
    weights = torch.tensor([mixed[p] for p in patches], dtype=torch.float64) ** tc.count_power
    return to_tensor(patches, patch_len), weights


def fit_vq(model: VQVAE, x_all, weights, tc: VQTrainConfig, callback=None) -> list[dict]:
    """The training loop: AdamW + warmup/cosine, EMA codebook, dead-code restarts, log records."""
    g = torch.Generator().manual_seed(tc.seed)
    torch.manual_seed(tc.seed)
    opt = make_adamw(model, tc.lr, weight_decay=0.0)
    model.train()
    history, t0, restarted = [], time.time(), 0
    with Progress(tc.steps, desc="vq", unit="step") as bar:
        for step in range(1, tc.steps + 1):
            lr = tc.lr * warmup_cosine(step / tc.steps, step - 1, tc.warmup_steps, 0.1)
            for group in opt.param_groups:
                group["lr"] = lr
            x = x_all[torch.multinomial(weights, tc.batch_size, replacement=True, generator=g)]  # (B, L)
            quantize = step > tc.ae_warmup * tc.steps
            loss, parts, z = model.compute_loss(x, quantize)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if quantize and step % tc.restart_every == 0 and step < tc.steps * 0.9:  # settle at the end
                restarted += model.quantizer.restart_dead(z)
            bar.update(1, loss=loss.item())
            if step % tc.log_every == 0 or step == tc.steps:
                rec = {"step": step, "elapsed_s": round(time.time() - t0, 3), "loss": loss.item(), "lr": lr,
                       "restarted": restarted, **parts}
                history.append(rec)
                if callback:
                    callback(rec)
    model.eval()
    return history
