"""One Trainer for every model in neuro_lib.

AdamW (decay/no-decay groups), warmup + cosine schedule, gradient clipping, a budget in
steps or wall-clock seconds (the schedule follows whichever is given), periodic
validation, progress (tqdm or log lines), metrics in `metrics.jsonl`, and crash-safe
checkpoints (neuro_lib/checkpoint.py) every `ckpt_every` steps and/or `ckpt_every_s` seconds.

A run folder survives its process:
- the same call after any interruption (kill -9, power loss, full disk) resumes from the
  last checkpoint: weights, optimiser, RNG states, step, elapsed seconds and the metrics
  offset are one unit. Batches are a pure function of (seed, step), so with a step budget
  the resumed run ends with the weights of an unbroken one (same machine, same threads);
  with a wall-clock budget the schedule continues from the saved progress;
- a step-0 checkpoint is written before the first step, so the folder always holds one;
- SIGINT/SIGTERM finish the current step, save, and raise TrainingStopped;
- one process at a time (train/runlock.py); a folder of another run, or holding other
  files, is refused before anything is written.

Data-parallel (train/distributed.py; under torchrun or `neuro train --nproc N`): the model is
wrapped in DDP, `batch_size` is the global batch and each rank trains on its rows of
`batches(step)`, so the run is the same step for step whatever the world size. Rank 0 alone
reads and writes the run folder and holds its lock; it hands the restored state to the other
ranks, which wait at a barrier while it saves. A checkpoint of W processes resumes with any
other W' that divides the batch (the data position is the step: step x batch global samples).
`grad_accum` splits each rank's rows into micro-batches whose gradients are all-reduced once.

    trainer = Trainer(model, tokenizer, TrainConfig(max_steps=200), batches, evaluate, out_dir="runs/x")
    trainer.fit(callback=lambda rec: print(rec))

Tests: tests/test_train.py (resume in process), tests/test_runs.py (real kills, full disk, locks).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neuro_lib.errors import Interrupted, NeuroError
from neuro_lib.models import arch_of
from neuro_lib.progress import Progress
from neuro_lib.checkpoint import (CKPT_RE, LOCK, METRICS, POINTER, TEMP_RE, collect_garbage, load_train_state,
                                        load_weights, metrics_mark, read_config, read_metrics, rewind_metrics,
                                        save_checkpoint)
from neuro_lib.train import distributed
from neuro_lib.train.runlock import RunLock
from neuro_lib.optim import OPTIMIZERS, SCHEDULES, lr_multiplier, make_optimizer


@dataclass
class TrainConfig:
    batch_size: int = 32
    block_size: int = 128
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta2: float = 0.95
    warmup_steps: int = 50
    grad_clip: float = 1.0
    max_steps: int = 0            # budget in optimiser steps (0 = use time_budget_s)
    time_budget_s: float = 0.0    # budget in training seconds (evaluation time excluded)
    eval_every: int = 250         # steps between validations (0 = only at the end)
    eval_every_s: float = 0.0     # or training seconds between validations (0 = by steps; a curve over seconds)
    eval_bytes: int = 0           # validation bytes scored (0 = the whole split)
    ckpt_every: int = 0           # steps between checkpoints (0 = by time only)
    ckpt_every_s: float = 120.0   # wall-clock seconds between checkpoints (0 = by steps only)
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"          # auto = cuda when available, else cpu
    precision: str = "fp32"       # fp32 | bf16 (autocast; matmuls in bfloat16, loss in float32)
    grad_accum: int = 1           # micro-batches per optimiser step (gradients all-reduced once per step)
    comm_hook: str = ""           # DDP gradient hook: "" | allreduce | fp16 | powersgd:RANK[:START]
    optimizer: str = "adamw"      # adamw | muon (Muon on the hidden matrices, AdamW on the rest; optim.py)
    muon_lr_scale: float = 1.0    # Muon's lr over `lr` (Muon's update is RMS-matched to AdamW's, so 1 is a start)
    schedule: str = "cosine"      # cosine (warmup + cosine to min_lr_ratio) | wsd (warmup, flat, linear decay)
    decay_frac: float = 0.2       # wsd: the last fraction of the budget spent decaying

    def __post_init__(self):
        floats = {k: getattr(self, k) for k in ("lr", "time_budget_s", "ckpt_every_s", "grad_clip", "weight_decay",
                                                "eval_every_s")}
        bad = [k for k, v in floats.items() if not math.isfinite(v)]
        if bad:
            raise NeuroError(f"{bad[0]} must be a finite number, got {floats[bad[0]]}")
        if self.max_steps < 0 or self.time_budget_s < 0:
            raise NeuroError("the training budget must be positive")
        if self.max_steps == 0 and self.time_budget_s <= 0:
            raise NeuroError("give a positive training budget: max_steps or time_budget_s")
        if self.batch_size <= 0 or self.block_size <= 0:
            raise NeuroError("batch_size and block_size must be positive")
        if self.ckpt_every < 0 or self.ckpt_every_s < 0:
            raise NeuroError("ckpt_every and ckpt_every_s must not be negative")
        if self.eval_every < 0 or self.eval_every_s < 0:
            raise NeuroError("eval_every and eval_every_s must not be negative")
        if not 0 <= self.seed < 2**63:  # torch's generators take a signed 64-bit seed
            raise NeuroError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.precision not in ("fp32", "bf16"):
            raise NeuroError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise NeuroError(f"grad_accum must be a positive divisor of batch_size {self.batch_size}, "
                             f"got {self.grad_accum}")
        distributed.parse_hook(self.comm_hook)
        if self.optimizer not in OPTIMIZERS:
            raise NeuroError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise NeuroError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 < self.decay_frac <= 1:
            raise NeuroError(f"decay_frac must be in (0, 1], got {self.decay_frac}")
        if not (math.isfinite(self.muon_lr_scale) and self.muon_lr_scale > 0):
            raise NeuroError(f"muon_lr_scale must be a positive number, got {self.muon_lr_scale}")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def schedule_key(self) -> dict:
        """The fields that define a run; a resume must match them (device and checkpoint cadence may change)."""
        key = dataclasses.asdict(self)
        for k in ("device", "ckpt_every", "ckpt_every_s"):
            key.pop(k)
        for k, default in (("grad_accum", 1), ("comm_hook", ""), ("optimizer", "adamw"), ("muon_lr_scale", 1.0),
                           ("schedule", "cosine"), ("decay_frac", 0.2),
                           ("eval_every_s", 0.0)):  # at their defaults: keys of runs before them
            if key[k] == default:
                key.pop(k)
        return key


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, model, tokenizer, config: TrainConfig, batches: Callable[[int], dict],
                 evaluate: Callable[[torch.nn.Module], dict] | None = None, out_dir=None, extra_config=None,
                 info=None, backward: Callable | None = None, aux: torch.nn.Module | None = None):
        """`batches(step) -> {"tokens", "targets", ...}` must be deterministic in step;
        `evaluate(model) -> {"val_bpb": ..., ...}` runs at each validation. `extra_config` is part of the
        run's identity (e.g. the corpus hash); `info` is only recorded (e.g. the corpus path, which may move).
        `backward(model, batch) -> (loss, parts)` replaces `model.compute_loss` + `loss.backward()` for a loss
        that is not the model's own (rlhf/: DPO, reward model, PPO; it may accumulate micro-batches);
        `aux` is a module trained beside the model (a reward or value head): its parameters join the
        optimiser and its state_dict (with `get_extra_state`, e.g. a rollout buffer) goes in the train state."""
        self.world, self.device = distributed.setup(config.device)
        distributed.check_divisible(config.batch_size, self.world, config.grad_accum)
        if backward is not None and (self.world.distributed or config.grad_accum > 1):
            raise NeuroError("a custom backward (rlhf/) runs in one process and accumulates its own micro-batches")
        self.model, self.tokenizer, self.config = model.to(self.device), tokenizer, config
        # the data-parallel replica (parameters broadcast from rank 0); None in a single process
        self.ddp = distributed.wrap(self.model, self.device, config.comm_hook) if self.world.distributed else None
        self.batches, self.evaluate = batches, evaluate
        self.backward, self.aux = backward, aux.to(self.device) if aux is not None else None
        self.out_dir = Path(out_dir) if out_dir else None
        self.extra_config, self.info = extra_config or {}, info or {}
        params = model if aux is None else torch.nn.ModuleList([model, aux])
        self.optimizer = make_optimizer(params, config.optimizer, config.lr, config.weight_decay,
                                        betas=(0.9, config.beta2), muon_lr_scale=config.muon_lr_scale)
        self.step, self.elapsed, self.history = 0, 0.0, []
        self.tokens_seen = 0

    # -- budget ------------------------------------------------------------------------------
    def _progress(self) -> float:
        c = self.config
        return self.step / c.max_steps if c.max_steps else self.elapsed / c.time_budget_s

    def _done(self) -> bool:
        return self._progress() >= 1.0

    # -- identity and persistence --------------------------------------------------------------
    def identity(self) -> dict:
        """What makes a run this run (as config.json stores it): a resume must match every field."""
        return json.loads(json.dumps({"arch": arch_of(self.model), "model": dataclasses.asdict(self.model.config),
                                      "tokenizer": self.tokenizer.spec, "train": self.config.schedule_key(),
                                      **self.extra_config}))

    def _train_state(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "tokens_seen": self.tokens_seen,
                "samples_seen": self.step * self.config.batch_size, "world_size": self.world.size,
                "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(), "python_rng": random.getstate(), **metrics_mark(self.out_dir),
                **({"aux": self.aux.state_dict()} if self.aux is not None else {})}

    def save(self, barrier: bool = True) -> None:
        """Checkpoint now (crash-safe); a failed save says which checkpoint is still there.
        Data-parallel: rank 0 writes, the other ranks wait for it at a barrier."""
        if not self.out_dir:
            return
        if not self.world.is_main:
            if barrier:
                torch.distributed.barrier()
            return
        try:
            save_checkpoint(self.out_dir, self.model, self.tokenizer, self.config.schedule_key(), self._train_state(),
                            extra={**self.info, **self.extra_config})
        except NeuroError as e:
            raise NeuroError(f"{e} at step {self.step}; {self._resume_hint()}") from None
        self._last_save = time.monotonic()
        if self.world.distributed and barrier:
            torch.distributed.barrier()

    def _resume_hint(self) -> str:
        if (self.out_dir / POINTER).exists():
            step = read_config(self.out_dir)["step"]
            return f"the checkpoint of step {step} is intact: run the same command again to resume"
        return "no checkpoint was written"

    def _checkpoint(self) -> dict | None:
        """Read only: the verified config of out_dir's checkpoint if it is this run's, None if there is none."""
        if not (self.out_dir / POINTER).exists():
            return None
        cfg = read_config(self.out_dir)
        mine = self.identity()
        diff = sorted(k for k in mine if cfg.get(k) != mine[k])
        if diff:
            raise NeuroError(f"{self.out_dir} holds another run (its {', '.join(diff)} differ); choose a new --out")
        return cfg

    def _restore(self) -> bool:
        """Read only: load out_dir's checkpoint into model, optimiser, RNGs, step and history; False if none."""
        cfg = self._checkpoint()
        if cfg is None:
            return False
        state = load_train_state(self.out_dir)
        if state is None:
            raise NeuroError(f"{self.out_dir} holds a finished model without a train state; choose a new --out")
        try:
            history = read_metrics(self.out_dir, state)  # verified before anything is changed
        except (KeyError, TypeError):
            raise NeuroError(f"the train state in {cfg['folder']} has no valid metrics mark") from None
        load_weights(self.model, Path(cfg["folder"]))
        if self.aux is not None:
            self.aux.load_state_dict(state["aux"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.elapsed, self.tokens_seen = state["step"], float(state["elapsed"]), state["tokens_seen"]
            torch.set_rng_state(state["torch_rng"])
            np.random.set_state(state["numpy_rng"])
            random.setstate(state["python_rng"])
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise NeuroError(f"the train state in {cfg['folder']} does not fit this run ({type(e).__name__}: {e})"
                             ) from None
        self.history, self._mark = history, state
        return True

    def _log(self, rec: dict, callback) -> None:
        self.history.append(rec)
        if self.out_dir and self.world.is_main:
            try:
                with open(self.out_dir / METRICS, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            except OSError as e:
                raise NeuroError(f"could not write {self.out_dir / METRICS}: {(e.strerror or str(e)).lower()} "
                                 f"at step {self.step}; {self._resume_hint()}") from None
        if callback:
            callback(rec)

    def _validate(self, callback) -> dict:
        if self.evaluate is None or not self.world.is_main:
            return {}
        t0 = time.time()
        out = self.evaluate(self.model)
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 3), "kind": "val", **out,
               "eval_s": round(time.time() - t0, 3)}
        self._log(rec, callback)
        return rec

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, callback: Callable[[dict], None] | None = None) -> list[dict]:
        """Train until the budget is spent, continuing out_dir's checkpoint of this run if it holds one.
        SIGINT/SIGTERM at any moment (start-up, the step-0 save, a step, the final validation) let the
        current step or save finish, then raise TrainingStopped naming the checkpoint."""
        with StopOnSignal() as self._stop:
            history = self._fit(callback)
            if self._stop.signum is not None:  # arrived outside the loop: the work in hand is done and saved
                raise TrainingStopped(self._stop.signum, self.step, self.out_dir)
        return history

    def _fit(self, callback) -> list[dict]:
        if not self.world.is_main:
            return self._follow(callback)
        if self.out_dir is None:
            seed_everything(self.config.seed)
            self._share_state("run")
            return self._run(callback)
        shared = False
        try:
            check_run_folder(self.out_dir)
            RunLock.probe(self.out_dir)  # a running holder first: its saves may be mid-swap under our read
            if self._restore() and self._done():
                shared = self._share_state("done")
                return self.history  # a finished run: nothing to do, nothing rewritten
            with RunLock(self.out_dir):
                if self._restore():  # again under the lock: another process may have moved it on
                    rewind_metrics(self.out_dir, self._mark)
                else:
                    seed_everything(self.config.seed)
                    (self.out_dir / METRICS).unlink(missing_ok=True)  # a run killed before its first checkpoint
                    self.save(barrier=False)  # step 0: from here on the folder always holds a checkpoint
                collect_garbage(self.out_dir)
                shared = self._share_state("done" if self._done() else "run")
                if self._done() or self._stop.signum is not None:
                    return self.history
                return self._run(callback)
        except BaseException as e:
            if self.world.distributed and not shared:  # the other ranks wait for rank 0's word: give it
                self._share_state(str(e) if isinstance(e, NeuroError) else f"rank 0 failed ({type(e).__name__}: {e})")
            raise

    # -- data-parallel: rank 0 owns the run folder and hands its state to the others -------------------------
    def _share_state(self, status: str) -> bool:
        """Rank 0: send the status ("run", "done" or an error sentence) and the state to train from."""
        if not self.world.distributed:
            return True
        state = None
        if status in ("run", "done"):
            state = {"step": self.step, "elapsed": self.elapsed, "tokens_seen": self.tokens_seen,
                     "history": self.history, "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
                     "optimizer": _to_cpu(self.optimizer.state_dict())}
        distributed.broadcast_from_main({"status": status, "state": state})
        self._seed_rank()
        return True

    def _follow(self, callback) -> list[dict]:
        """Rank > 0: take rank 0's state (it alone touches the run folder), then train beside it."""
        msg = distributed.broadcast_from_main(None)
        if msg["status"] not in ("run", "done"):
            raise NeuroError(msg["status"])
        state = msg["state"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.elapsed, self.tokens_seen, self.history = (state["step"], state["elapsed"],
                                                                  state["tokens_seen"], state["history"])
        self._seed_rank()
        return self.history if msg["status"] == "done" else self._run(callback)

    def _seed_rank(self) -> None:
        """Each rank its own random stream (dropout masks differ across shards), derived from (seed, step, rank)."""
        if self.world.distributed:
            seed_everything((self.config.seed * 1_000_003 + self.step) * 1009 + self.world.rank)

    def _run(self, callback) -> list[dict]:
        c = self.config
        self.model.train()
        self._last_save = time.monotonic()
        total = c.max_steps or c.time_budget_s
        unit = "step" if c.max_steps else "s"
        stop = self._stop
        world = self.world
        loss_fn = self.ddp if self.ddp is not None else self.model.compute_loss
        with Progress(total, desc="train", unit=unit, enabled=world.is_main) as bar:
            bar.update(self.step if c.max_steps else self.elapsed)
            while not self._done():
                t0 = time.time()
                lr = c.lr * lr_multiplier(c.schedule, self._progress(), self.step, c.warmup_steps, c.min_lr_ratio,
                                          c.decay_frac)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)  # Muon's group runs at its own scale of the base lr
                batch = distributed.shard(self.batches(self.step), world.rank, world.size)  # this rank's rows
                batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                self.optimizer.zero_grad(set_to_none=True)
                if self.backward is not None:  # a loss that is not the model's own (rlhf/)
                    loss, parts = self.backward(self.model, batch)
                    loss_val = loss.item()
                else:
                    loss_val, parts = 0.0, {}
                    for i, micro in enumerate(_micro_batches(batch, c.grad_accum)):
                        last = i == c.grad_accum - 1
                        # gradients of all but the last micro-batch stay local: one all-reduce per step
                        sync = contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()
                        with sync:
                            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
                                loss, micro_parts = loss_fn(micro)
                            (loss / c.grad_accum).backward()
                        loss_val += loss.item() / c.grad_accum
                        for k, v in micro_parts.items():
                            parts[k] = parts.get(k, 0.0) + v / c.grad_accum
                params = [p for g in self.optimizer.param_groups for p in g["params"]]  # the aux head's too
                grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip).item()
                self.optimizer.step()
                self.step += 1
                dt = time.time() - t0
                n_tok = batch["tokens"].numel() * world.size if "tokens" in batch else 0
                if world.distributed:  # one small all-reduce: the ranks agree on loss, time, stop and save
                    due_s = bool(c.ckpt_every_s and time.monotonic() - self._last_save >= c.ckpt_every_s)
                    keys = sorted(parts)
                    agreed = distributed.all_sum([loss_val, dt, float(stop.signum is not None), float(due_s),
                                                  *(parts[k] for k in keys)], self.device)
                    loss_val, dt = agreed[0] / world.size, agreed[1] / world.size
                    stop_all, due_s = agreed[2] > 0, agreed[3] > 0
                    parts = {k: v / world.size for k, v in zip(keys, agreed[4:])}
                    if stop_all and stop.signum is None:
                        stop.signum = signal.SIGTERM  # another rank was signalled: stop at the same step
                self.elapsed += dt
                self.tokens_seen += n_tok
                bar.update(1 if c.max_steps else dt, loss=loss_val)
                if self.step % c.log_every == 0 or self._done():
                    self._log({"step": self.step, "elapsed_s": round(self.elapsed, 3), "kind": "train",
                               "loss": loss_val, "lr": lr, "grad_norm": grad_norm,
                               "tokens_per_s": n_tok / max(dt, 1e-9), **parts}, callback)
                # by seconds: when the training seconds pass the next multiple of eval_every_s (also after a resume)
                due_eval = (c.eval_every and self.step % c.eval_every == 0) or (
                    c.eval_every_s and self.elapsed // c.eval_every_s > (self.elapsed - dt) // c.eval_every_s)
                if due_eval and not self._done():
                    self._validate(callback)
                    self.model.train()
                if self._done():
                    break
                due = ((c.ckpt_every and self.step % c.ckpt_every == 0)
                       or (due_s if world.distributed
                           else c.ckpt_every_s and time.monotonic() - self._last_save >= c.ckpt_every_s))
                if stop.signum is not None or due:
                    self.save()
                if stop.signum is not None:
                    raise TrainingStopped(stop.signum, self.step, self.out_dir)
        self._validate(callback)
        self.save()
        return self.history


def _micro_batches(batch: dict, n: int) -> list[dict]:
    """`n` consecutive row slices of a batch (its tensors' first dimension)."""
    if n == 1:
        return [batch]
    rows = next(v.shape[0] for v in batch.values() if torch.is_tensor(v) and v.dim() > 0)
    m = rows // n
    return [{k: v[i * m:(i + 1) * m] if torch.is_tensor(v) and v.dim() > 0 else v for k, v in batch.items()}
            for i in range(n)]


def _to_cpu(obj):
    """A copy of a (nested) state dict with every tensor on the CPU, to send to other ranks."""
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def check_run_folder(run_dir) -> None:
    """Refuse, before any work, an output location that cannot hold a run (read only)."""
    run_dir = Path(run_dir).absolute()
    if run_dir.exists() and not run_dir.is_dir():
        raise NeuroError(f"{run_dir} is a file, not a run folder")
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NeuroError(f"{run_dir} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NeuroError(f"{existing} is not writable (read-only disk or no permission)")
    if (run_dir / "config.json").is_file() and not (run_dir / POINTER).exists():
        raise NeuroError(f"{run_dir} holds a checkpoint in the single-folder format of before 2026-11-25, which "
                         "cannot resume; choose a new folder")
    if run_dir.is_dir():
        other = sorted(p.name for p in run_dir.iterdir()
                       if p.name not in (LOCK, METRICS, POINTER) and not CKPT_RE.fullmatch(p.name)
                       and not TEMP_RE.fullmatch(p.name))
        if other:
            raise NeuroError(f"{run_dir} already holds other files ({other[0]}, ...); choose a new or empty folder")


class TrainingStopped(Interrupted):
    """SIGINT/SIGTERM stopped training after a step and a checkpoint (a KeyboardInterrupt to other code)."""

    def __init__(self, signum: int, step: int, out_dir):
        self.step = step
        where = f"checkpoint saved in {out_dir}; run the same command again to resume" if out_dir else "nothing saved"
        super().__init__(signum, f"stopped by {signal.Signals(signum).name} at step {step}; {where}")


class StopOnSignal:
    """SIGINT/SIGTERM set `signum`; the loop saves and stops after its step. A second signal stops at once
    (the last checkpoint stays valid). Only the main thread can install handlers; elsewhere a no-op."""

    def __enter__(self) -> "StopOnSignal":
        self.signum, self.old = None, {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise Interrupted(signum, f"stopped at once by a second {signal.Signals(signum).name}; no checkpoint "
                                      "was left half-written")
        self.signum = signum
        print(f"\n[train] {signal.Signals(signum).name}: finishing this step or save, then stopping", file=sys.stderr,
              flush=True)

    def __exit__(self, *exc) -> None:
        for s, handler in self.old.items():
            signal.signal(s, handler)
