"""PagedKVCache: same contents as the contiguous KVCache, block allocation, exhaustion, free."""
from __future__ import annotations

import pytest
import torch

from neuro_lib.models.cache import KVCache, PagedKVCache


@pytest.mark.parametrize("block_size", [1, 3, 4, 16])
def test_paged_update_returns_what_the_contiguous_cache_returns(block_size):
    torch.manual_seed(0)
    args = (2, 3, 2, 5, 20)  # layers, batch, kv heads, head dim, max_len
    flat, paged = KVCache(*args), PagedKVCache(*args, block_size=block_size)
    for t in [4, 1, 1, 7, 1, 6]:
        for layer in range(2):
            k, v = torch.randn(3, 2, t, 5), torch.randn(3, 2, t, 5)
            (k1, v1), (k2, v2) = flat.update(layer, k, v), paged.update(layer, k, v)
            assert torch.equal(k1, k2) and torch.equal(v1, v2)
        flat.advance(t)
        paged.advance(t)
    assert paged.pos == flat.pos == 20


def test_blocks_are_allocated_on_demand_and_freed():
    cache = PagedKVCache(1, 2, 1, 4, max_len=32, block_size=8)
    assert cache.used_bytes() == 0
    cache.update(0, torch.randn(2, 1, 9, 4), torch.randn(2, 1, 9, 4))
    cache.advance(9)
    assert (cache.block_table >= 0).sum() == 4  # 2 sequences x ceil(9/8) blocks
    assert cache.used_bytes() == cache.nbytes() * 4 // cache.num_blocks
    assert len(set(cache.block_table[cache.block_table >= 0].tolist())) == 4  # no block shared
    cache.free()
    assert cache.pos == 0 and cache.used_bytes() == 0 and len(cache.free_blocks) == cache.num_blocks


def test_pool_exhaustion_and_overflow_are_clear_errors():
    small = PagedKVCache(1, 2, 1, 4, max_len=32, block_size=8, num_blocks=3)
    with pytest.raises(ValueError, match="exhausted"):
        small.update(0, torch.randn(2, 1, 9, 4), torch.randn(2, 1, 9, 4))
    cache = PagedKVCache(1, 1, 1, 4, max_len=10, block_size=4)
    with pytest.raises(ValueError, match="holds 10 positions"):
        cache.update(0, torch.randn(1, 1, 11, 4), torch.randn(1, 1, 11, 4))
