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

    trainer = Trainer(model, tokenizer, TrainConfig(max_steps=200), batches, evaluate, out_dir="runs/x")
    trainer.fit(callback=lambda rec: print(rec))

Tests: tests/test_train.py (resume in process), tests/test_runs.py (real kills, full disk, locks).
"""
from __future__ import annotations

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

from neuro_lib.errors import NeuroError
from neuro_lib.models import arch_of
from neuro_lib.progress import Progress
from neuro_lib.checkpoint import (CKPT_RE, LOCK, METRICS, POINTER, TEMP_RE, collect_garbage, load_train_state,
                                        load_weights, metrics_mark, read_config, read_metrics, rewind_metrics,
                                        save_checkpoint)
from neuro_lib.train.runlock import RunLock
from neuro_lib.optim import make_adamw, warmup_cosine


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
    eval_bytes: int = 0           # validation bytes scored (0 = the whole split)
    ckpt_every: int = 0           # steps between checkpoints (0 = by time only)
    ckpt_every_s: float = 120.0   # wall-clock seconds between checkpoints (0 = by steps only)
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"          # auto = cuda when available, else cpu
    precision: str = "fp32"       # fp32 | bf16 (autocast; matmuls in bfloat16, loss in float32)

    def __post_init__(self):
        floats = {k: getattr(self, k) for k in ("lr", "time_budget_s", "ckpt_every_s", "grad_clip", "weight_decay")}
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
        if self.precision not in ("fp32", "bf16"):
            raise NeuroError(f"precision must be fp32 or bf16, got {self.precision!r}")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def schedule_key(self) -> dict:
        """The fields that define a run; a resume must match them (device and checkpoint cadence may change)."""
        key = dataclasses.asdict(self)
        for k in ("device", "ckpt_every", "ckpt_every_s"):
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
        optimiser and its state_dict (with `get_extra_state`, e.g. a rollout buffer) goes in train_state.pt."""
        self.device = config.torch_device()
        self.model, self.tokenizer, self.config = model.to(self.device), tokenizer, config
        self.batches, self.evaluate = batches, evaluate
        self.backward, self.aux = backward, aux.to(self.device) if aux is not None else None
        self.out_dir = Path(out_dir) if out_dir else None
        self.extra_config, self.info = extra_config or {}, info or {}
        params = model if aux is None else torch.nn.ModuleList([model, aux])
        self.optimizer = make_adamw(params, config.lr, config.weight_decay, betas=(0.9, config.beta2))
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
                "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(), "python_rng": random.getstate(), **metrics_mark(self.out_dir),
                **({"aux": self.aux.state_dict()} if self.aux is not None else {})}

    def save(self) -> None:
        """Checkpoint now (crash-safe); a failed save says which checkpoint is still there."""
        if not self.out_dir:
            return
        try:
            save_checkpoint(self.out_dir, self.model, self.tokenizer, self.config.schedule_key(), self._train_state(),
                            extra={**self.info, **self.extra_config})
        except NeuroError as e:
            raise NeuroError(f"{e} at step {self.step}; {self._resume_hint()}") from None
        self._last_save = time.monotonic()

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
            raise NeuroError(f"{self.out_dir} holds a finished model without train_state.pt; choose a new --out")
        history = read_metrics(self.out_dir, state)  # verified before anything is changed
        load_weights(self.model, Path(cfg["folder"]))
        if self.aux is not None:
            self.aux.load_state_dict(state["aux"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as e:
            raise NeuroError(f"the optimiser state in {cfg['folder']} does not fit the model ({e})") from None
        self.step, self.elapsed, self.tokens_seen = state["step"], state["elapsed"], state["tokens_seen"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.history, self._mark = history, state
        return True

    def _log(self, rec: dict, callback) -> None:
        self.history.append(rec)
        if self.out_dir:
            try:
                with open(self.out_dir / METRICS, "a") as f:
                    f.write(json.dumps(rec) + "\n")
            except OSError as e:
                raise NeuroError(f"could not write {self.out_dir / METRICS}: {(e.strerror or str(e)).lower()} "
                                 f"at step {self.step}; {self._resume_hint()}") from None
        if callback:
            callback(rec)

    def _validate(self, callback) -> dict:
        if self.evaluate is None:
            return {}
        t0 = time.time()
        out = self.evaluate(self.model)
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 3), "kind": "val", **out,
               "eval_s": round(time.time() - t0, 3)}
        self._log(rec, callback)
        return rec

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, callback: Callable[[dict], None] | None = None) -> list[dict]:
        """Train until the budget is spent, continuing out_dir's checkpoint of this run if it holds one."""
        if self.out_dir is None:
            seed_everything(self.config.seed)
            return self._run(callback)
        check_run_folder(self.out_dir)
        RunLock.probe(self.out_dir)  # a running holder first: its saves may be mid-swap under our read
        if self._restore() and self._done():
            return self.history  # a finished run: nothing to do, nothing rewritten
        with RunLock(self.out_dir):
            if self._restore():  # again under the lock: another process may have moved it on
                rewind_metrics(self.out_dir, self._mark)
            else:
                seed_everything(self.config.seed)
                (self.out_dir / METRICS).unlink(missing_ok=True)  # a run killed before its first checkpoint
                self.save()  # step 0: from here on the folder always holds a checkpoint
            collect_garbage(self.out_dir)
            if self._done():
                return self.history
            return self._run(callback)

    def _run(self, callback) -> list[dict]:
        c = self.config
        self.model.train()
        self._last_save = time.monotonic()
        total = c.max_steps or c.time_budget_s
        unit = "step" if c.max_steps else "s"
        with Progress(total, desc="train", unit=unit) as bar, StopOnSignal() as stop:
            bar.update(self.step if c.max_steps else self.elapsed)
            while not self._done():
                t0 = time.time()
                lr = c.lr * warmup_cosine(self._progress(), self.step, c.warmup_steps, c.min_lr_ratio)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in self.batches(self.step).items()}
                self.optimizer.zero_grad(set_to_none=True)
                if self.backward is None:
                    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
                        loss, parts = self.model.compute_loss(batch)
                    loss.backward()
                else:
                    loss, parts = self.backward(self.model, batch)
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                grad_norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip).item()
                self.optimizer.step()
                self.step += 1
                dt = time.time() - t0
                self.elapsed += dt
                n_tok = batch["tokens"].numel() if "tokens" in batch else 0
                self.tokens_seen += n_tok
                loss_val = loss.item()
                bar.update(1 if c.max_steps else dt, loss=loss_val)
                if self.step % c.log_every == 0 or self._done():
                    self._log({"step": self.step, "elapsed_s": round(self.elapsed, 3), "kind": "train",
                               "loss": loss_val, "lr": lr, "grad_norm": grad_norm,
                               "tokens_per_s": n_tok / max(dt, 1e-9), **parts}, callback)
                if c.eval_every and self.step % c.eval_every == 0 and not self._done():
                    self._validate(callback)
                    self.model.train()
                if self._done():
                    break
                due = ((c.ckpt_every and self.step % c.ckpt_every == 0)
                       or (c.ckpt_every_s and time.monotonic() - self._last_save >= c.ckpt_every_s))
                if stop.signum is not None or due:
                    self.save()
                if stop.signum is not None:
                    raise TrainingStopped(stop.signum, self.step, self.out_dir)
        self._validate(callback)
        self.save()
        return self.history


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


class TrainingStopped(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training after a step and a checkpoint (a KeyboardInterrupt to other code)."""

    def __init__(self, signum: int, step: int, out_dir):
        self.signum, self.step = signum, step
        where = f"checkpoint saved in {out_dir}; run the same command again to resume" if out_dir else "nothing saved"
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; {where}")


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
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n[train] {signal.Signals(signum).name}: finishing this step, then saving", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for s, handler in self.old.items():
            signal.signal(s, handler)
