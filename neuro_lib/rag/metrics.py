"""Retrieval and answer metrics.

Retrieval: Recall@k (the gold passage is among the top k) and MRR (mean of 1/rank of
the gold passage, 0 when it is not retrieved within the depth searched).
Answers: exact match and token F1 after SQuAD's normalisation (Rajpurkar et al. 2016:
lower case, punctuation and the articles a/an/the removed, whitespace collapsed), and
"holds the fact" (the outside sets' check, bench/outside.py): the gold occurs in the
answer, case, whitespace and backquotes ignored.

Tests: tests/test_rag.py (hand-computed cases).
"""
from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(pred: str, gold: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(gold))


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def fact_norm(text: str) -> str:
    return " ".join(str(text).replace("`", "").lower().split())


def holds_fact(pred: str, gold: str) -> bool:
    """The gold fact occurs in the answer (case, whitespace and backquotes ignored)."""
    return fact_norm(gold) in fact_norm(pred)


def gold_ranks(ranked: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """ranked (Q, depth) ids, gold (Q,) -> 1-based rank of the gold id per query (0 = not retrieved)."""
    hit = ranked == gold[:, None]
    return np.where(hit.any(1), hit.argmax(1) + 1, 0)


def recall_at(ranks: np.ndarray, k: int) -> float:
    return float(((ranks > 0) & (ranks <= k)).mean()) if len(ranks) else float("nan")


def mrr(ranks: np.ndarray) -> float:
    return float(np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0).mean()) if len(ranks) else float("nan")
