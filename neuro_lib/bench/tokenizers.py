"""`neuro bench tokenizers`: byte, word, BPE and VQ-VAE tokenizers on the same held-out text.

    neuro bench tokenizers --corpus stdlib-docs --sizes 1024,4096,8192 --json

Each tokenizer is trained on the training split (training time measured; VQ sizes from
the profile's tokenizers["train"]) and measured on the validation split (the last 10 %):
- bytes/token: validation bytes / tokens (escapes included for VQ lossless);
- exact round trip: share of documents (lines: short, so the fidelity alignment stays cheap)
  and of their bytes with decode(encode(doc)) == doc, each document encoded on its own;
- byte fidelity: matched bytes / bytes, the matched bytes being difflib's matching
  blocks between each document and its decoding (1.0 when exact);
- encode / decode throughput in MB/s over the whole split in one call (cold caches);
- vocabulary usage: distinct ids on the split / vocab_size; UNK share (word), escape share (VQ).
VQ is measured twice: lossless (what a language model sees) and lossy (one code per patch).
With --context a third time: lossy codes decoded by the contextual decoder (tokenizers/vq_context.py,
sizes from profiles.py tasks.vq_context), row "vq:K context".
With --lm-steps N (or --lm-budget S) a GPT (the profile's sizes) is trained on each tokenizer that is
not lossy, at equal optimiser steps (or equal seconds), and its validation bits per byte recorded.

    neuro bench tokenizers --kinds byte,bpe,vq --sizes 4096 --context --lm-steps 300 --threads 1
    neuro bench tokenizers --kinds byte,bpe,vq --sizes 4096 --lm-budget 200 --threads 1   # quiet machine
"""
from __future__ import annotations

import difflib
import time
from dataclasses import asdict

import torch

from neuro_lib.data.corpus import Corpus, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import Profile, VqContextSizes, get_profile
from neuro_lib.tokenizers import Tokenizer, parse_spec, train_tokenizer
from neuro_lib.bench.flags import add_threads

KINDS = ("byte", "word", "bpe", "vq")


def documents(text: bytes) -> list[bytes]:
    """Lines with their line ends, so they concatenate back to `text`."""
    return text.splitlines(keepends=True)


def byte_fidelity(original: bytes, decoded: bytes) -> int:
    """Bytes of `original` matched in order by `decoded` (difflib's matching blocks)."""
    if original == decoded:
        return len(original)
    sm = difflib.SequenceMatcher(None, original, decoded, autojunk=False)
    return sum(b.size for b in sm.get_matching_blocks())


def measure(tok: Tokenizer, text: bytes) -> dict:
    """The held-out figures of one tokenizer on `text` (see the module docstring)."""
    if not text:
        raise NeuroError("cannot measure a tokenizer on empty text")
    t0 = time.perf_counter()
    ids = tok.encode(text)
    t1 = time.perf_counter()
    tok.decode(ids)
    t2 = time.perf_counter()
    docs = documents(text)
    exact_docs = exact_bytes = matched = 0
    for d in docs:
        out = tok.decode(tok.encode(d))
        if out == d:
            exact_docs += 1
            exact_bytes += len(d)
        matched += byte_fidelity(d, out)
    mb = len(text) / 1e6
    out = {"spec": tok.spec, "vocab_size": tok.vocab_size, "tokens": len(ids),
           "bytes_per_token": len(text) / max(len(ids), 1),
           "doc_roundtrip": exact_docs / len(docs), "byte_roundtrip": exact_bytes / len(text),
           "byte_fidelity": matched / len(text),
           "encode_mb_s": mb / max(t1 - t0, 1e-9), "decode_mb_s": mb / max(t2 - t1, 1e-9),
           "vocab_usage": len(set(ids)) / tok.vocab_size}
    if hasattr(tok, "unk_rate"):
        out["unk_rate"] = tok.unk_rate(ids)
    if hasattr(tok, "is_escape"):
        out["escape_rate"] = sum(map(tok.is_escape, ids)) / max(len(ids), 1)
    return out


def pieces(tok: Tokenizer, text: bytes) -> list[bytes]:
    """The bytes each token of `text` decodes to, in order (a segmentation to show side by side)."""
    return [tok.decode([i]) for i in tok.encode(text)]


def code_counts(tok: Tokenizer, text: bytes) -> list[int]:
    """How often each id occurs in the encoding of `text`, most used first (zeros included)."""
    counts = [0] * tok.vocab_size
    for i in tok.encode(text):
        counts[i] += 1
    return sorted(counts, reverse=True)


def specs_for(kinds, sizes) -> list[str]:
    return [k if k == "byte" else f"{k}:{n}" for k in kinds for n in ([None] if k == "byte" else sizes)]


def compare(corpus: Corpus, specs: list[str], train_kwargs: dict | None = None, callback=None,
            context: VqContextSizes | None = None) -> list[dict]:
    """Train each spec on corpus.train, measure on corpus.val; one dict per tokenizer (and VQ lossy; with
    `context`, the profile's vq_context sizes, VQ lossy decoded in context too).
    Returns the rows; the trained tokenizers ride along under "tokenizer" (dropped from reports)."""
    from neuro_lib.tokenizers.vq_context import ContextConfig, train_context_decoder

    rows = []
    for spec in specs:
        kind, _ = parse_spec(spec)
        t0 = time.perf_counter()
        tok = train_tokenizer(spec, corpus.train, **(train_kwargs or {}).get(kind, {}))
        train_s = time.perf_counter() - t0
        variants = [(tok, "")] + ([(tok.lossy(), " lossy")] if kind == "vq" else [])
        if kind == "vq" and context:
            ctx = train_context_decoder(tok, corpus.train, config=ContextConfig(**context.context),
                                        train=context.train)
            variants.append((tok.contextual(ctx), " context"))
        for t, suffix in variants:
            row = {"name": spec + suffix, "kind": kind, "mode": suffix.strip() or "default",
                   "train_s": train_s, **measure(t, corpus.val), "tokenizer": t}
            rows.append(row)
            if callback:
                callback(row)
    return rows


def lm_rows(rows: list[dict], corpus: Corpus, profile: Profile, budget: dict, seed: int = 1337) -> list[dict]:
    """A GPT (the profile's sizes) trained on each row's tokenizer under the same budget -> result rows."""
    from neuro_lib.train.lm import train_lm

    out = []
    for r in rows:
        res = train_lm("gpt", corpus, tokenizer=r["tokenizer"], profile=profile,
                       train_overrides={**budget, "seed": seed})
        print(f"[bench tokenizers] LM on {r['name']}: {res.val_bpb:.4f} bpb", flush=True)
        out += [{"name": f"lm on {r['name']} val bpb", "value": round(res.val_bpb, 4), "unit": "bits/byte",
                 "tokenizer": r["name"]},
                {"name": f"lm on {r['name']} steps", "value": max(h["step"] for h in res.history), "unit": "steps",
                 "tokenizer": r["name"]},
                {"name": f"lm on {r['name']} train time", "value": round(res.train_seconds, 1), "unit": "s",
                 "tokenizer": r["name"]}]
    return out


UNITS = {"bytes_per_token": "bytes/token", "doc_roundtrip": "fraction", "byte_roundtrip": "fraction",
         "byte_fidelity": "fraction", "encode_mb_s": "MB/s", "decode_mb_s": "MB/s", "vocab_usage": "fraction",
         "unk_rate": "fraction", "escape_rate": "fraction", "train_s": "s", "vocab_size": "ids"}


def add_arguments(p):
    p.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs or text:PATH")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated tokenizer kinds")
    p.add_argument("--sizes", default="", help="comma-separated vocabulary sizes (default: the profile's)")
    p.add_argument("--profile", default="bench", help="sizes and VQ training steps from profiles.py")
    p.add_argument("--vq-steps", type=int, default=0, help="VQ training steps (0 = the profile's)")
    p.add_argument("--context", action="store_true", help="also decode VQ lossy codes with the contextual decoder")
    p.add_argument("--lm-steps", type=int, default=0, help="train a GPT on each tokenizer for this many steps")
    p.add_argument("--lm-budget", type=float, default=0.0, help="... or for this many seconds (equal wall-clock)")
    add_threads(p)


def run(args) -> dict:
    from neuro_lib.bench.report import make_report

    prof = get_profile(args.profile)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise NeuroError(f"unknown tokenizer kind(s) {unknown}; choose from {list(KINDS)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(prof.tokenizer_vocab)
    except ValueError:
        raise NeuroError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
    if args.lm_steps < 0 or args.lm_budget < 0 or (args.lm_steps and args.lm_budget):
        raise NeuroError("give at most one of --lm-steps and --lm-budget, non-negative")
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus)
    ctx = prof.tasks.vq_context if args.context else None
    train_kwargs = {k: dict(v) for k, v in prof.tokenizers.get("train", {}).items()}
    if args.vq_steps:
        vq = train_kwargs.setdefault("vq", {})
        vq["train"] = {**vq.get("train", {}), "steps": args.vq_steps}
    rows = compare(corpus, specs_for(kinds, sizes), train_kwargs, context=ctx,
                   callback=lambda r: print(f"[bench tokenizers] {r['name']}: {r['bytes_per_token']:.3f} bytes/token, "
                                            f"fidelity {r['byte_fidelity']:.4f}", flush=True))
    results = [{"name": f"{r['name']} {metric}", "value": round(float(r[metric]), 4), "unit": unit,
                "tokenizer": r["name"]}
               for r in rows for metric, unit in UNITS.items() if metric in r]
    if args.lm_steps or args.lm_budget:
        results += lm_rows([r for r in rows if r["mode"] == "default"], corpus, prof,
                           {"max_steps": args.lm_steps} if args.lm_steps else {"time_budget_s": args.lm_budget})
    config = {"corpus": args.corpus, "corpus_bytes": len(corpus.data), "val_bytes": len(corpus.val),
              "kinds": kinds, "sizes": sizes, "profile": args.profile, "train": train_kwargs,
              "torch_threads": torch.get_num_threads(), "context": asdict(ctx) if ctx else None,
              "lm": ({"steps": args.lm_steps} if args.lm_steps else {"budget_s": args.lm_budget}
                     if args.lm_budget else None)}
    return make_report("tokenizers", config, results)
