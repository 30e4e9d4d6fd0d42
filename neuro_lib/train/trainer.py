"""One Trainer for every model in neuro_lib.

AdamW (decay/no-decay groups), warmup + cosine schedule, gradient clipping, a budget in
steps or wall-clock seconds (the schedule follows whichever is given), periodic
validation, progress (tqdm or log lines), metrics in `metrics.jsonl`, and checkpoints in
the directory format of DESIGN.md. A run interrupted at any point resumes from its last
checkpoint and continues the same run: batches are a pure function of (seed, step) and
the RNG state is restored, so with a fixed seed a resumed run matches an unbroken one.

    trainer = Trainer(model, tokenizer, TrainConfig(max_steps=200), batches, evaluate, out_dir="runs/x")
    trainer.fit(callback=lambda rec: print(rec))
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neuro_lib.errors import NeuroError
from neuro_lib.models import arch_of
from neuro_lib.progress import Progress
from neuro_lib.train.checkpoint import load_train_state, read_config, save_checkpoint
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
    ckpt_every: int = 0           # steps between checkpoints (0 = only at the end)
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"          # auto = cuda when available, else cpu
    precision: str = "fp32"       # fp32 | bf16 (autocast; matmuls in bfloat16, loss in float32)

    def __post_init__(self):
        if self.max_steps < 0 or self.time_budget_s < 0:
            raise NeuroError("the training budget must be positive")
        if self.max_steps == 0 and self.time_budget_s <= 0:
            raise NeuroError("give a positive training budget: max_steps or time_budget_s")
        if self.batch_size <= 0 or self.block_size <= 0:
            raise NeuroError("batch_size and block_size must be positive")
        if self.precision not in ("fp32", "bf16"):
            raise NeuroError(f"precision must be fp32 or bf16, got {self.precision!r}")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def schedule_key(self) -> dict:
        """The fields that define a run; a resume must match them (the device may change)."""
        key = dataclasses.asdict(self)
        key.pop("device")
        return key


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, model, tokenizer, config: TrainConfig, batches: Callable[[int], dict],
                 evaluate: Callable[[torch.nn.Module], dict] | None = None, out_dir=None, extra_config=None):
        """`batches(step) -> {"tokens", "targets", ...}` must be deterministic in step;
        `evaluate(model) -> {"val_bpb": ..., ...}` runs at each validation."""
        self.device = config.torch_device()
        self.model, self.tokenizer, self.config = model.to(self.device), tokenizer, config
        self.batches, self.evaluate = batches, evaluate
        self.out_dir = Path(out_dir) if out_dir else None
        self.extra_config = extra_config or {}
        self.optimizer = make_adamw(model, config.lr, config.weight_decay, betas=(0.9, config.beta2))
        self.step, self.elapsed, self.history = 0, 0.0, []
        self.tokens_seen = 0

    # -- budget ------------------------------------------------------------------------------
    def _progress(self) -> float:
        c = self.config
        return self.step / c.max_steps if c.max_steps else self.elapsed / c.time_budget_s

    def _done(self) -> bool:
        return self._progress() >= 1.0

    # -- persistence -------------------------------------------------------------------------
    def _train_state(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "tokens_seen": self.tokens_seen,
                "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(), "python_rng": random.getstate()}

    def save(self) -> None:
        if self.out_dir:
            save_checkpoint(self.out_dir, self.model, self.tokenizer, self.config.schedule_key(),
                            self._train_state(), extra=self.extra_config)

    def try_resume(self) -> bool:
        """Resume from out_dir if it holds a checkpoint of this same run; refuse another run's."""
        if not self.out_dir or not (self.out_dir / "config.json").exists():
            return False
        from safetensors.torch import load_model

        cfg = read_config(self.out_dir)
        mine = {"arch": arch_of(self.model), "model": dataclasses.asdict(self.model.config),
                "tokenizer": self.tokenizer.spec, "train": self.config.schedule_key()}
        theirs = {k: cfg.get(k) for k in mine}
        if theirs != mine:
            diff = sorted(k for k in mine if theirs[k] != mine[k])
            raise NeuroError(f"{self.out_dir} holds another run (its {', '.join(diff)} differ); choose a new --out")
        state = load_train_state(self.out_dir)
        if state is None:
            raise NeuroError(f"{self.out_dir} holds a finished model without train_state.pt; choose a new --out")
        load_model(self.model, str(self.out_dir / "model.safetensors"), strict=False, device=str(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.elapsed, self.tokens_seen = state["step"], state["elapsed"], state["tokens_seen"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        mpath = self.out_dir / "metrics.jsonl"
        if mpath.exists():  # keep only records up to the checkpoint's step
            recs = [json.loads(line) for line in mpath.read_text().splitlines() if line.strip()]
            self.history = [r for r in recs if r["step"] <= self.step]
            mpath.write_text("".join(json.dumps(r) + "\n" for r in self.history))
        return True

    def _log(self, rec: dict, callback) -> None:
        self.history.append(rec)
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
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
    def fit(self, callback: Callable[[dict], None] | None = None, stop_after_steps: int | None = None) -> list[dict]:
        """Train until the budget is spent. `stop_after_steps` simulates an interruption (tests)."""
        c = self.config
        resumed = self.try_resume()
        if resumed and self._done():
            return self.history  # finished run: nothing to do, nothing rewritten
        if not resumed:
            seed_everything(c.seed)
        self.model.train()
        total = c.max_steps or c.time_budget_s
        unit = "step" if c.max_steps else "s"
        done_at_start = self.step if c.max_steps else self.elapsed
        with Progress(total, desc="train", unit=unit) as bar:
            bar.update(done_at_start)
            loss_val = float("nan")
            while not self._done():
                if stop_after_steps is not None and self.step >= stop_after_steps:
                    self.save()
                    return self.history
                t0 = time.time()
                lr = c.lr * warmup_cosine(self._progress(), self.step, c.warmup_steps, c.min_lr_ratio)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in self.batches(self.step).items()}
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16"):
                    loss, parts = self.model.compute_loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip).item()
                self.optimizer.step()
                self.step += 1
                dt = time.time() - t0
                self.elapsed += dt
                n_tok = batch["tokens"].numel()
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
                if c.ckpt_every and self.step % c.ckpt_every == 0:
                    self.save()
        self._validate(callback)
        self.save()
        return self.history
