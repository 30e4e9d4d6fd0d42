"""`neuro bench rag`: retrieval and retrieval-augmented answers on held-out generated questions.

    neuro bench rag --profile smoke --json
    neuro bench rag --profile bench --arch gpt --threads 2 --out data/reference/rag_bench.json

Quality (step budgets, machine-independent): Recall@1/5/20 and MRR for bm25, dense
(exact), dense-faiss (HNSW) and hybrid (RRF); the HNSW graph's recall of the exact
top-20; exact match and token F1 for the readers none (closed book), lite (rules),
retrieval (+ LM reader) and oracle (+ LM reader). Cost (timings; take them on a quiet
machine): index build seconds per stage, query latency p50/p95 (one query at a time),
index size on disk. The experiment itself is rag/experiment.py.

`--eval outside` asks the hand-written retrieval set (data/eval/retrieval.jsonl: 108 questions naming a
function, 30 the corpus lacks; never tuned on) through `rag.ask`, and `--eval dev` our own dev set
(data/rag_dev/retrieval.jsonl, same format, written for tuning), on each corpus (the old `stdlib-docs`
and `stdlib-api`, one passage per documented object) x retriever (bm25, names) x extract (span, sentence),
no LM: the answer holds the fact, refusals on answerable items, the refusal rate on not-in-corpus items,
retrieval recall@1/5 (a top passage holds the gold fact) and the answers' length in bytes.

    neuro bench rag --profile smoke --eval outside --out data/reference/rag_outside.json
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from neuro_lib.bench.report import make_report
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import get_profile
from neuro_lib.rag.experiment import run_rag_experiment
from neuro_lib.rag.index import index_size_bytes
from neuro_lib.bench.flags import add_seed, add_threads


OUTSIDE_CORPORA = ("stdlib-docs", "stdlib-api")
OUTSIDE_ARMS = (("bm25", "span"), ("bm25", "sentence"), ("names", "span"), ("names", "sentence"))
DEV_DIR = Path(__file__).resolve().parents[2] / "data" / "rag_dev"


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.rag)")
    p.add_argument("--arch", default=None, help="reader LM architecture (default: the profile's reader_arch)")
    p.add_argument("--corpus", default=None,
                   help="stdlib-docs, stdlib-api or text:PATH (default: stdlib-docs; --eval outside/dev: "
                        "stdlib-docs and stdlib-api)")
    p.add_argument("--eval", choices=("heldout", "outside", "dev"), default="heldout",
                   help="heldout: generated questions of held-out sections (default); outside: data/eval/"
                        "retrieval.jsonl (measure only); dev: data/rag_dev/retrieval.jsonl (our own)")
    p.add_argument("--no-readers", action="store_true", help="retrieval and the lite reader only (no LM training)")
    add_threads(p)
    add_seed(p, 0)


def result_rows(r: dict) -> list[dict]:
    """The experiment's dict -> bench result rows."""
    rows = []
    for name, m in r["retrieval"].items():
        for k in (1, 5, 20):
            rows.append({"name": f"{name} recall@{k}", "value": round(m["recall"][k], 4), "unit": "fraction"})
        rows.append({"name": f"{name} MRR", "value": round(m["mrr"], 4), "unit": "MRR@20"})
        if "recall_vs_exact" in m:
            rows.append({"name": f"{name} recall of exact top-20", "value": round(m["recall_vs_exact"], 4),
                         "unit": "fraction"})
        rows.append({"name": f"{name} latency p50", "value": round(m["latency_p50_ms"], 3), "unit": "ms/query"})
        rows.append({"name": f"{name} latency p95", "value": round(m["latency_p95_ms"], 3), "unit": "ms/query"})
    for name, m in r["readers"].items():
        rows.append({"name": f"reader {name} EM", "value": round(m["em"], 4), "unit": "fraction", "n": m["n"]})
        rows.append({"name": f"reader {name} F1", "value": round(m["f1"], 4), "unit": "token F1", "n": m["n"]})
        rows.append({"name": f"reader {name} holds the fact", "value": round(m["fact"], 4), "unit": "fraction",
                     "n": m["n"]})
        rows.append({"name": f"reader {name} answer bytes p50", "value": m["bytes_p50"], "unit": "bytes",
                     "p90": m["bytes_p90"], "max": m["bytes_max"]})
    rows.append({"name": "index build", "value": round(r["build_s"], 2), "unit": "s"})
    for stage, s in r["build_stage_s"].items():
        rows.append({"name": f"index build: {stage}", "value": s, "unit": "s"})
    for part, n in r.get("index_bytes", {}).items():
        rows.append({"name": f"index size: {part}", "value": n, "unit": "bytes"})
    return rows


def outside_arm(index, items, retriever: str, extract: str) -> dict:
    """One (index, retriever, extract) arm on outside-format retrieval items, answered through rag.ask."""
    from neuro_lib.bench.outside import is_refusal, score_retrieval
    from neuro_lib.rag.ask import ask
    from neuro_lib.rag.metrics import holds_fact

    ans, absent, recall1, recall5, sizes = [], [], [], [], []
    for it in items:
        asked = ask(index, it.input, retriever, k=5, extract=extract)
        text, ok = asked.answer.text, asked.refused is None
        if it.refuse:
            absent.append(is_refusal(text, ok))
            continue
        ans.append((score_retrieval(it, text, ok), is_refusal(text, ok)))
        held = [holds_fact(index.doc(index.by_id[r["passage_id"]]), it.gold) for r in asked.retrieved]
        recall1.append(any(held[:1]))
        recall5.append(any(held[:5]))
        if ok:
            sizes.append(len(text.encode("utf-8")))
    sizes = sizes or [0]
    return {"fact": float(np.mean([a for a, _ in ans])) if ans else float("nan"),
            "refused_answerable": float(np.mean([r for _, r in ans])) if ans else float("nan"),
            "refused_absent": float(np.mean(absent)) if absent else float("nan"),
            "recall1": float(np.mean(recall1)) if recall1 else float("nan"),
            "recall5": float(np.mean(recall5)) if recall5 else float("nan"),
            "n_answerable": len(ans), "n_absent": len(absent), "bytes_p50": float(np.percentile(sizes, 50)),
            "bytes_p90": float(np.percentile(sizes, 90)), "bytes_max": int(max(sizes))}


def outside_rows(arms: dict) -> list[dict]:
    rows = []
    for name, m in arms.items():
        rows += [{"name": f"{name}: answer holds the fact", "value": round(m["fact"], 4), "unit": "fraction",
                  "n": m["n_answerable"]},
                 {"name": f"{name}: refusals on answerable", "value": round(m["refused_answerable"], 4),
                  "unit": "fraction", "n": m["n_answerable"]},
                 {"name": f"{name}: refusal rate (not in corpus)", "value": round(m["refused_absent"], 4),
                  "unit": "fraction", "n": m["n_absent"]},
                 {"name": f"{name}: recall@1 (top passage holds the fact)", "value": round(m["recall1"], 4),
                  "unit": "fraction", "n": m["n_answerable"]},
                 {"name": f"{name}: recall@5", "value": round(m["recall5"], 4), "unit": "fraction",
                  "n": m["n_answerable"]},
                 {"name": f"{name}: answer bytes p50", "value": m["bytes_p50"], "unit": "bytes",
                  "p90": m["bytes_p90"], "max": m["bytes_max"]}]
    return rows


def run_outside(args, profile) -> dict:
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.data.eval_sets import load_set
    from neuro_lib.rag.index import build_index

    items = load_set("retrieval", None if args.eval == "outside" else DEV_DIR)
    corpora = [args.corpus] if args.corpus else list(OUTSIDE_CORPORA)
    arms = {}
    for corpus in corpora:
        index = build_index(load_corpus(corpus), profile.tasks.rag, seed=args.seed)
        for retriever, extract in OUTSIDE_ARMS:
            arms[f"{corpus} {retriever} {extract}"] = outside_arm(index, items, retriever, extract)
    where = "data/eval/retrieval.jsonl" if args.eval == "outside" else "data/rag_dev/retrieval.jsonl"
    config = {"profile": args.profile, "eval": f"{args.eval} ({where})", "corpora": corpora, "seed": args.seed,
              "n_items": len(items), "arms": [f"{r} {e}" for r, e in OUTSIDE_ARMS], "k": 5,
              "reader": "lite rules (no LM)", "chunk_bytes": profile.tasks.rag.chunk_bytes}
    return make_report("rag", config, outside_rows(arms))


def run(args) -> dict:
    if args.threads < 0:
        raise NeuroError(f"--threads must be non-negative, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)  # an unknown profile fails before any work
    args.eval = getattr(args, "eval", "heldout")
    if args.eval != "heldout":
        return run_outside(args, profile)
    args.corpus = args.corpus or "stdlib-docs"
    r = run_rag_experiment(profile, args.arch, args.corpus, args.seed, readers=not args.no_readers)
    index = r.pop("index")
    with tempfile.TemporaryDirectory() as tmp:
        r["index_bytes"] = index_size_bytes(index.save(f"{tmp}/idx"))
    config = {"profile": args.profile, "corpus": args.corpus, "arch": r["arch"], "seed": args.seed,
              "n_passages": r["n_passages"], "n_questions": r["n_questions"], "sizes": r["sizes"],
              "pretrain_val_bpb": r.get("pretrain_val_bpb"), "eval": "test-split questions (held-out sections)"}
    report = make_report("rag", config, result_rows(r))
    report["examples"] = r["examples"][:20]
    return report
