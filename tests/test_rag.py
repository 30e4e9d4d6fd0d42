"""rag/: passages, generated questions, BM25, dense + faiss, RRF, index round-trip and refusals,
the lite and LM readers, the metrics, the CLI and the experiment end to end on a tiny corpus."""
import json
import math
from dataclasses import replace

import bm25s
import numpy as np
import pytest
import torch

from neuro_lib.cli import main
from neuro_lib.data.corpus import Corpus, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import get_profile
from neuro_lib.rag import reader as reader_mod
from neuro_lib.rag.bm25 import BM25Retriever
from neuro_lib.rag.dense import DenseRetriever, EncoderConfig, HashEncoder, build_hnsw, exact_topk
from neuro_lib.rag.experiment import run_rag_experiment
from neuro_lib.rag.fusion import rrf
from neuro_lib.rag.index import build_index, load_index, train_encoder
from neuro_lib.rag.lite import lite_answer
from neuro_lib.rag.metrics import exact_match, gold_ranks, mrr, recall_at, token_f1
from neuro_lib.rag.passages import Passage, chunk_corpus, sections, sentences
from neuro_lib.rag.questions import generate_questions, section_split
from neuro_lib.rag.reader import fit_prompt, reader_answer, reader_batches
from tests.conftest import SIZES, TOPICS, _doc_text

@pytest.fixture
def doc_corpus(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes(_doc_text())
    return f"text:{path}"


# -- passages ------------------------------------------------------------------------------------------
def test_passages_cover_sections_with_exact_offsets(doc_corpus):
    corpus = load_corpus(doc_corpus)
    passages = chunk_corpus(corpus, 200)
    assert [name for name, _, _ in sections(corpus)] == [f"{t}lib" for t in TOPICS]
    assert len({p.id for p in passages}) == len(passages)
    for p in passages:
        assert 0 < p.end - p.start <= 200
        assert p.text(corpus.data) == corpus.data[p.start:p.end].decode()
        assert p.text(corpus.data).strip() == p.text(corpus.data)  # no blank edges
    # every non-blank byte of every section body is in exactly one passage
    covered = np.zeros(len(corpus.data), dtype=int)
    for p in passages:
        covered[p.start:p.end] += 1
    assert covered.max() == 1
    for name, s, e in sections(corpus):
        body = np.frombuffer(corpus.data[s:e], dtype=np.uint8)
        assert covered[s:e][~np.isin(body, list(b" \n\t"))].min() == 1, name


def test_passage_ids_stable_when_another_section_changes(doc_corpus):
    corpus = load_corpus(doc_corpus)
    changed = Corpus("text:x", corpus.data.replace(b"Tools for working with locale", b"Helpers for locale " * 30))
    before = {p.id: p.text(corpus.data) for p in chunk_corpus(corpus, 200) if not p.section.startswith("locale")}
    after = {p.id: p.text(changed.data) for p in chunk_corpus(changed, 200) if not p.section.startswith("locale")}
    assert before == after


def test_sentences_and_long_paragraph_split():
    data = b"First one. Second (two)! Third?  " + b"word " * 100
    spans = sentences(data, 0, len(data))
    assert [data[s:e] for s, e in spans[:3]] == [b"First one.", b"Second (two)!", b"Third?"]
    ps = chunk_corpus(Corpus("text:t", data), 64)
    assert all(p.end - p.start <= 64 for p in ps) and b"".join(data[p.start:p.end] for p in ps).count(b"word") == 100


def test_stdlib_docs_sections_and_questions():
    corpus = load_corpus("stdlib-docs")
    names = {n for n, _, _ in sections(corpus)}
    assert {"json.decoder", "gzip", "assert"} <= names
    qs = generate_questions(corpus, chunk_corpus(corpus, 600))
    assert len(qs) > 300
    assert all(" ".join(corpus.data[q.answer_start:q.answer_end].decode().split()) == q.answer for q in qs)


# -- questions -----------------------------------------------------------------------------------------
def test_questions_answers_are_cited_bytes_of_gold_passage(tiny_index):
    idx = tiny_index
    qs = idx.questions
    assert {q.kind for q in qs} == {"raises", "returns", "default"}
    for q in qs:
        p = idx.passages[idx.by_id[q.passage_id]]
        assert p.start <= q.answer_start < q.answer_end <= p.end
        assert " ".join(idx.corpus.data[q.answer_start:q.answer_end].decode().split()) == q.answer
        assert q.section == p.section and q.split == section_split(q.section, SIZES.test_fraction)
    train = {q.section for q in qs if q.split == "train"}
    test = {q.section for q in qs if q.split == "test"}
    assert train and test and not train & test
    texts = {q.text: q.answer for q in qs}
    assert texts["In pathlib, what is returned if the path object is ready for reading?"] == "True"
    assert texts["In socketlib, which exception is raised if the socket handle was closed before the call?"] \
        == "ValueError"
    assert texts["In queuelib, what does the queue timeout default to?"] == "3"
    assert texts["In codeclib, which exception is raised when the codec record is missing from the table?"] \
        == "KeyError"


# -- retrievers ----------------------------------------------------------------------------------------
def test_bm25_scores_match_the_formula():
    docs = ["the cat sat on the mat", "a dog chased the cat round the garden", "fish swim in the sea",
            "cat cat cat food", "garden tools for the dog"]
    r = BM25Retriever.build(docs, k1=1.5, b=0.75)
    toks = bm25s.tokenize(docs, stopwords="en", return_ids=False, show_progress=False)
    avgdl = np.mean([len(t) for t in toks])

    def score(query, doc):
        s = 0.0
        for w in set(query):
            df = sum(w in d for d in toks)
            if df == 0:
                continue
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = doc.count(w)
            # Lucene's variant (bm25s's default): Robertson's with the constant (k1 + 1) numerator dropped
            s += idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(doc) / avgdl))
        return s

    for q in ["cat in the garden", "dog food", "sea"]:
        qt = bm25s.tokenize([q], stopwords="en", return_ids=False, show_progress=False)[0]
        ids, scores = r.search([q], 5)
        expected = {i: score(qt, toks[i]) for i in range(len(docs))}
        for i, s in zip(ids[0], scores[0]):
            assert s == pytest.approx(expected[i], rel=1e-4)
        assert list(scores[0]) == sorted(scores[0], reverse=True)


def test_exact_topk_and_faiss_agree_with_brute_force():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(300, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[:20] + 0.1 * rng.normal(size=(20, 16)).astype(np.float32)
    ids, scores = exact_topk(q, v, 10)
    ref = np.argsort(-(q @ v.T), axis=1, kind="stable")[:, :10]
    assert (ids == ref).all() and np.allclose(scores, np.take_along_axis(q @ v.T, ref, 1))
    _, faiss_ids = build_hnsw(v).search(q, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, faiss_ids)])
    assert overlap >= 0.95


def test_rrf_by_hand():
    ids, scores = rrf([np.array([3, 1, 2]), np.array([1, 4])], k=4, rrf_k=60)
    # 1: 1/62 + 1/61, 3: 1/61, 4: 1/62, 2: 1/63
    assert list(ids) == [1, 3, 4, 2]
    assert scores[0] == pytest.approx(1 / 62 + 1 / 61)
    ids, _ = rrf([np.array([5, 6]), np.array([6, 5])], k=2)
    assert list(ids) == [5, 6]  # a tie keeps the first list's order


def test_encoder_training_lowers_contrastive_loss(doc_corpus):
    corpus = load_corpus(doc_corpus)
    passages = chunk_corpus(corpus, 200)
    qs = generate_questions(corpus, passages, 0.3)
    _, history = train_encoder(corpus, passages, qs, replace(SIZES, encoder_steps=40), seed=0)
    losses = [r["loss"] for r in history if r.get("kind") == "train"]
    assert losses[-1] < losses[0] * 0.7


def test_dense_retrievers_share_an_interface(tiny_index):
    q = ["In shelllib, which exception is raised if the shell handle was closed before the call?"]
    exact_ids, _ = tiny_index.retriever("dense").search(q, 5)
    ann_ids, _ = tiny_index.retriever("dense-faiss").search(q, 5)
    hybrid_ids, _ = tiny_index.retriever("hybrid").search(q, 5)
    assert exact_ids.shape == ann_ids.shape == hybrid_ids.shape == (1, 5)
    assert set(exact_ids[0]) == set(ann_ids[0])  # a tiny index: HNSW finds the exact neighbours


# -- index on disk --------------------------------------------------------------------------------------
def test_index_round_trip_and_refusals(tiny_index, tmp_path):
    path = tiny_index.save(tmp_path / "idx")
    again = load_index(path, corpus=tiny_index.corpus.spec)
    qs = [q.text for q in tiny_index.questions[:5]]
    for name in ("bm25", "dense", "dense-faiss", "hybrid"):
        a, sa = tiny_index.retriever(name).search(qs, 4)
        b, sb = again.retriever(name).search(qs, 4)
        assert (a == b).all() and np.allclose(sa, sb)
    assert again.passages == tiny_index.passages and again.questions == tiny_index.questions
    with pytest.raises(NeuroError, match="already exists"):
        tiny_index.save(path)
    with pytest.raises(NeuroError, match="was built on corpus"):
        load_index(path, corpus="stdlib-docs")
    with pytest.raises(NeuroError, match="not a RAG index"):
        load_index(tmp_path / "nothing")


def test_index_refuses_a_changed_corpus(doc_corpus, tmp_path):
    idx = build_index(load_corpus(doc_corpus), replace(SIZES, encoder_steps=2))
    idx.save(tmp_path / "idx")
    path = doc_corpus[5:]
    with open(path, "ab") as f:
        f.write(b"\nappended\n")
    with pytest.raises(NeuroError, match="has changed"):
        load_index(tmp_path / "idx")


# -- readers and metrics --------------------------------------------------------------------------------
def test_metrics_by_hand():
    assert exact_match("The True.", "true") == 1.0 and exact_match("a list", "list of") == 0.0
    assert token_f1("a list of files", "list of names") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    ranks = gold_ranks(np.array([[3, 1, 2], [2, 3, 1], [5, 6, 7]]), np.array([1, 2, 1]))
    assert list(ranks) == [2, 1, 0]
    assert recall_at(ranks, 1) == pytest.approx(1 / 3) and recall_at(ranks, 2) == pytest.approx(2 / 3)
    assert mrr(ranks) == pytest.approx((1 / 2 + 1) / 3)


def test_lite_reader_extracts_and_cites(tiny_index):
    data = tiny_index.corpus.data
    for q in tiny_index.questions:
        a = lite_answer(data, tiny_index.passages[tiny_index.by_id[q.passage_id]], q.text)
        c = a.citations[0]
        assert c["passage_id"] == q.passage_id and data[c["start"]:c["end"]].decode() == a.text
    hits = [exact_match(lite_answer(data, tiny_index.passages[tiny_index.by_id[q.passage_id]], q.text).text,
                        q.answer) for q in tiny_index.questions]
    assert np.mean(hits) > 0.8  # the gold passage in hand, the rules find most answers


def test_reader_batches_mask_exactly_the_answer():
    examples = [(b"Question: q?\nAnswer:", "True"), (b"Question: longer question?\nAnswer:", "ValueError")]
    batch = reader_batches(examples, 4, 64, seed=0)(0)
    for row in range(4):
        tokens, targets, mask = batch["tokens"][row], batch["targets"][row], batch["loss_mask"][row]
        answer = bytes(targets[mask.bool()].tolist())
        assert answer in (b" True\n", b" ValueError\n")
        n = int((tokens != 0).sum())
        assert (targets[:n - 1] == tokens[1:n]).all()  # targets are the next tokens


def test_prompt_fits_budget_and_answer_cites_bytes(tiny_index, monkeypatch):
    data = tiny_index.corpus.data
    q = next(q for q in tiny_index.questions if q.kind == "raises")
    p = tiny_index.passages[tiny_index.by_id[q.passage_id]]
    for budget in (80, 120, 400):
        assert len(fit_prompt(q.text, data, p, 96, budget)) <= budget
    monkeypatch.setattr(reader_mod, "generate", lambda *a, **k: q.answer.encode())
    ans = reader_answer(None, None, data, q.text, p, SIZES)
    c = ans.citations[0]
    assert ans.text == q.answer and c["grounded"] and data[c["start"]:c["end"]].decode() == q.answer
    monkeypatch.setattr(reader_mod, "generate", lambda *a, **k: b"NotInThePassage")
    c = reader_answer(None, None, data, q.text, p, SIZES).citations[0]
    assert not c["grounded"] and p.start <= c["start"] < c["end"] <= p.end



def test_one_ask_for_the_cli_and_the_retrieval_expert(tiny_index):
    """`neuro rag ask` and the runtime's retrieval expert share rag.ask: the same passages, answer and citations."""
    from neuro_lib.rag.ask import ask
    from neuro_lib.runtime.experts import Retrieval
    from neuro_lib.runtime.types import Query

    q = "In bufferlib, which exception is raised if the buffer handle was closed before the call?"
    asked = ask(tiny_index, "  " + q.replace(" ", "\n "), "bm25", 3)
    assert asked.question == q and asked.answer.text == "ValueError" and len(asked.retrieved) == 3
    assert asked.answer.citations[0]["passage_id"] == asked.retrieved[0]["passage_id"]
    scores = [r["score"] for r in asked.retrieved]
    assert scores == sorted(scores, reverse=True)
    a = Retrieval(tiny_index, "bm25", 3).answer(Query(q))
    assert a.ok and a.text == asked.answer.text and a.meta["retrieved"] == asked.retrieved
    assert [(c["passage_id"], c["start"], c["end"]) for c in a.citations] == \
        [(c["passage_id"], c["start"], c["end"]) for c in asked.answer.citations]
    with pytest.raises(NeuroError, match="the question is empty"):
        ask(tiny_index, " \t ")
    empty = Retrieval(tiny_index).answer(Query("   "))
    assert not empty.ok and empty.error == "the question is empty"


# -- end to end ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_experiment_end_to_end(tiny_index):
    torch.manual_seed(0)
    r = run_rag_experiment(get_profile("smoke"), index=tiny_index, sizes=SIZES)
    assert set(r["retrieval"]) == {"bm25", "names", "dense", "dense-faiss", "hybrid"}
    assert r["retrieval"]["names"]["recall"] == r["retrieval"]["bm25"]["recall"]  # no titles: BM25's ranking
    for m in r["retrieval"].values():
        recalls = [m["recall"][k] for k in range(1, 21)]
        assert recalls == sorted(recalls) and 0 <= m["mrr"] <= 1
    assert r["retrieval"]["bm25"]["recall"][5] > 0.5
    assert set(r["readers"]) == {"lite", "lite-sentence", "none", "retrieval", "oracle"}
    assert all(0 <= m["em"] <= m["f1"] + 1e-9 <= 1 + 1e-9 for m in r["readers"].values())
    assert all(m["em"] <= m["fact"] <= 1 and m["bytes_p50"] <= m["bytes_max"] for m in r["readers"].values())
    assert len(r["examples"]) == r["n_questions"]["test"] > 0


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_cli_index_and_ask(doc_corpus, tmp_path, capsys, monkeypatch):
    from neuro_lib.profiles import PROFILES

    smoke = PROFILES["smoke"]
    monkeypatch.setitem(PROFILES, "smoke", replace(smoke, tasks=replace(smoke.tasks, rag=SIZES)))
    out = tmp_path / "idx"
    code, stdout, _ = _run(capsys, "rag", "index", "--corpus", doc_corpus, "--out", out)
    assert code == 0 and "passages" in stdout
    code, stdout, _ = _run(capsys, "rag", "ask", out, "In bufferlib, which exception is raised if the buffer "
                           "handle was closed before the call?", "--retriever", "bm25", "--extract", "span", "--json")
    r = json.loads(stdout)
    assert code == 0 and r["answer"] == "ValueError" and r["citations"][0]["passage_id"].startswith("bufferlib#")
    code, stdout, _ = _run(capsys, "rag", "ask", out, "In bufferlib, which exception is raised if the buffer "
                           "handle was closed before the call?", "--json")  # the defaults: names, the sentence
    r = json.loads(stdout)
    assert code == 0 and r["answer"] == "Raises ValueError if the buffer handle was closed before the call."
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for argv, msg in [(("rag", "ask", out, "   "), "the question is empty"),
                      (("rag", "ask", tmp_path / "missing", "q"), "is not a RAG index"),
                      (("rag", "ask", out, "q", "--corpus", "stdlib-docs"), "was built on corpus"),
                      (("rag", "index", "--corpus", doc_corpus, "--out", out), "already exists")]:
        code, _, err = _run(capsys, *argv)
        assert code == 2 and msg in err and err.count("\n") == 1
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
