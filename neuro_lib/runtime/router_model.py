"""The trained router: a tiny multi-label classifier over hashed n-grams with a learned complexity
score (seeds/tinyllm.md "multi-dimensional routing", seeds/neurotiny.md "fast/slow path"), and the
random router it must beat.

    router = train_router(generate_queries(3000, seed=0), RouterConfig(), steps=300)
    route = router.route(Query("write a python function that returns 12 + 30"))
    route.path, route.skills, route.complexity, route.scores      # "slow", ["code", "math"], 0.97, {...}
    RandomRouter(seed=0).route(query)                            # the floor: same query -> same route
    cached_router(get_profile("smoke").tasks.router)             # `neuro run`'s: trained on first use, then loaded

The model (our own, ~0.3M parameters at the default sizes): a query is lower-cased and cut into words
(numbers become one "<num>" word), word unigrams and bigrams and character 3- and 4-grams (with word
boundaries) are hashed into `buckets` embedding rows and averaged (fastText's bag of n-grams,
Joulin et al. 2017); four counts the bag cannot see (numbers, operators, joining words, words) are
appended; a one-hidden-layer MLP maps that to one logit per skill and one "needs the slow path"
logit. Skills are independent sigmoids (multi-label, binary cross-entropy); the complexity score is
the slow logit's sigmoid, compared with `threshold` to pick the path. The predicted skills are those
with probability >= 0.5, most likely first, and always at least the top one.

Both routers follow the Router protocol (`route(query: Query) -> Route`, runtime/types.py).
Tests: tests/test_runtime_router.py.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuro_lib.errors import NeuroError
from neuro_lib.progress import Progress
from neuro_lib.runtime.types import SKILLS, Query, Route

WORD_RE = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")
JOINING = {"and", "then", "also", "after", "next", "plus", ";", "each"}
OPERATORS = {"+", "-", "*", "/", "="}


@dataclass
class RouterConfig:
    buckets: int = 1 << 14   # hashed n-gram vocabulary (rows of the embedding bag)
    d_embed: int = 16        # n-gram embedding width
    d_hidden: int = 64       # MLP hidden width
    lr: float = 1e-2
    batch_size: int = 64
    threshold: float = 0.5   # complexity >= threshold -> slow path


def _hash(s: str, buckets: int) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") % buckets


def featurize(text: str, buckets: int) -> tuple[list[int], list[float]]:
    """(hashed n-gram ids, dense counts) of one query."""
    words = ["<num>" if w.isdigit() else w for w in WORD_RE.findall(text.lower())]
    grams = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    for w in words:
        padded = f"<{w}>"
        grams += [f"c:{padded[i:i + n]}" for n in (3, 4) for i in range(len(padded) - n + 1)]
    ids = [_hash(g, buckets) for g in grams] or [0]
    counts = [words.count("<num>") / 5, sum(w in OPERATORS for w in words) / 4,
              sum(w in JOINING for w in words) / 2, len(words) / 20]
    return ids, counts


class RouterNet(nn.Module):
    def __init__(self, cfg: RouterConfig):
        super().__init__()
        self.bag = nn.EmbeddingBag(cfg.buckets, cfg.d_embed, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(cfg.d_embed + 4, cfg.d_hidden), nn.ReLU(),
                                 nn.Linear(cfg.d_hidden, len(SKILLS) + 1))

    def forward(self, ids, offsets, counts):
        # ids (N,) flat n-gram ids, offsets (B,) where each query's ids start, counts (B, 4)
        x = torch.cat([self.bag(ids, offsets), counts], dim=-1)  # (B, d_embed + 4)
        return self.mlp(x)                                       # (B, skills + 1): skill logits, slow logit


def _pack(feats: list[tuple[list[int], list[float]]]):
    ids = torch.tensor([i for f in feats for i in f[0]])
    offsets = torch.tensor([0] + [len(f[0]) for f in feats[:-1]]).cumsum(0)
    return ids, offsets, torch.tensor([f[1] for f in feats])


def targets(queries) -> torch.Tensor:
    """(B, skills + 1) multi-hot skills and the slow label."""
    return torch.tensor([[float(s in q.skills) for s in SKILLS] + [float(q.slow)] for q in queries])


class ClassifierRouter:
    name = "classifier"

    def __init__(self, net: RouterNet, cfg: RouterConfig):
        self.net, self.cfg = net.eval(), cfg

    @torch.no_grad()
    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """(B, skills + 1) skill probabilities and the complexity score."""
        return torch.sigmoid(self.net(*_pack([featurize(t, self.cfg.buckets) for t in texts])))

    def route_text(self, text: str, probs: torch.Tensor | None = None) -> Route:
        p = (self.probabilities([text])[0] if probs is None else probs).tolist()
        order = sorted(range(len(SKILLS)), key=lambda i: -p[i])
        skills = [SKILLS[i] for i in order if p[i] >= 0.5] or [SKILLS[order[0]]]
        complexity = p[-1]
        return Route("slow" if complexity >= self.cfg.threshold else "fast", skills, complexity,
                     {s: round(p[i], 4) for i, s in enumerate(SKILLS)}, self.name)

    def route(self, query: Query) -> Route:
        return self.route_text(query.text)

    def route_many(self, queries: list[Query]) -> list[Route]:
        """Batched routing (one forward pass): the same routes as route() one by one."""
        probs = self.probabilities([q.text for q in queries])
        return [self.route_text(q.text, p) for q, p in zip(queries, probs)]


def train_router(queries, cfg: RouterConfig | None = None, steps: int = 300, seed: int = 0) -> ClassifierRouter:
    """Train the classifier on labelled queries (data/queries.py) for `steps` Adam steps."""
    cfg = cfg or RouterConfig()
    if steps < 1 or not queries:
        raise NeuroError(f"training the router needs steps >= 1 and some queries, got {steps} steps, {len(queries)} queries")
    torch.manual_seed(seed)
    net = RouterNet(cfg)
    feats = [featurize(q.text, cfg.buckets) for q in queries]
    y = targets(queries)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with Progress(steps, desc="router", unit="step") as bar:
        for _ in range(steps):
            idx = torch.randint(len(queries), (min(cfg.batch_size, len(queries)),), generator=gen).tolist()
            loss = F.binary_cross_entropy_with_logits(net(*_pack([feats[i] for i in idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1, loss=round(loss.item(), 4))
    return ClassifierRouter(net, cfg)


def training_queries(sizes, seed: int = 0) -> list:
    """The classifier's training set under RouterSizes `sizes`: data/queries.py's templates and the experts'
    generators (runtime/tasks.py), train split. `neuro bench runtime` and cached_router train on the same."""
    from neuro_lib.data.queries import generate_queries
    from neuro_lib.runtime.tasks import router_examples

    return generate_queries(sizes.n_train, seed=seed) + router_examples(sizes.n_train // 2, seed, "train")


def cached_router(sizes, seed: int = 0, cache_dir=None, threshold: float | None = None) -> ClassifierRouter:
    """The classifier trained on training_queries(sizes, seed) for sizes.steps steps, cached like the experts
    under data/cache/runtime/router-<hash of sizes and seed>/ (safetensors + config): trained on first use, with
    one line on stderr saying what is trained and about how long, then loaded. `threshold` (the complexity at
    or above which the slow path is taken) is a setting of the returned router, not of the cached weights."""
    import json
    import sys
    from dataclasses import asdict, replace
    from pathlib import Path

    from safetensors.torch import load_model, save_model

    from neuro_lib.data.corpus import CACHE_DIR

    cfg = RouterConfig()
    key = json.dumps({"sizes": asdict(sizes), "seed": seed, "config": asdict(cfg)}, sort_keys=True)
    path = Path(cache_dir or CACHE_DIR / "runtime") / f"router-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    weights = path / "router.safetensors"
    if weights.exists():
        net = RouterNet(cfg)
        load_model(net, str(weights))
        return ClassifierRouter(net, cfg if threshold is None else replace(cfg, threshold=threshold))
    print(f"[router] training the router classifier on first use ({sizes.n_train + sizes.n_train // 2} queries, "
          f"{sizes.steps} steps, a few seconds); cached in {path}", file=sys.stderr, flush=True)
    router = train_router(training_queries(sizes, seed), cfg, steps=sizes.steps, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f"router.{id(router)}.tmp"
    save_model(router.net, str(tmp))
    (path / "config.json").write_text(key)
    tmp.replace(weights)  # the weights file appears complete or not at all (two processes may race)
    return router if threshold is None else ClassifierRouter(router.net, replace(cfg, threshold=threshold))


class RandomRouter:
    """Skills and complexity drawn at random, reproducibly: the draw depends on (seed, query text) only,
    so the same query gets the same route in any order. One skill uniformly, a second with
    probability `p_second`; complexity uniform in [0, 1)."""
    name = "random"

    def __init__(self, seed: int = 0, threshold: float = 0.5, p_second: float = 0.3):
        self.seed, self.threshold, self.p_second = seed, threshold, p_second

    def route(self, query: Query) -> Route:
        rng = random.Random(f"{self.seed}:{query.text}")
        skills = [rng.choice(SKILLS)]
        if rng.random() < self.p_second:
            skills.append(rng.choice([s for s in SKILLS if s != skills[0]]))
        complexity = rng.random()
        return Route("slow" if complexity >= self.threshold else "fast", skills, complexity,
                     {s: float(s in skills) for s in SKILLS}, self.name)
