"""BM25 retrieval with the `bm25s` package (sparse-matrix BM25, Lucene scoring).

A passage is indexed as "{section}\n{text}", so a question that names its module
matches the module's passages. English stop words are dropped, no stemming.

    r = BM25Retriever.build(docs); ids, scores = r.search(["what does json.loads raise"], k=5)
    r.save(dir); BM25Retriever.load(dir)

Tests: tests/test_rag.py (scores agree with a direct BM25 formula on a toy corpus).
"""
from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

STOPWORDS = "en"


def _tokens(texts: list[str]):
    return bm25s.tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


class BM25Retriever:
    name = "bm25"

    def __init__(self, model: bm25s.BM25, n_docs: int):
        self.model, self.n_docs = model, n_docs

    @classmethod
    def build(cls, docs: list[str], k1: float = 1.5, b: float = 0.75) -> "BM25Retriever":
        model = bm25s.BM25(k1=k1, b=b)
        model.index(bm25s.tokenize(docs, stopwords=STOPWORDS, show_progress=False), show_progress=False)
        return cls(model, len(docs))

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (doc indices (Q, k), scores (Q, k)), best first."""
        k = min(k, self.n_docs)
        res = self.model.retrieve(_tokens(queries), k=k, show_progress=False, n_threads=1)
        return np.asarray(res.documents, dtype=np.int64), np.asarray(res.scores, dtype=np.float32)

    def save(self, path) -> None:
        self.model.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path, n_docs: int) -> "BM25Retriever":
        return cls(bm25s.BM25.load(str(Path(path)), show_progress=False), n_docs)
