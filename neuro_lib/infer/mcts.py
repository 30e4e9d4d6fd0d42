"""Monte Carlo tree search over continuations, with a verifier as the value (AlphaZero's PUCT rule,
Silver et al. 2017; applied to LM decoding as in e.g. Zhang et al. 2023, "Planning with LLMs for code").

    r = mcts(Engine(model, tok), "37+48=", arith_verifier("37+48="), budget=64,
             params=Sampling(max_new_tokens=4, stop=(b"\\n",)), branch=3, seed=0)
    r.best_text, r.best_value, r.calls, r.simulations

A node is a token sequence after the prompt. One simulation:
1. select: from the root, take the child maximising Q + c_puct * P * sqrt(N_parent) / (1 + N);
2. expand the leaf: one model call gives its next-token distribution; `branch` distinct children
   are sampled from its top 2 * branch tokens (priors P = their renormalised probabilities);
3. evaluate: a greedy rollout from the leaf to a stop sequence or max_new_tokens, scored by the
   verifier (value in [0, 1]); every rollout is a candidate answer;
4. back up the value along the path.
The budget counts model calls (sequence-steps, Engine.calls) and stops the search between
simulations; the answer is the best-valued rollout (the first found among equals). The state
moves between nodes by rollback (a `Cursor`), so a call feeds only what differs from the last.

Tests: tests/test_search.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from neuro_lib.infer.engine import Cursor, Engine, Sampling, cut_at_stop
from neuro_lib.infer.sampling import next_token_probs


@dataclass
class Node:
    ids: list                       # generated tokens from the prompt to here
    prior: float = 1.0
    n: int = 0
    w: float = 0.0
    children: list = field(default_factory=list)
    terminal: bool = False

    def q(self) -> float:
        return self.w / self.n if self.n else 0.0


@dataclass
class MCTSResult:
    best_text: bytes
    best_value: float
    calls: int
    simulations: int
    candidates: list                # (text, value) of every rollout, in order


def _puct(parent: Node, child: Node, c_puct: float) -> float:
    return child.q() + c_puct * child.prior * math.sqrt(parent.n) / (1 + child.n)


def mcts(engine: Engine, prompt, verifier: Callable, budget: int, params: Sampling, branch: int = 3,
         c_puct: float = 1.0, seed: int = 0) -> MCTSResult:
    if budget < 1 or branch < 1:
        raise ValueError(f"MCTS needs a budget and a branch factor of at least 1, got {budget} and {branch}")
    gen = torch.Generator().manual_seed(seed)
    calls0, cursor = engine.calls, Cursor(engine)
    context = engine.encode(prompt)
    root, candidates, sims = Node([]), [], 0

    def finished(ids) -> bool:
        return len(ids) >= params.max_new_tokens or cut_at_stop(engine.tokenizer.decode(ids), params.stop)[1]

    with torch.no_grad():
        while engine.calls - calls0 < budget:
            node, path = root, [root]
            while node.children:
                node = max(node.children, key=lambda c: _puct(path[-1], c, c_puct))
                path.append(node)
            ids = list(node.ids)
            if not node.terminal:
                logits = cursor.logits_after(context + ids, len(context) + len(ids) - 1)[-1]
                probs = next_token_probs(logits, 1.0, top_k=2 * branch)  # the model's own top candidates
                picks = torch.multinomial(probs, min(branch, int((probs > 0).sum())), replacement=False,
                                          generator=gen).tolist()
                total = float(probs[picks].sum())
                node.children = [Node(ids + [t], float(probs[t]) / total) for t in picks]
                for child in node.children:
                    child.terminal = finished(child.ids)
                ids.append(int(logits.argmax()))  # the greedy rollout starts from the expansion's logits
                while not finished(ids):
                    ids.append(int(cursor.logits_after(context + ids, len(context) + len(ids) - 1)[-1].argmax()))
            text = cut_at_stop(engine.tokenizer.decode(ids), params.stop)[0]
            value = float(verifier(text))
            candidates.append((text, value))
            for n in path:
                n.n += 1
                n.w += value
            sims += 1
    best_text, best_value = max(candidates, key=lambda c: c[1]) if candidates else (b"", 0.0)
    return MCTSResult(best_text, best_value, engine.calls - calls0, sims, candidates)
