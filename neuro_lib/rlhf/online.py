"""Online alignment against a reward model: PPO (value head, GAE) and RLOO (leave-one-out, no value net).

Rollouts are sampled by the decoding engine (infer/engine.py: temperature 1, the end token as `eos_id`);
a completion that reaches `max_new_tokens` without the end token loses `missing_eos_penalty` from its
score. Both methods run on the crash-safe Trainer, one Trainer step per optimiser step:

- PPO (Schulman et al. 2017; the RLHF recipe of Ziegler et al. 2019 / Ouyang et al. 2022): every
  `ppo_epochs * minibatches` steps a new rollout batch is sampled and scored; per-token rewards are
  -kl_coef * KL (k1 or k3) against the frozen reference plus the score at the last token; GAE
  (gamma 1, lambda 0.95) with the value head on the policy's backbone; whitened advantages; clipped
  policy and value losses over several epochs of shuffled minibatches. The rollout buffer lives in the
  value head's module state (`get_extra_state`), so a run killed mid-buffer resumes from that buffer.
- RLOO (Ahmadian et al. 2024): k samples per prompt, reward = score - kl_coef * sequence KL (k1), advantage
  = reward minus the mean of the other k - 1 samples' rewards, one REINFORCE step per rollout.

config.json records both parents: the policy and the reward model (checkpoint.lineage).

    res = train_ppo("runs/sft", "runs/rm", prompts, out_dir="runs/ppo", steps=40, kl_coef=0.05)
    res = train_rloo("runs/sft", "runs/rm", prompts, out_dir="runs/rloo", steps=20, k=4)
    evaluate_policy(policy, ref, tok, prompts, rm, true_reward, ...)   # true reward, RM score, KL(policy || ref)

Tests: tests/test_rlhf.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from neuro_lib.checkpoint import lineage, load_checkpoint
from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.rlhf.batch import collate, sequence_logprobs, token_logprobs
from neuro_lib.rlhf.losses import (KL_ESTIMATORS, gae, kl_penalty, masked_mean, masked_whiten, ppo_policy_loss,
                                   ppo_rewards, ppo_value_loss, rloo_advantages)
from neuro_lib.rlhf.reward import RewardModel, ScalarHead, forward_with_hidden, frozen_copy, load_reward_model
from neuro_lib.train.trainer import TrainConfig, Trainer


def end_token(tokenizer, end: bytes = b"\n") -> int:
    ids = tokenizer.encode(end)
    if len(ids) != 1:
        raise NeuroError(f"the end text {end!r} is {len(ids)} tokens under {tokenizer.spec}; it must be one")
    return ids[0]


def text_only(tokenizer):
    """A logits processor that forbids ids the tokenizer cannot write as text: a family base has one more id
    than its byte tokenizer (the task marker, data/sft.py), which a review never contains."""
    def processor(ids, logits):
        if logits.shape[-1] <= tokenizer.vocab_size:
            return logits
        return torch.cat([logits[:tokenizer.vocab_size], torch.full_like(logits[tokenizer.vocab_size:], -torch.inf)])
    return processor


@torch.no_grad()
def sample(policy, tokenizer, prompts: list, max_new_tokens: int, end_id: int, seed: int,
           temperature: float = 1.0) -> list[tuple[list[int], list[int], bool]]:
    """(prompt ids, completion ids (with the end token if it came), ended) per prompt, sampled by the engine."""
    was_training = policy.training
    engine = Engine(policy, tokenizer)
    params = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, eos_id=end_id)
    out = [[] for _ in prompts]
    for tok in engine.stream(list(prompts), params, processor=text_only(tokenizer)):
        out[tok.row].append(tok.id)
    policy.train(was_training)
    rows = []
    for p, ids in zip(prompts, out):
        ended = len(ids) < max_new_tokens  # the engine drops the end token and stops the row
        rows.append((engine.encode(p), ids + [end_id] if ended else ids, ended))
    return rows


def check_pair(tokenizer, rm: RewardModel) -> None:
    if tokenizer.spec != rm.tokenizer.spec:
        raise NeuroError(f"the policy uses tokenizer {tokenizer.spec!r} but the reward model {rm.tokenizer.spec!r}; "
                         "they must share one")


@torch.no_grad()
def evaluate_policy(policy, ref, tokenizer, prompts: list, rm: RewardModel | None, true_reward, max_new_tokens: int,
                    end_id: int, seed: int = 0) -> dict:
    """Sample one completion per prompt -> mean true reward, reward-model score, KL(policy || ref) (the summed
    per-token log-ratio of the sampled completions, an unbiased estimate) and the fraction that ended."""
    rows = sample(policy, tokenizer, prompts, max_new_tokens, end_id, seed)
    batch = collate([(p, c or [end_id]) for p, c, _ in rows])
    was_training = policy.training
    policy.eval()
    lp = sequence_logprobs(policy(batch["tokens"]), batch["tokens"], batch["completion_mask"])
    policy.train(was_training)
    lr = sequence_logprobs(ref(batch["tokens"]), batch["tokens"], batch["completion_mask"])
    texts = [tokenizer.decode(c[:-1] if ended else c) for _, c, ended in rows]
    out = {"true_reward": float(np.mean([true_reward(t) for t in texts])), "kl": (lp - lr).mean().item(),
           "ended": float(np.mean([e for _, _, e in rows]))}
    if rm is not None:
        out["rm_score"] = rm.score([p for p, _, _ in rows], [c or [end_id] for _, c, _ in rows]).mean().item()
    return out


def scores(rm: RewardModel, rows, missing_eos_penalty: float) -> torch.Tensor:
    s = rm.score([p for p, _, _ in rows], [c or [0] for _, c, _ in rows])
    ended = torch.tensor([e for _, _, e in rows])
    return s - missing_eos_penalty * (~ended).float()


class ValueHead(nn.Module):
    """The PPO value head (a scalar head on the policy's hidden states) and the current rollout buffer,
    which rides in the module's state (get_extra_state) so the Trainer checkpoints it."""

    def __init__(self, d_model: int):
        super().__init__()
        self.head = ScalarHead(d_model)
        self.buffer: dict = {}

    def values(self, h: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, C) -> V (B, T), where V[:, t] is read before token t (at position t - 1), as log p(t) is."""
        v = self.head(h)
        return torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)

    def get_extra_state(self):
        return self.buffer

    def set_extra_state(self, state):
        self.buffer = state


@dataclass
class OnlineResult:
    model: nn.Module
    tokenizer: object
    history: list


def _setup(policy, reward_model, prompts, kl_coef, kl_estimator):
    if not prompts:
        raise NeuroError("online alignment needs at least one prompt")
    if kl_coef < 0:
        raise NeuroError(f"the KL coefficient must not be negative, got {kl_coef}")
    if kl_estimator not in KL_ESTIMATORS:
        raise NeuroError(f"the KL estimator must be one of {KL_ESTIMATORS}, got {kl_estimator!r}")
    rm = reward_model if isinstance(reward_model, RewardModel) else load_reward_model(reward_model)
    model, tok, _ = load_checkpoint(policy)
    check_pair(tok, rm)
    return model, tok, rm, frozen_copy(model), end_token(tok)


def _parents(policy, reward_model, method: str, settings: dict) -> list:
    rm_path = reward_model if not isinstance(reward_model, RewardModel) else reward_model.config.get("folder")
    records = [lineage(policy, method, role="policy", **settings)]
    if rm_path:
        records.append(lineage(rm_path, method, role="reward_model"))
    return records


def train_ppo(policy, reward_model, prompts: list, out_dir=None, steps: int = 40, rollout_batch: int = 16,
              minibatches: int = 2, ppo_epochs: int = 2, lr: float = 5e-4, kl_coef: float = 0.05,
              kl_estimator: str = "k1", clip: float = 0.2, clip_value: float = 0.2, vf_coef: float = 0.1,
              gamma: float = 1.0, lam: float = 0.95, missing_eos_penalty: float = 1.0, max_new_tokens: int = 32,
              seed: int = 0, evaluate=None, eval_every: int = 0, callback=None,
              ref_holder: dict | None = None) -> OnlineResult:
    """PPO from the policy checkpoint (also the frozen reference) against a reward model (path or RewardModel)."""
    model, tok, rm, ref, end_id = _setup(policy, reward_model, prompts, kl_coef, kl_estimator)
    if ref_holder is not None:
        ref_holder["ref"] = ref
    torch.manual_seed(seed)
    vhead = ValueHead(model.config.d_model)
    per_rollout = ppo_epochs * minibatches
    if rollout_batch < minibatches:
        raise NeuroError(f"a rollout batch of {rollout_batch} cannot fill {minibatches} minibatches")
    config = TrainConfig(batch_size=rollout_batch // minibatches, block_size=model.max_len or 1, lr=lr,
                         min_lr_ratio=1.0, warmup_steps=0, weight_decay=0.0, max_steps=steps, eval_every=eval_every,
                         log_every=per_rollout, seed=seed)

    @torch.no_grad()
    def rollout(r: int, m) -> dict:
        rng = np.random.default_rng([seed, r])
        chosen = [prompts[i] for i in rng.choice(len(prompts), rollout_batch, replace=len(prompts) < rollout_batch)]
        rows = sample(m, tok, chosen, max_new_tokens, end_id, seed=int(rng.integers(2**31)))
        batch = collate([(p, c or [end_id]) for p, c, _ in rows])
        tokens, mask = batch["tokens"], batch["completion_mask"]
        m.eval()
        logits, h = forward_with_hidden(m, tokens)
        m.train()
        old_logp = token_logprobs(logits, tokens)  # (B, T)
        values = vhead.values(h) * mask
        ref_logp = token_logprobs(ref(tokens), tokens)
        kl = kl_penalty(old_logp, ref_logp, kl_estimator) * mask
        score = scores(rm, rows, missing_eos_penalty)
        rewards = ppo_rewards(score, kl, mask, kl_coef)
        adv, returns = gae(rewards, values, mask, gamma, lam)
        adv = masked_whiten(adv, mask) * mask
        return {"id": r, "tokens": tokens, "mask": mask, "old_logp": old_logp, "old_values": values, "adv": adv,
                "returns": returns, "score": score.mean().item(), "kl": kl.sum(1).mean().item()}

    def batches(step: int) -> dict:
        r, j = divmod(step, per_rollout)
        if vhead.buffer.get("id") != r:
            vhead.buffer = rollout(r, model)
        buf = vhead.buffer
        epoch, mb = divmod(j, minibatches)
        perm = np.random.default_rng([seed, r, epoch]).permutation(rollout_batch)
        idx = torch.as_tensor(np.array_split(perm, minibatches)[mb])
        return {k: buf[k][idx] for k in ("tokens", "mask", "old_logp", "old_values", "adv", "returns")}

    def backward(m, b):
        logits, h = forward_with_hidden(m, b["tokens"])
        logp = token_logprobs(logits, b["tokens"])
        pg_loss, clipfrac = ppo_policy_loss(logp, b["old_logp"], b["adv"], b["mask"], clip)
        vf_loss = ppo_value_loss(vhead.values(h), b["old_values"], b["returns"], b["mask"], clip_value)
        loss = pg_loss + vf_coef * vf_loss
        loss.backward()
        approx_kl = masked_mean(b["old_logp"] - logp, b["mask"]).item()
        return loss.detach(), {"pg_loss": pg_loss.item(), "vf_loss": vf_loss.item(), "clipfrac": clipfrac.item(),
                               "approx_kl": approx_kl, "score": vhead.buffer["score"], "kl_ref": vhead.buffer["kl"]}

    settings = {"kl_coef": kl_coef, "kl_estimator": kl_estimator, "clip": clip, "clip_value": clip_value,
                "vf_coef": vf_coef, "gamma": gamma, "lam": lam, "ppo_epochs": ppo_epochs, "minibatches": minibatches,
                "rollout_batch": rollout_batch, "missing_eos_penalty": missing_eos_penalty,
                "max_new_tokens": max_new_tokens}
    return _fit("ppo", model, tok, config, batches, backward, evaluate, policy, reward_model, settings, out_dir,
                callback, aux=vhead)


def train_rloo(policy, reward_model, prompts: list, out_dir=None, steps: int = 20, prompts_per_step: int = 8,
               k: int = 4, lr: float = 5e-4, kl_coef: float = 0.05, missing_eos_penalty: float = 1.0,
               max_new_tokens: int = 32, seed: int = 0, evaluate=None, eval_every: int = 0, callback=None,
               ref_holder: dict | None = None) -> OnlineResult:
    """RLOO from the policy checkpoint against a reward model: k samples of each of `prompts_per_step` prompts."""
    if k < 2:
        raise NeuroError(f"RLOO needs k >= 2 samples per prompt, got {k}")
    model, tok, rm, ref, end_id = _setup(policy, reward_model, prompts, kl_coef, "k1")
    if ref_holder is not None:
        ref_holder["ref"] = ref
    config = TrainConfig(batch_size=prompts_per_step * k, block_size=model.max_len or 1, lr=lr, min_lr_ratio=1.0,
                         warmup_steps=0, weight_decay=0.0, max_steps=steps, eval_every=eval_every, log_every=1,
                         seed=seed)

    @torch.no_grad()
    def batches(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        chosen = [prompts[i] for i in rng.choice(len(prompts), prompts_per_step,
                                                 replace=len(prompts) < prompts_per_step)]
        rows = sample(model, tok, chosen * k, max_new_tokens, end_id, seed=int(rng.integers(2**31)))  # sample-major
        batch = collate([(p, c or [end_id]) for p, c, _ in rows])
        tokens, mask = batch["tokens"], batch["completion_mask"]
        model.eval()
        logp = sequence_logprobs(model(tokens), tokens, mask)
        model.train()
        seq_kl = logp - sequence_logprobs(ref(tokens), tokens, mask)  # k1 summed over the completion
        score = scores(rm, rows, missing_eos_penalty)
        reward = score - kl_coef * seq_kl
        adv = rloo_advantages(reward.view(k, prompts_per_step)).reshape(-1)
        return {"tokens": tokens, "completion_mask": mask, "adv": adv, "score": score, "kl": seq_kl}

    def backward(m, b):
        logp = sequence_logprobs(m(b["tokens"]), b["tokens"], b["completion_mask"])
        loss = -(b["adv"] * logp).mean()
        loss.backward()
        return loss.detach(), {"score": b["score"].mean().item(), "kl_ref": b["kl"].mean().item()}

    settings = {"kl_coef": kl_coef, "k": k, "prompts_per_step": prompts_per_step,
                "missing_eos_penalty": missing_eos_penalty, "max_new_tokens": max_new_tokens}
    return _fit("rloo", model, tok, config, batches, backward, evaluate, policy, reward_model, settings, out_dir,
                callback)


def _fit(method, model, tok, config, batches, backward, evaluate, policy, reward_model, settings, out_dir, callback,
         aux=None) -> OnlineResult:
    def evaluate_fn(m):
        out = evaluate(m)
        m.train()
        return out

    extra = {"align": {"method": method, **settings}}
    if out_dir is not None:
        extra["parent"] = _parents(policy, reward_model, method, settings)
    trainer = Trainer(model, tok, config, batches, evaluate_fn if evaluate else None, out_dir=out_dir,
                      extra_config=extra, backward=backward, aux=aux)
    history = trainer.fit(callback=callback)
    return OnlineResult(model.eval(), tok, history)
