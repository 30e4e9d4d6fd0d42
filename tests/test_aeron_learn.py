"""Aeron's learning modules: EWC and task embeddings, uncertainty (evidential, MC dropout, ensembles, ECE,
selective accuracy), BADGE, the vision path, their tasks and experiments (models/aeron/{continual,
uncertainty,badge,vision,classifier}.py, data/aeron_learn_tasks.py, bench/aeron_modules/)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.data.aeron_learn_tasks import (BOS, EOS, N_GROUPS, QUESTIONS, answer, batch_indices, digit_qa, digits,
                                              digits_split, majority_task, shifted)
from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.aeron.badge import gradient_embeddings, kmeans_pp, select
from neuro_lib.models.aeron.classifier import AeronClassifier, ClassifierConfig
from neuro_lib.models.aeron.continual import EWC, TaskEmbedding, fisher_diagonal
from neuro_lib.models.aeron.uncertainty import (EvidentialHead, ensemble_predict, evidential_loss,
                                                expected_calibration_error, kl_to_uniform_dirichlet,
                                                mc_dropout_predict, predictive_entropy, reliability_bins,
                                                selective_accuracy)
from neuro_lib.models.aeron.vision import MultimodalFusion, VisionAeron, VisionPatchEmbedding, sinusoidal_positions

torch.set_num_threads(1)


# -- continual learning --------------------------------------------------------------------------------------
def _linear_logits(model, batch):
    return model(batch["x"])


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_as_the_formula_says():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    ewc = EWC(dict(model.named_parameters()), fisher, lam=7.0)
    assert ewc.penalty(model).item() == 0.0
    delta = {n: 0.1 * torch.randn_like(p) for n, p in model.named_parameters()}
    with torch.no_grad():
        for n, p in model.named_parameters():
            p += delta[n]
    expected = 0.5 * 7.0 * sum((fisher[n] * delta[n] ** 2).sum() for n in fisher)
    torch.testing.assert_close(ewc.penalty(model), expected)


def test_ewc_penalty_gradient_matches_finite_differences():
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    ewc = EWC({n: p + 0.3 * torch.randn_like(p) for n, p in model.named_parameters()}, fisher, lam=3.0)
    names = [n for n, _ in model.named_parameters()]

    def penalty_of(*params):
        return 0.5 * ewc.lam * sum((ewc.fisher[n] * (p - ewc.anchors[n]) ** 2).sum() for n, p in zip(names, params))

    # the module's own penalty: its autograd gradient against central differences
    loss = ewc.penalty(model)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    eps = 1e-6
    for (n, p), g in zip(model.named_parameters(), grads):
        for i in range(p.numel()):
            with torch.no_grad():
                p.view(-1)[i] += eps
                up = ewc.penalty(model).item()
                p.view(-1)[i] -= 2 * eps
                down = ewc.penalty(model).item()
                p.view(-1)[i] += eps
            assert abs((up - down) / (2 * eps) - g.view(-1)[i].item()) < 1e-6
    assert torch.autograd.gradcheck(penalty_of, tuple(p.detach().clone().requires_grad_() for p in model.parameters()))


def test_fisher_equals_the_per_example_formula_of_a_softmax_regression():
    """For logits = W x + b, d log p_y / dW = (e_y - p) x^T and d/db = e_y - p: the Fisher is the mean of squares."""
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(10, 5), torch.randint(0, 3, (10,))
    fisher = fisher_diagonal(model, _linear_logits, [{"x": x[:6], "y": y[:6]}, {"x": x[6:], "y": y[6:]}], labels="gold")
    with torch.no_grad():
        r = F.one_hot(y, 3).float() - model(x).softmax(-1)  # (N, K)
    torch.testing.assert_close(fisher["weight"], ((r[:, :, None] * x[:, None, :]) ** 2).mean(0))
    torch.testing.assert_close(fisher["bias"], (r ** 2).mean(0))
    sampled = fisher_diagonal(model, _linear_logits, [{"x": x}], generator=torch.Generator().manual_seed(0))
    assert set(sampled) == {"weight", "bias"} and all((f >= 0).all() for f in sampled.values())
    with pytest.raises(ValueError, match="labels"):
        fisher_diagonal(model, _linear_logits, [{"x": x}], labels="both")


def test_ewc_from_task_anchors_the_current_weights():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    ewc = EWC.from_task(model, _linear_logits, [{"x": torch.randn(8, 4)}])
    assert ewc.penalty(model).item() == 0.0
    with pytest.raises(ValueError, match="lacks"):
        ewc.penalty(nn.Linear(4, 3, bias=False))


def test_task_embedding_shapes_start_at_zero_and_refuse_unknown_tasks():
    te = TaskEmbedding(3, 8)
    ids = torch.tensor([0, 2, 1])
    assert te(ids).shape == (3, 8)
    h = torch.randn(3, 5, 8)
    torch.testing.assert_close(te.condition(h, ids), h)  # zero-initialised: no change before training
    with torch.no_grad():
        te.emb.weight.copy_(torch.randn(3, 8))
    torch.testing.assert_close(te.condition(h, ids)[:, 2], h[:, 2] + te.emb.weight[ids])
    with pytest.raises(ValueError, match="task ids"):
        te(torch.tensor([3]))


# -- uncertainty -----------------------------------------------------------------------------------------------
def test_evidential_loss_equals_its_formula_on_fixed_tensors():
    alpha = torch.tensor([[2.0, 1.0, 1.0]])
    # y = 0: p = (1/2, 1/4, 1/4), S = 4; error 0.375 + variance (1/4 + 3/16 + 3/16) / 5 = 0.125; alpha~ = 1, KL 0
    torch.testing.assert_close(evidential_loss(alpha, torch.tensor([0])), torch.tensor(0.5))
    torch.testing.assert_close(evidential_loss(alpha, torch.tensor([0]), kl_weight=1.0), torch.tensor(0.5))
    # y = 1: error 0.875 + 0.125; alpha~ = (2, 1, 1), KL = log 3 - 5/6 (lgamma and digamma by hand)
    kl = math.log(3.0) - 5.0 / 6.0
    torch.testing.assert_close(evidential_loss(alpha, torch.tensor([1]), kl_weight=0.5), torch.tensor(1.0 + 0.5 * kl))
    # the KL against torch.distributions on random concentrations
    a = torch.rand(4, 5) * 3 + 0.5
    ref = torch.distributions.kl_divergence(torch.distributions.Dirichlet(a), torch.distributions.Dirichlet(torch.ones(4, 5)))
    torch.testing.assert_close(kl_to_uniform_dirichlet(a), ref)


def test_evidential_head_gives_concentrations_of_at_least_one():
    head = EvidentialHead(6, 4)
    alpha = head(torch.randn(5, 6) * 10)
    assert alpha.shape == (5, 4) and (alpha >= 1).all()
    torch.testing.assert_close(EvidentialHead.probs(alpha).sum(-1), torch.ones(5))
    assert ((EvidentialHead.vacuity(alpha) > 0) & (EvidentialHead.vacuity(alpha) <= 1)).all()
    torch.testing.assert_close(EvidentialHead.vacuity(torch.ones(1, 4)), torch.ones(1))


def _calibration_case():
    # confidences 0.95 (right), 0.75 (wrong), 0.65 (right), 0.55 (wrong), away from bin edges
    probs = torch.tensor([[0.95, 0.05], [0.75, 0.25], [0.35, 0.65], [0.45, 0.55]])
    return probs, torch.tensor([0, 1, 1, 1 - 1])


def test_ece_and_reliability_bins_equal_a_hand_count():
    probs, y = _calibration_case()
    # 10 bins: one example per bin -> mean |acc - conf| = (0.05 + 0.75 + 0.35 + 0.55) / 4
    assert expected_calibration_error(probs, y, 10) == pytest.approx(0.425, abs=1e-6)
    # 2 bins: all four in (0.5, 1]: confidence 0.725, accuracy 0.5
    assert expected_calibration_error(probs, y, 2) == pytest.approx(0.225, abs=1e-6)
    bins = reliability_bins(probs, y, 2)
    assert [b["count"] for b in bins] == [0, 4] and bins[0]["accuracy"] is None
    assert bins[1]["confidence"] == pytest.approx(0.725) and bins[1]["accuracy"] == 0.5
    one_hot = F.one_hot(torch.tensor([1, 0]), 2).float()
    assert expected_calibration_error(one_hot, torch.tensor([1, 0])) == 0.0  # sure and right: confidence 1.0 kept


def test_selective_accuracy_drops_the_least_certain_first():
    correct = torch.tensor([True, False, True, False, True])
    unc = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.3])
    sel = selective_accuracy(correct, unc, [0.0, 0.2, 0.4])
    assert sel == pytest.approx({0.0: 0.6, 0.2: 0.75, 0.4: 1.0})
    with pytest.raises(ValueError, match="abstain"):
        selective_accuracy(correct, unc, [1.0])


def test_predictive_entropy_bounds():
    torch.testing.assert_close(predictive_entropy(torch.full((2, 4), 0.25)), torch.full((2,), math.log(4)))
    assert predictive_entropy(torch.tensor([[1.0, 0.0, 0.0]])).item() == 0.0


def test_mc_dropout_samples_vary_and_the_mode_is_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    x = torch.randn(6, 4)
    model.eval()
    mean, samples = mc_dropout_predict(lambda: model(x).softmax(-1), model, n_samples=7)
    assert samples.shape == (7, 6, 3) and not any(m.training for m in model.modules())
    torch.testing.assert_close(mean, samples.mean(0))
    assert not torch.allclose(samples[0], samples[1])
    with pytest.raises(ValueError, match="dropout"):
        mc_dropout_predict(lambda: x, nn.Linear(4, 3))


def test_ensemble_mean_is_the_mean_of_members():
    torch.manual_seed(0)
    members = [nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    mean, all_ = ensemble_predict(lambda m: m(x).softmax(-1), members)
    with torch.no_grad():
        torch.testing.assert_close(mean, torch.stack([m(x).softmax(-1) for m in members]).mean(0))
    assert all_.shape == (3, 5, 3)


# -- BADGE -------------------------------------------------------------------------------------------------------
def test_gradient_embeddings_are_the_last_layer_gradient_at_the_predicted_label():
    torch.manual_seed(0)
    head = nn.Linear(6, 4)
    h = torch.randn(5, 6)
    logits = head(h)
    emb = gradient_embeddings(h, logits.detach())
    for i in range(5):
        yhat = logits[i].argmax()
        (g,) = torch.autograd.grad(F.cross_entropy(logits[i:i + 1], yhat[None]), head.weight, retain_graph=True)
        torch.testing.assert_close(emb[i], g.flatten())


def _naive_kmeans_pp(X, k, seed):
    """BADGE's seeding written out plainly: largest norm first, then D^2 sampling with the same uniform draws."""
    rs = np.random.RandomState(seed)
    picked = [max(range(len(X)), key=lambda i: sum(v * v for v in X[i]))]
    for _ in range(1, k):
        d2 = [0.0 if i in picked else min(sum((a - b) ** 2 for a, b in zip(X[i], X[j])) for j in picked)
              for i in range(len(X))]
        u = rs.uniform(size=1)[0] * sum(d2)
        acc = 0.0
        for i, d in enumerate(d2):
            acc += d
            if acc >= u:
                picked.append(i)
                break
    return picked


def test_badge_selection_matches_a_naive_reference_and_scikit_learn():
    from sklearn.cluster import kmeans_plusplus

    X = np.random.RandomState(3).randn(40, 5)
    for seed in range(4):
        assert kmeans_pp(X, 8, seed, first="max_norm") == _naive_kmeans_pp(X.tolist(), 8, seed)
        _, ref = kmeans_plusplus(X, 8, random_state=seed, n_local_trials=1)
        assert kmeans_pp(X, 8, seed, first="random") == ref.tolist()
    picks = kmeans_pp(np.ones((5, 2)), 5, 0)  # all identical: still 5 distinct rows
    assert sorted(picks) == list(range(5))
    with pytest.raises(ValueError, match="cannot pick"):
        kmeans_pp(X, 41)


def test_select_strategies():
    torch.manual_seed(0)
    h, logits = torch.randn(30, 4), torch.randn(30, 3)
    badge = select("badge", 6, seed=1, features=h, logits=logits)
    assert len(set(badge)) == 6 and badge == kmeans_pp(gradient_embeddings(h, logits), 6, 1)
    ent = select("entropy", 5, logits=logits)
    p = logits.softmax(-1)
    assert set(ent) == set(torch.topk(-(p * p.log()).sum(-1), 5).indices.tolist())
    rnd = select("random", 10, seed=2, n_pool=30)
    assert len(set(rnd)) == 10 and max(rnd) < 30
    with pytest.raises(ValueError, match="needs the pool"):
        select("badge", 3, logits=logits)
    with pytest.raises(ValueError, match="unknown selection"):
        select("coreset", 3, logits=logits)


# -- vision ------------------------------------------------------------------------------------------------------
def test_sinusoidal_positions_match_the_formula():
    pe = sinusoidal_positions(7, 6)
    for p in range(7):
        for i in range(3):
            angle = p / 10000 ** (2 * i / 6)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(3, 5)


def test_patch_embedding_projects_row_major_patches_and_adds_positions():
    torch.manual_seed(0)
    emb = VisionPatchEmbedding((8, 16), 4, 1, 12)
    images = torch.randn(2, 1, 8, 16)
    out = emb(images)
    assert out.shape == (2, 8, 12) and emb.n_patches == 8
    W, b = emb.proj.weight.view(12, -1), emb.proj.bias  # (C, ch*p*p)
    patch = images[:, :, 4:8, 8:12].reshape(2, -1)  # row 1, column 2 -> patch index 1 * 4 + 2 = 6
    torch.testing.assert_close(out[:, 6], patch @ W.T + b + sinusoidal_positions(8, 12)[6])
    with pytest.raises(ValueError, match="images must be"):
        emb(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="whole number"):
        VisionPatchEmbedding(10, 4, 1, 12)


def test_fusion_with_zero_or_no_patches_leaves_the_text_unchanged():
    torch.manual_seed(0)
    fusion = MultimodalFusion(16, 4, 2)
    text = torch.randn(2, 5, 16)
    torch.testing.assert_close(fusion(text, torch.zeros(2, 3, 16)), text)
    torch.testing.assert_close(fusion(text, torch.zeros(2, 0, 16)), text)
    out = fusion(text, torch.randn(2, 3, 16))
    assert out.shape == text.shape and not torch.allclose(out, text)


def _small_enc_dec():
    return AeronConfig(vocab_size=256, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=1, n_decoder_layer=1,
                       d_ff=64, block_size=64, mode="encoder-decoder")


def test_aeron_decode_of_encoded_embeddings_equals_forward():
    torch.manual_seed(0)
    model = Aeron(_small_enc_dec()).eval()
    src, tokens = torch.randint(0, 256, (2, 9)), torch.randint(0, 256, (2, 4))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    ref = model(tokens, src=src, src_mask=mask)
    torch.testing.assert_close(model.decode(tokens, model.encode_embeddings(model.tok_emb(src), mask), mask), ref)


def test_vision_aeron_shapes_and_without_an_image_is_its_text_model():
    torch.manual_seed(0)
    model = VisionAeron(_small_enc_dec(), image_size=(8, 16), patch_size=4).eval()
    src, tokens, images = torch.randint(0, 256, (3, 7)), torch.randint(0, 256, (3, 2)), torch.rand(3, 1, 8, 16)
    assert model(tokens, src, images).shape == (3, 2, 256)
    torch.testing.assert_close(model(tokens, src), model.aeron(tokens, src=src))
    assert not torch.allclose(model(tokens, src, images), model(tokens, src))
    with pytest.raises(ValueError, match="encoder-decoder"):
        VisionAeron(AeronConfig(vocab_size=256, d_model=32, n_head=4, n_kv_head=2, n_decoder_layer=1, d_ff=64,
                                block_size=64), 8, 4)


# -- the classifier and the tasks ------------------------------------------------------------------------------
def test_classifier_inputs_heads_and_task_ids():
    torch.manual_seed(0)
    tok = AeronClassifier(ClassifierConfig(n_classes=4, vocab_size=16, d_model=16, n_layer=1, d_ff=32, n_tasks=2))
    x = torch.randint(0, 16, (3, 10))
    assert tok(x, torch.tensor([0, 1, 0])).shape == (3, 4)
    with pytest.raises(ValueError, match="task_ids"):
        tok(x)
    img = AeronClassifier(ClassifierConfig(inputs="image", head="evidential", d_model=16, n_layer=1, d_ff=32)).eval()
    alpha = img(torch.rand(2, 1, 8, 8))
    assert alpha.shape == (2, 10) and (alpha >= 1).all()
    torch.testing.assert_close(img.probs(torch.rand(2, 1, 8, 8)).sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match="inputs"):
        ClassifierConfig(inputs="audio")


def test_majority_task_labels_are_the_unique_most_frequent_group():
    for task in ("A", "B"):
        x, y = majority_task(task, 50, seed=1, vocab=32, length=9)
        assert x.shape == (50, 9) and y.shape == (50,)
        lo, hi = (0, 16) if task == "A" else (16, 32)
        assert int(x.min()) >= lo and int(x.max()) < hi
        g = x % N_GROUPS if task == "A" else (x - 16) // 4
        counts = torch.stack([(g == k).sum(1) for k in range(N_GROUPS)], 1)
        assert (counts.argmax(1) == y).all() and ((counts == counts.max(1, keepdim=True).values).sum(1) == 1).all()
    assert torch.equal(majority_task("A", 5, 3)[0], majority_task("A", 5, 3)[0])


def test_digits_split_shift_and_questions():
    images, labels = digits()
    assert images.shape == (1797, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    tr, te = digits_split()
    assert len(set(tr.tolist()) & set(te.tolist())) == 0 and len(tr) + len(te) == 1797
    noisy = shifted(images[:10], 0.5, seed=0)
    assert 0 <= noisy.min() and noisy.max() <= 1 and not torch.equal(noisy, images[:10])
    qa = digit_qa(images[te], labels[te], 20, seed=4)
    assert qa["images"].shape == (20, 1, 8, 16) and qa["src"].shape[0] == 20
    for i in range(20):
        q = bytes(qa["src"][i][qa["src_mask"][i]].tolist()).decode()
        kind = next(k for k, v in QUESTIONS.items() if v == q)
        assert kind == qa["kind"][i]
        n = int(qa["loss_mask"][i].sum())
        assert bytes(qa["targets"][i, :n].tolist()).decode() == qa["answer"][i] + "\n"
        assert qa["tokens"][i, 0] == BOS and torch.equal(qa["tokens"][i, 1:n], qa["targets"][i, :n - 1])
    assert qa["targets"][0, int(qa["loss_mask"][0].sum()) - 1] == EOS
    assert answer("number", [3, 7]) == "37" and answer("left", [3, 7]) == "3" and answer("sum", [3, 7]) == "10"


def test_batch_indices_follow_the_rng():
    import random

    a, b = batch_indices(random.Random(3), 10, 4), batch_indices(random.Random(3), 10, 4)
    assert torch.equal(a, b) and a.shape == (4,) and int(a.max()) < 10
    assert batch_indices(random.Random(0), 3, 8).shape == (3,)  # never more than the examples


def test_the_learning_modules_plug_into_the_enhanced_pipeline():
    """AeronEnhanced takes the vision path, a task embedding and an evidential head; its vision path is
    VisionAeron's (fusion before the encoder), and an untrained (zero) task embedding changes nothing."""
    from neuro_lib.models.aeron.enhanced import AeronEnhanced

    torch.manual_seed(0)
    va = VisionAeron(_small_enc_dec(), image_size=(8, 16), patch_size=4).eval()
    model = AeronEnhanced(va.aeron, vision=va.patches, fusion=va.fusion, task_embedding=TaskEmbedding(2, 32),
                          uncertainty=EvidentialHead(32, 5)).eval()
    src, tokens, images = torch.randint(1, 256, (3, 7)), torch.randint(0, 256, (3, 2)), torch.rand(3, 1, 8, 16)
    with torch.no_grad():
        out = model(tokens, src, images=images, task_id=torch.tensor([0, 1, 0]))
        torch.testing.assert_close(out.logits, va(tokens, src, images))
    d = out.diagnostics
    assert d.vision_used and d.task_conditioned and d.uncertainty.shape == (3, 5) and (d.uncertainty >= 1).all()
