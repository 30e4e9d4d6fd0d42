"""`neuro bench merge`: is one merged model as good as a router over the experts, or as multi-task training?

    neuro bench merge --profile smoke --out data/reference/merge_smoke.json
    neuro bench merge --profile bench --threads 2 --out data/reference/merge_bench.json   # 5 seeds

The family (train/pretrain.py, train/finetune.py): the profile's cached base; per seed, one full fine-tune
of it per task (profiles: tasks.merge.tasks, fine-tuning seed = the bench seed), `soup_seeds` more
fine-tunes of the first task with other seeds (the soup's ingredients), and one multi-task fine-tune on the
tasks' pairs mixed, for the children's total steps (steps x tasks). The base is the same for every seed.

Score: each task's held-out-template pairs (data/sft.py, split "heldout"), disjoint validation and test
draws, scored teacher-forced as the answer-token accuracy (the fraction of answer bytes and end marker the
model's argmax predicts given the gold prefix; `exact` = the fraction of pairs with every answer token
right, which is what greedy decoding would write). Normalized score = merged model's test score on a task /
that task's child's. Hyperparameters are chosen on validation only (mean normalized validation score over
the tasks); the test split is scored once per method.

Rows, for every method: the mean normalized score over tasks (95 % t-interval over seeds), each task's test
score, the merge's wall time, the validation evaluations its tuning cost, and the inference cost in
models run per token (a merge: 1; the logit ensemble: the number of children). References: the base, the
children (`routed oracle`: each task answered by its own child, the best any router over the experts can
do, 1 model per token plus the router), the multi-task fine-tune. Paired differences (TIES - TA,
layer-wise - TA, best merge - routed) with their intervals say whether a gap is more than seed noise.
Wall times are measured here and depend on the machine's load; quality figures do not.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from neuro_lib.bench.report import make_report
from neuro_lib.checkpoint import lineage, load_checkpoint, read_config
from neuro_lib.data.sft import task_pairs
from neuro_lib.errors import NeuroError
from neuro_lib.merging import (LogitEnsemble, dare, greedy_soup, layerwise, slerp, task_arithmetic, ties,
                               tune_layerwise, uniform_soup)
from neuro_lib.merging.layerwise import best_of
from neuro_lib.models import build_model
from neuro_lib.paths import REPO_ROOT
from neuro_lib.profiles import MergeSizes, Profile, get_profile
from neuro_lib.train.seq2seq import collate

CACHE = REPO_ROOT / "data" / "cache" / "merge-bench"


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.merge and tasks.family)")
    p.add_argument("--seeds", type=int, default=0, help="fine-tuning seeds (default: the profile's)")
    p.add_argument("--steps", type=int, default=0, help="fine-tuning steps per child (default: the profile's)")
    p.add_argument("--base-steps", type=int, default=0,
                   help="pretraining steps of the base (default: the profile's; the family's cache is shared)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    p.add_argument("--cache", default=str(CACHE), help="where the children are kept (reused when present)")


# -- scoring ----------------------------------------------------------------------------------------
class Scorer:
    """Teacher-forced answer-token accuracy of a state dict on each task's validation or test pairs."""

    def __init__(self, template: torch.nn.Module, tasks: list[str], n_val: int, n_test: int, max_len: int,
                 batch_size: int = 16):
        self.model, self.evals = template, 0
        self.batches = {}
        for task in tasks:
            pairs = [p for p in task_pairs(task, 4 * (n_val + n_test), seed=77, split="heldout")
                     if len(p.source) + len(p.target) + 2 <= max_len]
            seen, unique = set(), []
            for p in pairs:  # distinct pairs: no test pair is also a validation pair
                if p.source not in seen:
                    seen.add(p.source)
                    unique.append(p)
            if len(unique) < n_val + n_test:
                raise NeuroError(f"task {task!r} has only {len(unique)} distinct held-out pairs; "
                                 f"lower n_val + n_test ({n_val + n_test})")
            val, test = unique[:n_val], unique[n_val:n_val + n_test]
            self.batches[task] = {split: [collate(ps[i:i + batch_size], "decoder") for i in range(0, len(ps), batch_size)]
                                  for split, ps in (("val", val), ("test", test))}

    @torch.no_grad()
    def score_model(self, model, task: str, split: str) -> dict:
        right = total = exact = n = 0
        for batch in self.batches[task][split]:
            pred = model(batch["tokens"]).argmax(-1)                # (B, T)
            mask = batch["loss_mask"].bool()                        # answer bytes and the end marker
            ok = (pred == batch["targets"]) & mask
            right += int(ok.sum())
            total += int(mask.sum())
            exact += int((ok.sum(1) == mask.sum(1)).sum())
            n += len(mask)
        return {"acc": right / total, "exact": exact / n}

    def score(self, sd_or_model, task: str, split: str) -> dict:
        self.evals += 1
        if isinstance(sd_or_model, dict):
            self.model.load_state_dict(sd_or_model)
            return self.score_model(self.model.eval(), task, split)
        return self.score_model(sd_or_model.eval(), task, split)


# -- the family --------------------------------------------------------------------------------------
def multitask_finetune(base: Path, tasks: list[str], out: Path, steps: int, seed: int, profile: Profile) -> Path:
    """One fine-tune of `base` on the tasks' training pairs mixed (equal numbers per task), for `steps`;
    the recipe of train/finetune.py otherwise (its batches, schedule and lineage record)."""
    from neuro_lib.train.finetune import recipe, task_batches
    from neuro_lib.train.trainer import TrainConfig, Trainer

    s = profile.tasks.family.finetune
    rec = {**recipe("+".join(tasks), profile, steps, 0, seed), "tasks": tasks}
    if out.is_dir() and (out / "checkpoint.json").exists():
        cfg = read_config(out)
        if cfg.get("finetune") == rec and cfg["step"] >= steps:
            return out
    model, tok, _ = load_checkpoint(base)
    per = max(1, s.n_train // len(tasks))
    pairs = [p for t in tasks for p in task_pairs(t, per, seed=seed, split="train")
             if len(p.source) + len(p.target) + 2 <= s.max_len]
    config = TrainConfig(batch_size=min(s.batch_size, len(pairs)), block_size=s.max_len, lr=s.lr,
                         warmup_steps=s.warmup_steps, max_steps=steps, eval_every=0, weight_decay=0.1,
                         log_every=10, seed=seed)
    print(f"[bench merge] multi-task fine-tune on {'+'.join(tasks)}: {steps} steps -> {out}", file=sys.stderr,
          flush=True)
    extra = {"parent": lineage(base, "finetune", task="+".join(tasks), steps=steps, rank=0), "finetune": rec}
    Trainer(model, tok, config, task_batches(pairs, config.batch_size, seed), None, out_dir=out,
            extra_config=extra).fit()
    return out


def build_family(profile: Profile, seed: int, sz: MergeSizes, base_steps: int, root: Path) -> dict:
    """Run folders of one seed's family: base, {task: child}, soup ingredients, multi-task."""
    from neuro_lib.train.finetune import finetune
    from neuro_lib.train.pretrain import pretrain

    base = pretrain(profile, steps=base_steps or None)
    where = root / profile.name / f"base{base_steps or 'default'}-steps{sz.steps}" / f"seed{seed}"
    children = {t: finetune(base, t, where / t, steps=sz.steps, seed=seed, profile=profile) for t in sz.tasks}
    soup_task = sz.tasks[0]
    soup = [children[soup_task]] + [finetune(base, soup_task, where / f"{soup_task}-s{k}", steps=sz.steps,
                                             seed=1000 * (seed + 1) + k, profile=profile)
                                    for k in range(1, sz.soup_seeds)]
    multi = multitask_finetune(base, sz.tasks, where / "multitask", sz.steps * len(sz.tasks), seed, profile)
    return {"base": base, "children": children, "soup_task": soup_task, "soup": soup, "multitask": multi}


# -- one seed ------------------------------------------------------------------------------------------
def iterated_slerp(sds: list[dict]) -> dict:
    """Equal-weight SLERP of several models: fold them in one by one, the k-th at t = 1/k."""
    out = sds[0]
    for k, sd in enumerate(sds[1:], 2):
        out = slerp(out, sd, 1.0 / k)
    return out


def evaluate_seed(fam: dict, sz: MergeSizes, scorer: Scorer) -> dict:
    """{method: {"test": {task: {"acc", "exact"}}, "merge_s", "evals", "cost", "chosen"}} for one seed."""
    tasks = sz.tasks
    load = lambda p: load_checkpoint(p)[0]  # noqa: E731
    base_model = load(fam["base"])
    base_sd = base_model.state_dict()
    kids = {t: load(p) for t, p in fam["children"].items()}
    kid_sds = [kids[t].state_dict() for t in tasks]
    child_val = {t: scorer.score(kids[t], t, "val")["acc"] for t in tasks}
    out: dict[str, dict] = {}

    def val_objective(sd) -> float:
        return statistics.mean(scorer.score(sd, t, "val")["acc"] / max(child_val[t], 1e-9) for t in tasks)

    def record(name, model_or_sd, merge_s=0.0, evals=0, cost=1, chosen=None, on=tasks):
        out[name] = {"test": {t: scorer.score(model_or_sd, t, "test") for t in on}, "merge_s": merge_s,
                     "evals": evals, "cost": cost, "chosen": chosen}

    def timed(fn):
        t0 = time.perf_counter()
        sd = fn()
        return sd, time.perf_counter() - t0

    record("base", base_model)
    for t in tasks:
        record(f"child:{t}", kids[t])
    out["routed oracle"] = {"test": {t: out[f"child:{t}"]["test"][t] for t in tasks}, "merge_s": 0.0, "evals": 0,
                            "cost": 1, "chosen": "each task's own child (a perfect router)"}
    record("multi-task fine-tune", load(fam["multitask"]))
    record("logit ensemble", LogitEnsemble([kids[t] for t in tasks]), cost=len(tasks))

    g = sz.grid
    searches = {
        "task arithmetic": ([{"lam": lam} for lam in g["lam"]], lambda c: task_arithmetic(base_sd, kid_sds, c["lam"])),
        "ties": ([{"density": d, "lam": lam} for d in g["density"] for lam in g["ties_lam"]],
                 lambda c: ties(base_sd, kid_sds, c["density"], c["lam"])),
        "ties (per-tensor trim, + ties)": ([{"density": d, "lam": lam} for d in g["density"] for lam in g["ties_lam"]],
                                           lambda c: ties(base_sd, kid_sds, c["density"], c["lam"], "tensor",
                                                          "positive")),
        "dare + ta": ([{"p": p, "lam": lam} for p in g["p"] for lam in g["lam"]],
                      lambda c: dare(base_sd, kid_sds, c["p"], "ta", c["lam"])),
        "dare + ties": ([{"p": p, "lam": lam} for p in g["p"] for lam in g["ties_lam"]],
                        lambda c: dare(base_sd, kid_sds, c["p"], "ties", c["lam"])),
    }
    for name, (grid, make) in searches.items():
        before = scorer.evals
        chosen, _, _ = best_of(grid, make, val_objective)
        sd, secs = timed(lambda: make(chosen))
        record(name, sd, secs, scorer.evals - before, chosen=chosen)
    before = scorer.evals
    coeffs, _, _ = tune_layerwise(base_sd, kid_sds, val_objective, grid=g["layerwise"])
    sd, secs = timed(lambda: layerwise(base_sd, kid_sds, coeffs))
    record("layer-wise", sd, secs, scorer.evals - before, chosen=coeffs)
    sd, secs = timed(lambda: iterated_slerp(kid_sds))
    record("slerp (equal weights)", sd, secs, chosen="children folded in at t = 1/k")

    st = fam["soup_task"]  # soups: same-task children of different seeds, scored on that task only
    ingredients = [load(p).state_dict() for p in fam["soup"]]
    sd, secs = timed(lambda: uniform_soup(ingredients))
    record("uniform soup", sd, secs, chosen=f"{len(ingredients)} seeds of {st}", on=[st])
    before = scorer.evals
    t0 = time.perf_counter()
    sd, kept = greedy_soup(ingredients, lambda s: scorer.score(s, st, "val")["acc"])
    record("greedy soup", sd, time.perf_counter() - t0, scorer.evals - before, chosen=kept, on=[st])
    return out


# -- statistics and the report -------------------------------------------------------------------------
def mean_ci(xs: list[float]) -> tuple[float, float, float]:
    """Mean and the 95 % t-interval over seeds (lo = hi = mean with one seed)."""
    from scipy import stats

    m = float(np.mean(xs))
    if len(xs) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.975, len(xs) - 1) * np.std(xs, ddof=1) / np.sqrt(len(xs)))
    return m, m - half, m + half


def normalized(per_seed: list[dict], method: str, tasks: list[str]) -> list[float]:
    """Per seed, the method's mean over the tasks it was scored on of test acc / that task's child's."""
    out = []
    for res in per_seed:
        on = [t for t in tasks if t in res[method]["test"]]
        out.append(statistics.mean(res[method]["test"][t]["acc"] / max(res[f"child:{t}"]["test"][t]["acc"], 1e-9)
                                   for t in on))
    return out


def summarize(per_seed: list[dict], tasks: list[str]) -> list[dict]:
    rows = []
    methods = [m for m in per_seed[0] if not m.startswith("child:")]
    norm = {m: normalized(per_seed, m, tasks) for m in methods}
    for m in methods:
        mean, lo, hi = mean_ci(norm[m])
        first = per_seed[0][m]
        on = list(first["test"])
        rows.append({"name": f"{m} normalized", "value": round(mean, 4), "unit": "ratio", "method": m,
                     "ci95": [round(lo, 4), round(hi, 4)], "per_seed": [round(x, 4) for x in norm[m]],
                     "tasks": {t: round(statistics.mean(r[m]["test"][t]["acc"] for r in per_seed), 4) for t in on},
                     "exact": {t: round(statistics.mean(r[m]["test"][t]["exact"] for r in per_seed), 4) for t in on},
                     "normalized_tasks": {t: round(statistics.mean(r[m]["test"][t]["acc"] /
                                                                   max(r[f"child:{t}"]["test"][t]["acc"], 1e-9)
                                                                   for r in per_seed), 4) for t in on},
                     "merge_s": round(statistics.mean(r[m]["merge_s"] for r in per_seed), 4),
                     "val_evals": round(statistics.mean(r[m]["evals"] for r in per_seed), 1),
                     "models_per_token": first["cost"],
                     "chosen": [r[m]["chosen"] for r in per_seed]})
    for t in tasks:
        rows.append({"name": f"child:{t} acc", "value": round(statistics.mean(r[f"child:{t}"]["test"][t]["acc"]
                                                                              for r in per_seed), 4),
                     "unit": "acc", "method": f"child:{t}",
                     "per_seed": [round(r[f"child:{t}"]["test"][t]["acc"], 4) for r in per_seed]})
    merges = ["task arithmetic", "ties", "ties (per-tensor trim, + ties)", "dare + ta", "dare + ties", "layer-wise",
              "slerp (equal weights)"]
    best = max(merges, key=lambda m: statistics.mean(norm[m]))
    for a, b in (("ties", "task arithmetic"), ("layer-wise", "task arithmetic"), (best, "routed oracle"),
                 (best, "multi-task fine-tune"), (best, "logit ensemble")):
        diff = [x - y for x, y in zip(norm[a], norm[b])]
        mean, lo, hi = mean_ci(diff)
        rows.append({"name": f"{a} - {b}", "value": round(mean, 4), "unit": "ratio", "ci95": [round(lo, 4), round(hi, 4)],
                     "per_seed": [round(x, 4) for x in diff],
                     "excludes_zero": bool(len(diff) > 1 and (lo > 0 or hi < 0))})
    return rows


def run_bench(profile: Profile, seeds: int = 0, steps: int = 0, base_steps: int = 0, cache=CACHE) -> dict:
    """The whole bench (what `neuro bench merge` and notebook 11 run) -> the report dict."""
    from neuro_lib.train.pretrain import pretrain

    sz = replace(profile.tasks.merge, steps=steps or profile.tasks.merge.steps)
    n_seeds = seeds or sz.seeds
    if n_seeds < 1 or sz.steps < 1:
        raise NeuroError("seeds and steps must be positive")
    fam_sizes = profile.tasks.family
    template = build_model("aeron", **read_config(pretrain(profile, steps=base_steps or None))["model"])
    scorer = Scorer(template, sz.tasks, sz.n_val, sz.n_test, fam_sizes.finetune.max_len)
    per_seed = []
    for seed in range(n_seeds):
        fam = build_family(profile, seed, sz, base_steps, Path(cache))
        per_seed.append(evaluate_seed(fam, sz, scorer))
        print(f"[bench merge] seed {seed} done", file=sys.stderr, flush=True)
    config = {"profile": profile.name, **asdict(sz), **({"base_steps": base_steps} if base_steps else {}),
              "seeds": n_seeds, "base": fam_sizes.base, "finetune": asdict(fam_sizes.finetune),
              "threads": torch.get_num_threads(),
              "score": "teacher-forced answer-token accuracy on held-out-template pairs (data/sft.py)"}
    return make_report("merge", config, summarize(per_seed, sz.tasks))


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    return run_bench(get_profile(args.profile), args.seeds, args.steps, args.base_steps, args.cache)
