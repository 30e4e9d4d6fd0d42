"""`neuro rag index | train-reader | ask`: build a RAG index, train its reader, answer with citations."""
from __future__ import annotations

import json
import sys

from neuro_lib.argtypes import positive, seed
from neuro_lib.errors import NeuroError
from neuro_lib.paths import check_output


def cmd_rag_index(a):
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.profiles import get_profile
    from neuro_lib.rag.index import build_index, index_size_bytes

    sizes = get_profile(a.profile).tasks.rag
    check_output(a.out, "--out", folder=True)
    idx = build_index(load_corpus(a.corpus), sizes, seed=a.seed)
    idx.save(a.out)
    print(f"indexed {len(idx.passages):,} passages of {a.corpus} ({len(idx.questions)} generated questions) "
          f"in {a.out}, {index_size_bytes(a.out)['total'] / 1e6:.1f} MB")


def cmd_rag_train_reader(a):
    from neuro_lib.profiles import get_profile
    from neuro_lib.rag.experiment import train_retrieval_reader
    from neuro_lib.rag.index import load_index

    profile = get_profile(a.profile)
    check_output(a.out, "--out", folder=True)
    train_retrieval_reader(load_index(a.index), profile, a.arch, a.seed, out_dir=a.out)
    print(f"reader checkpoint in {a.out}")


def cmd_rag_ask(a):
    from neuro_lib.rag.ask import ask, load_reader
    from neuro_lib.rag.index import load_index

    if not a.question.strip():
        raise NeuroError("the question is empty")  # before the index is read
    idx = load_index(a.index, corpus=a.corpus)
    asked = ask(idx, a.question, a.retriever, a.k, load_reader(a.reader, idx) if a.reader else None,
                extract=a.extract)
    ans = asked.answer
    out = asked.to_dict()
    out["retrieved"] = [dict(r, score=round(r["score"], 4)) for r in out["retrieved"]]
    if a.json:
        print(json.dumps(out, indent=2))
        return 3 if asked.refused else 0
    if asked.refused:  # labelled on stdout, the reason on stderr, exit 3: as `neuro run` does for an abstention
        print(f"refused: {asked.refused}")
        print(f"neuro: refused: {asked.refused}", file=sys.stderr)
        for r in out["retrieved"]:
            print(f"  retrieved [{r['passage_id']}] bytes {r['start']}-{r['end']} score {r['score']}")
        return 3
    print(ans.text)
    for c in ans.citations:
        cited = idx.corpus.data[c["start"]:c["end"]].decode("utf-8", errors="replace")
        print(f"  cites [{c['passage_id']}] bytes {c['start']}-{c['end']}: {cited!r}")
    for r in out["retrieved"]:
        print(f"  retrieved [{r['passage_id']}] bytes {r['start']}-{r['end']} score {r['score']}")


def register(sub) -> None:
    rg = sub.add_parser("rag", help="retrieval-augmented answers: build an index, ask it questions")
    rsub = rg.add_subparsers(dest="rag_command", required=True)
    ri = rsub.add_parser("index", help="chunk a corpus, generate questions, build BM25 + dense indexes")
    ri.add_argument("--corpus", default="stdlib-api",
                    help="stdlib-api (default: one passage per documented object, titled by its name and signature), "
                         "stdlib-docs (600-byte passages of the docstrings, no names) or text:PATH")
    ri.add_argument("--out", required=True, help="a new directory for the index")
    ri.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.rag)")
    ri.add_argument("--seed", type=seed, default=0)
    ri.set_defaults(func=cmd_rag_index)
    rt = rsub.add_parser("train-reader", help="pre-train and fine-tune an LM reader on an index's questions")
    rt.add_argument("index")
    rt.add_argument("--out", required=True, help="a new directory for the reader checkpoint")
    rt.add_argument("--arch", default=None, help="reader architecture (default: the profile's)")
    rt.add_argument("--profile", default="smoke")
    rt.add_argument("--seed", type=seed, default=0)
    rt.set_defaults(func=cmd_rag_train_reader)
    ra = rsub.add_parser("ask", help="answer a question from an index, citing passage ids and byte spans",
                         epilog="Refuses (stdout 'refused: WHY', exit 3) when the corpus does not hold the answer: "
                                "the question names objects (heapq.heappop) none of which the index documents, or "
                                "names none and the best passage holds at most half of its content words. Exit 0: "
                                "an answer; 2: bad input.")
    ra.add_argument("index")
    ra.add_argument("question")
    # the best measured retriever (data/reference/rag_smoke.json: BM25 recall@1 0.77, hybrid 0.43, dense 0.37)
    # the best measured: on questions naming a function, names over bm25 (top passage holds the fact 0.82 vs 0.63,
    # data/reference/rag_outside.json); on generated ones the same or better (rag_api_smoke.json); names ranks as
    # bm25 does on an index without titles (stdlib-docs: bm25 recall@1 0.77 vs hybrid 0.43, rag_smoke.json)
    ra.add_argument("--retriever", default="names", choices=["names", "bm25", "dense", "dense-faiss", "hybrid"],
                    help="default names: BM25 over name tokens with the passages of the objects the question names "
                         "first (data/reference/rag_outside.json); bm25, dense, dense-faiss, hybrid")
    ra.add_argument("--k", type=positive(int), default=3, help="passages retrieved (the reader reads the first)")
    ra.add_argument("--corpus", help="refuse the index unless it was built on this corpus")
    ra.add_argument("--reader", help="an LM reader checkpoint (neuro rag train-reader); default: the lite rules")
    ra.add_argument("--extract", default="sentence", choices=["sentence", "span"],
                    help="the rule reader's answer: sentence (default: the best sentence, or its clause past 240 "
                         "bytes; it holds the fact 0.78 vs span 0.20, data/reference/rag_outside.json) or span "
                         "(rule 2's words next to the restated clause)")
    ra.add_argument("--json", action="store_true")
    ra.set_defaults(func=cmd_rag_ask)
