"""Fine-tune a base model on one task, full or LoRA, recording the parent it came from.

    child = finetune(base, "reason", "runs/reason", profile=get_profile("smoke"))   # full fine-tuning
    child = finetune(base, "struct", "runs/struct-lora", lora_rank=8, profile=p)   # LoRA, saved merged
    check_lineage(child)["parent"]   # {"id": checkpoint_id(base), "path", "method": "finetune"|"lora", "task", ...}

Tasks and their prompt -> answer pairs are data/sft.py's (reason, struct, code, reader, chat; training templates
only). A pair is laid out `prompt <s> answer <end>` (train/seq2seq.py's decoder layout, the layout the base was
pretrained on) and the loss covers the answer and its end token only: `loss_mask` is 0 on the prompt.

A child is an ordinary checkpoint of the base's arch with `parent = lineage(base, method, ...)`, so a task vector
(child - base) is well defined and a child whose base changed is refused (`check_lineage`). A LoRA child is saved
with its deltas merged into the weights (models/lora.py); the adapter alone (A and B) is kept beside it in
`adapter.safetensors`. LoRA training runs in `out/adapter-run/` (a Trainer run folder, resumable) and that folder
is removed once the merged child is written.

Refused in one sentence (NeuroError), before anything is written: an unknown task, a missing or unreadable base, a
base of another tokenizer or without the answer marker, a base whose own parent changed, an `out` that holds
another run (another base, task, method or recipe) or other files.

Tests: tests/test_family_finetune.py.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from neuro_lib.atomic import write_atomic
from neuro_lib.checkpoint import (CKPT_RE, LOCK, METRICS, POINTER, TEMP_RE, check_lineage, lineage, load_checkpoint,
                                  read_config, save_checkpoint)
from neuro_lib.data.sft import TOKENIZER, VOCAB, check_task, task_pairs, task_variant
from neuro_lib.errors import NeuroError
from neuro_lib.models.lora import TARGETS, apply_lora, lora_state, merge_lora
from neuro_lib.profiles import Profile
from neuro_lib.train.seq2seq import collate
from neuro_lib.train.trainer import TrainConfig, Trainer

RECIPE_VERSION = 1   # part of every child's identity: bump when the recipe below changes
ADAPTER_RUN = "adapter-run"
ADAPTER_FILE = "adapter.safetensors"


def check_base(base) -> dict:
    """The base's verified config, or one sentence saying why it cannot be fine-tuned on the family's tasks."""
    base = Path(base)
    if not base.exists():
        raise NeuroError(f"base {base} does not exist (build one with `neuro pretrain`)")
    cfg = check_lineage(base)  # verified files; a base that is itself a child must still match its parent
    if cfg.get("tokenizer") != TOKENIZER:
        raise NeuroError(f"base {base} uses the {cfg.get('tokenizer')!r} tokenizer but the tasks are byte-level "
                         f"({TOKENIZER!r}); fine-tune a base built by `neuro pretrain`")
    model = cfg["model"]
    if model.get("vocab_size") != VOCAB or model.get("mode", "decoder") != "decoder":
        raise NeuroError(f"base {base} is not a family base (needs a decoder with vocabulary {VOCAB}: bytes plus "
                         f"the answer marker; it has {model.get('vocab_size')}); build one with `neuro pretrain`")
    return cfg


def default_steps(task: str, profile: Profile) -> int:
    """The profile's fine-tuning steps for `task`: finetune.steps times the task's task_scale (default 1)."""
    s = profile.tasks.family.finetune
    return s.steps * s.task_scale.get(task, 1)


def recipe(task: str, profile: Profile, steps: int, lora_rank: int, seed: int) -> dict:
    """What makes a fine-tune this fine-tune (besides its parent): part of the child's identity. The training data's
    generator variant (data/sft.VARIANTS) is in it when it is not the original "templated" one (so children made
    before variants existed keep their identity)."""
    s = profile.tasks.family.finetune
    r = {"version": RECIPE_VERSION, "task": task, "profile": profile.name, "steps": steps, "seed": seed,
         "lora_rank": lora_rank, "batch_size": s.batch_size, "n_train": s.n_train, "max_len": s.max_len,
         "lr": s.lora_lr if lora_rank else s.lr}
    if lora_rank:
        r.update(lora_alpha=s.lora_alpha, lora_targets=list(TARGETS))
    if task_variant(task) != "templated":
        r["data"] = task_variant(task)
    return r


def task_batches(pairs, batch_size: int, seed: int):
    """batches(step) for the Trainer: a pure function of (seed, step), the decoder layout with the prompt masked."""
    B = min(batch_size, len(pairs))

    def batches(step: int) -> dict:
        idx = np.random.default_rng([seed, step]).choice(len(pairs), B, replace=False)
        return collate([pairs[i] for i in idx], "decoder")

    return batches


def _ours(out: Path, parent: dict, rec: dict) -> bool:
    """Read only: True if `out` holds this child (finished), False if it holds nothing yet or an unfinished
    LoRA run of it; refuses another run or foreign files."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise NeuroError(f"{out} is a file, not a run folder")
    if (out / POINTER).exists():
        cfg = read_config(out)
        if cfg.get("finetune") != rec or cfg.get("parent") != parent:
            old = cfg.get("parent") if isinstance(cfg.get("parent"), dict) else {}
            if cfg.get("finetune") == rec and old.get("path") == parent["path"] and old.get("id") != parent["id"]:
                raise NeuroError(f"{out} was fine-tuned from {parent['path']}, which has changed since; "
                                 "choose a new --out")
            raise NeuroError(f"{out} holds another run (another base, task, method or recipe); choose a new --out")
        return cfg["step"] >= rec["steps"] or "lora" in cfg
    allowed = {LOCK, METRICS, POINTER, ADAPTER_RUN, ADAPTER_FILE}
    other = sorted(p.name for p in out.iterdir()
                   if p.name not in allowed and not CKPT_RE.fullmatch(p.name) and not TEMP_RE.fullmatch(p.name))
    if other:
        raise NeuroError(f"{out} already holds other files ({other[0]}, ...); choose a new or empty folder")
    return False


def finetune(base: str | Path, task: str, out: str | Path, *, steps: int | None = None, lora_rank: int = 0,
             seed: int = 0, profile: Profile, callback=None) -> Path:
    """Fine-tune `base` on `task` into the run folder `out` (resumed if interrupted); returns `out`."""
    check_task(task)
    if lora_rank < 0:
        raise NeuroError(f"the LoRA rank must be positive (0 = full fine-tuning), got {lora_rank}")
    if steps is not None and steps <= 0:
        raise NeuroError(f"steps must be positive, got {steps}")
    sizes = profile.tasks.family.finetune
    steps = steps or default_steps(task, profile)
    base, out = Path(base), Path(out)
    check_base(base)
    method = "lora" if lora_rank else "finetune"
    parent = lineage(base, method, task=task, steps=steps, rank=lora_rank)
    rec = recipe(task, profile, steps, lora_rank, seed)
    if _ours(out, parent, rec):
        shutil.rmtree(out / ADAPTER_RUN, ignore_errors=True)  # a LoRA run killed after its merged save
        return out

    model, tokenizer, _ = load_checkpoint(base)
    pairs = [p for p in task_pairs(task, sizes.n_train, seed=seed, split="train")
             if len(p.source) + len(p.target) + 2 <= sizes.max_len]
    val = [p for p in task_pairs(task, sizes.n_val, seed=seed + 10_000, split="train")
           if len(p.source) + len(p.target) + 2 <= sizes.max_len]
    if not pairs:
        raise NeuroError(f"task {task!r} has no training pairs of at most {sizes.max_len} bytes")
    val_batch = collate(val or pairs[:1], "decoder")
    if lora_rank:
        torch.manual_seed(seed)  # A's initialisation
        apply_lora(model, lora_rank, sizes.lora_alpha)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = TrainConfig(batch_size=min(sizes.batch_size, len(pairs)), block_size=sizes.max_len,
                         lr=rec["lr"], warmup_steps=sizes.warmup_steps, max_steps=steps,
                         eval_every=sizes.eval_every, weight_decay=0.0 if lora_rank else 0.1, log_every=10,
                         seed=seed)

    @torch.no_grad()
    def evaluate(m) -> dict:
        m.eval()
        loss, _ = m.compute_loss(val_batch)
        return {"val_loss": loss.item()}

    what = f"LoRA rank {lora_rank} ({n_train / 1e3:.0f}k trainable parameters)" if lora_rank else \
        f"full fine-tuning ({n_train / 1e6:.2f}M parameters)"
    print(f"[finetune] {what} of {base} on task {task!r}: {steps} steps of {config.batch_size} pairs "
          f"({len(pairs)} training pairs) -> {out}; the profile's {sizes.steps} steps take "
          f"{profile.tasks.family.about_finetune}", file=sys.stderr, flush=True)
    extra = {"parent": parent, "finetune": rec}
    run = out / ADAPTER_RUN if lora_rank else out
    trainer = Trainer(model, tokenizer, config, task_batches(pairs, config.batch_size, seed), evaluate, out_dir=run,
                      extra_config=extra)
    trainer.fit(callback=callback)
    if lora_rank:
        _save_lora_child(model, tokenizer, out, config, extra, lora_rank, sizes.lora_alpha)
    return out


def _save_lora_child(model, tokenizer, out: Path, config: TrainConfig, extra: dict, rank: int, alpha: float) -> None:
    """The adapter beside, then the merged child (pointer last), then the adapter's run folder goes."""
    adapter = lora_state(model)
    write_atomic(out / ADAPTER_FILE, save_safetensors(adapter, metadata={"rank": str(rank), "alpha": str(alpha)}))
    merge_lora(model)
    save_checkpoint(out, model.eval(), tokenizer, config.schedule_key(), None,
                    extra={**extra, "lora": {"rank": rank, "alpha": alpha, "targets": list(TARGETS),
                                             "adapter": ADAPTER_FILE}})
    shutil.rmtree(out / ADAPTER_RUN, ignore_errors=True)
