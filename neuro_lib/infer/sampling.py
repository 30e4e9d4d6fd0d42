"""Turning one position's logits into a next token: temperature, top-k, top-p, repetition penalty.

    probs = next_token_probs(logits, temperature=0.8, top_k=40, top_p=0.95)   # (..., V), sums to 1
    ids = draw(probs, generator=g)                                             # (B,)

`next_token_probs` is the distribution the engine samples from; speculative decoding uses the
same function for the target's p and the draft's q, so the rejection rule preserves exactly
what plain sampling would draw. temperature 0 is greedy (a one-hot on the argmax).
Repetition penalty follows CTRL (Keskar et al. 2019): a token already in the context has its
logit divided by the penalty when positive and multiplied by it when negative.

Tests: tests/test_engine.py.
"""
from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """logits (..., V) -> logits with everything outside top-k / the top-p nucleus set to -inf."""
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass strictly before it already reaches top_p (the top token always stays)
        drop = probs.cumsum(-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


def repetition_penalty(logits: torch.Tensor, context: list[int], penalty: float) -> torch.Tensor:
    """logits (V,) with the tokens of `context` penalised (CTRL); penalty 1 changes nothing."""
    if penalty == 1.0 or not context:
        return logits
    ids = torch.tensor(sorted(set(context)), device=logits.device)
    seen = logits[ids]
    out = logits.clone()
    out[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return out


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0) -> torch.Tensor:
    """logits (..., V) -> the sampling distribution (..., V); temperature <= 0 gives the argmax one-hot."""
    logits = logits.float()
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).float()
    return torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)


def draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """probs (B, V) -> ids (B,); a CPU generator keeps seeded sampling identical on every device."""
    if generator is not None:
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(probs.device)
    return torch.multinomial(probs, 1).squeeze(-1)
