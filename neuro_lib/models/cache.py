"""Key/value caches for incremental attention decoding: contiguous and paged, both ragged.

A cache is part of a model's decoding state (GPT's and Aeron's `init_state(batch, cache=...)`).
Every attention layer calls `cache.update(layer, k, v)` with the new keys/values (B, H_kv, t, D)
and gets back all keys/values so far (B, H_kv, S, D), S = the longest row's length + t;
`cache.pos` is where the new tokens start: an int when every row has the same length, a (B,)
LongTensor when the batch is ragged (the layers then build per-row positions and masks; keys
past a short row's end are padding that its causal mask hides). `advance(t)` is called once
per step after all layers.

Both caches keep per-row lengths, so sequences of different lengths decode together, and both
roll back: `rollback(n)` truncates every row (or row b to n[b]) to n positions, which is how
speculative decoding drops rejected draft tokens and MCTS returns to a node. `row(b)` is a
one-row view whose writes land in the parent (the engine prefills ragged prompts row by row).

- `KVCache`: one preallocated (B, H_kv, max_len, D) tensor per layer for K and for V.
- `PagedKVCache`: the memory layout of paged attention (Kwon et al. 2023, "vLLM"). A `BlockPool`
  holds per layer a (num_blocks, H_kv, block_size, D) tensor that grows on demand (by what a step
  needs, at least a quarter);
  each sequence owns a list of block ids and a length. Blocks are reference-counted: `fork(n)`
  gives n new sequences that share a prompt's blocks (best-of-N holds one prompt), and the first
  write into a shared block copies it (copy on write). Freed and rolled-back blocks go back to
  the pool's free list and are reused before the pool grows. On CPU there is no fused
  paged-attention kernel: `update` gathers a row's blocks into one tensor for SDPA.

`nbytes()` is the tensor storage actually held (the pool's size for the paged cache, whatever
is in use). Tests: tests/test_paged_cache.py.
"""
from __future__ import annotations

import math

import torch

CACHE_KINDS = ("contiguous", "paged")


def _pos(lengths: list[int], device):
    """An int when every row is at the same position, else a (B,) LongTensor."""
    if len(set(lengths)) == 1:
        return lengths[0]
    return torch.tensor(lengths, device=device)


class KVCache:
    """Contiguous cache: one preallocated (B, H_kv, max_len, D) tensor per layer for K and V."""
    ragged = True  # rows of different lengths decode together

    def __init__(self, n_layer: int, batch_size: int, n_kv_head: int, head_dim: int, max_len: int,
                 dtype=torch.float32, device="cpu"):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len = max_len
        self.len_t = torch.zeros(batch_size, dtype=torch.long)  # on the CPU; a row view shares it

    @property
    def lengths(self) -> list[int]:
        return self.len_t.tolist()

    @property
    def pos(self):
        return _pos(self.lengths, self.k[0].device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        t, lengths = k.shape[2], self.lengths
        end = max(lengths) + t
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; cannot add {t} at position {max(lengths)}")
        if len(set(lengths)) == 1:
            self.k[layer][:, :, lengths[0]: end] = k
            self.v[layer][:, :, lengths[0]: end] = v
        else:
            rows = torch.arange(k.shape[0], device=k.device)[:, None]                            # (B, 1)
            cols = self.len_t.to(k.device)[:, None] + torch.arange(t, device=k.device)         # (B, t)
            # advanced indices on dims 0 and 2 come first in the result: (B, t, H_kv, D)
            self.k[layer][rows, :, cols] = k.transpose(1, 2)
            self.v[layer][rows, :, cols] = v.transpose(1, 2)
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, t: int) -> None:
        self.len_t += t

    def checkpoint(self) -> None:
        """Nothing to save: a KV cache can truncate to any earlier position."""

    def rollback(self, n) -> list[int]:
        """Truncate to n positions (an int for every row, or one per row); -> the lengths reached."""
        n = torch.as_tensor(n, dtype=torch.long).expand_as(self.len_t)
        if bool((n > self.len_t).any()) or bool((n < 0).any()):
            raise ValueError(f"cannot roll back to {n.tolist()}: rows hold {self.lengths} positions")
        self.len_t.copy_(n)
        return self.lengths

    def row(self, b: int) -> "KVCache":
        """Row b as a batch of one sharing this cache's storage and lengths."""
        view = KVCache.__new__(KVCache)
        view.k, view.v = [x[b:b + 1] for x in self.k], [x[b:b + 1] for x in self.v]
        view.max_len, view.len_t = self.max_len, self.len_t[b:b + 1]
        return view

    def fork(self, n: int) -> "KVCache":
        """n copies of this one-row cache (a contiguous cache cannot share: each row holds max_len);
        as with the paged cache, the n rows replace this one."""
        if self.len_t.numel() != 1:
            raise ValueError(f"fork needs a one-row cache, this one has {self.len_t.numel()} rows")
        out = KVCache.__new__(KVCache)
        out.k = [x.repeat(n, 1, 1, 1) for x in self.k]
        out.v = [x.repeat(n, 1, 1, 1) for x in self.v]
        out.max_len, out.len_t = self.max_len, self.len_t.repeat(n)
        return out

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.k + self.v)



def empty_cache(n_layer: int, batch_size: int, n_head: int, head_dim: int, max_len: int, like: torch.Tensor,
                cache: str = "contiguous", block_size: int = 16) -> "KVCache | PagedKVCache":
    """An empty KV cache for a model whose parameters look like `like` (dtype, device): contiguous (max_len
    positions per row, preallocated) or paged (blocks of `block_size` tokens taken as rows grow)."""
    if cache not in CACHE_KINDS:
        raise ValueError(f"cache must be one of {CACHE_KINDS}, got {cache!r}")
    args = (n_layer, batch_size, n_head, head_dim, max_len)
    if cache == "paged":
        return PagedKVCache.empty(*args, block_size=block_size, dtype=like.dtype, device=like.device)
    return KVCache(*args, like.dtype, like.device)

class BlockPool:
    """Per-layer K and V block tensors (num_blocks, H_kv, block_size, D), a free list and refcounts."""

    def __init__(self, n_layer: int, n_kv_head: int, head_dim: int, block_size: int = 16, dtype=torch.float32,
                 device="cpu"):
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.block_size = block_size
        shape = (0, n_kv_head, block_size, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.refs: list[int] = []       # references per block; 0 = free
        self.free: list[int] = []       # a stack of free block ids

    @property
    def num_blocks(self) -> int:
        return len(self.refs)

    def reserve(self, k: int) -> None:
        """Make at least k blocks free, growing the pool by what is missing or a quarter, whichever is more
        (a quarter keeps the copies of a growing pool amortised without doubling its size)."""
        missing = k - len(self.free)
        if missing <= 0:
            return
        n = max(missing, self.num_blocks // 4)
        for store in (self.k, self.v):
            for i, x in enumerate(store):
                store[i] = torch.cat([x, x.new_zeros((n, *x.shape[1:]))])
        self.free.extend(range(self.num_blocks + n - 1, self.num_blocks - 1, -1))
        self.refs.extend([0] * n)

    def allocate(self) -> int:
        self.reserve(1)
        b = self.free.pop()
        self.refs[b] = 1
        return b

    def release(self, b: int) -> None:
        self.refs[b] -= 1
        if self.refs[b] == 0:
            self.free.append(b)

    def copy(self, b: int) -> int:
        """A private copy of block b (copy on write); drops one reference to b."""
        new = self.allocate()
        for store in (self.k, self.v):
            for x in store:
                x[new] = x[b]
        self.release(b)
        return new

    def blocks_in_use(self) -> int:
        return sum(r > 0 for r in self.refs)

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.k + self.v)


class Sequence:
    """One row of a paged cache: its block ids and its length."""

    def __init__(self, blocks: list[int] | None = None, length: int = 0):
        self.blocks, self.length = blocks or [], length


class PagedKVCache:
    """Rows of `Sequence`s over a shared `BlockPool`; `max_len` bounds one sequence."""
    ragged = True

    def __init__(self, pool: BlockPool, seqs: list[Sequence], max_len: int):
        self.pool, self.seqs, self.max_len = pool, seqs, max_len

    @classmethod
    def empty(cls, n_layer: int, batch_size: int, n_kv_head: int, head_dim: int, max_len: int,
              block_size: int = 16, dtype=torch.float32, device="cpu") -> "PagedKVCache":
        pool = BlockPool(n_layer, n_kv_head, head_dim, block_size, dtype, device)
        return cls(pool, [Sequence() for _ in range(batch_size)], max_len)

    @property
    def lengths(self) -> list[int]:
        return [s.length for s in self.seqs]

    @property
    def pos(self):
        return _pos(self.lengths, self.pool.k[0].device)

    def _prepare(self, t: int) -> None:
        """Give every row private blocks for its next t positions (allocate, copy shared ones)."""
        bs = self.pool.block_size
        self.pool.reserve(sum((s.length + t - 1) // bs + 1 - len(s.blocks) for s in self.seqs)  # new blocks
                          + sum(self.pool.refs[b] > 1 for s in self.seqs for b in s.blocks[s.length // bs:]))  # copies
        for s in self.seqs:
            first, last = s.length // bs, (s.length + t - 1) // bs
            for i in range(first, last + 1):
                if i == len(s.blocks):
                    s.blocks.append(self.pool.allocate())
                elif self.pool.refs[s.blocks[i]] > 1:
                    s.blocks[i] = self.pool.copy(s.blocks[i])

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        t, lengths, bs = k.shape[2], self.lengths, self.pool.block_size
        end = max(lengths) + t
        if end > self.max_len:
            raise ValueError(f"paged KV cache holds {self.max_len} positions; cannot add {t} at position "
                             f"{max(lengths)}")
        if layer == 0:  # layers run in order: the first one makes room for this step in every layer
            self._prepare(t)
        device = k.device
        positions = torch.tensor(lengths, device=device)[:, None] + torch.arange(t, device=device)  # (B, t)
        nb = math.ceil(end / bs)
        table = torch.tensor([s.blocks + [0] * (nb - len(s.blocks)) for s in self.seqs], device=device)  # (B, nb)
        blocks = table.gather(1, positions // bs)                                 # (B, t) pool ids
        # advanced indices on dims 0 and 2 come first in the result: (B, t, H_kv, D)
        self.pool.k[layer][blocks, :, positions % bs] = k.transpose(1, 2)
        self.pool.v[layer][blocks, :, positions % bs] = v.transpose(1, 2)
        return self._gather(self.pool.k[layer], table, end), self._gather(self.pool.v[layer], table, end)

    @staticmethod
    def _gather(pool: torch.Tensor, table: torch.Tensor, n: int) -> torch.Tensor:
        """Positions 0..n-1 of every row as one (B, H_kv, n, D) tensor (padding past a row's end)."""
        blocks = pool[table]  # (B, nb, H_kv, block, D)
        B, nb, H, S, D = blocks.shape
        return blocks.permute(0, 2, 1, 3, 4).reshape(B, H, nb * S, D)[:, :, :n]

    def advance(self, t: int) -> None:
        for s in self.seqs:
            s.length += t

    def checkpoint(self) -> None:
        """Nothing to save: a KV cache can truncate to any earlier position."""

    def rollback(self, n) -> list[int]:
        """Truncate every row (or row b to n[b]) to n positions; blocks past the end go back to the pool."""
        ns = [n] * len(self.seqs) if isinstance(n, int) else list(n)
        if any(m > s.length or m < 0 for m, s in zip(ns, self.seqs)):
            raise ValueError(f"cannot roll back to {ns}: rows hold {self.lengths} positions")
        for m, s in zip(ns, self.seqs):
            keep = math.ceil(m / self.pool.block_size)
            for b in s.blocks[keep:]:
                self.pool.release(b)
            s.blocks, s.length = s.blocks[:keep], m
        return self.lengths

    def row(self, b: int) -> "PagedKVCache":
        return PagedKVCache(self.pool, [self.seqs[b]], self.max_len)

    def fork(self, n: int) -> "PagedKVCache":
        """n rows that continue this one-row cache, sharing its blocks until they write into them.
        The rows take over this cache's references: it is left empty."""
        if len(self.seqs) != 1:
            raise ValueError(f"fork needs a one-row cache, this one has {len(self.seqs)} rows")
        src = self.seqs[0]
        for b in src.blocks:
            self.pool.refs[b] += n - 1
        rows = [Sequence(list(src.blocks), src.length) for _ in range(n)]
        src.blocks, src.length = [], 0
        return PagedKVCache(self.pool, rows, self.max_len)

    def free(self) -> None:
        """Return every row's blocks to the pool; the rows restart at position 0."""
        self.rollback(0)

    def nbytes(self) -> int:
        """Bytes of the pool's storage (what this cache and the caches sharing its pool hold)."""
        return self.pool.nbytes()
