"""Episodic memory on facts beyond the context window.

Task (data/aeron_tasks.py): an episode of n_facts facts "k1 k2 = v" (fresh names and digits each
episode), then a question "k1 k2 ?" whose context window holds only the last `window` facts. The
"with" arm writes every fact of the episode to its episodic memory first (earlier encoder passes,
one per fact, batched), then answers; the "without" arm sees the question and its window
only. Same backbone, batches and step budget. Reported: accuracy, and (window > 0) split by whether
the fact asked for was inside the window.
"""
from __future__ import annotations

import random

import torch

from neuro_lib.bench.aeron_modules.common import build, correct, params_of, train
from neuro_lib.data.aeron_tasks import VOCAB, facts_batch
from neuro_lib.models.aeron.enhanced import EnhancedConfig
from neuro_lib.models.aeron.episodic import EpisodicConfig
from neuro_lib.models.base import masked_cross_entropy
from neuro_lib.profiles import AeronModulesSizes

NAME = "episodic"
CLAIM = "an episodic memory lets the model use facts given in an earlier episode, beyond its context window"
METRIC = "accuracy"
HIGHER_IS_BETTER = True


def answer(model, batch):
    """Logits for the question; with a memory, the episode's facts are written first."""
    if model.memory is not None:
        model.memory.reset(batch["src"].shape[0])
        model.memorize(batch["facts"])             # (B, F, 4): encoded in one pass, written in order
    return model(batch["tokens"], batch["src"], batch["src_mask"]).logits


def loss(model, batch):
    return masked_cross_entropy(answer(model, batch), batch["targets"])


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes
    e = s.episodic
    d = s.model["d_model"]
    batches = lambda rng: facts_batch(rng, s.batch_size, e["n_facts"], e["window"])  # noqa: E731
    held = facts_batch(random.Random(10_000 + seed), s.n_eval, e["n_facts"], e["window"])
    arms = {"without": build(seed, VOCAB, s.model),
            "with": build(seed, VOCAB, s.model, EnhancedConfig(episodic=EpisodicConfig(d_model=d, **e["memory"])))}
    out, extra = {}, {"curve": {}}
    for arm, model in arms.items():
        log = train(model, batches, lambda b, m=model: loss(m, b), seed, steps, seconds, s.lr, s.warmup,
                    f"episodic {arm} seed {seed}")
        with torch.no_grad():
            ok = correct(answer(model, held), held).float()
        inside = held["in_window"]
        split = ({f"{METRIC} beyond window": ok[~inside].mean().item(), f"{METRIC} in window": ok[inside].mean().item()}
                 if e["window"] else {})
        out[arm] = {METRIC: ok.mean().item(), **split, "params": params_of(model), "train_s": log["train_s"],
                    "steps": log["steps"]}
        extra["curve"][arm] = log["curve"]
    return {**out, "extra": extra}
