"""Alignment of a fine-tuned policy (DESIGN.md: aligned models are children of fine-tunes).

    losses.py   the losses as formulas on tensors: Bradley-Terry, DPO (sigmoid/cDPO, IPO, hinge), KL
                estimators, GAE, whitening, clipped PPO losses, RLOO advantages
    batch.py    preference pairs (JSON lines), prompt + completion batches, masked sequence log-probs
    reward.py   reward model: the policy's backbone + a scalar head, Bradley-Terry training, pairwise accuracy
    dpo.py      DPO and SFT on the chosen answers (offline, on the crash-safe Trainer)
    online.py   PPO and RLOO against a reward model (rollouts by infer/engine.py), policy evaluation
Best-of-N against the reward model is infer/best_of_n.py with the reward model as scorer.
`neuro align rm|dpo|ppo|rloo` (commands/align.py); `neuro bench rlhf` (bench/rlhf.py); notebook 10.
"""
