"""Model merging (neuro_lib/merging/, issue 24): the property tests of the issue, the paper-vs-mergekit options
each tested, the policy (inputs untouched, tied tensors once, non-float tensors copied), the family check on run
folders, the logit ensemble under the decoding engine, and `neuro merge`.

Tiny models are built in the test; children are the base plus random deltas saved with lineage."""
from __future__ import annotations

import json
import math

import pytest
import torch

from neuro_lib.checkpoint import check_lineage, lineage, load_checkpoint, parents_of, save_checkpoint
from neuro_lib.cli import main
from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.merging import (LogitEnsemble, dare, describe, greedy_soup, layerwise, slerp, task_arithmetic,
                               task_vector, ties, tune_layerwise, uniform_soup)
from neuro_lib.merging.core import layer_groups, merge_map
from neuro_lib.merging.runs import merge_runs, merge_state, task_vector_runs
from neuro_lib.merging.slerp import layer_ts, slerp_tensor
from neuro_lib.merging.ties import dare_drop, disjoint_mean, elect_sign, trim
from neuro_lib.models import build_model
from neuro_lib.tokenizers.byte import ByteTokenizer

TINY = dict(vocab_size=256, d_model=16, n_layer=3, n_head=2, d_ff=32, block_size=32, dropout=0.0)


def tiny(seed=0, arch="gpt"):
    torch.manual_seed(seed)
    cfg = TINY if arch == "gpt" else dict(vocab_size=256, d_model=16, n_head=2, n_kv_head=1, n_encoder_layer=0,
                                          n_decoder_layer=2, d_ff=32, block_size=32, mode="decoder")
    return build_model(arch, **cfg).eval()


def child_of(model, seed, scale=0.02):
    """A copy of `model` with a random delta on every parameter (ties kept: the delta goes on the Parameter)."""
    child = build_model("gpt" if type(model).__name__ == "GPT" else "aeron", **vars(model.config)).eval()
    child.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in child.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return child


def sds(*models):
    return [m.state_dict() for m in models]


def assert_sd_equal(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=0), k


def snapshot(sd_list):
    return [{k: v.clone() for k, v in sd.items()} for sd in sd_list]


@pytest.fixture
def family():
    base = tiny(0)
    return base, [child_of(base, s) for s in (1, 2, 3)]


# -- the properties ------------------------------------------------------------------------
def test_merging_a_model_with_itself_returns_it(family):
    base, (a, *_) = family
    sa = a.state_dict()
    assert_sd_equal(task_arithmetic(sa, [sa, sa]), sa)
    assert_sd_equal(ties(sa, [sa, sa]), sa)
    assert_sd_equal(dare(sa, [sa, sa], p=0.5), sa)
    assert_sd_equal(slerp(sa, sa, 0.3), sa, atol=1e-6)
    assert_sd_equal(uniform_soup([sa, sa]), sa, atol=1e-7)
    assert_sd_equal(layerwise(sa, [sa], 0.7), sa)
    assert_sd_equal(merge_map(lambda k, ts: ts[0], [sa]), sa)


def test_task_arithmetic_lambda_zero_is_the_base_and_one_child_at_one_is_the_child(family):
    base, children = family
    sb, sc = base.state_dict(), sds(*children)
    assert_sd_equal(task_arithmetic(sb, sc, lam=0.0), sb)
    assert_sd_equal(task_arithmetic(sb, sc[:1], lam=1.0), sc[0], atol=1e-7)
    tv = [task_vector(c, sb) for c in sc]  # theta = base + lam * sum tau, by hand
    merged = task_arithmetic(sb, sc, lam=0.4)
    k = "blocks.1.mlp.fc.weight"
    assert torch.allclose(merged[k], sb[k] + 0.4 * (tv[0][k] + tv[1][k] + tv[2][k]), atol=1e-6)


@pytest.mark.parametrize("norm", ["geodesic", "raw"])
def test_slerp_endpoints_and_per_layer_t(family, norm):
    base, (a, b, _) = family
    sa, sb = a.state_dict(), b.state_dict()
    assert_sd_equal(slerp(sa, sb, 0.0, norm), sa)
    assert_sd_equal(slerp(sa, sb, 1.0, norm), sb)
    per_layer = slerp(sa, sb, [0.0, 1.0], norm)  # first block from a, last from b, the middle half-way
    first = next(k for k in sa if k.startswith("blocks.0."))
    assert torch.equal(per_layer[first], sa[first])
    last = next(k for k in sa if k.startswith("blocks.2."))
    assert torch.equal(per_layer[last], sb[last])
    assert layer_ts(sa, [0.0, 1.0]) == {"blocks.0": 0.0, "blocks.1": 0.5, "blocks.2": 1.0, "other": 0.5}


def test_slerp_geodesic_vs_raw_and_the_parallel_fallback():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=g), 3 * torch.randn(50, generator=g)
    geo, raw = slerp_tensor(a, b, 0.3, "geodesic"), slerp_tensor(a, b, 0.3, "raw")
    assert math.isclose(geo.norm().item(), 0.7 * a.norm().item() + 0.3 * b.norm().item(), rel_tol=1e-5)
    cos = lambda x, y: float((x @ y) / (x.norm() * y.norm()))  # noqa: E731
    assert math.acos(cos(raw, a)) > math.acos(cos(geo, a)) + 0.05  # raw: pulled toward the longer b
    omega = math.acos(cos(a, b))  # geodesic: the angle to a is t * omega
    assert math.isclose(math.acos(cos(geo, a)), 0.3 * omega, rel_tol=1e-4)
    b_same_norm = b / b.norm() * a.norm()  # equal norms: the two readings agree
    assert torch.allclose(slerp_tensor(a, b_same_norm, 0.3, "geodesic"), slerp_tensor(a, b_same_norm, 0.3, "raw"),
                          atol=1e-5)
    assert torch.allclose(slerp_tensor(a, 2 * a, 0.25), torch.lerp(a, 2 * a, 0.25))  # parallel: lerp
    assert torch.allclose(slerp_tensor(a, -a, 0.5), torch.zeros_like(a), atol=1e-6)  # antiparallel: lerp too


def test_ties_kept_fraction_equals_density_per_tensor_and_over_the_model(family):
    base, children = family
    sb = base.state_dict()
    deltas = {k: torch.stack([task_vector(c, sb)[k] for c in sds(*children)]) for k in describe(sb)["merged"]}
    for density in (0.1, 0.2, 0.5):
        per_tensor = trim(deltas, density, "tensor")
        for k, t in per_tensor.items():
            n = t[0].numel()
            for row in t:  # each child's task vector, each tensor
                assert int((row != 0).sum()) == max(1, int(density * n)), k
        whole = trim(deltas, density, "model")
        total = sum(t[0].numel() for t in whole.values())
        for n_child in range(len(children)):
            kept = sum(int((t[n_child] != 0).sum()) for t in whole.values())
            assert kept == round(density * total)


def test_ties_global_trim_keeps_the_largest_entries():
    deltas = {"a": torch.tensor([[0.1, -5.0, 0.2]]), "b": torch.tensor([[4.0, 0.3, -0.05, 3.0]])}
    kept = trim(deltas, 3 / 7, "model")
    assert torch.equal(kept["a"], torch.tensor([[0.0, -5.0, 0.0]]))
    assert torch.equal(kept["b"], torch.tensor([[4.0, 0.0, 0.0, 3.0]]))  # 1/3 of a kept, 2/4 of b: uneven
    per_tensor = trim(deltas, 0.5, "tensor")  # int(0.5 * numel) of each tensor instead
    assert torch.equal(per_tensor["a"], torch.tensor([[0.0, -5.0, 0.0]]))
    assert torch.equal(per_tensor["b"], torch.tensor([[4.0, 0.0, 0.0, 3.0]]))


def test_ties_sign_election_and_disjoint_mean_by_hand():
    t = {"w": torch.tensor([[1.0, 2.0, 1.0, 0.0], [-2.0, 0.0, -1.0, 0.0], [3.0, -1.0, 0.0, 0.0]])}
    # sums: 2 (+), 1 (+), 0 (tie), 0 (nothing kept)
    positive = elect_sign(t, "positive")["w"]
    assert positive.tolist() == [1.0, 1.0, 1.0, 1.0]
    merged = disjoint_mean(t, {"w": positive})["w"]
    assert merged.tolist() == [2.0, 2.0, 1.0, 0.0]  # (1 + 3) / 2, 2 / 1, the + value, nothing
    many_negative = {"w": t["w"], "v": -torch.ones(2, 5)}  # most entries of the model elect -
    majority = elect_sign(many_negative, "majority")["w"]
    assert majority.tolist() == [1.0, 1.0, -1.0, -1.0]  # the tie takes the model's majority sign
    assert disjoint_mean(many_negative, elect_sign(many_negative, "majority"))["w"].tolist() == [2.0, 2.0, -1.0, 0.0]


def test_ties_of_one_child_at_full_density_is_the_child(family):
    base, (a, *_) = family
    for scope in ("model", "tensor"):
        assert_sd_equal(ties(base.state_dict(), [a.state_dict()], density=1.0, trim_scope=scope), a.state_dict(),
                        atol=1e-7)


def test_dare_is_unbiased_in_expectation_and_l1_keeps_the_norm():
    g = torch.Generator().manual_seed(0)
    delta = 0.5 + torch.rand(10_000, generator=g)
    for p in (0.5, 0.9):
        draws = torch.stack([dare_drop(delta, p, g) for _ in range(300)])
        assert abs(float(draws.sum(1).mean() / delta.sum()) - 1) < 0.01  # mean over draws within 1 %
        assert abs(float((draws[:, :100].mean(0) / delta[:100]).mean()) - 1) < 0.05  # per entry, averaged
        assert math.isclose(float((draws[0] != 0).float().mean()), 1 - p, abs_tol=0.02)
        l1 = dare_drop(delta, p, g, rescale="l1")
        assert math.isclose(float(l1.abs().sum()), float(delta.abs().sum()), rel_tol=1e-5)  # exact per draw
    assert torch.equal(dare_drop(delta, 0.0, g), delta)


def test_dare_merges_average_to_task_arithmetic(family):
    base, children = family
    sb, sc = base.state_dict(), sds(*children)
    k = "blocks.0.mlp.fc.weight"
    mean = torch.stack([dare(sb, sc, p=0.5, seed=s)[k] for s in range(200)]).mean(0)
    ta = task_arithmetic(sb, sc)[k]
    assert float((mean - sb[k]).sum() / (ta - sb[k]).sum()) == pytest.approx(1.0, abs=0.05)
    assert_sd_equal(dare(sb, sc, p=0.0), task_arithmetic(sb, sc), atol=1e-6)
    assert_sd_equal(dare(sb, sc, p=0.0, on="ties", lam=1.0), ties(sb, sc, density=1.0), atol=1e-6)
    assert_sd_equal(dare(sb, sc, p=0.7, seed=3), dare(sb, sc, p=0.7, seed=3))  # seeded


def test_soup_of_one_is_that_model_and_greedy_keeps_what_helps(family):
    base, children = family
    sc = sds(*children)
    assert_sd_equal(uniform_soup(sc[:1]), sc[0])
    k = "ln_f.weight"
    mean = (sc[0][k] + sc[1][k] + sc[2][k]) / 3
    assert torch.allclose(uniform_soup(sc)[k], mean, atol=1e-7)
    target = uniform_soup(sc[:2])  # the score prefers soups near the mean of children 0 and 1

    def score(sd):
        return -sum(float((sd[n] - target[n]).pow(2).sum()) for n in describe(sd)["merged"])
    soup, chosen = greedy_soup(sc, score)
    assert sorted(chosen) == [0, 1]
    assert_sd_equal(soup, target, atol=1e-7)
    one, chosen = greedy_soup(sc[:1], score)
    assert chosen == [0] and one.keys() == sc[0].keys()


def test_layerwise_generalises_task_arithmetic_and_tuning_beats_one_coefficient(family):
    base, children = family
    sb, sc = base.state_dict(), sds(*children)
    assert layer_groups(sb) == ["blocks.0", "blocks.1", "blocks.2", "other"]
    assert_sd_equal(layerwise(sb, sc, 0.3), task_arithmetic(sb, sc, 0.3), atol=1e-7)
    want = {"blocks.0": 1.0, "blocks.1": 0.0, "blocks.2": 0.5, "other": 0.25}
    target = layerwise(sb, sc, want)

    def score(sd):
        return -sum(float((sd[n] - target[n]).pow(2).sum()) for n in describe(sd)["merged"])
    coeffs, merged, best = tune_layerwise(sb, sc, score, grid=(0.0, 0.25, 0.5, 1.0))
    assert coeffs == want and best == pytest.approx(0.0, abs=1e-9)
    single = max(score(layerwise(sb, sc, c)) for c in (0.0, 0.25, 0.5, 1.0))
    assert best > single


# -- the policy: inputs, tied tensors, buffers ------------------------------------------------------
METHOD_CALLS = {
    "ta": lambda b, c: task_arithmetic(b, c, 0.5),
    "ties": lambda b, c: ties(b, c, 0.3),
    "ties_tensor": lambda b, c: ties(b, c, 0.3, trim_scope="tensor", sign_ties="positive"),
    "dare_ta": lambda b, c: dare(b, c, 0.5),
    "dare_ties": lambda b, c: dare(b, c, 0.5, on="ties", rescale="l1"),
    "slerp": lambda b, c: slerp(c[0], c[1], [0.2, 0.8]),
    "soup": lambda b, c: uniform_soup(c),
    "layerwise": lambda b, c: layerwise(b, c, 0.5),
}


@pytest.mark.parametrize("method", sorted(METHOD_CALLS))
def test_inputs_never_mutated_and_tied_weights_merged_once(family, method):
    base, children = family
    sb, sc = base.state_dict(), sds(*children)
    before = snapshot([sb, *sc])
    out = METHOD_CALLS[method](sb, sc)
    for old, new in zip(before, [sb, *sc]):
        assert_sd_equal(old, new)
    assert out["lm_head.weight"] is out["tok_emb.weight"]  # one tensor under both names
    assert all(out[k].data_ptr() != v.data_ptr() for sd in [sb, *sc] for k, v in sd.items() if k in out)
    merged = build_model("gpt", **TINY)
    merged.load_state_dict(out)
    assert merged.lm_head.weight is merged.tok_emb.weight and torch.equal(merged.lm_head.weight, out["tok_emb.weight"])


def test_describe_counts_tied_tensors_once(family):
    base, _ = family
    plan = describe(base.state_dict())
    assert plan["tied"] == {"lm_head.weight": "tok_emb.weight"}
    assert "lm_head.weight" not in plan["merged"] and plan["copied"] == []
    assert plan["merged_params"] == base.num_params()


def test_non_float_tensors_copied_and_refused_when_they_differ(family):
    base, (a, b, _) = family
    sa, sb = dict(a.state_dict()), dict(b.state_dict())
    sa["counter"], sb["counter"] = torch.tensor([3, 4]), torch.tensor([3, 4])
    out = task_arithmetic(sa, [sb], 0.5)
    assert torch.equal(out["counter"], sa["counter"]) and out["counter"] is not sa["counter"]
    assert describe(sa)["copied"] == ["counter"]
    sb["counter"] = torch.tensor([3, 5])
    with pytest.raises(NeuroError, match="non-float tensor 'counter' differs"):
        task_arithmetic(sa, [sb], 0.5)


def test_mismatched_models_refused(family):
    base, (a, *_) = family
    other = build_model("gpt", **dict(TINY, d_model=32)).state_dict()
    with pytest.raises(NeuroError, match="differ in shape"):
        task_arithmetic(base.state_dict(), [other])
    with pytest.raises(NeuroError, match="different tensors"):
        task_arithmetic(base.state_dict(), [tiny(0, "aeron").state_dict()])
    untied = {k: v.clone() for k, v in a.state_dict().items()}
    with pytest.raises(NeuroError, match="tie different tensors"):
        task_arithmetic(base.state_dict(), [untied])
    with pytest.raises(NeuroError, match="density"):
        ties(base.state_dict(), [a.state_dict()], density=0.0)
    with pytest.raises(NeuroError, match="drop rate"):
        dare(base.state_dict(), [a.state_dict()], p=1.0)
    with pytest.raises(NeuroError, match="slerp t"):
        slerp(base.state_dict(), a.state_dict(), 1.5)


def test_aeron_family_merges_too():
    base = tiny(0, "aeron")
    children = [child_of(base, s) for s in (1, 2)]
    out = ties(base.state_dict(), sds(*children), 0.5)
    assert out["lm_head.weight"] is out["tok_emb.weight"]
    assert layer_groups(base.state_dict()) == ["decoder.0", "decoder.1", "other"]


# -- the logit ensemble under the engine ------------------------------------------------------------
def test_ensemble_decodes_and_averages(family):
    base, (a, b, _) = family
    x = torch.randint(0, 256, (2, 7))
    one = LogitEnsemble([a])
    assert torch.allclose(one(x), a(x), atol=1e-6)
    ens = LogitEnsemble([a, b])
    assert torch.allclose(ens(x), (a(x) + b(x)) / 2, atol=1e-5)
    probs = LogitEnsemble([a, b], space="probs")
    mix = (a(x).softmax(-1) + b(x).softmax(-1)) / 2
    assert torch.allclose(probs(x).softmax(-1), mix, atol=1e-6)
    state = ens.init_state(2)  # incremental decoding equals the full pass
    first, _ = ens.step(x[:, :4], state)
    rest, _ = ens.step(x[:, 4:], state)
    assert torch.allclose(torch.cat([first, rest], 1), ens(x), atol=1e-4)
    assert state.lengths == [7, 7] and state.nbytes() == sum(s.nbytes() for s in state.states)
    tok = ByteTokenizer()
    same = Engine(LogitEnsemble([a, a]), tok).generate(["ab", "xyz"], Sampling(max_new_tokens=6, temperature=0))
    assert same == Engine(a, tok).generate(["ab", "xyz"], Sampling(max_new_tokens=6, temperature=0))
    assert ens.max_len == TINY["block_size"] and "paged" in ens.cache_kinds
    paged = Engine(ens, tok, cache="paged").generate("ab", Sampling(max_new_tokens=5, temperature=0))
    assert paged == Engine(ens, tok).generate("ab", Sampling(max_new_tokens=5, temperature=0))


# -- run folders: the family check, lineage, the command -------------------------------------------
@pytest.fixture
def runs(tmp_path, family):
    base, children = family
    tok = ByteTokenizer()
    save_checkpoint(tmp_path / "base", base, tok)
    paths = []
    for i, c in enumerate(children):
        save_checkpoint(tmp_path / f"c{i}", c, tok, extra={"parent": lineage(tmp_path / "base", "finetune")})
        paths.append(tmp_path / f"c{i}")
    other = tiny(9)
    save_checkpoint(tmp_path / "base2", other, tok)
    save_checkpoint(tmp_path / "stranger", child_of(other, 5), tok,
                    extra={"parent": lineage(tmp_path / "base2", "finetune")})
    return tmp_path, paths


def test_merge_runs_writes_a_checkpoint_with_lineage(runs, family):
    root, children = runs
    folder = merge_runs("ties", root / "base", children[:2], root / "merged", density=0.5, lam=0.8)
    cfg = check_lineage(root / "merged")
    parents = parents_of(cfg)
    assert [p["role"] for p in parents] == ["base", "child", "child"]
    assert {p["method"] for p in parents} == {"merge:ties"} and parents[0]["density"] == 0.5
    assert cfg["merge"]["tied"] == {"lm_head.weight": "tok_emb.weight"}
    model, _, _ = load_checkpoint(folder)
    base, kids = family
    want = ties(base.state_dict(), sds(*kids[:2]), density=0.5, lam=0.8)
    assert_sd_equal(model.state_dict(), want, atol=1e-7)
    tv = task_vector_runs(children[0], root / "base")
    assert torch.allclose(tv["ln_f.weight"], kids[0].ln_f.weight - base.ln_f.weight)


def test_children_of_different_bases_are_refused_before_anything_is_written(runs):
    root, children = runs
    with pytest.raises(NeuroError, match="is not a child of .*only fine-tunes of one base can be merged"):
        merge_runs("ta", root / "base", [children[0], root / "stranger"], root / "bad")
    assert not (root / "bad").exists()
    with pytest.raises(NeuroError, match="is not a child of"):
        task_vector_runs(root / "stranger", root / "base")
    with pytest.raises(NeuroError, match="takes no option"):
        merge_state("ta", {}, [], density=0.2)


def test_a_changed_base_is_refused(runs):
    root, children = runs
    save_checkpoint(root / "base", tiny(4), ByteTokenizer())  # the base moved on: its id changed
    with pytest.raises(NeuroError, match="has changed since"):
        merge_runs("ta", root / "base", children, root / "bad")


def test_cli_merge(runs, capsys):
    root, children = runs
    code = main(["merge", "--method", "slerp", "--base", str(root / "base"), *map(str, children[:2]),
                 "--t", "0", "1", "--norm", "raw", "--out", str(root / "s")])
    out, err = capsys.readouterr()
    assert code == 0 and "slerp" in out, err
    cfg = json.loads((root / "s" / "checkpoint.json").read_text())
    assert cfg["step"] == 0
    assert parents_of(check_lineage(root / "s"))[0]["t"] == [0.0, 1.0]
    code = main(["merge", "--method", "ta", "--base", str(root / "base"), str(children[0]), str(root / "stranger"),
                 "--out", str(root / "t")])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("neuro: error:") and "is not a child of" in err and err.count("\n") == 1
    assert not (root / "t").exists()
    code = main(["merge", "--method", "soup", "--base", str(root / "base"), *map(str, children),
                 "--out", str(root / "s")])
    _, err = capsys.readouterr()
    assert code == 2 and "already holds a checkpoint" in err
    code = main(["merge", "--method", "layerwise", "--base", str(root / "base"), *map(str, children),
                 "--coeffs", "1", "0.5", "--out", str(root / "lw")])
    _, err = capsys.readouterr()
    assert code == 2 and "needs 4 coefficients" in err


# -- mergekit as an optional oracle ------------------------------------------------------------------
def test_mergekit_options_match_mergekit():
    """Our `trim_scope="tensor"`, `sign_ties="positive"` and `norm="raw"` against mergekit's own functions (LGPL;
    imported here only, as an oracle, when installed; checked with mergekit 0.1.5 in a separate venv:
    PYTHONPATH=.:MAIN_SITE_PACKAGES VENV/bin/python -m pytest tests/test_merging.py -k mergekit). DARE's "l1"
    rescaling draws its own mask, so it is checked by its property (the L1 norm kept) above."""
    sparsify = pytest.importorskip("mergekit.sparsify")
    gta = pytest.importorskip("mergekit.merge_methods.generalized_task_arithmetic")
    mk_slerp = pytest.importorskip("mergekit.merge_methods.slerp")
    g = torch.Generator().manual_seed(0)
    d = torch.randn(3, 40, generator=g)
    ours = trim({"w": d}, 0.3, "tensor")["w"]
    theirs = torch.stack([sparsify.magnitude(row, 0.3) for row in d])
    assert torch.equal(ours, theirs)
    mask = gta.get_mask(ours, method="sum")
    mixed = (ours * mask).sum(0) / mask.sum(0).clamp_min(1)
    assert torch.allclose(disjoint_mean({"w": ours}, elect_sign({"w": ours}, "positive"))["w"], mixed, atol=1e-6)
    a, b = torch.randn(30, generator=g), torch.randn(30, generator=g)
    theirs = mk_slerp.slerp(torch.tensor([0.3]), a[None], b[None])[0]  # mergekit >= 0.1.5: a leading batch axis
    assert torch.allclose(slerp_tensor(a, b, 0.3, "raw"), theirs.float(), atol=1e-5)
    assert torch.allclose(slerp_tensor(a, 2 * a, 0.3, "raw"), mk_slerp.slerp(torch.tensor([0.3]), a[None],
                                                                              2 * a[None])[0], atol=1e-6)
