"""Synthetic tasks on which an Aeron enhancement module should help (issue 16, `neuro bench aeron-modules`).

Each is a seq2seq problem with a one-token answer: the encoder reads `src`, the decoder reads [BOS]
and must emit the answer. Ids share one small vocabulary (VOCAB); batches are dicts the models'
`compute_loss` takes: src (B, S), src_mask (B, S) bool, tokens (B, 1), targets (B, 1), plus what a task
adds. Everything is a pure function of its seed.

- Variable chains (reasoning): "a = 3 ; b = a ; c = b" and a distractor chain, statements shuffled,
  then "? c": the answer needs every intermediate binding (depth 1..max_depth lookups).
      chain_batch(rng, 64, max_depth=4) -> batch with "depth" (B,)
      chain_batch(rng, 64, depth_cap(frac, 4, ramp=0.5))   # the depth curriculum at budget share frac
      chain_batch(rng, 64, 4, split="train", ask="decoder")  # issue 26's layout: held-out problems never
                                                          # trained on, and the question fed to the decoder too
- Episodic facts: an episode of `n_facts` facts "k1 k2 = v" (fresh random names and digits), then a
  question "k1 k2 ?" about one of them; the question's context window holds only the last `window`
  facts, so the others must come from memory. "facts" (B, n_facts, 4) are the earlier episode.
      facts_batch(rng, 64, n_facts=8, window=2)
      facts_batch(rng, 64, facts_cap(frac, 8, start=2, ramp=0.5), window=0)   # the curriculum at share frac
- Knowledge-graph questions: a fixed random graph (every entity has one tail per relation); the
  question "e r ?" asks for the tail. A share of (entity, relation) pairs is held out of training, so
  answering them needs the graph, given with the input as "entities" (B, M, 3) triples: the question
  entity's own triples plus another entity's (distractors). In training a share of rows is about a
  fresh random graph (`fresh`), so reading the triples pays; evaluation asks the fixed graph.
      g = KnowledgeGraph(seed=0, n_entities=48, n_relations=4)
      kg_batch(rng, g, 64, split="train", fresh=0.5)

Tests: tests/test_aeron_modules.py.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import torch

PAD, BOS, ASK, EQ = range(4)
DIGIT0 = 4                        # digits 0-9
NAME0 = DIGIT0 + 10               # variable / fact names: 16 symbols
N_NAMES = 16
REL0 = NAME0 + N_NAMES            # KG relation tokens
N_REL_TOKENS = 8
ENT0 = REL0 + N_REL_TOKENS        # KG entity tokens
N_ENT_TOKENS = 64
VOCAB = ENT0 + N_ENT_TOKENS       # 102


def _answer_batch(src: list[list[int]], answers: list[int]) -> dict:
    S = max(len(s) for s in src)
    ids = torch.tensor([s + [PAD] * (S - len(s)) for s in src])
    return {"src": ids, "src_mask": ids != PAD, "tokens": torch.full((len(src), 1), BOS),
            "targets": torch.tensor(answers)[:, None]}


# -- variable chains ---------------------------------------------------------------------------
# variable names of the chains: the 16 name symbols, or ("wide") those and the 64 entity symbols, which the chains
# task does not otherwise use: 80 names make depth-1 problems too many to learn by heart (16 names give 21,600)
CHAIN_NAMES = {"narrow": list(range(NAME0, NAME0 + N_NAMES)),
               "wide": list(range(NAME0, NAME0 + N_NAMES)) + list(range(ENT0, ENT0 + N_ENT_TOKENS))}


def chain_problem(rng: random.Random, depth: int, chains: int = 2, names: str = "narrow") -> tuple[list[int], int]:
    """`chains` chains (each ending in its own digit) of `depth` assignments "a = 3 ; b = a ; c = b", statements
    shuffled, and the question "? c" about the end of one -> (src ids, answer id). Following the chain takes
    `depth` lookups; the other chains are the distractors (chance 1 / chains)."""
    pool = CHAIN_NAMES[names]
    ids = rng.sample(pool, chains * depth) if names == "wide" else [NAME0 + i for i in rng.sample(range(N_NAMES), chains * depth)]
    digits = rng.sample(range(10), chains)
    stmts = []
    for c in range(chains):
        chain = ids[c * depth:(c + 1) * depth]
        stmts.append([chain[0], EQ, DIGIT0 + digits[c]])
        stmts += [[chain[i], EQ, chain[i - 1]] for i in range(1, depth)]
    rng.shuffle(stmts)
    q = rng.randrange(chains)
    return [t for st in stmts for t in st] + [ASK, ids[q * depth + depth - 1]], DIGIT0 + digits[q]


def depth_cap(frac: float, max_depth: int, ramp: float) -> int:
    """The depth curriculum: the deepest chain drawn once a share `frac` of the training budget is spent.
    Depth 1 only at the start, one more level every ramp / max_depth of the budget, all of 1..max_depth
    from `ramp` on (ramp = 0: no curriculum)."""
    if not 0.0 <= ramp <= 1.0:
        raise ValueError(f"ramp must be in [0, 1], got {ramp}")
    if ramp == 0.0:
        return max_depth
    return min(max_depth, 1 + int(frac / ramp * max_depth))


HELD_OUT = 8   # one problem in HELD_OUT (by a hash of its content) is the "test" split, never trained on


def chain_split(src: list[int]) -> str:
    """"train" or "test": a stable hash of the problem's content (its statements as a set, and the question),
    so the same problem with its statements in another order falls in the same split."""
    stmts = sorted(tuple(src[i:i + 3]) for i in range(0, len(src) - 2, 3))
    key = bytes([t for st in stmts for t in st] + src[-2:])
    return "test" if zlib.crc32(key) % HELD_OUT == 0 else "train"


def chain_batch(rng: random.Random, batch_size: int, max_depth: int = 4, depth: int | None = None,
                split: str | None = None, ask: str = "src", chains: int = 2, names: str = "narrow") -> dict:
    """Depths uniform in 1..max_depth (or all `depth`) -> batch with "depth" (B,).
    `split`: None draws any problem (the first record's); "train" / "test" redraws until the problem falls in
    that split (chain_split), so the two never share a problem. `ask`: "src" puts the question in the source
    only (the decoder reads [BOS]: tokens and targets (B, 1)); "decoder" also feeds it to the decoder,
    tokens [BOS, ASK, name] (B, 3), the answer at the last position (targets (B, 3), "loss_mask" on the last),
    so the decoder's own cross-attention can look the name up."""
    if names not in CHAIN_NAMES:
        raise ValueError(f"names must be one of {', '.join(CHAIN_NAMES)}, got {names!r}")
    n_names = len(CHAIN_NAMES[names])
    if not 2 <= chains <= 10 or not 1 <= (depth or max_depth) <= n_names // chains:
        raise ValueError(f"need 2 <= chains <= 10 and depth in 1..{n_names // max(chains, 1)}, got chains={chains}")
    if split not in (None, "train", "test") or ask not in ("src", "decoder"):
        raise ValueError(f"split must be None, 'train' or 'test' and ask 'src' or 'decoder', got {split!r}, {ask!r}")
    depths = [depth or rng.randint(1, max_depth) for _ in range(batch_size)]
    probs = []
    for d in depths:
        p = chain_problem(rng, d, chains, names)
        while split is not None and chain_split(p[0]) != split:
            p = chain_problem(rng, d, chains, names)
        probs.append(p)
    batch = _answer_batch([p[0] for p in probs], [p[1] for p in probs])
    if ask == "decoder":
        asked = torch.tensor([p[0][-1] for p in probs])                           # (B,) the name asked for
        batch["tokens"] = torch.stack([torch.full_like(asked, BOS), torch.full_like(asked, ASK), asked], 1)
        batch["targets"] = batch["targets"].expand(-1, 3).clone()                 # (B, 3); only the last is scored
        batch["loss_mask"] = torch.tensor([[False, False, True]]).expand(len(probs), -1).clone()
    batch["depth"] = torch.tensor(depths)
    return batch


# -- episodic facts ----------------------------------------------------------------------------
def facts_batch(rng: random.Random, batch_size: int, n_facts: int = 8, window: int = 2) -> dict:
    """Episodes of n_facts facts; the question sees the last `window` facts -> batch with "facts"
    (B, n_facts, 4), "asked" (B,) the index of the fact asked for, "in_window" (B,) bool (was the asked fact
    in the context window)."""
    if not 0 <= window <= n_facts or n_facts > N_NAMES * N_NAMES:
        raise ValueError(f"need 0 <= window <= n_facts <= {N_NAMES * N_NAMES}, got window={window}, n_facts={n_facts}")
    facts, src, answers, seen, asked = [], [], [], [], []
    for _ in range(batch_size):
        keys = rng.sample(range(N_NAMES * N_NAMES), n_facts)
        ep = [[NAME0 + k // N_NAMES, NAME0 + k % N_NAMES, EQ, DIGIT0 + rng.randrange(10)] for k in keys]
        q = rng.randrange(n_facts)
        context = [t for f in ep[n_facts - window:] for t in f]
        facts.append(ep)
        src.append(context + ep[q][:2] + [ASK])
        answers.append(ep[q][3])
        seen.append(q >= n_facts - window)
        asked.append(q)
    batch = _answer_batch(src, answers)
    batch["facts"] = torch.tensor(facts)
    batch["in_window"] = torch.tensor(seen)
    batch["asked"] = torch.tensor(asked)
    return batch


def facts_cap(frac: float, n_facts: int, start: int, ramp: float) -> int:
    """The episode-length curriculum: facts per episode once a share `frac` of the budget is spent, from
    `start` up to `n_facts` linearly over the first `ramp` of the budget (ramp = 0: n_facts throughout)."""
    if not 0.0 <= ramp <= 1.0 or not 1 <= start <= n_facts:
        raise ValueError(f"need ramp in [0, 1] and 1 <= start <= n_facts, got ramp={ramp}, start={start}")
    if ramp == 0.0:
        return n_facts
    return min(n_facts, start + int(frac / ramp * (n_facts - start + 1)))


# -- knowledge graph ---------------------------------------------------------------------------
@dataclass
class KnowledgeGraph:
    seed: int = 0
    n_entities: int = 48
    n_relations: int = 4
    heldout: float = 0.25          # share of (entity, relation) questions never trained on

    def __post_init__(self):
        if not (2 <= self.n_entities <= N_ENT_TOKENS and 1 <= self.n_relations <= N_REL_TOKENS):
            raise ValueError(f"n_entities must be in 2..{N_ENT_TOKENS}, n_relations in 1..{N_REL_TOKENS}")
        rng = random.Random(self.seed)
        self.tail = [[rng.randrange(self.n_entities) for _ in range(self.n_relations)]
                     for _ in range(self.n_entities)]
        pairs = [(e, r) for e in range(self.n_entities) for r in range(self.n_relations)]
        rng.shuffle(pairs)
        cut = int(round(len(pairs) * self.heldout))
        self.split = {"test": pairs[:cut], "train": pairs[cut:]}

    def triples(self, e: int) -> list[list[int]]:
        return [[e, r, self.tail[e][r]] for r in range(self.n_relations)]


def kg_batch(rng: random.Random, graph: KnowledgeGraph, batch_size: int, split: str = "train",
             distractors: int = 1, fresh: float = 0.0) -> dict:
    """Questions "e r ?" from `split` -> batch with "entities" (B, (1 + distractors) * R, 3), the question
    entity's triples and `distractors` other entities', shuffled. A `fresh` share of rows asks about a
    fresh random graph instead (new tails for every entity in that row): only its triples can answer,
    which is what makes reading the graph pay in training when the fixed graph could be learnt by heart."""
    pairs = graph.split[split]
    src, answers, triples = [], [], []
    for _ in range(batch_size):
        e, r = rng.choice(pairs)
        others = rng.sample([x for x in range(graph.n_entities) if x != e], distractors)
        if rng.random() < fresh:
            tail = {x: [rng.randrange(graph.n_entities) for _ in range(graph.n_relations)] for x in [e, *others]}
        else:
            tail = {x: graph.tail[x] for x in [e, *others]}
        t = [[x, q, tail[x][q]] for x in [e, *others] for q in range(graph.n_relations)]
        rng.shuffle(t)
        src.append([ENT0 + e, REL0 + r, ASK])
        answers.append(ENT0 + tail[e][r])
        triples.append(t)
    batch = _answer_batch(src, answers)
    batch["entities"] = torch.tensor(triples)
    return batch
