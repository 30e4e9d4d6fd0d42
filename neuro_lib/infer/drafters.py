"""Drafters for speculative decoding: any model, or n-gram lookup in the context (no model at all).

    ModelDrafter(Engine(small_model, tokenizer))     # any arch drafts for any arch with the same tokenizer
    NGramDrafter(max_n=4)                            # prompt lookup (Saxena 2023): copy what followed the
                                                     # last occurrence of the context's final n-gram

`propose(context, gamma, params, generator) -> (tokens, q)`: up to gamma draft tokens and the
distributions they were drawn from, q (k, V), or None for a deterministic drafter (q is then the
one-hot on each token, which the rejection rule handles exactly). A model drafter samples from
the same `next_token_probs` as the target (greedy when temperature is 0) and keeps its state
between rounds through a `Cursor`, so each round costs gamma draft steps.

Tests: tests/test_speculative.py.
"""
from __future__ import annotations

import torch

from neuro_lib.infer.engine import Cursor, Engine, Sampling
from neuro_lib.infer.sampling import draw, next_token_probs


class ModelDrafter:
    def __init__(self, engine: Engine):
        self.engine, self.cursor = engine, Cursor(engine)

    def propose(self, context: list[int], gamma: int, params: Sampling, generator=None):
        seq, qs = list(context), []
        for _ in range(gamma):
            logits = self.cursor.logits_after(seq, len(seq) - 1)[-1]               # (V,)
            q = next_token_probs(logits, params.temperature, params.top_k, params.top_p)
            seq.append(int(draw(q[None], generator)[0]) if params.temperature > 0 else int(q.argmax()))
            qs.append(q)
        return seq[len(context):], torch.stack(qs) if qs else None


class NGramDrafter:
    """Prompt lookup: the longest n <= max_n whose final n-gram occurred earlier proposes what followed it."""

    def __init__(self, max_n: int = 4, min_n: int = 1):
        if not 1 <= min_n <= max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got {min_n} and {max_n}")
        self.max_n, self.min_n = max_n, min_n

    def propose(self, context: list[int], gamma: int, params: Sampling | None = None, generator=None):
        for n in range(min(self.max_n, len(context) - 1), self.min_n - 1, -1):
            tail = context[-n:]
            for start in range(len(context) - n - 1, -1, -1):  # the most recent earlier occurrence
                if context[start:start + n] == tail:
                    return context[start + n: start + n + gamma], None
        return [], None
