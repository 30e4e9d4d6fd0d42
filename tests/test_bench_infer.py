"""The inference benchmarks' measurement code on tiny models: speculative, search and decode scenarios."""
from __future__ import annotations

import pytest

from neuro_lib.bench.decode import scenario_rows
from neuro_lib.bench.search import compare
from neuro_lib.bench.speculative import measure
from neuro_lib.data.arith import arith_problems
from neuro_lib.infer.speculative import expected_speedup
from neuro_lib.tokenizers.byte import ByteTokenizer

from test_engine import tiny


def _rows(results, **match):
    return {r["name"]: r for r in results if all(r.get(k) == v for k, v in match.items())}


def test_speculative_measure_reports_identical_output_and_the_formula():
    target, draft = tiny("gpt"), tiny("gpt", seed=1)
    results = measure(target, draft, ByteTokenizer(), [b"abc abc abc ", b"hello"], [1, 4], new_tokens=12)
    for drafter in ("ngram", "model"):
        for gamma in (1, 4):
            rows = {r["name"].split(f"gamma={gamma} ")[1]: r["value"]
                    for r in results if r.get("drafter") == drafter and r.get("gamma") == gamma}
            assert rows["same tokens"] == 1 and 0 <= rows["alpha"] <= 1 and rows["c"] >= 0
            assert rows["formula"] == pytest.approx(expected_speedup(rows["alpha"], gamma, rows["c"]), abs=2e-3)
            v = next(r["value"] for r in results if r["name"] == f"verify cost gamma={gamma}")
            assert v > 0 and rows["formula (measured verify)"] == pytest.approx(
                expected_speedup(rows["alpha"], gamma, rows["c"], v), rel=0.01)  # v is rounded to 3 decimals
    series = [r for r in results if r["name"].endswith("accepted per round")]
    assert len(series) == 2 and all(max(r["series"]) <= 4 for r in series)


def test_search_compare_spends_equal_calls():
    out = compare(tiny("gpt"), ByteTokenizer(), arith_problems(3, seed=1), seed=0, n=3, branch=2)
    bon, tree = out["best-of-3"], out["mcts"]
    assert bon["calls"] <= tree["calls"] <= bon["calls"] + 3 * 5  # MCTS stops between simulations
    assert all(0 <= m["solved"] <= 3 for m in out.values()) and out["greedy"]["calls"] <= 3 * 4


def test_decode_scenarios_paged_holds_less_and_decodes_the_same():
    rows = scenario_rows(tiny("gpt"), max_context=40, rows=4, new_tokens=6, block_size=8, seed=0)
    got = {r["name"]: r["value"] for r in rows}
    for kind in ("ragged", "fork"):
        assert got[f"{kind} x4 same tokens"] == 1
        assert got[f"{kind} x4 paged allocated"] < got[f"{kind} x4 contiguous allocated"]


def test_speculative_bench_refuses_a_target_no_better_than_its_draft(text_corpus, capsys, monkeypatch, tmp_path):
    """The smoke run trains both models; with a gap no model reaches, it fails in one sentence."""
    from dataclasses import replace

    from neuro_lib import profiles
    from neuro_lib.cli import main
    prof = profiles.get_profile("smoke")
    spec = replace(prof.tasks.speculative, min_gap_bpb=99.0, target_steps=2, draft_steps=2)
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(prof, tasks=replace(prof.tasks, speculative=spec)))
    monkeypatch.setattr("neuro_lib.data.corpus.CACHE_DIR", tmp_path)
    code = main(["bench", "speculative", "--profile", "smoke", "--corpus", text_corpus, "--threads", "1"])
    assert code == 2 and "is not 99.0 bpb better than the draft" in capsys.readouterr().err


def test_speculative_bench_reuses_its_trained_models_unless_told_to_retrain(text_corpus, tmp_path, monkeypatch):
    """Models trained by steps are cached: a second run times the same models without training, --retrain trains."""
    import json
    from dataclasses import replace

    from neuro_lib import profiles
    from neuro_lib.bench import speculative
    from neuro_lib.cli import main
    prof = profiles.get_profile("smoke")
    spec = replace(prof.tasks.speculative, min_gap_bpb=-99.0, target_steps=2, draft_steps=2, gammas=[2], prompts=1,
                   new_tokens=8)
    monkeypatch.setitem(profiles.PROFILES, "smoke", replace(prof, tasks=replace(prof.tasks, speculative=spec)))
    monkeypatch.setattr("neuro_lib.data.corpus.CACHE_DIR", tmp_path)
    trained = []
    real_train = speculative.train_gpt
    monkeypatch.setattr(speculative, "train_gpt", lambda *a, **k: trained.append(a[0]) or real_train(*a, **k))
    args = ["bench", "speculative", "--profile", "smoke", "--corpus", text_corpus, "--threads", "1"]
    reports = []
    for extra in ([], [], ["--retrain"]):
        out = tmp_path / f"run{len(reports)}.json"
        assert main([*args, *extra, "--out", str(out)]) == 0
        reports.append(json.loads(out.read_text()))
    assert len(trained) == 4  # target and draft in the first run and again with --retrain, none in the second
    bpb = [{r["name"]: r["value"] for r in rep["results"] if r["unit"] == "bits/byte"} for rep in reports]
    assert bpb[0] == bpb[1] and set(bpb[0]) == {"target_val_bpb", "draft_val_bpb"}
    cached = reports[1]["config"]["cached_models"]
    assert set(cached) == {"target", "draft"} and all((tmp_path / "speculative" / name).is_dir()
                                                       for name in cached.values())
