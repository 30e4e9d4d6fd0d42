"""The alignment losses, as pure functions of tensors (no models, no data): each is one formula.

    bradley_terry_loss(r_chosen, r_rejected, margin=None, center_coef=0.0)       reward model
    dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1, loss_type="sigmoid", label_smoothing=0.0)
    kl_penalty(logp, ref_logp, "k1" | "k3")                                        per-token KL estimate
    ppo_rewards(score, kl, mask, kl_coef=0.05)                                     -coef*KL per token, score at the end
    gae(rewards, values, mask, gamma=1.0, lam=0.95) -> (advantages, returns)
    masked_whiten(x, mask)
    ppo_policy_loss(logp, old_logp, adv, mask, clip=0.2), ppo_value_loss(v, old_v, returns, mask, clip=0.2)
    rloo_advantages(rewards (k, B))                                                leave-one-out baseline

References and defaults: Bradley & Terry (1952), reward centring as in TRL's RewardTrainer
(`center_rewards_coefficient`, Eisenstein et al. 2023); DPO, Rafailov et al. 2023 (beta 0.1), cDPO
(Mitchell 2023: label smoothing eps flips a label with probability eps), IPO (Azar et al. 2023,
loss (h - 1/(2 beta))^2; TRL averages the log-ratios per completion token, `dpo.sequence_logprobs(...,
average=True)`), hinge (SLiC, Zhao et al. 2023); PPO, Schulman et al. 2017 (clip 0.2), GAE, Schulman
et al. 2016 (gamma 1, lambda 0.95 as in Ouyang et al. 2022 and TRL), KL estimators k1/k3 (Schulman,
"Approximating KL divergence", 2020), KL coefficient 0.05 (TRL's PPO default); RLOO, Ahmadian et al. 2024.

TRL parity (tests/test_rlhf.py, expected tensors in tests/data/trl_expected.json): the `sigmoid` loss with
label smoothing is cDPO, which is what TRL's `sigmoid` computed from v0.7.5 (PR #1035) through v0.28.x;
from v0.29.0 (the DPO refactor, PR #3906) TRL's `sigmoid` ignores `label_smoothing` (its smoothed losses
are `robust` and `exo_pair`), so with label_smoothing > 0 ours matches TRL <= 0.28 and not >= 0.29.

Tests: tests/test_rlhf.py (each loss against the formula worked by hand; TRL's tensors).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

DPO_LOSSES = ("sigmoid", "ipo", "hinge")
KL_ESTIMATORS = ("k1", "k3")


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coef: float = 0.0) -> torch.Tensor:
    """-log sigmoid(r_c - r_r - margin), mean over pairs; + center_coef * mean((r_c + r_r)^2), which pulls
    the rewards' mean to 0 (the BT loss sees only differences, so their level would otherwise drift)."""
    diff = r_chosen - r_rejected  # (B,)
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def dpo_loss(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1, loss_type: str = "sigmoid",
             label_smoothing: float = 0.0):
    """Per-pair losses (B,) and the implicit rewards beta * (log pi - log ref) of chosen and rejected (B,).
    h = (pi_c - ref_c) - (pi_r - ref_r), the inputs being sequence log-probabilities.
      sigmoid: -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)   (eps = label_smoothing; cDPO)
      ipo:     (h - 1 / (2 beta))^2
      hinge:   max(0, 1 - beta h)"""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if loss_type not in DPO_LOSSES:
        raise ValueError(f"loss_type must be one of {DPO_LOSSES}, got {loss_type!r}")
    h = (pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)  # (B,)
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        losses = torch.relu(1 - beta * h)
    chosen_rewards = beta * (pi_chosen - ref_chosen).detach()
    rejected_rewards = beta * (pi_rejected - ref_rejected).detach()
    return losses, chosen_rewards, rejected_rewards


def dpo_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict:
    """What practitioners read off a DPO run: the implicit rewards, their margin and how often chosen wins."""
    margin = chosen_rewards - rejected_rewards
    return {"rewards/chosen": chosen_rewards.mean().item(), "rewards/rejected": rejected_rewards.mean().item(),
            "rewards/margins": margin.mean().item(), "rewards/accuracies": (margin > 0).float().mean().item()}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the positions where mask is 1; var with Bessel's correction
    (as TRL's masked_whiten). Positions outside the mask come out as whatever; callers mask them."""
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mean) ** 2, mask) * n / (n - 1).clamp_min(1)
    return (x - mean) * torch.rsqrt(var + eps)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || ref) at tokens sampled from the policy, with r = ref / policy:
    k1 = -log r (unbiased, can be negative), k3 = (r - 1) - log r (unbiased and never negative)."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"KL estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    log_r = ref_logp - logp
    return -log_r if estimator == "k1" else log_r.exp() - 1 - log_r


def ppo_rewards(score: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float = 0.05) -> torch.Tensor:
    """Per-token rewards (B, T): -kl_coef * KL at each completion token, plus the sequence's score (B,) at
    its last completion token (mask (B, T) is 1 on completion tokens, which are left-aligned)."""
    rewards = -kl_coef * kl * mask  # (B, T)
    last = (mask.sum(1).long() - 1).clamp_min(0)  # (B,) index of each row's last completion token
    return rewards.scatter_add(1, last[:, None], score[:, None].to(rewards.dtype))


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95):
    """Generalised advantage estimation over (B, T) completions -> (advantages, returns), both (B, T).
    delta_t = r_t + gamma V_{t+1} - V_t (V past the end = 0); A_t = delta_t + gamma lam A_{t+1};
    returns = A + V. Masked positions hold zeros and end the recursion."""
    values = values * mask
    rewards = rewards * mask
    T = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    return adv, adv + values


def ppo_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                    clip: float = 0.2):
    """The clipped surrogate: mean over completion tokens of max(-A ratio, -A clip(ratio, 1 - c, 1 + c));
    -> (loss, fraction of tokens clipped)."""
    ratio = (logp - old_logp).exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, clipfrac


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                   clip: float = 0.2) -> torch.Tensor:
    """0.5 * mean over completion tokens of max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """rewards (k, B): k samples of each of B prompts -> r_i minus the mean of the other k - 1 samples' rewards."""
    k = rewards.shape[0]
    if k < 2:
        raise ValueError("RLOO needs at least 2 samples per prompt")
    baseline = (rewards.sum(0, keepdim=True) - rewards) / (k - 1)
    return rewards - baseline
