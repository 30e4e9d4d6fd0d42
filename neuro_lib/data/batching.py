"""Token arrays on disk and random-window batches.

A corpus split is encoded once into a flat array of ids, cached as a raw file in
`data/cache/tokens/` and memory-mapped, so batching never holds a Python list of
tokens. Batches are random windows; the window starts come from a torch Generator
seeded by (seed, step), so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from neuro_lib.atomic import write_atomic
from neuro_lib.data.corpus import CACHE_DIR


class TokenArray:
    def __init__(self, ids: np.ndarray):
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, batch_size: int, block_size: int, seed: int, step: int):
        """Random windows (x, y) of shape (B, T), y shifted by one; deterministic in (seed, step)."""
        if len(self.ids) <= block_size + 1:
            raise ValueError(f"token array of length {len(self.ids)} is shorter than one window ({block_size + 1})")
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        starts = torch.randint(0, len(self.ids) - block_size - 1, (batch_size,), generator=g).numpy()
        windows = np.stack([self.ids[s: s + block_size + 1] for s in starts]).astype(np.int64)
        w = torch.from_numpy(windows)  # (B, T+1)
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def encode_to_array(tokenizer, data: bytes, cache: bool = True) -> TokenArray:
    """Encode bytes with a tokenizer into a (cached, memory-mapped) TokenArray."""
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    key = None
    if cache:
        h = hashlib.sha256(data)
        h.update(tokenizer.spec.encode())
        h.update(getattr(tokenizer, "fingerprint", lambda: "")().encode())
        key = CACHE_DIR / "tokens" / f"{h.hexdigest()[:24]}.{np.dtype(dtype).name}"
        if key.exists():
            return TokenArray(np.memmap(key, dtype=dtype, mode="r"))
    ids = np.asarray(tokenizer.encode(data), dtype=dtype)
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(key, ids.tobytes())
        return TokenArray(np.memmap(key, dtype=dtype, mode="r"))
    return TokenArray(ids)
