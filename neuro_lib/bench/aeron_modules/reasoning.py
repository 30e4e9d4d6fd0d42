"""Reasoning engine (complexity gate -> tree of thought -> scratchpad) on chain arithmetic.

Task (data/aeron_tasks.py): "x op a op b ... ?" mod 10, depth 1..max_depth; each step needs the value
before it. Both arms: the same backbone, batches and step budget; "with" adds the ReasoningEngine and
the gate's compute penalty. Reported: accuracy overall and by depth; for the trained "with" model, a
sweep of the gate threshold: the share of inputs it skips against the accuracy left.
"""
from __future__ import annotations

import random

import torch

from neuro_lib.bench.aeron_modules.common import build, correct, params_of, train
from neuro_lib.data.aeron_tasks import VOCAB, chain_batch
from neuro_lib.models.aeron.enhanced import EnhancedConfig
from neuro_lib.models.aeron.reasoning import ReasoningConfig
from neuro_lib.profiles import AeronModulesSizes

NAME = "reasoning"
CLAIM = ("the reasoning engine (complexity gate, tree of thought, scratchpad) solves multi-step problems "
         "better, and its gate skips simple inputs at little accuracy cost")
METRIC = "accuracy"
HIGHER_IS_BETTER = True


@torch.no_grad()
def evaluate(model, batch, max_depth: int, threshold: float | None = None) -> dict:
    out = model(batch["tokens"], batch["src"], batch["src_mask"], threshold=threshold)
    ok = correct(out.logits, batch).float()
    res = {METRIC: ok.mean().item()}
    for d in range(1, max_depth + 1):
        res[f"{METRIC} depth {d}"] = ok[batch["depth"] == d].mean().item()
    r = out.diagnostics.reasoning
    if r is not None:
        res["skipped"] = r.skipped.float().mean().item()
        res["gate by depth"] = [r.gate_scores[batch["depth"] == d].mean().item() for d in range(1, max_depth + 1)]
    return res


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes
    r = s.reasoning
    d = s.model["d_model"]
    batches = lambda rng: chain_batch(rng, s.batch_size, r["max_depth"])  # noqa: E731
    held = chain_batch(random.Random(10_000 + seed), s.n_eval, r["max_depth"])
    arms = {"without": build(seed, VOCAB, s.model),
            "with": build(seed, VOCAB, s.model, EnhancedConfig(
                reasoning=ReasoningConfig(d_model=d, **r["engine"]), gate_penalty=r["gate_penalty"]))}
    out, extra = {}, {"curve": {}}
    for arm, model in arms.items():
        log = train(model, batches, lambda b, m=model: m.compute_loss(b)[0], seed, steps, seconds, s.lr,
                    s.warmup, f"reasoning {arm} seed {seed}")
        ev = evaluate(model, held, r["max_depth"])
        extra["curve"][arm] = log["curve"]
        if arm == "with":
            extra["gate_by_depth"] = ev.pop("gate by depth")
            ev.pop("skipped")
            extra["gate_sweep"] = []
            for t in r["thresholds"]:
                sw = evaluate(model, held, r["max_depth"], threshold=t)
                extra["gate_sweep"].append({"threshold": t, "skipped": sw["skipped"], METRIC: sw[METRIC]})
        out[arm] = {**ev, "params": params_of(model), "train_s": log["train_s"], "steps": log["steps"]}
    return {**out, "extra": extra}
