"""The RAG experiment behind `neuro bench rag` and notebook 09, sizes from profiles.py.

1. Index the corpus (index.build_index): passages, questions, BM25, dense encoder, HNSW.
2. Retrieval on the held-out (test-split) questions: Recall@1..20 and MRR for bm25,
   dense (exact), dense-faiss (HNSW) and hybrid (RRF); the HNSW graph's recall of the
   exact top-20; per-query latency p50/p95 (one query at a time).
3. Readers on the same held-out questions: "lite" (rules on the top passage of
   `reader_retriever`; "lite-sentence": rule 1 only, the best sentence), and our LM pre-trained on the corpus for `pretrain_steps`, then
   fine-tuned for the same `finetune_steps` three ways: without retrieval, with the
   retriever's top-1 passage, with the gold passage (oracle). EM, token F1, the share
   holding the gold fact, and the answers' length in bytes, each.

    r = run_rag_experiment(get_profile("smoke"), arch="gpt")
    r["retrieval"]["bm25"]["recall"][5], r["readers"]["oracle"]["em"], r["examples"][:3]

Step budgets throughout, so quality figures do not depend on the machine's speed;
only the `*_ms` and `*_s` entries do.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from neuro_lib.data.corpus import load_corpus
from neuro_lib.profiles import Profile, RagSizes
from neuro_lib.rag.index import RETRIEVERS, RagIndex, build_index
from neuro_lib.rag.lite import lite_answer
from neuro_lib.rag.metrics import exact_match, gold_ranks, holds_fact, mrr, recall_at, token_f1
from neuro_lib.rag.reader import CONDITIONS, finetune_reader, fit_prompt, reader_answer
from neuro_lib.checkpoint import save_checkpoint
from neuro_lib.train.lm import train_lm

K_MAX = 20


def pretrain_base(index: RagIndex, arch: str, profile: Profile, sizes: RagSizes, seed: int = 0, callback=None):
    """The reader's starting point: `arch` trained as a byte LM on the corpus for pretrain_steps."""
    return train_lm(arch, index.corpus, profile=profile, model_overrides=sizes.reader_model.get(arch, {}),
                    train_overrides=dict(max_steps=sizes.pretrain_steps, time_budget_s=0, eval_every=0,
                                         block_size=sizes.reader_block, seed=seed),
                    callback=callback)


def reader_examples(index: RagIndex, questions, passages, sizes: RagSizes) -> list[tuple[bytes, str]]:
    """(prompt, answer) pairs; passages[i] is question i's context (None: closed book)."""
    budget = sizes.reader_block - sizes.answer_bytes
    return [(fit_prompt(q.text, index.corpus.data, p, sizes.ctx_bytes, budget), q.answer)
            for q, p in zip(questions, passages)]


def train_retrieval_reader(index: RagIndex, profile: Profile, arch: str | None = None, seed: int = 0,
                           out_dir=None, callback=None):
    """Pre-train and fine-tune the "retrieval" reader on the index's training questions; saved to out_dir
    as a checkpoint (DESIGN.md) that `neuro rag ask --reader` loads."""
    sizes = profile.tasks.rag
    arch = arch or sizes.reader_arch
    train = [q for q in index.questions if q.split == "train"]
    base = pretrain_base(index, arch, profile, sizes, seed, callback)
    examples = reader_examples(index, train, top_passages(index, sizes.reader_retriever, train), sizes)
    model, history = finetune_reader(base.model, base.tokenizer, examples, sizes, seed, callback)
    if out_dir is not None:
        save_checkpoint(out_dir, model, base.tokenizer, extra={"task": "rag_reader", "profile": profile.name,
                                                               "rag": asdict(sizes), "corpus": index.corpus.spec})
    return model, base.tokenizer, history


def eval_retrieval(index: RagIndex, questions, k_max: int = K_MAX, n_latency: int = 50) -> dict:
    """Recall@1..k_max, MRR, HNSW recall vs exact, latency per retriever on `questions`."""
    texts = [q.text for q in questions]
    gold = np.asarray([index.by_id[q.passage_id] for q in questions], dtype=np.int64)
    out, exact_ids = {}, None
    for name in RETRIEVERS:
        r = index.retriever(name)
        ids, _ = r.search(texts, k_max)
        ranks = gold_ranks(ids, gold)
        lat = []
        for t in texts[:n_latency]:
            t0 = time.perf_counter()
            r.search([t], k_max)
            lat.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"recall": {k: recall_at(ranks, k) for k in range(1, k_max + 1)}, "mrr": mrr(ranks),
                     "latency_p50_ms": float(np.percentile(lat, 50)), "latency_p95_ms": float(np.percentile(lat, 95))}
        if name == "dense":
            exact_ids = ids
        if name == "dense-faiss":  # share of the exact top-k that the HNSW graph also returns
            out[name]["recall_vs_exact"] = float(np.mean([len(set(a) & set(b)) / len(a)
                                                          for a, b in zip(exact_ids, ids)]))
    return out


def eval_answers(answers, questions) -> dict:
    """EM, token F1, the share holding the gold fact, and the answers' length in bytes (median, 90th pct, max)."""
    sizes = [len(a.text.encode("utf-8")) for a in answers] or [0]
    return {"em": float(np.mean([exact_match(a.text, q.answer) for a, q in zip(answers, questions)])),
            "f1": float(np.mean([token_f1(a.text, q.answer) for a, q in zip(answers, questions)])),
            "fact": float(np.mean([holds_fact(a.text, q.answer) for a, q in zip(answers, questions)])),
            "bytes_p50": float(np.percentile(sizes, 50)), "bytes_p90": float(np.percentile(sizes, 90)),
            "bytes_max": int(max(sizes)), "n": len(questions)}


def top_passages(index: RagIndex, retriever: str, questions) -> list:
    ids, _ = index.retriever(retriever).search([q.text for q in questions], 1)
    return [index.passages[i] for i in ids[:, 0]]


def run_rag_experiment(profile: Profile, arch: str | None = None, corpus: str = "stdlib-docs", seed: int = 0,
                       index: RagIndex | None = None, readers: bool = True, callback=None,
                       sizes: RagSizes | None = None) -> dict:
    """Everything above -> a dict (plus "index": the RagIndex, for drawing cited spans). `sizes` replaces
    the profile's tasks.rag (tests use tiny ones)."""
    sizes = sizes or profile.tasks.rag
    arch = arch or sizes.reader_arch
    torch.manual_seed(seed)
    if index is None:
        t0 = time.perf_counter()
        index = build_index(load_corpus(corpus), sizes, seed, callback)
        build_s = time.perf_counter() - t0
    else:
        build_s = float("nan")
    data = index.corpus.data
    test = [q for q in index.questions if q.split == "test"][: sizes.n_eval]
    train = [q for q in index.questions if q.split == "train"]
    result = {"profile": profile.name, "corpus": index.corpus.spec, "arch": arch, "seed": seed, "sizes": asdict(sizes),
              "n_passages": len(index.passages), "n_questions": {"train": len(train), "test": len(test)},
              "build_s": build_s, "build_stage_s": index.meta.get("build_seconds", {}),
              "retrieval": eval_retrieval(index, test)}
    retrieved = top_passages(index, sizes.reader_retriever, test)
    gold = [index.passages[index.by_id[q.passage_id]] for q in test]
    answers = {"lite": [lite_answer(data, p, q.text) for p, q in zip(retrieved, test)],
               "lite-sentence": [lite_answer(data, p, q.text, "sentence") for p, q in zip(retrieved, test)]}
    if readers:
        base = pretrain_base(index, arch, profile, sizes, seed, callback)
        result["pretrain_val_bpb"] = base.val_bpb
        train_ctx = {"none": [None] * len(train), "retrieval": top_passages(index, sizes.reader_retriever, train),
                     "oracle": [index.passages[index.by_id[q.passage_id]] for q in train]}
        test_ctx = {"none": [None] * len(test), "retrieval": retrieved, "oracle": gold}
        for cond in CONDITIONS:
            examples = reader_examples(index, train, train_ctx[cond], sizes)
            model, _ = finetune_reader(base.model, base.tokenizer, examples, sizes, seed, callback)
            answers[cond] = [reader_answer(model, base.tokenizer, data, q.text, p, sizes)
                             for q, p in zip(test, test_ctx[cond])]
    result["readers"] = {name: eval_answers(a, test) for name, a in answers.items()}
    result["examples"] = [{"question": q.text, "gold": q.answer, "gold_passage": q.passage_id,
                           "gold_span": [q.answer_start, q.answer_end],
                           **{name: a[i].to_dict() for name, a in answers.items()}}
                          for i, q in enumerate(test)]
    result["index"] = index
    return result
