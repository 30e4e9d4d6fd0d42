"""Retrieval by name (issue 21): the stdlib-api corpus (one passage per documented object, titled by its name and
signature), name tokens, the name table and the "names" retriever, the sentence extract, the refusal of questions
naming what the corpus lacks, and the mixture's api-docs bytes unchanged by the shared reader (data/apidocs.py)."""
import ast
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro_lib.data.apidocs import api_objects, api_text
from neuro_lib.data.corpus import Corpus
from neuro_lib.rag.ask import MIN_SUPPORT, ask
from neuro_lib.rag.index import build_index, load_index
from neuro_lib.rag.lite import MAX_ANSWER_BYTES, clause, lite_answer
from neuro_lib.rag.names import NameTable, name_tokens, question_names
from neuro_lib.rag.passages import api_entries, chunk_corpus, object_name, sections
from neuro_lib.rag.questions import generate_questions
from tests.conftest import SIZES

REPO = Path(__file__).resolve().parents[1]

SRC = {
    "heapy": '''"""Heap queue helpers for tests.

A second paragraph of the module docstring."""

def heappush(heap, item):
    """Push item onto heap, maintaining the heap invariant."""

def heappop(heap):
    """Pop the smallest item off the heap, maintaining the heap invariant.

    Raises IndexError if the heap is empty."""

def _private(x):
    """Never documented: a private name."""

class Queue(object):
    """Create a queue object with a given maximum size."""

    def get(self, block=True, timeout=None):
        """Remove and return an item from the queue. The timeout defaults to None."""

    def put(self, item):
        """Put an item into the queue."""
''',
    "pathy.posixpath": '''"""Common operations on Posix pathnames."""

def join(a, *p) -> str:
    """Join two or more pathname components, inserting '/' as needed.

    Returns True if the joined path is absolute."""

def splitext(p):
    """Split the extension from a pathname. Extension is everything from the last dot to the end."""
''',
    "randy": '''"""Random variable generators."""

class Random(object):
    """Random number generator base class."""

    def randint(self, a, b):
        """Return random integer in range [a, b], including both end points."""

    def shuffle(self, x):
        """Shuffle list x in place, and return None."""
''',
}


def _corpus() -> Corpus:
    mods = [(m, api_objects(ast.parse(src), m)) for m, src in SRC.items()]
    return Corpus("stdlib-api", api_text(mods))


@pytest.fixture(scope="module")
def api_index():
    return build_index(_corpus(), SIZES, seed=0)


# -- the corpus and its passages --------------------------------------------------------------------------------
def test_api_text_heads_at_column_zero_and_docs_indented():
    text = _corpus().data.decode()
    lines = text.splitlines()
    heads = [ln for ln in lines if ln and not ln.startswith(" ")]
    assert heads[:5] == ["heapy", "heapy.heappush(heap, item)", "heapy.heappop(heap)", "class heapy.Queue(object)",
                         "heapy.Queue.get(self, block=True, timeout=None)"]
    assert "pathy.posixpath.join(a, *p) -> str" in heads
    assert "_private" not in text and "    Pop the smallest item off the heap" in text


def test_one_titled_passage_per_object_with_exact_offsets():
    corpus = _corpus()
    ps = chunk_corpus(corpus, 600)
    by = {p.id: p for p in ps}
    assert set(by) >= {"heapy#0", "heapy.heappop#0", "heapy.Queue#0", "heapy.Queue.get#0", "randy.Random.randint#0"}
    p = by["heapy.heappop#0"]
    assert p.section == "heapy" and p.title == "heapy.heappop(heap)" and object_name(p.title) == "heapy.heappop"
    body = corpus.data[p.start:p.end].decode()
    assert body.startswith("    Pop the smallest") and body.endswith("empty.")  # the span is the docstring
    assert corpus.data[:p.start].decode().endswith("heapy.heappop(heap)\n")     # its heading sits just before
    assert by["pathy.posixpath.join#0"].section == "pathy.posixpath"
    assert object_name("class json.JSONDecoder(object)") == "json.JSONDecoder"
    # a long docstring becomes several passages of the same object, each under max_bytes
    long = [(m, api_objects(ast.parse(f'def f():\n    """{"Word. " * 60}\n\n    {"More. " * 60}"""'), m))
            for m in ["big"]]
    parts = chunk_corpus(Corpus("stdlib-api", api_text(long)), 400)
    assert [x.id for x in parts] == ["big.f#0", "big.f#1"] and all(x.end - x.start <= 400 for x in parts)
    assert [e[:2] for e in api_entries(api_text(long))] == [("big", "big"), ("big", "big.f()")]
    assert [name for name, _, _ in sections(corpus)] == ["heapy", "pathy.posixpath", "randy"]


def test_generated_questions_name_the_object(api_index):
    qs = generate_questions(api_index.corpus, api_index.passages, 0.3)
    texts = {q.text: q.answer for q in qs}
    assert texts["In heapy.heappop, which exception is raised if the heap is empty?"] == "IndexError"
    assert texts["In heapy.Queue.get, what does the timeout default to?"] == "None"


# -- names ------------------------------------------------------------------------------------------------------
def test_name_tokens_split_and_keep_names():
    t = name_tokens("What does os.path.splitext do? json.decoder.raw_decode")
    assert {"os", "path", "splitext", "os.path.splitext", "json", "decoder", "raw", "decode", "raw_decode",
            "json.decoder.raw_decode"} <= set(t)
    assert "the" not in name_tokens("the splitext of the path")  # bm25s's English stop words


def test_question_names_and_aliases():
    assert question_names("What does heapq.heappop return?") == ["heapq.heappop"]
    assert question_names("How does `os.path.join` work, e.g. here?") == ["posixpath.join"]
    assert question_names("Is `heappop` fast?") == ["heappop"]
    assert question_names("Who painted the Mona Lisa?") == []


def test_name_table_levels(api_index):
    table, ps = api_index.names, api_index.passages
    ids = {ps[i].id: lv for i, lv in table.lookup("heapy.heappop").items()}
    assert ids == {"heapy.heappop#0": 3}
    assert {ps[i].id: lv for i, lv in table.lookup("Queue.get").items()} == {"heapy.Queue.get#0": 2}
    assert {ps[i].id: lv for i, lv in table.lookup("randy.randint").items()} == {"randy.Random.randint#0": 1}
    assert {ps[i].id for i in table.lookup("pathy.splitext")} == {"pathy.posixpath.splitext#0"}  # a submodule
    assert {ps[i].id for i in table.lookup("heappush")} == {"heapy.heappush#0"}  # a bare name
    assert table.lookup("heapy.nope") == {} and table.documents("heapy.nope") and not table.documents("math.sqrt")


def test_names_retriever_puts_the_named_object_first(api_index):
    qs = ["What does heapy.heappop return?", "Does randy.shuffle return the list?", "What does heapy.Queue.put do?"]
    ids, scores = api_index.retriever("names").search(qs, 3)
    assert [api_index.passages[i].id for i in ids[:, 0]] == ["heapy.heappop#0", "randy.Random.shuffle#0",
                                                            "heapy.Queue.put#0"]
    assert ids.shape == scores.shape == (3, 3)
    plain, _ = api_index.retriever("names").search(["Who painted the Mona Lisa?"], 3)
    bm25, _ = api_index.retriever("bm25").search(["Who painted the Mona Lisa?"], 3)
    assert (plain == bm25).all()  # no name: BM25's ranking


def test_names_index_round_trip(api_index, tmp_path, monkeypatch):
    corpus = api_index.corpus
    monkeypatch.setattr("neuro_lib.rag.index.load_corpus", lambda spec: corpus)
    api_index.save(tmp_path / "idx")
    back = load_index(tmp_path / "idx")
    assert back.bm25.tokenizer == "names" and back.passages == api_index.passages
    q = ["What does heapy.Queue.get do?", "splitext extension pathname"]
    for name in ("bm25", "names"):
        a, sa = api_index.retriever(name).search(q, 3)
        b, sb = back.retriever(name).search(q, 3)
        assert (a == b).all() and np.allclose(sa, sb)


# -- the reader and the refusal ---------------------------------------------------------------------------------
def test_sentence_extract_is_a_short_cited_sentence(api_index):
    data = api_index.corpus.data
    asked = ask(api_index, "What does heapy.heappop return?", "names", 3, extract="sentence")
    assert asked.refused is None
    assert asked.answer.text == "Pop the smallest item off the heap, maintaining the heap invariant."
    c = asked.answer.citations[0]
    assert c["passage_id"] == "heapy.heappop#0"
    assert " ".join(data[c["start"]:c["end"]].decode().split()) == asked.answer.text
    assert data[c["start"]:c["start"] + 3] == b"Pop"  # the cited bytes start at the answer, not its indentation
    raised = ask(api_index, "When does heapy.heappop raise IndexError?", "names", 3, extract="sentence")
    assert raised.answer.text == "Raises IndexError if the heap is empty."  # the sentence sharing most words
    # a long sentence is cut to its clause sharing the most question words, never past MAX_ANSWER_BYTES
    text = ("alpha beta gamma, " * 20 + "the timeout defaults to None when unset, " + "delta epsilon, " * 20).encode()
    s, e = clause(text, 0, len(text), "What does the timeout default to?")
    assert text[s:e] == b"the timeout defaults to None when unset" and e - s <= MAX_ANSWER_BYTES
    with pytest.raises(ValueError, match="unknown extract"):
        lite_answer(data, api_index.passages[0], "q", "whole")


def test_refuses_what_the_corpus_does_not_document(api_index):
    for q, why in [("What does math.sqrt return for negative numbers?", "documents no module 'math'"),
                   ("What does numpy.linspace return?", "documents no module 'numpy'"),
                   ("What does heapy.frobnicate do?", "documents no 'heapy.frobnicate'")]:
        asked = ask(api_index, q, "names", 3, extract="sentence")
        assert asked.refused and why in asked.refused and asked.answer.text == ""
    # no name in the question: the content-word share decides, as before
    off = ask(api_index, "Who painted the Mona Lisa in Florence?", "names", 3)
    assert off.refused and "content words" in off.refused and off.support <= MIN_SUPPORT
    # min_support 0 never refuses
    assert ask(api_index, "What does math.sqrt return?", "names", 3, min_support=0).refused is None


def test_retrieval_expert_uses_the_extract(api_index):
    from neuro_lib.runtime.experts import Retrieval
    from neuro_lib.runtime.types import Query

    a = Retrieval(api_index, "names", extract="sentence").answer(Query("What does randy.randint return?"))
    assert a.ok and "including both end points" in a.text
    off = Retrieval(api_index, "names", extract="sentence").answer(Query("What does time.sleep do?"))
    assert not off.ok and off.abstained and "module 'time'" in off.error


# -- the real stdlib ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the recorded hash is Python 3.11's stdlib")
def test_mixture_api_docs_bytes_unchanged():
    """The mixture's api-docs source is read through data/apidocs.py now; its tokens (part of every base cache key:
    bench base-bench-fd45ee937bbeafe9) must equal those the mixture's VERSION 1 recorded."""
    from neuro_lib.data.mixture import _tokens, build_api_docs

    digest = hashlib.sha256(_tokens(build_api_docs()).tobytes()).hexdigest()
    assert digest == API_DOCS_SHA256


# sha256 of the api-docs token array (uint16) built by data/mixture.py before it read through data/apidocs.py (main 807780f; the cached data/cache/mixture/api-docs-py3.11-v1.npy), Python 3.11
API_DOCS_SHA256 = "dbb92cb0349935a9dff258fbe49172318ed419d798f0467643278c0d4357af9c"


def test_stdlib_api_corpus_holds_python_sources_only():
    from neuro_lib.data.apidocs import build_stdlib_api

    data = build_stdlib_api()
    assert data == build_stdlib_api()  # deterministic
    entries = api_entries(data)
    modules = {m for m, *_ in entries}
    assert {"heapq", "json", "posixpath", "random"} <= modules
    assert not {"math", "time", "itertools"} & modules  # C extensions: no .py source
    heads = {h for _, h, *_ in entries}
    assert "heapq.heappop(heap)" in heads


def test_dev_set_golds_are_in_the_corpus():
    """Our own tuning set (data/rag_dev/, never data/eval/): every answerable gold occurs in stdlib-api."""
    from neuro_lib.bench.outside import is_refusal  # noqa: F401 - the scorer the set is used with
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.data.eval_sets import load_set
    from neuro_lib.rag.metrics import fact_norm

    items = load_set("retrieval", REPO / "data" / "rag_dev")
    assert len(items) >= 30 and sum(i.refuse for i in items) >= 8
    text = fact_norm(load_corpus("stdlib-api").data.decode())
    missing = [i.id for i in items if not i.refuse and fact_norm(i.gold) not in text]
    assert not missing
    assert all(json.loads(line)["id"].startswith("dev-") for line in
               (REPO / "data" / "rag_dev" / "retrieval.jsonl").read_text().splitlines())


def test_outside_arm_scores_fact_refusals_recall_and_length(api_index):
    """`neuro bench rag --eval outside|dev` scores each arm through rag.ask (three hand-made items here)."""
    from neuro_lib.bench.rag import outside_arm
    from neuro_lib.data.eval_sets import EvalItem

    items = [EvalItem("a", "retrieval", "names_function", "What does heapy.heappop return?", "smallest item"),
             EvalItem("b", "retrieval", "names_function", "What does randy.randint return?", "both end points"),
             EvalItem("c", "retrieval", "absent", "What does math.sqrt return?", None, refuse=True)]
    m = outside_arm(api_index, items, "names", "sentence")
    assert (m["fact"], m["refused_answerable"], m["refused_absent"], m["recall1"]) == (1.0, 0.0, 1.0, 1.0)
    assert m["n_answerable"] == 2 and m["n_absent"] == 1 and 0 < m["bytes_p50"] <= m["bytes_max"] <= MAX_ANSWER_BYTES
    span = outside_arm(api_index, items, "names", "span")
    assert span["recall1"] == 1.0 and span["bytes_max"] < m["bytes_max"]  # same passages, shorter answers
