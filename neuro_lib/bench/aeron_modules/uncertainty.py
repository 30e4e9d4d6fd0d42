"""Experiment: calibration and selective accuracy of Aeron's uncertainty methods (models/aeron/uncertainty.py).

A small Aeron encoder over 2x2 patches of scikit-learn's 8x8 digits (models/aeron/classifier.py), trained on a
few hundred images (data/aeron_learn_tasks.py) so that it overfits, as a confident softmax does. Tested on the
held-out digits (in distribution) and on the same digits with Gaussian pixel noise (shifted). Four methods:
  softmax      one model, its softmax (the "without" arm)
  mc_dropout   the same trained model, mean softmax over `mc_samples` passes with dropout sampling (no training)
  ensemble     `members` models from different initialisations and batch orders, each with the full step budget
               (so it costs `members` times the training and parameters; reported as such)
  evidential   one model with an EvidentialHead trained with the Sensoy et al. loss, its KL term annealed by epoch
               as published (the "with" arm: the seed's pipeline places evidential heads in Aeron's enhancement
               pipeline)
Metrics: accuracy, ECE (10 equal-width bins), NLL and the AUROC of the uncertainty (1 - max probability) for
telling misclassified inputs from correct ones, on both test sets; selective accuracy when abstaining on
the least confident (lowest max probability) x % of the in-distribution test set; reliability-diagram bins.
The headline (the harness's verdict) is NLL on the shifted inputs, a proper scoring rule: ECE alone would
call a model that always predicts uniform probabilities perfectly calibrated.

    from neuro_lib.bench.aeron_modules import uncertainty
    uncertainty.run(seed=0, steps=300, sizes=get_profile("bench").tasks.aeron_modules)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neuro_lib.data.aeron_learn_tasks import batch_indices, digits, digits_split, shifted
from neuro_lib.models.aeron.classifier import AeronClassifier, ClassifierConfig
from neuro_lib.models.aeron.uncertainty import (annealed_kl_weight, ensemble_predict, evidential_loss,
                                                expected_calibration_error, mc_dropout_predict, reliability_bins,
                                                selective_accuracy)
from neuro_lib.bench.aeron_modules.common import params_of, train
from neuro_lib.profiles import AeronModulesSizes

NAME = "uncertainty"
CLAIM = "MC dropout, deep ensembles and evidential heads quantify uncertainty (UncertaintyQuantification)"
METRIC = "nll_shifted"  # a proper score: ECE alone rewards a model that predicts the class frequencies
HIGHER_IS_BETTER = False
METHODS = ("softmax", "mc_dropout", "ensemble", "evidential")


def train_model(head: str, x, y, s: dict, steps: int, seconds, seed: int):
    """One classifier trained on (x, y) -> (model, common.train's record). The evidential loss (s.evidential_loss,
    Sensoy et al.'s eq. 3, 4 or 5) anneals its KL term as the paper does, min(1, epoch / s.anneal_epochs),
    an epoch being len(y) / batch_size steps."""
    torch.manual_seed(seed)
    model = AeronClassifier(ClassifierConfig(n_classes=10, inputs="image", image_size=(8, 8), head=head, **s.model))
    done = [0]  # steps taken, for the annealing
    per_epoch = max(1, len(y) // s.batch_size)

    def batches(rng):
        idx = batch_indices(rng, len(y), s.batch_size)
        return {"x": x[idx], "y": y[idx]}

    def loss(batch):
        out = model(batch["x"])
        done[0] += 1
        if head == "evidential":
            kl = annealed_kl_weight(done[0] - 1, per_epoch, s.anneal_epochs)
            return evidential_loss(out, batch["y"], kl_weight=kl, kind=s.evidential_loss)
        return F.cross_entropy(out, batch["y"])

    return model, train(model, batches, loss, seed, steps, seconds, s.lr, s.warmup, f"uncertainty {head}")


def scores(probs: torch.Tensor, y: torch.Tensor, s: dict, with_bins: bool = True) -> dict:
    """Accuracy, ECE, NLL, AUROC [, reliability bins] of probabilities (N, K) against labels (N,). AUROC: how well
    the uncertainty 1 - max probability ranks the misclassified above the correct (0.5 = no better than chance;
    0.5 too when every answer is right or every one wrong, where it is undefined)."""
    from sklearn.metrics import roc_auc_score

    wrong = (probs.argmax(-1) != y).numpy()
    out = {"acc": 1.0 - float(wrong.mean()),
           "ece": expected_calibration_error(probs, y, s.n_bins),
           "nll": F.nll_loss(probs.clamp_min(1e-12).log(), y).item(),
           "auroc": float(roc_auc_score(wrong, (1 - probs.max(-1).values).numpy())) if 0 < wrong.sum() < len(wrong)
           else 0.5}
    if with_bins:
        out["bins"] = reliability_bins(probs, y, s.n_bins)
    return out


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes.uncertainty
    images, labels = digits()
    tr, te = digits_split()
    g = torch.Generator().manual_seed(seed)
    sub = tr[torch.randperm(len(tr), generator=g)[: s.n_train]]
    x, y = images[sub], labels[sub]
    tests = {"in": images[te], "shifted": shifted(images[te], s.noise, seed)}
    y_te = labels[te]

    soft, rec_soft = train_model("linear", x, y, s, steps, seconds, seed)
    members, recs = [soft], [rec_soft]
    for m in range(1, s.members):
        model, rec = train_model("linear", x, y, s, steps, seconds, seed * 100 + m)
        members.append(model)
        recs.append(rec)
    evid, rec_evid = train_model("evidential", x, y, s, steps, seconds, seed)

    probs = {}
    for split, xt in tests.items():
        with torch.no_grad():
            soft.eval()
            evid.eval()
            probs[("softmax", split)] = soft.probs(xt)
            probs[("evidential", split)] = evid.probs(xt)
        probs[("mc_dropout", split)] = mc_dropout_predict(lambda: soft.probs(xt), soft, s.mc_samples)[0]
        probs[("ensemble", split)] = ensemble_predict(lambda m: m.probs(xt), members)[0]

    cost = {"softmax": (params_of(soft), rec_soft["train_s"]), "mc_dropout": (params_of(soft), rec_soft["train_s"]),
            "ensemble": (sum(params_of(m) for m in members), sum(r["train_s"] for r in recs)),
            "evidential": (params_of(evid), rec_evid["train_s"])}
    methods, bins = {}, {}
    for method in METHODS:
        row = {}
        for split in tests:
            sc = scores(probs[(method, split)], y_te, s)
            bins[f"{method} {split}"] = sc.pop("bins")
            suffix = "" if split == "in" else "_shifted"
            row.update({f"{k}{suffix}": v for k, v in sc.items()})
        p = probs[(method, "in")]
        sel = selective_accuracy(p.argmax(-1) == y_te, -p.max(-1).values, s.abstain)
        row.update({f"sel_acc@{int(round(r * 100))}": v for r, v in sel.items()})
        row["params"], row["train_s"], row["steps"] = *cost[method], rec_soft["steps"]
        methods[method] = row
    return {"with": methods["evidential"], "without": methods["softmax"],
            "extra": {"methods": methods, "bins": bins, "abstain": s.abstain, "noise": s.noise,
                      "n_train": s.n_train, "members": s.members, "mc_samples": s.mc_samples,
                      "curves": {"softmax": rec_soft["curve"], "evidential": rec_evid["curve"]}}}
