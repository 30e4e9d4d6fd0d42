"""`neuro bench lm`: train from scratch for a wall-clock (or step) budget, report val bpb.

    neuro bench lm --arch gpt --corpus shakespeare --time-budget 200 --json
    neuro bench lm --arch gpt@muon+qknorm,gpt,nanogpt --corpus shakespeare --time-budget 200 --threads 2

Each arm of `--arch` is ARCH or ARCH@RECIPE (train/recipe.py); the arms train one after the other in one
process, same corpus, tokenizer, seed and budget, so a recipe and the nanoGPT-equivalent baseline
(models/nanogpt.py) are timed side by side. `--max-steps N` trains N steps instead (equal-step quality
screens, independent of machine load). Results per arm: validation bits per byte (DESIGN.md), training
tokens/s (median step), parameters, steps, training seconds; and on the same split the conditional bpb
of gzip -9, bz2 -9 and xz -9e (bench/compressors.py) as anchors. Sizes come from the `bench` profile.
"""
from __future__ import annotations

import torch

from neuro_lib.bench.compressors import compressor_anchors
from neuro_lib.bench.report import make_report
from neuro_lib.data.corpus import load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import get_profile
from neuro_lib.train.lm import train_lm
from neuro_lib.train.recipe import resolve_recipe
from neuro_lib.bench.flags import add_seed, add_threads


def add_arguments(p):
    p.add_argument("--arch", default="gpt",
                   help="comma-separated arms ARCH[@RECIPE], e.g. gpt@muon+qknorm,nanogpt (see train/recipe.py)")
    p.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs, shakespeare or text:PATH")
    p.add_argument("--tokenizer", default="byte", help="tokenizer spec: byte, bpe:4096, ...")
    p.add_argument("--time-budget", type=float, default=200.0, help="training seconds per arm")
    p.add_argument("--max-steps", type=int, default=0, help="train this many steps per arm instead (0 = use seconds)")
    p.add_argument("--eval-bytes", type=int, default=None,
                   help="validation bytes scored (default: the profile's; 0 = the whole split)")
    p.add_argument("--eval-every", type=int, default=None, help="steps between validations (0 = only at the end)")
    p.add_argument("--profile", default="bench", help="sizes from profiles.py")
    add_threads(p)
    add_seed(p, 1337)
    p.add_argument("--no-anchors", action="store_true", help="skip the compressor anchors")


def parse_arms(text: str) -> list[tuple[str, str]]:
    """'gpt@muon,nanogpt' -> [("gpt", "muon"), ("nanogpt", "current")]; recipes are checked here."""
    arms = []
    for item in text.split(","):
        arch, _, recipe = item.strip().partition("@")
        if not arch:
            raise NeuroError(f"--arch has an empty arm in {text!r}")
        resolve_recipe(recipe or "current")
        arms.append((arch, recipe or "current"))
    return arms


def run(args) -> dict:
    if not 0 < args.time_budget < float("inf"):  # also nan
        raise NeuroError(f"--time-budget must be positive, got {args.time_budget}")
    if args.max_steps < 0:
        raise NeuroError(f"--max-steps must not be negative, got {args.max_steps}")
    for flag in ("eval_bytes", "eval_every"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            raise NeuroError(f"--{flag.replace('_', '-')} must not be negative, got {getattr(args, flag)}")
    arms = parse_arms(args.arch)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    corpus = load_corpus(args.corpus)
    budget = {"max_steps": args.max_steps, "time_budget_s": 0} if args.max_steps else {"time_budget_s": args.time_budget}
    budget.update({k: getattr(args, k) for k in ("eval_bytes", "eval_every") if getattr(args, k) is not None})
    results, models = [], {}
    for arch, recipe in arms:
        name = arch if recipe == "current" else f"{arch}@{recipe}"
        model_over, train_over = resolve_recipe(recipe)
        res = train_lm(arch, corpus, tokenizer=args.tokenizer, profile=profile, model_overrides=model_over,
                       train_overrides={**train_over, **budget, "seed": args.seed})
        results += [
            {"name": f"{name} val bpb", "value": round(res.val_bpb, 4), "unit": "bits/byte"},
            {"name": f"{name} train tokens/s", "value": round(res.tokens_per_s), "unit": "tokens/s"},
            {"name": f"{name} params", "value": res.model.num_params(), "unit": "params"},
            {"name": f"{name} steps", "value": max(r["step"] for r in res.history), "unit": "steps"},
            {"name": f"{name} train time", "value": round(res.train_seconds, 1), "unit": "s"},
        ]
        models[name] = {"arch": arch, "recipe": recipe, "model": dict(vars(res.model.config)), "train": train_over}
    if not args.no_anchors:
        for name, bpb in compressor_anchors(corpus.train, corpus.val).items():
            results.append({"name": f"{name} (given train)", "value": round(bpb, 4), "unit": "bits/byte"})
    config = {"arch": args.arch, "corpus": args.corpus, "corpus_bytes": len(corpus.data), "tokenizer": args.tokenizer,
              "time_budget_s": 0 if args.max_steps else args.time_budget, "max_steps": args.max_steps,
              "profile": args.profile, "seed": args.seed, "eval_bytes": args.eval_bytes, "threads": torch.get_num_threads(), "arms": models}
    return make_report("lm", config, results)
