"""RNK's plan-only decoder and the plan test: the decoder has no path from the Mamba state but the
plan, dropping the plan cuts that path, and `neuro bench rnk --plan-test` reports mean and spread."""
import json

import pytest
import torch

from neuro_lib.bench.rnk import plan_metrics, spread
from neuro_lib.data.chat import generate_chat, model_sizes
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from tests.conftest import run_cli

TINY = dict(d_model=32, n_layer=1, d_state=4, expand=1, chunk_len=8, d_plan=16, hrm_steps=2, hrm_low_steps=1,
            d_dec=24, block_size=32)


def tiny(**over):
    torch.manual_seed(0)
    return build_model("rnk", **{**model_sizes(), **TINY, **over}).eval()


@pytest.mark.parametrize("decoder, reads_state", [("plan_only", False), ("full", True)])
def test_decoder_reads_mamba_state_only_in_full(decoder, reads_state):
    model = tiny(decoder=decoder)
    B, C, P, D = 2, 3, model.config.chunk_len, model.config.d_model
    emb, h0 = torch.randn(B, C * P, D), torch.randn(B, C, model.config.d_dec)
    with torch.no_grad():
        a = model.decode_chunks(emb, torch.randn(B, C * P, D), h0)
        b = model.decode_chunks(emb, torch.randn(B, C * P, D), h0)   # another Mamba state, same plans
    assert a.shape == (B, C * P, 256)
    assert (not torch.equal(a, b)) == reads_state


def test_plan_only_sees_earlier_chunks_only_through_the_plan():
    model = tiny(decoder="plan_only")
    x = torch.randint(0, 256, (1, 24))
    y = x.clone()
    y[0, :8] = (y[0, :8] + 1) % 256                                   # change chunk 0 only
    with torch.no_grad():
        dropped = [model.forward_aux(t, drop_plan=True)[0] for t in (x, y)]
        planned = [model.forward_aux(t)[0] for t in (x, y)]
    torch.testing.assert_close(dropped[0][:, 8:], dropped[1][:, 8:], rtol=0, atol=0)  # no plan: no path back
    assert not torch.allclose(planned[0][:, 8:], planned[1][:, 8:])                  # the plan carries it


def test_full_decoder_sees_earlier_chunks_without_the_plan():
    model = tiny(decoder="full")
    x = torch.randint(0, 256, (1, 24))
    y = x.clone()
    y[0, :8] = (y[0, :8] + 1) % 256
    with torch.no_grad():
        a, b = (model.forward_aux(t, drop_plan=True)[0] for t in (x, y))
    assert not torch.allclose(a[:, 8:], b[:, 8:])  # the bypass the plan-only decoder removes


def test_unknown_decoder_rejected():
    with pytest.raises(NeuroError, match="decoder must be one of"):
        tiny(decoder="mamba_only")


def test_plan_metrics_gap_is_the_difference():
    m = plan_metrics(tiny(decoder="plan_only"), generate_chat(6, seed=3, split="heldout"))
    assert m["plan_gain"] == pytest.approx(m["reply_bpb_no_plan"] - m["reply_bpb"])
    assert 0 < m["reply_bpb"] < 20


def test_spread():
    assert spread([1.0, 3.0]) == (2.0, 1.0)
    assert spread([0.5]) == (0.5, 0.0)


@pytest.mark.slow
def test_bench_plan_test_reports_mean_spread_and_seeds(capsys, tmp_path):
    out = tmp_path / "r.json"
    code, _, err = run_cli(capsys, ["bench", "rnk", "--plan-test", "--profile", "smoke", "--steps", "1",
                                    "--n-eval", "6", "--threads", "1", "--out", str(out)])
    assert code == 0, err
    rep = json.loads(out.read_text())
    names = {r["name"] for r in rep["results"]}
    for v in ("full", "no_hrm", "no_contrastive"):
        assert {f"{v} plan_gain mean", f"{v} plan_gain std", f"{v} intent_acc seed2"} <= names
    assert rep["config"]["model"]["decoder"] == "plan_only"


def test_time_budget_needs_plan_test(capsys):
    code, _, err = run_cli(capsys, ["bench", "rnk", "--time-budget", "5"])
    assert code == 2 and "--time-budget goes with --plan-test" in err


def test_equal_wall_clock_arm_trains_for_its_seconds():
    from neuro_lib.bench.rnk import run_variants
    from neuro_lib.profiles import get_profile

    res = run_variants(["no_hrm"], get_profile("smoke"), seed=0, n_eval=4, time_budget_s=1.0, replies=False,
                       overrides={"decoder": "plan_only", "d_model": 32, "n_layer": 1, "d_plan": 32, "d_dec": 32})
    r = res["no_hrm"]
    assert r["steps"] >= 1 and r["rows"] == []
    assert {"intent_acc", "reply_bpb", "plan_gain"} <= set(r["metrics"])
