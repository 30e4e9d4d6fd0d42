"""`neuro bench merge` (bench/merge.py): the scorer against a hand count, the statistics, and the summary rows
on a synthetic two-seed result (the bench itself trains a family; it runs at smoke size in notebook 11)."""
from __future__ import annotations

import math

import pytest
import torch

from neuro_lib.bench.merge import Scorer, iterated_slerp, mean_ci, summarize
from neuro_lib.data.sft import VOCAB
from neuro_lib.models import build_model
from neuro_lib.viz.merge import method_table, normalized_bars

AERON = dict(vocab_size=VOCAB, d_model=16, n_head=2, n_kv_head=1, n_encoder_layer=0, n_decoder_layer=1, d_ff=32,
             block_size=512, mode="decoder")


def test_scorer_counts_answer_tokens_under_teacher_forcing():
    torch.manual_seed(0)
    model = build_model("aeron", **AERON).eval()
    scorer = Scorer(model, ["reason"], n_val=3, n_test=4, max_len=448, batch_size=2)
    right = total = exact = 0
    for batch in scorer.batches["reason"]["test"]:  # the same count by hand, row by row
        for b in range(len(batch["tokens"])):
            mask = batch["loss_mask"][b].bool()
            pred = model(batch["tokens"][b:b + 1])[0].argmax(-1)
            ok = (pred == batch["targets"][b])[mask]
            right, total, exact = right + int(ok.sum()), total + int(mask.sum()), exact + int(ok.all())
    got = scorer.score(model.state_dict(), "reason", "test")
    assert got == {"acc": pytest.approx(right / total), "exact": exact / 4}
    assert scorer.evals == 1
    def rows(split):
        return {tuple(t[m.bool()].tolist()) + tuple(x.tolist()) for b in scorer.batches["reason"][split]
                for t, m, x in zip(b["targets"], b["loss_mask"], b["tokens"])}
    assert len(rows("val")) == 3 and len(rows("test")) == 4 and not rows("val") & rows("test")  # disjoint draws


def test_mean_ci_is_the_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and math.isclose(hi - m, 4.302652729911275 * 1.0 / math.sqrt(3), rel_tol=1e-9)
    assert mean_ci([0.5]) == (0.5, 0.5, 0.5)


def test_iterated_slerp_of_identical_models_is_the_model():
    sd = build_model("aeron", **AERON).state_dict()
    out = iterated_slerp([sd, sd, sd])
    assert all(torch.allclose(out[k], sd[k], atol=1e-6) for k in sd)


def _seed(scale: float) -> dict:
    tasks = ["a", "b"]

    def res(accs, cost=1):
        return {"test": {t: {"acc": x, "exact": 0.0} for t, x in zip(tasks, accs)}, "merge_s": 0.01, "evals": 4,
                "cost": cost, "chosen": None}
    out = {"base": res([0.2, 0.2]), "child:a": res([0.8, 0.1]), "child:b": res([0.1, 0.4]),
           "routed oracle": res([0.8, 0.4]), "multi-task fine-tune": res([0.7, 0.4]),
           "logit ensemble": res([0.6, 0.3], cost=2)}
    for m, f in (("task arithmetic", 0.5), ("ties", 0.6), ("ties (per-tensor trim, + ties)", 0.55), ("dare + ta", 0.5),
                 ("dare + ties", 0.58), ("layer-wise", 0.7), ("slerp (equal weights)", 0.45)):
        out[m] = res([0.8 * f * scale, 0.4 * f * scale])
    out["uniform soup"] = {**res([0.8]), "test": {"a": {"acc": 0.84, "exact": 0.0}}}
    out["greedy soup"] = {**res([0.8]), "test": {"a": {"acc": 0.8, "exact": 0.0}}}
    return out


def test_summary_rows_normalize_by_the_child_and_pair_the_seeds():
    rows = summarize([_seed(1.0), _seed(1.1)], ["a", "b"])
    by = {r["name"]: r for r in rows}
    assert by["routed oracle normalized"]["value"] == 1.0
    assert by["ties normalized"]["per_seed"] == [0.6, 0.66]
    assert by["layer-wise normalized"]["normalized_tasks"] == {"a": pytest.approx(0.735), "b": pytest.approx(0.735)}
    assert by["uniform soup normalized"]["value"] == pytest.approx(1.05)  # scored on its own task only
    assert by["logit ensemble normalized"]["models_per_token"] == 2
    diff = by["ties - task arithmetic"]
    assert diff["per_seed"] == [0.1, 0.11] and diff["excludes_zero"] is True
    assert "layer-wise - routed oracle" in by  # the best merge against the router's upper bound
    report = {"config": {"profile": "smoke", "seeds": 2}, "results": rows}
    table = method_table(report)
    assert table.loc["ties", "normalized"] == pytest.approx(0.63)
    assert len(normalized_bars(report, report).data) == 2
