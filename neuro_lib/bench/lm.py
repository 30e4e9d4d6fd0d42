"""`neuro bench lm`: train from scratch for a wall-clock (or step) budget, report val bpb; the architecture shoot-out.

    neuro bench lm --arch gpt --corpus shakespeare --time-budget 200 --json
    neuro bench lm --arch gpt@muon+qknorm,gpt,nanogpt --corpus shakespeare --time-budget 200 --threads 2
    neuro bench lm --arch gpt@best,gpt,aeron,mamba,rnk,nanogpt --corpus stdlib-docs,shakespeare,stdlib-src \\
        --sizes matched --time-budget 60 --threads 2          # the shoot-out (notebook 02)

Each arm of `--arch` is ARCH or ARCH@RECIPE (train/recipe.py); the arms train one after the other in one
process, same corpus, tokenizer, seed and budget, so a recipe and the nanoGPT-equivalent baseline
(models/nanogpt.py) are timed side by side. `--corpus` takes several corpora (each arm trains on each); a corpus
named in the profile's `tasks.shootout.corpus_bytes` is cut to that many first bytes before its split.
`--max-steps N` trains N steps instead (equal-step quality screens, independent of machine load). `--sizes
matched` trains every arch at the profile's sizes with `tasks.shootout.matched` on top: parameter counts equal to
the GPT's within 10 % (equal parameters); `profile` (the default) keeps each arch's own tuned size.

Results per arm and corpus: validation bits per byte (DESIGN.md), training tokens/s (median step), parameters,
steps, training seconds, and training FLOPs (one step measured by bench/flops.py, times the steps); and per
corpus the conditional bpb of gzip -9, bz2 -9 and xz -9e (bench/compressors.py) as anchors. With one corpus
the rows are named "ARM val bpb" as before; with several, "CORPUS ARM val bpb"; every row also carries `corpus`
and `arm` fields. The report's extra key `curves` holds each arm's validation curve: lists `step`, `seconds`
(training seconds), `flops` and `val_bpb`, from `curve_points` validations spread over the budget (by seconds
under a time budget, by steps under `--max-steps`) unless `--eval-every` sets a step interval.
Sizes come from the `bench` profile.
"""
from __future__ import annotations

import torch

from neuro_lib.bench.compressors import compressor_anchors
from neuro_lib.bench.flags import add_seed, add_threads
from neuro_lib.bench.flops import train_step_flops
from neuro_lib.bench.report import make_report
from neuro_lib.data.corpus import load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import Profile, get_profile
from neuro_lib.train.lm import train_lm
from neuro_lib.train.recipe import resolve_recipe

SIZES = ("profile", "matched")


def add_arguments(p):
    p.add_argument("--arch", default="gpt",
                   help="comma-separated arms ARCH[@RECIPE], e.g. gpt@muon+qknorm,nanogpt (see train/recipe.py)")
    p.add_argument("--corpus", default="stdlib-docs",
                   help="comma-separated corpora: stdlib-docs, stdlib-src, shakespeare or text:PATH")
    p.add_argument("--sizes", default="profile", choices=SIZES,
                   help="profile: each arch's own size; matched: equal parameters (profiles.py tasks.shootout.matched)")
    p.add_argument("--tokenizer", default="byte", help="tokenizer spec: byte, bpe:4096, ...")
    p.add_argument("--time-budget", type=float, default=200.0, help="training seconds per arm")
    p.add_argument("--max-steps", type=int, default=0, help="train this many steps per arm instead (0 = use seconds)")
    p.add_argument("--eval-bytes", type=int, default=None,
                   help="validation bytes scored (default: the profile's; 0 = the whole split)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between validations (0 = only at the end; default: --curve-points over the budget)")
    p.add_argument("--curve-points", type=int, default=None,
                   help="validations spread over each arm's budget (default: the profile's tasks.shootout)")
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


def parse_corpora(text: str) -> list[str]:
    corpora = [c.strip() for c in text.split(",")]
    if not all(corpora):
        raise NeuroError(f"--corpus has an empty entry in {text!r}")
    if len(set(corpora)) < len(corpora):
        raise NeuroError(f"--corpus names a corpus twice in {text!r}")
    return corpora


def eval_schedule(time_budget: float, max_steps: int, eval_every: int | None, points: int) -> dict:
    """Training-config overrides that place the validations: `eval_every` steps when given, else `points`
    validations spread evenly over the budget (the last one is the final validation)."""
    if eval_every is not None:
        return {"eval_every": eval_every}
    if max_steps:
        return {"eval_every": max(1, max_steps // points)}
    return {"eval_every": 0, "eval_every_s": time_budget / points}


def curve(history: list, step_flops: int) -> dict:
    """The validation records of a run as parallel lists: step, training seconds, FLOPs, val bpb."""
    vals = [r for r in history if r.get("kind") == "val"]
    return {"step": [r["step"] for r in vals], "seconds": [r["elapsed_s"] for r in vals],
            "flops": [r["step"] * step_flops for r in vals], "val_bpb": [round(r["val_bpb"], 4) for r in vals]}


def compare(arch: str, corpora: list[str], profile: Profile, *, tokenizer: str = "byte", sizes: str = "profile",
            time_budget: float = 200.0, max_steps: int = 0, eval_bytes: int | None = None,
            eval_every: int | None = None, curve_points: int | None = None, seed: int = 1337, anchors: bool = True,
            callback=None) -> dict:
    """Train every arm of `arch` (ARCH[@RECIPE],...) on every corpus under one budget; the bench report.
    `callback(corpus, arm, record)` sees each training record (a notebook's live progress)."""
    arms = parse_arms(arch)
    if sizes not in SIZES:
        raise NeuroError(f"sizes must be one of {', '.join(SIZES)}, got {sizes!r}")
    section = profile.tasks.shootout
    points = section.curve_points if curve_points is None else curve_points
    if points < 1:
        raise NeuroError(f"curve points must be at least 1, got {points}")
    budget = {"max_steps": max_steps, "time_budget_s": 0} if max_steps else {"time_budget_s": time_budget}
    budget.update(eval_schedule(time_budget, max_steps, eval_every, points))
    if eval_bytes is not None:
        budget["eval_bytes"] = eval_bytes
    data = {c: load_corpus(c, section.corpus_bytes.get(c, 0)) for c in corpora}  # every corpus checked first
    results, arm_configs, curves = [], {}, []
    for spec, corpus in data.items():
        prefix = f"{spec} " if len(corpora) > 1 else ""
        for arch_name, recipe in arms:
            name = arch_name if recipe == "current" else f"{arch_name}@{recipe}"
            model_over, train_over = resolve_recipe(recipe)
            if sizes == "matched":
                model_over = {**section.matched.get(arch_name, {}), **model_over}
            hook = (lambda rec, s=spec, n=name: callback(s, n, rec)) if callback else None
            res = train_lm(arch_name, corpus, tokenizer=tokenizer, profile=profile, model_overrides=model_over,
                           train_overrides={**train_over, **budget, "seed": seed}, callback=hook)
            steps = max(r["step"] for r in res.history)
            step_flops = train_step_flops(res.model, res.config)["total"]
            tag = {"corpus": spec, "arm": name}
            results += [
                {"name": f"{prefix}{name} val bpb", "value": round(res.val_bpb, 4), "unit": "bits/byte", **tag},
                {"name": f"{prefix}{name} train tokens/s", "value": round(res.tokens_per_s), "unit": "tokens/s", **tag},
                {"name": f"{prefix}{name} params", "value": res.model.num_params(), "unit": "params", **tag},
                {"name": f"{prefix}{name} steps", "value": steps, "unit": "steps", **tag},
                {"name": f"{prefix}{name} train time", "value": round(res.train_seconds, 1), "unit": "s", **tag},
                {"name": f"{prefix}{name} train FLOPs", "value": step_flops * steps, "unit": "FLOPs", **tag},
            ]
            curves.append({**tag, **curve(res.history, step_flops)})
            arm_configs[f"{prefix}{name}"] = {"arch": arch_name, "recipe": recipe, "model": dict(vars(res.model.config)),
                                              "train": train_over, "step_flops": step_flops}
        if anchors:
            for comp, bpb in compressor_anchors(corpus.train, corpus.val).items():
                results.append({"name": f"{prefix}{comp} (given train)", "value": round(bpb, 4), "unit": "bits/byte",
                                "corpus": spec, "arm": comp})
    config = {"arch": arch, "corpus": ",".join(corpora), "corpus_bytes": {c: len(d.data) for c, d in data.items()},
              "corpus_sha256": {c: d.sha256 for c, d in data.items()}, "sizes": sizes, "tokenizer": tokenizer,
              "time_budget_s": 0 if max_steps else time_budget, "max_steps": max_steps, "profile": profile.name,
              "seed": seed, "eval_bytes": eval_bytes, "eval_every": eval_every, "curve_points": points,
              "threads": torch.get_num_threads(), "arms": arm_configs}
    report = make_report("lm", config, results)
    report["curves"] = curves
    return report


def command_line(args) -> str:
    """The command that reproduces this run (kept in the report's config; shown beside recorded figures)."""
    parts = ["neuro bench lm", f"--arch {args.arch}", f"--corpus {args.corpus}", f"--sizes {args.sizes}"]
    if args.tokenizer != "byte":
        parts.append(f"--tokenizer {args.tokenizer}")
    parts.append(f"--max-steps {args.max_steps}" if args.max_steps else f"--time-budget {args.time_budget:g}")
    for flag in ("eval_bytes", "eval_every", "curve_points"):
        if getattr(args, flag) is not None:
            parts.append(f"--{flag.replace('_', '-')} {getattr(args, flag)}")
    parts += [f"--profile {args.profile}", f"--threads {args.threads}", f"--seed {args.seed}"]
    if args.no_anchors:
        parts.append("--no-anchors")
    return " ".join(parts)


def run(args) -> dict:
    if not 0 < args.time_budget < float("inf"):  # also nan
        raise NeuroError(f"--time-budget must be positive, got {args.time_budget}")
    if args.max_steps < 0:
        raise NeuroError(f"--max-steps must not be negative, got {args.max_steps}")
    for flag in ("eval_bytes", "eval_every"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            raise NeuroError(f"--{flag.replace('_', '-')} must not be negative, got {getattr(args, flag)}")
    if args.curve_points is not None and args.curve_points < 1:
        raise NeuroError(f"--curve-points must be at least 1, got {args.curve_points}")
    parse_arms(args.arch)
    corpora = parse_corpora(args.corpus)
    profile = get_profile(args.profile)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = compare(args.arch, corpora, profile, tokenizer=args.tokenizer, sizes=args.sizes,
                     time_budget=args.time_budget, max_steps=args.max_steps, eval_bytes=args.eval_bytes,
                     eval_every=args.eval_every, curve_points=args.curve_points, seed=args.seed,
                     anchors=not args.no_anchors)
    report["config"]["command"] = command_line(args)
    return report
