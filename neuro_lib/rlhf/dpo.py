"""Offline alignment on preference pairs: DPO (sigmoid / cDPO, IPO, hinge) and SFT on the chosen answers.

The policy starts as a copy of the reference (the fine-tuned model); the reference stays frozen. Its
log-probabilities of every pair are computed once before training (`precompute_ref=True`, the default:
the reference then leaves memory) or on every batch from a frozen copy. Log-probabilities are summed over
completion tokens only (IPO: averaged per token, as TRL does). A step's batch can be split into
`micro_batches` whose gradients accumulate to exactly the full batch's (each micro-batch's mean loss is
weighted by its share of the pairs). Runs on the crash-safe Trainer (resume, lock, seed); config.json
records the parent policy (checkpoint.lineage).

    res = train_dpo("runs/sft", pairs, out_dir="runs/dpo", beta=0.1, loss_type="sigmoid", steps=100)
    res = train_sft("runs/sft", pairs, out_dir="runs/sft-chosen", steps=100)

Tests: tests/test_rlhf.py (masks, the frozen reference, accumulation 1 x 8 == 4 x 2).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from neuro_lib.checkpoint import lineage, load_checkpoint
from neuro_lib.errors import NeuroError
from neuro_lib.rlhf.batch import Pair, collate, pair_batch, sequence_logprobs
from neuro_lib.rlhf.losses import DPO_LOSSES, dpo_loss, dpo_metrics
from neuro_lib.rlhf.reward import frozen_copy
from neuro_lib.train.trainer import TrainConfig, Trainer


def check_dpo_args(beta: float, loss_type: str, label_smoothing: float) -> None:
    if not beta > 0:
        raise NeuroError(f"beta must be positive, got {beta}")
    if loss_type not in DPO_LOSSES:
        raise NeuroError(f"loss type must be one of {DPO_LOSSES}, got {loss_type!r}")
    if not 0 <= label_smoothing < 0.5:
        raise NeuroError(f"label smoothing must be in [0, 0.5), got {label_smoothing}")
    if label_smoothing and loss_type != "sigmoid":
        raise NeuroError("label smoothing (cDPO) applies to the sigmoid loss only")


@torch.no_grad()
def reference_logprobs(ref, batch: dict, average: bool = False) -> torch.Tensor:
    """The frozen reference's sequence log-probabilities of a batch's rows -> (rows,)."""
    return sequence_logprobs(ref(batch["tokens"]), batch["tokens"], batch["completion_mask"], average)


def micro_split(batch: dict, n: int) -> list[tuple[dict, float]]:
    """A pair batch (chosen rows then rejected rows, and per-pair tensors) -> n micro-batches of whole pairs,
    each with its share of the pairs. Rows keep the batch's padding, so each row is scored the same."""
    B = batch["tokens"].shape[0] // 2
    if not 1 <= n <= B:
        raise ValueError(f"cannot split {B} pairs into {n} micro-batches")
    out = []
    for idx in np.array_split(np.arange(B), n):
        rows = torch.as_tensor(np.concatenate([idx, idx + B]))
        out.append(({k: v[rows] for k, v in batch.items()}, len(idx) / B))
    return out


def dpo_backward(policy, batch: dict, beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                 micro_batches: int = 1, ref=None):
    """Backpropagate the DPO loss of a pair batch (gradients accumulate over `micro_batches`) -> (loss, metrics).
    The reference log-probs are batch["ref_logps"] (rows,) or come from the frozen `ref`."""
    average = loss_type == "ipo"
    total, rewards = 0.0, []
    for mb, share in micro_split(batch, micro_batches):
        ref_logps = mb["ref_logps"] if "ref_logps" in mb else reference_logprobs(ref, mb, average)
        logps = sequence_logprobs(policy(mb["tokens"]), mb["tokens"], mb["completion_mask"], average)  # (2b,)
        pc, pr = logps.chunk(2)
        rc, rr = ref_logps.chunk(2)
        losses, cr, rj = dpo_loss(pc, pr, rc, rr, beta, loss_type, label_smoothing)
        (losses.mean() * share).backward()
        total += losses.mean().item() * share
        rewards.append((cr, rj))
    metrics = dpo_metrics(torch.cat([c for c, _ in rewards]), torch.cat([r for _, r in rewards]))
    return torch.tensor(total), metrics


def sft_backward(policy, batch: dict, micro_batches: int = 1):
    """Backpropagate the mean per-token negative log-likelihood of the chosen completions -> (loss, parts)."""
    B = batch["tokens"].shape[0]
    n_tok = batch["completion_mask"].sum()
    total = 0.0
    for idx in np.array_split(np.arange(B), micro_batches):
        tokens, mask = batch["tokens"][idx], batch["completion_mask"][idx]
        nll = -sequence_logprobs(policy(tokens), tokens, mask).sum() / n_tok  # this chunk's part of the mean
        nll.backward()
        total += nll.item()
    return torch.tensor(total), {"nll": total}


@dataclass
class OfflineResult:
    model: torch.nn.Module
    tokenizer: object
    history: list


def _train_offline(method: str, policy, pairs: list[Pair], out_dir, steps: int, batch_size: int, lr: float,
                   seed: int, settings: dict, backward_fn, evaluate=None, eval_every: int = 0, callback=None,
                   precompute_ref: bool = True, ref_holder: dict | None = None) -> OfflineResult:
    if not pairs:
        raise NeuroError(f"{method} needs at least one preference pair")
    model, tok, _ = load_checkpoint(policy)
    B = min(batch_size, len(pairs))
    config = TrainConfig(batch_size=B, block_size=model.max_len or 1, lr=lr, min_lr_ratio=1.0, warmup_steps=0,
                         weight_decay=0.0, max_steps=steps, eval_every=eval_every, log_every=10, seed=seed)
    ref = frozen_copy(model) if method != "sft" else None
    if ref_holder is not None:
        ref_holder["ref"] = ref
    average = settings.get("loss_type") == "ipo"
    ref_cache: dict[int, tuple[float, float]] = {}
    if ref is not None and precompute_ref:  # every pair's reference log-probs once, then drop the reference
        for start in range(0, len(pairs), 64):
            chunk = pairs[start:start + 64]
            lp = reference_logprobs(ref, pair_batch(tok, chunk), average)
            for i, (c, r) in enumerate(zip(*lp.chunk(2))):
                ref_cache[start + i] = (c.item(), r.item())
        if ref_holder is None:
            ref = None

    def batches(step):
        idx = np.random.default_rng([seed, step]).choice(len(pairs), B, replace=False)
        if method == "sft":
            return collate([(tok.encode(pairs[i].prompt), tok.encode(pairs[i].chosen)) for i in idx])
        batch = pair_batch(tok, [pairs[i] for i in idx])
        if ref_cache:
            batch["ref_logps"] = torch.tensor([ref_cache[i][0] for i in idx] + [ref_cache[i][1] for i in idx])
        return batch

    def backward(m, batch):
        return backward_fn(m, batch, ref)

    def evaluate_fn(m):
        out = evaluate(m) if evaluate else {}
        m.train()
        return out

    extra = {"align": {"method": method, **settings, "n_pairs": len(pairs)}}
    if out_dir is not None:
        extra["parent"] = lineage(policy, method, **settings)
    trainer = Trainer(model, tok, config, batches, evaluate_fn if evaluate else None, out_dir=out_dir,
                      extra_config=extra, backward=backward)
    history = trainer.fit(callback=callback)
    return OfflineResult(model.eval(), tok, history)


def train_dpo(policy, pairs: list[Pair], out_dir=None, beta: float = 0.1, loss_type: str = "sigmoid",
              label_smoothing: float = 0.0, steps: int = 100, batch_size: int = 16, lr: float = 5e-4,
              micro_batches: int = 1, precompute_ref: bool = True, seed: int = 0, evaluate=None, eval_every: int = 0,
              callback=None, ref_holder: dict | None = None) -> OfflineResult:
    """DPO from the policy checkpoint `policy` (also the reference). `ref_holder` (a dict) receives the frozen
    reference model, kept alive, so a caller can check it did not move."""
    check_dpo_args(beta, loss_type, label_smoothing)
    settings = {"beta": beta, "loss_type": loss_type, "label_smoothing": label_smoothing}
    fn = (lambda m, batch, ref: dpo_backward(m, batch, beta, loss_type, label_smoothing, micro_batches, ref))
    return _train_offline("dpo", policy, pairs, out_dir, steps, batch_size, lr, seed, settings, fn, evaluate,
                          eval_every, callback, precompute_ref, ref_holder)


def train_sft(policy, pairs: list[Pair], out_dir=None, steps: int = 100, batch_size: int = 16, lr: float = 5e-4,
              micro_batches: int = 1, seed: int = 0, evaluate=None, eval_every: int = 0,
              callback=None) -> OfflineResult:
    """Supervised fine-tuning of `policy` on the chosen completions (the rejected ones are ignored)."""
    fn = (lambda m, batch, ref: sft_backward(m, batch, micro_batches))
    return _train_offline("sft", policy, pairs, out_dir, steps, batch_size, lr, seed, {}, fn, evaluate, eval_every,
                          callback)


def snapshot(model) -> dict:
    """A copy of a model's weights (to check a frozen model did not move)."""
    return copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
