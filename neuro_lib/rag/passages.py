"""Passages: a corpus cut into retrievable chunks with stable ids and byte offsets.

A corpus is first split into sections (for `stdlib-docs`: one per pydoc topic or stdlib
module, the headings `build_stdlib_docs` writes; for `text:PATH`: short one-line
paragraphs read as headings), then each section's paragraphs are packed greedily into
chunks of at most `max_bytes` (a longer paragraph is cut at sentence ends, or at
whitespace as a last resort). A passage's id is `"{section}#{n}"` (the n-th chunk of that
section), so ids do not change when another section changes; `start`/`end` are byte
offsets into `corpus.data`, so every answer can cite the exact bytes it came from.

The `stdlib-api` corpus (data/apidocs.py) is cut by what it documents instead: a section per module, one
passage per documented object (its docstring, cut into several only when longer than `max_bytes`), with the
object's heading as the passage's `title` ("heapq.heappop(heap)") and id `"{qualified name}#{n}"`; the span is
the docstring, the title is what the retrievers index beside it (the heading line sits just before the span).

    passages = chunk_corpus(load_corpus("stdlib-docs"), max_bytes=600)
    passages[0].id, passages[0].start, passages[0].end, passages[0].text(corpus.data)

Tests: tests/test_rag.py (offsets round-trip, ids are unique and stable).
"""
from __future__ import annotations

import re
import sysconfig
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from neuro_lib.data.corpus import Corpus

_PARA = re.compile(rb"\n[ \t]*\n+")                 # blank line(s) between paragraphs
_SENT_END = re.compile(rb"(?<=[.!?])[\"')\]]?\s+")   # a sentence ends at . ! ? (+ closing quote) and whitespace
_HEADING = re.compile(rb"[^\n]{1,80}")             # text:PATH heading: one short line ...
_MODULE = re.compile(rb"[A-Za-z_][\w.\-]*")         # stdlib-docs heading: a topic or dotted module name
_API_HEAD = re.compile(rb"^(?=\S)[^\n]+", re.M)       # stdlib-api: a heading is any line at column 0
API_SPEC = "stdlib-api"


@dataclass(frozen=True)
class Passage:
    id: str        # "{section}#{n}"
    section: str   # module / topic / heading the passage belongs to (the held-out split is by section)
    start: int     # byte offsets into corpus.data: data[start:end] is the passage
    end: int
    title: str = ""  # stdlib-api: the heading of the object documented ("heapq.heappop(heap)"); else empty

    def text(self, data: bytes) -> str:
        return data[self.start:self.end].decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return asdict(self)


def object_name(title: str) -> str:
    """The qualified name in a heading: "class json.JSONDecoder(object)" -> "json.JSONDecoder"."""
    return title.removeprefix("class ").split("(", 1)[0].split(" ", 1)[0]


@lru_cache(maxsize=1)
def _stdlib_headings() -> frozenset[bytes]:
    """Every heading build_stdlib_docs can write: pydoc topic names and stdlib module names."""
    import pydoc_data.topics

    root = Path(sysconfig.get_paths()["stdlib"])
    mods = {".".join(p.relative_to(root).with_suffix("").parts) for p in root.rglob("*.py")}
    return frozenset(n.encode() for n in [*pydoc_data.topics.topics, *mods])


def paragraphs(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Byte spans of the non-blank paragraphs of data[start:end]."""
    end = len(data) if end is None else end
    spans, pos = [], start
    for m in _PARA.finditer(data, start, end):
        if data[pos:m.start()].strip():
            spans.append((pos, m.start()))
        pos = m.end()
    if data[pos:end].strip():
        spans.append((pos, end))
    return spans


def sentences(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Byte spans of the sentences of data[start:end] (trailing whitespace excluded)."""
    spans, pos = [], start
    for m in _SENT_END.finditer(data, start, end):
        spans.append((pos, m.start() + len(m.group().rstrip())))
        pos = m.end()
    spans.append((pos, pos + len(data[pos:end].rstrip())))
    return [s for s in spans if s[1] > s[0]]


def api_entries(data: bytes) -> list[tuple[str, str, int, int]]:
    """(module, heading, body start, body end) for each heading of a stdlib-api text; a module's name line (a
    bare dotted name) opens its section and heads the module docstring."""
    heads = list(_API_HEAD.finditer(data))
    out, module = [], "(preamble)"
    for i, m in enumerate(heads):
        head = m.group().decode("utf-8", errors="replace").rstrip()
        if _MODULE.fullmatch(m.group().rstrip()) and b"-" not in m.group():
            module = head
        end = heads[i + 1].start() if i + 1 < len(heads) else len(data)
        body_start = min(m.end() + 1, end)
        out.append((module, head, body_start, body_start + len(data[body_start:end].rstrip())))
    return out


def sections(corpus: Corpus) -> list[tuple[str, int, int]]:
    """(name, body start, body end) for each section; text before the first heading is section "(preamble)"."""
    data = corpus.data
    if corpus.spec == API_SPEC:  # a module: from its first entry's body to the last entry's end
        out: list[tuple[str, int, int]] = []
        for module, _, s, e in api_entries(data):
            if out and out[-1][0] == module:
                out[-1] = (module, out[-1][1], e)
            else:
                out.append((module, s, e))
        return [(n, s, e) for n, s, e in out if data[s:e].strip()]
    paras = paragraphs(data)
    if corpus.spec == "stdlib-docs":
        names = _stdlib_headings()
        is_heading = [data[s:e] in names and _MODULE.fullmatch(data[s:e]) is not None for s, e in paras]
    else:  # a short single line without sentence punctuation at its end
        is_heading = [_HEADING.fullmatch(data[s:e].strip()) is not None and not data[s:e].rstrip().endswith(
            (b".", b",", b";", b":", b"?", b"!")) for s, e in paras]
    out, name, body_start = [], "(preamble)", paras[0][0] if paras else 0
    for (s, e), head in zip(paras, is_heading):
        if head:
            if s > body_start:
                out.append((name, body_start, s))
            name, body_start = data[s:e].strip().decode("utf-8", errors="replace"), e
    out.append((name, body_start, len(data)))
    return [(n, s, e) for n, s, e in out if data[s:e].strip()]


def _pieces(data: bytes, start: int, end: int, max_bytes: int) -> list[tuple[int, int]]:
    """A paragraph cut into spans of at most max_bytes: at sentence ends, else at whitespace, else hard."""
    if end - start <= max_bytes:
        return [(start, end)]
    out = []
    for s, e in sentences(data, start, end):
        while e - s > max_bytes:
            cut = data.rfind(b" ", s + 1, s + max_bytes)
            cut = cut if cut > s else s + max_bytes
            out.append((s, cut))
            s = cut + 1 if data[cut:cut + 1] == b" " else cut
        out.append((s, e))
    return out


def _packed(data: bytes, s0: int, e0: int, max_bytes: int) -> list[tuple[int, int]]:
    """data[s0:e0]'s paragraphs packed greedily into spans of at most max_bytes."""
    pieces = [p for s, e in paragraphs(data, s0, e0) for p in _pieces(data, s, e, max_bytes)]
    out: list[list[int]] = []
    for s, e in pieces:
        if out and e - out[-1][0] <= max_bytes:
            out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def chunk_corpus(corpus: Corpus, max_bytes: int = 600) -> list[Passage]:
    """Passages of at most max_bytes (whole paragraphs packed together where they fit); stdlib-api: per object."""
    if max_bytes < 32:
        raise ValueError(f"max_bytes must be at least 32, got {max_bytes}")
    data, out, seen = corpus.data, [], {}
    if corpus.spec == API_SPEC:
        for module, head, s0, e0 in api_entries(data):
            name = object_name(head)
            key = name if name not in seen else f"{name}~{seen[name]}"  # a name defined twice stays distinct
            seen[name] = seen.get(name, 1) + 1
            out += [Passage(f"{key}#{n}", module, s, e, head) for n, (s, e) in enumerate(_packed(data, s0, e0,
                                                                                                 max_bytes))]
        return out
    for name, s0, e0 in sections(corpus):
        key = name if name not in seen else f"{name}~{seen[name]}"  # repeated headings stay distinct
        seen[name] = seen.get(name, 1) + 1
        out += [Passage(f"{key}#{n}", key, s, e) for n, (s, e) in enumerate(_packed(data, s0, e0, max_bytes))]
    return out
