"""Retrieval: a question about the Python documentation -> rag's index (BM25 by the profile's reader_retriever) +
the extractive "lite" reader (rag/lite.py); the answer cites the passage id and the exact byte span it copied.

The reader is the rule reader, not the "reader" fine-tune of the family base: the recorded LM reader (0.27) is
below the rule reader (0.60) at bench size (issue 21), so the runtime keeps the better one. The expert abstains
(ExpertAnswer.abstained) when rag/ask.py refuses (the top passage does not hold the question's subject) or the
reader finds no span.

    expert = Retrieval(cached_index(get_profile("smoke").tasks.experts.rag))   # or build_experts(...)["retrieval"]
    expert.answer(Query("What does heapq.heappop return?")).citations

Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.errors import NeuroError
from neuro_lib.rag.ask import ask
from neuro_lib.rag.index import RagIndex
from neuro_lib.runtime.types import ExpertAnswer, Query


class Retrieval:
    name = "retrieval"
    skills = ("retrieval",)
    tools = ()
    contract = {"input": "a question about the Python standard library documentation",
                "output": "a span copied from the top passage, cited by passage id and byte span"}

    def __init__(self, index: RagIndex, retriever: str = "bm25", k: int = 3, extract: str = "span"):
        self.index, self.retriever, self.k, self.extract = index, retriever, k, extract

    def answer(self, query: Query) -> ExpertAnswer:
        try:
            asked = ask(self.index, query.text, self.retriever, self.k, extract=self.extract)
        except NeuroError as e:
            return ExpertAnswer("", ok=False, error=str(e))
        a, top_score = asked.answer, asked.retrieved[0]["score"]
        meta = {"retrieved": asked.retrieved, "retriever": self.retriever, "support": asked.support}
        if asked.refused or not a.text.strip():  # nothing relevant, or no answer span: declined, not failed
            return ExpertAnswer("", ok=False, abstained=True, meta=meta,
                                error=asked.refused or "the best passage holds no answer span for the question")
        cites = [dict(c, source=self.index.corpus.spec, score=top_score) for c in a.citations]
        return ExpertAnswer(a.text, value=a.text, citations=cites, meta=meta)
