"""Issue 26's second looks at the reasoning engine, episodic memory and the evidential head: the curricula,
the forced-open gate, the retrieval loss, the annealed KL term and the AUROC of uncertainty (smoke-sized)."""
from __future__ import annotations

import math
import random

import pytest
import torch

from neuro_lib.profiles import get_profile

from neuro_lib.bench.aeron_modules import episodic, uncertainty
from neuro_lib.bench.aeron_modules.common import train
from neuro_lib.data import aeron_tasks as T
from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.aeron.enhanced import AeronEnhanced, EnhancedConfig
from neuro_lib.models.aeron.episodic import EpisodicConfig
from neuro_lib.models.aeron.reasoning import ReasoningConfig, ReasoningEngine
from neuro_lib.models.aeron.uncertainty import annealed_kl_weight, evidential_loss, kl_to_uniform_dirichlet

torch.set_num_threads(1)


# -- the evidential head's published schedule -------------------------------------------------------
def test_annealed_kl_weight_is_min_one_epoch_over_ten():
    # 31 steps an epoch: epoch t = step // 31, lambda = min(1, t / 10)
    assert [annealed_kl_weight(s, 31) for s in (0, 30, 31, 62, 309, 310, 5000)] == [0.0, 0.0, 0.1, 0.2, 0.9, 1.0, 1.0]
    assert annealed_kl_weight(7, 1, anneal_epochs=4) == 1.0
    with pytest.raises(ValueError):
        annealed_kl_weight(0, 0)


def test_kl_term_and_losses_against_hand_computed_values():
    # KL(Dir(1, 2) || Dir(1, 1)) is KL(Beta(2, 1)... in p_2) = int 2p log 2p dp = log 2 - 1/2
    alpha = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(kl_to_uniform_dirichlet(alpha), torch.tensor([math.log(2) - 0.5]))
    y = torch.tensor([0])  # alpha~ = y + (1 - y) alpha = (1, 2): the misleading evidence is all of alpha_2
    w = annealed_kl_weight(62, 31)  # 0.2
    kl = 0.2 * (math.log(2) - 0.5)
    # digamma(3) - digamma(1) = 1 + 1/2; log 3 - log 1; MSE: p = (1/3, 2/3), (2/3)^2 + (2/3)^2 + 2 * (2/9) / 4
    torch.testing.assert_close(evidential_loss(alpha, y, w, kind="digamma"), torch.tensor(1.5 + kl))
    torch.testing.assert_close(evidential_loss(alpha, y, w, kind="log"), torch.tensor(math.log(3) + kl))
    torch.testing.assert_close(evidential_loss(alpha, y, w, kind="mse"), torch.tensor(8 / 9 + 1 / 9 + kl))
    with pytest.raises(ValueError, match="kind"):
        evidential_loss(alpha, y, kind="hinge")


def test_auroc_of_uncertainty_for_misclassification():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    s = get_profile("smoke").tasks.aeron_modules.uncertainty   # n_bins 10
    # wrong where y = 1: rows 2 and 3 are the least confident -> perfect ranking; reversed -> 0
    assert uncertainty.scores(probs, torch.tensor([0, 0, 1, 1]), s, with_bins=False)["auroc"] == 1.0
    assert uncertainty.scores(probs, torch.tensor([1, 1, 0, 0]), s, with_bins=False)["auroc"] == 0.0
    assert uncertainty.scores(probs, torch.tensor([0, 0, 0, 0]), s, with_bins=False)["auroc"] == 0.5


# -- curricula ---------------------------------------------------------------------------------------
def test_depth_curriculum_schedule():
    assert [T.depth_cap(f, 4, 0.5) for f in (0.0, 0.12, 0.125, 0.3, 0.375, 0.5, 0.99)] == [1, 1, 2, 3, 4, 4, 4]
    assert T.depth_cap(0.0, 4, 0.0) == 4
    with pytest.raises(ValueError):
        T.depth_cap(0.1, 4, 1.5)


def test_facts_curriculum_schedule_and_asked_index():
    assert [T.facts_cap(f, 8, 2, 0.5) for f in (0.0, 0.07, 0.08, 0.25, 0.43, 0.5, 0.9)] == [2, 2, 3, 5, 8, 8, 8]
    assert T.facts_cap(0.0, 8, 2, 0.0) == 8
    b = T.facts_batch(random.Random(0), 16, n_facts=5, window=0)
    asked = b["facts"][torch.arange(16), b["asked"]]                        # (B, 4) the fact asked for
    assert torch.equal(asked[:, :2], b["src"][:, :2]) and torch.equal(asked[:, 3], b["targets"][:, 0])


def test_train_hands_the_budget_share_to_a_curriculum():
    seen = []
    model = torch.nn.Linear(2, 1)

    def batches(rng, frac):
        seen.append(frac)
        return torch.ones(1, 2)
    log = train(model, batches, lambda x: model(x).sum(), 0, 4, None, 1e-3, 1, "t", curriculum=True)
    assert seen == [0.0, 0.25, 0.5, 0.75] and log["steps"] == 4


# -- the forced-open gate ----------------------------------------------------------------------------
def test_gate_forced_open_runs_every_row_unscaled():
    torch.manual_seed(0)
    learned = ReasoningEngine(ReasoningConfig(d_model=32, n_slots=4))
    torch.nn.init.constant_(learned.gate.net[-1].bias, -3.0)                # a closed gate: score ~ 0.05 < 0.3
    opened = ReasoningEngine(ReasoningConfig(d_model=32, n_slots=4, gate="open"))
    opened.load_state_dict(learned.state_dict())
    h = torch.randn(3, 5, 32)
    out_l, d_l = learned(h)
    out_o, d_o = opened(h)
    assert d_l.skipped.all() and learned.rows_processed == 0 and torch.equal(out_l, h)
    assert not d_o.skipped.any() and opened.rows_processed == 3
    assert (d_o.gate_scores < 0.3).all()                                   # the score is still reported
    # unscaled: the open engine's change is the learned one's at threshold 0 divided by its score
    out_0, d_0 = learned(h, threshold=0.0)
    torch.testing.assert_close(out_0 - h, (out_o - h) * d_0.gate_scores[:, None, None], rtol=1e-4, atol=1e-6)
    assert (out_o - h).abs().max() > 1e-3
    with pytest.raises(ValueError, match="gate"):
        ReasoningConfig(d_model=32, gate="shut")


# -- the retrieval loss ------------------------------------------------------------------------------
def test_retrieval_logits_and_loss():
    torch.manual_seed(0)
    backbone = Aeron(AeronConfig(vocab_size=T.VOCAB, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=1,
                                 n_decoder_layer=1, d_ff=64, block_size=64, mode="encoder-decoder"))
    model = AeronEnhanced(backbone, EnhancedConfig(episodic=EpisodicConfig(d_model=32, n_slots=8)))
    b = T.facts_batch(random.Random(1), 4, n_facts=3, window=0)
    logits, r_logits, target = episodic.answer(model, b)
    assert r_logits.shape == (4, 8) and (r_logits[:, 3:] == -1e4).all()   # 3 facts written, 5 slots empty
    assert torch.equal(target, b["asked"])                                  # written in order to slots 0, 1, 2
    m = model.memory
    # the logits are scale * cosine(query, key): the read's query against the first written key by hand
    out = model(b["tokens"], b["src"], b["src_mask"])
    q = out.diagnostics.memory.query
    hand = torch.nn.functional.cosine_similarity(q, m.keys[:, 0], dim=-1) * m.log_scale.exp()
    torch.testing.assert_close(m.retrieval_logits(q)[:, 0], hand)
    # retrieval weight 0 is the answer loss alone; a positive weight adds the cross-entropy, which has gradient
    lm = episodic.loss(model, b, 0.0)
    both = episodic.loss(model, b, 1.0)
    ce = torch.nn.functional.cross_entropy(r_logits, target)
    torch.testing.assert_close(both - lm, ce, rtol=1e-4, atol=1e-5)
    both.backward()
    assert m.key_proj.weight.grad.abs().sum() > 0
