"""Episodic memory on facts beyond the context window, with an episode-length curriculum and a retrieval loss.

Task (data/aeron_tasks.py): an episode of n_facts facts "k1 k2 = v" (fresh names and digits each episode),
then a question "k1 k2 ?" whose context window holds only the last `window` facts (0 in the bench: every
fact is beyond it, chance 0.1). The "with" arm writes every fact of the episode to its episodic memory first
(one encoder pass for all facts, written in order), then answers; the "without" arm sees the question and
its window only. Same backbone, batches and step budget. Training follows a curriculum on the episode
length (`facts_cap`: `start` facts per episode at first, n_facts from `ramp` of the budget on); the memory
arm adds `retrieval` x the cross-entropy of its read's slot logits against the slot the asked-for fact went
to (`EpisodicMemory.retrieval_logits`): without it the read had to be found through the answer loss alone,
which failed in the first record. Held-out episodes have n_facts facts. Reported: accuracy, (window > 0)
split by whether the fact asked for was inside the window, and the memory arm's retrieval accuracy (its
read's top slot is the asked-for fact's).
"""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from neuro_lib.bench.aeron_modules.common import build, correct, params_of, train
from neuro_lib.data.aeron_tasks import VOCAB, facts_batch, facts_cap
from neuro_lib.models.aeron.enhanced import EnhancedConfig
from neuro_lib.models.aeron.episodic import EpisodicConfig
from neuro_lib.models.base import masked_cross_entropy
from neuro_lib.profiles import AeronModulesSizes

NAME = "episodic"
CLAIM = "an episodic memory lets the model use facts given in an earlier episode, beyond its context window"
METRIC = "accuracy"
HIGHER_IS_BETTER = True


def answer(model, batch):
    """-> (logits for the question, retrieval logits (B, N) and the asked-for fact's slot (B,), or Nones).
    With a memory, the episode's facts are written first."""
    if model.memory is None:
        return model(batch["tokens"], batch["src"], batch["src_mask"]).logits, None, None
    model.memory.reset(batch["src"].shape[0])
    slots = model.memorize(batch["facts"])             # (B, F): encoded in one pass, written in order
    out = model(batch["tokens"], batch["src"], batch["src_mask"])
    target = slots.gather(1, batch["asked"][:, None]).squeeze(1)                 # (B,)
    return out.logits, model.memory.retrieval_logits(out.diagnostics.memory.query), target


def loss(model, batch, retrieval: float):
    logits, r_logits, target = answer(model, batch)
    lm = masked_cross_entropy(logits, batch["targets"])
    if r_logits is None or retrieval == 0.0:
        return lm
    return lm + retrieval * F.cross_entropy(r_logits, target)


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes
    e = s.episodic
    d = s.model["d_model"]
    c = e["curriculum"]
    batches = lambda rng, frac: facts_batch(  # noqa: E731
        rng, s.batch_size, facts_cap(frac, e["n_facts"], c["start"], c["ramp"]), e["window"])
    held = facts_batch(random.Random(10_000 + seed), s.n_eval, e["n_facts"], e["window"])
    arms = {"without": build(seed, VOCAB, s.model),
            "with": build(seed, VOCAB, s.model, EnhancedConfig(episodic=EpisodicConfig(d_model=d, **e["memory"])))}
    out, extra = {}, {"curve": {}, "curriculum": c, "retrieval_weight": e["retrieval"]}
    for arm, model in arms.items():
        log = train(model, batches, lambda b, m=model: loss(m, b, e["retrieval"]), seed, steps, seconds, s.lr,
                    s.warmup, f"episodic {arm} seed {seed}", curriculum=True)
        with torch.no_grad():
            logits, r_logits, target = answer(model, held)
            ok = correct(logits, held).float()
        inside = held["in_window"]
        split = ({f"{METRIC} beyond window": ok[~inside].mean().item(), f"{METRIC} in window": ok[inside].mean().item()}
                 if e["window"] else {})
        out[arm] = {METRIC: ok.mean().item(), **split, "params": params_of(model), "train_s": log["train_s"],
                    "steps": log["steps"]}
        if r_logits is not None:
            extra["retrieval_accuracy"] = (r_logits.argmax(1) == target).float().mean().item()
        extra["curve"][arm] = log["curve"]
    return {**out, "extra": extra}
