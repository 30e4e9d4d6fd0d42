"""`neuro`: the command line.

    neuro train --arch gpt --corpus stdlib-docs --time-budget 120 --out runs/x   # again: resumes runs/x
    neuro eval runs/x --corpus stdlib-docs
    neuro generate runs/x --prompt "The module"
    neuro train --arch rnk --task chat --steps 300 --out runs/rnk && neuro chat runs/rnk --prompt "Hello!"
    neuro bench lm --arch gpt --corpus text:FILE --time-budget 200 --json
    neuro report --profile smoke --only 00 --jobs 2
    neuro data stats stdlib-docs
    neuro json --schema product_v1 --prompt "The blue kettle costs $12."; neuro json validate doc.json --schema product_v1
    neuro rag index --corpus stdlib-docs --out runs/idx && neuro rag ask runs/idx "In gzip, which exception ..."
    neuro doctor
    neuro tool calc "2**10 / 3"; neuro tool run FILE.py --timeout 2; neuro tool fetch URL --allow HOST
    neuro run "what is 17 * 23 + 4?" --trace; neuro run "a blue kettle, 12 dollars" --json --schema product_v1
    neuro chat --memory memory.sqlite; neuro graph show default --out graph.html; neuro init myproject

Bad input gets one sentence on stderr and exit status 2, before any work starts;
nothing on disk is changed by a failed command. SIGINT/SIGTERM stop `train` after a
step and a checkpoint (exit 128 + signal). Tests: tests/test_cli.py, tests/test_runs.py.
"""
from __future__ import annotations

import argparse
import codecs
import json
import signal
import sys
from pathlib import Path

from neuro_lib.argtypes import Parser as _Parser  # the names command modules import from here
from neuro_lib.argtypes import number as _number
from neuro_lib.argtypes import positive as _positive
from neuro_lib.argtypes import seed as _seed
from neuro_lib.errors import NeuroError


def _ckpt_every(text):
    """--ckpt-every: N steps, or Ns / Nm of wall clock; -> (steps, seconds)."""
    unit = {"s": 1, "m": 60}.get(text[-1:])
    v = _number(float if unit else int, 0)(text[:-1] if unit else text)
    return (0, v * unit) if unit else (v, 0.0)


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
    from neuro_lib.models import ARCHS
    from neuro_lib.profiles import get_profile
    from neuro_lib.train.lm import train_lm

    profile = get_profile(a.profile)
    if a.arch not in ARCHS:
        raise NeuroError(f"unknown arch {a.arch!r}; choose one of {sorted(ARCHS)}")
    out = Path(a.out)
    ckpt_steps, ckpt_s = a.ckpt_every
    if a.task == "chat":
        from neuro_lib.train.chat import train_rnk

        if a.arch != "rnk":
            raise NeuroError("--task chat trains the rnk architecture; add --arch rnk")
        if a.corpus is not None or a.tokenizer not in (None, "byte"):
            raise NeuroError("--task chat reads chat records (generated, or --chat-data FILE) with the byte "
                             "tokenizer; drop --corpus and --tokenizer")
        if a.chat_data is not None and not Path(a.chat_data).is_file():
            raise NeuroError(f"--chat-data {a.chat_data} does not exist")
        res = train_rnk(profile, overrides=_parse_overrides(a.model), steps=a.steps, seed=a.seed, out_dir=out,
                        chat_data=a.chat_data, time_budget_s=a.time_budget)
        val = [r for r in res.history if r.get("kind") == "val"][-1]
        print(f"rnk: {res.model.num_params():,} params, held-out loss {val['val_loss']:.4f}, checkpoint in {out}")
        return
    if a.chat_data is not None:
        raise NeuroError("--chat-data needs --task chat")
    train = {"seed": a.seed, "ckpt_every": ckpt_steps, "ckpt_every_s": ckpt_s}
    if a.steps:
        train.update(max_steps=a.steps, time_budget_s=0)
    elif a.time_budget:
        train["time_budget_s"] = a.time_budget
    res = train_lm(a.arch, a.corpus or "stdlib-docs", tokenizer=a.tokenizer or "byte", profile=profile, out_dir=out,
                   model_overrides=_parse_overrides(a.model), train_overrides=train)
    print(f"{a.arch}: {res.model.num_params():,} params, val bpb {res.val_bpb:.4f}, checkpoint in {out}")


def cmd_eval(a):
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.checkpoint import load_checkpoint
    from neuro_lib.train.evaluate import evaluate_bpb

    model, tok, cfg = load_checkpoint(a.checkpoint)
    corpus = load_corpus(a.corpus or cfg.get("corpus", "stdlib-docs"))
    block = a.block_size or cfg.get("train", {}).get("block_size") or 128
    if model.max_len and block > model.max_len:
        raise NeuroError(f"--block-size {block} exceeds the model's context of {model.max_len} tokens")
    text = corpus.val[:a.max_bytes] if a.max_bytes else corpus.val
    if len(tok.encode(text)) < 2:
        raise NeuroError(f"the text to score ({len(text)} bytes) is shorter than two tokens; raise --max-bytes")
    r = evaluate_bpb(model, tok, text, block)
    print(json.dumps({"checkpoint": str(a.checkpoint), "corpus": corpus.spec, **r}, indent=2))


def _check_sampling(a) -> None:
    """Reject sampling options without a meaning; temperature 0 is greedy, top-k 0 keeps every token."""
    if a.temperature < 0:
        raise NeuroError(f"--temperature must be >= 0 (0 is greedy), got {a.temperature}")
    if a.top_k < 0:
        raise NeuroError(f"--top-k must be >= 0 (0 keeps every token), got {a.top_k}")
    if not 0 < a.top_p <= 1:
        raise NeuroError(f"--top-p must be in (0, 1] (1 keeps every token), got {a.top_p}")


def _utf8(text: str, flag: str) -> bytes:
    """Command-line text as UTF-8 bytes; bytes that are not UTF-8 (surrogate escapes) are refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = e.object[e.start].encode("utf-8", "surrogateescape")
        raise NeuroError(f"{flag} is not valid UTF-8 (byte 0x{bad.hex()} at position {e.start})") from None


def _stop_bytes(stops: list[str]) -> list[bytes]:
    """--stop values with backslash escapes (\\n, \\t, \\x41) decoded; other characters kept as UTF-8."""
    out = []
    for s in stops:
        try:
            b = codecs.escape_decode(_utf8(s, "--stop"))[0]
        except ValueError as e:
            raise NeuroError(f"--stop {s!r} has a broken escape ({e})") from None
        if not b:
            raise NeuroError("--stop must not be empty")
        out.append(b)
    return out


def cmd_generate(a):
    from neuro_lib.infer.best_of_n import best_of_n
    from neuro_lib.infer.drafters import ModelDrafter, NGramDrafter
    from neuro_lib.infer.engine import Engine, Sampling, cut_at_stop, stream_text
    from neuro_lib.infer.speculative import speculative_stream
    from neuro_lib.checkpoint import load_checkpoint

    _check_sampling(a)
    if a.gamma < 1:
        raise NeuroError(f"--gamma must be at least 1, got {a.gamma}")
    if a.best_of < 1:
        raise NeuroError(f"--best-of must be at least 1, got {a.best_of}")
    if a.best_of > 1 and (a.draft or a.stream):
        raise NeuroError("--best-of picks among finished samples: it takes neither --draft nor --stream")
    if a.draft and a.draft != "ngram" and not Path(a.draft).is_dir():
        raise NeuroError(f"draft run {a.draft} does not exist (give a checkpoint directory or 'ngram')")
    prompt, stop = _utf8(a.prompt, "--prompt"), _stop_bytes(a.stop)
    model, tok, _ = load_checkpoint(a.checkpoint)
    drafter = None
    if a.draft == "ngram":
        drafter = NGramDrafter()
    elif a.draft:
        draft, draft_tok, _ = load_checkpoint(a.draft)
        if draft_tok.spec != tok.spec:
            raise NeuroError(f"draft {a.draft} uses tokenizer {draft_tok.spec!r}, the target {tok.spec!r}: "
                             f"speculative decoding needs the same one")
        drafter = ModelDrafter(Engine(draft, draft_tok))
    stop = tuple(stop or ())
    params = Sampling(a.max_new_tokens, a.temperature, a.top_k, a.top_p, a.repetition_penalty, stop, a.seed)
    engine = Engine(model, tok)
    if a.best_of > 1:
        out = best_of_n(engine, prompt, a.best_of, params).best.text
    else:
        tokens = (speculative_stream(engine, drafter, prompt, params, a.gamma, adaptive=a.adaptive) if drafter
                  else engine.stream(prompt, params))
        if a.stream:  # as it comes; a character split across chunks is decoded once whole
            utf8 = codecs.getincrementaldecoder("utf-8")("replace")
            print(a.prompt, end="", flush=True)
            for chunk in stream_text(tokens, tok, stop):
                print(utf8.decode(chunk), end="", flush=True)
            print(utf8.decode(b"", final=True))
            return
        out = cut_at_stop(tok.decode([t.id for t in tokens]), stop)[0]
    print(a.prompt + out.decode("utf-8", errors="replace"))  # bytes that are not UTF-8 show as U+FFFD


def cmd_chat(a):
    """neuro chat [CHECKPOINT]: turns through the runtime (chat graph), with short- and long-term memory;
    an RNK checkpoint is the expert for every skill, without one the profile's tiny experts answer."""
    from neuro_lib.runtime.chat import ChatSession, RNKChatExpert, format_turn
    from neuro_lib.runtime.types import EXIT_CODES

    if a.prompt is not None and not a.prompt.strip():
        raise NeuroError("--prompt is empty")
    cfg = _runtime_config(a, default_graph="chat")
    experts = None
    if a.checkpoint:
        from neuro_lib.checkpoint import load_checkpoint

        model, _, _ = load_checkpoint(a.checkpoint)
        experts = {"general": RNKChatExpert(model, max_new_bytes=a.max_new_bytes)}
    from neuro_lib.runtime.config import build_engine

    session = ChatSession(build_engine(cfg, experts))
    if a.prompt is not None:
        t = session.turn(a.prompt)
        print(json.dumps(t) if a.json else format_turn(t))
        return EXIT_CODES[t.get("status", "verified")]  # a memory command (/remember, /recall) has no status
    session.loop(as_json=a.json)
    return 0


def _runtime_config(a, default_graph: str = "default"):
    """Settings for the runtime: --config FILE (or the defaults), then the command line's overrides."""
    from neuro_lib.runtime.config import RuntimeConfig, load_config

    cfg = load_config(a.config) if a.config else RuntimeConfig(graph=default_graph)
    for key in ("graph", "profile", "memory", "window", "router", "threshold"):
        if getattr(a, key, None) is not None:
            setattr(cfg, key, getattr(a, key))
    if a.ollama_url and not (a.ollama or cfg.ollama):
        raise NeuroError("--ollama-url needs --ollama MODEL (or an ollama entry in the settings file)")
    if a.ollama or a.ollama_url:
        cfg.ollama = {**(cfg.ollama or {}), **({"model": a.ollama} if a.ollama else {}),
                      **({"url": a.ollama_url} if a.ollama_url else {})}
    return cfg


def cmd_run(a):
    """neuro run "query": one run through the runtime graph; the answer, or the failure, and --trace."""
    from neuro_lib.runtime.config import build_engine
    from neuro_lib.runtime.engine import input_error
    from neuro_lib.runtime.types import EXIT_CODES, Query

    # every check of the input here, before build_engine trains or loads a single expert
    _utf8(a.query, "the query")
    if a.schema and not a.json:
        raise NeuroError("--schema goes with --json (a JSON answer under that schema)")
    error = input_error(Query(a.query, a.json, a.schema))
    if error is not None:
        raise NeuroError(error)
    if a.trace_out:
        from neuro_lib.paths import check_new_file

        check_new_file(a.trace_out, (".html",), force=None)  # None: there is no --force here
    engine = build_engine(_runtime_config(a))
    r = engine.run(a.query, wants_json=a.json, schema_id=a.schema)
    if a.trace_out:
        from neuro_lib.atomic import write_atomic
        from neuro_lib.viz.graph import trace_html

        write_atomic(a.trace_out, trace_html(engine.graph, r))  # a failed drawing leaves no file behind
    if a.format == "json":
        print(json.dumps(r.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        # only a verified answer is printed bare; any other is labelled on stdout, so a pipe cannot mistake it
        print(labelled(r))
        if a.trace:
            print(format_trace(r))
    if r.status == "failed":
        print(f"neuro: error: {r.error}", file=sys.stderr)
    elif r.status != "verified":
        print(f"neuro: {r.status}: {r.error}", file=sys.stderr)
    return EXIT_CODES[r.status]


def labelled(r) -> str:
    """The answer as `neuro run` prints it: bare when verified, "ANSWER (unverified)", "(abstained: WHY)"."""
    if r.status == "verified" or r.status == "failed" and not r.answer:
        return r.answer
    if r.status == "abstained":
        return f"(abstained: {r.error})"
    return f"{r.answer} ({r.status})"


def format_trace(r) -> str:
    """The trace as a table: step, node, kind, ms, tokens, model calls, ok, note, output (shortened)."""
    rows = [f"route: {r.route.path} path, skills {'+'.join(r.route.skills)}, complexity {r.route.complexity:.2f} "
            f"({r.route.router})" if r.route else "route: none",
            f"{'#':>2}  {'node':<12} {'kind':<8} {'ms':>8} {'tok':>5} {'calls':>5}  ok  note / output"]
    for s in r.trace:
        out = s.output if isinstance(s.output, str) else json.dumps(s.output, default=str, ensure_ascii=False)
        text = (f"[{s.note}] " if s.note else "") + " ".join(str(out).split())
        rows.append(f"{s.step:>2}  {s.node:<12} {s.kind:<8} {s.seconds * 1e3:>8.2f} {s.tokens:>5} {s.model_calls:>5}  "
                    f"{'y' if s.ok else 'n':<3} {text[:90]}")
    rows.append(f"total {r.timings.get('total_s', 0.0) * 1e3:.2f} ms, {r.status}")
    return "\n".join(rows + r.explain())


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


def cmd_tool(a):
    """neuro tool calc|run|fetch: one tool call; an error result is one sentence and exit 2 (a program
    that fails inside the sandbox is not bad input: its output is shown and the exit status is 1)."""
    from neuro_lib.tools import get_tool
    from neuro_lib.tools.sandbox import Limits

    if a.tool_command == "calc":
        tool, args = get_tool("calc"), {"expression": a.expression}
    elif a.tool_command == "run":
        path = Path(a.file)
        if not path.is_file():
            raise NeuroError(f"{path} is not a file")
        try:
            code = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise NeuroError(f"{path} is not UTF-8 text") from None
        limits = Limits(wall_s=a.timeout, cpu_s=max(1, int(a.timeout + 0.999)), memory_mb=a.memory)
        tool, args = get_tool("python", isolation=a.isolation, limits=limits), {"code": code}
    else:
        tool, args = get_tool("fetch", allow=a.allow, max_bytes=a.max_bytes, timeout_s=a.timeout,
                              store=a.store), {"url": a.url}
    r = tool.call(args)
    if a.json:
        print(json.dumps(r.to_dict(), indent=2, ensure_ascii=False))
    if r.value is None:
        raise NeuroError(r.error)
    if not a.json:
        if a.tool_command == "calc":
            print(r.provenance["text"])
        elif a.tool_command == "run":
            v = r.value
            sys.stdout.write(v["stdout"])
            sys.stderr.write(v["stderr"])
            print(f"[{v['isolation']} isolation, exit {v['exit_code']}, {v['wall_s']:.3f} s wall, {v['cpu_s']:.3f} s "
                  f"CPU{', killed: ' + v['reason'] if v['killed_by'] else ''}]", file=sys.stderr)
        else:
            for pas in r.value["passages"]:
                print(f"[{pas['span'][0]}:{pas['span'][1]}] {pas['text']}")
            print(" ".join(f"{k}={r.provenance[k]}" for k in ("final_url", "status", "bytes", "sha256")), file=sys.stderr)
    if not r.ok:
        raise SystemExit(1)


def _runtime_arguments(p) -> None:
    """The runtime's settings on the command line (they override --config's)."""
    p.add_argument("--config", help="a settings file (neuro init writes one)")
    p.add_argument("--graph", help="a graph file, or a name in data/graphs/")
    p.add_argument("--profile", help="the experts' sizes (smoke, bench, full)")
    p.add_argument("--memory", help="long-term memory file (SQLite); kept across runs")
    p.add_argument("--window", type=_positive(int), help="short-term memory: turns kept in context")
    p.add_argument("--router", choices=("classifier", "keywords"),
                   help="classifier (default: the best measured, routed 0.30 vs keywords 0.09 end to end, "
                        "data/reference/runtime_bench_e2e.json; trained on first use, then cached) or keywords")
    p.add_argument("--threshold", type=_number(float, 0, strict=False), help="router: slow path at or above")
    p.add_argument("--ollama", metavar="MODEL", help="add a local Ollama model as the chat expert")
    p.add_argument("--ollama-url", help="the Ollama server (default http://127.0.0.1:11434)")


def build_parser() -> argparse.ArgumentParser:
    from neuro_lib.bench import SUITES
    from neuro_lib.commands import COMMANDS

    p = _Parser(prog="neuro", description="neuro_lib: a research workbook for small language models")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on a corpus")
    t.add_argument("--arch", default="gpt")
    t.add_argument("--corpus", help="stdlib-docs (default) or text:PATH")
    t.add_argument("--tokenizer", help="byte (default), bpe:N, word:N, vq:K")
    t.add_argument("--profile", default="smoke", help="sizes from profiles.py: smoke, bench, full")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--time-budget", type=_positive(float), help="training seconds")
    budget.add_argument("--steps", type=_positive(int), help="optimiser steps")
    t.add_argument("--out", required=True, help="run folder; the same command again resumes it")
    t.add_argument("--seed", type=_seed, default=1337, help="fixes weights, batches, dropout")
    t.add_argument("--ckpt-every", type=_ckpt_every, default=(0, 120.0), metavar="N|Ns|Nm",
                   help="checkpoint every N steps, or every N seconds/minutes of wall clock (default 120s)")
    t.add_argument("--model", nargs="*", metavar="KEY=VALUE", help="model config overrides, e.g. n_layer=6")
    t.add_argument("--task", choices=["lm", "chat"], default="lm",
                   help="lm: next-byte on a corpus; chat: RNK on synthetic chat (data/chat.py)")
    t.add_argument("--chat-data", help="with --task chat: a JSONL file of chat records instead of generated ones")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="bits per byte of a checkpoint on a corpus's validation split")
    e.add_argument("checkpoint")
    e.add_argument("--corpus", help="defaults to the corpus the checkpoint was trained on")
    e.add_argument("--block-size", type=_positive(int))
    e.add_argument("--max-bytes", type=_number(int, 0, strict=False), default=0,
                   help="score only the first N validation bytes (0 = all)")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("generate", help="sample a continuation")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", default="")
    g.add_argument("--max-new-tokens", type=_positive(int), default=200)
    g.add_argument("--temperature", type=_number(float), default=0.8, help=">= 0; 0 is greedy")
    g.add_argument("--top-k", type=_number(int), default=40, help=">= 0; 0 keeps every token")
    g.add_argument("--top-p", type=_number(float), default=0.95, help="in (0, 1]; 1 keeps every token")
    g.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable; \\n escapes allowed)")
    g.add_argument("--seed", type=_seed)
    g.add_argument("--repetition-penalty", type=_positive(float), default=1.0, help="CTRL penalty on tokens already seen")
    g.add_argument("--draft", help="speculative decoding: a draft run with the same tokenizer, or 'ngram'")
    g.add_argument("--gamma", type=int, default=4, help="draft tokens per speculative round")
    g.add_argument("--adaptive", action="store_true", help="grow/shrink gamma with the acceptance")
    g.add_argument("--best-of", type=int, default=1, help="sample N continuations, print the most likely")
    g.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser("chat", help="talk through the runtime with memory across turns (stdin loop, or --prompt)",
                       epilog="A reply no check confirmed is shown as 'unverified: REPLY' (a chat reply has nothing "
                              "to be checked against). With --prompt the exit status is that of neuro run: 0 "
                              "verified, 3 unverified or abstained, 1 failed, 2 bad input.")
    c.add_argument("checkpoint", nargs="?", help="an RNK chat run to answer every turn (default: the tiny experts)")
    c.add_argument("--prompt", help="one user turn; prints the reply and exits")
    c.add_argument("--max-new-bytes", type=_positive(int), default=96, help="with a checkpoint: reply length")
    c.add_argument("--json", action="store_true", help="print each turn as JSON (reply, route, memory, intent...)")
    _runtime_arguments(c)
    c.set_defaults(func=cmd_chat)

    rn = sub.add_parser("run", help="answer a query through the runtime graph (router, experts, judge, memory)",
                        epilog="Every answer is checked by a node of the graph (the fast path's cheap verifier, the "
                               "slow path's judge: the calculator plan recomputed and using the question's numbers, "
                               "the program re-run, the JSON validated and its values found in the query, the "
                               "retrieved passage's support). Exit status: 0 verified (the answer alone on stdout); "
                               "3 unverified (no check could decide, e.g. chat; stdout 'ANSWER (unverified)') or "
                               "abstained (the system declines: nothing relevant retrieved, or a check rejected the "
                               "answer; stdout '(abstained: WHY)'), with a one-line reason on stderr; 1 the run failed; 2 bad input. --format json "
                               "includes \"status\" and each task's verdict.")
    rn.add_argument("query")
    rn.add_argument("--json", action="store_true", help="a JSON answer (needs --schema)")
    rn.add_argument("--schema", help="the schema id of the JSON answer (data/schemas/)")
    rn.add_argument("--trace", action="store_true", help="print the trace: a line per step")
    rn.add_argument("--format", choices=["text", "json"], default="text", help="json: the whole Result")
    rn.add_argument("--trace-out", metavar="FILE.html", help="draw the traced run (graph, step slider, timeline)")
    _runtime_arguments(rn)
    rn.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="run a benchmark suite")
    bsub = b.add_subparsers(dest="suite", required=True)
    for name, module in SUITES.items():
        sp = bsub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        sp.add_argument("--json", action="store_true", help="also print the JSON result")
        sp.add_argument("--out", help="write the JSON result to this file")
        sp.set_defaults(func=cmd_bench)

    tl = sub.add_parser("tool", help="call a tool: safe calculator, sandboxed Python, web reader with provenance")
    tsub = tl.add_subparsers(dest="tool_command", required=True)
    tc = tsub.add_parser("calc", help="evaluate an arithmetic expression safely")
    tc.add_argument("expression")
    tr = tsub.add_parser("run", help="run a Python file in the sandbox")
    tr.add_argument("file")
    tr.add_argument("--timeout", type=_positive(float), default=5.0, help="wall-clock seconds (CPU: the same)")
    tr.add_argument("--memory", type=_positive(int), default=512, help="address-space limit in MiB")
    tr.add_argument("--isolation", choices=["auto", "namespace", "process"], default="auto")
    tf = tsub.add_parser("fetch", help="fetch a page from allowed hosts; passages with byte spans, provenance")
    tf.add_argument("url")
    tf.add_argument("--allow", action="append", default=[], metavar="HOST", help="allowed host (repeatable)")
    tf.add_argument("--max-bytes", type=_positive(int), default=2_000_000)
    tf.add_argument("--timeout", type=_positive(float), default=10.0)
    tf.add_argument("--store", help="keep the raw bytes here by sha256, for quote checks")
    for sp in (tc, tr, tf):
        sp.add_argument("--json", action="store_true", help="print the whole ToolResult as JSON")
        sp.set_defaults(func=cmd_tool)

    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv=None) -> int:
    from neuro_lib.errors import Interrupted, signals_interrupt

    try:
        with signals_interrupt():
            return _dispatch(argv)
    except KeyboardInterrupt as e:  # start-up, parsing, or a command without handlers of its own
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(f"neuro: {e}" if str(e) else f"neuro: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum


def _dispatch(argv) -> int:
    from neuro_lib.atomic import DISK_ERRNOS, disk_error

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0  # a command may return its own status (json validate: 1 = invalid)
    except NeuroError as e:
        print(f"neuro: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        print(f"neuro: error: {disk_error(e, e.filename or 'a file')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
