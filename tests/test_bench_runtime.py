"""`neuro bench runtime` (bench/runtime.py) and the runtime's evaluation tasks (runtime/tasks.py), on tiny
sizes and fake experts (no expert training here)."""
import argparse
import math
from dataclasses import replace

import pytest
import torch

from neuro_lib.bench import SUITES
from neuro_lib.bench import runtime as bench
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import RouterSizes, get_profile
from neuro_lib.runtime.router import KeywordRouter
from neuro_lib.runtime.router_model import RandomRouter
from neuro_lib.runtime.tasks import answer_succeeds, family_tasks, router_examples, succeeded
from neuro_lib.runtime.types import ExpertAnswer, Result

TINY = RouterSizes(n_train=200, n_test=60, steps=20, n_math=2, n_tasks=2)
TINY_EXP = replace(get_profile("smoke").tasks.expansion, steps=2, sizes=[2, 3], probe=2, problems=2, seeds=1)


class Lookup:
    """A test double: answers the tasks of its family from a table, anything else wrongly."""

    def __init__(self, name, skill, table):
        self.name, self.skills, self.tools, self.contract, self.table = name, (skill,), (), {}, table

    def answer(self, query):
        gold = self.table.get(query.text)
        if gold is None:
            return ExpertAnswer("no idea", value="no idea")
        return ExpertAnswer(str(gold) if not isinstance(gold, dict) else "doc", value=gold)


def fake_experts(tasks):
    tables = {"math": {}, "code": {}, "json": {}}
    for t in tasks:
        if t.family == "compound":
            tables["math"][t.query.text], tables["code"][t.query.text] = t.gold["math"], t.gold["code"]
        else:
            tables[t.family][t.query.text] = t.gold
    return {"reason-mini": Lookup("reason-mini", "math", tables["math"]),
            "code-mini": Lookup("code-mini", "code", tables["code"]),
            "struct-mini": Lookup("struct-mini", "json", tables["json"]),
            "retrieval": Lookup("retrieval", "retrieval", {}), "general": Lookup("general", "chat", {})}


def test_tasks_and_checks():
    tasks = family_tasks(3, seed=0, split="heldout")
    assert {t.family for t in tasks} == {"math", "code", "json", "compound"}  # retrieval needs an index
    m = next(t for t in tasks if t.family == "math")
    assert answer_succeeds(m, m.gold, None) and not answer_succeeds(m, m.gold + "1", None)
    j = next(t for t in tasks if t.family == "json")
    assert j.query.wants_json and j.query.schema_id and answer_succeeds(j, "", dict(j.gold))
    c = next(t for t in tasks if t.family == "compound")
    text = f"[math] {c.gold['math']}\n[code] {c.gold['code']}"
    assert answer_succeeds(c, text, {"math": 1, "code": 2})
    assert not answer_succeeds(c, c.gold["math"], 5)  # one expert's answer cannot satisfy a compound query
    assert not succeeded(m, Result(m.query.text, m.gold, False, None))  # a failed run never succeeds
    rows = router_examples(50, seed=0, split="train")
    held = router_examples(50, seed=0, split="heldout")
    assert {r.skills for r in rows} >= {("math",), ("code",), ("json",), ("retrieval",), ("math", "code")}
    assert not {r.text for r in rows} & {r.text for r in held}
    assert not {r.template for r in rows} & {r.template for r in held}  # held-out phrasings only


def test_runtime_part_with_fake_experts():
    tasks = family_tasks(3, seed=1, split="heldout")
    experts = fake_experts(tasks)
    routers = {"classifier": KeywordRouter(), "keywords": KeywordRouter(), "random": RandomRouter(seed=0)}
    rt = bench.runtime_part(experts, tasks, routers, judge=None)
    assert rt["single"]["reason-mini"]["math"] == 1.0 and rt["single"]["reason-mini"]["code"] == 0.0
    assert rt["single"]["struct-mini"]["json"] == 1.0 and rt["single"]["general"]["all"] == 0.0
    assert all(v["compound"] == 0.0 for v in rt["single"].values())  # no single expert answers both parts
    fast, slow = rt["tables"]["keywords"]["fast"], rt["tables"]["keywords"]["slow"]
    assert len(fast) == len(slow) == len(tasks) == len(rt["latency_ms"]["fast"])
    for i, t in enumerate(tasks):
        if t.family == "compound":
            assert fast[i] == 0.0  # the fast path asks one expert
    routed = rt["routed"]["keywords"]
    paths = [KeywordRouter().route(t.query).path for t in tasks]
    want = [(slow if p == "slow" else fast)[i] for i, p in enumerate(paths)]
    assert routed["all"] == pytest.approx(sum(want) / len(want))
    t = rt["tradeoff"]["keywords"]
    assert math.isnan(t["apgr"]) or -1 <= t["apgr"] <= 2


def test_bench_returns_the_design_shape(monkeypatch):
    torch.set_num_threads(1)
    assert SUITES["runtime"] is bench
    prof = get_profile("smoke")
    tiny = replace(prof, tasks=replace(prof.tasks, router=TINY, expansion=TINY_EXP))
    monkeypatch.setattr(bench, "get_profile", lambda name: tiny)
    args = argparse.Namespace(profile="smoke", seeds=1, parts="router,expansion", threads=0)
    rep = bench.run(args)
    assert {"suite", "machine", "git", "config", "results"} <= set(rep) and rep["suite"] == "runtime"
    names = {r["name"] for r in rep["results"]}
    assert {"router classifier exact skill set", "router keywords micro F1", "router random path accuracy",
            "sum of 3: expansion accuracy", "sum of 3: bon_vote accuracy", "router classifier APGR (sums)"} <= names
    for r in rep["results"]:
        assert {"name", "value", "unit"} <= set(r)
    sum3 = {r["name"]: r for r in rep["results"] if r["name"].startswith("sum of 3")}
    assert sum3["sum of 3: bon_vote accuracy"]["calls"] == sum3["sum of 3: expansion accuracy"]["calls"]
    with pytest.raises(NeuroError):
        bench.run(argparse.Namespace(profile="smoke", seeds=1, parts="router,nope", threads=0))


def test_judge_rows_and_figures():
    j = {"all": {"n": 10, "agreement": 0.8}, "experts_only": {"n": 6, "agreement": 0.5},
         "per_method": {"recomputed": {"n": 4, "agreement": 1.0}},
         "pairwise": {"pairs": 5, "swap_consistency": 1.0, "right_vs_wrong_pairs": 4, "accuracy": 0.75},
         "judge_model_heldout_accuracy": 0.9}
    rows = {name: (v, n) for name, v, n in bench.judge_rows(j)}
    assert rows["judge agreement (recomputed)"] == (1.0, 4) and rows["judge pairwise swap consistency"] == (1.0, 5)
    from neuro_lib.viz.runtime import confusion_heatmap, expansion_lines, latency_histogram, path_bars, pgr_curves, success_bars
    tasks = family_tasks(2, seed=2, split="heldout")
    routers = {"classifier": KeywordRouter(), "keywords": KeywordRouter(), "random": RandomRouter(seed=0)}
    rt = bench.runtime_part(fake_experts(tasks), tasks, routers)
    for fig in (success_bars(rt), path_bars(rt, "keywords"), latency_histogram(rt["latency_ms"], "test")):
        assert fig.data
    rep = {"confusion": [[1, 0, 0, 0, 0]] * 5, "router": "x"}
    curve = [{"share_slow": 0, "pgr": 0}, {"share_slow": 1, "pgr": 1}]
    rows = [{"size": 2, "direct": 1, "expansion": 1, "bon_vote": 1, "bon_logprob": 1, "calls_direct": 1,
             "calls_expansion": 1}]
    assert confusion_heatmap(rep).data and pgr_curves({"x": curve}, "t").data and expansion_lines(rows, "t").data
