"""The reward model: the policy's backbone with a scalar head, trained on preference pairs (Bradley-Terry).

The head reads the backbone's last hidden state (the input of its LM head, taken with a forward hook, so
any neuro_lib model serves) at the last completion token. Training runs on the crash-safe Trainer: the
backbone is the run's checkpoint, the head rides in the train state as `aux` (verified by its hash like
every checkpoint file), and config.json records the policy it started from (`parent`, checkpoint.lineage).

    res = train_reward_model("runs/sft", pairs, val_pairs, out_dir="runs/rm", steps=200, margin=None, center_coef=0.01)
    rm = load_reward_model("runs/rm"); rm.score(["the soup was"], [" great.\\n"])      # (B,) tensor
    pairwise_accuracy(rm, val_pairs)                                                 # held-out accuracy

Tests: tests/test_rlhf.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from neuro_lib.checkpoint import lineage, load_checkpoint, load_train_state
from neuro_lib.errors import NeuroError
from neuro_lib.rlhf.batch import Pair, collate, pair_batch
from neuro_lib.rlhf.losses import bradley_terry_loss
from neuro_lib.train.trainer import TrainConfig, Trainer


def forward_with_hidden(model, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens (B, T) -> (logits (B, T, V), the final hidden states (B, T, C) that the model's LM head reads)."""
    seen = {}
    handle = model.lm_head.register_forward_hook(lambda mod, args, out: seen.__setitem__("h", args[0]))
    try:
        logits = model(tokens)
    finally:
        handle.remove()
    return logits, seen["h"]


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) completion mask -> (B,) index of each row's last completion token."""
    T = mask.shape[1]
    return (mask * torch.arange(T, device=mask.device)).argmax(1)


class ScalarHead(nn.Module):
    """hidden (B, T, C) -> one number per position (B, T); a reward head or a value head."""

    def __init__(self, d_model: int):
        super().__init__()
        self.proj = nn.Linear(d_model, 1)
        nn.init.normal_(self.proj.weight, std=1 / (d_model + 1) ** 0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h):
        return self.proj(h.float()).squeeze(-1)


def sequence_rewards(model, head: ScalarHead, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The head at each row's last completion token -> (B,)."""
    values = head(forward_with_hidden(model, tokens)[1])  # (B, T)
    return values.gather(1, last_index(mask)[:, None]).squeeze(1)


@dataclass
class RewardModel:
    model: nn.Module
    head: ScalarHead
    tokenizer: object
    config: dict

    @torch.no_grad()
    def score(self, prompts: list, completions: list) -> torch.Tensor:
        """Rewards (B,) of completions (text or ids) after their prompts."""
        enc = (lambda x: list(x) if isinstance(x, list) else self.tokenizer.encode(x))
        batch = collate([(enc(p), enc(c) or [0]) for p, c in zip(prompts, completions)])
        self.model.eval()
        return sequence_rewards(self.model, self.head, batch["tokens"], batch["completion_mask"])


def load_reward_model(path) -> RewardModel:
    model, tok, cfg = load_checkpoint(path)
    state = load_train_state(path)
    if state is None or "aux" not in state or cfg.get("align", {}).get("method") != "reward_model":
        raise NeuroError(f"{path} is not a reward model (train one with `neuro align rm`)")
    head = ScalarHead(model.config.d_model)
    head.load_state_dict(state["aux"])
    return RewardModel(model.eval(), head.eval(), tok, cfg)


@torch.no_grad()
def pairwise_accuracy(rm: RewardModel, pairs: list[Pair]) -> float:
    """Fraction of pairs whose chosen completion the reward model scores strictly higher."""
    rc = rm.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    rr = rm.score([p.prompt for p in pairs], [p.rejected for p in pairs])
    return (rc > rr).float().mean().item()


@dataclass
class RewardResult:
    rm: RewardModel
    history: list
    val_accuracy: float


def train_reward_model(policy, pairs: list[Pair], val_pairs: list[Pair], out_dir=None, steps: int = 200,
                       batch_size: int = 16, lr: float = 1e-3, margin: float | None = None, center_coef: float = 0.0,
                       seed: int = 0, eval_every: int = 0, callback=None) -> RewardResult:
    """Train a reward model from the policy checkpoint `policy` (its backbone + a fresh scalar head).
    `margin` (a constant) asks the chosen reward to win by at least that much; `center_coef` adds
    center_coef * mean((r_c + r_r)^2)."""
    if not pairs:
        raise NeuroError("the reward model needs at least one preference pair")
    model, tok, _ = load_checkpoint(policy)
    torch.manual_seed(seed)
    head = ScalarHead(model.config.d_model)
    B = min(batch_size, len(pairs))
    config = TrainConfig(batch_size=B, block_size=model.max_len or 1, lr=lr, min_lr_ratio=1.0, warmup_steps=0,
                         weight_decay=0.0, max_steps=steps, eval_every=eval_every, log_every=10, seed=seed)

    def batches(step):
        idx = np.random.default_rng([seed, step]).choice(len(pairs), B, replace=False)
        batch = pair_batch(tok, [pairs[i] for i in idx])
        if margin is not None:
            batch["margin"] = torch.full((B,), float(margin))
        return batch

    def backward(m, batch):
        r = sequence_rewards(m, head, batch["tokens"], batch["completion_mask"])  # (2B,)
        rc, rr = r.chunk(2)
        loss = bradley_terry_loss(rc, rr, batch.get("margin"), center_coef)
        loss.backward()
        return loss.detach(), {"accuracy": (rc > rr).float().mean().item(), "reward_mean": r.mean().item()}

    def evaluate(m):
        acc = pairwise_accuracy(RewardModel(m, head, tok, {}), val_pairs) if val_pairs else float("nan")
        m.train()
        return {"val_accuracy": acc}

    extra = {"align": {"method": "reward_model", "margin": margin, "center_coef": center_coef, "n_pairs": len(pairs)}}
    if out_dir is not None:
        extra["parent"] = lineage(policy, "reward_model")
    trainer = Trainer(model, tok, config, batches, evaluate, out_dir=out_dir, extra_config=extra, backward=backward,
                      aux=head)
    history = trainer.fit(callback=callback)
    rm = RewardModel(model.eval(), head.eval(), tok, extra)
    vals = [r["val_accuracy"] for r in history if r.get("kind") == "val"]
    return RewardResult(rm, history, vals[-1] if vals else pairwise_accuracy(rm, val_pairs))


def frozen_copy(model: nn.Module) -> nn.Module:
    """A copy that no optimiser can move: eval mode, no gradients (the reference policy)."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref
