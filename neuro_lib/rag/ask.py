"""One question against a RAG index: retrieve the top k passages, answer from the first with citations.
`neuro rag ask` and the runtime's retrieval expert both go through `ask`, so they answer alike.

    asked = ask(load_index("runs/idx"), "which exception is raised if ...", retriever="bm25", k=3)
    asked.answer.text, asked.answer.citations, asked.retrieved

The reader is the extractive "lite" rules (lite.py; `extract` "span": rule 2's clause, or "sentence": the best
sentence) unless a trained LM reader (reader.py, loaded with `load_reader`) is given. `ask` refuses (Asked.refused
says why, the answer is empty) when the corpus does not hold the question's subject, and a span copied from an
unrelated passage would be an answer made up:
- on a corpus whose passages name what they document (stdlib-api), a question naming objects (`heapq.heappop`,
  rag/names.py) is answered when one of them is documented, and refused when none is ("math.sqrt": the corpus
  has no module math);
- otherwise, when the top passage (its text and title) holds at most MIN_SUPPORT of the question's content words.
Tests: tests/test_rag.py, tests/test_rag_names.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from neuro_lib.errors import NeuroError
from neuro_lib.profiles import RagSizes
from neuro_lib.rag.index import RagIndex
from neuro_lib.rag.lite import Answer, lite_answer, match_key, question_keys
from neuro_lib.rag.names import question_names
from neuro_lib.rag.reader import reader_answer


# ask() refuses unless the top passage holds more than this share of the question's content words. Tuned ONLY on
# generator data, never on data/eval/ (the outside sets only measure): on the smoke index, 3 of its 88 test-split
# questions (rag/index.py's generated questions; 29 of 369 train) fall at or below 0.5, and 159 of 160 held-out
# queries of the other skills' generators (runtime/tasks.py router_examples) do (docs/LOG.md 2026-12-03).
MIN_SUPPORT = 0.5


def support(data: bytes, passage, question: str) -> float:
    """Share of the question's content words (rag/lite.py's keys) that the passage (text and title) holds."""
    keys = question_keys(question)
    if not keys:
        return 0.0
    words = data[passage.start:passage.end].split() + passage.title.encode("utf-8").split()
    return len(keys & {match_key(w) for w in words}) / len(keys)


@dataclass
class Reader:
    """A trained LM reader with the sizes it was fine-tuned under (its prompt layout depends on them)."""
    model: object
    tokenizer: object
    sizes: RagSizes


@dataclass
class Asked:
    question: str                # whitespace-normalised
    answer: Answer
    retrieved: list[dict]        # {"passage_id", "start", "end", "score"}, best first
    support: float = 0.0         # share of the question's content words in the top passage
    refused: str | None = None   # why there is no answer (the corpus does not hold the subject), else None

    def to_dict(self) -> dict:
        return {"question": self.question, **self.answer.to_dict(), "retrieved": self.retrieved,
                "support": round(self.support, 4), "refused": self.refused}


def load_reader(path, index: RagIndex) -> Reader:
    """A reader checkpoint written by experiment.train_retrieval_reader, refused unless trained on `index`'s corpus."""
    from neuro_lib.checkpoint import load_checkpoint

    model, tok, cfg = load_checkpoint(path)
    if cfg.get("task") != "rag_reader" or cfg.get("corpus") != index.corpus.spec:
        raise NeuroError(f"{path} is not a RAG reader trained on {index.corpus.spec!r}")
    return Reader(model, tok, RagSizes(**cfg["rag"]))


def unnamed(index: RagIndex, question: str) -> str | None:
    """Why the corpus lacks what the question names (the objects it names, none documented), else None; None too
    when the question names nothing or the corpus carries no names."""
    names = question_names(question) if index.names else []
    if not names or any(index.names.lookup(n) for n in names):
        return None
    n = names[0]
    if "." in n and not index.names.documents(n):
        return f"the corpus does not hold the answer: it documents no module {n.split('.')[0]!r} (asked: {n})"
    return f"the corpus does not hold the answer: it documents no {n!r}"


def ask(index: RagIndex, question: str, retriever: str = "bm25", k: int = 3, reader: Reader | None = None,
        min_support: float = MIN_SUPPORT, extract: str = "span") -> Asked:
    """Retrieve `k` passages for `question` with `retriever` and answer from the top one (the lite reader's
    `extract`, or `reader`), or refuse when the corpus lacks what the question names or the top passage holds at
    most `min_support` of the question's content words (0 never refuses)."""
    question = " ".join(question.split())
    if not question:
        raise NeuroError("the question is empty")
    ids, scores = index.retriever(retriever).search([question], k)
    top = [index.passages[i] for i in ids[0]]
    data = index.corpus.data
    retrieved = [{"passage_id": p.id, "start": p.start, "end": p.end, "score": float(s)} for p, s in zip(top, scores[0])]
    share = support(data, top[0], question)
    named = bool(question_names(question)) and bool(index.names)
    why = unnamed(index, question) if min_support else None
    if min_support and not named and share <= min_support:
        keys = question_keys(question)
        why = (f"the corpus does not hold the answer: the best passage has {round(share * len(keys))} of the "
               f"question's {len(keys)} content words")
    if why:
        return Asked(question, Answer(""), retrieved, share, why)
    if reader is None:
        answer = lite_answer(data, top[0], question, extract)
    else:
        answer = reader_answer(reader.model, reader.tokenizer, data, question, top[0], reader.sizes)
    return Asked(question, answer, retrieved, share)
