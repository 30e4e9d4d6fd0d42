"""Reasoning engine (complexity gate -> tree of thought -> scratchpad) on variable chains, with a depth curriculum.

Task (data/aeron_tasks.py): "a = 3 ; b = a ; c = b" and `chains - 1` distractor chains, shuffled, then "? c":
depth 1..max_depth lookups, chance 1 / chains. `ask` "decoder" also feeds the question to the decoder; `names`
"wide" draws the variables from 80 symbols instead of 16 (too many depth-1 problems to learn by heart). Training
follows a depth curriculum (depth 1 first, one more level every `ramp / max_depth` of the budget, `depth_cap`) on
the "train" split; held-out problems, uniform over 1..max_depth, come from the "test" split, which shares no
problem with training (`chain_split`). Three arms from the same backbone weights and batches:
  without   the backbone
  with      + the ReasoningEngine with its learned gate (the seed's threshold); the verdict's arm
  open      + the same engine with the gate forced open (every row runs, the update unscaled): whether the
            rounds carry anything when the gate cannot close on them (the learned gate closed itself in the
            first record). Reported in "extra" per seed, with its accuracy by depth.
Reported: accuracy overall and by depth; the learned gate's skip rate at its threshold and a threshold sweep
(skip rate against accuracy left); the gate scores by depth.
"""
from __future__ import annotations

import random

import torch

from neuro_lib.bench.aeron_modules.common import build, correct, params_of, train
from neuro_lib.data.aeron_tasks import VOCAB, chain_batch, depth_cap
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


def arms(seed: int, s: AeronModulesSizes) -> dict:
    """The three models of a seed: the backbone, + engine (learned gate), + engine (gate forced open)."""
    r = s.reasoning
    d = s.model["d_model"]

    def engine(gate):
        return EnhancedConfig(reasoning=ReasoningConfig(d_model=d, gate=gate, **r["engine"]),
                              gate_penalty=r["gate_penalty"])
    return {"without": build(seed, VOCAB, s.model), "with": build(seed, VOCAB, s.model, engine("learned")),
            "open": build(seed, VOCAB, s.model, engine("open"))}


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes
    r = s.reasoning
    depth = r["max_depth"]
    task = dict(ask=r["ask"], chains=r["chains"], names=r["names"])
    batches = lambda rng, frac: chain_batch(rng, s.batch_size, depth_cap(frac, depth, r["ramp"]),  # noqa: E731
                                            split="train", **task)
    held = chain_batch(random.Random(10_000 + seed), s.n_eval, depth, split="test", **task)
    out, extra = {}, {"curve": {}, "ramp": r["ramp"], "threshold": r["engine"]["threshold"]}
    for arm, model in arms(seed, s).items():
        rows_before = model.reasoning.rows_processed if model.reasoning is not None else 0
        log = train(model, batches, lambda b, m=model: m.compute_loss(b)[0], seed, steps, seconds, s.lr,
                    s.warmup, f"reasoning {arm} seed {seed}", curriculum=True)
        ev = evaluate(model, held, depth)
        extra["curve"][arm] = log["curve"]
        if arm == "open":
            ev.pop("skipped")
            gate = ev.pop("gate by depth")
            extra["open"] = {**ev, "gate_by_depth": gate, "steps": log["steps"], "train_s": log["train_s"],
                             "rows_per_step": (model.reasoning.rows_processed - rows_before) / max(log["steps"], 1)}
            continue
        if arm == "with":
            extra["gate_by_depth"] = ev.pop("gate by depth")
            extra["rows_per_step"] = (model.reasoning.rows_processed - rows_before) / max(log["steps"], 1)
            extra["gate_sweep"] = []
            for t in r["thresholds"]:
                sw = evaluate(model, held, depth, threshold=t)
                extra["gate_sweep"].append({"threshold": t, "skipped": sw["skipped"], METRIC: sw[METRIC]})
        else:
            ev["skipped"] = 1.0   # no engine: every row goes without it
        out[arm] = {**ev, "params": params_of(model), "train_s": log["train_s"], "steps": log["steps"]}
    return {**out, "extra": extra}
