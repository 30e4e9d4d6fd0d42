"""`neuro`: the command line.

    neuro train --arch gpt --corpus stdlib-docs --time-budget 120 --out runs/x
    neuro eval runs/x --corpus stdlib-docs
    neuro generate runs/x --prompt "The module"
    neuro train --arch rnk --task chat --steps 300 --out runs/rnk && neuro chat runs/rnk --prompt "Hello!"
    neuro bench lm --arch gpt --corpus text:FILE --time-budget 200 --json
    neuro report --profile smoke --only 00 --jobs 2
    neuro data stats stdlib-docs
    neuro json --schema product_v1 --prompt "The blue kettle costs $12."; neuro json validate doc.json --schema product_v1
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


def cmd_json(a):
    from neuro_lib.structured.schemas import load_schema
    from neuro_lib.structured.verify import verify_text

    if a.action == "validate":
        if not a.file or not Path(a.file).is_file():
            raise NeuroError(f"neuro json validate needs an existing FILE, got {a.file!r}")
        schema = load_schema(a.schema)
        _, errors = verify_text(Path(a.file).read_bytes(), schema)
        print(f"{a.file}: valid against {a.schema}" if not errors else
              f"{a.file}: {len(errors)} error(s) against {a.schema}\n" + "\n".join(f"  {e}" for e in errors))
        return 1 if errors else 0
    if a.file or a.prompt is None:
        raise NeuroError("neuro json needs --prompt TEXT (or: neuro json validate FILE --schema ID)")
    from neuro_lib.structured.expert import answer, cached_expert
    from neuro_lib.train.checkpoint import load_checkpoint

    load_schema(a.schema)  # an unknown or broken schema fails before any model work
    if a.run and not Path(a.run, "config.json").is_file():
        raise NeuroError(f"run {a.run} has no config.json")
    model, tok, cfg = load_checkpoint(a.run) if a.run else cached_expert("encdec", a.profile)
    r = answer(model, tok, cfg, a.schema, a.prompt, not a.no_constraint, a.max_new_tokens, a.temperature, a.seed)
    print(r["text"])
    print(f"valid against {a.schema}" if r["valid"] else "invalid:\n" + "\n".join(f"  {e}" for e in r["errors"]))
    if r["repair"] is not None:
        rep = r["repair"]
        print(("repaired:" if rep.ok else "unrepairable; attempted:") + "".join(f"\n  {c}" for c in rep.changes))
        if rep.ok:
            print(json.dumps(rep.doc, ensure_ascii=False))
    return 0


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

    j = sub.add_parser("json", help="schema-constrained JSON from a run; `neuro json validate FILE --schema ID`")
    j.add_argument("action", nargs="?", choices=["validate"], help="validate FILE against --schema")
    j.add_argument("file", nargs="?", help="with validate: the JSON file")
    j.add_argument("--schema", required=True, help="a schema id in data/schemas/ (or a .json path)")
    j.add_argument("--prompt", help="the description to turn into JSON")
    j.add_argument("--run", help="checkpoint directory (default: the Struct-mini encoder-decoder, trained once)")
    j.add_argument("--profile", default="smoke", help="sizes of the default Struct-mini expert")
    j.add_argument("--no-constraint", action="store_true", help="decode without the grammar constraint")
    j.add_argument("--max-new-tokens", type=_positive(int), default=256, help="the token budget")
    j.add_argument("--temperature", type=float, default=0.0)
    j.add_argument("--seed", type=int, default=0)
    j.set_defaults(func=cmd_json)

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

    sub.add_parser("doctor", help="versions, threads, device, what is cached").set_defaults(func=cmd_doctor)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0  # a command may return its own status (json validate: 1 = invalid)
    except NeuroError as e:
        print(f"neuro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
