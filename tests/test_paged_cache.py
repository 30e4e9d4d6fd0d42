"""The paged KV cache: same logits as the contiguous cache on ragged batches, a pool that grows with the
blocks in use and reuses freed ones, prefixes shared until written (copy on write)."""
from __future__ import annotations

import pytest
import torch

from neuro_lib.infer.engine import Engine
from neuro_lib.models.cache import KVCache, PagedKVCache
from neuro_lib.tokenizers.byte import ByteTokenizer

from test_engine import tiny


@pytest.mark.parametrize("block_size", [1, 3, 16])
def test_paged_update_returns_what_the_contiguous_cache_returns_on_ragged_rows(block_size):
    torch.manual_seed(0)
    args = (2, 3, 2, 5, 24)  # layers, batch, kv heads, head dim, max_len
    flat, paged = KVCache(*args), PagedKVCache.empty(*args, block_size=block_size)
    for t in [4, 1, 7]:
        for layer in range(2):
            k, v = torch.randn(3, 2, t, 5), torch.randn(3, 2, t, 5)
            ends = [n + t for n in flat.lengths]
            (k1, v1), (k2, v2) = flat.update(layer, k, v), paged.update(layer, k, v)
            for b, e in enumerate(ends):  # a row's real positions agree; past its end is padding
                assert torch.equal(k1[b, :, :e], k2[b, :, :e]) and torch.equal(v1[b, :, :e], v2[b, :, :e])
        flat.advance(t)
        paged.advance(t)
        if t == 4:  # make the rows ragged
            flat.rollback([4, 3, 1])
            paged.rollback([4, 3, 1])
    assert paged.lengths == flat.lengths == [12, 11, 9]
    for b, n in enumerate(flat.lengths):  # every row's real positions agree (past a row's end is padding)
        k = torch.randn(1, 2, 1, 5)
        assert torch.equal(flat.row(b).update(0, k, k)[0][:, :, :n + 1], paged.row(b).update(0, k, k)[0][:, :, :n + 1])


@pytest.mark.parametrize("arch", ["gpt", "aeron"])
def test_identical_logits_to_the_contiguous_cache_on_a_ragged_batch(arch):
    model, tok = tiny(arch), ByteTokenizer()
    prompts = [list(b"a"), list(b"a longer prompt here"), list(b"middle")]
    out = {}
    for cache in ("contiguous", "paged"):
        eng = Engine(model, tok, cache)
        state, logits = eng.prefill([list(p) for p in prompts])
        steps = [logits]
        for i in range(5):
            steps.append(eng.step([[97 + i]] * 3, state)[:, -1])
        out[cache] = torch.stack(steps)
    torch.testing.assert_close(out["paged"], out["contiguous"], rtol=1e-5, atol=1e-5)
    alone = Engine(model, tok).prefill([prompts[1]])[1]
    torch.testing.assert_close(out["paged"][0, 1], alone[0], rtol=1e-5, atol=1e-5)


def test_memory_grows_with_blocks_in_use_and_freed_blocks_are_reused():
    cache = PagedKVCache.empty(1, 2, 1, 4, max_len=64, block_size=8)
    assert cache.nbytes() == 0
    sizes = []
    for _ in range(4):
        kv = torch.randn(2, 1, 8, 4)
        cache.update(0, kv, kv)
        cache.advance(8)
        sizes.append(cache.nbytes())
        assert cache.pool.blocks_in_use() == 2 * cache.lengths[0] // 8
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert sizes[-1] == cache.pool.num_blocks * 2 * 8 * 4 * 4  # K and V, 8 positions x 4 dims x fp32
    held = sorted(b for s in cache.seqs for b in s.blocks)
    cache.rollback([8, 32])
    assert cache.pool.blocks_in_use() == 1 + 4
    cache.free()
    assert cache.pool.blocks_in_use() == 0 and cache.nbytes() == sizes[-1]  # blocks go back to the pool
    again = PagedKVCache(cache.pool, [type(cache.seqs[0])()], 64)
    kv = torch.randn(1, 1, 40, 4)
    again.update(0, kv, kv)
    assert cache.nbytes() == sizes[-1] and set(again.seqs[0].blocks) <= set(held)  # reused, no growth


def test_shared_prefix_is_not_copied_until_written():
    prompt = PagedKVCache.empty(1, 1, 1, 4, max_len=64, block_size=8)
    kv = torch.randn(1, 1, 20, 4)
    prompt.update(0, kv, kv)
    prompt.advance(20)                     # blocks: 8 + 8 + 4 (the last one partial)
    rows = prompt.fork(4)                  # the rows take over the prompt's blocks
    assert prompt.lengths == [0] and prompt.pool.blocks_in_use() == 3
    assert all(s.blocks == rows.seqs[0].blocks for s in rows.seqs)
    before = rows.nbytes()
    new = torch.randn(4, 1, 1, 4)
    k_all, _ = rows.update(0, new, new)     # every row writes position 20 into the shared partial block
    rows.advance(1)
    assert prompt.pool.blocks_in_use() == 3 + 3  # three rows copied it, the last writer owns the original
    assert len({s.blocks[0] for s in rows.seqs}) == 1 and len({s.blocks[2] for s in rows.seqs}) == 4
    for b in range(4):                      # each row sees the shared prompt and its own new position
        assert torch.equal(k_all[b, :, :20], kv[0]) and torch.equal(k_all[b, :, 20], new[b, :, 0])
    assert rows.nbytes() >= before


def test_overflow_and_bad_rollback_are_clear_errors():
    cache = PagedKVCache.empty(1, 1, 1, 4, max_len=10, block_size=4)
    with pytest.raises(ValueError, match="holds 10 positions"):
        cache.update(0, torch.randn(1, 1, 11, 4), torch.randn(1, 1, 11, 4))
    with pytest.raises(ValueError, match="roll back"):
        cache.rollback(3)
    with pytest.raises(ValueError, match="roll back"):
        KVCache(1, 1, 1, 4, 10).rollback(2)
