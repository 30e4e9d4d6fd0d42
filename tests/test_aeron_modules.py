"""Aeron's enhancement pipeline (models/aeron/enhanced.py and its modules), the synthetic tasks
(data/aeron_tasks.py) and the `neuro bench aeron-modules` harness: shapes and masks per module, the gate
really skipping work, the scratchpad write leaving the same step's result alone, exact-key memory reads,
the no-module pipeline equal to plain Aeron, typed diagnostics."""
from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from neuro_lib.bench.aeron_modules import EXPERIMENTS, summarise, verdict
from neuro_lib.data import aeron_tasks as T
from neuro_lib.errors import NeuroError
from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.aeron.enhanced import AeronDiagnostics, AeronEnhanced, AeronOutput, EnhancedConfig
from neuro_lib.models.aeron.episodic import EpisodicConfig, EpisodicMemory, MemoryStats
from neuro_lib.models.aeron.inject import Injection, masked_mean
from neuro_lib.models.aeron.knowledge_graph import KGConfig, KnowledgeGraphAttention
from neuro_lib.models.aeron.reasoning import ReasoningConfig, ReasoningDiagnostics, ReasoningEngine
from neuro_lib.models.aeron.scratchpad import ScratchpadStats
from neuro_lib.profiles import PROFILES

torch.set_num_threads(1)
C, V = 32, T.VOCAB


def backbone(seed=0):
    torch.manual_seed(seed)
    return Aeron(AeronConfig(vocab_size=V, d_model=C, n_head=4, n_kv_head=2, n_encoder_layer=1, n_decoder_layer=1,
                             d_ff=64, block_size=64, mode="encoder-decoder")).eval()


def full(seed=0, **reasoning):
    torch.manual_seed(seed + 1)
    cfg = EnhancedConfig(reasoning=ReasoningConfig(d_model=C, n_slots=4, **reasoning), episodic=EpisodicConfig(d_model=C),
                         kg=KGConfig(d_model=C, n_entities=10, n_relations=3))
    return AeronEnhanced(backbone(seed), cfg).eval()


def inputs(B=3, S=7, pad_from=5):
    torch.manual_seed(42)
    src = torch.randint(1, V, (B, S))
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[0, pad_from:] = False
    tokens = torch.randint(1, V, (B, 4))
    triples = torch.tensor([[[1, 0, 2], [3, 1, 4], [-1, 0, 0]]] * B)
    return tokens, src, mask, triples


# -- the pipeline ------------------------------------------------------------------------------
def test_no_modules_is_plain_aeron():
    a = backbone()
    tokens, src, mask, _ = inputs()
    e = AeronEnhanced(a).eval()
    with torch.no_grad():
        out = e(tokens, src, mask)
        torch.testing.assert_close(out.logits, a(tokens, src, mask), rtol=0, atol=0)
    assert e.num_params() == a.num_params()
    d = out.diagnostics
    assert (d.reasoning, d.memory, d.uncertainty) == (None, None, None)
    assert not (d.kg_used or d.vision_used or d.task_conditioned) and float(out.aux_loss) == 0.0


def test_diagnostics_are_typed_dataclasses():
    e = full()
    tokens, src, mask, triples = inputs()
    e.memorize(src, mask)
    with torch.no_grad():
        out = e(tokens, src, mask, entities=triples)
    assert isinstance(out, AeronOutput) and isinstance(out.diagnostics, AeronDiagnostics)
    d = out.diagnostics
    assert isinstance(d.reasoning, ReasoningDiagnostics) and isinstance(d.reasoning.scratchpad, ScratchpadStats)
    assert isinstance(d.memory, MemoryStats) and d.kg_used
    assert all(dataclasses.is_dataclass(x) for x in (out, d, d.reasoning, d.memory, d.reasoning.scratchpad))
    assert out.logits.shape == (3, 4, V)
    assert d.reasoning.branch_scores.shape == (3, 4) and d.reasoning.gate_scores.shape == (3,)
    assert d.memory.read_weights.shape == (3, EpisodicConfig(d_model=C).top_k) and d.memory.used_slots.tolist() == [1] * 3


def test_padding_content_never_matters():
    """Whatever sits under src_mask == False changes nothing, through every module."""
    e = full()
    tokens, src, mask, triples = inputs()
    other = src.clone()
    other[0, 5:] = (other[0, 5:] + 3) % V
    with torch.no_grad():
        e.memory.reset(3)
        a = e(tokens, src, mask, entities=triples).logits
        e.memory.reset(3)
        b = e(tokens, other, mask, entities=triples).logits
    torch.testing.assert_close(a, b)


def test_modules_are_order_and_argument_checked():
    with pytest.raises(ValueError, match="encoder-decoder"):
        AeronEnhanced(Aeron(AeronConfig(vocab_size=V, d_model=C, n_head=4, n_kv_head=2, n_decoder_layer=1, d_ff=64,
                                        block_size=64)))
    with pytest.raises(ValueError, match="differs"):
        AeronEnhanced(backbone(), EnhancedConfig(kg=KGConfig(d_model=16, n_entities=4, n_relations=2)))
    with pytest.raises(ValueError, match="both or neither"):
        AeronEnhanced(backbone(), vision=nn.Identity())
    with pytest.raises(ValueError, match="no episodic memory"):
        AeronEnhanced(backbone()).memorize(torch.ones(1, 3, dtype=torch.long))


def test_task_embedding_conditions_the_encoder_output():
    """A task embedding (B,) -> (B, C) plugs in: it is used when a task id is given, ignored otherwise."""
    torch.manual_seed(0)
    e = AeronEnhanced(backbone(), EnhancedConfig(reasoning=ReasoningConfig(d_model=C, threshold=0.0)),
                      task_embedding=nn.Embedding(3, C)).eval()
    tokens, src, mask, _ = inputs()
    with torch.no_grad():
        plain = e(tokens, src, mask)
        t0 = e(tokens, src, mask, task_id=torch.zeros(3, dtype=torch.long))
        t1 = e(tokens, src, mask, task_id=torch.ones(3, dtype=torch.long))
    assert not plain.diagnostics.task_conditioned and t0.diagnostics.task_conditioned
    assert not torch.allclose(t0.logits, t1.logits)


def test_gate_penalty_enters_the_loss():
    e = AeronEnhanced(backbone(), EnhancedConfig(reasoning=ReasoningConfig(d_model=C), gate_penalty=0.5))
    tokens, src, mask, _ = inputs()
    loss, parts = e.compute_loss({"tokens": tokens, "src": src, "src_mask": mask, "targets": tokens})
    assert parts["aux_loss"] > 0 and loss.item() == pytest.approx(parts["lm_loss"] + parts["aux_loss"], rel=1e-5)
    loss.backward()
    assert e.reasoning.gate.net[-1].weight.grad.abs().sum() > 0   # the gate learns from the loss


# -- reasoning engine --------------------------------------------------------------------------
def _engine(threshold=0.3):
    torch.manual_seed(0)
    return ReasoningEngine(ReasoningConfig(d_model=C, n_branches=4, keep=2, n_slots=4, threshold=threshold)).eval()


def test_gate_skips_rows_below_threshold_and_does_not_compute_them():
    eng = _engine()
    h, mask = torch.randn(4, 6, C), torch.ones(4, 6, dtype=torch.bool)
    seen = []
    eng.tot.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        scores = eng.gate(h, mask)
        thr = float(scores.sort().values[1:3].mean())         # two rows below, two above
        out, diag = eng(h, mask, threshold=thr)
    below = scores < thr
    assert diag.skipped.tolist() == below.tolist() and below.sum() == 2
    assert seen == [2] and eng.rows_processed == 2              # the ToT ran on the two rows above only
    torch.testing.assert_close(out[below], h[below], rtol=0, atol=0)   # skipped rows are untouched
    assert not torch.allclose(out[~below], h[~below])
    assert (diag.branch_scores[below] == 0).all() and not diag.kept[below].any()
    with torch.no_grad():
        out, diag = eng(h, mask, threshold=1.01)               # above any sigmoid: everything skipped
    assert seen == [2] and eng.rows_processed == 2 and diag.skipped.all()
    torch.testing.assert_close(out, h, rtol=0, atol=0)


def test_tot_prunes_to_keep_and_merges_with_quality_weights():
    eng = _engine()
    h, mask = torch.randn(3, 5, C), torch.ones(3, 5, dtype=torch.bool)
    th = eng.tot(h, mask)
    assert th.branches.shape == (3, 4, C) and th.merged.shape == (3, C)
    assert (th.kept.sum(1) == 2).all()
    torch.testing.assert_close(th.weights.sum(1), torch.ones(3))
    assert (th.weights[~th.kept] == 0).all()
    # the kept branches are the critic's best two, weighted by softmax of their scores
    best = th.scores.topk(2, 1)
    torch.testing.assert_close(th.weights.gather(1, best.indices), best.values.softmax(1))
    torch.testing.assert_close(th.merged, (th.weights[..., None] * th.branches).sum(1))


def test_scratchpad_write_does_not_change_the_same_step():
    """The write returns new slots and leaves the module's state alone: a repeated pass gives the same
    result, each row is independent of the others, and only commit_write persists."""
    eng = _engine(threshold=0.0)
    h, mask = torch.randn(3, 5, C), torch.ones(3, 5, dtype=torch.bool)
    pad = eng.scratchpad
    before = {k: v.clone() for k, v in pad.state_dict().items()}
    with torch.no_grad():
        a, d1 = eng(h, mask)
        b, _ = eng(h, mask)
        alone, _ = eng(h[1:2], mask[1:2])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(alone, a[1:2])
    for k, v in pad.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert d1.scratchpad.used_slots == 0 and d1.scratchpad.pending == 3
    with torch.no_grad():
        eng(h, mask)
    assert pad.commit_write() == 3
    st = pad.stats()
    assert st.used_slots == 3 and st.step_counter == 1 and st.write_slot == 3
    with torch.no_grad():
        c, _ = eng(h, mask)
    assert not torch.allclose(a, c)                             # the committed thoughts are read later
    assert pad.commit_write() == 3 and pad.stats().used_slots == 4   # 4 slots: the oldest are replaced
    pad.clear()
    assert pad.stats().used_slots == 0


def test_reasoning_context_is_read_by_the_branches():
    eng = _engine(threshold=0.0)
    h, mask = torch.randn(2, 5, C), torch.ones(2, 5, dtype=torch.bool)
    ctx = torch.randn(2, 1, C)
    with torch.no_grad():
        a, _ = eng(h, mask)
        b, _ = eng(h, mask, ctx, torch.ones(2, 1, dtype=torch.bool))
        c, _ = eng(h, mask, ctx, torch.zeros(2, 1, dtype=torch.bool))   # masked context = no context
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, c)


def test_reasoning_config_checks():
    with pytest.raises(ValueError, match="keep"):
        ReasoningConfig(d_model=8, n_branches=2, keep=3)
    with pytest.raises(ValueError, match="threshold"):
        ReasoningConfig(d_model=8, threshold=1.5)


# -- episodic memory ---------------------------------------------------------------------------
def _memory(n_slots=4, d=8, top_k=2):
    torch.manual_seed(0)
    mem = EpisodicMemory(EpisodicConfig(d_model=C, n_slots=n_slots, memory_dim=d, top_k=top_k))
    mem.reset(2)
    return mem


def test_memory_read_returns_the_written_item_for_an_exact_key():
    mem = _memory()
    keys, vals = torch.randn(3, 2, 8), torch.randn(3, 2, 8)
    for k, v in zip(keys, vals):
        mem.write(k, v)
    for k, v in zip(keys, vals):
        torch.testing.assert_close(mem.read(k), v)
    assert mem.read(torch.randn(2, 8)).shape == (2, 8)


def test_memory_read_matches_a_naive_cosine_nearest_neighbour():
    import numpy as np

    mem = _memory(n_slots=16)
    keys, vals = torch.randn(16, 2, 8), torch.randn(16, 2, 8)
    for k, v in zip(keys, vals):
        mem.write(k, v)
    q = torch.randn(5, 8)
    kn, qn = keys[:, 0].double().numpy(), q.double().numpy()
    cos = (qn @ kn.T) / np.linalg.norm(qn, axis=1)[:, None] / np.linalg.norm(kn, axis=1)[None]
    idx = cos.argmax(1)
    for i in range(5):
        got = mem.read(torch.stack([q[i], q[i]]))[0]
        torch.testing.assert_close(got, vals[idx[i], 0])


def test_memory_write_policy():
    """Exact key overwrites its slot; empty slots fill in order; then the least-used slot goes, ties to the oldest."""
    mem = _memory(n_slots=3, top_k=1)
    k = torch.eye(8)[:5, None].expand(5, 2, 8).contiguous()     # 5 orthogonal keys, the same in both rows
    v = torch.randn(5, 2, 8)
    assert [mem.write(k[i], v[i])[0].item() for i in range(3)] == [0, 1, 2]
    assert mem.write(k[1], v[3])[0].item() == 1                   # exact key: overwrite
    torch.testing.assert_close(mem.read(k[1]), v[3])
    mem.attend(k[0])                                              # slot 0 is read: used; 1 and 2 are not
    assert mem.write(k[3], v[3])[0].item() == 2                   # slots 1, 2 unused; 2 is older (1 was rewritten)
    assert mem.write(k[4], v[4])[0].item() == 1
    assert mem.used.all()


def test_memorize_many_equals_one_at_a_time():
    """Writing F items per row in one call = F calls in order; and a read with fewer used slots than
    top_k has finite gradients (no -inf times zero)."""
    e = full()
    facts = torch.randint(1, V, (2, 3, 4))
    slots = e.memorize(facts)
    keys = e.memory.keys.clone()
    e.memory.reset(2)
    for f in range(3):
        e.memorize(facts[:, f])
    torch.testing.assert_close(e.memory.keys, keys)
    assert slots.tolist() == [[0, 1, 2]] * 2
    mem = _memory(top_k=4)
    mem.memorize(torch.randn(2, 3, C))
    out, _, _, _ = mem(torch.randn(2, 3, C))
    out.sum().backward()
    assert torch.isfinite(mem.log_scale.grad) and torch.isfinite(mem.key_proj.weight.grad).all()


def test_memory_shape_guard_and_empty_reads():
    mem = _memory()
    with pytest.raises(ValueError, match="memory_dim"):
        mem.write(torch.randn(2, 7), torch.randn(2, 8))
    h = torch.randn(2, 5, C)
    out, token, token_mask, stats = mem(h, None)
    torch.testing.assert_close(out, h)                            # nothing written: nothing injected
    assert not token_mask.any() and (stats.read_weights == 0).all()
    with pytest.raises(ValueError, match="reset"):
        mem(torch.randn(3, 5, C))


def test_memory_writes_train_the_writer_within_an_episode():
    mem = _memory()
    h_facts, h_query = torch.randn(2, 2, 4, C), torch.randn(2, 3, C)
    for h in h_facts:                     # two items: with one, the softmax read would not depend on the key
        mem.memorize(h)
    out, _, _, _ = mem(h_query)
    out.sum().backward()
    assert mem.value_proj.weight.grad.abs().sum() > 0 and mem.key_proj.weight.grad.abs().sum() > 0


# -- knowledge graph ---------------------------------------------------------------------------
def test_kg_attention_reads_triples_and_ignores_padding():
    torch.manual_seed(0)
    kg = KnowledgeGraphAttention(KGConfig(d_model=C, n_entities=10, n_relations=3))
    h = torch.randn(2, 4, C)
    t = torch.tensor([[[1, 0, 2], [3, 1, 4]], [[5, 2, 6], [-1, 0, 0]]])
    out = kg(h, t)
    assert out.shape == h.shape
    padded = torch.cat([t, torch.full((2, 3, 3), -1)], 1)
    torch.testing.assert_close(kg(h, padded), out)
    torch.testing.assert_close(kg(h, torch.full((2, 2, 3), -1)), h)  # no triples: unchanged
    other = t.clone()
    other[0, 0, 2] = 7
    assert not torch.allclose(kg(h, other)[0], out[0]) and torch.allclose(kg(h, other)[1], out[1])
    with pytest.raises(ValueError, match="out of range"):
        kg(h, torch.tensor([[[1, 5, 2]]] * 2))
    with pytest.raises(ValueError, match=r"\(head, relation, tail\)"):
        kg(h, torch.zeros(2, 3, dtype=torch.long))


def test_injection_leaves_rows_without_items_alone():
    torch.manual_seed(0)
    inj = Injection(C, 4)
    x, items = torch.randn(3, 5, C), torch.randn(3, 2, C)
    m = torch.tensor([[True, False], [False, False], [True, True]])
    out = inj(x, items, m)
    torch.testing.assert_close(out[1], x[1], rtol=0, atol=0)
    torch.testing.assert_close(out[0], inj(x[:1], items[:1, :1])[0])
    assert masked_mean(x, torch.tensor([[True] * 2 + [False] * 3] * 3)).allclose(x[:, :2].mean(1))


# -- synthetic tasks ---------------------------------------------------------------------------
def test_chain_problems_follow_the_bindings():
    rng = random.Random(0)
    for depth in (1, 2, 4):
        src, ans = T.chain_problem(rng, depth)
        assert len(src) == 2 * depth * 3 + 2 and src[-2] == T.ASK
        binding = {src[i]: src[i + 2] for i in range(0, len(src) - 2, 3)}
        assert all(src[i + 1] == T.EQ for i in range(0, len(src) - 2, 3)) and len(binding) == 2 * depth
        v, hops = src[-1], 0
        while v >= T.NAME0:                   # follow the chain to its digit
            v, hops = binding[v], hops + 1
        assert v == ans and hops == depth
    b = T.chain_batch(random.Random(1), 16, max_depth=4)
    assert b["src"].shape[0] == 16 and (b["src_mask"] == (b["src"] != T.PAD)).all()
    assert set(b["depth"].tolist()) <= {1, 2, 3, 4} and b["src"].max() < T.VOCAB
    with pytest.raises(ValueError):
        T.chain_batch(random.Random(1), 2, max_depth=9)


def test_facts_batch_window_and_answers():
    b = T.facts_batch(random.Random(0), 32, n_facts=6, window=2)
    assert b["facts"].shape == (32, 6, 4)
    for i in range(32):
        key = b["src"][i][b["src_mask"][i]][-3:-1].tolist()
        hits = [f for f in b["facts"][i].tolist() if f[:2] == key]
        assert len(hits) == 1 and hits[0][3] == b["targets"][i, 0].item()
        window = b["src"][i][:8].tolist()
        assert bool(b["in_window"][i]) == (hits[0] in [window[:4], window[4:]])
    with pytest.raises(ValueError):
        T.facts_batch(random.Random(0), 2, n_facts=3, window=4)


def test_kg_split_and_batches():
    g = T.KnowledgeGraph(seed=0, n_entities=12, n_relations=3, heldout=0.25)
    assert not set(g.split["test"]) & set(g.split["train"]) and len(g.split["test"]) == 9
    b = T.kg_batch(random.Random(0), g, 8, "test", distractors=1)
    assert b["entities"].shape == (8, 6, 3)
    for i in range(8):
        e, r = b["src"][i, 0].item() - T.ENT0, b["src"][i, 1].item() - T.REL0
        assert (e, r) in g.split["test"] and b["targets"][i, 0].item() == T.ENT0 + g.tail[e][r]
        assert [e, r, g.tail[e][r]] in b["entities"][i].tolist()


# -- the bench harness -------------------------------------------------------------------------
def test_verdict_from_paired_differences():
    assert verdict([0.9, 0.8, 0.85], [0.5, 0.55, 0.5], True) == "helps"
    assert verdict([0.5, 0.55, 0.5], [0.9, 0.8, 0.85], True) == "hurts"
    assert verdict([0.5, 0.6, 0.4], [0.5, 0.5, 0.5], True) == "no difference"
    assert verdict([0.1, 0.1], [0.3, 0.3], False) == "helps"    # lower is better
    assert verdict([1.0], [0.0], True).startswith("undecided")


def test_summarise_rows():
    exp = EXPERIMENTS["kg"]
    runs = [{"with": {exp.METRIC: w, "params": 110, "train_s": 2.0}, "without": {exp.METRIC: 0.1, "params": 100,
                                                                                  "train_s": 1.0}}
            for w in (0.5, 0.6, 0.7)]
    rows = {r["name"]: r for r in summarise(exp, runs)}
    assert rows[f"kg {exp.METRIC} with"]["value"] == 0.6 and rows[f"kg {exp.METRIC} with"]["spread"] == 0.1
    assert rows["kg params added"]["value"] == 10 and rows["kg train time added"]["value"] == 1.0
    assert rows["kg verdict"]["value"] == 1 and rows["kg verdict"]["verdict"] == "helps"
    assert rows[f"kg {exp.METRIC} difference"]["per_seed"] == [0.4, 0.5, 0.6]


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_contract(name):
    """Each experiment runs end to end (2 steps) and returns the arms with the same keys."""
    exp = EXPERIMENTS[name]
    assert isinstance(exp.CLAIM, str) and isinstance(exp.HIGHER_IS_BETTER, bool)
    r = exp.run(seed=0, steps=2, sizes=PROFILES["smoke"].tasks.aeron_modules)
    assert set(r) == {"with", "without", "extra"} and set(r["with"]) == set(r["without"])
    m = r["with"][exp.METRIC]  # accuracies in [0, 1]; ewc's forgetting in [-1, 1]; uncertainty's NLL >= 0
    assert {exp.METRIC, "params", "train_s"} <= set(r["with"]) and (0 <= m < 50 if exp.METRIC.startswith("nll") else -1 <= m <= 1)
    # a module adds parameters, or none (BADGE picks data; the evidential head replaces the linear one)
    assert r["with"]["params"] >= r["without"]["params"] and r["with"]["steps"] == r["without"]["steps"] == 2


def test_cli_bench_writes_a_reference_file(tmp_path):
    out = tmp_path / "ref.json"
    cmd = [sys.executable, "-m", "neuro_lib.cli", "bench", "aeron-modules", "--module", "kg", "--seeds", "2",
           "--steps", "2", "--threads", "1", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, env={"NEURO_PROGRESS": "off", "PATH": ""})
    from neuro_lib.bench.reference import check_reference

    ref = check_reference(json.loads(out.read_text()))
    assert ref["suite"] == "aeron-modules" and ref["config"]["budget"] == {"steps": 2}
    assert len(ref["extra"]["kg"]) == 2 and any(r["name"] == "kg verdict" for r in ref["results"])
    assert all(isinstance(r["value"], (int, float)) for r in ref["results"])
    assert ref["config"]["command"].startswith("neuro bench aeron-modules --module kg --seeds 2 --steps 2")


def test_cli_rejects_an_unknown_module(tmp_path):
    from neuro_lib.bench import aeron_modules
    import argparse

    p = argparse.ArgumentParser()
    aeron_modules.add_arguments(p)
    with pytest.raises(NeuroError, match="unknown module 'nope'"):
        aeron_modules.run(p.parse_args(["--module", "nope"]))
    with pytest.raises(NeuroError, match="--seeds"):
        aeron_modules.run(p.parse_args(["--seeds", "0"]))


def test_notebook_figures_read_the_recorded_runs():
    """Notebook 05's figures and tables come from the committed reference files, labelled with their command."""
    from neuro_lib.viz.aeron_modules import arms_figure, depth_figure, gate_sweep_figure, recorded, verdict_table

    recs = recorded("kg")
    assert recs and all("neuro bench aeron-modules" in label for _, label in recs)
    ref = recs[-1][0]
    rows = verdict_table([ref], "kg")
    assert rows[0]["verdict"] in ("helps", "no difference", "hurts") and rows[0]["seeds"] == ref["config"]["seeds"]
    assert len(arms_figure("kg", None, recs).data) == len(recs)
    (reasoning, _), = [r for r in recorded("reasoning") if "reasoning" in r[0]["extra"]][:1]
    assert len(depth_figure(reasoning, "t").data) == 2 and len(gate_sweep_figure(reasoning, "t").data) == 1
    assert recorded("no-such-module") == []
