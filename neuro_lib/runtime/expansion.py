"""Recursive expansion (seeds/tinyllm.md "when a node consistently fails, it automatically expands"),
measured against best-of-N at equal model calls.

    failure = probe_families(solver, {k: sum_problems(40, k, seed=2) for k in (2, 3, 4, 5)})  # {k: rate}
    expander = Expander(solver, failure, threshold=0.3)
    expander.expanded(4)                       # True when family 4's direct failure rate passes the threshold
    ans = expander.solve((12, 34, 56, 78))     # Answer(value, calls, steps): split, solved, combined
    compare_at_equal_calls(solver, expander, problems_by_size, seed=0)   # rows per size, see below

A task family is a problem size (sums of k operands; data/arith.py). The solver first answers a
probe set of each family directly; a family whose failure rate exceeds `threshold` is expanded: a
problem of that family is split in two halves, each half solved recursively (itself directly or
expanded again, by its own family's rate), and the two partial results combined by one more call
(a two-operand sum). A family at or under the threshold keeps its direct answer. Only the probe
set decides what expands; the test problems are never looked at.

Best-of-N at equal calls: for each test problem, N = the model calls expansion spent on it; N
answers are sampled (temperature 1) and one is chosen without looking at the reference, by
majority vote over the parsed values (ties go to the higher mean log-probability) or by the highest
mean log-probability alone. With N = 1 (a family that did not expand) best-of-1 is the greedy
answer, the same call as the direct one. A model call is one generation; the engine's
sequence-steps are reported beside it.

In the runtime graph (the `expand` node, engine.py): after the judge rejected a task's answers and its retries
are spent, `best_of_n` asks the task's expert again up to N times (sampled: Query.attempt seeds each try) until
the judge passes one, else keeps the majority value; a query that splits into ordered steps
(runtime/decompose.py) is expanded recursively instead, each step solved and judged on its own.

Tests: tests/test_runtime_expansion.py (a fake solver checks splitting, combining and call counts),
tests/test_runtime_compound.py (the expand node).
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from neuro_lib.errors import NeuroError
from neuro_lib.progress import Progress
from neuro_lib.runtime.sum_solver import Answer


def probe_families(solver, probes: dict) -> dict:
    """{family: direct failure rate on its probe problems}."""
    return {k: sum(solver.direct(p).value != sum(p) for p in ps) / len(ps) for k, ps in probes.items()}


def split(ops: tuple) -> tuple[tuple, tuple]:
    """A sum's operands in two halves (the first half the shorter when odd)."""
    if len(ops) < 3:
        raise NeuroError(f"a sum of {len(ops)} operands cannot be split further")
    h = len(ops) // 2
    return ops[:h], ops[h:]


@dataclass
class Expander:
    solver: object          # .direct(ops) -> Answer
    failure: dict           # {family (operand count): probed failure rate}
    threshold: float = 0.3

    def expanded(self, k: int) -> bool:
        return k >= 3 and self.failure.get(k, 0.0) > self.threshold

    def solve(self, ops: tuple) -> Answer:
        if len(ops) == 1:
            return Answer(ops[0], 0, 0)
        if not self.expanded(len(ops)):
            return self.solver.direct(ops)
        parts = [self.solve(half) for half in split(ops)]
        calls, steps = sum(p.calls for p in parts), sum(p.steps for p in parts)
        if any(p.value is None for p in parts):  # a sub-step wrote no number: nothing to combine
            return Answer(None, calls, steps)
        combined = self.solver.direct(tuple(p.value for p in parts))
        return Answer(combined.value, calls + combined.calls, steps + combined.steps)


def select_vote(samples: list[tuple[int | None, float]]) -> int | None:
    """Majority vote over parsed values (None never wins while a number is there); ties: higher mean log-prob."""
    votes, best_lp = defaultdict(int), defaultdict(lambda: float("-inf"))
    for v, lp in samples:
        if v is not None:
            votes[v] += 1
            best_lp[v] = max(best_lp[v], lp)
    return max(votes, key=lambda v: (votes[v], best_lp[v])) if votes else None


def select_logprob(samples: list[tuple[int | None, float]]) -> int | None:
    """The sample with the highest mean log-probability (the first of equals)."""
    return max(samples, key=lambda s: s[1])[0]


def best_of_n(ask: Callable, check: Callable, n: int, deadline: float = float("inf")) -> tuple:
    """Ask up to `n` times (`ask(k)` for k = 0..n-1 -> an ExpertAnswer; `check(answer)` -> a Verdict), stopping at
    the first answer the check passes (a verifier makes the rest of the N calls useless) or when the `deadline`
    (time.monotonic()) has passed, after at least one call. Returns (answer, verdict, samples): the passing answer,
    else the majority value over the answers that wrote one (select_vote, ties to the higher judge score) with its
    verdict; samples are [(answer, verdict)] in asking order."""
    if n < 1:
        raise NeuroError(f"best-of-N needs n >= 1, got {n}")
    samples = []
    for k in range(n):
        if k and time.monotonic() >= deadline:
            break
        a = ask(k)
        samples.append((a, check(a)))
        if samples[-1][1].passed:
            return a, samples[-1][1], samples
    keys = [json.dumps(a.value, sort_keys=True, default=str) if a.ok and a.value is not None else None
            for a, _ in samples]
    vote = select_vote([(key, v.score) for key, (_, v) in zip(keys, samples)])
    if vote is None:  # no answer wrote a value: the best-scored sample
        a, v = max(samples, key=lambda s: s[1].score)
        return a, v, samples
    a, v = max((s for key, s in zip(keys, samples) if key == vote), key=lambda s: s[1].score)
    return a, v, samples


def compare_at_equal_calls(solver, expander: Expander, problems_by_size: dict, seed: int = 0) -> list[dict]:
    """Per size: accuracy and calls of direct, expansion, best-of-N (vote) and best-of-N (log-prob) with
    N = expansion's calls on each problem."""
    rows = []
    total = sum(len(ps) for ps in problems_by_size.values())
    with Progress(total, desc="expansion vs best-of-N", unit="problem") as bar:
        for k, problems in problems_by_size.items():
            acc = defaultdict(int)
            calls = defaultdict(int)
            for i, ops in enumerate(problems):
                want = sum(ops)
                d, e = solver.direct(ops), expander.solve(ops)
                acc["direct"] += d.value == want
                acc["expansion"] += e.value == want
                calls["direct"] += d.calls
                calls["expansion"] += e.calls
                calls["direct_steps"] += d.steps
                calls["expansion_steps"] += e.steps
                if e.calls <= 1:  # best-of-1 is the greedy answer
                    vote = lp = d.value
                    calls["bon_steps"] += d.steps
                else:
                    samples, steps = solver.sample(ops, e.calls, seed=seed * 1_000_003 + k * 10_007 + i)
                    vote, lp = select_vote(samples), select_logprob(samples)
                    calls["bon_steps"] += steps
                acc["bon_vote"] += vote == want
                acc["bon_logprob"] += lp == want
                bar.update(1)
            n = len(problems)
            rows.append({"size": k, "expanded": expander.expanded(k), "probe_failure": expander.failure.get(k),
                         "n": n, "direct": acc["direct"] / n, "expansion": acc["expansion"] / n,
                         "bon_vote": acc["bon_vote"] / n, "bon_logprob": acc["bon_logprob"] / n,
                         "calls_direct": calls["direct"] / n, "calls_expansion": calls["expansion"] / n,
                         "calls_bon": calls["expansion"] / n,
                         "steps_direct": calls["direct_steps"] / n, "steps_expansion": calls["expansion_steps"] / n,
                         "steps_bon": calls["bon_steps"] / n})
    return rows
