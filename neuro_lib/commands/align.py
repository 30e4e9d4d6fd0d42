"""`neuro align rm|dpo|ppo|rloo`: align a fine-tuned policy (rlhf/), on the crash-safe Trainer.

    neuro align rm   --policy runs/sft --prefs prefs.jsonl --out runs/rm
    neuro align dpo  --policy runs/sft --prefs prefs.jsonl --beta 0.1 --loss sigmoid --out runs/dpo
    neuro align ppo  --policy runs/sft --reward runs/rm [--prompts prompts.txt] --kl-coef 0.05 --out runs/ppo
    neuro align rloo --policy runs/sft --reward runs/rm --k 4 --out runs/rloo

A preference file is JSON lines of {"prompt", "chosen", "rejected"}; a prompts file has one prompt a line
(default: the review prompts of data/reviews.py). The same command again resumes an interrupted run (or
does nothing for a finished one); the output records its parent policy (and reward model). Bad input (an
empty preference file, beta <= 0, a policy and reward model of different tokenizers) is one sentence and
exit 2, before anything is written. Tests: tests/test_rlhf.py.
"""
from __future__ import annotations

from pathlib import Path

from neuro_lib.cli import _number, _positive
from neuro_lib.errors import NeuroError


def _prompts(path) -> list[bytes]:
    if path is None:
        from neuro_lib.data.reviews import review_prompts
        return review_prompts(64, seed=0)
    p = Path(path)
    if not p.is_file():
        raise NeuroError(f"prompts file {p} does not exist")
    prompts = [line.encode() for line in p.read_text().splitlines() if line.strip()]
    if not prompts:
        raise NeuroError(f"prompts file {p} holds no prompts")
    return prompts


def cmd_align(a):
    from neuro_lib.rlhf.batch import load_pairs

    common = dict(out_dir=a.out, steps=a.steps, lr=a.lr, seed=a.seed)
    if a.method in ("rm", "dpo"):
        pairs = load_pairs(a.prefs)
    if a.method == "rm":
        from neuro_lib.rlhf.reward import train_reward_model

        n_val = int(len(pairs) * a.val_fraction)
        train, val = pairs[: len(pairs) - n_val], pairs[len(pairs) - n_val:]
        res = train_reward_model(a.policy, train, val, batch_size=a.batch_size, margin=a.margin,
                                 center_coef=a.center_coef, **common)
        print(f"reward model: held-out pairwise accuracy {res.val_accuracy:.3f} on {len(val)} pairs, in {a.out}")
    elif a.method == "dpo":
        from neuro_lib.rlhf.dpo import train_dpo

        res = train_dpo(a.policy, pairs, beta=a.beta, loss_type=a.loss, label_smoothing=a.label_smoothing,
                        batch_size=a.batch_size, micro_batches=a.micro_batches,
                        precompute_ref=not a.no_precompute_ref, **common)
        last = [r for r in res.history if r.get("kind") == "train"][-1]
        print(f"dpo: loss {last['loss']:.4f}, reward margin {last['rewards/margins']:.4f}, "
              f"accuracy {last['rewards/accuracies']:.3f}, in {a.out}")
    else:
        from neuro_lib.rlhf.online import train_ppo, train_rloo

        prompts = _prompts(a.prompts)
        online = dict(kl_coef=a.kl_coef, missing_eos_penalty=a.missing_eos_penalty, max_new_tokens=a.max_new_tokens,
                      **common)
        if a.method == "ppo":
            res = train_ppo(a.policy, a.reward, prompts, rollout_batch=a.rollout_batch, minibatches=a.minibatches,
                            ppo_epochs=a.ppo_epochs, kl_estimator=a.kl_estimator, **online)
        else:
            res = train_rloo(a.policy, a.reward, prompts, k=a.k, prompts_per_step=a.prompts_per_step, **online)
        last = [r for r in res.history if r.get("kind") == "train"][-1]
        print(f"{a.method}: reward-model score {last['score']:.4f}, KL to the reference {last['kl_ref']:.4f}, "
              f"in {a.out}")


def register(sub) -> None:
    al = sub.add_parser("align", help="align a policy: reward model, DPO, PPO, RLOO")
    asub = al.add_subparsers(dest="method", required=True)
    helps = {"rm": "train a reward model (Bradley-Terry) on preference pairs",
             "dpo": "direct preference optimisation (sigmoid/cDPO, ipo, hinge)",
             "ppo": "PPO against a reward model (value head, GAE, KL penalty)",
             "rloo": "REINFORCE leave-one-out against a reward model"}
    for method, text in helps.items():
        s = asub.add_parser(method, help=text)
        s.add_argument("--policy", required=True, help="the fine-tuned policy's run folder (also the reference)")
        s.add_argument("--out", required=True, help="run folder to write (the same command resumes it)")
        s.add_argument("--steps", type=_positive(int), default=100, help="optimiser steps")
        s.add_argument("--lr", type=_positive(float), default=5e-4)
        s.add_argument("--seed", type=int, default=0)
        if method in ("rm", "dpo"):
            s.add_argument("--prefs", required=True, help="preference pairs, JSON lines of prompt/chosen/rejected")
            s.add_argument("--batch-size", type=_positive(int), default=16, help="pairs per step")
        if method == "rm":
            s.add_argument("--val-fraction", type=_number(float, 0, strict=False), default=0.1,
                           help="the last fraction of pairs held out for pairwise accuracy")
            s.add_argument("--margin", type=float, default=None, help="Bradley-Terry margin")
            s.add_argument("--center-coef", type=_number(float, 0, strict=False), default=0.0,
                           help="reward centring coefficient")
        if method == "dpo":
            s.add_argument("--beta", type=_number(float), default=0.1, help="DPO's beta (> 0)")
            s.add_argument("--loss", default="sigmoid", help="sigmoid, ipo or hinge")
            s.add_argument("--label-smoothing", type=_number(float), default=0.0, help="cDPO's epsilon, [0, 0.5)")
            s.add_argument("--micro-batches", type=_positive(int), default=1, help="gradient accumulation")
            s.add_argument("--no-precompute-ref", action="store_true",
                           help="score the reference on every batch instead of once up front")
        if method in ("ppo", "rloo"):
            s.add_argument("--reward", required=True, help="a reward model's run folder (neuro align rm)")
            s.add_argument("--prompts", help="one prompt a line (default: the review prompts)")
            s.add_argument("--kl-coef", type=_number(float, 0, strict=False), default=0.05)
            s.add_argument("--max-new-tokens", type=_positive(int), default=32)
            s.add_argument("--missing-eos-penalty", type=_number(float, 0, strict=False), default=1.0,
                           help="subtracted from the score of a completion without the end token")
        if method == "ppo":
            s.add_argument("--kl-estimator", default="k1", help="k1 or k3")
            s.add_argument("--rollout-batch", type=_positive(int), default=16)
            s.add_argument("--minibatches", type=_positive(int), default=2)
            s.add_argument("--ppo-epochs", type=_positive(int), default=2)
        if method == "rloo":
            s.add_argument("--k", type=_positive(int), default=4, help="samples per prompt (>= 2)")
            s.add_argument("--prompts-per-step", type=_positive(int), default=8)
        s.set_defaults(func=cmd_align)
