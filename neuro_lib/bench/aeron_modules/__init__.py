"""`neuro bench aeron-modules`: each Aeron enhancement module against the backbone without it, on a
synthetic task where it should help, at an equal training budget, over seeds (issue 16).

    neuro bench aeron-modules --module reasoning --module episodic --module kg --seeds 3 --steps 600 \\
        --profile bench --out data/reference/aeron_modules_reason.json

EXPERIMENTS maps a module name to its experiment, a module exposing
    NAME: str; CLAIM: str (what the seed claims); METRIC: str; HIGHER_IS_BETTER: bool
    def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict
returning {"with": {METRIC: value, ..., "params": int, "train_s": float}, "without": {...same keys...},
"extra": {...curves and sweeps for plots...}}. Both arms get the same budget: `--steps` optimiser
steps, or `--seconds` of wall clock each (then the step count is what fitted). Sizes come from
profiles.py (tasks.aeron_modules, an AeronModulesSizes).

Per module the report has, for every numeric key of the arms: the mean over seeds, its spread (sample
standard deviation) and the per-seed values; the parameter and training-time cost the module adds;
and a verdict from the paired per-seed difference d = with - without of METRIC (sign flipped when
lower is better): "helps" if mean(d) - sd(d) > 0, "hurts" if mean(d) + sd(d) < 0, else
"no difference" (a result row, value +1 / 0 / -1, the words in its "verdict" field; one seed is
"undecided"). The command line is kept in config["command"]. The experiments' extras (curves, sweeps) are kept under "extra".
"""
from __future__ import annotations

import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context

import torch

from neuro_lib.bench.aeron_modules import badge, episodic, ewc, kg, reasoning, uncertainty, vision
from neuro_lib.bench.report import make_report
from neuro_lib.bench.flags import add_threads
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import AeronModulesSizes, Profile, get_profile

EXPERIMENTS = {m.NAME: m for m in (reasoning, episodic, kg, ewc, uncertainty, badge, vision)}
VERDICTS = {"helps": 1, "no difference": 0, "hurts": -1, "undecided (one seed, no spread)": 0}


def add_arguments(p):
    p.add_argument("--module", action="append", default=None,
                   help=f"a module to measure (repeatable; default all): {', '.join(EXPERIMENTS)}")
    p.add_argument("--seeds", type=int, default=3, help="seeds per module (0, 1, ...)")
    p.add_argument("--steps", type=int, default=0, help="equal step budget per arm (default: the profile's)")
    p.add_argument("--seconds", type=float, default=0.0, help="equal wall-clock budget per arm instead of steps")
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.aeron_modules)")
    add_threads(p)  # per process
    p.add_argument("--jobs", type=int, default=1, help="processes running (module, seed) pairs side by side")


def _spread(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def verdict(with_: list[float], without: list[float], higher_is_better: bool) -> str:
    """helps / no difference / hurts from the paired per-seed differences' mean +- spread."""
    d = [(a - b) * (1 if higher_is_better else -1) for a, b in zip(with_, without)]
    if len(d) < 2:
        return "undecided (one seed, no spread)"
    m, sd = statistics.mean(d), _spread(d)
    return "helps" if m - sd > 0 else "hurts" if m + sd < 0 else "no difference"


def summarise(exp, runs: list[dict]) -> list[dict]:
    """Result rows of one module from its per-seed runs."""
    rows = []
    for key in runs[0]["with"]:
        for arm in ("with", "without"):
            xs = [r[arm][key] for r in runs]
            unit = {"params": "params", "train_s": "s", "steps": "steps"}.get(key, "ratio")
            rows.append({"name": f"{exp.NAME} {key} {arm}", "value": round(statistics.mean(xs), 4), "unit": unit,
                         "module": exp.NAME, "arm": arm, "spread": round(_spread(xs), 4),
                         "per_seed": [round(x, 4) for x in xs]})
    w, wo = ([r[a][exp.METRIC] for r in runs] for a in ("with", "without"))
    v = verdict(w, wo, exp.HIGHER_IS_BETTER)
    diffs = [a - b for a, b in zip(w, wo)]
    rows += [
        {"name": f"{exp.NAME} {exp.METRIC} difference", "value": round(statistics.mean(diffs), 4), "unit": "ratio",
         "module": exp.NAME, "spread": round(_spread(diffs), 4), "per_seed": [round(x, 4) for x in diffs]},
        {"name": f"{exp.NAME} params added", "unit": "params", "module": exp.NAME,
         "value": runs[0]["with"]["params"] - runs[0]["without"]["params"]},
        {"name": f"{exp.NAME} train time added", "unit": "s", "module": exp.NAME,
         "value": round(statistics.mean(r["with"]["train_s"] - r["without"]["train_s"] for r in runs), 2)},
        {"name": f"{exp.NAME} verdict", "value": VERDICTS[v], "unit": "+1 helps, 0 no difference, -1 hurts",
         "verdict": v, "module": exp.NAME},
    ]
    return rows


def _one(name: str, seed: int, steps: int, seconds: float | None, sizes: AeronModulesSizes, threads: int) -> dict:
    torch.set_num_threads(threads)
    return EXPERIMENTS[name].run(seed, steps, seconds, sizes=sizes)


def measure(profile: Profile, names: list[str] | None = None, seeds: int = 3, steps: int = 0,
            seconds: float | None = None, command: str | None = None, jobs: int = 1) -> dict:
    """Run the experiments `names` (default all) over `seeds` seeds -> the bench report, with the
    experiments' extras under "extra" and the command line under config["command"]. `jobs` > 1 runs
    (module, seed) pairs in that many processes (the same figures; wall-clock ones are then shared-CPU)."""
    names = names or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise NeuroError(f"unknown module {unknown[0]!r}; choose from {', '.join(EXPERIMENTS)}")
    if seeds < 1 or steps < 0 or not 0 <= (seconds or 0) < float("inf"):
        raise NeuroError("--seeds must be at least 1, --steps and --seconds non-negative and finite")
    # without --steps each module takes its profile's budget (a module's own "steps" where it has one: ewc counts
    # steps per task, badge per labelling round)
    sizes = profile.tasks.aeron_modules
    module_steps = {n: steps or getattr(getattr(sizes, n), "steps", sizes.steps) for n in names}
    todo = [(name, seed) for name in names for seed in range(seeds)]
    threads = torch.get_num_threads()
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {key: pool.submit(_one, *key, module_steps[key[0]], seconds, sizes, threads) for key in todo}
            done = {key: f.result() for key, f in futures.items()}
    else:
        done = {key: _one(*key, module_steps[key[0]], seconds, sizes, threads) for key in todo}
    results, extra = [], {}
    for name in names:
        runs = [done[(name, seed)] for seed in range(seeds)]
        results += summarise(EXPERIMENTS[name], runs)
        extra[name] = [r["extra"] for r in runs]
    config = {"profile": profile.name, "modules": names, "seeds": seeds,
              "budget": {"seconds": seconds} if seconds else {"steps": steps or module_steps},
              "sizes": asdict(sizes), "threads": threads, "jobs": jobs,
              "claims": {n: {"claim": EXPERIMENTS[n].CLAIM, "metric": EXPERIMENTS[n].METRIC,
                             "higher_is_better": EXPERIMENTS[n].HIGHER_IS_BETTER} for n in names}}
    if command:
        config["command"] = command
    report = make_report("aeron-modules", config, results)
    report["extra"] = extra
    return report


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    budget = f"--seconds {args.seconds:g}" if args.seconds else f"--steps {args.steps}" if args.steps else ""
    command = " ".join(["neuro bench aeron-modules", *(f"--module {m}" for m in args.module or []),
                        f"--seeds {args.seeds}", budget, f"--profile {args.profile}",
                        f"--threads {args.threads}" if args.threads else "",
                        f"--jobs {args.jobs}" if args.jobs > 1 else "",
                        f"--out {args.out}" if getattr(args, "out", None) else ""])
    return measure(get_profile(args.profile), args.module, args.seeds, args.steps, args.seconds or None,
                   " ".join(command.split()), args.jobs)
