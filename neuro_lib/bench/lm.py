"""`neuro bench lm`: train from scratch for a wall-clock budget, report val bpb.

    neuro bench lm --arch gpt --corpus text:FILE --time-budget 200 --json

Results: validation bits per byte (DESIGN.md), training tokens/s (median step),
parameter count, and on the same split the conditional bpb of gzip -9, bz2 -9 and
xz -9e (bench/compressors.py) as anchors. Sizes come from the `bench` profile.
"""
from __future__ import annotations

import torch

from neuro_lib.bench.compressors import compressor_anchors
from neuro_lib.bench.report import make_report
from neuro_lib.data.corpus import load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.train.lm import train_lm
from neuro_lib.bench.flags import add_seed, add_threads


def add_arguments(p):
    p.add_argument("--arch", default="gpt", help="model architecture (see `neuro doctor`)")
    p.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs or text:PATH")
    p.add_argument("--tokenizer", default="byte", help="tokenizer spec: byte, bpe:4096, ...")
    p.add_argument("--time-budget", type=float, default=200.0, help="training seconds")
    p.add_argument("--profile", default="bench", help="sizes from profiles.py")
    add_threads(p)
    add_seed(p, 1337)
    p.add_argument("--no-anchors", action="store_true", help="skip the compressor anchors")


def run(args) -> dict:
    if not 0 < args.time_budget < float("inf"):  # also nan
        raise NeuroError(f"--time-budget must be positive, got {args.time_budget}")
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = load_corpus(args.corpus)
    res = train_lm(args.arch, corpus, tokenizer=args.tokenizer, profile=args.profile,
                   train_overrides={"time_budget_s": args.time_budget, "seed": args.seed})
    results = [
        {"name": f"{args.arch} val bpb", "value": round(res.val_bpb, 4), "unit": "bits/byte"},
        {"name": f"{args.arch} train tokens/s", "value": round(res.tokens_per_s), "unit": "tokens/s"},
        {"name": f"{args.arch} params", "value": res.model.num_params(), "unit": "params"},
        {"name": f"{args.arch} steps", "value": max(r["step"] for r in res.history), "unit": "steps"},
        {"name": f"{args.arch} train time", "value": round(res.train_seconds, 1), "unit": "s"},
    ]
    if not args.no_anchors:
        for name, bpb in compressor_anchors(corpus.train, corpus.val).items():
            results.append({"name": f"{name} (given train)", "value": round(bpb, 4), "unit": "bits/byte"})
    config = {"arch": args.arch, "corpus": args.corpus, "corpus_bytes": len(corpus.data), "tokenizer": args.tokenizer,
              "time_budget_s": args.time_budget, "profile": args.profile, "seed": args.seed,
              "model": {k: v for k, v in vars(res.model.config).items()}}
    return make_report("lm", config, results)
