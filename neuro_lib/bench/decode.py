"""`neuro bench decode`: generation speed without a cache, with the contiguous KV cache and
with the paged KV cache, and memory, at several context lengths.

    neuro bench decode --arch aeron --profile bench --new-tokens 32 --json

For each context length a random prompt of that many tokens is prefilled, then
`--new-tokens` tokens are generated greedily one at a time:

- `no-cache`: every new token re-runs `forward()` over the whole sequence (quadratic work);
- `contiguous`: `init_state()` + `step()` with the preallocated `KVCache`;
- `paged`: the same with `PagedKVCache` (models whose `cache_kinds` include it).

Reported per (method, context): new tokens/s (prefill excluded), prefill time, the bytes of
tensor storage the decoding state holds (contiguous: its preallocated max_len per row; paged:
the block pool, grown with the blocks in use) and the process's peak
resident memory during the run (Linux VmHWM, reset before each run; it includes the model and
whatever the allocator kept from earlier runs).

Two batch scenarios per cache kind (`--rows`, default 8), greedy through the engine:
- `ragged`: `--rows` prompts of lengths spread from 1/8 to all of the largest context,
  decoded together (per-row lengths);
- `fork`: `--rows` continuations of one prompt of the largest context (best-of-N): the paged
  rows share the prompt's blocks, the contiguous cache copies it into every row.
Each reports tokens/s (rows x new tokens over decode time), allocated bytes and whether both
caches generated the same tokens. Weights are random: speed does not depend on them. Sizes
come from the profile (profiles.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import Engine
from neuro_lib.models import build_model
from neuro_lib.profiles import get_profile
from neuro_lib.bench.flags import add_seed, add_threads

METHODS = ("no-cache", "contiguous", "paged")


def add_arguments(p):
    p.add_argument("--arch", default="aeron", help="model architecture (a key of models.ARCHS)")
    p.add_argument("--profile", default="bench", help="model sizes from profiles.py")
    p.add_argument("--contexts", default="", help="comma-separated prompt lengths (default: 1/8, 1/2 and all "
                                                  "of the model's context minus --new-tokens)")
    p.add_argument("--new-tokens", type=int, default=32, help="tokens generated per run")
    p.add_argument("--batch-size", type=int, default=1, help="sequences decoded together")
    p.add_argument("--block-size", type=int, default=16, help="positions per block of the paged cache")
    p.add_argument("--rows", type=int, default=8, help="rows of the ragged and fork scenarios (0 = skip them)")
    add_threads(p)
    add_seed(p, 1337)


def _peak_rss_reset() -> None:
    """Reset the kernel's peak-RSS mark for this process (Linux >= 4.0; a no-op elsewhere)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@torch.no_grad()
def time_decode(model, prompt: torch.Tensor, new_tokens: int, method: str, block_size: int = 16) -> dict:
    """Greedy generation of `new_tokens` after `prompt` (B, T) with one method -> measurements."""
    if method not in METHODS:
        raise NeuroError(f"unknown decode method {method!r}; choose one of {METHODS}")
    model.eval()
    _peak_rss_reset()
    seq, cache_bytes = prompt, 0
    t0 = time.perf_counter()
    if method == "no-cache":
        logits = model(seq)
    else:
        kwargs = {"cache": method, "block_size": block_size} if model.cache_kinds else {}
        state = model.init_state(prompt.shape[0], **kwargs)
        logits, state = model.step(seq, state)
    t1 = time.perf_counter()
    for _ in range(new_tokens):
        nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        seq = torch.cat([seq, nxt], 1)
        if method == "no-cache":
            logits = model(seq)
        else:
            logits, state = model.step(nxt, state)
    t2 = time.perf_counter()
    if method != "no-cache":
        cache_bytes = state.nbytes()
    return {"tokens_per_s": prompt.shape[0] * new_tokens / (t2 - t1), "prefill_ms": 1000 * (t1 - t0),
            "cache_mib": cache_bytes / 2**20, "peak_rss_mib": _peak_rss_mib(), "tokens": seq}


def default_contexts(max_len: int, new_tokens: int) -> list[int]:
    """1/8, 1/2 and all of the room a model's context leaves for `new_tokens`."""
    room = max_len - new_tokens
    return sorted({max(1, room // 8), max(1, room // 2), room})


def decode_table(model, contexts: list[int], new_tokens: int, batch_size: int = 1, block_size: int = 16,
                 seed: int = 0) -> list[dict]:
    """Every method at every prompt length -> result rows; "same tokens" checks that the
    cached methods generate exactly what the uncached forward pass generates."""
    max_len = model.max_len or max(contexts) + new_tokens
    if min(contexts) < 1 or max(contexts) + new_tokens > max_len:
        raise NeuroError(f"prompt lengths {contexts} plus {new_tokens} new tokens must fit the model's "
                         f"context of {max_len} tokens")
    methods = [m for m in METHODS if m != "paged" or "paged" in model.cache_kinds]
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(seed)
    time_decode(model, torch.randint(0, vocab, (1, 4), generator=gen), 4, "no-cache")  # warm-up
    results = []
    for ctx in contexts:
        prompt = torch.randint(0, vocab, (batch_size, ctx), generator=gen)
        outputs = {}
        for method in methods:
            r = time_decode(model, prompt, new_tokens, method, block_size)
            outputs[method] = r.pop("tokens")
            results.append({"name": f"{method} ctx={ctx}", "value": round(r["tokens_per_s"], 1), "unit": "tokens/s",
                            "method": method, "context": ctx, "prefill_ms": round(r["prefill_ms"], 1),
                            "cache_mib": round(r["cache_mib"], 3), "peak_rss_mib": round(r["peak_rss_mib"], 1)})
        same = all(torch.equal(outputs[m], outputs["no-cache"]) for m in methods)
        results.append({"name": f"same tokens ctx={ctx}", "value": int(same), "unit": "bool", "context": ctx})
    return results


class _Ids:
    """The engine's tokenizer for random token ids: nothing to encode or decode."""

    def decode(self, ids):
        return bytes(len(ids))


@torch.no_grad()
def batch_scenario(model, kind: str, contexts: list[list[int]], new_tokens: int, cache: str | None,
                   block_size: int = 16) -> dict:
    """Greedy decoding of a ragged batch (`kind="ragged"`, one context per row) or of len(contexts)
    continuations of contexts[0] (`kind="fork"`) -> tokens/s, allocated bytes, the tokens."""
    eng = Engine(model, _Ids(), cache, block_size=block_size)
    if kind == "fork":
        state, logits = eng.prefill(contexts[:1])
        state, logits = state.fork(len(contexts)), logits.expand(len(contexts), -1)
    else:
        state, logits = eng.prefill(contexts)
    out = []
    t0 = time.perf_counter()
    for _ in range(new_tokens):
        nxt = logits.argmax(-1)                                   # (B,)
        out.append(nxt)
        logits = eng.step(nxt[:, None].tolist(), state)[:, -1]
    dt = time.perf_counter() - t0
    return {"tokens_per_s": len(contexts) * new_tokens / dt, "bytes": state.nbytes(), "tokens": torch.stack(out, 1)}


def scenario_rows(model, max_context: int, rows: int, new_tokens: int, block_size: int, seed: int) -> list[dict]:
    """The ragged and fork scenarios for every cache kind of the model -> result rows."""
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    lengths = [max(1, max_context * (i + 1) // rows) for i in range(rows)]
    ragged = [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in lengths]
    caches = list(model.cache_kinds) or [None]
    results = []
    kinds = (("ragged", ragged), ("fork", [ragged[-1]] * rows)) if model.init_state(1).ragged else (
        ("fork", [ragged[-1]] * rows),)  # a lockstep state (RNK) has no ragged batch
    for kind, contexts in kinds:
        tokens = {}
        for cache in caches:
            r = batch_scenario(model, kind, contexts, new_tokens, cache, block_size)
            tokens[cache] = r["tokens"]
            label = cache or "state"
            results.append({"name": f"{kind} x{rows} {label} tokens/s", "value": round(r["tokens_per_s"], 1),
                            "unit": "tokens/s", "scenario": kind, "cache": label})
            results.append({"name": f"{kind} x{rows} {label} allocated", "value": round(r["bytes"] / 2**20, 3),
                            "unit": "MiB", "scenario": kind, "cache": label})
        same = all(torch.equal(t, tokens[caches[0]]) for t in tokens.values())
        results.append({"name": f"{kind} x{rows} same tokens", "value": int(same), "unit": "bool", "scenario": kind})
    return results


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.new_tokens <= 0 or args.batch_size <= 0:
        raise NeuroError("--new-tokens and --batch-size must be positive")
    torch.manual_seed(args.seed)
    model = build_model(args.arch, **get_profile(args.profile).model(args.arch)).eval()
    contexts = ([int(c) for c in args.contexts.split(",") if c.strip()] if args.contexts
                else default_contexts(model.max_len or 4096, args.new_tokens))
    results = decode_table(model, contexts, args.new_tokens, args.batch_size, args.block_size, args.seed)
    if args.rows:
        results += scenario_rows(model, max(contexts), args.rows, args.new_tokens, args.block_size, args.seed)
    config = {"arch": args.arch, "profile": args.profile, "contexts": contexts, "new_tokens": args.new_tokens,
              "batch_size": args.batch_size, "block_size": args.block_size, "rows": args.rows, "seed": args.seed,
              "threads": torch.get_num_threads(), "params": model.num_params(),
              "model": dict(vars(model.config))}
    return make_report("decode", config, results)
