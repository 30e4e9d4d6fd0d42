"""The architecture shoot-out (issue 22, notebook 02): the stdlib-src corpus, measured training FLOPs against hand
counts, parameter-matched sizes, `neuro bench lm` over several corpora with curves, and the figures' helpers."""
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from neuro_lib.bench.flops import SCAN_FLOPS_PER_STATE, train_step_flops
from neuro_lib.bench.lm import compare, eval_schedule
from neuro_lib.data.corpus import build_stdlib_src, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.models import ARCHS, build_model
from neuro_lib.profiles import PROFILES, get_profile
from neuro_lib.train.trainer import TrainConfig, Trainer
from neuro_lib.tokenizers import ByteTokenizer
from tests.conftest import ENGLISH


# -- the stdlib-src corpus ---------------------------------------------------------------------------------------
def test_stdlib_src_is_deterministic_python_source_split_90_10():
    a, b = load_corpus("stdlib-src"), load_corpus("stdlib-src")
    assert a.data == b.data and a.sha256 == b.sha256 == hashlib.sha256(a.data).hexdigest()
    assert build_stdlib_src() == a.data  # the cached file is the build, byte for byte
    assert len(a.data) > 5_000_000 and b"\ndef " in a.data and b"\nclass " in a.data
    assert a.train + a.val == a.data and len(a.val) == len(a.data) - int(len(a.data) * 0.9)


def test_stdlib_src_is_the_mixtures_source_files_joined():
    from neuro_lib.data.mixture import MARK, source_tokens

    tokens = source_tokens("stdlib-src")  # each file followed by the document marker
    files = np.split(tokens, np.flatnonzero(tokens == MARK) + 1)
    joined = b"\n".join(f[:-1].astype(np.uint8).tobytes() for f in files if len(f))
    assert joined == load_corpus("stdlib-src").data


def test_a_capped_corpus_is_its_first_bytes_split_90_10():
    full = load_corpus("stdlib-src")
    c = load_corpus("stdlib-src", max_bytes=10_000)
    assert c.data == full.data[:10_000] and c.sha256 == hashlib.sha256(full.data[:10_000]).hexdigest()
    assert (len(c.train), len(c.val)) == (9_000, 1_000)
    with pytest.raises(NeuroError, match="must not be negative"):
        load_corpus("stdlib-src", max_bytes=-1)


# -- FLOPs: torch's counter over one step, against hand counts ------------------------------------------------------
def _config(**over):
    return TrainConfig(**{"batch_size": 2, "block_size": 16, "max_steps": 1, **over})


def test_gpt_step_flops_equal_a_hand_count(tiny_gpt_cfg):
    cfg = dict(tiny_gpt_cfg, bias=False)
    model = build_model("gpt", **cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = train_step_flops(model, _config())
    B, T, d, L, V, F = 2, 16, cfg["d_model"], cfg["n_layer"], cfg["vocab_size"], cfg["d_ff"]
    weights = L * (d * d + 2 * d * d + d * d + 2 * d * F) + d * V  # q, kv, out, fc + proj per layer; the tied head
    linear = 6 * B * T * weights            # forward 2, backward 4 (input and weight gradients)
    attention = L * (2 + 5) * 2 * B * T * T * d  # two products forward, five backward (scores recomputed), full T x T
    assert got == {"counted": linear + attention, "scan": 0, "total": linear + attention}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the model is not touched


def test_muon_adds_its_newton_schulz_products(tiny_gpt_cfg):
    model = build_model("gpt", **tiny_gpt_cfg)
    adamw = train_step_flops(model, _config())["counted"]
    muon = train_step_flops(model, _config(optimizer="muon"))["counted"]
    assert muon > adamw


def test_mamba_step_flops_equal_a_hand_count():
    cfg = dict(vocab_size=256, d_model=16, n_layer=2, d_state=4, expand=2, block_size=16)
    got = train_step_flops(build_model("mamba", **cfg), _config())
    B, T, D, L, N, K, V = 2, 16, 16, 2, 4, 4, 256
    E, R = 2 * D, math.ceil(D / 16)
    weights = L * (D * 2 * E + E * (R + 2 * N) + R * E + E * D) + D * V  # in, x, dt, out projections; the tied head
    conv = L * 3 * 2 * B * T * K * E       # depthwise: K products per output, once forward, twice backward
    scan = L * 24 * B * T * E * N
    assert SCAN_FLOPS_PER_STATE == 24
    assert got == {"counted": 6 * B * T * weights + conv, "scan": scan, "total": 6 * B * T * weights + conv + scan}


# -- parameter-matched sizes -------------------------------------------------------------------------------------
def _count(arch, cfg):
    config_cls, model_cls = ARCHS[arch]
    with torch.device("meta"):
        return sum(p.numel() for p in model_cls(config_cls(**cfg)).parameters())


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_matched_sizes_have_the_gpts_parameter_count_within_ten_percent(name):
    prof = get_profile(name)
    target = _count("gpt", prof.model("gpt"))
    for arch in ("aeron", "mamba", "rnk", "nanogpt"):
        n = _count(arch, {**prof.model(arch), **prof.tasks.shootout.matched.get(arch, {})})
        assert abs(n / target - 1) <= 0.10, f"{name} {arch}: {n:,} params vs gpt {target:,}"


# -- the bench: several corpora, curves, FLOPs -------------------------------------------------------------------
def test_eval_schedule_spreads_points_over_the_budget():
    assert eval_schedule(60.0, 0, None, 6) == {"eval_every": 0, "eval_every_s": 10.0}
    assert eval_schedule(60.0, 300, None, 6) == {"eval_every": 50}
    assert eval_schedule(60.0, 300, 0, 6) == {"eval_every": 0}


def test_shootout_over_two_corpora_reports_every_arm_with_flops_and_curves(tmp_path):
    corpora = []
    for i, text in enumerate((ENGLISH, ENGLISH[::-1])):
        (tmp_path / f"c{i}.txt").write_bytes(text)
        corpora.append(f"text:{tmp_path / f'c{i}.txt'}")
    seen = []
    report = compare("gpt,aeron", corpora, get_profile("smoke"), sizes="matched", max_steps=4, eval_bytes=2000,
                     curve_points=2, seed=0, callback=lambda c, a, rec: seen.append((c, a, rec["kind"])))
    rows = {r["name"]: r for r in report["results"]}
    for corpus in corpora:
        for arm in ("gpt", "aeron"):
            assert rows[f"{corpus} {arm} steps"]["value"] == 4
            flops = rows[f"{corpus} {arm} train FLOPs"]["value"]
            assert flops == 4 * report["config"]["arms"][f"{corpus} {arm}"]["step_flops"] > 0
        assert {rows[f"{corpus} {c} (given train)"]["arm"] for c in ("gzip -9", "bz2 -9", "xz -9e")} == {
            "gzip -9", "bz2 -9", "xz -9e"}
    assert report["config"]["arms"][f"{corpora[0]} aeron"]["model"]["d_ff"] == 400  # tasks.shootout.matched
    assert len(report["curves"]) == 4
    for c in report["curves"]:
        step_flops = report["config"]["arms"][f"{c['corpus']} {c['arm']}"]["step_flops"]
        assert c["step"] == [2, 4] and c["flops"] == [2 * step_flops, 4 * step_flops]
        assert c["val_bpb"][-1] == rows[f"{c['corpus']} {c['arm']} val bpb"]["value"]
    assert {(c, a) for c, a, _ in seen} == {(c, a) for c in corpora for a in ("gpt", "aeron")}
    json.dumps(report)  # a bench report is plain JSON


def test_one_corpus_keeps_the_old_row_names(text_corpus):
    report = compare("nanogpt", [text_corpus], get_profile("smoke"), max_steps=2, eval_bytes=2000, anchors=False)
    names = {r["name"] for r in report["results"]}
    assert names == {f"nanogpt {m}" for m in ("val bpb", "train tokens/s", "params", "steps", "train time",
                                               "train FLOPs")}


def test_bad_shootout_arguments_are_refused(text_corpus, capsys):
    from tests.conftest import run_cli

    for argv, msg in ((["--corpus", f"{text_corpus},,stdlib-docs"], "empty entry"),
                      (["--corpus", f"{text_corpus},{text_corpus}"], "names a corpus twice"),
                      (["--corpus", text_corpus, "--curve-points", "0"], "at least 1")):
        code, _, err = run_cli(capsys, ["bench", "lm", "--max-steps", "2", *argv])
        assert code == 2 and msg in err


def test_validations_by_training_seconds(monkeypatch, tiny_gpt_cfg):
    """eval_every_s: a validation each time the training seconds pass a multiple of it (a fake clock: 0.25 s a step)."""
    import neuro_lib.train.trainer as trainer_mod

    class Clock:
        now = 0.0

        def time(self):
            self.now += 0.25  # two readings a step (its start and end): 0.25 s apart, the step between them
            return self.now

        def monotonic(self):
            return self.now

    monkeypatch.setattr(trainer_mod, "time", Clock())
    model = build_model("gpt", **tiny_gpt_cfg)
    data = torch.tensor(list(ENGLISH[:2000]), dtype=torch.long)

    def batches(step):
        x = torch.stack([data[i:i + 17] for i in range(step, step + 4)])
        return {"tokens": x[:, :-1], "targets": x[:, 1:]}

    cfg = TrainConfig(batch_size=4, block_size=16, time_budget_s=5.0, eval_every=0, eval_every_s=1.0, log_every=1,
                      ckpt_every_s=0, ckpt_every=0)
    history = Trainer(model, ByteTokenizer(), cfg, batches, lambda m: {"val_bpb": 1.0}).fit()
    vals = [r["elapsed_s"] for r in history if r["kind"] == "val"]
    assert len(vals) == 5 and vals[-1] >= 5.0 and all(b > a for a, b in zip(vals, vals[1:]))
    with pytest.raises(NeuroError, match="must not be negative"):
        TrainConfig(max_steps=1, eval_every_s=-1.0)


# -- the notebook's figures --------------------------------------------------------------------------------------
def _report():
    rows, curves = [], []
    for corpus in ("a", "b"):
        for arm, bpb in (("gpt", 3.0), ("mamba", 2.5)):
            for metric, v, unit in (("val bpb", bpb, "bits/byte"), ("params", 100, "params"),
                                    ("train FLOPs", 1e9, "FLOPs"), ("steps", 10, "steps")):
                rows.append({"name": f"{corpus} {arm} {metric}", "value": v, "unit": unit, "corpus": corpus,
                             "arm": arm})
            curves.append({"corpus": corpus, "arm": arm, "step": [5, 10], "seconds": [1.0, 2.0],
                           "flops": [5e8, 1e9], "val_bpb": [bpb + 1, bpb]})
        rows.append({"name": f"{corpus} xz -9e (given train)", "value": 2.7, "unit": "bits/byte", "corpus": corpus,
                     "arm": "xz -9e"})
    return {"results": rows, "curves": curves}


def test_shootout_table_winners_and_curves():
    from neuro_lib.viz.shootout import anchor_table, curves_figure, shootout_table, winners

    report = _report()
    table = shootout_table(report)
    assert list(table.index) == [("a", "mamba"), ("a", "gpt"), ("b", "mamba"), ("b", "gpt")]
    assert table.loc[("a", "gpt"), "val bpb"] == 3.0 and table.loc[("b", "mamba"), "train FLOPs"] == 1e9
    assert winners(report) == {"a": "mamba", "b": "mamba"}
    assert anchor_table(report).loc["b", "xz -9e"] == 2.7
    fig = curves_figure(report, x="flops")
    assert len(fig.data) == 4 and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="seconds"):
        curves_figure(report, x="steps")
