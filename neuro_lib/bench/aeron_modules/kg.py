"""Knowledge-graph attention on questions over a synthetic graph.

Task (data/aeron_tasks.py): a fixed random graph (every entity has one tail per relation); the
question "e r ?" asks for the tail. A quarter of the (entity, relation) pairs are never asked in
training. The "with" arm gets, with each question, the question entity's triples and a distractor
entity's (KnowledgeGraphAttention); the "without" arm only the question, so it can learn the trained
pairs by heart but has nothing to go on for the held-out ones. Half the training rows (`fresh`) ask
about a fresh random graph, answerable only from the triples given: without them a model that can
memorise the fixed graph never learns to read it (a 600-step run with fresh=0, docs/LOG.md). Both arms
see the same batches, budget and backbone.
Reported: accuracy on held-out pairs (the metric) and on trained pairs.
"""
from __future__ import annotations

import random

import torch

from neuro_lib.bench.aeron_modules.common import build, correct, params_of, train
from neuro_lib.data.aeron_tasks import VOCAB, KnowledgeGraph, kg_batch
from neuro_lib.models.aeron.enhanced import EnhancedConfig
from neuro_lib.models.aeron.knowledge_graph import KGConfig
from neuro_lib.profiles import AeronModulesSizes

NAME = "kg"
CLAIM = "knowledge-graph attention injects structured knowledge: questions about facts never trained on are answerable"
METRIC = "heldout accuracy"
HIGHER_IS_BETTER = True


@torch.no_grad()
def accuracy(model, batch) -> float:
    out = model(batch["tokens"], batch["src"], batch["src_mask"], entities=batch["entities"])
    return correct(out.logits, batch).float().mean().item()


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes
    k = s.kg
    graph = KnowledgeGraph(seed=seed, n_entities=k["n_entities"], n_relations=k["n_relations"], heldout=k["heldout"])
    d = s.model["d_model"]
    batches = lambda rng: kg_batch(rng, graph, s.batch_size, "train", k["distractors"], k["fresh"])  # noqa: E731
    rng = random.Random(10_000 + seed)
    held = {split: kg_batch(rng, graph, s.n_eval, split, k["distractors"]) for split in ("test", "train")}
    kg_cfg = KGConfig(d_model=d, n_entities=k["n_entities"], n_relations=k["n_relations"])
    arms = {"without": build(seed, VOCAB, s.model), "with": build(seed, VOCAB, s.model, EnhancedConfig(kg=kg_cfg))}
    out, extra = {}, {"curve": {}}
    for arm, model in arms.items():
        log = train(model, batches, lambda b, m=model: m.compute_loss(b)[0], seed, steps, seconds, s.lr,
                    s.warmup, f"kg {arm} seed {seed}")
        out[arm] = {METRIC: accuracy(model, held["test"]), "trained accuracy": accuracy(model, held["train"]),
                    "params": params_of(model), "train_s": log["train_s"], "steps": log["steps"]}
        extra["curve"][arm] = log["curve"]
    return {**out, "extra": extra}
