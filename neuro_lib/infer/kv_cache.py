"""Key/value caches for incremental attention decoding.

A cache is handed to every attention layer in `step()`; the layer calls
`cache.update(layer, k, v)` with the new keys/values of shape (B, H_kv, t, D) and gets
back all keys/values so far (B, H_kv, pos + t, D). `cache.pos` is the number of
positions already stored; `advance(t)` is called once per step after all layers.
Only KV heads are stored, so grouped-query attention caches n_kv_head/n_head as much.
"""
from __future__ import annotations

import torch


class KVCache:
    """Contiguous cache: one preallocated (B, H_kv, max_len, D) tensor per layer for K and V."""

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, head_dim: int, max_len: int,
                 dtype=torch.float32, device="cpu"):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len = max_len
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        t = k.shape[2]
        if self.pos + t > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; cannot add {t} at position {self.pos}")
        self.k[layer][:, :, self.pos: self.pos + t] = k
        self.v[layer][:, :, self.pos: self.pos + t] = v
        return self.k[layer][:, :, : self.pos + t], self.v[layer][:, :, : self.pos + t]

    def advance(self, t: int) -> None:
        self.pos += t

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.k + self.v)
