"""Hybrid retrieval by reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009).

score(d) = sum over retrievers of 1 / (k + rank_r(d)), rank from 1, k = 60 as in the
paper; a document a retriever did not return within `depth` adds nothing from it. Only
ranks are fused, so BM25 scores and cosines need no calibration against each other.

    HybridRetriever([bm25, dense]).search(["which exception is raised if ..."], k=20)

Tests: tests/test_rag.py (a hand-computed fusion; ties broken by the first list).
"""
from __future__ import annotations

import numpy as np

RRF_K = 60


def rrf(rankings: list[np.ndarray], k: int, rrf_k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ranked id lists (each (depth,), best first) -> (top-k ids, fused scores), best first.
    Ties keep the order in which documents were first seen (first list first)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking.tolist(), start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    order = sorted(scores, key=lambda d: -scores[d])[:k]  # sorted() is stable: first-seen wins ties
    return np.asarray(order, dtype=np.int64), np.asarray([scores[d] for d in order], dtype=np.float32)


class HybridRetriever:
    name = "hybrid"

    def __init__(self, retrievers: list, depth: int = 100):
        self.retrievers, self.depth = retrievers, depth

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (doc indices (Q, k'), fused scores (Q, k')), best first; k' <= k when the lists are short."""
        depth = max(k, self.depth)
        lists = [r.search(queries, depth)[0] for r in self.retrievers]
        fused = [rrf([ids[i] for ids in lists], k) for i in range(len(queries))]
        width = min(len(f[0]) for f in fused) if fused else 0
        return (np.stack([f[0][:width] for f in fused]) if fused else np.zeros((0, 0), np.int64),
                np.stack([f[1][:width] for f in fused]) if fused else np.zeros((0, 0), np.float32))
