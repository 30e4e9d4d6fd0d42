"""`neuro bench speculative`: speculative decoding against plain cached greedy decoding of the same target.

    neuro bench speculative --profile bench --threads 2 --out data/reference/speculative_bench.json
    neuro bench speculative --target runs/big --draft runs/small          # trained runs, same tokenizer

Without --target, a target GPT and a draft GPT (sizes: profiles.py, tasks.speculative) are trained
inside the benchmark on the corpus for a number of optimiser steps (`target_steps`, `draft_steps`: the
same models on a loaded or a quiet machine; the seconds budgets `target_s`/`draft_s` are used only where
a profile gives no steps), the target with the training recipe `recipe` (train/recipe.py). Both are
scored on the validation split and the run fails in one sentence if the target is not `min_gap_bpb`
better than the draft: a target worse than its draft makes drafts easy and the speed-up meaningless.
Prompts are windows of the validation split, which neither model trained on. Greedy decoding
throughout, so every speculative output is checked token for token against the target's own greedy
output ("same tokens").

Per drafter (the draft model; the n-gram prompt-lookup drafter) and per gamma:
- alpha: accepted draft tokens / proposed;
- tokens/s of speculative decoding, of plain cached greedy decoding (measured once), the speed-up;
- c: the drafter's seconds per proposed token over the target's seconds per single-token step
  (both measured in this run), and the speed-up Leviathan et al.'s formula predicts from alpha,
  gamma and c (infer/speculative.py, `expected_speedup`), once with the verify call costing one step
  (the paper's assumption) and once with its measured cost;
- per gamma, "verify cost": the target's call on gamma + 1 tokens after the prompt, in single-token steps;
- the accepted count of every round at gamma 4 ("acceptance along a generation").
`--compile` adds plain greedy decoding through torch.compile(model.step): tokens/s, or the error.
Timing rows measure the machine: on a shared one they measure contention.
Models trained by steps are kept in data/cache/speculative (keyed by their sizes, recipe, corpus, seed and
steps; `--retrain` ignores the cache): the training can run on a loaded machine and the timing again alone,
and the report names the cached folders it used.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.data.corpus import load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.infer.drafters import ModelDrafter, NGramDrafter
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.infer.speculative import expected_speedup, speculative_generate
from neuro_lib.profiles import Profile, get_profile
from neuro_lib.bench.flags import add_seed, add_threads


def add_arguments(p):
    p.add_argument("--target", help="a trained run to use as the target (default: train one here)")
    p.add_argument("--draft", help="a trained run to draft with (default: train one here; with --target: none)")
    p.add_argument("--corpus", default="stdlib-docs", help="training corpus and prompt source")
    p.add_argument("--profile", default="bench", help="sizes from profiles.py (tasks.speculative)")
    p.add_argument("--gammas", default="", help="comma-separated draft lengths (default: the profile's)")
    p.add_argument("--new-tokens", type=int, default=0, help="tokens per prompt (default: the profile's)")
    p.add_argument("--compile", action="store_true", help="also time plain decoding through torch.compile")
    p.add_argument("--retrain", action="store_true", help="train the target and draft again, ignoring the cache")
    add_threads(p)
    add_seed(p, 1337)


def train_gpt(model_cfg: dict, seconds: float, window: int, corpus, profile: Profile, seed: int, steps: int = 0,
              recipe: str = "current"):
    """A byte GPT trained for `steps` optimiser steps (or, with steps 0, `seconds`) -> (model, tokenizer, val bpb)."""
    from neuro_lib.train.lm import train_lm
    from neuro_lib.train.recipe import resolve_recipe

    model_over, train_over = resolve_recipe(recipe)
    budget = {"max_steps": steps, "time_budget_s": 0} if steps else {"time_budget_s": seconds}
    res = train_lm("gpt", corpus, "byte", profile=profile, model_overrides={**model_cfg, **model_over},
                   train_overrides={**train_over, **budget, "block_size": window, "seed": seed, "eval_bytes": 20_000,
                                    "eval_every": 0})
    return res.model, res.tokenizer, res.val_bpb


def verify_seconds(engine: Engine, context: list[int], k: int, repeats: int = 8) -> float:
    """Seconds of one target call on k tokens after `context` (the verify step of a round with gamma = k - 1)."""
    state, logits = engine.prefill([context])
    start = state.lengths[0]
    ids = [[int(logits[0].argmax())] * k]
    engine.step(ids, state)  # one call outside the clock (allocation)
    t0 = time.perf_counter()
    for _ in range(repeats):
        state.rollback(start)
        engine.step(ids, state)
    return (time.perf_counter() - t0) / repeats


def cached_gpt(role: str, model_cfg: dict, window: int, corpus, profile: Profile, seed: int, steps: int,
               recipe: str = "current", retrain: bool = False):
    """train_gpt by steps, kept in data/cache/speculative -> (model, tokenizer, val bpb, cache folder name)."""
    from neuro_lib.checkpoint import POINTER, load_checkpoint, read_config, save_checkpoint
    from neuro_lib.data.corpus import CACHE_DIR
    from neuro_lib.train.pretrain import key_hash

    key = {"role": role, "model": model_cfg, "window": window, "corpus": corpus.spec,
           "corpus_sha256": corpus.sha256, "profile": profile.name, "seed": seed, "steps": steps, "recipe": recipe}
    run = CACHE_DIR / "speculative" / f"{role}-{profile.name}-{key_hash(key)[:16]}"
    if not retrain and (run / POINTER).exists() and read_config(run).get("speculative_key") == key:
        model, tok, cfg = load_checkpoint(run)
        return model, tok, cfg["val_bpb"], run.name
    model, tok, bpb = train_gpt(model_cfg, 0, window, corpus, profile, seed, steps, recipe)
    save_checkpoint(run, model, tok, extra={"speculative_key": key, "val_bpb": bpb})
    return model, tok, bpb, run.name


def _load(run: str):
    from neuro_lib.checkpoint import load_checkpoint

    model, tok, _ = load_checkpoint(run)
    return model, tok


def step_seconds(engine: Engine, context: list[int], steps: int = 32) -> float:
    """Seconds per single-token `step` after prefilling `context` (greedy, cached)."""
    state, logits = engine.prefill([context])
    t0 = time.perf_counter()
    for _ in range(steps):
        logits = engine.step([[int(logits[0].argmax())]], state)[:, -1]
    return (time.perf_counter() - t0) / steps


class Timed:
    """A drafter wrapper that adds up the seconds spent proposing and the tokens proposed."""

    def __init__(self, drafter):
        self.drafter, self.engine, self.seconds, self.tokens = drafter, getattr(drafter, "engine", None), 0.0, 0

    def propose(self, context, gamma, params, generator=None):
        t0 = time.perf_counter()
        out = self.drafter.propose(context, gamma, params, generator)
        self.seconds += time.perf_counter() - t0
        self.tokens += len(out[0])
        return out


def val_prompts(val: bytes, n: int, length: int) -> list[bytes]:
    """n prompts of `length` bytes spread evenly over the validation split."""
    stride = max(1, (len(val) - length) // n)
    return [val[i * stride: i * stride + length] for i in range(n)]


@torch.no_grad()
def measure(target, draft, tok, prompts: list[bytes], gammas: list[int], new_tokens: int,
            compile: bool = False) -> list[dict]:
    """Plain cached greedy vs speculative decoding with the draft model (if any) and the n-gram drafter."""
    params = Sampling(max_new_tokens=new_tokens, temperature=0)
    target.eval()

    plain = Engine(target, tok)
    t0 = time.perf_counter()
    reference = [plain.generate(p, params) for p in prompts]
    plain_tps = len(prompts) * new_tokens / (time.perf_counter() - t0)
    target_step = step_seconds(plain, plain.encode(prompts[0]))
    results = [{"name": "plain cached greedy", "value": round(plain_tps, 1), "unit": "tokens/s"},
               {"name": "target step", "value": round(1000 * target_step, 3), "unit": "ms"},
               {"name": "target params", "value": target.num_params(), "unit": "params"}]
    if draft is not None:
        results.append({"name": "draft params", "value": draft.num_params(), "unit": "params"})

    drafters = {"ngram": lambda: NGramDrafter()}
    if draft is not None:
        drafters["model"] = lambda: ModelDrafter(Engine(draft.eval(), tok))
    verify = {}
    for gamma in gammas:  # the verify call's cost in single-token steps, as a function of gamma
        verify[gamma] = verify_seconds(plain, plain.encode(prompts[0]), gamma + 1) / target_step
        results.append({"name": f"verify cost gamma={gamma}", "value": round(verify[gamma], 3), "unit": "steps",
                        "gamma": gamma})
    for name, make in drafters.items():
        for gamma in gammas:
            timed, texts, accepted, proposed, rounds = Timed(make()), [], 0, 0, []
            t0 = time.perf_counter()
            for p in prompts:
                text, stats = speculative_generate(Engine(target, tok), timed, p, params, gamma=gamma)
                texts.append(text)
                accepted, proposed = accepted + stats.accepted, proposed + stats.proposed
                rounds.append(stats.accepted_per_round)
            tps = len(prompts) * new_tokens / (time.perf_counter() - t0)
            alpha = accepted / proposed if proposed else 0.0
            c = (timed.seconds / timed.tokens) / target_step if timed.tokens else 0.0
            row = {"drafter": name, "gamma": gamma}
            results += [
                {"name": f"{name} gamma={gamma} alpha", "value": round(alpha, 4), "unit": "ratio", **row},
                {"name": f"{name} gamma={gamma} tokens/s", "value": round(tps, 1), "unit": "tokens/s", **row},
                {"name": f"{name} gamma={gamma} speed-up", "value": round(tps / plain_tps, 3), "unit": "x", **row},
                {"name": f"{name} gamma={gamma} c", "value": round(c, 4), "unit": "ratio", **row},
                {"name": f"{name} gamma={gamma} formula", "value": round(expected_speedup(alpha, gamma, c), 3),
                 "unit": "x", **row},
                {"name": f"{name} gamma={gamma} formula (measured verify)",
                 "value": round(expected_speedup(alpha, gamma, c, verify[gamma]), 3), "unit": "x", **row},
                {"name": f"{name} gamma={gamma} same tokens", "value": int(texts == reference), "unit": "bool",
                 **row}]
            if gamma == 4 or gamma == gammas[-1] and 4 not in gammas:
                results.append({"name": f"{name} gamma={gamma} accepted per round", "value": len(rounds[0]),
                                "unit": "rounds", "series": rounds[0], **row})
    if compile:
        try:
            eng = Engine(target, tok, compile=True)
            eng.generate(prompts[0], Sampling(max_new_tokens=4, temperature=0))  # compile outside the clock
            t0 = time.perf_counter()
            same = [eng.generate(p, params) for p in prompts] == reference
            results += [{"name": "compiled plain greedy", "value": round(len(prompts) * new_tokens /
                                                                         (time.perf_counter() - t0), 1),
                         "unit": "tokens/s"}, {"name": "compiled same tokens", "value": int(same), "unit": "bool"}]
        except Exception as e:  # a failing compiler is a result: report it
            results.append({"name": "compiled plain greedy", "value": None, "unit": "tokens/s",
                            "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
    return results


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    sizes = profile.tasks.speculative
    gammas = [int(g) for g in args.gammas.split(",") if g.strip()] if args.gammas else sizes.gammas
    if not gammas or min(gammas) < 1:
        raise NeuroError(f"every gamma must be at least 1, got {gammas}")
    new_tokens = args.new_tokens or sizes.new_tokens
    if new_tokens < 1:
        raise NeuroError(f"--new-tokens must be positive, got {new_tokens}")
    corpus = load_corpus(args.corpus)
    torch.manual_seed(args.seed)
    info, cache = {}, {}
    if args.target:
        target, tok = _load(args.target)
        draft = _load(args.draft) if args.draft else None
        if draft is not None and draft[1].spec != tok.spec:
            raise NeuroError(f"draft tokenizer {draft[1].spec!r} differs from the target's {tok.spec!r}")
        draft = draft[0] if draft else None
    else:
        if args.draft:
            raise NeuroError("--draft needs --target (without them both models are trained here)")
        if sizes.target_steps and sizes.draft_steps:
            target, tok, info["target_val_bpb"], cache["target"] = cached_gpt(
                "target", sizes.target, sizes.window, corpus, profile, args.seed, sizes.target_steps, sizes.recipe,
                args.retrain)
            draft, _, info["draft_val_bpb"], cache["draft"] = cached_gpt(
                "draft", sizes.draft, sizes.window, corpus, profile, args.seed, sizes.draft_steps, "current",
                args.retrain)
        else:  # a seconds budget gives a different model on every machine: never cached
            target, tok, info["target_val_bpb"] = train_gpt(sizes.target, sizes.target_s, sizes.window, corpus,
                                                         profile, args.seed, 0, sizes.recipe)
            draft, _, info["draft_val_bpb"] = train_gpt(sizes.draft, sizes.draft_s, sizes.window, corpus,
                                                     profile, args.seed, 0)
        gap = info["draft_val_bpb"] - info["target_val_bpb"]
        if gap < sizes.min_gap_bpb:
            raise NeuroError(f"the target ({info['target_val_bpb']:.3f} bpb) is not {sizes.min_gap_bpb} bpb better "
                             f"than the draft ({info['draft_val_bpb']:.3f}); train it longer (target_steps)")
    if target.max_len and sizes.prompt_bytes + new_tokens > target.max_len:
        raise NeuroError(f"prompt {sizes.prompt_bytes} + {new_tokens} new tokens exceed the target's context "
                         f"of {target.max_len}")
    prompts = val_prompts(corpus.val, sizes.prompts, sizes.prompt_bytes)
    results = [{"name": k, "value": round(v, 4), "unit": "bits/byte"} for k, v in info.items()]
    results += measure(target, draft, tok, prompts, gammas, new_tokens, args.compile)
    config = {"profile": args.profile, "corpus": args.corpus, "target": args.target or "trained here",
              "draft": args.draft or ("trained here" if not args.target else None), "gammas": gammas,
              "new_tokens": new_tokens, "prompts": len(prompts), "prompt_bytes": sizes.prompt_bytes,
              "threads": torch.get_num_threads(), "seed": args.seed, "cached_models": cache,
              "sizes": {k: v for k, v in asdict(sizes).items()
                        if k in ("target", "draft", "target_s", "draft_s", "window", "target_steps", "draft_steps",
                                 "recipe", "min_gap_bpb")}}
    return make_report("speculative", config, results)
