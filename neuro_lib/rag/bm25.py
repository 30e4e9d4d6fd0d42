"""BM25 retrieval with the `bm25s` package (sparse-matrix BM25, Lucene scoring).

A passage is indexed as "{section}\n{text}" (and its title, where it has one), so a question
that names its module matches the module's passages. English stop words are dropped, no
stemming. Two tokenizers: "words" (bm25s's own: words of two or more letters) and "names"
(rag/names.py's name_tokens: dotted and underscored names split and kept whole), recorded
beside bm25s's files so a reloaded index tokenizes its questions as it was built.

    r = BM25Retriever.build(docs); ids, scores = r.search(["what does json.loads raise"], k=5)
    r.save(dir); BM25Retriever.load(dir)

Tests: tests/test_rag.py (scores agree with a direct BM25 formula on a toy corpus).
"""
from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np

from neuro_lib.rag.names import name_tokens

STOPWORDS = "en"
TOKENIZERS = ("words", "names")


def _tokens(texts: list[str]):
    return bm25s.tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


class BM25Retriever:
    name = "bm25"

    def __init__(self, model: bm25s.BM25, n_docs: int, tokenizer: str = "words"):
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown BM25 tokenizer {tokenizer!r}; known: {TOKENIZERS}")
        self.model, self.n_docs, self.tokenizer = model, n_docs, tokenizer

    @classmethod
    def build(cls, docs: list[str], k1: float = 1.5, b: float = 0.75, tokenizer: str = "words") -> "BM25Retriever":
        model = bm25s.BM25(k1=k1, b=b)
        if tokenizer == "names":
            model.index([name_tokens(d) for d in docs], show_progress=False)
        else:
            model.index(bm25s.tokenize(docs, stopwords=STOPWORDS, show_progress=False), show_progress=False)
        return cls(model, len(docs), tokenizer)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every document for one query (words the index lacks score nothing)."""
        vocab = self.model.vocab_dict
        words = name_tokens(query) if self.tokenizer == "names" else _tokens([query])[0]
        ids = [vocab[t] for t in words if t in vocab]
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (doc indices (Q, k), scores (Q, k)), best first (ties: the earlier document)."""
        k = min(k, self.n_docs)
        if self.tokenizer == "names":
            rows = [self.scores(q) for q in queries]
            ids = np.stack([np.argsort(-r, kind="stable")[:k] for r in rows])
            return ids.astype(np.int64), np.stack([r[i] for r, i in zip(rows, ids)]).astype(np.float32)
        res = self.model.retrieve(_tokens(queries), k=k, show_progress=False, n_threads=1)
        return np.asarray(res.documents, dtype=np.int64), np.asarray(res.scores, dtype=np.float32)

    def save(self, path) -> None:
        self.model.save(str(path), show_progress=False)
        (Path(path) / "neuro_tokenizer.json").write_text(json.dumps({"tokenizer": self.tokenizer}))

    @classmethod
    def load(cls, path, n_docs: int) -> "BM25Retriever":
        spec = Path(path) / "neuro_tokenizer.json"  # absent in indexes built before the "names" tokenizer
        tokenizer = json.loads(spec.read_text())["tokenizer"] if spec.is_file() else "words"
        return cls(bm25s.BM25.load(str(Path(path)), show_progress=False), n_docs, tokenizer)
