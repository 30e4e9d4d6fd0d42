"""Retrieval: a question about the Python documentation -> rag's index (BM25 by the profile's reader_retriever) +
the extractive "lite" reader (rag/lite.py); the answer cites the passage id and the exact byte span it copied.

The reader is the rule reader, not the "reader" fine-tune of the family base: the recorded LM reader (0.27) is
below the rule reader (0.60) at bench size (issue 21), so the runtime keeps the better one.

    expert = Retrieval(cached_index("smoke"))          # or build_experts()["retrieval"]
    expert.answer(Query("What does heapq.heappop return?")).citations

Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.rag.index import RagIndex
from neuro_lib.rag.lite import lite_answer
from neuro_lib.runtime.types import ExpertAnswer, Query


class Retrieval:
    name = "retrieval"
    skills = ("retrieval",)
    tools = ()
    contract = {"input": "a question about the Python standard library documentation",
                "output": "a span copied from the top passage, cited by passage id and byte span"}

    def __init__(self, index: RagIndex, retriever: str = "bm25", k: int = 3):
        self.index, self.retriever, self.k = index, retriever, k

    def answer(self, query: Query) -> ExpertAnswer:
        question = " ".join(query.text.split())
        if not question:
            return ExpertAnswer("", ok=False, error="the question is empty")
        ids, scores = self.index.retriever(self.retriever).search([question], self.k)
        top = [self.index.passages[i] for i in ids[0]]
        a = lite_answer(self.index.corpus.data, top[0], question)
        cites = [dict(c, source=self.index.corpus.spec, score=float(scores[0][0])) for c in a.citations]
        return ExpertAnswer(a.text, ok=bool(a.text.strip()), value=a.text, citations=cites,
                            meta={"retrieved": [{"passage_id": p.id, "start": p.start, "end": p.end,
                                                 "score": float(s)} for p, s in zip(top, scores[0])],
                                  "retriever": self.retriever})
