"""One question against a RAG index: retrieve the top k passages, answer from the first with citations.
`neuro rag ask` and the runtime's retrieval expert both go through `ask`, so they answer alike.

    asked = ask(load_index("runs/idx"), "which exception is raised if ...", retriever="bm25", k=3)
    asked.answer.text, asked.answer.citations, asked.retrieved

The reader is the extractive "lite" rules (lite.py) unless a trained LM reader (reader.py, loaded with
`load_reader`) is given. Tests: tests/test_rag.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from neuro_lib.errors import NeuroError
from neuro_lib.profiles import RagSizes
from neuro_lib.rag.index import RagIndex
from neuro_lib.rag.lite import Answer, lite_answer
from neuro_lib.rag.reader import reader_answer


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

    def to_dict(self) -> dict:
        return {"question": self.question, **self.answer.to_dict(), "retrieved": self.retrieved}


def load_reader(path, index: RagIndex) -> Reader:
    """A reader checkpoint written by experiment.train_retrieval_reader, refused unless trained on `index`'s corpus."""
    from neuro_lib.checkpoint import load_checkpoint

    model, tok, cfg = load_checkpoint(path)
    if cfg.get("task") != "rag_reader" or cfg.get("corpus") != index.corpus.spec:
        raise NeuroError(f"{path} is not a RAG reader trained on {index.corpus.spec!r}")
    return Reader(model, tok, RagSizes(**cfg["rag"]))


def ask(index: RagIndex, question: str, retriever: str = "bm25", k: int = 3, reader: Reader | None = None) -> Asked:
    """Retrieve `k` passages for `question` with `retriever` and answer from the top one."""
    question = " ".join(question.split())
    if not question:
        raise NeuroError("the question is empty")
    ids, scores = index.retriever(retriever).search([question], k)
    top = [index.passages[i] for i in ids[0]]
    data = index.corpus.data
    if reader is None:
        answer = lite_answer(data, top[0], question)
    else:
        answer = reader_answer(reader.model, reader.tokenizer, data, question, top[0], reader.sizes)
    retrieved = [{"passage_id": p.id, "start": p.start, "end": p.end, "score": float(s)} for p, s in zip(top, scores[0])]
    return Asked(question, answer, retrieved)
