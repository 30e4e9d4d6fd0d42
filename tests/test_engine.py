"""The decoding engine: rollback for every arch, ragged batches, sampling knobs, processor hook, streaming."""
from __future__ import annotations

import pytest
import torch

from neuro_lib.infer.engine import Cursor, Engine, Sampling, cut_at_stop, generate
from neuro_lib.infer.sampling import repetition_penalty
from neuro_lib.models import build_model
from neuro_lib.tokenizers.byte import ByteTokenizer

TINY = {
    "gpt": dict(vocab_size=256, d_model=32, n_layer=2, n_head=4, d_ff=64, block_size=64, dropout=0.0),
    "aeron": dict(vocab_size=256, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=0, n_decoder_layer=2,
                  d_ff=48, block_size=64, dropout=0.0, mode="decoder"),
    "mamba": dict(vocab_size=256, d_model=32, n_layer=2, d_state=4, expand=2, block_size=64),
    "rnk": dict(d_model=32, n_layer=1, d_state=4, expand=1, chunk_len=8, d_plan=16, hrm_steps=1, d_dec=32),
}


def tiny(arch: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(arch, **TINY[arch]).eval()


@pytest.mark.parametrize("arch", sorted(TINY))
def test_rollback_then_redecode_equals_decoding_from_scratch(arch):
    model = tiny(arch)
    x = torch.randint(0, 256, (1, 20))
    with torch.no_grad():
        ref, _ = model.step(x[:, :16], model.init_state(1))
        state = model.init_state(1)
        model.step(x[:, :8], state)
        state.checkpoint()
        model.step(torch.cat([x[:, 8:10], torch.randint(0, 256, (1, 5))], 1), state)  # a branch off at 10
        reached = state.rollback(10)[0]
        assert 8 <= reached <= 10 and state.lengths == [reached]
        logits, _ = model.step(x[:, reached:16], state)
    torch.testing.assert_close(logits[0, -1], ref[0, -1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_cursor_follows_any_sequence(arch):
    model, tok = tiny(arch), ByteTokenizer()
    cur, seq = Cursor(Engine(model, tok)), list(b"rollback and replay")
    cur.logits_after(seq + list(b" branch one"), len(seq))
    got = cur.logits_after(seq + list(b" other"), len(seq) - 1)
    with torch.no_grad():
        ref, _ = model.step(torch.tensor([seq + list(b" other")]), model.init_state(1))
    torch.testing.assert_close(got, ref[0, len(seq) - 1:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch,cache", [("gpt", "contiguous"), ("gpt", "paged"), ("aeron", "contiguous"),
                                        ("aeron", "paged"), ("mamba", None), ("rnk", None)])
def test_ragged_batch_equals_one_prompt_at_a_time(arch, cache):
    model, tok = tiny(arch), ByteTokenizer()
    prompts = ["ab", "a longer prompt", "mid size"]
    params = Sampling(max_new_tokens=12, temperature=0)
    batch = Engine(model, tok, cache).generate(prompts, params)
    alone = [Engine(model, tok).generate(p, params) for p in prompts]
    assert batch == alone and all(len(t) == 12 for t in batch)


def test_sampling_is_seeded_and_past_the_context_window():
    model, tok = tiny("gpt"), ByteTokenizer()
    params = Sampling(max_new_tokens=80, temperature=0.9, top_k=50, top_p=0.9, seed=5)  # 80 > block_size 64
    a, b = Engine(model, tok).generate(["x", "yz"], params), Engine(model, tok).generate(["x", "yz"], params)
    assert a == b and [len(t) for t in a] == [80, 80]
    assert generate(model, tok, "x", 80, 0.9, 50, 0.9, seed=6) != a[0]


def test_repetition_penalty_follows_ctrl():
    out = repetition_penalty(torch.tensor([2.0, -2.0, 1.0]), [0, 1, 0], 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0]
    model, tok = tiny("gpt"), ByteTokenizer()
    strong = generate(model, tok, "ab", 40, temperature=0, repetition_penalty=1e6)
    assert len(set(strong)) == len(strong)  # every token is new: repeating costs a factor of 10^6


def test_stop_sequences_cut_the_text():
    model, tok = tiny("gpt"), ByteTokenizer()
    full = generate(model, tok, "q", 30, temperature=0)
    stop = full[5:7]
    assert generate(model, tok, "q", 30, temperature=0, stop=[stop]) == full[:full.find(stop)]


class CountingBytes(ByteTokenizer):
    """A byte tokenizer that counts how many ids its decode is handed (the stop check's cost)."""

    def __init__(self):
        super().__init__()
        self.decoded_ids = 0

    def decode(self, ids):
        ids = list(ids)
        self.decoded_ids += len(ids)
        return super().decode(ids)


@pytest.mark.parametrize("arch", ["gpt", "mamba"])
def test_stop_check_gives_the_same_text_as_cutting_the_whole_row(arch):
    """The incremental stop check cuts where the old one did: before the first occurrence in the full text,
    for stops of one byte, of several bytes, overlapping each other, spanning token boundaries, or absent."""
    model, tok = tiny(arch), ByteTokenizer()
    prompts = ["q", "hello", "x"]
    full = Engine(model, tok).generate(prompts, Sampling(max_new_tokens=40, temperature=0))
    for stops in ([full[0][3:4]], [full[0][5:9]], [full[1][2:6], full[1][4:5]], [full[2][10:13], b"\xff\xfe"],
                  [b"never-there"]):
        got = Engine(model, tok).generate(prompts, Sampling(max_new_tokens=40, temperature=0, stop=tuple(stops)))
        assert got == [cut_at_stop(t, tuple(stops))[0] for t in full]


def test_stop_check_decodes_each_token_once_not_the_whole_row():
    """Behavioural, not timed: over n generated tokens the stop check decodes n ids (linear), where decoding
    the whole row at every token decoded n (n + 1) / 2."""
    model, tok = tiny("gpt"), CountingBytes()
    n = 60
    engine = Engine(model, tok)
    ids = [t.id for t in engine.stream("q", Sampling(max_new_tokens=n, temperature=0, stop=(b"never-there",)))]
    assert len(ids) == n
    assert tok.decoded_ids <= n + len("q")  # the prompt is not decoded; at most the new ids, each once


class OnlyVowels:
    """A processor that allows 'a', 'e', 'o' and forces "{\"" whenever the text so far is empty."""

    def __call__(self, ids, logits):
        mask = torch.full_like(logits, float("-inf"))
        mask[list(b"aeo")] = 0
        return logits + mask

    def forced(self, ids):
        return list(b'{"') if not ids else []


def test_logits_processor_and_forced_tokens():
    model, tok = tiny("gpt"), ByteTokenizer()
    eng = Engine(model, tok)
    toks = list(eng.stream("x", Sampling(max_new_tokens=10, temperature=1.0, seed=0), OnlyVowels()))
    text = bytes(t.id for t in toks)
    assert text[:2] == b'{"' and set(text[2:]) <= set(b"aeo") and len(text) == 10
    assert [t.forced for t in toks[:3]] == [True, True, False]
    # prefill 1 call + the two forced tokens in ONE step + one step per sampled token but the last
    assert eng.calls == 1 + 1 + 7


def test_stream_yields_what_generate_returns():
    model, tok = tiny("mamba"), ByteTokenizer()
    params = Sampling(max_new_tokens=15, temperature=0.7, seed=2)
    toks = list(Engine(model, tok).stream(["a", "bcd"], params))
    rows = [bytes(t.id for t in toks if t.row == r) for r in (0, 1)]
    assert rows == Engine(model, tok).generate(["a", "bcd"], params)
    assert all(t.logprob <= 0 for t in toks)
