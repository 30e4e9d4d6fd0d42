"""Issue 26's variable-chain task for the reasoning engine: the held-out split and the question fed to the decoder
(data/aeron_tasks.chain_batch(split=, ask=)); the bench's accuracy reads the last decoder position."""
from __future__ import annotations

import random

import pytest
import torch

from neuro_lib.bench.aeron_modules.common import correct
from neuro_lib.data import aeron_tasks as T


def _rows(b: dict):
    """Each row's real source tokens (padding stripped) and its answer."""
    for src, mask, tgt in zip(b["src"].tolist(), b["src_mask"].tolist(), b["targets"][:, -1].tolist()):
        yield [t for t, m in zip(src, mask) if m], tgt


def _resolve(src: list[int], name: int) -> tuple[int, int]:
    """Follow the bindings from `name` to a digit by hand -> (digit, lookups)."""
    binding = {src[i]: src[i + 2] for i in range(0, len(src) - 2, 3)}
    hops = 0
    while name >= T.NAME0:
        name, hops = binding[name], hops + 1
    return name, hops


def _key(src: list[int]) -> tuple:
    """The problem's content: its statements as a set and the question."""
    return frozenset(tuple(src[i:i + 3]) for i in range(0, len(src) - 2, 3)), tuple(src[-2:])


@pytest.mark.parametrize("ask", ["src", "decoder"])
def test_chain_batch_is_a_pure_function_of_its_rng(ask):
    a = T.chain_batch(random.Random(5), 32, 4, split="train", ask=ask)
    b = T.chain_batch(random.Random(5), 32, 4, split="train", ask=ask)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    c = T.chain_batch(random.Random(6), 32, 4, split="train", ask=ask)
    assert not torch.equal(a["src"], c["src"])


@pytest.mark.parametrize("split, chains, names", [("train", 2, "narrow"), ("test", 2, "narrow"), ("train", 4, "narrow"),
                                                 ("test", 3, "wide")])
def test_depth_labels_and_answers_follow_the_bindings(split, chains, names):
    b = T.chain_batch(random.Random(0), 200, 4, split=split, ask="decoder", chains=chains, names=names)
    pool = set(T.CHAIN_NAMES[names])
    assert all(t in pool for s, _ in _rows(b) for t in s[0:-2:3])            # every statement's left side is a name
    assert set(b["depth"].tolist()) == {1, 2, 3, 4}
    for (src, ans), depth in zip(_rows(b), b["depth"].tolist()):
        assert len(src) == chains * depth * 3 + 2 and src[-2] == T.ASK
        digit, hops = _resolve(src, src[-1])
        assert digit == ans and hops == depth
        # the distractors: every other chain's end is as deep and ends in another digit
        heads = {src[i] for i in range(0, len(src) - 2, 3)}
        ends = heads - {src[i + 2] for i in range(0, len(src) - 2, 3)} - {src[-1]}
        others = [_resolve(src, e) for e in ends]
        assert len(others) == chains - 1 and all(h == depth for _, h in others)
        assert len({digit, *(d for d, _ in others)}) == chains
    with pytest.raises(ValueError, match="chains"):
        T.chain_batch(random.Random(0), 2, 4, chains=5)                     # 5 chains of depth 4 need 20 names
    with pytest.raises(ValueError, match="names"):
        T.chain_batch(random.Random(0), 2, 4, names="huge")


def test_wide_names_keep_the_narrow_stream_and_reach_beyond_the_name_symbols():
    # the default ("narrow") draws exactly what the first record drew; "wide" also uses the entity symbols
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert T.chain_problem(rng_a, 3) == T.chain_problem(rng_b, 3, 2, "narrow")
    wide = T.chain_batch(random.Random(8), 300, 1, names="wide")
    assert wide["src"].max() >= T.ENT0 and wide["src"].max() < T.VOCAB


def test_question_in_the_decoder_and_the_answer_at_the_last_position():
    b = T.chain_batch(random.Random(1), 16, 3, ask="decoder")
    assert b["tokens"].shape == (16, 3) and b["targets"].shape == (16, 3)
    assert (b["tokens"][:, 0] == T.BOS).all() and (b["tokens"][:, 1] == T.ASK).all()
    last = b["src_mask"].sum(1) - 1                                           # the name asked for, last real token
    assert torch.equal(b["tokens"][:, 2], b["src"][torch.arange(16), last])
    assert b["loss_mask"].tolist() == [[False, False, True]] * 16
    plain = T.chain_batch(random.Random(1), 16, 3, ask="src")                # same problems, [BOS] only
    assert torch.equal(plain["src"], b["src"]) and plain["tokens"].shape == (16, 1) and "loss_mask" not in plain
    assert torch.equal(plain["targets"][:, 0], b["targets"][:, -1])
    # the bench scores the last position: a logit peak on the answer there is correct, elsewhere it is not
    logits = torch.zeros(16, 3, T.VOCAB)
    logits[torch.arange(16), 2, b["targets"][:, -1]] = 1.0
    assert correct(logits, b).all() and not correct(logits[:, :2], b).any()
    with pytest.raises(ValueError, match="ask"):
        T.chain_batch(random.Random(1), 2, 2, ask="both")
    with pytest.raises(ValueError, match="split"):
        T.chain_batch(random.Random(1), 2, 2, split="val")


def test_held_out_split_is_disjoint_from_training_and_order_free():
    train = {_key(s) for s, _ in _rows(T.chain_batch(random.Random(2), 3000, 2, split="train"))}
    test = {_key(s) for s, _ in _rows(T.chain_batch(random.Random(3), 3000, 2, split="test"))}
    assert len(test) > 1000 and train.isdisjoint(test)
    # about one problem in HELD_OUT is held out, and reordering the statements keeps a problem in its split
    rng = random.Random(4)
    drawn = [T.chain_problem(rng, rng.randint(1, 4))[0] for _ in range(4000)]
    share = sum(T.chain_split(s) == "test" for s in drawn) / len(drawn)
    assert abs(share - 1 / T.HELD_OUT) < 0.03
    for src in drawn[:200]:
        stmts = [src[i:i + 3] for i in range(0, len(src) - 2, 3)]
        rng.shuffle(stmts)
        assert T.chain_split([t for st in stmts for t in st] + src[-2:]) == T.chain_split(src)
