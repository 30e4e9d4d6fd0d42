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

`extract="sentence"` stops after rule 1 for questions that do not restate a clause ("What does heapq.heappop
return?"): the answer is the best sentence itself (sentences never cross a paragraph break there), or, when
that sentence is longer than MAX_ANSWER_BYTES, its clause (cut at , ; :) sharing the most question words, cut
at a word boundary if still too long: always a short extract, never a passage. Its text is the cited bytes with
whitespace collapsed (a docstring's line breaks and indentation).

    a = lite_answer(corpus.data, passage, "In posixpath, what is returned if the path is absolute?")
    a.text, a.citations   # "True", [{"passage_id": ..., "start": ..., "end": ...}]

Tests: tests/test_rag.py (the answer's cited bytes are the answer; rule 2 on examples).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from bm25s.stopwords import STOPWORDS_EN

from neuro_lib.rag.passages import Passage, object_name, paragraphs, sentences

_TOKEN = re.compile(rb"\S+")
_STRIP = b".,;:!?\"'()[]{}`"
STOP = frozenset(STOPWORDS_EN) | {"what", "which", "does", "do", "when"}  # + question words
EXTRACTS = ("span", "sentence")
MAX_ANSWER_BYTES = 240  # a sentence mode answer longer than this is cut to a clause
_CLAUSE_END = re.compile(rb"[,;:](?=\s)")


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
    return _best(data, sentences(data, passage.start, passage.end) or [(passage.start, passage.end)],
                 question_keys(question))


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


def _best(data: bytes, spans: list[tuple[int, int]], keys: set[str]) -> tuple[int, int]:
    """The span sharing the most question keys; the earlier one on a tie."""
    scores = [len(keys & {match_key(w) for w in data[s:e].split()}) for s, e in spans]
    return spans[scores.index(max(scores))]


def clause(data: bytes, start: int, end: int, question: str, max_bytes: int = MAX_ANSWER_BYTES) -> tuple[int, int]:
    """data[start:end] if short enough, else its clause sharing the most question words, cut to max_bytes at a
    word boundary (never inside a UTF-8 character)."""
    if end - start <= max_bytes:
        return start, end
    cuts = [start] + [m.end() for m in _CLAUSE_END.finditer(data, start, end)] + [end]
    spans = [(a + len(data[a:b]) - len(data[a:b].lstrip()), b) for a, b in zip(cuts, cuts[1:])]
    s, e = _best(data, [x for x in spans if x[1] > x[0]] or [(start, end)], question_keys(question))
    if e - s > max_bytes:
        cut = data.rfind(b" ", s + 1, s + max_bytes)
        e = cut if cut > s else s + max_bytes
        while e > s and e < len(data) and data[e] & 0xC0 == 0x80:
            e -= 1
    while e > s and data[e - 1:e] in (b",", b";", b":", b" ", b"\n"):
        e -= 1
    return s, e


def best_passage_sentence(data: bytes, passage: Passage, question: str) -> tuple[int, int]:
    """Rule 1 over the passage's sentences, none crossing a paragraph break; a titled passage's signature line
    ("capwords(s [,sep]) -> string", an old docstring's first line) is not a sentence."""
    spans = [x for a, b in paragraphs(data, passage.start, passage.end) for x in sentences(data, a, b)]
    if passage.title:
        call = (object_name(passage.title).rsplit(".", 1)[-1] + "(").encode()
        spans = [(s, e) for s, e in spans if not data[s:e].lstrip().startswith(call)] or spans
    return _best(data, spans or [(passage.start, passage.end)], question_keys(question))


def lite_answer(data: bytes, passage: Passage, question: str, extract: str = "span") -> Answer:
    """Rules 1 and 2 on one passage (the top retrieved one); extract="sentence": rule 1 only, a short extract."""
    if extract not in EXTRACTS:
        raise ValueError(f"unknown extract {extract!r}; known: {EXTRACTS}")
    if extract == "sentence":
        a, b = clause(data, *best_passage_sentence(data, passage, question), question)
        a += len(data[a:b]) - len(data[a:b].lstrip())  # a docstring's indentation is not part of the answer
        return Answer(" ".join(data[a:b].decode("utf-8", errors="replace").split()),
                      [{"passage_id": passage.id, "start": a, "end": b}])
    s, e = best_sentence(data, passage, question)
    a, b = extract_span(data, s, e, question)
    return Answer(data[a:b].decode("utf-8", errors="replace"),
                  [{"passage_id": passage.id, "start": a, "end": b}])
