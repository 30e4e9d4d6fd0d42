"""The model family (issue 21, items 1 and 2): a cached, resumable base; fine-tuned children that record their
parent and are refused once it changes; the loss on answer tokens only; our LoRA against its definition and
against peft's tensors (data/fixtures/lora_peft.safetensors, made by peft 0.21.2 with torch 2.13.0)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from neuro_lib.checkpoint import (check_lineage, checkpoint_id, load_checkpoint, read_config, save_checkpoint)
from neuro_lib.cli import main
from neuro_lib.data.sft import MARK, TASKS, task_pairs
from neuro_lib.errors import NeuroError
from neuro_lib.models import build_model
from neuro_lib.models.lora import LoRALinear, apply_lora, lora_state, merge_lora
from neuro_lib.paths import REPO_ROOT
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train import pretrain as pretrain_mod
from neuro_lib.merging.runs import task_vector_runs as task_vector
from neuro_lib.train.finetune import ADAPTER_FILE, ADAPTER_RUN, finetune, task_batches
from neuro_lib.train.pretrain import pretrain
from neuro_lib.profiles import get_profile

PEFT_FIXTURE = REPO_ROOT / "data" / "fixtures" / "lora_peft.safetensors"

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The smoke base, built once for this module in its own folder."""
    return pretrain(SMOKE, tmp_path_factory.mktemp("family") / "base")


def _tree(root: Path) -> dict:
    """Every file under root with its hash: 'nothing on disk changed' is this dict staying equal."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- the base -----------------------------------------------------------------------------------------------------
def test_pretrain_is_cached_by_content_and_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain_mod, "CACHE_DIR", tmp_path)
    run = pretrain(SMOKE)
    assert run.parent == tmp_path and run.name.startswith("base-smoke-")
    before = _tree(run)
    with monkeypatch.context() as m:
        m.setattr(pretrain_mod.Trainer, "fit", lambda *a, **k: pytest.fail("a cached base was retrained"))
        assert pretrain(SMOKE) == run
    assert _tree(run) == before
    cfg = read_config(run)
    assert cfg["arch"] == "aeron" and cfg["model"]["vocab_size"] == 257 and cfg["model"]["n_encoder_layer"] == 0
    assert set(cfg["mixture"]) == {"api-docs", "c-docs", "stdlib-src", "prose", "tasks"}
    assert abs(sum(s["share"] for s in cfg["mixture"].values()) - 1) < 1e-9
    assert pretrain(SMOKE, seed=1) != run  # another seed is another base


def test_pretrain_resumes_after_an_interruption_to_the_unbroken_weights(base, tmp_path):
    class Boom(Exception):
        pass

    def stop_at_20(rec):
        if rec.get("step") == 20 and rec.get("kind") == "train":
            raise Boom

    broken = tmp_path / "broken"
    with pytest.raises(Boom):
        pretrain(SMOKE, broken, callback=stop_at_20)
    assert read_config(broken)["step"] == 10  # smoke checkpoints every 10 steps; step 20's save never happened
    pretrain(SMOKE, broken)
    a, _, _ = load_checkpoint(base)
    b, _, _ = load_checkpoint(broken)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_mixture_sources_keep_names_and_c_modules():
    from neuro_lib.data.mixture import source_tokens
    api = source_tokens("api-docs").astype("uint8").tobytes()
    assert b"heapq.heappop(heap)" in api  # the name and signature next to the docstring
    c_docs = source_tokens("c-docs").astype("uint8").tobytes()
    assert b"module math" in c_docs and b"module itertools" in c_docs
    assert b"/root/" not in c_docs and os.path.expanduser("~").encode() + b"/" not in c_docs


# -- fine-tuning -----------------------------------------------------------------------------------------------------
def test_loss_covers_only_the_answer_tokens():
    pairs = task_pairs("reason", 8, seed=0)
    batch = task_batches(pairs, 4, seed=0)(0)
    chosen = {p.source: p for p in pairs}
    for row in range(4):
        tokens, targets, mask = batch["tokens"][row], batch["targets"][row], batch["loss_mask"][row]
        start = int((tokens == MARK).nonzero()[0])  # the answer marker after the prompt
        pair = chosen[bytes(tokens[:start].tolist())]
        n = len(pair.target) + 1
        assert mask[:start].sum() == 0                      # the prompt is never scored
        assert mask[start:start + n].all() and mask.sum() == n  # the answer and its end marker are
        assert bytes(targets[start:start + n - 1].tolist()) == pair.target and targets[start + n - 1] == MARK


def test_every_task_has_training_and_heldout_pairs():
    for task in ("reason", "code", "struct", "chat"):
        train, held = task_pairs(task, 12, seed=0), task_pairs(task, 12, seed=0, split="heldout")
        assert len(train) == len(held) == 12
        assert {p.source for p in train}.isdisjoint({p.source for p in held})
    assert set(TASKS) == {"reason", "struct", "code", "reader", "chat"}


@pytest.mark.slow
def test_reader_pairs_hold_their_answer_and_split_by_section():
    train, held = task_pairs("reader", 50, seed=0), task_pairs("reader", 50, seed=0, split="heldout")
    assert train and held
    assert {p.meta.section for p in train}.isdisjoint({p.meta.section for p in held})
    for p in train + held:
        assert p.source.startswith(b"Question: ") and p.source.endswith(b"\nAnswer:") and p.target


def test_child_records_its_parent_and_is_refused_when_the_base_changes(base, tmp_path):
    parent = tmp_path / "base"
    shutil.copytree(base, parent)
    child = finetune(parent, "code", tmp_path / "child", steps=6, profile=SMOKE)
    cfg = check_lineage(child)
    assert cfg["parent"]["id"] == checkpoint_id(parent) and cfg["parent"]["method"] == "finetune"
    assert cfg["parent"]["task"] == "code" and cfg["parent"]["steps"] == 6
    assert cfg["step"] == 6 and load_checkpoint(child)[2]["arch"] == "aeron"
    tv = task_vector(child, parent)
    assert tv and any(v.abs().sum() > 0 for v in tv.values())
    with pytest.raises(NeuroError, match="is not a child of"):
        task_vector(child, child)  # a task vector against anything but the recorded parent is refused
    assert finetune(parent, "code", tmp_path / "child", steps=6, profile=SMOKE) == child  # finished: returned as it is

    model, tok, _ = load_checkpoint(parent)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_checkpoint(parent, model, tok)  # the base changes under its child
    with pytest.raises(NeuroError, match="has changed since"):
        check_lineage(child)
    with pytest.raises(NeuroError, match="has changed since"):
        finetune(child, "code", tmp_path / "grandchild", steps=2, profile=SMOKE)  # a stale child is no base either
    with pytest.raises(NeuroError, match="has changed since"):
        finetune(parent, "code", tmp_path / "child", steps=6, profile=SMOKE)  # its folder now holds a child of the old base


def test_lora_child_is_a_plain_checkpoint_with_the_adapter_beside(base, tmp_path):
    child = finetune(base, "chat", tmp_path / "lora", steps=5, profile=SMOKE, lora_rank=4)
    assert not (child / ADAPTER_RUN).exists() and (child / ADAPTER_FILE).is_file()
    model, _, cfg = load_checkpoint(child)  # an ordinary Aeron checkpoint: the deltas are merged
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert cfg["parent"]["method"] == "lora" and cfg["parent"]["rank"] == 4 and cfg["lora"]["rank"] == 4
    adapter = load_file(child / ADAPTER_FILE)
    assert adapter and all(k.endswith(("lora_A", "lora_B")) for k in adapter)
    base_model, _, _ = load_checkpoint(base)
    moved = {k for k, v in task_vector(child, base).items() if v.abs().sum() > 0}
    assert moved and all(k.endswith(("proj.weight", "gate.weight", "up.weight", "down.weight")) for k in moved)


def test_interrupted_lora_finetune_resumes_to_the_unbroken_child(base, tmp_path):
    class Boom(Exception):
        pass

    def stop_at_10(rec):
        if rec.get("step") == 10 and rec.get("kind") == "train":
            raise Boom

    unbroken = finetune(base, "chat", tmp_path / "a", steps=12, profile=SMOKE, lora_rank=2)
    with pytest.raises(Boom):
        finetune(base, "chat", tmp_path / "b", steps=12, profile=SMOKE, lora_rank=2, callback=stop_at_10)
    assert (tmp_path / "b" / ADAPTER_RUN).is_dir() and not (tmp_path / "b" / "checkpoint.json").exists()
    resumed = finetune(base, "chat", tmp_path / "b", steps=12, profile=SMOKE, lora_rank=2)
    a, b = load_checkpoint(unbroken)[0].state_dict(), load_checkpoint(resumed)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_file(unbroken / ADAPTER_FILE).keys() == load_file(resumed / ADAPTER_FILE).keys()


def _run_cli(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own refusals (a negative --lora-rank)
        rc = e.code
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("case", ["unknown task", "missing base", "out holds another run", "other tokenizer",
                                  "not a family base", "negative rank"])
def test_bad_input_is_one_sentence_exit_2_and_nothing_changes(case, base, tmp_path, capsys):
    work = tmp_path / "work"
    shutil.copytree(base, work / "base")
    argv = ["finetune", str(work / "base"), "--task", "chat", "--out", str(work / "out"), "--steps", "2"]
    if case == "unknown task":
        argv[3] = "poetry"
    elif case == "missing base":
        argv[1] = str(work / "nowhere")
    elif case == "out holds another run":
        (work / "out").mkdir()
        (work / "out" / "notes.txt").write_text("mine")
    elif case == "other tokenizer":
        from neuro_lib.tokenizers import train_tokenizer
        tok = train_tokenizer("bpe:300", b"the quick brown fox jumps over the lazy dog " * 50)
        model = build_model("aeron", vocab_size=300, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=0,
                            n_decoder_layer=1, d_ff=64, block_size=64, mode="decoder")
        save_checkpoint(work / "bpe", model, tok)
        argv[1] = str(work / "bpe")
    elif case == "not a family base":
        model = build_model("gpt", vocab_size=256, d_model=32, n_layer=1, n_head=4, d_ff=64, block_size=32)
        save_checkpoint(work / "gpt", model, ByteTokenizer())
        argv[1] = str(work / "gpt")
    elif case == "negative rank":
        argv += ["--lora-rank", "-1"]
    before = _tree(work)
    rc, err = _run_cli(argv, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("neuro: error: "), err
    assert _tree(work) == before


def test_another_run_in_out_is_refused(base, tmp_path):
    out = tmp_path / "out"
    finetune(base, "chat", out, steps=3, profile=SMOKE)
    before = _tree(out)
    for kwargs in (dict(task="code"), dict(task="chat", lora_rank=2), dict(task="chat", seed=1)):
        task = kwargs.pop("task")
        with pytest.raises(NeuroError, match="holds another run"):
            finetune(base, task, out, steps=3, profile=SMOKE, **kwargs)
    assert _tree(out) == before


# -- LoRA --------------------------------------------------------------------------------------------------------------
def _tiny_aeron():
    torch.manual_seed(0)
    return build_model("aeron", vocab_size=257, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=0,
                       n_decoder_layer=2, d_ff=64, block_size=32, mode="decoder").eval()


def test_lora_at_init_equals_the_base_exactly():
    model = _tiny_aeron()
    x = torch.randint(0, 257, (2, 16))
    want = model(x)
    n = apply_lora(model, rank=4)
    assert n == 2 * 6  # q, kv, out projections and the three SwiGLU linears per block
    assert torch.equal(model(x), want)


def test_merged_lora_equals_unmerged_and_only_a_b_train():
    model = _tiny_aeron()
    apply_lora(model, rank=4, alpha=8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0, 0.1)  # B = 0 at init would make the check trivial
    x = torch.randint(0, 257, (2, 16))
    logits = model(x)
    logits.float().pow(2).mean().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable == with_grad and trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert set(lora_state(model)) == trainable
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(model(x), logits, atol=1e-6, rtol=0)


def test_lora_matches_peft_tensors():
    """Same base weights, same A and B as peft 0.21.2 (r=4, alpha=8): same output and merged weights."""
    if not PEFT_FIXTURE.is_file():
        pytest.skip("data/fixtures/lora_peft.safetensors is absent")
    t = load_file(PEFT_FIXTURE)

    class Block(nn.Module):  # the module data/fixtures/make_lora_peft.py wrapped with peft
        def __init__(self):
            super().__init__()
            self.q_proj, self.up, self.down = nn.Linear(12, 12, bias=False), nn.Linear(12, 20), nn.Linear(20, 12, bias=False)

        def forward(self, x):
            return self.down(torch.relu(self.up(self.q_proj(x))))

    m = Block()
    m.load_state_dict({k[len("base."):]: v for k, v in t.items() if k.startswith("base.")})
    apply_lora(m, rank=4, alpha=8, targets=("q_proj", "up", "down"))
    with torch.no_grad():
        for name in ("q_proj", "up", "down"):
            getattr(m, name).lora_A.copy_(t[f"{name}.A"])
            getattr(m, name).lora_B.copy_(t[f"{name}.B"])
    assert torch.allclose(m(t["x"]), t["y"], atol=1e-6, rtol=0)
    merge_lora(m)
    for k, v in m.state_dict().items():
        assert torch.allclose(v, t[f"merged.{k}"], atol=1e-6, rtol=0), k


def test_lora_a_init_has_peft_scale():
    """A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a=sqrt(5), peft's default); B starts at zero."""
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(256, 64), rank=64)
    bound = 1 / 256 ** 0.5
    assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.9 * bound
    assert layer.lora_A.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)
    assert torch.count_nonzero(layer.lora_B) == 0


# -- the bench suite ---------------------------------------------------------------------------------------------------
def _bench_args(argv):
    import argparse

    from neuro_lib.bench import SUITES
    p = argparse.ArgumentParser()
    SUITES["family"].add_arguments(p)
    return p.parse_args(argv)


@pytest.mark.slow
def test_bench_family_runs_base_and_scratch_arms(tmp_path, monkeypatch):
    from neuro_lib.bench import family as bench
    monkeypatch.setattr(pretrain_mod, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(bench, "CACHE_DIR", tmp_path)
    with pytest.raises(NeuroError, match="unknown task 'poetry'"):
        bench.run(_bench_args(["--tasks", "poetry"]))
    report = bench.run(_bench_args(["--tasks", "chat", "--n", "2", "--finetune-steps", "3"]))
    names = {r["name"]: r["value"] for r in report["results"]}
    assert {"chat base seed 0", "chat scratch seed 0", "chat base - scratch"} <= set(names)
    assert all(0 <= names[f"chat {arm} seed 0"] <= 1 for arm in ("base", "scratch"))
    assert report["config"]["base_id"] == checkpoint_id(report["config"]["base"])
    scratch = read_config(report["config"]["arms"]["scratch"])
    assert scratch["step"] == 0 and scratch["model"] == read_config(report["config"]["base"])["model"]
