"""Preference pairs, prompt + completion batches, and sequence log-probabilities over completion tokens.

A pair is {"prompt", "chosen", "rejected"} (text); a preference file is JSON lines of pairs. A batch row
is prompt ids + completion ids, right-padded; `completion_mask` (B, T) is 1 on completion tokens only, so
prompt and padding never count. Right padding leaves every real position's logits unchanged in a causal
model, so a padded batch scores each row exactly as that row alone (tests/test_rlhf.py).

    pairs = load_pairs("prefs.jsonl")                       # one sentence (NeuroError) if empty or malformed
    batch = collate([(prompt_ids, completion_ids), ...])    # tokens, completion_mask (B, T)
    logps = sequence_logprobs(model(batch["tokens"]), batch["tokens"], batch["completion_mask"])   # (B,)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from neuro_lib.errors import NeuroError

PAD = 0  # any id: padded positions are masked out


@dataclass
class Pair:
    prompt: str
    chosen: str
    rejected: str


def load_pairs(path) -> list[Pair]:
    """Preference pairs from a JSON-lines file; an empty or malformed file is one sentence."""
    path = Path(path)
    if not path.is_file():
        raise NeuroError(f"preference file {path} does not exist")
    pairs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise NeuroError(f"{path} line {n} is not valid JSON") from None
        if not (isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in ("prompt", "chosen", "rejected"))):
            raise NeuroError(f"{path} line {n} needs string fields 'prompt', 'chosen' and 'rejected'")
        pairs.append(Pair(rec["prompt"], rec["chosen"], rec["rejected"]))
    if not pairs:
        raise NeuroError(f"preference file {path} holds no pairs")
    return pairs


def save_pairs(pairs: list[Pair], path) -> None:
    Path(path).write_text("".join(json.dumps(vars(p)) + "\n" for p in pairs))


def collate(rows: list[tuple[list[int], list[int]]], pad: int = PAD) -> dict:
    """(prompt ids, completion ids) rows -> {"tokens" (B, T), "completion_mask" (B, T) float}, right-padded."""
    seqs = [list(p) + list(c) for p, c in rows]
    T = max(map(len, seqs))
    tokens = torch.tensor([s + [pad] * (T - len(s)) for s in seqs])
    mask = torch.tensor([[0] * len(p) + [1] * len(c) + [0] * (T - len(p) - len(c)) for p, c in rows],
                        dtype=torch.float32)
    return {"tokens": tokens, "completion_mask": mask}


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V) of model(tokens) -> log p(tokens[:, t] | tokens[:, <t]) (B, T); position 0 (nothing
    before it) gets 0."""
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, tokens[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return torch.cat([torch.zeros_like(logp[:, :1]), logp], 1)


def sequence_logprobs(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, average: bool = False):
    """Sum (or mean, `average`) of the completion tokens' log-probabilities -> (B,)."""
    per_token = token_logprobs(logits, tokens) * mask  # (B, T)
    total = per_token.sum(1)
    return total / mask.sum(1).clamp_min(1) if average else total


def pair_batch(tokenizer, pairs: list[Pair]) -> dict:
    """Chosen rows then rejected rows in one batch of 2B (one forward pass scores both)."""
    chosen = [(tokenizer.encode(p.prompt), tokenizer.encode(p.chosen)) for p in pairs]
    rejected = [(tokenizer.encode(p.prompt), tokenizer.encode(p.rejected)) for p in pairs]
    return collate(chosen + rejected)
