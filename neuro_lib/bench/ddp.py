"""`neuro bench ddp`: data-parallel training (train/distributed.py): equivalence, compression, speed.

    neuro bench ddp --profile smoke --parts equivalence,compression --out data/reference/ddp_smoke.json
    neuro bench ddp --profile bench --out data/reference/ddp_bench.json          # on a quiet machine

Three parts, each in freshly launched local processes (gloo on CPU, NCCL on GPU):
- equivalence: the tiny GPT of profiles.py (DDP.tiny, no dropout) trained `tiny_steps` AdamW steps
  through the Trainer with 2 processes x half the global batch, against 1 process x the whole batch:
  largest loss and weight differences; the same for 2 processes x 2 micro-batches accumulated under
  `no_sync`; and the loss gap of each communication hook against the plain all-reduce;
- compression: the profile's GPT on the corpus, 2 processes, `steps` steps per hook (allreduce,
  fp16, powersgd:1, powersgd:4): final training loss (mean of the last 5 steps), val bpb, and the
  bytes per rank handed to all_reduce (`count_allreduce_bytes`), in all and per step once PowerSGD
  compresses (it all-reduces plainly for its first `powersgd_start` steps), against the uncompressed
  all-reduce at equal steps. Loss gaps and bytes do not depend on the machine's load;
- speed: median training tokens/s of 2 processes x 1 thread (DDP) against 1 process x 2 threads, the
  same global batch and steps. Only meaningful on a quiet machine; at this model size on 2 CPU cores
  the gradient all-reduce can cost more than the second thread gains.

`summary(record)` turns a record into a pandas DataFrame (notebook 12). Tests: tests/test_distributed.py.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from neuro_lib.bench.report import make_report
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import DdpSizes, get_profile
from neuro_lib.train import distributed

PARTS = ("equivalence", "compression", "speed")


def add_arguments(p):
    p.add_argument("--profile", default="bench", help="sizes from profiles.py (tasks.ddp)")
    p.add_argument("--corpus", default="stdlib-docs", help="the compression and speed runs' corpus")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--steps", type=int, default=0, help="steps of the compression and speed runs (0 = profile's)")
    p.add_argument("--seed", type=int, default=1337)


# -- the tiny equivalence runs: the Trainer on a tiny GPT and a fixed byte text ------------------------------
def _tiny_text() -> np.ndarray:
    """A deterministic, learnable byte stream (this module's docstring, repeated)."""
    return np.frombuffer((__doc__ or "").encode() * 8, dtype=np.uint8)


class Crash(RuntimeError):
    """Raised from the callback at a chosen step on every rank: a run interrupted after a checkpoint."""


def tiny_run(spec: dict) -> dict | None:
    """Train the tiny GPT through the Trainer in this process (one rank of a launched world, or alone).
    spec: sizes (from profiles.py DDP), batch, steps, grad_accum, comm_hook, seed, out_dir, ckpt_every, crash_at,
    threads. -> rank 0: {"losses", "weights" (name -> numpy), "bytes", "step", "crashed"}; other ranks: None."""
    from neuro_lib.data.batching import TokenArray
    from neuro_lib.models import build_model
    from neuro_lib.tokenizers.byte import ByteTokenizer
    from neuro_lib.train.trainer import TrainConfig, Trainer, seed_everything

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    sizes = spec["tiny"]
    block, seed = sizes["block_size"], spec.get("seed", 0)
    ids = TokenArray(_tiny_text())
    batch = spec["batch"]

    def batches(step):
        x, y = ids.batch(batch, block, seed, step)
        return {"tokens": x, "targets": y}

    seed_everything(seed)
    model = build_model("gpt", **sizes)
    cfg = TrainConfig(batch_size=batch, block_size=block, lr=spec.get("lr", 3e-3), max_steps=spec["steps"],
                      warmup_steps=5, eval_every=0, log_every=1, seed=seed, ckpt_every=spec.get("ckpt_every", 0),
                      ckpt_every_s=0, grad_accum=spec.get("grad_accum", 1), comm_hook=spec.get("comm_hook", ""),
                      device="cpu")
    trainer = Trainer(model, ByteTokenizer(), cfg, batches, None, out_dir=spec.get("out_dir"))

    def crash(rec):
        if rec["step"] == spec.get("crash_at"):
            raise Crash(f"crash at step {rec['step']}")

    crashed = None
    with distributed.count_allreduce_bytes() as sent:
        try:
            trainer.fit(callback=crash)
        except Crash:
            crashed = trainer.step
    if not trainer.world.is_main:
        return None
    return {"losses": [r["loss"] for r in trainer.history if r["kind"] == "train"],
            "weights": {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()},
            "bytes": sent["bytes"], "step": trainer.step, "crashed": crashed}


def worker(specs: list[dict]) -> list:
    """One rank of a launched world: run `tiny_run` (kind "tiny") or `lm_run` (kind "lm") for each spec."""
    try:
        return [tiny_run(s) if s.get("kind", "tiny") == "tiny" else lm_run(s) for s in specs]
    finally:
        distributed.teardown()


def max_weight_diff(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def max_loss_diff(a: list, b: list) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


# -- the LM runs: train_lm on the corpus, per hook and per layout ------------------------------------------------
def lm_run(spec: dict) -> dict | None:
    from neuro_lib.train.lm import train_lm

    torch.set_num_threads(spec["threads"])
    train = {"max_steps": spec["steps"], "time_budget_s": 0, "eval_every": 0, "seed": spec["seed"],
             "batch_size": spec["batch_size"], "block_size": spec["block_size"], "comm_hook": spec["comm_hook"],
             "log_every": 1, "eval_bytes": 50_000, "device": "auto"}
    with distributed.count_allreduce_bytes() as sent:
        res = train_lm("gpt", spec["corpus"], "byte", profile=spec["profile"], model_overrides=spec["model"],
                       train_overrides=train)
    if not distributed.world_from_env().is_main:
        return None
    losses = [r["loss"] for r in res.history if r["kind"] == "train"]
    return {"final_loss": float(np.mean(losses[-5:])), "val_bpb": res.val_bpb, "tokens_per_s": res.tokens_per_s,
            "bytes": sent["bytes"], "params": res.model.num_params()}


# -- the suite -----------------------------------------------------------------------------------------------------
def run(args) -> dict:
    parts = [p for p in args.parts.split(",") if p]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise NeuroError(f"unknown part {bad[0] if bad else '(none)'!r}; choose from {', '.join(PARTS)}")
    if args.steps < 0:
        raise NeuroError(f"--steps must be positive, got {args.steps}")
    profile = get_profile(args.profile)
    sizes = profile.tasks.ddp
    results, config = [], {"profile": args.profile, "corpus": args.corpus, "seed": args.seed, "sizes": asdict(sizes),
                           "parts": parts}
    if "equivalence" in parts:
        results += equivalence(sizes, args.seed)
    lm = dict(kind="lm", corpus=args.corpus, profile=profile, model=sizes.model, seed=args.seed,
              batch_size=sizes.batch_size, block_size=sizes.block_size, steps=args.steps or sizes.steps)
    if "compression" in parts:
        results += compression(lm, sizes)
    if "speed" in parts:
        results += speed(lm)
    return make_report("ddp", config, results)


def equivalence(sizes: DdpSizes, seed: int) -> list[dict]:
    base = dict(tiny=sizes.tiny, batch=sizes.tiny_batch, steps=sizes.tiny_steps, seed=seed, threads=1)
    start = sizes.powersgd_start
    hooks = ["allreduce", "fp16"] + [f"powersgd:{r}:{start}" for r in sizes.powersgd_ranks]
    specs = [dict(base)] + [dict(base, grad_accum=2)] + [dict(base, comm_hook=h) for h in hooks]
    two = distributed.launch(worker, 2, specs)[0]
    one = tiny_run(dict(base))
    rows = []
    for label, r in (("2 processes x B/2", two[0]), ("2 processes x 2 micro-batches (no_sync)", two[1])):
        rows.append({"name": f"{label} vs 1 process x B: max |loss diff|", "value": max_loss_diff(r["losses"],
                     one["losses"]), "unit": "nats", "part": "equivalence", "steps": base["steps"]})
        rows.append({"name": f"{label} vs 1 process x B: max |weight diff|", "value": max_weight_diff(r["weights"],
                     one["weights"]), "unit": "", "part": "equivalence", "steps": base["steps"]})
    plain = two[2]
    for hook, r in zip(hooks, two[2:]):
        rows.append({"name": f"tiny {hook}: final loss gap vs allreduce", "value": r["losses"][-1] - plain["losses"][-1],
                     "unit": "nats", "part": "equivalence", "hook": hook, "steps": base["steps"],
                     "max_abs_gap": max_loss_diff(r["losses"], plain["losses"]), "bytes": r["bytes"]})
    return rows


def compression(lm: dict, sizes: DdpSizes) -> list[dict]:
    hooks = ["allreduce", "fp16"] + [f"powersgd:{r}:{sizes.powersgd_start}" for r in sizes.powersgd_ranks]
    runs = distributed.launch(worker, 2, [dict(lm, comm_hook=h, threads=1) for h in hooks])[0]
    base = runs[0]
    steps, start = lm["steps"], sizes.powersgd_start
    plain_step = base["bytes"] / steps
    rows = []
    for hook, r in zip(hooks, runs):
        common = {"part": "compression", "hook": hook, "steps": steps}
        # PowerSGD all-reduces plainly for its first `start` steps: the steady state is what scales
        warm = start if hook.startswith("powersgd") and steps > start else 0
        per_step = (r["bytes"] - warm * plain_step) / (steps - warm)
        rows += [{"name": f"{hook}: final train loss", "value": round(r["final_loss"], 5), "unit": "nats",
                  "gap": round(r["final_loss"] - base["final_loss"], 5), **common},
                 {"name": f"{hook}: val bpb", "value": round(r["val_bpb"], 5), "unit": "bits/byte",
                  "gap": round(r["val_bpb"] - base["val_bpb"], 5), **common},
                 {"name": f"{hook}: bytes all-reduced per rank", "value": r["bytes"], "unit": "bytes",
                  "ratio": round(r["bytes"] / base["bytes"], 5), **common},
                 {"name": f"{hook}: bytes per step once compressing", "value": round(per_step), "unit": "bytes/step",
                  "ratio": round(per_step / plain_step, 5), **common}]
    return rows


def speed(lm: dict) -> list[dict]:
    ddp = distributed.launch(worker, 2, [dict(lm, comm_hook="", threads=1)])[0][0]
    threads = distributed.launch(worker, 1, [dict(lm, comm_hook="", threads=2)])[0][0]
    common = {"part": "speed", "steps": lm["steps"], "global_batch": lm["batch_size"], "block": lm["block_size"]}
    return [{"name": "2 processes x 1 thread (DDP): train tokens/s", "value": round(ddp["tokens_per_s"]),
             "unit": "tokens/s", "processes": 2, "threads": 1, "val_bpb": round(ddp["val_bpb"], 5), **common},
            {"name": "1 process x 2 threads: train tokens/s", "value": round(threads["tokens_per_s"]),
             "unit": "tokens/s", "processes": 1, "threads": 2, "val_bpb": round(threads["val_bpb"], 5), **common},
            {"name": "DDP speed-up over threads", "value": round(ddp["tokens_per_s"] / threads["tokens_per_s"], 3),
             "unit": "x", **common}]


def recorded() -> dict:
    """The recorded run to show: data/reference/ddp_bench.json (quiet machine, bench sizes) when it exists,
    else ddp_smoke.json (smoke sizes, no speed rows)."""
    from neuro_lib.bench.reference import REFERENCE_DIR, load_reference

    return load_reference("ddp_bench" if (REFERENCE_DIR / "ddp_bench.json").is_file() else "ddp_smoke")


def summary(record: dict, part: str | None = None):
    """A recorded `neuro bench ddp` run as a DataFrame indexed by result name: every row with its part, or
    the rows of one part (empty when the record does not have that part), columns without values dropped."""
    import pandas as pd

    frame = pd.DataFrame(record["results"])
    if part is not None:
        frame = frame[frame["part"] == part].drop(columns="part")
    return frame.set_index("name").dropna(axis=1, how="all")
