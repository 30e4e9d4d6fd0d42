"""Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding"; Chen et al. 2023, "Accelerating LLM Decoding with Speculative Sampling").

    text, stats = speculative_generate(Engine(target, tok), ModelDrafter(Engine(draft, tok)), "The ",
                                       Sampling(max_new_tokens=200, temperature=0), gamma=4, adaptive=True)
    stats.alpha, stats.accepted_per_round, stats.target_calls, stats.draft_calls

Each round a drafter proposes gamma tokens d_1..d_gamma with distributions q_i; the target scores
the pending token and all drafts in ONE `step` over gamma + 1 tokens, giving p_1..p_{gamma+1}.
Draft i is accepted with probability min(1, p_i(d_i) / q_i(d_i)); at the first rejection a token is
drawn from the residual norm(max(p_i - q_i, 0)) and the round ends; if all are accepted, a bonus
token is drawn from p_{gamma+1}. The emitted tokens then follow the target's distribution exactly
(both papers, theorem 1); with temperature 0 p and q are one-hots and the output is the target's
greedy decoding token for token. The target's state is rolled back past rejected drafts (a KV
cache truncates; a recurrent state returns to its checkpoint and re-feeds in the next round's step).

Adaptive gamma (switchable): +1 after a fully accepted round, -1 after a rejection at the first
draft, within [1, gamma_max]. Expected speed-up (Leviathan eq. 1 and theorem 3.8) from the
acceptance rate alpha and the cost c of a draft step relative to a target step:
    tokens per round = (1 - alpha^(gamma+1)) / (1 - alpha),  speed-up = that / (gamma c + 1).

Speculative decoding here decodes one prompt; repetition penalty and logits processors belong to
plain decoding (they would change p after the fact). Tests: tests/test_speculative.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from neuro_lib.infer.engine import Cursor, Engine, Sampling, Token, cut_at_stop
from neuro_lib.infer.sampling import draw, next_token_probs


def verify(drafts: list[int], q: torch.Tensor | None, p: torch.Tensor, generator=None) -> tuple[int, int]:
    """The rejection rule. drafts (k), q (k, V) or None (one-hots), p (k+1, V) -> (accepted n, next token)."""
    for i, d in enumerate(drafts):
        qi = q[i] if q is not None else torch.nn.functional.one_hot(torch.tensor(d), p.size(-1)).float()
        r = float(torch.rand(1, generator=generator)[0])
        if r * qi[d] < p[i, d]:  # accept with probability min(1, p/q)
            continue
        residual = (p[i] - qi).clamp_min(0)
        if residual.sum() <= 0:  # p == q up to rounding: the residual is p itself
            residual = p[i]
        return i, int(draw((residual / residual.sum())[None], generator)[0])
    return len(drafts), int(draw(p[len(drafts)][None], generator)[0])


def expected_speedup(alpha: float, gamma: int, c: float, verify: float = 1.0) -> float:
    """Leviathan et al.'s improvement factor: expected tokens per round over the round's cost in target steps.
    `verify` is the cost of the target's one call on gamma + 1 tokens in single-token steps: the paper takes 1
    (the verify is free beside a step); on a CPU it grows with gamma, and the measured value belongs here."""
    tokens = gamma + 1 if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)
    return tokens / (gamma * c + verify)


@dataclass
class SpecStats:
    proposed: int = 0
    accepted: int = 0
    rounds: int = 0
    accepted_per_round: list = field(default_factory=list)
    gammas: list = field(default_factory=list)
    target_calls: int = 0
    draft_calls: int = 0

    @property
    def alpha(self) -> float:
        """Acceptance rate: accepted draft tokens over proposed ones."""
        return self.accepted / self.proposed if self.proposed else 0.0


def speculative_stream(target: Engine, drafter, prompt, params: Sampling, gamma: int = 4, adaptive: bool = False,
                       gamma_max: int = 16, stats: SpecStats | None = None) -> Iterator[Token]:
    """Tokens of one continuation of `prompt`, drafted by `drafter` and verified by `target`."""
    if gamma < 1:
        raise ValueError(f"gamma must be at least 1, got {gamma}")
    if params.repetition_penalty != 1.0:
        raise ValueError("speculative decoding does not take a repetition penalty (it changes p after the fact)")
    stats = stats if stats is not None else SpecStats()
    gen, cursor = params.generator(), Cursor(target)
    context, out = target.encode(prompt), []
    draft_engine = getattr(drafter, "engine", None)
    # the stop check reads the new bytes and the last len(stop) - 1 before them: linear in the output length
    keep, tail = max((len(s) for s in params.stop), default=1) - 1, b""
    calls0 = (target.calls, draft_engine.calls if draft_engine else 0)
    with torch.no_grad():
        while len(out) < params.max_new_tokens:
            g = min(gamma, params.max_new_tokens - len(out) - 1)  # the round emits at most g + 1 tokens
            drafts, q = drafter.propose(context, g, params, gen) if g > 0 else ([], None)
            logits = cursor.logits_after(context + drafts, len(context) - 1)       # (k+1, V)
            p = next_token_probs(logits, params.temperature, params.top_k, params.top_p)
            n, t = verify(drafts, q, p, gen)
            stats.rounds += 1
            stats.proposed += len(drafts)
            stats.accepted += n
            stats.accepted_per_round.append(n)
            stats.gammas.append(len(drafts))
            logprobs = torch.log_softmax(logits, -1)
            stopped = False
            for i, tok in enumerate(drafts[:n] + [t]):
                out.append(tok)
                context.append(tok)
                yield Token(0, tok, float(logprobs[i, tok]))
                if params.stop:  # only the new token's bytes and the tail a stop could start in (as Engine.decode)
                    window = tail + target.tokenizer.decode([tok])
                    stopped = any(s in window for s in params.stop)
                    tail = window[len(window) - keep:] if keep else b""
                if stopped:
                    break
            if stopped:
                break
            if adaptive and drafts:
                gamma = min(gamma + 1, gamma_max) if n == len(drafts) else max(1, gamma - 1) if n == 0 else gamma
    stats.target_calls = target.calls - calls0[0]
    stats.draft_calls = (draft_engine.calls if draft_engine else 0) - calls0[1]


def speculative_generate(target: Engine, drafter, prompt, params: Sampling, gamma: int = 4, adaptive: bool = False,
                         gamma_max: int = 16) -> tuple[bytes, SpecStats]:
    """The new bytes (cut before the first stop sequence) and the round statistics."""
    stats = SpecStats()
    ids = [tok.id for tok in speculative_stream(target, drafter, prompt, params, gamma, adaptive, gamma_max, stats)]
    return cut_at_stop(target.tokenizer.decode(ids), params.stop)[0], stats
