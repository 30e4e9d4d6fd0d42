"""Recursive expansion and the equal-call comparison with best-of-N (runtime/expansion.py), the adding
model's data layout (runtime/sum_solver.py, data/arith.py). A fake solver stands in for the model."""
import pytest
import torch

from neuro_lib.data.arith import parse_sum_answer, sum_answer, sum_examples, sum_problems, sum_prompt
from neuro_lib.errors import NeuroError
from neuro_lib.runtime.expansion import (Expander, compare_at_equal_calls, probe_families, select_logprob,
                                         select_vote, split)
from neuro_lib.runtime.sum_solver import Answer, SumSolver, sum_batch, train_sum_solver
from neuro_lib.profiles import get_profile


class FakeSolver:
    """Adds exactly up to `reach` operands, and is off by one beyond; records every direct call."""

    def __init__(self, reach=2):
        self.reach, self.calls = reach, []

    def direct(self, ops):
        self.calls.append(tuple(ops))
        return Answer(sum(ops) + (len(ops) > self.reach), 1, 4)

    def sample(self, ops, n, seed):
        # n samples: the first right (and the most likely), the others wrong
        vals = [sum(ops) + (i != 0) for i in range(n)]
        return [(v, -0.1 * i) for i, v in enumerate(vals)], 4 * n


def test_sum_format_round_trips():
    assert sum_prompt((12, 34, 56)) == "012+034+056="
    assert sum_answer(102) == "2010" and parse_sum_answer(sum_answer(102) + "\n") == 102
    assert parse_sum_answer(b"20x0\n") is None and parse_sum_answer("") is None
    for prompt, answer in sum_examples(200, seed=3):
        ops = [int(x) for x in prompt.rstrip("=").split("+")]
        assert parse_sum_answer(answer) == sum(ops)
    assert all(len(p) == 4 for p in sum_problems(5, k=4))


def test_sum_batch_masks_only_the_answer():
    b = sum_batch([("012+034=", sum_answer(46))], length=24)
    assert b["tokens"].shape == b["targets"].shape == b["loss_mask"].shape == (1, 24)
    targets = bytes(b["targets"][0][b["loss_mask"][0] > 0].tolist())
    assert targets == b"6400\n"  # the answer's digits (least significant first) and the newline, nothing else
    with pytest.raises(ValueError):
        sum_batch([("012+034+056+078+090+011=", "0000")], length=24)


def test_split_and_recursive_combine_with_fake_solver():
    assert split((1, 2, 3)) == ((1,), (2, 3)) and split((1, 2, 3, 4, 5)) == ((1, 2), (3, 4, 5))
    with pytest.raises(NeuroError):
        split((1, 2))
    fake = FakeSolver(reach=2)
    failure = probe_families(fake, {k: sum_problems(5, k, seed=2) for k in (2, 3, 4, 5)})
    assert failure == {2: 0.0, 3: 1.0, 4: 1.0, 5: 1.0}
    ex = Expander(fake, failure, threshold=0.3)
    assert [ex.expanded(k) for k in (2, 3, 4, 5)] == [False, True, True, True]
    fake.calls.clear()
    ans = ex.solve((11, 22, 33, 44, 55))
    assert ans.value == 165 and ans.calls == 4 and ans.steps == 16  # k - 1 pairwise calls
    # (11,22) -> 33; (33,) stays; (44,55) -> 99; (33,99) -> 132 ... combined in this order
    assert fake.calls == [(11, 22), (44, 55), (33, 99), (33, 132)]
    # a family under the threshold is answered directly (and wrongly here): one call
    lazy = Expander(fake, {3: 0.2}, threshold=0.3)
    assert lazy.solve((1, 2, 3)) == Answer(7, 1, 4)


def test_selection_rules_do_not_peek():
    assert select_vote([(5, -3.0), (7, -0.1), (5, -2.0)]) == 5
    assert select_vote([(5, -3.0), (7, -0.1)]) == 7            # a tie goes to the higher log-prob
    assert select_vote([(None, 0.0), (4, -9.0)]) == 4 and select_vote([(None, 0.0)]) is None
    assert select_logprob([(5, -3.0), (7, -0.1), (5, -2.0)]) == 7


def test_equal_call_accounting():
    fake = FakeSolver(reach=2)
    problems = {k: sum_problems(6, k, seed=4) for k in (2, 3, 5)}
    ex = Expander(fake, {2: 0.0, 3: 1.0, 5: 1.0}, threshold=0.3)
    rows = {r["size"]: r for r in compare_at_equal_calls(fake, ex, problems, seed=0)}
    for k in (2, 3, 5):
        r = rows[k]
        assert r["calls_bon"] == r["calls_expansion"] == k - 1  # best-of-N gets exactly expansion's calls
        assert r["calls_direct"] == 1
        assert r["expansion"] == 1.0
    assert rows[2]["direct"] == rows[2]["bon_vote"] == 1.0          # N = 1: the greedy answer
    assert rows[5]["direct"] == 0.0 and rows[5]["bon_vote"] == 0.0  # the vote follows the majority (wrong)
    assert rows[5]["bon_logprob"] == 1.0                           # first sample (right) has the top log-prob
    assert rows[5]["steps_bon"] == 4 * 4


def test_trained_solver_runs_end_to_end():
    torch.set_num_threads(1)
    solver = train_sum_solver(get_profile("smoke").tasks.expansion, steps=3)
    assert isinstance(solver, SumSolver)
    a = solver.direct((12, 34))
    assert a.calls == 1 and a.steps >= 1 and (a.value is None or a.value >= 0)
    samples, steps = solver.sample((12, 34, 56), n=3, seed=0)
    assert len(samples) == 3 and steps >= 3
    again, _ = solver.sample((12, 34, 56), n=3, seed=0)
    assert again == samples  # seeded sampling reproduces
