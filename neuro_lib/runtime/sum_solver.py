"""A tiny language model that adds: the solver recursive expansion and best-of-N are compared on
(runtime/expansion.py), and the fast/slow answers of math queries in the router's cost-quality test.

    solver = train_sum_solver(get_profile("smoke").tasks.expansion)        # a byte-level GPT, step budget from profiles.py
    solver.direct((12, 34, 56))                        # Answer(value=102, calls=1, steps=5): one generation
    solver.sample((12, 34, 56), n=4, seed=0)           # 4 sampled answers [(value, mean log-prob), ...]

Training (data/arith.py `sum_examples`): one example per row, "12+34+56=201\\n" padded to a fixed
length, the loss only on the answer and its newline (prompt positions masked), through the shared
Trainer with a step budget. A model call is one generation (one answer); `steps` counts the
engine's sequence-steps (Engine.calls) for the same work.

Tests: tests/test_runtime_expansion.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuro_lib.data.arith import parse_sum_answer, sum_examples, sum_prompt
from neuro_lib.infer.best_of_n import best_of_n
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.models import build_model
from neuro_lib.profiles import ExpansionSizes
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.trainer import TrainConfig, Trainer, seed_everything

PAD = 0


@dataclass
class Answer:
    value: int | None    # None: the model wrote no number
    calls: int           # model calls (generations)
    steps: int = 0       # engine sequence-steps


def sum_batch(pairs: list[tuple[str, str]], length: int) -> dict:
    """Rows "prompt answer \\n" padded to `length` + 1 bytes -> tokens, targets (B, length) and a loss mask on the
    answer and its newline."""
    rows, masks = [], []
    for prompt, answer in pairs:
        line = (prompt + answer + "\n").encode()
        if len(line) > length + 1:
            raise ValueError(f"example {line!r} is longer than {length + 1} bytes")
        rows.append(list(line) + [PAD] * (length + 1 - len(line)))
        masks.append([float(len(prompt) - 1 <= i < len(line) - 1) for i in range(length)])
    t = torch.tensor(rows)
    return {"tokens": t[:, :-1], "targets": t[:, 1:], "loss_mask": torch.tensor(masks)}


class SumSolver:
    def __init__(self, model, tokenizer=None):
        self.model, self.tok = model.eval(), tokenizer or ByteTokenizer()
        self.max_new = 5  # up to four digits and the newline

    def direct(self, ops) -> Answer:
        """One greedy generation answers the whole sum."""
        eng = Engine(self.model, self.tok)
        text = eng.generate(sum_prompt(ops), Sampling(max_new_tokens=self.max_new, temperature=0, stop=(b"\n",)))
        return Answer(parse_sum_answer(text), 1, eng.calls)

    def sample(self, ops, n: int, seed: int) -> tuple[list[tuple[int | None, float]], int]:
        """`n` answers sampled at temperature 1 from one shared prompt state: ([(value, mean log-prob)], steps)."""
        eng = Engine(self.model, self.tok)
        r = best_of_n(eng, sum_prompt(ops), n, Sampling(max_new_tokens=self.max_new, temperature=1.0, seed=seed,
                                                       stop=(b"\n",)))
        return [(parse_sum_answer(c.text), c.mean_logprob) for c in r.candidates], r.calls


def train_sum_solver(sizes: ExpansionSizes, steps: int | None = None, seed: int = 0, callback=None) -> SumSolver:
    """Train the adding model with a profile's tasks.expansion sizes for a step budget."""
    pairs = sum_examples(sizes.n_train, seed=seed, max_ops=max(sizes.sizes))
    length = sizes.model["block_size"]
    config = TrainConfig(batch_size=sizes.batch_size, block_size=length, lr=sizes.lr, warmup_steps=20,
                         max_steps=steps or sizes.steps, eval_every=0, log_every=25, seed=seed)
    seed_everything(seed)  # before the model is built: the seed fixes the initial weights
    model = build_model("gpt", **sizes.model)

    def batches(step):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(len(pairs), (config.batch_size,), generator=g).tolist()
        return sum_batch([pairs[i] for i in idx], length)

    Trainer(model, ByteTokenizer(), config, batches).fit(callback=callback)
    return SumSolver(model)

