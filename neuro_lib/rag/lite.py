"""NanoRAG "lite": an extractive, rule-based reader, the floor any trained reader must beat.

Rules (seeds/nanorag.md describes nanorag_lite as rules plus retrieval; these are ours):
1. Take the top retrieved passage and pick its sentence sharing the most question words
   (stop words ignored; a word matches on its first five letters, so "returned"
   matches "Return"); the earlier sentence wins a tie.
2. In that sentence, the answer is the run of words absent from the question that sits
   next to the longest run of question (or stop) words, the clause the question
   restates; the nearer run wins, the left one on a tie. Without such runs, the whole
   sentence.

The answer cites the passage id and the exact byte span it copied.

    a = lite_answer(corpus.data, passage, "In posixpath, what is returned if the path is absolute?")
    a.text, a.citations   # "True", [{"passage_id": ..., "start": ..., "end": ...}]

Tests: tests/test_rag.py (the answer's cited bytes are the answer; rule 2 on examples).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from bm25s.stopwords import STOPWORDS_EN

from neuro_lib.rag.passages import Passage, sentences

_TOKEN = re.compile(rb"\S+")
_STRIP = b".,;:!?\"'()[]{}`"
STOP = frozenset(STOPWORDS_EN) | {"what", "which", "does", "do", "when"}  # + question words


@dataclass
class Answer:
    text: str
    citations: list[dict] = field(default_factory=list)  # {"passage_id", "start", "end"}: bytes of the corpus

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": self.citations}


def match_key(word: bytes | str) -> str:
    """A word's comparison key: lower case, punctuation stripped, first five letters."""
    w = word.encode() if isinstance(word, str) else word
    return w.strip(_STRIP).decode("utf-8", errors="replace").lower()[:5]


def question_keys(question: str) -> set[str]:
    return {match_key(w) for w in question.split() if w.strip(_STRIP.decode()).lower() not in STOP} - {""}


def best_sentence(data: bytes, passage: Passage, question: str) -> tuple[int, int]:
    """Byte span of the passage sentence sharing the most (non-stop) question words."""
    keys = question_keys(question)
    spans = sentences(data, passage.start, passage.end) or [(passage.start, passage.end)]
    scores = [len(keys & {match_key(w) for w in data[s:e].split()}) for s, e in spans]
    return spans[scores.index(max(scores))]


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """[start, end) index runs where flags is True."""
    runs, start = [], None
    for i, f in enumerate(flags + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            runs.append((start, i))
            start = None
    return runs


def extract_span(data: bytes, start: int, end: int, question: str) -> tuple[int, int]:
    """Rule 2: the byte span of the answer inside the sentence data[start:end]."""
    keys = question_keys(question)
    toks = [(m.start() + start, m.end() + start) for m in _TOKEN.finditer(data[start:end])]
    # a stop word counts as matched: "if the path is absolute" is one run of the restated clause
    seen = [match_key(data[s:e]) in keys or data[s:e].strip(_STRIP).lower().decode("utf-8", "replace") in STOP
            for s, e in toks]
    matched, novel = _runs(seen), _runs([not f for f in seen])
    if not matched or not novel:
        return start, end
    anchor = max(matched, key=lambda r: r[1] - r[0])

    def gap(r):
        return anchor[0] - r[1] if r[1] <= anchor[0] else r[0] - anchor[1] + 0.5  # left wins a tie
    lo, hi = min(novel, key=gap)
    s, e = toks[lo][0], toks[hi - 1][1]
    while e > s and data[e - 1:e] in (b".", b",", b";", b":", b")"):
        e -= 1
    return s, e


def lite_answer(data: bytes, passage: Passage, question: str) -> Answer:
    """Rules 1 and 2 on one passage (the top retrieved one)."""
    s, e = best_sentence(data, passage, question)
    a, b = extract_span(data, s, e, question)
    return Answer(data[a:b].decode("utf-8", errors="replace"),
                  [{"passage_id": passage.id, "start": a, "end": b}])
