"""Best-of-N: sample N continuations of one prompt, keep the one a scorer likes best.

    r = best_of_n(Engine(model, tok, cache="paged"), "37+48=", 8, Sampling(max_new_tokens=4, temperature=1.0),
                  scorer=arith_verifier("37+48="))
    r.best.text, r.best.score, [c.score for c in r.candidates], r.calls, r.cache_bytes

The prompt is prefilled once and its state forked into N rows (`state.fork(n)`): with the paged
cache the rows share the prompt's blocks (copy on write of the last partial one), so the cache
holds one prompt plus N continuations; a contiguous cache copies the prompt N times over
`block_size` positions each. The N rows then decode together.

Scorers: None = the mean log-probability of the sampled tokens under the model (forced tokens
excluded), or any callable(text: bytes) -> float (a verifier). Ties go to the earlier sample.
Tests: tests/test_search.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from neuro_lib.infer.engine import Engine, Sampling, cut_at_stop


@dataclass
class Candidate:
    text: bytes
    ids: list
    score: float
    mean_logprob: float


@dataclass
class BestOfN:
    best: Candidate
    candidates: list
    calls: int          # sequence-steps (Engine.calls)
    cache_bytes: int    # decoding-state storage held after the N continuations


def mean_logprob(logprobs: list[float]) -> float:
    chosen = [x for x in logprobs if not math.isnan(x)]
    return sum(chosen) / len(chosen) if chosen else float("-inf")


def best_of_n(engine: Engine, prompt, n: int, params: Sampling, scorer: Callable | None = None,
              processor: Callable | None = None) -> BestOfN:
    """`processor`: the engine's logits-processor hook, applied to every row."""
    if n < 1:
        raise ValueError(f"best-of-N needs N >= 1, got {n}")
    calls0 = engine.calls
    context = engine.encode(prompt)
    state, logits = engine.prefill([context])
    rows = state.fork(n)
    ids, logprobs = [[] for _ in range(n)], [[] for _ in range(n)]
    for tok in engine.decode(rows, logits.expand(n, -1), [list(context) for _ in range(n)], params, processor):
        ids[tok.row].append(tok.id)
        logprobs[tok.row].append(tok.logprob)
    cands = []
    for row_ids, lp in zip(ids, logprobs):
        text = cut_at_stop(engine.tokenizer.decode(row_ids), params.stop)[0]
        m = mean_logprob(lp)
        cands.append(Candidate(text, row_ids, m if scorer is None else float(scorer(text)), m))
    best = max(cands, key=lambda c: c.score)  # max keeps the first of equal scores
    return BestOfN(best, cands, engine.calls - calls0, rows.nbytes())
