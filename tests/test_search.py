"""Best-of-N (shared prompt cache, scorers) and MCTS (budget in model calls, verifier value); the arithmetic task."""
from __future__ import annotations

import pytest
import torch

from neuro_lib.data.arith import arith_corpus, arith_problems, arith_verifier
from neuro_lib.infer.best_of_n import best_of_n
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.infer.mcts import mcts
from neuro_lib.tokenizers.byte import ByteTokenizer

from test_engine import tiny

TOK = ByteTokenizer()


def test_arith_task_and_verifier():
    lines = arith_corpus(50, seed=0).decode().splitlines()
    assert all(eval(line.split("=")[0]) == int(line.split("=")[1]) for line in lines)
    (prompt, answer), = arith_problems(1, seed=3)
    v = arith_verifier(prompt)
    assert v(answer.encode() + b"\n12+1=13") == 1.0 and v(answer.encode() + b"0") == 0.0 and v(b"") == 0.0


@pytest.mark.parametrize("arch", ["gpt", "mamba"])
def test_best_of_n_mean_logprob_is_the_models_and_the_best_wins(arch):
    model = tiny(arch)
    params = Sampling(max_new_tokens=6, temperature=1.0, seed=0)
    r = best_of_n(Engine(model, TOK), "ab", 5, params)
    assert len(r.candidates) == 5 and r.best.score == max(c.score for c in r.candidates)
    c = r.candidates[2]
    with torch.no_grad():  # teacher-forced log-probabilities of the sampled tokens
        seq = torch.tensor([list(b"ab") + c.ids])
        logp = torch.log_softmax(model(seq)[0, 1:-1].float(), -1).gather(1, seq[0, 2:, None])
    assert abs(float(logp.mean()) - c.mean_logprob) < 1e-4
    assert r.calls == 1 + 5 * 5  # one prefill, then the 5 rows step together for the remaining 5 tokens


def test_best_of_n_shares_the_prompt_in_the_paged_cache():
    model = tiny("gpt")
    params = Sampling(max_new_tokens=4, temperature=1.0, seed=1)
    prompt = "a prompt of forty bytes, give or take..."
    paged = best_of_n(Engine(model, TOK, "paged"), prompt, 8, params)
    flat = best_of_n(Engine(model, TOK, "contiguous"), prompt, 8, params)
    assert [c.text for c in paged.candidates] == [c.text for c in flat.candidates]
    per_block = 2 * 2 * 16 * 32 * 4  # K+V, layers, block of 16 positions, width 32, fp32
    # 40 prompt positions = 2 shared full blocks + 8 copies of the partial third (+ the original, freed)
    assert paged.cache_bytes <= 11 * per_block < flat.cache_bytes


def test_verifier_scorer_picks_a_verified_candidate():
    model = tiny("gpt")
    params = Sampling(max_new_tokens=3, temperature=1.5, seed=2)
    first = best_of_n(Engine(model, TOK), "x", 6, params)
    target = first.candidates[3].text
    r = best_of_n(Engine(model, TOK), "x", 6, params, scorer=lambda t: float(t == target))
    assert r.best.text == target and r.best.score == 1.0


def test_mcts_finds_what_greedy_misses_within_its_budget():
    model = tiny("gpt")
    with torch.no_grad():
        logits = model(torch.tensor([list(b"q")]))[0, -1]
    wanted = {bytes([t]) for t in logits.topk(8).indices[1:].tolist()}  # top 8 but the greedy choice
    verifier = lambda text: float(text[:1] in wanted)  # noqa: E731
    params = Sampling(max_new_tokens=4, temperature=0)
    assert verifier(Engine(model, TOK).generate("q", params)) == 0.0
    eng = Engine(model, TOK)
    r = mcts(eng, "q", verifier, budget=40, params=params, branch=4, seed=0)
    assert r.best_value == 1.0 and r.best_text[:1] in wanted  # a root child the greedy rollout never visits
    assert r.calls <= 40 + params.max_new_tokens + 1 and r.simulations >= 2  # stops between simulations
    with pytest.raises(ValueError, match="budget"):
        mcts(eng, "q", verifier, budget=0, params=params)
