"""Aeron backbone and the shared layers it adds (layers.py): parity with reference
attention, rotary relative-position property, cached/paged decoding == forward in both
modes, tied weights, meta-device parameter counts, config validation."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from neuro_lib.errors import NeuroError
from neuro_lib.models import ARCHS, build_model
from neuro_lib.models.aeron import Aeron, AeronConfig, preset
from neuro_lib.models.aeron.budget import (component_counts, kv_bytes_per_token, meta_model, param_budget,
                                          with_kv_heads)
from neuro_lib.models.layers import CausalSelfAttention, CrossAttention, RMSNorm, RotaryEmbedding, SwiGLU
from neuro_lib.profiles import PROFILES


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine more threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(vocab_size=61, d_model=32, n_head=4, n_kv_head=2, n_decoder_layer=2, d_ff=64, block_size=64,
            rope_theta=10_000.0)


def tiny(mode="decoder", **kw) -> Aeron:
    torch.manual_seed(0)
    cfg = dict(TINY, mode=mode, n_encoder_layer=2 if mode == "encoder-decoder" else 0, **kw)
    return Aeron(AeronConfig(**cfg)).eval()


def naive_attention(q, k, v, mask):
    """Softmax attention written out, KV heads repeated to the query heads."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


def test_mha_case_equals_torch_multihead_attention():
    torch.manual_seed(0)
    d, h, T = 32, 4, 9
    ours = CausalSelfAttention(d, h, n_kv_head=h, bias=True).eval()
    ref = nn.MultiheadAttention(d, h, bias=True, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.kv_proj.weight]))  # rows: q, k, v
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.kv_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(2, T, d)
    blocked = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may not attend
    expected, _ = ref(x, x, x, attn_mask=blocked, need_weights=False)
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_kv", [1, 2, 4])
def test_gqa_equals_naive_attention(n_kv):
    torch.manual_seed(1)
    d, h, T = 32, 4, 7
    attn = CausalSelfAttention(d, h, n_kv_head=n_kv, bias=False).eval()
    x = torch.randn(2, T, d)
    q = attn.q_proj(x).view(2, T, h, 8).transpose(1, 2)
    k, v = attn.kv_proj(x).view(2, T, 2, n_kv, 8).permute(2, 0, 3, 1, 4)
    y = naive_attention(q, k, v, torch.ones(T, T, dtype=torch.bool).tril())
    expected = attn.out_proj(y.transpose(1, 2).reshape(2, T, d))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_cross_attention_padding_mask_equals_naive():
    torch.manual_seed(2)
    ca = CrossAttention(32, 4, 2, bias=False).eval()
    x, mem = torch.randn(2, 5, 32), torch.randn(2, 6, 32)
    key_mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    k, v = ca.project_kv(mem)
    q = ca.q_proj(x).view(2, 5, 4, 8).transpose(1, 2)
    y = naive_attention(q, k, v, key_mask[:, None, None, :])
    torch.testing.assert_close(ca(x, (k, v), key_mask), ca.out_proj(y.transpose(1, 2).reshape(2, 5, 32)),
                               atol=1e-5, rtol=1e-5)


def test_rotary_scores_depend_only_on_relative_offset():
    torch.manual_seed(3)
    rope = RotaryEmbedding(16, theta=500_000.0)
    q0, k0 = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        q, _ = rope(q0, q0, m)
        _, k = rope(k0, k0, n)
        return (q * k).sum().item()

    for m, n in [(0, 0), (5, 2), (2, 5), (40, 3)]:
        for shift in (1, 17, 1000):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), rel=1e-4, abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 3), rel=1e-3)  # and they do depend on the offset
    q, k = rope(q0, k0, 0)  # position 0 is the identity
    torch.testing.assert_close(q, q0)
    torch.testing.assert_close(k, k0)


def test_rmsnorm_matches_torch():
    x = torch.randn(3, 5, 16)
    ours, ref = RMSNorm(16, eps=1e-6), nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ref.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), ref(x))


def _decode_in_pieces(model, x, state, pieces):
    outs, i = [], 0
    for n in pieces:
        logits, state = model.step(x[:, i: i + n], state)
        outs.append(logits)
        i += n
    return torch.cat(outs, 1)


@pytest.mark.parametrize("cache", ["contiguous", "paged"])
@pytest.mark.parametrize("mode", ["decoder", "encoder-decoder"])
def test_incremental_decoding_equals_forward(mode, cache):
    model = tiny(mode)
    torch.manual_seed(4)
    x = torch.randint(0, 61, (2, 20))
    src = torch.randint(0, 61, (2, 11)) if mode == "encoder-decoder" else None
    with torch.no_grad():
        full = model(x, src)
        state = model.init_state(2, src=src, cache=cache, block_size=4)
        stepped = _decode_in_pieces(model, x, state, [6, 1, 1, 5, 1, 3, 1, 1, 1])
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)
    assert state.pos == 20


def test_paged_and_contiguous_give_identical_logits():
    model = tiny("decoder")
    x = torch.randint(0, 61, (3, 30))
    with torch.no_grad():
        a = _decode_in_pieces(model, x, model.init_state(3), [7] + [1] * 23)
        b = _decode_in_pieces(model, x, model.init_state(3, cache="paged", block_size=5), [7] + [1] * 23)
    assert torch.equal(a, b)


def test_cached_decoding_only_stores_kv_heads():
    model = tiny("decoder")
    state = model.init_state(1)
    assert state.cache.k[0].shape == (1, 2, 64, 8)  # (B, H_kv, block_size, D), not 4 heads


def test_encoder_decoder_source_padding_is_ignored():
    model = tiny("encoder-decoder")
    x, src = torch.randint(0, 61, (1, 8)), torch.randint(0, 61, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        torch.testing.assert_close(model(x, padded, mask), model(x, src), atol=1e-5, rtol=1e-5)
        state = model.init_state(1, src=padded, src_mask=mask)
        torch.testing.assert_close(_decode_in_pieces(model, x, state, [3, 5]), model(x, src), atol=1e-5, rtol=1e-5)


def test_encoder_decoder_requires_source_and_decoder_rejects_one():
    with pytest.raises(ValueError, match="needs a source"):
        tiny("encoder-decoder")(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="decoder-only"):
        tiny("decoder")(torch.zeros(1, 3, dtype=torch.long), src=torch.zeros(1, 3, dtype=torch.long))


def test_encoder_decoder_reads_the_source():
    """The target (the source's token, repeated) cannot be guessed without cross-attention:
    a few training steps take the loss far below the unconditional floor ln 60."""
    torch.manual_seed(5)
    model = tiny("encoder-decoder").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        src = torch.randint(1, 61, (16, 1)).expand(16, 6)  # (B, S): one random token per row
        tokens = torch.zeros(16, 4, dtype=torch.long)         # (B, T): BOS tokens
        loss, _ = model.compute_loss({"tokens": tokens, "targets": src[:, :4], "src": src})
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * torch.log(torch.tensor(60.0)).item()  # far below guessing (ln 60 = 4.1 nats)


def test_tied_embeddings_share_storage_and_survive_a_checkpoint(tmp_path):
    from neuro_lib.tokenizers import ByteTokenizer
    from neuro_lib.checkpoint import load_checkpoint, save_checkpoint

    model = build_model("aeron", **dict(TINY, vocab_size=256))
    assert model.lm_head.weight is model.tok_emb.weight
    assert model.lm_head.weight.data_ptr() == model.tok_emb.weight.data_ptr()
    untied = build_model("aeron", **dict(TINY, vocab_size=256, tie_weights=False))
    assert untied.num_params() - model.num_params() == 256 * 32
    save_checkpoint(tmp_path / "ck", model, ByteTokenizer())
    loaded, _, _ = load_checkpoint(tmp_path / "ck")
    assert loaded.lm_head.weight.data_ptr() == loaded.tok_emb.weight.data_ptr()
    x = torch.randint(0, 256, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x))


def test_seed_names_are_aliases_of_the_shared_fields():
    """The seed's NeuralNetConfig names build the same config as this library's names; dim_feedforward is
    the pre-SwiGLU width, so d_ff is 2/3 of it; one field named twice is an error."""
    seed = AeronConfig.from_seed_names(d_model=512, nhead=8, num_kv_heads=2, num_encoder_layers=6,
                                       num_decoder_layers=6, dim_feedforward=2048, max_position_embeddings=2048,
                                       tie_word_embeddings=False, mode="encoder-decoder")
    assert seed == AeronConfig(d_model=512, n_head=8, n_kv_head=2, n_encoder_layer=6, n_decoder_layer=6, d_ff=1365,
                               block_size=2048, tie_weights=False, mode="encoder-decoder")
    assert preset("aeron-small") == seed.__class__(**{**seed.__dict__, "tie_weights": True})
    assert AeronConfig.from_seed_names(dim_feedforward=96, ffn_hidden=50).d_ff == 50  # the saved width wins
    with pytest.raises(ValueError, match="'nhead' and 'n_head' name the same field"):
        AeronConfig.from_seed_names(nhead=8, n_head=8)
    with pytest.raises(NeuroError, match="nhead is now n_head"):
        build_model("aeron", **dict(TINY, nhead=4))


def test_checkpoint_saved_under_the_seed_names_still_loads(tmp_path):
    """A checkpoint written before the shared vocabulary (config.json with nhead, num_kv_heads, ..., the
    derived ffn_hidden beside dim_feedforward) loads into the same model."""
    import json

    from neuro_lib.tokenizers import ByteTokenizer
    from neuro_lib.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_model("aeron", **dict(TINY, vocab_size=256)).eval()
    folder = save_checkpoint(tmp_path / "ck", model, ByteTokenizer())  # the ckpt-* folder, loadable by itself
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    m = cfg["model"]
    old = {"nhead": m.pop("n_head"), "num_kv_heads": m.pop("n_kv_head"), "num_encoder_layers": m.pop("n_encoder_layer"),
           "num_decoder_layers": m.pop("n_decoder_layer"), "ffn_hidden": m.pop("d_ff"), "dim_feedforward": 96,
           "max_position_embeddings": m.pop("block_size"), "tie_word_embeddings": m.pop("tie_weights")}
    cfg["model"] = {**m, **old}
    path.write_text(json.dumps(cfg))
    loaded, _, saved = load_checkpoint(folder)
    assert loaded.config == model.config and saved["model"] == dataclasses.asdict(model.config)
    x = torch.randint(0, 256, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_meta_parameter_count_equals_real_count():
    cfg = preset("aeron-small")
    model = Aeron(cfg)
    real = component_counts(model)
    assert param_budget(cfg) == real
    assert next(meta_model(cfg).parameters()).device.type == "meta"
    parts = [v for k, v in real.items() if k not in ("encoder stack", "decoder stack", "total")]
    assert sum(parts) == real["total"] == model.num_params()


def test_seed_default_budget_arithmetic():
    """Exact counts for the seed's default (encoder-decoder, 32+32 layers, d=2048, 32/8 heads, SwiGLU 5461)."""
    b = param_budget(preset("aeron-3.85b"))
    d, kv, ff = 2048, 8 * 64, 5461
    attn = 2 * d * d + 2 * d * kv
    assert b["token embeddings"] == 50_000 * d
    assert b["encoder stack"] == 32 * (attn + 3 * d * ff + 2 * d) + d
    assert b["decoder stack"] == 32 * (2 * attn + 3 * d * ff + 3 * d) + d
    assert b["total"] == b["token embeddings"] + b["encoder stack"] + b["decoder stack"]


def test_gqa_kv_cache_is_a_quarter_of_mha():
    cfg = preset("aeron-3.85b")
    gqa, mha = kv_bytes_per_token(cfg, tokens=16), kv_bytes_per_token(with_kv_heads(cfg, 32), tokens=16)
    assert gqa == 2 * 32 * 8 * 64 * 2  # K and V, 32 layers, 8 heads, 64 dims, bf16
    assert mha / gqa == 4


@pytest.mark.parametrize("bad, message", [
    (dict(n_head=4, n_kv_head=3), "divisible by n_kv_head"),
    (dict(d_model=30, n_head=4), "divisible by n_head"),
    (dict(d_model=36, n_head=4, n_kv_head=4), "must be even"),
    (dict(n_encoder_layer=2), "decoder mode has no encoder"),
    (dict(mode="encoder-decoder"), "needs n_encoder_layer"),
    (dict(mode="seq2seq"), "mode must be one of"),
    (dict(vocab_size=0), "vocab_size must be positive"),
    (dict(dropout=1.0), "dropout"),
])
def test_invalid_configs_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        AeronConfig(**dict(TINY, **bad))
    with pytest.raises(NeuroError, match=message):
        build_model("aeron", **dict(TINY, **bad))


def test_too_long_sequences_are_rejected():
    model = tiny("decoder")
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="cache must be one of"):
        model.init_state(1, cache="ring")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_profile_size_builds_and_decodes(arch):
    """Every arch's smoke size builds, and its cached decoding equals its forward pass (GPT included); the
    bench and full sizes are valid configs of the same arch (built on the meta device: shapes only)."""
    torch.manual_seed(6)
    model = build_model(arch, **PROFILES["smoke"].model(arch)).eval()
    for name in ("bench", "full"):
        with torch.device("meta"):
            big = build_model(arch, **PROFILES[name].model(arch))
        assert type(big) is type(model) and big.num_params() > model.num_params()
    x = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        full = model(x)
        stepped = _decode_in_pieces(model, x, model.init_state(2), [4] + [1] * 8)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)


def test_swiglu_equals_its_formula():
    """SwiGLU(x) = W_down (silu(W_gate x) * W_up x), written out with the weight matrices."""
    torch.manual_seed(8)
    ffn = SwiGLU(6, 10)
    x = torch.randn(2, 3, 6)
    gate, up, down = ffn.gate.weight, ffn.up.weight, ffn.down.weight        # (10, 6), (10, 6), (6, 10)
    g = x @ gate.T
    expected = (g * torch.sigmoid(g) * (x @ up.T)) @ down.T
    torch.testing.assert_close(ffn(x), expected)
    assert ffn.gate.bias is None and ffn.up.bias is None and ffn.down.bias is None


def test_decode_bench_rows_cover_every_method_and_agree():
    from neuro_lib.bench.decode import decode_table

    rows = decode_table(tiny("decoder"), [5, 20], new_tokens=4, block_size=4)
    speed = [r for r in rows if r["unit"] == "tokens/s"]
    assert {(r["method"], r["context"]) for r in speed} == {(m, c) for m in ("no-cache", "contiguous", "paged")
                                                            for c in (5, 20)}
    assert all(r["value"] > 0 for r in speed)
    assert [r["value"] for r in rows if r["unit"] == "bool"] == [1, 1]  # same greedy tokens every way
    with pytest.raises(NeuroError, match="must fit"):
        decode_table(tiny("decoder"), [62], new_tokens=4)


def test_module_tree_collapses_repeats_and_marks_tied_weights():
    from neuro_lib.viz.module_graph import module_tree, plot_module_tree

    g = module_tree(meta_model(preset("aeron-3.85b")), max_depth=2)
    assert g.nodes["decoder.0"]["repeat"] == 32 and "decoder.1" not in g
    assert g.nodes["lm_head"]["shared"] and not g.nodes["tok_emb"]["shared"]
    assert g.nodes[""]["params"] == param_budget(preset("aeron-3.85b"))["total"]
    assert len(plot_module_tree(g).data) == 2
