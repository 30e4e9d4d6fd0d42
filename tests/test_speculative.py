"""Speculative decoding: greedy output identical to the target's, the sampled distribution is the target's."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from neuro_lib.infer.drafters import ModelDrafter, NGramDrafter
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.infer.sampling import next_token_probs
from neuro_lib.infer.speculative import expected_speedup, speculative_generate, verify
from neuro_lib.tokenizers.byte import ByteTokenizer
from test_engine import tiny

TOK = ByteTokenizer()
GREEDY = Sampling(max_new_tokens=30, temperature=0)


class ScriptDrafter:
    """Proposes the reference continuation, right for the first `right` tokens of a round, then wrong."""

    def __init__(self, reference: list[int], start: int, right: int):
        self.reference, self.start, self.right = reference, start, right

    def propose(self, context, gamma, params=None, generator=None):
        i = len(context) - self.start
        ref = self.reference[i: i + gamma]
        return [t if j < self.right else (t + 1) % 256 for j, t in enumerate(ref)], None


@pytest.mark.parametrize("right,case", [(99, "full acceptance + bonus"), (2, "partial"), (0, "first rejected")])
def test_greedy_is_the_targets_greedy_in_every_acceptance_case(right, case):
    target = tiny("gpt")
    ref = Engine(target, TOK).generate("spec", GREEDY)
    start = len(b"spec")
    out, stats = speculative_generate(Engine(target, TOK), ScriptDrafter(list(ref), start, right), "spec", GREEDY,
                                      gamma=4)
    assert out == ref, case
    full = [n for n, g in zip(stats.accepted_per_round, stats.gammas) if g and n == g]
    if right == 99:
        assert stats.alpha == 1.0 and full and stats.rounds <= -(-30 // 5) + 1  # gamma + bonus per round
    elif right == 2:
        assert stats.accepted_per_round == [min(2, g) for g in stats.gammas] and 4 in stats.gammas
    else:
        assert stats.accepted == 0 and stats.rounds == 30  # one (corrected) token per round


def test_adaptive_gamma_grows_on_full_acceptance_and_shrinks_on_early_rejection():
    target = tiny("gpt")
    ref = list(Engine(target, TOK).generate("spec", GREEDY))
    _, full = speculative_generate(Engine(target, TOK), ScriptDrafter(ref, 4, 99), "spec", GREEDY, gamma=2,
                                   adaptive=True, gamma_max=5)
    assert full.gammas[:4] == [2, 3, 4, 5] and max(full.gammas) == 5
    _, bad = speculative_generate(Engine(target, TOK), ScriptDrafter(ref, 4, 0), "spec", GREEDY, gamma=4,
                                  adaptive=True)
    assert bad.gammas[:5] == [4, 3, 2, 1, 1]


@pytest.mark.parametrize("target_arch,draft_arch", [("gpt", "mamba"), ("mamba", "aeron"), ("aeron", "gpt"),
                                                    ("rnk", "gpt")])
def test_any_arch_drafts_for_any_arch(target_arch, draft_arch):
    target, draft = tiny(target_arch), tiny(draft_arch, seed=1)
    params = Sampling(max_new_tokens=12, temperature=0)
    ref = Engine(target, TOK).generate("a b a b a b ", params)
    for drafter in (ModelDrafter(Engine(draft, TOK)), NGramDrafter()):
        out, stats = speculative_generate(Engine(target, TOK), drafter, "a b a b a b ", params, gamma=3,
                                          adaptive=True)
        assert out == ref and stats.proposed > 0


def test_ngram_drafter_copies_what_followed_the_last_match():
    d = NGramDrafter(max_n=3)
    assert d.propose([1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3], 2)[0] == [7, 8]  # the most recent 3-gram match
    assert d.propose([5, 6, 7], 4)[0] == []


def _chi_square_p(observed: dict, expected: dict, n: int) -> float:
    """Pearson's chi-square goodness of fit; p-value from the regularised upper incomplete gamma."""
    stat = sum((observed.get(k, 0) - n * e) ** 2 / (n * e) for k, e in expected.items())
    df = len(expected) - 1
    return float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


def test_rejection_rule_preserves_p_for_one_draft():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
    q = torch.tensor([[0.1, 0.1, 0.4, 0.4]])
    counts, n = Counter(), 20000
    for _ in range(n):
        d = int(torch.multinomial(q[0], 1, generator=g))
        k, t = verify([d], q, p, g)
        counts[d if k == 1 else t] += 1
    assert _chi_square_p(counts, {i: float(p[0, i]) for i in range(3)}, n) > 1e-3
    assert counts[3] == 0


def _exact_two_token_joint(model, prompt: list[int], params: Sampling) -> dict:
    """P(x1, x2 | prompt) under the sampling distribution, enumerated over the support."""
    with torch.no_grad():
        p1 = next_token_probs(model(torch.tensor([prompt]))[0, -1], params.temperature, params.top_k)
        joint = {}
        for a in p1.nonzero().flatten().tolist():
            p2 = next_token_probs(model(torch.tensor([prompt + [a]]))[0, -1], params.temperature, params.top_k)
            for b in p2.nonzero().flatten().tolist():
                joint[(a, b)] = float(p1[a] * p2[b])
    return joint


@pytest.mark.slow
def test_sampled_tokens_follow_the_targets_distribution():
    """Chi-square over the 9 outcomes of two tokens (top-3 sampling at temperature 3): speculative
    sampling matches the target's exact joint, and the test has the power to reject the draft's."""
    target, draft = tiny("gpt"), tiny("gpt", seed=1)
    params = Sampling(max_new_tokens=3, temperature=3.0, top_k=3, seed=0)
    prompt = list(b"ab")
    p = _exact_two_token_joint(target, prompt, params)
    q = _exact_two_token_joint(draft, prompt, params)
    drafter, eng, counts, n = ModelDrafter(Engine(draft, TOK)), Engine(target, TOK), Counter(), 1000
    gen_params = [Sampling(3, 3.0, 3, seed=s) for s in range(n)]
    accepted = 0
    for sp in gen_params:
        out, stats = speculative_generate(eng, drafter, bytes(prompt), sp, gamma=2)
        counts[tuple(out[:2])] += 1
        accepted += stats.accepted
    assert accepted > 0.2 * n  # drafts were accepted, so the rule (not only the residual) is exercised
    assert _chi_square_p(counts, p, n) > 1e-3
    assert _chi_square_p(counts, {k: q.get(k, 0) or 1e-9 for k in set(p) | set(q)}, n) < 1e-3


def test_leviathan_formula():
    assert expected_speedup(0.0, 4, 0.0) == 1.0
    assert expected_speedup(1.0, 4, 0.0) == 5.0
    assert abs(expected_speedup(0.8, 4, 0.05) - (1 - 0.8 ** 5) / 0.2 / 1.2) < 1e-12


def test_bad_gamma_is_an_error():
    with pytest.raises(ValueError, match="gamma"):
        speculative_generate(Engine(tiny("gpt"), TOK), NGramDrafter(), "x", GREEDY, gamma=0)


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_stop_sequences_cut_speculative_output_like_the_engine(gamma):
    """The stop check reads only new bytes and a tail (linear in the output); the cut is the engine's."""
    target = tiny("gpt")
    free = Engine(target, TOK).generate("spec", GREEDY)
    stop = free[7:9]  # a stop sequence that occurs in the greedy continuation
    params = Sampling(max_new_tokens=30, temperature=0, stop=(stop,))
    ref = Engine(target, TOK).generate("spec", params)
    out, _ = speculative_generate(Engine(target, TOK), NGramDrafter(), "spec", params, gamma=gamma)
    assert out == ref == free[: free.find(stop)]


def test_recipe_target_with_nanogpt_draft_gives_the_targets_greedy_tokens():
    target = tiny("gpt")
    torch.manual_seed(3)
    from neuro_lib.models import build_model
    draft = build_model("nanogpt", vocab_size=256, d_model=16, n_layer=1, n_head=2, d_ff=32, block_size=64).eval()
    ref = Engine(target, TOK).generate("speculate", GREEDY)
    for gamma in (1, 2, 5):
        out, stats = speculative_generate(Engine(target, TOK), ModelDrafter(Engine(draft, TOK)), "speculate", GREEDY,
                                          gamma=gamma)
        assert out == ref and stats.proposed > 0


def test_formula_with_a_measured_verify_cost():
    assert expected_speedup(0.5, 3, 0.1, verify=1.0) == expected_speedup(0.5, 3, 0.1)
    tokens = (1 - 0.5 ** 4) / 0.5
    assert expected_speedup(0.5, 3, 0.1, verify=2.0) == pytest.approx(tokens / (0.3 + 2.0))
