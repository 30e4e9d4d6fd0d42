"""`neuro bench rnk`: RNK trained on synthetic chat, measured on held-out templates.

    neuro bench rnk --profile smoke --ablations --json

Head metrics come from one teacher-forced pass over `n_eval` held-out examples: intent
accuracy (7 classes, read at the last prompt chunk), answerable F1 (positive class:
answerable) and stop accuracy (per chunk, threshold 0.5). Reply metrics come from greedy
chat decoding (infer/chat.py) of `n_decode` held-out prompts: exact match on math and on
fact replies (intents question and fact), math result accuracy (the number after "="
is right), and the refusal rate on unanswerable questions (reply starts "I do not know").
With --ablations the same budget trains no_hrm, no_refiner and no_contrastive variants.

The plan test (`--plan-test`, sizes from profiles.py tasks.rnk_plan) asks whether the planner is
read at all: RNK with the plan-only decoder (models/rnk.py), full vs no_hrm vs no_contrastive, over
several seeds at equal steps (or at equal wall-clock with --time-budget), no reply decoding. Beside
the head metrics it records the held-out reply bits per byte with the plan and with every chunk's
plan replaced by the start state (`plan_gain` = the difference: > 0 means the decoder reads the plan),
then mean and spread (population std over seeds) per variant.

    neuro bench rnk --plan-test --profile bench --out data/reference/rnk_plan.json
    neuro bench rnk --plan-test --profile bench --time-budget 60 --threads 1    # equal wall-clock (quiet machine)
"""
from __future__ import annotations

import math
import re
import statistics
import time

import torch

from neuro_lib.data.chat import INTENTS, collate_chat, generate_chat
from neuro_lib.errors import NeuroError
from neuro_lib.infer.chat import chat_reply
from neuro_lib.models.base import masked_cross_entropy
from neuro_lib.profiles import Profile, RnkChatSizes, RnkPlanSizes, get_profile
from neuro_lib.train.chat import train_rnk
from neuro_lib.bench.flags import add_seed, add_threads

ABLATIONS = {"full": {}, "no_hrm": {"use_hrm": False}, "no_refiner": {"use_refiner": False},
             "no_contrastive": {"w_contrastive": 0.0}}
REFUSAL_PREFIX = "I do not know"


def _f1(pred: torch.Tensor, gold: torch.Tensor) -> float:
    tp = (pred & gold).sum().item()
    fp, fn = (pred & ~gold).sum().item(), (~pred & gold).sum().item()
    return 2 * tp / max(2 * tp + fp + fn, 1)


@torch.no_grad()
def head_metrics(model, examples) -> dict:
    """Intent accuracy, answerable F1 and stop accuracy from one teacher-forced pass."""
    model.eval()
    batch = collate_chat(examples, model.config.chunk_len)
    _, heads = model.forward_aux(batch["tokens"])
    rows, pc = torch.arange(len(examples)), batch["prompt_chunk"]
    intent_pred = heads["intent"][rows, pc].argmax(-1)
    ans_pred = heads["answerable"][rows, pc] > 0
    stop_pred = (heads["stop"] > 0).float()
    m = batch["stop_mask"].bool()
    return {"intent_acc": (intent_pred == batch["intent"]).float().mean().item(),
            "answerable_f1": _f1(ans_pred, batch["answerable"].bool()),
            "stop_acc": (stop_pred[m] == batch["stop_target"][m]).float().mean().item()}


@torch.no_grad()
def plan_metrics(model, examples) -> dict:
    """Held-out reply bits per byte with the plan and with it dropped (teacher forced), and their gap."""
    model.eval()
    batch = collate_chat(examples, model.config.chunk_len)
    bpb = {}
    for key, drop in (("reply_bpb", False), ("reply_bpb_no_plan", True)):
        logits, _ = model.forward_aux(batch["tokens"], drop_plan=drop)
        bpb[key] = masked_cross_entropy(logits, batch["targets"], batch["loss_mask"]).item() / math.log(2)
    return {**bpb, "plan_gain": bpb["reply_bpb_no_plan"] - bpb["reply_bpb"]}


def reply_metrics(model, examples) -> tuple[dict, list[dict]]:
    """Exact match on math and fact replies, math result accuracy, refusal rate on unanswerable prompts."""
    rows = []
    for e in examples:
        r = chat_reply(model, e.user)
        rows.append({"user": e.user, "expected": e.reply, "reply": r["reply"], "intent_gold": e.intent,
                     "intent_pred": r["intent"], "answerable": r["answerable"], "calculator": r["calculator"]})

    def rate(sel, ok):
        sel = [r for r in rows if sel(r)]
        return sum(ok(r) for r in sel) / len(sel) if sel else float("nan")

    def result(text):
        m = re.search(r"=\s*(-?\d+)", text)
        return m.group(1) if m else None

    return {"math_exact": rate(lambda r: r["intent_gold"] == "math", lambda r: r["reply"] == r["expected"]),
            "math_result_acc": rate(lambda r: r["intent_gold"] == "math",
                                    lambda r: result(r["reply"]) is not None
                                    and result(r["reply"]) == result(r["expected"])),
            "fact_exact": rate(lambda r: r["intent_gold"] in ("question", "fact"),
                               lambda r: r["reply"] == r["expected"]),
            "refusal_rate_unanswerable": rate(lambda r: r["intent_gold"] == "refusal",
                                              lambda r: r["reply"].startswith(REFUSAL_PREFIX)),
            "false_refusal_rate": rate(lambda r: r["intent_gold"] != "refusal",
                                       lambda r: r["reply"].startswith(REFUSAL_PREFIX))}, rows


def evaluate_rnk(model, sizes: RnkChatSizes, seed: int = 1, n_eval: int = 0, n_decode: int = 0):
    """All metrics on held-out templates -> (metrics, decoded rows). n_eval prompts for the heads and
    the first n_decode of them decoded (0 = the profile's sizes)."""
    held = generate_chat(n_eval or sizes.n_eval, seed=seed, split="heldout")
    decode = held[: n_decode or sizes.n_decode]
    replies, rows = reply_metrics(model, decode)
    return {**head_metrics(model, held), **replies}, rows


def run_variants(variants, profile: Profile, steps: int | None = None, seed: int = 0, callback=None,
                 n_eval: int = 0, n_decode: int = 0, overrides: dict | None = None,
                 time_budget_s: float | None = None, replies: bool = True) -> dict:
    """Train each named ablation at the same budget (steps, or seconds with time_budget_s), `overrides`
    on top of each (e.g. the decoder) -> {name: {"metrics", "history", "rows", "model", ...}}.
    replies=False skips chat decoding and adds the plan metrics instead."""
    out = {}
    for name in variants:
        if name not in ABLATIONS:
            raise NeuroError(f"unknown RNK variant {name!r}; choose from {sorted(ABLATIONS)}")
        t0 = time.time()
        res = train_rnk(profile, overrides={**(overrides or {}), **ABLATIONS[name]}, steps=steps, seed=seed,
                        callback=(lambda rec, n=name: callback(n, rec)) if callback else None,
                        time_budget_s=time_budget_s, eval_every=10 ** 9 if not replies else 50)
        train_s = time.time() - t0
        if replies:
            metrics, rows = evaluate_rnk(res.model, profile.tasks.rnk_chat, seed=seed + 1, n_eval=n_eval,
                                         n_decode=n_decode)
        else:
            held = generate_chat(n_eval or profile.tasks.rnk_chat.n_eval, seed=seed + 1, split="heldout")
            metrics, rows = {**head_metrics(res.model, held), **plan_metrics(res.model, held)}, []
        steps_done = max((r.get("step", 0) for r in res.history), default=0)
        out[name] = {"metrics": metrics, "history": res.history, "rows": rows, "model": res.model,
                     "train_s": train_s, "params": res.model.num_params(), "steps": steps_done}
    return out


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.rnk_chat)")
    p.add_argument("--steps", type=int, default=0, help="optimiser steps per variant (0 = the profile's)")
    p.add_argument("--ablations", action="store_true", help="also train no_hrm, no_refiner, no_contrastive")
    p.add_argument("--n-eval", type=int, default=0, help="held-out prompts for the head metrics (0 = profile's)")
    p.add_argument("--n-decode", type=int, default=0, help="of those, prompts decoded for reply metrics")
    p.add_argument("--plan-test", action="store_true",
                   help="plan-only decoder, full vs no_hrm vs no_contrastive over seeds (profiles.py tasks.rnk_plan)")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="with --plan-test: seconds of training per arm instead of steps (equal wall-clock)")
    add_threads(p)
    add_seed(p, 0)


def run(args) -> dict:
    from neuro_lib.bench.report import make_report

    if min(args.steps, args.n_eval, args.n_decode, args.time_budget) < 0:
        raise NeuroError("--steps, --n-eval, --n-decode and --time-budget must be non-negative")
    if args.time_budget and not args.plan_test:
        raise NeuroError("--time-budget goes with --plan-test")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    if args.plan_test:
        return run_plan_test(args, profile)
    variants = list(ABLATIONS) if args.ablations else ["full"]
    res = run_variants(variants, profile, args.steps or None, args.seed, n_eval=args.n_eval,
                       n_decode=args.n_decode)
    results = []
    for name, r in res.items():
        units = {"acc": "fraction", "f1": "F1", "exact": "fraction", "rate": "fraction"}
        for k, v in r["metrics"].items():
            unit = next((u for key, u in units.items() if key in k), "")
            results.append({"name": f"{name} {k}", "value": round(v, 4), "unit": unit})
        results.append({"name": f"{name} params", "value": r["params"], "unit": "params"})
        results.append({"name": f"{name} train time", "value": round(r["train_s"], 1), "unit": "s"})
    sizes = profile.tasks.rnk_chat
    config = {"profile": args.profile, "steps": args.steps or sizes.steps, "seed": args.seed,
              "n_eval": args.n_eval or sizes.n_eval, "n_decode": args.n_decode or sizes.n_decode,
              "variants": variants, "intents": list(INTENTS), "eval": "held-out templates"}
    return make_report("rnk", config, results)


def run_plan_test(args, profile: Profile) -> dict:
    """The plan test: per seed and variant the head and plan metrics, then mean and spread per variant."""
    from neuro_lib.bench.report import make_report

    sizes: RnkPlanSizes = profile.tasks.rnk_plan
    steps = args.steps or sizes.steps
    n_eval = args.n_eval or sizes.n_eval
    budget = args.time_budget or None
    per_seed = {}
    for seed in sizes.seeds:
        res = run_variants(sizes.variants, profile, None if budget else steps, seed, n_eval=n_eval,
                           overrides=sizes.model, time_budget_s=budget, replies=False)
        per_seed[seed] = res
        for name, r in res.items():
            print(f"[bench rnk] seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["metrics"].items()),
                  flush=True)
    results = []
    units = {"intent_acc": "fraction", "answerable_f1": "F1", "stop_acc": "fraction", "reply_bpb": "bpb",
             "reply_bpb_no_plan": "bpb", "plan_gain": "bpb"}
    for name in sizes.variants:
        for k, unit in units.items():
            vals = [per_seed[s][name]["metrics"][k] for s in sizes.seeds]
            mean, sd = spread(vals)
            results.append({"name": f"{name} {k} mean", "value": round(mean, 4), "unit": unit})
            results.append({"name": f"{name} {k} std", "value": round(sd, 4), "unit": unit})
            results += [{"name": f"{name} {k} seed{s}", "value": round(v, 4), "unit": unit}
                        for s, v in zip(sizes.seeds, vals)]
        results.append({"name": f"{name} steps mean",
                        "value": round(spread([per_seed[s][name]["steps"] for s in sizes.seeds])[0], 1),
                        "unit": "steps"})
        results.append({"name": f"{name} train time mean",
                        "value": round(spread([per_seed[s][name]["train_s"] for s in sizes.seeds])[0], 1),
                        "unit": "s"})
        results.append({"name": f"{name} params", "value": per_seed[sizes.seeds[0]][name]["params"],
                        "unit": "params"})
    config = {"profile": args.profile, "mode": "plan test", "budget": f"{budget} s" if budget else f"{steps} steps",
              "seeds": sizes.seeds, "n_eval": n_eval, "variants": sizes.variants, "model": sizes.model,
              "chance_intent": round(1 / len(INTENTS), 4), "eval": "held-out templates",
              "torch_threads": torch.get_num_threads()}
    return make_report("rnk", config, results)
