"""Key/value caches for incremental attention decoding, part of a model's decoding state.

A cache is handed to every attention layer in `step()`; the layer calls
`cache.update(layer, k, v)` with the new keys/values of shape (B, H_kv, t, D) and gets
back all keys/values so far (B, H_kv, pos + t, D). `cache.pos` is the number of
positions already stored; `advance(t)` is called once per step after all layers.
Only KV heads are stored, so grouped-query attention caches n_kv_head/n_head as much.

`KVCache` is contiguous. `PagedKVCache` is fixed-size blocks from a shared pool plus a block
table (the memory layout of paged attention, Kwon et al. 2023, "vLLM"), with the same
interface, so any model's `step()` can use either cache and must give the same logits.

Layout: per layer, a pool of `num_blocks` blocks of shape (H_kv, block_size, D) for K and
for V; `block_table[b, i]` is the pool index holding positions i*block_size ..
(i+1)*block_size - 1 of sequence b (-1 = not allocated). Blocks are taken from a free
list only when a sequence reaches them, so memory in use grows with the tokens actually
decoded instead of a preallocated `max_len`; `free()` returns them to the pool.

On CPU there is no fused paged-attention kernel: `update` gathers a sequence's blocks
into one contiguous tensor for `scaled_dot_product_attention` (a copy per layer and
step, which `neuro bench decode` measures against the contiguous cache).

Tests: tests/test_paged_cache.py, tests/test_gpt.py, tests/test_aeron.py.
"""
from __future__ import annotations

import math

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



class PagedKVCache:
    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, head_dim: int, max_len: int,
                 block_size: int = 16, num_blocks: int | None = None, dtype=torch.float32, device="cpu"):
        """`max_len` bounds one sequence; the pool defaults to enough blocks for every
        sequence to reach it (`num_blocks` smaller shares a pool that can run out)."""
        if block_size <= 0 or max_len <= 0:
            raise ValueError(f"block_size and max_len must be positive, got {block_size} and {max_len}")
        self.block_size, self.max_len = block_size, max_len
        self.blocks_per_seq = math.ceil(max_len / block_size)
        self.num_blocks = num_blocks if num_blocks is not None else batch_size * self.blocks_per_seq
        shape = (self.num_blocks, n_kv_head, block_size, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.block_table = torch.full((batch_size, self.blocks_per_seq), -1, dtype=torch.long, device=device)
        self.free_blocks = list(range(self.num_blocks - 1, -1, -1))  # a stack; pop() gives 0, 1, 2, ...
        self.n_allocated = 0  # blocks held by each sequence
        self.pos = 0

    def _allocate(self, n_positions: int) -> None:
        """Give every sequence blocks for positions 0..n_positions-1."""
        need = math.ceil(n_positions / self.block_size)
        if need <= self.n_allocated:  # sequences advance in lockstep: one count covers all
            return
        for i in range(self.n_allocated, need):
            for b in range(self.block_table.shape[0]):
                if not self.free_blocks:
                    raise ValueError(f"paged KV cache pool of {self.num_blocks} blocks is exhausted")
                self.block_table[b, i] = self.free_blocks.pop()
        self.n_allocated = need

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        t = k.shape[2]
        end = self.pos + t
        if end > self.max_len:
            raise ValueError(f"paged KV cache holds {self.max_len} positions; cannot add {t} at position {self.pos}")
        self._allocate(end)
        positions = torch.arange(self.pos, end, device=k.device)
        blocks = self.block_table[:, positions // self.block_size]  # (B, t) pool indices
        offsets = positions % self.block_size                         # (t,)
        # advanced indices on dims 0 and 2 come first in the result: (B, t, H_kv, D)
        self.k[layer][blocks, :, offsets] = k.transpose(1, 2)
        self.v[layer][blocks, :, offsets] = v.transpose(1, 2)
        return self._gather(self.k[layer], end), self._gather(self.v[layer], end)

    def _gather(self, pool: torch.Tensor, n: int) -> torch.Tensor:
        """Positions 0..n-1 of every sequence as one (B, H_kv, n, D) tensor."""
        nb = math.ceil(n / self.block_size)
        blocks = pool[self.block_table[:, :nb]]  # (B, nb, H_kv, block, D)
        B, _, H, S, D = blocks.shape
        return blocks.permute(0, 2, 1, 3, 4).reshape(B, H, nb * S, D)[:, :, :n]

    def advance(self, t: int) -> None:
        self.pos += t

    def free(self) -> None:
        """Return every sequence's blocks to the pool and restart at position 0."""
        used = self.block_table[self.block_table >= 0].tolist()
        self.free_blocks.extend(sorted(used, reverse=True))
        self.block_table.fill_(-1)
        self.n_allocated = self.pos = 0

    def nbytes(self) -> int:
        """Bytes of the whole pool (allocated up front, shared by all sequences)."""
        return sum(x.numel() * x.element_size() for x in self.k + self.v)

    def used_bytes(self) -> int:
        """Bytes of the blocks sequences hold now: what a shared pool spends on this batch."""
        return self.nbytes() * int((self.block_table >= 0).sum()) // self.num_blocks
