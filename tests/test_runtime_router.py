"""The router's data, models and evaluation: data/queries.py, runtime/router_model.py, runtime/router_eval.py."""
import math

import pytest
import torch
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from neuro_lib.data import queries as qmod
from neuro_lib.data.queries import COMPOUND, TEMPLATES, generate_queries, math_queries
from neuro_lib.errors import NeuroError
from neuro_lib.runtime.router_eval import (apgr, cost_quality_curve, evaluate_router, multilabel_f1,
                                           slow_share_for_pgr)
from neuro_lib.runtime.router_model import RandomRouter, RouterConfig, train_router
from neuro_lib.runtime.types import SKILLS, Query, Route


def test_query_vocabulary_matches_the_runtime():
    assert qmod.SKILLS == SKILLS


def test_heldout_templates_are_disjoint_and_labels_consistent():
    for skill, (train, held) in TEMPLATES.items():
        assert not {t for t, _ in train} & {t for t, _ in held}, skill
    assert not {t for t, _ in COMPOUND[0]} & {t for t, _ in COMPOUND[1]}
    train, held = generate_queries(400, seed=0), generate_queries(400, seed=1, split="heldout")
    assert not {q.template for q in train} & {q.template for q in held}
    for q in train + held:
        assert set(q.skills) <= set(SKILLS) and len(set(q.skills)) == len(q.skills)
        if len(q.skills) > 1:
            assert q.slow  # every compound query needs the slow path
        if q.skills == ("math",):
            assert q.value == sum(q.operands) and q.slow == (len(q.operands) >= 3)
    assert generate_queries(50, seed=3) == generate_queries(50, seed=3)
    with pytest.raises(NeuroError):
        generate_queries(10, split="test")
    m = math_queries(3, sizes=(2, 4))
    assert [len(q.operands) for q in m] == [2, 2, 2, 4, 4, 4]


def test_f1_matches_scikit_learn():
    qs = generate_queries(120, seed=5)
    gold = [set(q.skills) for q in qs]
    pred = [set(RandomRouter(seed=1).route(Query(q.text)).skills) for q in qs]
    pred[0] = set()  # an empty prediction is allowed in the metric
    mine = multilabel_f1(gold, pred)
    mlb = MultiLabelBinarizer(classes=list(SKILLS))
    y, p = mlb.fit_transform(gold), mlb.transform(pred)
    assert mine["micro"] == pytest.approx(f1_score(y, p, average="micro"))
    assert mine["macro"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    per = f1_score(y, p, average=None, zero_division=0)
    assert [mine["per_label"][s] for s in SKILLS] == pytest.approx(list(per))


def test_apgr_hand_computed():
    # four queries; the slow path fixes queries 0 and 2, breaks 3, leaves 1 right
    scores, q_fast, q_slow = [0.9, 0.1, 0.5, 0.3], [0, 1, 0, 1], [1, 1, 1, 0]
    # all fast 0.5, all slow 0.75, gap 0.25; order 0, 2, 3, 1: quality 0.5, 0.75, 1.0, 0.75, 0.75
    curve = cost_quality_curve(scores, q_fast, q_slow)
    assert [p["share_slow"] for p in curve] == [0, 0.25, 0.5, 0.75, 1.0]
    assert [p["pgr"] for p in curve] == pytest.approx([0, 1, 2, 1, 1])
    # trapezoids: 0.25 * (0.5 + 1.5 + 1.5 + 1) = 1.125
    assert apgr(scores, q_fast, q_slow) == pytest.approx(1.125)
    assert slow_share_for_pgr(curve, 0.5) == pytest.approx(0.125)
    # a constant score cannot rank: one straight line from 0 to 1, area 0.5
    assert apgr([0.3] * 4, q_fast, q_slow) == pytest.approx(0.5)
    # the reversed order (oracle's opposite) recovers less than random
    assert apgr([-s for s in scores], q_fast, q_slow) < 0.5
    assert math.isnan(apgr([1, 2], [1, 0], [1, 0]))  # no gap, nothing to recover
    with pytest.raises(NeuroError):
        cost_quality_curve([1, 2], [0], [1, 1])


def test_random_router_reproducible_by_seed():
    qs = [Query(q.text) for q in generate_queries(40, seed=2)]
    a, b, c = RandomRouter(seed=7), RandomRouter(seed=7), RandomRouter(seed=8)
    ra = [a.route(q) for q in qs]
    assert ra == [b.route(q) for q in reversed(qs)][::-1]  # order does not matter
    assert ra != [c.route(q) for q in qs]
    assert all(isinstance(r, Route) and r.path == ("slow" if r.complexity >= 0.5 else "fast") for r in ra)


def test_classifier_learns_and_generalises_to_heldout_templates():
    torch.set_num_threads(1)
    train, held = generate_queries(1200, seed=0), generate_queries(300, seed=1, split="heldout")
    router = train_router(train, RouterConfig(), steps=150, seed=0)
    rep = evaluate_router(router, held)
    rnd = evaluate_router(RandomRouter(seed=0), held)
    assert rep["accuracy"] > 0.6 > rnd["accuracy"]
    assert rep["micro_f1"] > rnd["micro_f1"] + 0.3 and rep["path_accuracy"] > 0.8
    assert sum(map(sum, rep["confusion"])) == len(held)
    # batched routing = one by one; a route lists skills by probability, complexity picks the path
    one = [router.route(Query(q.text)) for q in held[:20]]
    many = router.route_many([Query(q.text) for q in held[:20]])
    assert [(r.path, r.skills) for r in many] == [(r.path, r.skills) for r in one]
    assert [r.complexity for r in many] == pytest.approx([r.complexity for r in one], abs=1e-6)
    for r in one:
        assert r.router == "classifier" and r.skills and set(r.skills) <= set(SKILLS)
        assert r.path == ("slow" if r.complexity >= router.cfg.threshold else "fast")
        probs = [r.scores[s] for s in r.skills]
        assert probs == sorted(probs, reverse=True)
    with pytest.raises(NeuroError):
        train_router([], steps=10)
