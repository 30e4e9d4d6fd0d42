"""`neuro bench search`: greedy vs best-of-N vs MCTS at equal model calls, on sums a verifier checks.

    neuro bench search --profile bench --threads 2 --out data/reference/search_bench.json

A small GPT is trained here for a fixed number of steps on "a+b=c" lines (data/arith.py); then for
each held-out problem "a+b=" three decoders answer, with the verifier (is the first line the sum?):
- greedy: one continuation (its calls are the baseline's, not matched);
- best-of-N: N sampled continuations (temperature 1) sharing the prompt's cache, the verifier picks;
- MCTS: PUCT search whose budget is the calls best-of-N used on that problem (infer/mcts.py).
Success rate = problems whose chosen answer verifies, per search seed (sampling and expansion
randomness; the model is the same), with the mean calls per problem. Calls are sequence-steps
(`Engine.calls`), not seconds, so these figures do not depend on the machine's load.
"""
from __future__ import annotations

import statistics

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.data.arith import arith_corpus, arith_problems, arith_verifier
from neuro_lib.data.corpus import Corpus
from neuro_lib.errors import NeuroError
from neuro_lib.infer.best_of_n import best_of_n
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.infer.mcts import mcts
from neuro_lib.profiles import Profile, get_profile
from neuro_lib.bench.flags import add_seed, add_threads

ANSWER = dict(max_new_tokens=4, stop=(b"\n",))  # up to 3 digits and the newline


def add_arguments(p):
    p.add_argument("--profile", default="bench", help="sizes from profiles.py (tasks.search)")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the profile's)")
    p.add_argument("--problems", type=int, default=0, help="held-out problems (default: the profile's)")
    p.add_argument("--seeds", type=int, default=0, help="search seeds (default: the profile's)")
    p.add_argument("--n", type=int, default=0, help="best-of-N samples (default: the profile's)")
    add_threads(p)
    add_seed(p, 1337, help="training seed")


def train_arith_model(profile: Profile, steps: int, seed: int):
    sizes = profile.tasks.search
    from neuro_lib.train.lm import train_lm

    corpus = Corpus("arith", arith_corpus(20_000, seed=0))
    res = train_lm("gpt", corpus, "byte", profile=profile, model_overrides=dict(sizes.model),
                   train_overrides={"max_steps": steps, "block_size": sizes.model["block_size"], "seed": seed,
                                    "eval_bytes": 5_000})
    return res.model.eval(), res.tokenizer


def compare(model, tok, problems: list, seed: int, n: int, branch: int) -> dict:
    """Success and calls per method over the problems for one search seed."""
    out = {m: {"solved": 0, "calls": 0} for m in ("greedy", f"best-of-{n}", "mcts")}
    for i, (prompt, _) in enumerate(problems):
        verify = arith_verifier(prompt)
        eng = Engine(model, tok)
        text = eng.generate(prompt, Sampling(temperature=0, **ANSWER))
        out["greedy"]["solved"] += int(verify(text) == 1.0)
        out["greedy"]["calls"] += eng.calls
        bon = best_of_n(Engine(model, tok), prompt, n, Sampling(temperature=1.0, seed=seed * 100_003 + i, **ANSWER),
                        scorer=verify)
        out[f"best-of-{n}"]["solved"] += int(bon.best.score == 1.0)
        out[f"best-of-{n}"]["calls"] += bon.calls
        tree = mcts(Engine(model, tok), prompt, verify, bon.calls, Sampling(temperature=1.0, **ANSWER), branch,
                    seed=seed * 100_003 + i)
        out["mcts"]["solved"] += int(tree.best_value == 1.0)
        out["mcts"]["calls"] += tree.calls
    return out


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    sizes = profile.tasks.search
    steps, n_problems = args.steps or sizes.steps, args.problems or sizes.problems
    seeds, n = args.seeds or sizes.seeds, args.n or sizes.n
    if min(steps, n_problems, seeds, n) < 1:
        raise NeuroError("--steps, --problems, --seeds and --n must be positive")
    torch.manual_seed(args.seed)
    model, tok = train_arith_model(profile, steps, args.seed)
    problems = arith_problems(n_problems, seed=1)
    per_seed = [compare(model, tok, problems, s, n, sizes.branch) for s in range(seeds)]
    results = []
    for method in per_seed[0]:
        rates = [r[method]["solved"] / n_problems for r in per_seed]
        calls = statistics.mean(r[method]["calls"] / n_problems for r in per_seed)
        results += [{"name": f"{method} success", "value": round(statistics.mean(rates), 4), "unit": "ratio",
                     "method": method, "per_seed": [round(x, 4) for x in rates]},
                    {"name": f"{method} calls per problem", "value": round(calls, 2), "unit": "calls",
                     "method": method}]
    config = {"profile": args.profile, "steps": steps, "problems": n_problems, "seeds": seeds, "n": n,
              "branch": sizes.branch, "model": sizes.model, "threads": torch.get_num_threads(),
              "seed": args.seed}
    return make_report("search", config, results)
