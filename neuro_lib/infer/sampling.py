"""Sampling from any neuro_lib language model through its incremental `step()`.

    text = generate(model, tokenizer, b"The ", max_new_tokens=200, temperature=0.8, top_k=40, top_p=0.95,
                    stop=[b"\n\n"])

The prompt is prefilled in one `step()` call, then one token per call. A model with a
bounded context (`max_len`) is re-prefilled with the most recent half-window when the
cache fills, so generation can run past the training length.
"""
from __future__ import annotations

import torch

from neuro_lib.tokenizers.base import as_bytes


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """logits (B, V) -> logits with everything outside top-k / the top-p nucleus set to -inf."""
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


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0 means greedy."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    if generator is not None:  # a CPU generator keeps seeded sampling identical on every device
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)
    return torch.multinomial(probs, 1).squeeze(-1)


@torch.no_grad()
def generate(model, tokenizer, prompt: str | bytes | list[int], max_new_tokens: int = 200, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, stop: list[bytes] | None = None, seed: int | None = None,
             processor=None, eos_id: int | None = None, src: list[int] | None = None) -> bytes:
    """Continue `prompt` (text, or token ids as a list); returns only the new bytes (cut before the first
    stop sequence). `processor(generated_ids, logits) -> logits` reshapes each step's logits; if it has
    `forced(generated_ids) -> list[int]`, those tokens are appended without sampling (fast-forward).
    Generation ends at `eos_id` (not returned). `src`: source ids for an encoder-decoder model."""
    model.eval()
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    ids = list(prompt) if isinstance(prompt, list) else (tokenizer.encode(as_bytes(prompt)) or [0])
    max_len = getattr(model, "max_len", None)
    if max_len:
        ids = ids[-(max_len - 1):]
    device = next(model.parameters()).device
    init = (lambda: model.init_state(1)) if src is None else \
        (lambda: model.init_state(1, src=torch.tensor([src], device=device)))
    state = init()
    logits, state = model.step(torch.tensor([ids], device=device), state)
    out: list[int] = []
    stop = [as_bytes(s) for s in (stop or [])]
    forced = getattr(processor, "forced", None)
    while len(out) < max_new_tokens:
        new = forced(out)[: max_new_tokens - len(out)] if forced else []
        if not new:
            step_logits = processor(out, logits[:, -1]) if processor else logits[:, -1]
            new = [int(sample_next(step_logits, temperature, top_k, top_p, gen))]
        if eos_id is not None and eos_id in new:
            out += new[: new.index(eos_id)]
            break
        out += new
        if stop:
            text = tokenizer.decode(out)
            hits = [text.find(s) for s in stop if s in text]
            if hits:
                return text[: min(hits)]
        context = ids + out
        if max_len and getattr(state, "pos", 0) + len(new) > max_len:
            keep = context[-(max_len // 2):]  # re-prefill with the recent half-window
            state = init()
            logits, state = model.step(torch.tensor([keep], device=device), state)
        else:
            logits, state = model.step(torch.tensor([new], device=device), state)
    return tokenizer.decode(out)
