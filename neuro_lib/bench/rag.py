"""`neuro bench rag`: retrieval and retrieval-augmented answers on held-out generated questions.

    neuro bench rag --profile smoke --json
    neuro bench rag --profile bench --arch gpt --threads 2 --out data/reference/rag_bench.json

Quality (step budgets, machine-independent): Recall@1/5/20 and MRR for bm25, dense
(exact), dense-faiss (HNSW) and hybrid (RRF); the HNSW graph's recall of the exact
top-20; exact match and token F1 for the readers none (closed book), lite (rules),
retrieval (+ LM reader) and oracle (+ LM reader). Cost (timings; take them on a quiet
machine): index build seconds per stage, query latency p50/p95 (one query at a time),
index size on disk. The experiment itself is rag/experiment.py.
"""
from __future__ import annotations

import tempfile

import torch

from neuro_lib.bench.report import make_report
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import get_profile
from neuro_lib.rag.experiment import run_rag_experiment
from neuro_lib.rag.index import index_size_bytes
from neuro_lib.bench.flags import add_seed, add_threads


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.rag)")
    p.add_argument("--arch", default=None, help="reader LM architecture (default: the profile's reader_arch)")
    p.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs or text:PATH")
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
    rows.append({"name": "index build", "value": round(r["build_s"], 2), "unit": "s"})
    for stage, s in r["build_stage_s"].items():
        rows.append({"name": f"index build: {stage}", "value": s, "unit": "s"})
    for part, n in r.get("index_bytes", {}).items():
        rows.append({"name": f"index size: {part}", "value": n, "unit": "bytes"})
    return rows


def run(args) -> dict:
    if args.threads < 0:
        raise NeuroError(f"--threads must be non-negative, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)  # an unknown profile fails before any work
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
