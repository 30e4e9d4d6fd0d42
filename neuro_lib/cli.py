"""`neuro`: the command line.

    neuro train --arch gpt --corpus stdlib-docs --time-budget 120 --out runs/x
    neuro eval runs/x --corpus stdlib-docs
    neuro generate runs/x --prompt "The module"
    neuro train --arch rnk --task chat --steps 300 --out runs/rnk && neuro chat runs/rnk --prompt "Hello!"
    neuro bench lm --arch gpt --corpus text:FILE --time-budget 200 --json
    neuro report --profile smoke --only 00 --jobs 2
    neuro data stats stdlib-docs
    neuro rag index --corpus stdlib-docs --out runs/idx && neuro rag ask runs/idx "In gzip, which exception ..."
    neuro doctor

Bad input gets one sentence on stderr and exit status 2; nothing on disk is
overwritten by a failed command.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuro_lib.errors import NeuroError


def _positive(kind):
    def check(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return v
    return check


def _parse_overrides(pairs) -> dict:
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise NeuroError(f"model override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def cmd_train(a):
    from neuro_lib.train.lm import train_lm

    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise NeuroError(f"--out {out} is a file, not a run directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():
        raise NeuroError(f"--out {out} already holds other files; choose a new or empty directory")
    if a.task == "chat":
        from neuro_lib.train.chat import train_rnk

        if a.arch != "rnk":
            raise NeuroError("--task chat trains the rnk architecture; add --arch rnk")
        res = train_rnk(a.profile, overrides=_parse_overrides(a.model), steps=a.steps, seed=a.seed, out_dir=out,
                        chat_data=a.chat_data)
        val = [r for r in res.history if r.get("kind") == "val"][-1]
        print(f"rnk: {res.model.num_params():,} params, held-out loss {val['val_loss']:.4f}, checkpoint in {out}")
        return
    train = {"seed": a.seed}
    if a.steps:
        train.update(max_steps=a.steps, time_budget_s=0)
    elif a.time_budget:
        train["time_budget_s"] = a.time_budget
    res = train_lm(a.arch, a.corpus, tokenizer=a.tokenizer, profile=a.profile, out_dir=out,
                   model_overrides=_parse_overrides(a.model), train_overrides=train)
    print(f"{a.arch}: {res.model.num_params():,} params, val bpb {res.val_bpb:.4f}, checkpoint in {out}")


def cmd_eval(a):
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.train.checkpoint import load_checkpoint
    from neuro_lib.train.evaluate import evaluate_bpb

    model, tok, cfg = load_checkpoint(a.checkpoint)
    corpus = load_corpus(a.corpus or cfg.get("corpus", "stdlib-docs"))
    block = a.block_size or cfg.get("train", {}).get("block_size") or 128
    r = evaluate_bpb(model, tok, corpus.val, block, max_bytes=a.max_bytes)
    print(json.dumps({"checkpoint": str(a.checkpoint), "corpus": corpus.spec, **r}, indent=2))


def cmd_generate(a):
    from neuro_lib.infer.sampling import generate
    from neuro_lib.train.checkpoint import load_checkpoint

    model, tok, _ = load_checkpoint(a.checkpoint)
    out = generate(model, tok, a.prompt, a.max_new_tokens, a.temperature, a.top_k, a.top_p,
                   stop=[s.encode().decode("unicode_escape").encode() for s in a.stop], seed=a.seed)
    print(a.prompt + out.decode("utf-8", errors="replace"))  # bytes that are not UTF-8 show as U+FFFD


def cmd_chat(a):
    from neuro_lib.infer.chat import chat_loop, chat_reply
    from neuro_lib.train.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(a.checkpoint)
    if a.prompt is not None:
        r = chat_reply(model, a.prompt, a.max_new_bytes)
        print(json.dumps(r) if a.json else r["reply"])
    else:
        chat_loop(model, max_new_bytes=a.max_new_bytes)


def cmd_bench(a):
    from neuro_lib.bench import SUITES
    from neuro_lib.bench.report import format_table

    report = SUITES[a.suite].run(a)
    print(format_table(report))
    text = json.dumps(report, indent=2)
    if a.json:
        print(text)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)


def cmd_report(a):
    from neuro_lib.workbook import run_workbook

    params = {}
    for k, v in a.param or []:
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    failures = run_workbook(profile=a.profile, only=a.only, jobs=a.jobs, params=params, out_root=a.out_root)
    if failures:
        raise NeuroError(f"{len(failures)} notebook(s) failed: {', '.join(failures)}")


def cmd_nbfreeze(a):
    from neuro_lib.workbook import freeze_notebook

    for path in a.notebooks:
        if not Path(path).is_file():
            raise NeuroError(f"notebook {path} does not exist")
        freeze_notebook(path)
        print(f"froze {path}")


def cmd_data(a):
    from neuro_lib.data.corpus import corpus_stats, load_corpus

    stats = corpus_stats(load_corpus(a.corpus))
    width = max(map(len, stats))
    for k, v in stats.items():
        print(f"{k.ljust(width)}  {v}")


# -- rag (issue 14): neuro rag index / ask / train-reader ------------------------------------------------
def cmd_rag_index(a):
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.rag.experiment import rag_sizes
    from neuro_lib.rag.index import build_index, index_size_bytes

    if Path(a.out).exists():
        raise NeuroError(f"--out {a.out} already exists; choose a new directory for the index")
    idx = build_index(load_corpus(a.corpus), rag_sizes(a.profile), seed=a.seed)
    idx.save(a.out)
    print(f"indexed {len(idx.passages):,} passages of {a.corpus} ({len(idx.questions)} generated questions) "
          f"in {a.out}, {index_size_bytes(a.out)['total'] / 1e6:.1f} MB")


def cmd_rag_train_reader(a):
    from neuro_lib.rag.experiment import train_retrieval_reader
    from neuro_lib.rag.index import load_index

    if Path(a.out).exists():
        raise NeuroError(f"--out {a.out} already exists; choose a new directory for the reader")
    train_retrieval_reader(load_index(a.index), a.profile, a.arch, a.seed, out_dir=a.out)
    print(f"reader checkpoint in {a.out}")


def cmd_rag_ask(a):
    from neuro_lib.rag.index import load_index
    from neuro_lib.rag.lite import lite_answer

    question = " ".join(a.question.split())
    if not question:
        raise NeuroError("the question is empty")
    idx = load_index(a.index, corpus=a.corpus)
    ids, scores = idx.retriever(a.retriever).search([question], a.k)
    top = [idx.passages[i] for i in ids[0]]
    if a.reader:
        from neuro_lib.rag.reader import reader_answer
        from neuro_lib.train.checkpoint import load_checkpoint

        model, tok, cfg = load_checkpoint(a.reader)
        if cfg.get("task") != "rag_reader" or cfg.get("corpus") != idx.corpus.spec:
            raise NeuroError(f"{a.reader} is not a RAG reader trained on {idx.corpus.spec!r}")
        ans = reader_answer(model, tok, idx.corpus.data, question, top[0], cfg["rag"])
    else:
        ans = lite_answer(idx.corpus.data, top[0], question)
    out = {"question": question, **ans.to_dict(), "retrieved": [
        {"passage_id": p.id, "start": p.start, "end": p.end, "score": round(float(s), 4)}
        for p, s in zip(top, scores[0])]}
    if a.json:
        print(json.dumps(out, indent=2))
        return
    print(ans.text)
    for c in ans.citations:
        cited = idx.corpus.data[c["start"]:c["end"]].decode("utf-8", errors="replace")
        print(f"  cites [{c['passage_id']}] bytes {c['start']}-{c['end']}: {cited!r}")
    for r in out["retrieved"]:
        print(f"  retrieved [{r['passage_id']}] bytes {r['start']}-{r['end']} score {r['score']}")


def cmd_doctor(a):
    import torch

    from neuro_lib.bench import SUITES
    from neuro_lib.data.corpus import CACHE_DIR
    from neuro_lib.envinfo import environment_record
    from neuro_lib.models import ARCHS
    from neuro_lib.tokenizers import TOKENIZER_KINDS

    rec = environment_record()
    rec["cuda_available"] = torch.cuda.is_available()
    rec["archs"] = sorted(ARCHS)
    rec["tokenizers"] = sorted(TOKENIZER_KINDS)
    rec["bench_suites"] = sorted(SUITES)
    cached = sorted(p.name for p in CACHE_DIR.iterdir()) if CACHE_DIR.is_dir() else []
    rec["cache_dir"] = str(CACHE_DIR)
    rec["cached"] = cached
    width = max(map(len, rec))
    for k, v in rec.items():
        print(f"{k.ljust(width)}  {v}")


def build_parser() -> argparse.ArgumentParser:
    from neuro_lib.bench import SUITES

    p = argparse.ArgumentParser(prog="neuro", description="neuro_lib: a research workbook for small language models")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a corpus")
    t.add_argument("--arch", default="gpt")
    t.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs or text:PATH")
    t.add_argument("--tokenizer", default="byte")
    t.add_argument("--profile", default="smoke", help="sizes from profiles.py: smoke, bench, full")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--time-budget", type=_positive(float), help="training seconds")
    budget.add_argument("--steps", type=_positive(int), help="optimiser steps")
    t.add_argument("--out", required=True, help="run directory (resumed if it holds this same run)")
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--model", nargs="*", metavar="KEY=VALUE", help="model config overrides, e.g. n_layer=6")
    t.add_argument("--task", choices=["lm", "chat"], default="lm",
                   help="lm: next-byte on a corpus; chat: RNK on synthetic chat (data/chat.py)")
    t.add_argument("--chat-data", help="with --task chat: a JSONL file of chat records instead of generated ones")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="bits per byte of a checkpoint on a corpus's validation split")
    e.add_argument("checkpoint")
    e.add_argument("--corpus", help="defaults to the corpus the checkpoint was trained on")
    e.add_argument("--block-size", type=_positive(int))
    e.add_argument("--max-bytes", type=int, default=0, help="score only the first N validation bytes")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("generate", help="sample a continuation")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", default="")
    g.add_argument("--max-new-tokens", type=_positive(int), default=200)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=40)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable; \\n escapes allowed)")
    g.add_argument("--seed", type=int)
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("chat", help="talk to an RNK checkpoint (stdin loop, or one turn with --prompt)")
    c.add_argument("checkpoint")
    c.add_argument("--prompt", help="one user turn; prints the reply and exits")
    c.add_argument("--max-new-bytes", type=_positive(int), default=96)
    c.add_argument("--json", action="store_true", help="with --prompt: print reply, intent, answerable as JSON")
    c.set_defaults(func=cmd_chat)

    b = sub.add_parser("bench", help="run a benchmark suite")
    bsub = b.add_subparsers(dest="suite", required=True)
    for name, module in SUITES.items():
        sp = bsub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        sp.add_argument("--json", action="store_true", help="also print the JSON result")
        sp.add_argument("--out", help="write the JSON result to this file")
        sp.set_defaults(func=cmd_bench)

    r = sub.add_parser("report", help="execute the notebooks with papermill into an HTML report")
    r.add_argument("--profile", default="smoke")
    r.add_argument("--only", nargs="*", help="notebook numbers or names, e.g. 00 03")
    r.add_argument("--jobs", type=_positive(int), default=1, help="notebooks run in parallel")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="notebook parameter (repeatable)")
    r.add_argument("--out-root", default=None, help="defaults to papermill_runs/")
    r.set_defaults(func=cmd_report)

    f = sub.add_parser("nbfreeze", help="execute notebooks and save them stripped but for NBVAL_CHECK_OUTPUT cells")
    f.add_argument("notebooks", nargs="+")
    f.set_defaults(func=cmd_nbfreeze)

    d = sub.add_parser("data", help="corpus tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    ds = dsub.add_parser("stats", help="size, byte histogram summary and the split")
    ds.add_argument("corpus")
    ds.set_defaults(func=cmd_data)

    rg = sub.add_parser("rag", help="retrieval-augmented answers: build an index, ask it questions")
    rsub = rg.add_subparsers(dest="rag_command", required=True)
    ri = rsub.add_parser("index", help="chunk a corpus, generate questions, build BM25 + dense indexes")
    ri.add_argument("--corpus", default="stdlib-docs", help="stdlib-docs or text:PATH")
    ri.add_argument("--out", required=True, help="a new directory for the index")
    ri.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks['rag'])")
    ri.add_argument("--seed", type=int, default=0)
    ri.set_defaults(func=cmd_rag_index)
    rt = rsub.add_parser("train-reader", help="pre-train and fine-tune an LM reader on an index's questions")
    rt.add_argument("index")
    rt.add_argument("--out", required=True, help="a new directory for the reader checkpoint")
    rt.add_argument("--arch", default=None, help="reader architecture (default: the profile's)")
    rt.add_argument("--profile", default="smoke")
    rt.add_argument("--seed", type=int, default=0)
    rt.set_defaults(func=cmd_rag_train_reader)
    ra = rsub.add_parser("ask", help="answer a question from an index, citing passage ids and byte spans")
    ra.add_argument("index")
    ra.add_argument("question")
    ra.add_argument("--retriever", default="hybrid", choices=["bm25", "dense", "dense-faiss", "hybrid"])
    ra.add_argument("--k", type=_positive(int), default=3, help="passages retrieved (the reader reads the first)")
    ra.add_argument("--corpus", help="refuse the index unless it was built on this corpus")
    ra.add_argument("--reader", help="an LM reader checkpoint (neuro rag train-reader); default: the lite rules")
    ra.add_argument("--json", action="store_true")
    ra.set_defaults(func=cmd_rag_ask)

    sub.add_parser("doctor", help="versions, threads, device, what is cached").set_defaults(func=cmd_doctor)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except NeuroError as e:
        print(f"neuro: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
