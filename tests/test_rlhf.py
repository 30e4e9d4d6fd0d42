"""rlhf/: every loss against its formula worked by hand (published defaults named), TRL's tensors, masks,
the frozen reference, gradient accumulation, the trainers end to end and `neuro align`'s refusals."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from neuro_lib.checkpoint import check_lineage, checkpoint_id, read_config, save_checkpoint
from neuro_lib.data.reviews import review_lines, split_review, true_reward
from neuro_lib.models import build_model
from neuro_lib.rlhf.batch import Pair, collate, load_pairs, pair_batch, save_pairs, sequence_logprobs
from neuro_lib.rlhf.dpo import dpo_backward, reference_logprobs, sft_backward, snapshot, train_dpo
from neuro_lib.rlhf.losses import (bradley_terry_loss, dpo_loss, gae, kl_penalty, masked_whiten, ppo_policy_loss,
                                   ppo_rewards, ppo_value_loss, rloo_advantages)
from neuro_lib.rlhf.online import train_ppo, train_rloo
from neuro_lib.rlhf.reward import frozen_copy, load_reward_model, train_reward_model
from neuro_lib.tokenizers.byte import ByteTokenizer

# the published defaults the hand-worked cases use
DPO_BETA = 0.1          # Rafailov et al. 2023
PPO_CLIP = 0.2          # Schulman et al. 2017
GAMMA, LAM = 1.0, 0.95  # Ouyang et al. 2022; TRL's PPO
KL_COEF = 0.05          # TRL's PPO
TRL = json.loads((Path(__file__).parent / "data" / "trl_expected.json").read_text())
TOK = ByteTokenizer()


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol)


def softplus(x):  # -log sigmoid(-x) = log(1 + e^x)
    return math.log1p(math.exp(x))


# -- losses, by hand ----------------------------------------------------------------------------------------
def test_bradley_terry_by_hand_with_margin_and_centring():
    rc, rr = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    plain = (softplus(-1.0) + softplus(2.0)) / 2  # -log sigmoid(1), -log sigmoid(-2)
    assert close(bradley_terry_loss(rc, rr), plain)
    margin = torch.tensor([0.5, 0.5])
    assert close(bradley_terry_loss(rc, rr, margin), (softplus(-0.5) + softplus(2.5)) / 2)
    centred = plain + 0.01 * ((1 + 0) ** 2 + (0 + 2) ** 2) / 2
    assert close(bradley_terry_loss(rc, rr, center_coef=0.01), centred)


def test_dpo_losses_by_hand_at_beta_0_1():
    pc, pr, rc, rr = (torch.tensor([x]) for x in (-10.0, -12.0, -11.0, -11.0))  # h = (1) - (-1) = 2; beta h = 0.2
    losses, cr, rj = dpo_loss(pc, pr, rc, rr, DPO_BETA, "sigmoid")
    assert close(losses, [softplus(-0.2)]) and close(cr, [0.1]) and close(rj, [-0.1])
    cdpo = 0.9 * softplus(-0.2) + 0.1 * softplus(0.2)  # label smoothing 0.1: the label flipped with prob. 0.1
    assert close(dpo_loss(pc, pr, rc, rr, DPO_BETA, "sigmoid", 0.1)[0], [cdpo])
    assert close(dpo_loss(pc, pr, rc, rr, DPO_BETA, "ipo")[0], [(2 - 1 / (2 * 0.1)) ** 2])  # (2 - 5)^2 = 9
    assert close(dpo_loss(pc, pr, rc, rr, DPO_BETA, "hinge")[0], [0.8])  # max(0, 1 - 0.2)
    with pytest.raises(ValueError):
        dpo_loss(pc, pr, rc, rr, 0.0)


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0])  # log r = ref - logp = [-1, 1]
    assert close(kl_penalty(logp, ref, "k1"), [1.0, -1.0])
    assert close(kl_penalty(logp, ref, "k3"), [math.exp(-1) - 1 + 1, math.exp(1) - 1 - 1])
    assert (kl_penalty(torch.randn(100), torch.randn(100), "k3") >= 0).all()


def test_ppo_rewards_gae_and_whitening_by_hand():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    r = ppo_rewards(torch.tensor([3.0]), torch.tensor([[1.0, 1.0, 1.0, 9.0]]), mask, KL_COEF)
    assert close(r, [[-0.05, -0.05, 3 - 0.05, 0.0]])
    rewards = torch.tensor([[0.0, 0.0, 1.0, 7.0]])  # the padded 4th position must not count
    values = torch.tensor([[0.5, 0.5, 0.5, 3.0]])
    adv, ret = gae(rewards, values, mask, GAMMA, LAM)
    # delta_2 = 1 + 0 - 0.5 = 0.5; delta_1 = delta_0 = 0 + 0.5 - 0.5 = 0; A_t = delta_t + 0.95 A_{t+1}
    assert close(adv, [[0.95 * 0.475, 0.475, 0.5, 0.0]]) and close(ret, [[0.95125, 0.975, 1.0, 0.0]])
    w = masked_whiten(torch.tensor([[1.0, 2.0, 3.0, 100.0]]), mask)  # mean 2, unbiased variance 1
    assert close(w[:, :3], [[-1.0, 0.0, 1.0]], 1e-5)


def test_clipped_policy_and_value_losses_by_hand():
    old = torch.zeros(3)
    logp = torch.log(torch.tensor([1.5, 0.5, 0.5]))
    adv = torch.tensor([1.0, 1.0, -1.0])
    loss, clipfrac = ppo_policy_loss(logp, old, adv, torch.ones(3), PPO_CLIP)
    # max(-A r, -A clip(r, 0.8, 1.2)): max(-1.5, -1.2) = -1.2; max(-0.5, -0.8) = -0.5; max(0.5, 0.8) = 0.8
    assert close(loss, (-1.2 - 0.5 + 0.8) / 3) and close(clipfrac, 2 / 3)
    v = ppo_value_loss(torch.tensor([1.0, 0.1]), torch.zeros(2), torch.ones(2), torch.ones(2), PPO_CLIP)
    assert close(v, 0.5 * (max(0.0, (0.2 - 1) ** 2) + 0.9 ** 2) / 2)  # 0.5 * mean(0.64, 0.81)


def test_rloo_leave_one_out_by_hand():
    adv = rloo_advantages(torch.tensor([[1.0], [2.0], [6.0]]))  # baselines (2+6)/2, (1+6)/2, (1+2)/2
    assert close(adv, [[-3.0], [-1.5], [4.5]])


# -- TRL parity ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", TRL["dpo"], ids=lambda c: f"{c['loss_type']}-b{c['beta']}-ls{c['label_smoothing']}")
def test_dpo_matches_trl_0_28(case):
    """Tensors from TRL 0.28.0's DPOTrainer.dpo_loss (tests/data/gen_trl_expected.py). With label smoothing
    the sigmoid loss is cDPO, as in TRL 0.7.5 to 0.28.x; TRL >= 0.29 ignores label smoothing in `sigmoid`."""
    assert TRL["trl_version"] == "0.28.0"
    t = {k: torch.tensor(v) for k, v in TRL["inputs"].items()}
    losses, cr, rj = dpo_loss(t["pi_chosen"], t["pi_rejected"], t["ref_chosen"], t["ref_rejected"], case["beta"],
                              case["loss_type"], case["label_smoothing"])
    assert close(losses, case["losses"], 1e-5) and close(cr, case["chosen_rewards"]) and close(rj,
                                                                                            case["rejected_rewards"])


def test_whitening_matches_trl():
    w = TRL["whiten"]
    assert close(masked_whiten(torch.tensor(w["x"]), torch.tensor(w["mask"]).float()), w["out"], 1e-5)


# -- masks --------------------------------------------------------------------------------------------------
def tiny_policy(tmp_path, seed=0, name="sft"):
    torch.manual_seed(seed)
    m = build_model("gpt", vocab_size=256, d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=64, dropout=0.0)
    save_checkpoint(tmp_path / name, m, TOK)
    return tmp_path / name, m


PAIRS = [Pair("the soup was", " great.\n", " awful and cold.\n"), Pair("the view", " was lovely.\n", " bad.\n"),
         Pair("a", " good good.\n", " rude.\n"), Pair("the pasta was very", " fresh.\n", " stale, bland.\n")] * 2


def test_prompt_and_padding_never_count():
    batch = collate([([5, 6, 7], [8, 9]), ([5], [8, 9, 10, 11])])
    logits = torch.randn(2, batch["tokens"].shape[1], 256)
    base = sequence_logprobs(logits, batch["tokens"], batch["completion_mask"])
    junk = logits.clone()
    junk[0, :2] = 50 * torch.randn(2, 256)   # logits that predict prompt tokens 1..2 of row 0
    junk[0, 5:] = 50 * torch.randn(1, 256)   # past row 0's end (padding)
    assert torch.equal(sequence_logprobs(junk, batch["tokens"], batch["completion_mask"]), base)
    lp = torch.log_softmax(logits[0], -1)
    assert close(base[0], lp[2, 8] + lp[3, 9], 1e-5)  # only the completion tokens 8, 9 (predicted at 2 and 3)


def test_padded_batch_equals_the_pairs_unpadded(tmp_path):
    _, model = tiny_policy(tmp_path)
    ref = frozen_copy(model)
    batch = pair_batch(TOK, PAIRS[:4])
    with torch.no_grad():
        padded, *_ = dpo_loss(*sequence_logprobs(model(batch["tokens"]), batch["tokens"],
                                                 batch["completion_mask"]).chunk(2),
                              *reference_logprobs(ref, batch).chunk(2))
        alone = []
        for p in PAIRS[:4]:
            b = pair_batch(TOK, [p])  # no padding beyond the pair's own longer row
            alone.append(dpo_loss(*sequence_logprobs(model(b["tokens"]), b["tokens"], b["completion_mask"]).chunk(2),
                                  *reference_logprobs(ref, b).chunk(2))[0])
    assert close(padded, torch.cat(alone), 1e-5)


# -- accumulation and the frozen reference ------------------------------------------------------------------
def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_accumulation_1x8_equals_4x2(tmp_path, loss_type):
    _, model = tiny_policy(tmp_path)
    batch = pair_batch(TOK, PAIRS)  # 8 pairs
    batch["ref_logps"] = reference_logprobs(frozen_copy(model), batch, loss_type == "ipo") - 0.3
    updates = []
    for micro in (1, 4):
        m = frozen_copy(model).train()
        for p in m.parameters():
            p.requires_grad_(True)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        loss, metrics = dpo_backward(m, batch, DPO_BETA, loss_type, micro_batches=micro)
        g = grads(m)
        opt.step()
        updates.append((loss.item(), g, torch.cat([p.detach().flatten() for p in m.parameters()]), metrics))
    (l1, g1, w1, m1), (l4, g4, w4, m4) = updates
    assert abs(l1 - l4) < 1e-5 and close(g1, g4, 1e-5) and close(w1, w4, 1e-5) and g1.abs().max() > 0
    assert m1 == pytest.approx(m4, abs=1e-5)
    m = frozen_copy(model).train().requires_grad_(True)
    sft_backward(m, collate([(TOK.encode(p.prompt), TOK.encode(p.chosen)) for p in PAIRS]), 1)
    g_full = grads(m)
    m.zero_grad()
    sft_backward(m, collate([(TOK.encode(p.prompt), TOK.encode(p.chosen)) for p in PAIRS]), 4)
    assert close(g_full, grads(m), 1e-5)


def test_dpo_leaves_the_reference_unchanged_and_records_its_parent(tmp_path):
    path, _ = tiny_policy(tmp_path)
    parent_id = checkpoint_id(path)
    holder = {}
    res = train_dpo(path, PAIRS, tmp_path / "dpo", steps=6, batch_size=4, lr=1e-2, precompute_ref=False,
                    ref_holder=holder)
    before = snapshot(load_policy(path))
    ref = holder["ref"]
    assert all(torch.equal(before[k], v) for k, v in ref.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in res.model.state_dict().items())  # the policy moved
    cfg = check_lineage(tmp_path / "dpo")
    assert cfg["parent"]["id"] == parent_id and cfg["parent"]["method"] == "dpo" and cfg["parent"]["beta"] == 0.1
    metrics = [r for r in res.history if r.get("kind") == "train"][-1]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(metrics)
    assert checkpoint_id(path) == parent_id


def load_policy(path):
    from neuro_lib.checkpoint import load_checkpoint
    return load_checkpoint(path)[0]


def test_precomputed_reference_gives_the_same_run(tmp_path):
    path, _ = tiny_policy(tmp_path)
    a = train_dpo(path, PAIRS, steps=3, batch_size=4, precompute_ref=True)
    b = train_dpo(path, PAIRS, steps=3, batch_size=4, precompute_ref=False)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert close(v, w, 1e-5), k


# -- reward model, PPO, RLOO end to end ---------------------------------------------------------------------
def review_pairs(n, seed):
    lines = review_lines(2 * n, seed)
    out = []
    for a, b in zip(lines[::2], lines[1::2]):
        pa, ca = split_review(a)
        _, cb = split_review(b)
        if true_reward(ca) != true_reward(cb):
            hi, lo = (ca, cb) if true_reward(ca) > true_reward(cb) else (cb, ca)
            out.append(Pair(pa.decode(), hi.decode(), lo.decode()))
    return out


def test_review_task_true_reward():
    assert true_reward(b" great and the view was lovely.\n") == 2.0
    assert true_reward(b" rude, Cold and great.") == -1.0 and true_reward(b" plain.") == 0.0
    prompt, completion = split_review(b"the soup was cold but the staff were friendly.\n")
    assert prompt == b"the soup was" and completion == b" cold but the staff were friendly.\n"


@pytest.mark.slow
def test_reward_model_learns_and_ppo_rloo_keep_the_reference(tmp_path):
    torch.set_num_threads(1)
    path, _ = tiny_policy(tmp_path)
    pairs = review_pairs(200, 0)
    rm = train_reward_model(path, pairs[:-20], pairs[-20:], tmp_path / "rm", steps=60, batch_size=16, lr=3e-3)
    assert rm.val_accuracy >= 0.7  # lexicon sentiment is easy to read off a byte model's last hidden state
    loaded = load_reward_model(tmp_path / "rm")
    assert close(loaded.score(["the soup was"], [" great.\n"]), rm.rm.score(["the soup was"], [" great.\n"]), 1e-5)
    prompts = [b"the soup was", b"the view was"]
    before = snapshot(load_policy(path))
    for fn, kw in ((train_ppo, dict(steps=4, rollout_batch=4, minibatches=2, ppo_epochs=2)),
                   (train_rloo, dict(steps=2, prompts_per_step=2, k=2))):
        holder = {}
        res = fn(path, tmp_path / "rm", prompts, tmp_path / fn.__name__, max_new_tokens=8, ref_holder=holder, **kw)
        assert all(torch.equal(before[k], v) for k, v in holder["ref"].state_dict().items())
        cfg = check_lineage(tmp_path / fn.__name__)
        assert [r["role"] for r in cfg["parent"]] == ["policy", "reward_model"]
        assert cfg["parent"][1]["id"] == checkpoint_id(tmp_path / "rm")
        assert res.history[-1]["step"] == kw["steps"]


# -- the command line ---------------------------------------------------------------------------------------
def neuro(*args):
    from neuro_lib.cli import main
    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return e.code


def test_align_refuses_bad_input_in_one_sentence(tmp_path, capsys):
    path, _ = tiny_policy(tmp_path)
    prefs = tmp_path / "prefs.jsonl"
    save_pairs(PAIRS, prefs)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert neuro("align", "dpo", "--policy", path, "--prefs", empty, "--out", tmp_path / "x") == 2
    assert "holds no pairs" in capsys.readouterr().err
    assert neuro("align", "dpo", "--policy", path, "--prefs", prefs, "--beta", "0", "--out", tmp_path / "x") == 2
    assert "beta must be positive" in capsys.readouterr().err
    from neuro_lib.tokenizers import train_tokenizer
    other = train_tokenizer("word:64", b"the soup was great and the view was lovely " * 50)
    torch.manual_seed(0)
    m = build_model("gpt", vocab_size=other.vocab_size, d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=64)
    save_checkpoint(tmp_path / "rm_word", m, other)
    assert neuro("align", "rm", "--policy", tmp_path / "rm_word", "--prefs", prefs, "--steps", 2,
                 "--out", tmp_path / "rmw") == 0
    capsys.readouterr()
    assert neuro("align", "ppo", "--policy", path, "--reward", tmp_path / "rmw", "--out", tmp_path / "p") == 2
    err = capsys.readouterr().err
    assert "different tokenizers" in err or "must share one" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "p").exists()
    assert len(load_pairs(prefs)) == len(PAIRS)


def test_align_cli_runs_and_resumes(tmp_path, capsys):
    path, _ = tiny_policy(tmp_path)
    prefs = tmp_path / "prefs.jsonl"
    save_pairs(PAIRS, prefs)
    args = ("align", "dpo", "--policy", path, "--prefs", prefs, "--steps", 3, "--batch-size", 4, "--out",
            tmp_path / "d")
    assert neuro(*args) == 0
    first = read_config(tmp_path / "d")
    assert neuro(*args) == 0  # a finished run: nothing retrained, nothing rewritten
    assert read_config(tmp_path / "d")["folder"] == first["folder"] and first["align"]["beta"] == 0.1


def test_sampling_never_writes_an_id_the_tokenizer_cannot_decode():
    from neuro_lib.rlhf.online import sample
    torch.manual_seed(0)
    m = build_model("gpt", vocab_size=257, d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=64, dropout=0.0)
    with torch.no_grad():
        m.lm_head.weight[256] += 5.0  # the extra id (a family base's task marker) is the likeliest token
    rows = sample(m, TOK, ["the soup was"] * 4, 12, end_id=10, seed=0)
    assert all(max(c) < 256 for _, c, _ in rows)
    TOK.decode([t for _, c, _ in rows for t in c])
