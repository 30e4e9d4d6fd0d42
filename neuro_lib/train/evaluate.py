"""Bits per byte (DESIGN.md): total negative log-likelihood in bits of a text under a
model, divided by the text's UTF-8 byte count, so every tokenizer and architecture is on
one scale.

The text is tokenized once; the model scores it in windows of `block_size` tokens moved
by `stride` (default half a window), so every token after the first is predicted with
at least half a window of context and counted exactly once. The first token has no
context and is not scored; its bytes are left out of the denominator.

A lossy tokenizer (`word`) maps words it does not know to one UNK id: predicting UNK is cheap,
but the word is never spelled. Each scored UNK is therefore charged 8 bits per byte of the word
it replaced (a uniform code over the 256 byte values) on top of the UNK prediction, so lossy and
lossless tokenizers stay on one scale (an upper bound for the lossy one: a better speller would pay
less). Any other tokenizer whose decoding differs from the text is refused.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)
UNK_BITS_PER_BYTE = 8.0  # spelling an unknown word byte by byte, uniform over 256 values


def bits_per_byte(nll_nats: float, n_bytes: int) -> float:
    """Convert a summed NLL in nats over `n_bytes` bytes to bits per byte."""
    if n_bytes <= 0:
        raise ValueError("bits_per_byte needs a positive byte count")
    return nll_nats / LN2 / n_bytes


@torch.no_grad()
def evaluate_bpb(model, tokenizer, text: bytes, block_size: int, stride: int | None = None,
                 max_bytes: int = 0, batch_size: int = 16) -> dict:
    """Score `text` (its first `max_bytes` bytes when > 0); returns {"bpb", "nll_nats", "bytes", "tokens",
    "unk_bytes"}: nll_nats includes the spelling charge for `unk_bytes` bytes hidden behind UNK ids."""
    if max_bytes:
        text = text[:max_bytes]
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        raise ValueError("text is too short to score (fewer than two tokens)")
    lost = tokenizer.lost_bytes(text) or [0] * len(ids)
    if not any(lost) and tokenizer.decode(ids) != text:
        raise ValueError(f"tokenizer {tokenizer.spec} does not reproduce the text and does not say what it "
                         "loses (lost_bytes); its bits per byte would be understated")
    windows = score_windows(len(ids), block_size, stride or max(1, block_size // 2))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids_t = torch.tensor(ids, dtype=torch.long)
    total = 0.0
    # windows all have the same length except possibly the first: batch runs of equal length
    for i in range(0, len(windows), batch_size):
        group = windows[i: i + batch_size]
        same = [w for w in group if w[1] - w[0] == group[-1][1] - group[-1][0]]
        for chunk in ([w for w in group if w not in same], same):
            if not chunk:
                continue
            x = torch.stack([ids_t[s:e] for s, e, _ in chunk]).to(device)           # (b, L) inputs
            y = torch.stack([ids_t[s + 1: e + 1] for s, e, _ in chunk]).to(device)  # (b, L) targets
            nll = F.cross_entropy(model(x).float().transpose(1, 2), y, reduction="none")  # (b, L)
            for row, (s, e, b) in zip(nll, chunk):
                total += row[b - s - 1:].sum().item()  # targets at absolute index >= b
    model.train(was_training)
    unk_bytes = sum(lost[1:])  # the first token is not scored
    total += unk_bytes * UNK_BITS_PER_BYTE * LN2
    n_bytes = len(text) - (lost[0] or len(tokenizer.decode(ids[:1])))
    return {"bpb": bits_per_byte(total, n_bytes), "nll_nats": total, "bytes": n_bytes, "tokens": len(ids),
            "unk_bytes": unk_bytes}


def score_windows(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, end, first_target) triples: inputs ids[start:end], targets ids[start+1:end+1], of
    which those at index >= first_target are scored. Every target 1..n-1 is scored once."""
    if not 0 < stride <= block_size:
        raise ValueError(f"stride must be in 1..block_size, got {stride}")
    windows, b = [], 1
    while b <= n_tokens - 1:
        e = min(block_size if b == 1 else b - 1 + stride, n_tokens - 1)
        windows.append((max(0, e - block_size), e, b))
        b = e + 1
    return windows
