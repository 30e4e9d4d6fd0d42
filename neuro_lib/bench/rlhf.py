"""`neuro bench rlhf`: best-of-N, DPO, PPO, RLOO and SFT-on-chosen on one reward-vs-KL frontier.

    neuro bench rlhf --profile smoke --seeds 3 --threads 1 --out data/reference/rlhf_smoke.json

The task (data/reviews.py) has a computable true reward: the sentiment-lexicon score of a generated
review's completion. Per seed, following the DPO paper's controlled sentiment setup at toy scale:
1. the SFT policy: the model family's pretrained base (train/pretrain.py, cached per profile; `--base scratch`
   starts from a fresh small GPT instead) fine-tuned (rlhf.dpo.train_sft, lineage recorded) on review lines,
   loss on the completion; it writes reviews of every mood;
2. preference pairs: two samples of the SFT policy per prompt, ranked by the true reward (ties dropped);
3. a reward model on those pairs (Bradley-Terry), held-out pairwise accuracy;
4. the arms, each evaluated on the same held-out prompts (one sample each, fixed seed): mean true reward,
   mean reward-model score, KL(policy || SFT) estimated as the mean summed log-ratio of the samples;
   - best-of-N (N = 1..32) against the reward model, KL = log N - (N - 1) / N (Stiennon et al. 2020);
   - DPO at three betas, PPO at two KL coefficients, RLOO, SFT on the chosen answers; their evaluations
     during training give reward-model score vs true reward over training (reward hacking: the first
     rising while the second stays flat).
Wall-clock seconds per method are recorded too; on a shared machine they measure the contention as
much as the method: compare them only from a quiet machine.
"""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import math
import torch

from neuro_lib.bench.report import make_report
from neuro_lib.checkpoint import save_checkpoint
from neuro_lib.data.reviews import review_lines, review_prompts, split_review, true_reward
from neuro_lib.errors import NeuroError
from neuro_lib.infer.best_of_n import best_of_n
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.models import build_model
from neuro_lib.profiles import RlhfSizes, get_profile
from neuro_lib.rlhf.batch import Pair
from neuro_lib.rlhf.dpo import train_dpo, train_sft
from neuro_lib.rlhf.online import end_token, evaluate_policy, sample, text_only, train_ppo, train_rloo
from neuro_lib.rlhf.reward import frozen_copy, train_reward_model
from neuro_lib.tokenizers.byte import ByteTokenizer


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.rlhf)")
    p.add_argument("--seeds", type=int, default=0, help="seeds (default: the profile's)")
    p.add_argument("--base", default="family",
                   help="what the SFT policy is fine-tuned from: 'family' (the profile's cached pretrained base, "
                        "train/pretrain.py), 'scratch' (a fresh GPT of the profile's size) or a checkpoint folder "
                        "(byte tokenizer)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed + seeds - 1")


def rank_pairs(rows_a, rows_b, tok, reward) -> list[Pair]:
    """Two samples per prompt -> (prompt, higher-reward completion, lower) pairs; ties are dropped."""
    pairs = []
    for (p, ca, ea), (_, cb, eb) in zip(rows_a, rows_b):
        ta, tb = tok.decode(ca), tok.decode(cb)
        ra, rb = reward(ta), reward(tb)
        if ra != rb and ea and eb:  # both finished reviews: the pair differs in mood, not in being cut off
            hi, lo = (ta, tb) if ra > rb else (tb, ta)
            pairs.append(Pair(tok.decode(p).decode(), hi.decode(errors="replace"), lo.decode(errors="replace")))
    return pairs


def build_sft(s: RlhfSizes, work: Path, seed: int, base: str | None) -> Path:
    """The SFT policy: base (or a fresh GPT) fine-tuned on review lines, loss on the completion."""
    tok = ByteTokenizer()
    if base is None:
        torch.manual_seed(seed)
        save_checkpoint(work / "init", build_model("gpt", **s.model), tok)
        base = work / "init"
    lines = review_lines(s.sft_lines, seed=1000 + seed)
    pairs = [Pair(*(x.decode() for x in split_review(line)), "") for line in lines]
    train_sft(base, pairs, work / "sft", steps=s.sft_steps, batch_size=s.batch_size, lr=s.sft_lr, seed=seed)
    return work / "sft"


def bon_points(policy, tok, rm, prompts, s, seed) -> list[dict]:
    """Best-of-N for N = 1..n_max from the same n_max samples per prompt (the first N of them)."""
    end_id = end_token(tok)
    n_max = max(s.bon)
    picks = {n: [] for n in s.bon}
    for i, prompt in enumerate(prompts):
        params = Sampling(max_new_tokens=s.max_new_tokens, temperature=1.0, seed=seed * 10_007 + i, eos_id=end_id)
        cands = best_of_n(Engine(policy, tok), prompt, n_max, params, processor=text_only(tok)).candidates
        comps = [c.ids + [end_id] if len(c.ids) < s.max_new_tokens else c.ids or [end_id] for c in cands]
        scores = rm.score([tok.encode(prompt)] * n_max, comps).tolist()
        for n in s.bon:
            best = max(range(n), key=lambda j: scores[j])
            picks[n].append((true_reward(cands[best].text), scores[best]))
    return [{"n": n, "true_reward": statistics.mean(t for t, _ in v), "rm_score": statistics.mean(r for _, r in v),
             "kl": math.log(n) - (n - 1) / n} for n, v in picks.items()]


def run_seed(s: RlhfSizes, seed: int, base: str | None) -> list[dict]:
    tok = ByteTokenizer()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="neuro-rlhf-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        sft = build_sft(s, work, seed, base)
        rows.append({"name": "wall_s", "method": "sft-policy", "value": time.perf_counter() - t0, "unit": "s"})
        from neuro_lib.checkpoint import load_checkpoint
        policy, _, _ = load_checkpoint(sft)
        ref = frozen_copy(policy)
        end_id = end_token(tok)
        prompts = review_prompts(s.pair_prompts, seed=2000 + seed)
        a = sample(policy, tok, prompts, s.max_new_tokens, end_id, seed=3000 + seed)
        b = sample(policy, tok, prompts, s.max_new_tokens, end_id, seed=4000 + seed)
        pairs = rank_pairs(a, b, tok, true_reward)
        random.Random(seed).shuffle(pairs)
        n_val = max(1, len(pairs) // 10)
        train_pairs, val_pairs = pairs[n_val:], pairs[:n_val]
        if len(train_pairs) < s.batch_size:
            raise NeuroError(f"only {len(pairs)} preference pairs came out of the SFT samples; raise pair_prompts")
        rows.append({"name": "pairs", "method": "data", "value": len(pairs), "unit": "pairs"})
        t0 = time.perf_counter()
        rm_res = train_reward_model(sft, train_pairs, val_pairs, work / "rm", steps=s.rm_steps,
                                    batch_size=s.batch_size, lr=s.rm_lr, center_coef=0.01, seed=seed)
        rows.append({"name": "wall_s", "method": "reward-model", "value": time.perf_counter() - t0, "unit": "s"})
        rows.append({"name": "rm_accuracy", "method": "reward-model", "value": rm_res.val_accuracy, "unit": "ratio",
                     "n_val": len(val_pairs)})
        rm = rm_res.rm
        eval_prompts = review_prompts(s.eval_prompts, seed=5000 + seed)

        def evaluate(m):
            return evaluate_policy(m, ref, tok, eval_prompts, rm, true_reward, s.max_new_tokens, end_id,
                                   seed=6000 + seed)

        point = evaluate(policy)
        rows.append({"name": "frontier", "method": "sft", "setting": "", "value": point["true_reward"], "unit": "reward",
                     **point})
        t0 = time.perf_counter()
        for p in bon_points(policy, tok, rm, eval_prompts[: s.bon_prompts], s, seed):
            rows.append({"name": "frontier", "method": "best-of-n", "setting": f"N={p['n']}",
                         "value": p["true_reward"], "unit": "reward", **p})
        rows.append({"name": "wall_s", "method": "best-of-n", "value": time.perf_counter() - t0, "unit": "s"})

        arms = [("dpo", f"beta={b}", lambda b=b: train_dpo(sft, train_pairs, beta=b, steps=s.dpo_steps,
                                                              batch_size=s.batch_size, lr=s.dpo_lr, seed=seed,
                                                              evaluate=evaluate, eval_every=s.eval_every))
                for b in s.dpo_betas]
        arms += [("ppo", f"kl={c}", lambda c=c: train_ppo(sft, rm, eval_prompts_train(s, seed), steps=s.ppo_steps,
                                                          rollout_batch=s.rollout_batch, kl_coef=c, lr=s.rl_lr,
                                                          max_new_tokens=s.max_new_tokens, seed=seed,
                                                          evaluate=evaluate, eval_every=s.eval_every))
                 for c in s.ppo_kl]
        arms += [("rloo", f"kl={s.rloo_kl}", lambda: train_rloo(
            sft, rm, eval_prompts_train(s, seed), steps=s.rloo_steps, k=s.rloo_k,
            prompts_per_step=s.rollout_batch // s.rloo_k, kl_coef=s.rloo_kl, lr=s.rl_lr,
            max_new_tokens=s.max_new_tokens, seed=seed, evaluate=evaluate, eval_every=s.eval_every))]
        arms += [("sft-chosen", "", lambda: train_sft(sft, train_pairs, steps=s.dpo_steps, batch_size=s.batch_size,
                                                     lr=s.dpo_lr, seed=seed, evaluate=evaluate,
                                                     eval_every=s.eval_every))]
        for method, setting, fit in arms:
            t0 = time.perf_counter()
            res = fit()
            rows.append({"name": "wall_s", "method": method, "setting": setting, "value": time.perf_counter() - t0,
                         "unit": "s"})
            vals = [r for r in res.history if r.get("kind") == "val"]
            for r in vals:
                rows.append({"name": "trajectory", "method": method, "setting": setting, "step": r["step"],
                             "value": r["true_reward"], "unit": "reward", "true_reward": r["true_reward"],
                             "rm_score": r["rm_score"], "kl": r["kl"], "ended": r["ended"]})
            last = vals[-1]
            rows.append({"name": "frontier", "method": method, "setting": setting, "value": last["true_reward"],
                         "unit": "reward", "true_reward": last["true_reward"], "rm_score": last["rm_score"],
                         "kl": last["kl"], "ended": last["ended"]})
    for r in rows:
        r["seed"] = seed
        for k, v in list(r.items()):
            if isinstance(v, float):
                r[k] = round(v, 4)
    return rows


def eval_prompts_train(s: RlhfSizes, seed: int) -> list[bytes]:
    """The prompts PPO and RLOO roll out on (drawn apart from the evaluation prompts)."""
    return review_prompts(s.pair_prompts, seed=7000 + seed)


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    s = profile.tasks.rlhf
    seeds = args.seeds or s.seeds
    if seeds < 1:
        raise NeuroError("--seeds must be positive")
    if args.base == "family":
        from neuro_lib.train.pretrain import pretrain
        base = str(pretrain(profile))
    elif args.base == "scratch":
        base = None
    elif Path(args.base).exists():
        base = args.base
    else:
        raise NeuroError(f"--base {args.base} is neither 'family', 'scratch' nor a checkpoint folder")
    results = [r for seed in range(args.first_seed, args.first_seed + seeds) for r in run_seed(s, seed, base)]
    config = {"profile": args.profile, "seeds": seeds, "first_seed": args.first_seed, "base": args.base, "base_path": base, "sizes": asdict(s),
              "threads": torch.get_num_threads(), "task": "reviews (data/reviews.py): lexicon sentiment"}
    return make_report("rlhf", config, results)
