"""Experiment: questions about small pictures, vision-fused Aeron against a text-only Aeron that cannot see them.

Pictures are two (`n_digits`) of scikit-learn's 8x8 digits side by side (8 x 16); the question is one of
"which number is shown?", "which digit is on the left?", "what is the sum of the digits?"
(data/aeron_learn_tasks.py `digit_qa`). Training pictures use the training split's digits, test pictures only
held-out digits. Two encoder-decoder Aerons of the same size, trained for the same steps on the same batches:
  vision     `VisionAeron` (models/aeron/vision.py): question embeddings fused with 2x2 patch embeddings
             (absolute sinusoidal positions) by cross-attention before the encoder (the "with" arm)
  text-only  the plain `Aeron` on the question alone (the "without" arm): it can learn the answers' prior
             and nothing more
Metric: exact match of the greedy-decoded answer (up to the end byte) on held-out pictures, overall and per
question kind.

    from neuro_lib.bench.aeron_modules import vision
    vision.run(seed=0, steps=600, sizes=get_profile("bench").tasks.aeron_modules)
"""
from __future__ import annotations

import torch

from neuro_lib.data.aeron_learn_tasks import BOS, EOS, QUESTIONS, digit_qa, digits, digits_split
from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.aeron.model import Aeron
from neuro_lib.models.aeron.vision import VisionAeron
from neuro_lib.models.base import masked_cross_entropy
from neuro_lib.bench.aeron_modules.common import params_of, train
from neuro_lib.profiles import AeronModulesSizes

NAME = "vision"
CLAIM = "Vision patch embedding + multimodal fusion lets Aeron answer questions about images (VisionPatchEmbedding, MultimodalFusion)"
METRIC = "exact_match"
HIGHER_IS_BETTER = True


def logits_of(model, tokens, qa: dict):
    """Decoder logits (B, T, V) for answer prefixes `tokens`; the vision model also gets the pictures."""
    if isinstance(model, VisionAeron):
        return model(tokens, qa["src"], qa["images"], qa["src_mask"])
    return model(tokens, src=qa["src"], src_mask=qa["src_mask"])


@torch.no_grad()
def greedy_answers(model, qa: dict, max_len: int = 4) -> list[str]:
    """Greedy decoding of every answer (recomputing the short prefix each step) -> texts up to the end byte."""
    model.eval()
    B = qa["src"].shape[0]
    tokens = torch.full((B, 1), BOS)
    for _ in range(max_len):
        nxt = logits_of(model, tokens, qa)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        tokens = torch.cat([tokens, nxt], 1)
    out = []
    for row in tokens[:, 1:].tolist():
        text = bytes(row[: row.index(EOS)] if EOS in row else row)
        out.append(text.decode("latin-1"))
    return out


def exact_match(model, qa: dict) -> dict:
    """Overall and per-kind exact match of greedy answers."""
    pred = greedy_answers(model, qa)
    ok = [p == a for p, a in zip(pred, qa["answer"])]
    out = {"exact_match": sum(ok) / len(ok)}
    for kind in QUESTIONS:
        sel = [o for o, k in zip(ok, qa["kind"]) if k == kind]
        out[f"em_{kind}"] = sum(sel) / len(sel) if sel else float("nan")
    return out


def run(seed: int, steps: int, seconds: float | None = None, *, sizes: AeronModulesSizes) -> dict:
    s = sizes.vision
    images, labels = digits()
    tr, te = digits_split()
    test = digit_qa(images[te], labels[te], s.n_eval, seed=10_000 + seed, n_digits=s.n_digits)
    cfg = AeronConfig(vocab_size=256, mode="encoder-decoder", **s.model)
    arms, curves = {}, {}
    for name in ("vision", "text-only"):
        torch.manual_seed(seed)
        model = (VisionAeron(cfg, image_size=(8, 8 * s.n_digits), patch_size=s.patch_size) if name == "vision"
                 else Aeron(cfg))

        def batches(rng):
            return digit_qa(images[tr], labels[tr], s.batch_size, seed=rng.randrange(2**31), n_digits=s.n_digits)

        def loss(qa, model=model):
            return masked_cross_entropy(logits_of(model, qa["tokens"], qa), qa["targets"], qa["loss_mask"])

        rec = train(model, batches, loss, seed, steps, seconds, s.lr, s.warmup, f"vision {name}")
        arms[name] = {**exact_match(model, test), "params": params_of(model), "train_s": rec["train_s"],
                      "steps": rec["steps"]}
        curves[name] = rec["curve"]
    examples = [{"question": QUESTIONS[k], "answer": a} for k, a in zip(test["kind"][:6], test["answer"][:6])]
    return {"with": arms["vision"], "without": arms["text-only"],
            "extra": {"arms": arms, "curves": curves, "examples": examples, "n_eval": s.n_eval}}
