"""Retrieval by name: questions that name a function (`heapq.heappop`) find the passage documenting it.

Three parts, for corpora whose passages carry a title (rag/passages.py's `stdlib-api`; on any other corpus the
table is empty and the "names" retriever ranks as BM25 does):

- `name_tokens`: BM25's tokens for both questions and passages, splitting dotted and underscored names while
  keeping them whole too: "os.path.splitext" -> os, path, splitext, os.path.splitext; "raw_decode" -> raw,
  decode, raw_decode. Lower case, English stop words dropped (bm25s's list), words of one letter dropped.
- `question_names`: the dotted names a question holds ("What does heapq.heappop return?" -> heapq.heappop) and
  identifiers in backquotes; `os.path` is read as `posixpath`, the module os.path is on POSIX (os.py imports
  posixpath as path; the corpus documents it under that name).
- `NameTable.lookup(name)`: the passages whose object the name names, by how closely: 3 the qualified name
  itself; 2 a dotted tail of it ("Counter.most_common" -> collections.Counter.most_common); 1 the same last name
  in the named module or a submodule of it ("random.randint" -> random.Random.randint, the bound method the
  module exports; "concurrent.futures.ThreadPoolExecutor" -> concurrent.futures.thread.ThreadPoolExecutor), or
  any object of that name for a bare one (`heappop`).
  `NameTable.documents(name)` says whether the corpus documents a name's module at all (rag/ask.py refuses a
  question whose named objects the corpus lacks).

`NamedRetriever` ranks passages by name level, then by the BM25 score of the question's other words (the name
chose the object, the other words choose among its passages; on a tie the earlier passage, the docstring's
opening), then document order; the scores it returns are each passage's BM25 score for the whole question.

    table = NameTable(index.passages); table.lookup("heapq.heappop")   # {passage index: 3, ...}
    ids, scores = NamedRetriever(index.bm25, table).search(["What does heapq.heappop return?"], 5)

Tests: tests/test_rag_names.py.
"""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from neuro_lib.rag.passages import Passage, object_name

_WORD = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # a dotted name: heapq.heappop
_TICKED = re.compile(r"`([A-Za-z_][\w.]*)")                        # `heappop`, `heapq.heappop(...)`
_STOP = frozenset(STOPWORDS_EN)
ALIASES = {"os.path": "posixpath"}  # a module documented under another name on this platform


def name_tokens(text: str) -> list[str]:
    """BM25 tokens: words, and each dotted/underscored name both whole and in its parts."""
    out = []
    for m in _WORD.finditer(text.lower()):
        w = m.group().strip("._")
        parts = [p for p in re.split(r"[._]", w) if len(p) > 1 and p not in _STOP]
        out += parts
        if len(parts) > 1 or (w not in parts and len(w) > 1 and w not in _STOP):
            out.append(w)
        if "." in w:  # an underscored piece of a dotted name whole too: json.decoder.raw_decode -> raw_decode
            out += [p for p in w.split(".") if "_" in p.strip("_")]
    return out


def _alias(name: str) -> str:
    for short, real in ALIASES.items():
        if name == short or name.startswith(short + "."):
            return real + name[len(short):]
    return name


def question_names(question: str) -> list[str]:
    """Dotted names and backquoted identifiers in the question, in order, aliases applied, each once."""
    found = [m.group() for m in _NAME.finditer(question)] + [m.group(1) for m in _TICKED.finditer(question)]
    out = []
    for n in found:
        n = _alias(n.strip("."))
        if any(len(p) > 1 for p in n.split(".")) and n not in out:  # "e.g" names nothing
            out.append(n)
    return out


def _without_names(question: str) -> str:
    return _TICKED.sub(" ", _NAME.sub(" ", question))


class NameTable:
    """Qualified names of the titled passages, for lookups by a name a question uses."""

    def __init__(self, passages: list[Passage]):
        self.by_last: dict[str, list[tuple[int, str, str]]] = defaultdict(list)  # last part -> (i, qualname, module)
        self.modules: set[str] = set()
        for i, p in enumerate(passages):
            if p.title:
                name = object_name(p.title)
                self.by_last[name.rsplit(".", 1)[-1]].append((i, name, p.section))
                self.modules.add(p.section)
        self.roots = {m.split(".")[0] for m in self.modules}

    def __bool__(self) -> bool:
        return bool(self.modules)

    def lookup(self, name: str) -> dict[int, int]:
        """{passage index: level} of the passages documenting `name` (3 exact, 2 dotted tail, 1 same last name in
        the named module or a submodule of it); empty when none does."""
        prefix, _, last = name.rpartition(".")
        out = {}
        for i, qual, module in self.by_last.get(last, ()):
            if qual == name:
                level = 3
            elif "." in name and qual.endswith("." + name):
                level = 2
            elif not prefix or module == prefix or module.startswith(prefix + ".") or qual.startswith(prefix + "."):
                level = 1  # a bare name (`heappop`) names every object of that name
            else:
                continue
            out[i] = max(level, out.get(i, 0))
        return out

    def documents(self, name: str) -> bool:
        """Does the corpus document the module a dotted name starts with (heapq for heapq.nope; not math)?"""
        return name.split(".")[0] in self.roots


class NamedRetriever:
    """BM25 over name tokens, passages of the objects a question names first (by level, then the BM25 score of
    the question's other words)."""
    name = "names"

    def __init__(self, bm25, table: NameTable):
        self.bm25, self.table = bm25, table

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (passage indices (Q, k), BM25 scores of the whole question (Q, k)), named passages first."""
        ids, scores = self.bm25.search(queries, k)
        if not self.table:
            return ids, scores
        out_ids, out_scores = [], []
        for q, row_ids, row_scores in zip(queries, ids, scores):
            levels: dict[int, int] = {}
            for n in question_names(q):
                for i, lv in self.table.lookup(n).items():
                    levels[i] = max(lv, levels.get(i, 0))
            if not levels:
                out_ids.append(row_ids)
                out_scores.append(row_scores)
                continue
            named = np.fromiter(levels, dtype=np.int64)
            full = self.bm25.scores(q)
            rest = self.bm25.scores(_without_names(q))  # the name chose the object; the other words, its piece
            cand = np.unique(np.concatenate([named, row_ids]))
            lv = np.array([levels.get(int(i), 0) for i in cand])
            order = np.lexsort((cand, -rest[cand], -lv))[:len(row_ids)]  # level, rest score, document order
            out_ids.append(cand[order])
            out_scores.append(full[cand[order]].astype(np.float32))
        return np.stack(out_ids), np.stack(out_scores)
