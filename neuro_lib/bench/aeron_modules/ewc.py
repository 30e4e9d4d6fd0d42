"""Experiment: EWC continual learning with task embeddings (models/aeron/continual.py) on Aeron's encoder.

Task A then task B (data/aeron_learn_tasks.py `majority_task`: token sequences labelled by the most frequent
of four id groups; A uses the lower half of the vocabulary grouped by `id % 4`, B the upper half grouped in
blocks, so one network can hold both but B's training moves the weights A needs). A small
Aeron encoder classifier (models/aeron/classifier.py) trains on A for `steps`, then on B for `steps`. Four arms,
each from the same A-trained weights of its architecture:
  finetune          B's loss alone, no task ids (the "without" arm)
  task_emb          B's loss alone, a TaskEmbedding tells the model which task it is doing
  ewc               B's loss + EWC penalty (Fisher of the A-trained model on A's inputs), no task ids
  ewc+task_emb      both (the "with" arm: the seed's ContinualLearningModule)
Metric: forgetting of A = A's test accuracy after A minus after B (lower is better), and B's test accuracy
(what holding A costs B). The Fisher of a confident model is tiny (p(yhat) near 1 leaves little gradient), so
lambda is large (profiles.py; chosen on seed 0, docs/LOG.md 2026-11-26).

    from neuro_lib.bench.aeron_modules import ewc
    ewc.run(seed=0, steps=300, sizes=get_profile("bench").tasks.aeron_modules)
"""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

from neuro_lib.data.aeron_learn_tasks import batch_indices, majority_task
from neuro_lib.models.aeron.classifier import AeronClassifier, ClassifierConfig
from neuro_lib.models.aeron.continual import EWC, EWCConfig
from neuro_lib.bench.aeron_modules.common import params_of, train
from neuro_lib.profiles import AeronModulesSizes

NAME = "ewc"
CLAIM = "EWC-based Fisher consolidation with task embeddings keeps task A while training task B (ContinualLearningModule)"
METRIC = "forgetting_A"
HIGHER_IS_BETTER = False
ARMS = {"finetune": (False, False), "task_emb": (True, False), "ewc": (False, True), "ewc+task_emb": (True, True)}
TASK_ID = {"A": 0, "B": 1}


def logits_fn(model, batch):
    """The classifier's logits for a batch dict {"x", "task"}: what the Fisher differentiates."""
    return model(batch["x"], batch["task"] if model.task is not None else None)


@torch.no_grad()
def accuracy(model, x, y, task: str) -> float:
    model.eval()
    tid = torch.full((len(y),), TASK_ID[task]) if model.task is not None else None
    return (model(x, tid).argmax(-1) == y).float().mean().item()


def train_task(model, x, y, task: str, s: dict, steps: int, seconds, seed: int, ewc: EWC | None = None):
    """`steps` (or `seconds`) of cross-entropy on one task [+ the EWC penalty] -> common.train's record."""
    tid = TASK_ID[task]

    def batches(rng):
        idx = batch_indices(rng, len(y), s.batch_size)
        return {"x": x[idx], "y": y[idx], "task": torch.full((len(idx),), tid)}

    def loss(batch):
        ce = F.cross_entropy(logits_fn(model, batch), batch["y"])
        return ce + ewc.penalty(model) if ewc is not None else ce

    return train(model, batches, loss, seed, steps, seconds, s.lr, s.warmup, f"ewc task {task}")


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes.ewc
    data = {t: (majority_task(t, s.n_train, seed, s.vocab, s.length),
                majority_task(t, s.n_test, 10_000 + seed, s.vocab, s.length)) for t in ("A", "B")}
    (xa, ya), (xa_te, ya_te) = data["A"]
    (xb, yb), (xb_te, yb_te) = data["B"]
    arms, curves = {}, {}
    for te in (False, True):
        torch.manual_seed(seed)
        cfg = ClassifierConfig(n_classes=4, inputs="tokens", vocab_size=s.vocab, n_tasks=2 if te else 0, **s.model)
        base = AeronClassifier(cfg)
        rec_a = train_task(base, xa, ya, "A", s, steps, seconds, seed)
        acc_a0 = accuracy(base, xa_te, ya_te, "A")
        for name, (arm_te, arm_ewc) in ARMS.items():
            if arm_te != te:
                continue
            model = copy.deepcopy(base)
            t0 = time.perf_counter()
            ewc = None
            if arm_ewc:
                n_f = s.n_fisher
                batches = [{"x": xa[i:i + 16], "task": torch.zeros(len(xa[i:i + 16]), dtype=torch.int64)}
                           for i in range(0, n_f, 16)]
                ewc = EWC.from_task(model, logits_fn, batches, EWCConfig(lam=s.lam),
                                    generator=torch.Generator().manual_seed(seed))
            fisher_s = time.perf_counter() - t0
            rec_b = train_task(model, xb, yb, "B", s, steps, seconds, seed + 1, ewc)
            arms[name] = {"forgetting_A": acc_a0 - accuracy(model, xa_te, ya_te, "A"),
                          "acc_A_before": acc_a0, "acc_A_after": accuracy(model, xa_te, ya_te, "A"),
                          "acc_B": accuracy(model, xb_te, yb_te, "B"), "params": params_of(model),
                          "train_s": rec_a["train_s"] + fisher_s + rec_b["train_s"], "steps": rec_b["steps"]}
            curves[name] = {"loss_A": rec_a["curve"], "loss_B": rec_b["curve"]}
    return {"with": arms["ewc+task_emb"], "without": arms["finetune"],
            "extra": {"arms": arms, "curves": curves, "lam": s.lam, "n_fisher": s.n_fisher}}
