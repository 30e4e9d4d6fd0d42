"""`neuro bench family`: does the pretrained base help? Each task fine-tuned from the base and from scratch (the
same architecture at the same initialisation, untrained) with the same recipe and the same number of steps,
scored on held-out phrasing templates.

    neuro bench family --profile smoke --json
    neuro bench family --profile bench --threads 2 --out data/reference/family_bench.json
    neuro bench family --profile smoke --pretrain-steps 1500 --finetune-steps 300 --out data/reference/family_smoke.json

Scores (greedy decoding, the runtime's own experts; bench/expert_eval.py): reason, exact answer with the calculator
injected while decoding (also grounded: calc(...) numbers limited to the question's, and without the tool); code,
the program's sandboxed output equals the reference; struct, field accuracy and exact documents under the JSON
grammar, and grounded (names/values copied from the description; structured/expert.py); chat, exact reply. The
runtime's experts (runtime/experts/) are exactly these children: the same base, recipe and step budget. Also each base's
validation bits per byte on the pretraining mixture. Quality only (step budgets): machine-independent; the
runs are kept in data/cache/family-bench/ and reused. `--lora-rank R` adds a LoRA arm from the base.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.checkpoint import checkpoint_id, load_checkpoint, read_config
from neuro_lib.data.corpus import CACHE_DIR
from neuro_lib.data.mixture import MIXTURE_SPEC
from neuro_lib.data.sft import MARK, prompt_ids, task_pairs, task_variant
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import Profile, get_profile
from neuro_lib.train.finetune import finetune
from neuro_lib.train.pretrain import pretrain, scratch_base

SCORED = ("reason", "code", "struct", "chat")


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.family)")
    p.add_argument("--tasks", default="", help=f"comma-separated, from {', '.join(SCORED)} (default: the profile's)")
    p.add_argument("--seeds", default="", help="comma-separated fine-tuning seeds (default: the profile's)")
    p.add_argument("--n", type=int, default=0, help="held-out examples per task (0 = the profile's)")
    p.add_argument("--pretrain-steps", type=int, default=0, help="the base's steps (0 = the profile's)")
    p.add_argument("--finetune-steps", type=int, default=0, help="fine-tuning steps per arm (0 = the profile's)")
    p.add_argument("--lora-rank", type=int, default=0, help="also fine-tune the base with LoRA of this rank")
    p.add_argument("--ablate-tasks", action="store_true",
                   help="also a base pretrained without the task-template source (does the base help beyond them?)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")


def _ints(text: str, default: list) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()] or list(default)
    except ValueError:
        raise NeuroError(f"expected comma-separated integers, got {text!r}") from None


def score(model, task: str, profile: Profile, n: int, seed: int) -> dict:
    """The task's held-out score(s) of a fine-tuned model: {"score": main figure, ...details}."""
    if task == "reason":
        from neuro_lib.bench.expert_eval import evaluate_reason_mini
        r = evaluate_reason_mini(profile, model, n, seed)
        return {"score": r["with_tool"]["exact_match"], "grounded": r["grounded"]["exact_match"],
                "without_tool": r["without_tool"]["exact_match"]}
    if task == "code":
        from neuro_lib.bench.expert_eval import evaluate_code_mini
        r = evaluate_code_mini(profile, model, n, seed)
        return {"score": r["accuracy"], "ran_ok": r["ran_ok"]}
    if task == "struct":  # the fine-tune's own generator's held-out wordings (data/sft.py: structured/broad.py)
        from neuro_lib.structured.expert import evaluate_expert
        examples = [p.meta for p in task_pairs("struct", n, seed=seed + 7, split="heldout")]
        r = evaluate_expert(model, examples, profile.tasks.struct_mini.budget,
                            modes=("unconstrained", "constrained", "grounded"))
        c, g = r["constrained"], r["grounded"]
        return {"score": c["field_accuracy"], "exact_documents": c["exact_match"],
                "grounded_field_accuracy": g["field_accuracy"], "grounded_exact_documents": g["exact_match"],
                "grounded_validity": g["validity"], "unconstrained_validity": r["unconstrained"]["validity"]}
    if task == "chat":
        from neuro_lib.infer.engine import generate
        from neuro_lib.tokenizers import ByteTokenizer
        pairs = task_pairs("chat", n, seed=seed + 7, split="heldout")
        right = [generate(model, ByteTokenizer(), prompt_ids(p.source), max_new_tokens=len(p.target) + 8,
                          temperature=0.0, eos_id=MARK) == p.target for p in pairs]
        return {"score": sum(right) / len(right)}
    raise NeuroError(f"task {task!r} has no held-out score here; choose from {', '.join(SCORED)}")


def run(args) -> dict:
    if args.threads < 0 or args.n < 0 or args.pretrain_steps < 0 or args.finetune_steps < 0 or args.lora_rank < 0:
        raise NeuroError("--threads, --n, --pretrain-steps, --finetune-steps and --lora-rank must not be negative")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    sizes = profile.tasks.family
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] or sizes.bench_tasks
    bad = [t for t in tasks if t not in SCORED]
    if bad:
        raise NeuroError(f"unknown task {bad[0]!r} for this bench; choose from {', '.join(SCORED)}")
    seeds = _ints(args.seeds, sizes.bench_seeds)
    n = args.n or sizes.bench_n_eval
    steps = args.finetune_steps or sizes.finetune.steps
    base = pretrain(profile, steps=args.pretrain_steps or None)
    scratch = scratch_base(profile)
    arms = {"base": (base, 0), "scratch": (scratch, 0)}
    if args.lora_rank:
        arms[f"base+lora{args.lora_rank}"] = (base, args.lora_rank)
    if args.ablate_tasks:
        no_tasks = {k: v for k, v in MIXTURE_SPEC.items() if k != "tasks"}
        arms["base without task templates"] = (pretrain(profile, steps=args.pretrain_steps or None,
                                                        mixture=no_tasks), 0)
    root = CACHE_DIR / "family-bench"
    rows, per = [], {}
    base_cfg = read_config(base)
    val = [r for r in _metrics(base) if r.get("kind") == "val"]
    if val:
        rows.append({"name": "base val bpb (mixture mean)", "value": round(val[-1]["val_bpb"], 4), "unit": "bpb",
                     "step": base_cfg["step"]})
    for task in tasks:
        for seed in seeds:
            for arm, (parent, rank) in arms.items():
                data = "" if task_variant(task) == "templated" else f"-{task_variant(task)}"  # new data: new run
                arm_name = arm.replace(" ", "-")
                out = root / f"{args.profile}-{checkpoint_id(parent)[:12]}-{task}{data}-{arm_name}-s{seed}-{steps}"
                child = finetune(parent, task, out, steps=steps, lora_rank=rank, seed=seed, profile=profile)
                model = load_checkpoint(child)[0]
                s = score(model, task, profile, n, seed)
                per.setdefault((task, arm), []).append(s["score"])
                rows.append({"name": f"{task} {arm} seed {seed}", "value": round(s["score"], 4), "unit": "fraction",
                             "n": n, **{k: round(v, 4) for k, v in s.items() if k != "score"}})
    for (task, arm), values in per.items():
        rows.append({"name": f"{task} {arm} mean", "value": round(sum(values) / len(values), 4), "unit": "fraction",
                     "seeds": len(values)})
    for task in tasks:
        b, s = per[(task, "base")], per[(task, "scratch")]
        rows.append({"name": f"{task} base - scratch", "value": round(sum(b) / len(b) - sum(s) / len(s), 4),
                     "unit": "fraction"})
    config = {"profile": args.profile, "tasks": tasks, "seeds": seeds, "n_eval": n, "finetune_steps": steps,
              "pretrain_steps": base_cfg["step"], "base": str(base), "base_id": checkpoint_id(base),
              "model": base_cfg["model"], "finetune": asdict(sizes.finetune), "mixture": base_cfg.get("mixture"),
              "lora_rank": args.lora_rank, "arms": {a: str(p) for a, (p, _) in arms.items()},
              "eval": "held-out phrasing templates; reason: exact answer with the calculator (injected while "
                      "decoding; also grounded and without the tool); code: sandboxed output; struct: constrained "
                      "field accuracy (also grounded); chat: exact reply"}
    return make_report("family", config, rows)


def _metrics(run) -> list[dict]:
    f = run / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []
