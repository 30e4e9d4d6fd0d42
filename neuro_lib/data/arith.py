"""A checkable task for search at decoding time: sums of two numbers, "37+48=85\\n".

    text = arith_corpus(20_000, seed=0)          # training lines, bytes
    problems = arith_problems(50, seed=1)         # [("37+48=", "85"), ...], disjoint from nothing: the
                                                  # operands are random, so the model must add, not recall
    arith_verifier("37+48=")(b"85\\n...")         # 1.0: the completion's first line is the sum

Best-of-N and MCTS (infer/) use the verifier as scorer / value; greedy decoding is the baseline.
Tests: tests/test_search.py.
"""
from __future__ import annotations

import random


def _pair(rng: random.Random, digits: int) -> tuple[int, int]:
    hi = 10 ** digits - 1
    return rng.randint(0, hi), rng.randint(0, hi)


def arith_corpus(n_lines: int, seed: int = 0, digits: int = 2) -> bytes:
    rng = random.Random(seed)
    return "".join(f"{a}+{b}={a + b}\n" for a, b in (_pair(rng, digits) for _ in range(n_lines))).encode()


def arith_problems(n: int, seed: int = 1, digits: int = 2) -> list[tuple[str, str]]:
    rng = random.Random(seed + 10_007)  # another stream than the corpus
    return [(f"{a}+{b}=", str(a + b)) for a, b in (_pair(rng, digits) for _ in range(n))]


def arith_verifier(prompt: str):
    """A verifier for one problem: completion bytes -> 1.0 if its first line is the exact sum, else 0.0."""
    a, b = prompt.rstrip("=").split("+")
    want = str(int(a) + int(b)).encode()

    def verify(completion: bytes) -> float:
        return 1.0 if completion.split(b"\n", 1)[0] == want else 0.0

    return verify
