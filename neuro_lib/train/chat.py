"""Train RNK on synthetic chat (data/chat.py) with the shared Trainer, sizes from profiles.py.

    result = train_rnk(get_profile("smoke"), overrides={"use_hrm": False}, out_dir="runs/rnk-nohrm")
    result.model, result.history   # history records carry token/stop/intent/answerable/contrastive losses

Budgets are in optimiser steps (profile.tasks.rnk_chat.steps), so ablations compare
at equal budget and runs are reproducible. Validation on held-out templates reports the
same loss terms (`val_*`). Plain byte-LM pre-training of RNK goes through train_lm
("rnk" in ARCHS): a batch without chat labels trains the token loss alone.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from neuro_lib.data.chat import chat_batches, collate_chat, generate_chat, model_sizes, read_chat_jsonl
from neuro_lib.models import build_model
from neuro_lib.profiles import Profile, RnkChatSizes
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.lm import TrainResult
from neuro_lib.train.trainer import TrainConfig, Trainer, check_run_folder, seed_everything


def train_rnk(profile: Profile, overrides: dict | None = None, steps: int | None = None, seed: int = 0,
              out_dir=None, callback=None, eval_every: int = 50, chat_data=None,
              time_budget_s: float | None = None) -> TrainResult:
    """Build RNK from the profile's sizes (+ overrides), train on generated chat (or on the records of the
    JSONL file `chat_data`, data/chat.py format), validate on generated held-out phrasings, return the result.
    The budget is `steps` (default: the profile's), or `time_budget_s` seconds when given."""
    sizes = profile.tasks.rnk_chat
    if out_dir is not None:
        check_run_folder(out_dir)
    cfg = {**model_sizes(), **profile.model("rnk"), **(overrides or {})}
    budget = dict(max_steps=0, time_budget_s=time_budget_s) if time_budget_s else dict(max_steps=steps or sizes.steps)
    config = TrainConfig(batch_size=sizes.batch_size, block_size=cfg["chunk_len"], lr=sizes.lr, warmup_steps=20,
                         eval_every=eval_every, log_every=10, seed=seed, **budget)
    train = read_chat_jsonl(chat_data) if chat_data else generate_chat(sizes.n_train, seed=seed, split="train")
    seed_everything(seed)  # before the model is built: the seed fixes the initial weights
    model = build_model("rnk", **cfg)
    P = model.config.chunk_len
    val_batch = collate_chat(generate_chat(sizes.n_eval, seed=seed + 1, split="heldout"), P)

    @torch.no_grad()
    def evaluate(m):
        m.eval()
        loss, parts = m.compute_loss(val_batch)
        return {"val_loss": loss.item(), **{f"val_{k}": v for k, v in parts.items()}}

    trainer = Trainer(model, ByteTokenizer(), config, chat_batches(train, config.batch_size, P, seed), evaluate,
                      out_dir=out_dir, extra_config={"task": "rnk_chat", "profile": profile.name, "chat_data": _data_id(chat_data, sizes)})
    history = trainer.fit(callback=callback)
    return TrainResult(model.eval(), ByteTokenizer(), history, out_dir)


def _data_id(chat_data, sizes: RnkChatSizes) -> str:
    """Part of the run's identity: the JSONL file's hash, or the size of the generated set."""
    if chat_data:
        return "sha256:" + hashlib.sha256(Path(chat_data).read_bytes()).hexdigest()
    return f"generated:{sizes.n_train}"
