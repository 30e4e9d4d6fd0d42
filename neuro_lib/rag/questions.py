"""Questions generated from the documents themselves, with gold passages and short gold answers.

Each sentence of each passage is matched against three patterns of docstring facts:

- raises:  "... raises ValueError if the string is empty."  ->
           "In json.decoder, which exception is raised if the string is empty?"  / "ValueError"
- returns: "Return True if the path is absolute."  ->
           "In posixpath, what is returned if the path is absolute?"  / "True"
- default: "The timeout defaults to None."  ->
           "In socket, what does the timeout default to?"  / "None"

The section (module or topic) names the document, as a user would (on a corpus whose passages
carry titles, stdlib-api, the object's qualified name does: "In heapq.heappop, ..."); the answer is the
span the pattern captured, with its byte offsets in the corpus (the gold citation). The
split is by section: a stable hash puts `test_fraction` of the sections (and all their
questions) in "test", so evaluation asks about documents no trained component saw.

    qs = generate_questions(corpus, passages); [q for q in qs if q.split == "test"]

Tests: tests/test_rag.py (answers are substrings of their gold passage at the recorded
offsets; no section is in both splits).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from neuro_lib.data.corpus import Corpus
from neuro_lib.rag.passages import Passage, object_name, sentences

_EXC = r"[A-Z][A-Za-z]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)"
_COND = r"(?:if|when|unless|on|for|in case|whenever)"
PATTERNS = {
    "raises": [
        re.compile(rf"\b(?:[Rr]aises?|[Rr]aising)\s+(?:an?\s+|the\s+)?(?P<ans>{_EXC})\b(?:\s+exception)?"
                   rf"(?P<tail>\s+{_COND}\b[^.;:]*)"),
        re.compile(rf"\b(?P<ans>{_EXC})(?:\s+exception)?\s+(?:is|will be|gets)\s+raised(?P<tail>\s+{_COND}\b[^.;:]*)"),
    ],
    "returns": [
        re.compile(r"(?:^|;\s+)[Rr]eturns?\s+(?P<ans>True|False|None|-?\d+|[^,;:.()]{1,40}?)"
                   r"(?P<tail>\s+(?:if|when|unless|on|for|in case)\b[^.;:]*)"),
    ],
    "default": [
        re.compile(r"(?:^|,\s+)(?P<subj>(?:[Tt]he|[Ii]ts|[Tt]his)\s[^.;:,()]{2,50}?)\s+defaults?\s+(?:to|is)\s+"
                   r"(?P<ans>True|False|None|-?\d+(?:\.\d+)?|'[^']{1,30}'|\"[^\"]{1,30}\"|\w+(?:\.\w+)*(?:\(\))?)"),
    ],
}
TEMPLATES = {
    "raises": "In {section}, which exception is raised{tail}?",
    "returns": "In {section}, what is returned{tail}?",
    "default": "In {section}, what does {subj} default to?",
}
MAX_ANSWER_WORDS = 6
MAX_TAIL_WORDS = 16


@dataclass(frozen=True)
class Question:
    id: str            # "{passage id}/q{n}"
    text: str
    answer: str        # whitespace collapsed: the cited bytes may hold a line break where this has a space
    passage_id: str    # the gold passage
    section: str
    kind: str          # raises | returns | default
    split: str         # train | test (by section)
    answer_start: int  # byte offsets of the answer in corpus.data (the gold citation)
    answer_end: int

    def to_dict(self) -> dict:
        return asdict(self)


def section_split(section: str, test_fraction: float) -> str:
    """train or test for a section, from a stable hash of its name (never Python's salted hash)."""
    h = int(hashlib.sha1(section.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


def _clean(text: str) -> str:
    return " ".join(text.split())


def _sentence_questions(sent: str) -> list[tuple[str, str, int, dict]]:
    """(kind, answer, answer char offset in sent, template fields) for each pattern hit."""
    out = []
    for kind, pats in PATTERNS.items():
        for pat in pats:
            for m in pat.finditer(sent):
                ans = m.group("ans")
                fields = {k: _clean(v) for k, v in m.groupdict().items() if k != "ans" and v}
                if "tail" in fields:
                    fields["tail"] = " " + fields["tail"]
                    if not 3 <= len(fields["tail"].split()) <= MAX_TAIL_WORDS:  # "if so" says too little;
                        continue  # a very long one is several run-together docstring lines
                if not ans or len(ans.split()) > MAX_ANSWER_WORDS or ans.lower() in ("a", "an", "the"):
                    continue
                if "subj" in fields:
                    fields["subj"] = fields["subj"][0].lower() + fields["subj"][1:]
                out.append((kind, ans, m.start("ans"), fields))  # ans may span a line break of raw
    return out


def generate_questions(corpus: Corpus, passages: list[Passage], test_fraction: float = 0.2,
                       max_per_passage: int = 3) -> list[Question]:
    """Every pattern hit in every passage as a question (duplicates of an earlier question dropped)."""
    data, out, asked = corpus.data, [], set()
    for p in passages:
        n = 0
        for s, e in sentences(data, p.start, p.end):
            raw = data[s:e].decode("utf-8", errors="replace")
            sent = raw.replace("\n", " ")  # same length: offsets in sent are offsets in raw
            for kind, ans, at, fields in _sentence_questions(sent):
                text = TEMPLATES[kind].format(section=object_name(p.title) if p.title else p.section, **fields)
                if n >= max_per_passage or text in asked:
                    continue
                asked.add(text)
                a_start = s + len(raw[:at].encode("utf-8"))
                a_end = a_start + len(ans.encode("utf-8"))
                out.append(Question(f"{p.id}/q{n}", text, _clean(ans), p.id, p.section, kind,
                                    section_split(p.section, test_fraction), a_start, a_end))
                n += 1
    return out
