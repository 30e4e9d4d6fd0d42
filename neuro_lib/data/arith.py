"""A checkable task for search at decoding time: sums of two numbers, "37+48=85\\n".

    text = arith_corpus(20_000, seed=0)          # training lines, bytes
    problems = arith_problems(50, seed=1)         # [("37+48=", "85"), ...], disjoint from nothing: the
                                                  # operands are random, so the model must add, not recall
    arith_verifier("37+48=")(b"85\\n...")         # 1.0: the completion's first line is the sum

Best-of-N and MCTS (infer/) use the verifier as scorer / value; greedy decoding is the baseline.

Multi-operand sums, for recursive expansion (runtime/expansion.py): a family per operand count k,
operands zero-padded to three digits, "012+034+056=" -> the sum zero-padded to four digits and
written least-significant digit first ("2010" for 102), which a small transformer learns far more
easily than the usual order (the carry then flows the way it writes; Lee et al. 2023, "Teaching
arithmetic to small transformers"):

    sum_prompt((12, 34, 56)), sum_answer(102)       # "012+034+056=", "2010"
    parse_sum_answer("2010\\n")                      # 102 (None when it is not a number)
    sum_examples(5000, seed=0)                      # training lines: k = 2..5 two-digit operands, and the
                                                    # pairwise sums of partial results expansion needs
    sum_problems(30, k=4, seed=1)                   # k operands of two digits each
Tests: tests/test_search.py, tests/test_runtime_expansion.py.
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


SUM_WIDTH = 3     # operand digits, zero-padded: each digit position keeps one job
ANSWER_WIDTH = 4  # answer digits, zero-padded


def sum_prompt(ops) -> str:
    return "+".join(f"{x:0{SUM_WIDTH}d}" for x in ops) + "="


def sum_answer(value: int) -> str:
    """The digits of a non-negative sum, zero-padded, least significant first."""
    return f"{value:0{ANSWER_WIDTH}d}"[::-1]


def parse_sum_answer(text: str | bytes) -> int | None:
    """The value of an answer written by sum_answer (its first line), or None when that line is not digits."""
    line = (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).split("\n", 1)[0]
    return int(line[::-1]) if line.isdigit() else None


def sum_problems(n: int, k: int, seed: int = 1, digits: int = 2) -> list[tuple[int, ...]]:
    """`n` sums of `k` operands of `digits` digits (leading digit non-zero)."""
    rng = random.Random(f"sums:{seed}:{k}:{digits}")
    return [tuple(rng.randint(10 ** (digits - 1), 10 ** digits - 1) for _ in range(k)) for _ in range(n)]


def sum_examples(n: int, seed: int = 0, max_ops: int = 5, digits: int = 2) -> list[tuple[str, str]]:
    """(prompt, answer) training pairs: half are sums of 2..max_ops operands of `digits` digits; half are pairwise
    sums of partial results (operands up to max_ops * (10**digits - 1)), the sub-steps expansion asks for."""
    rng = random.Random(f"sum-train:{seed}")
    top, out = max_ops * (10 ** digits - 1), []
    for i in range(n):
        if i % 2:
            ops = (rng.randint(0, top), rng.randint(10 ** (digits - 1), top))
        else:
            ops = tuple(rng.randint(10 ** (digits - 1), 10 ** digits - 1) for _ in range(rng.randint(2, max_ops)))
        out.append((sum_prompt(ops), sum_answer(sum(ops))))
    return out
