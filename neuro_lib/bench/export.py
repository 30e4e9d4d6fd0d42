"""`neuro bench export`: what exporting and quantising a model costs in size, quality and speed.

    neuro bench export --profile smoke --out data/reference/export_smoke.json
    neuro bench export --profile bench --run runs/gpt --threads 2 --out data/reference/export_bench.json

A GPT (the profile's tasks.export sizes, byte tokenizer) is trained here for `train_s`
seconds unless `--run` names a trained run. Then, for every format and type:

- quality (does not depend on machine load): file size in bytes and bpb on the validation
  split (first eval_bytes) of eager fp32; ONNX fp32 and ONNX int8 dynamic (onnxruntime);
  the pt2 program; GGUF F32, Q8_0 and Q4_0 dequantised back into the model, with the tied
  embedding quantised and kept in F32; torch dynamic int8; torchao weight-only int8 and int4
  (where torchao imports). bpb_delta_pct is relative to eager fp32.
- speed (`--no-timing` skips it): prefill tokens/s (one prompt of prompt_len tokens) and decode
  tokens/s (new_tokens greedy single-token steps after it, batch 1) of eager, torch.compile,
  onnxruntime fp32 and int8, torch dynamic int8 and torchao int8; each runtime in its own fresh
  process with `--threads` intra-op threads (torch.set_num_threads, or onnxruntime's
  intra_op_num_threads), best of `repeats`. Timings are only meaningful on a quiet machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from neuro_lib.bench.report import make_report
from neuro_lib.profiles import ExportSizes, get_profile

RUNTIMES = ("eager", "compile", "onnx-fp32", "onnx-int8", "torch-int8", "torchao-int8")


def add_arguments(p):
    p.add_argument("--run", help="a trained GPT run to export (default: train one here)")
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.export)")
    p.add_argument("--corpus", default="stdlib-docs")
    p.add_argument("--threads", type=int, default=0, help="threads per timed process (0 = the profile's)")
    p.add_argument("--no-timing", action="store_true", help="size and bpb only (load-independent)")
    p.add_argument("--seed", type=int, default=1337)


class OrtModule(nn.Module):
    """An onnxruntime export behind the `model(tokens) -> logits` call evaluate_bpb makes."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        self.anchor = nn.Parameter(torch.zeros(1))  # evaluate_bpb asks a parameter for the device

    def forward(self, tokens):
        return torch.from_numpy(self.lm.logits(tokens.numpy()))


def _bpb(model, tok, val: bytes, window: int, eval_bytes: int) -> float:
    from neuro_lib.train.evaluate import evaluate_bpb

    return evaluate_bpb(model, tok, val, window, max_bytes=eval_bytes)["bpb"]


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and f.suffix != ".json")


def quality_rows(model, tok, val: bytes, window: int, eval_bytes: int, work: Path) -> list[dict]:
    """Size and bpb of every format and type (see the module docstring)."""
    from neuro_lib.export.gguf_file import read_gguf, write_gguf
    from neuro_lib.export.onnx import OnnxLM, export_onnx, quantize_int8
    from neuro_lib.export.pt2 import export_pt2, load_pt2
    from neuro_lib.export.quant import state_bytes, torch_dynamic_int8, torchao_status, torchao_weight_only

    rows = []

    def add(fmt, qtype, size, bpb, **extra):
        rows.append({"name": f"{fmt}/{qtype}", "value": bpb, "unit": "bpb", "format": fmt, "type": qtype,
                     "bytes": int(size), **extra})

    base = _bpb(model, tok, val, window, eval_bytes)
    add("eager", "fp32", state_bytes(model), base)
    onnx_dir = export_onnx(model, work / "onnx")
    add("onnx", "fp32", _dir_bytes(onnx_dir), _bpb(OrtModule(OnnxLM(onnx_dir)), tok, val, window, eval_bytes))
    int8_dir = quantize_int8(onnx_dir, work / "onnx-int8")
    add("onnx", "int8-dynamic", _dir_bytes(int8_dir), _bpb(OrtModule(OnnxLM(int8_dir)), tok, val, window, eval_bytes))
    pt2_dir = export_pt2(model, work / "pt2")
    prefill, _ = load_pt2(pt2_dir)

    class Pt2(nn.Module):
        def __init__(self):
            super().__init__()
            self.run = prefill.module()

        def forward(self, tokens):
            return self.run(tokens)[0]

        def train(self, mode: bool = True):  # an exported program has no training mode to switch
            return self

    add("pt2", "fp32", _dir_bytes(pt2_dir), _bpb(Pt2(), tok, val, window, eval_bytes))
    for qtype in ("f32", "q8_0", "q4_0"):
        for q_emb in ((True,) if qtype == "f32" else (True, False)):
            path = write_gguf(model, tok, work / f"m-{qtype}-{int(q_emb)}.gguf", qtype, quantize_embedding=q_emb)
            m, _, _ = read_gguf(path)
            add("gguf", qtype if q_emb else f"{qtype}+f32-embedding", path.stat().st_size,
                _bpb(m, tok, val, window, eval_bytes))
    q = torch_dynamic_int8(model)
    add("torch", "int8-dynamic", state_bytes(q), _bpb(q, tok, val, window, eval_bytes))
    ok, why = torchao_status()
    if ok:
        for bits in (8, 4):
            q = torchao_weight_only(model, bits)
            add("torchao", f"int{bits}-weight-only", state_bytes(q), _bpb(q, tok, val, window, eval_bytes),
                note="int4 stored unpacked in int8 on CPU" if bits == 4 else "")
    else:
        rows.append({"name": "torchao", "value": float("nan"), "unit": "bpb", "note": why})
    for r in rows:
        if r.get("unit") == "bpb" and r["value"] == r["value"]:
            r["bpb_delta_pct"] = 100.0 * (r["value"] - base) / base
    return rows


# -- timing: one fresh process per runtime ------------------------------------------------------
def _time_torch(step, init_state, prompt: list[int], new_tokens: int) -> tuple[float, float]:
    state = init_state()
    x = torch.tensor([prompt])
    t0 = time.perf_counter()
    logits, state = step(x, state)
    t1 = time.perf_counter()
    tok = logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(new_tokens):
        logits, state = step(tok, state)
        tok = logits[:, -1].argmax(-1, keepdim=True)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def worker(spec: dict) -> dict:
    """Time one runtime (spec: runtime, run, work, threads, prompt_len, new_tokens, repeats)."""
    torch.set_num_threads(spec["threads"])
    from neuro_lib.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(spec["run"])
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, model.config.vocab_size, spec["prompt_len"]).tolist()
    rt, new = spec["runtime"], spec["new_tokens"]
    if rt.startswith("onnx"):
        from neuro_lib.export.onnx import OnnxLM

        lm = OnnxLM(Path(spec["work"]) / ("onnx" if rt == "onnx-fp32" else "onnx-int8"), threads=spec["threads"])

        def run_once():
            t0 = time.perf_counter()
            logits, state = lm.prefill(np.array([prompt]))
            t1 = time.perf_counter()
            tok = logits[:, -1].argmax(-1)[:, None]
            for _ in range(new):
                logits, state = lm.step(tok, state)
                tok = logits[:, -1].argmax(-1)[:, None]
            return t1 - t0, time.perf_counter() - t1
    else:
        if rt == "torch-int8":
            from neuro_lib.export.quant import torch_dynamic_int8

            model = torch_dynamic_int8(model)
        elif rt == "torchao-int8":
            from neuro_lib.export.quant import torchao_weight_only

            model = torchao_weight_only(model, 8)
        step = torch.compile(model.step, dynamic=True) if rt == "compile" else model.step

        def run_once():
            with torch.no_grad():
                return _time_torch(step, lambda: model.init_state(1), prompt, new)
    run_once()  # warm-up (and compilation)
    best = [min(t) for t in zip(*(run_once() for _ in range(spec["repeats"])))]
    return {"prefill_tok_s": spec["prompt_len"] / best[0], "decode_tok_s": new / best[1]}


def speed_rows(run: Path, work: Path, sizes: ExportSizes, threads: int) -> list[dict]:
    rows = []
    for rt in RUNTIMES:
        spec = dict(runtime=rt, run=str(run), work=str(work), threads=threads, prompt_len=sizes.prompt_len,
                    new_tokens=sizes.new_tokens, repeats=sizes.repeats)
        code = ("import json, sys; from neuro_lib.bench.export import worker; "
                "print(json.dumps(worker(json.loads(sys.argv[1]))))")
        p = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True)
        if p.returncode:
            rows.append({"name": f"{rt}/error", "value": float("nan"), "unit": "tok/s",
                         "note": (p.stderr.strip().splitlines() or ["failed"])[-1][:200]})
            continue
        res = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append({"name": f"{rt}/prefill", "value": res["prefill_tok_s"], "unit": "tok/s", "threads": threads})
        rows.append({"name": f"{rt}/decode", "value": res["decode_tok_s"], "unit": "tok/s", "threads": threads})
    return rows


def run(args) -> dict:
    from neuro_lib.checkpoint import load_checkpoint, save_checkpoint
    from neuro_lib.data.corpus import load_corpus

    profile = get_profile(args.profile)
    sizes = profile.tasks.export
    threads = args.threads or sizes.threads
    torch.manual_seed(args.seed)
    corpus = load_corpus(args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.run:
            model, tok, _ = load_checkpoint(args.run)
            run_dir = Path(args.run)
        else:
            from neuro_lib.train.lm import train_lm

            res = train_lm("gpt", corpus, "byte", profile=profile, model_overrides=dict(sizes.model),
                           train_overrides={"time_budget_s": sizes.train_s, "block_size": sizes.window,
                                            "seed": args.seed, "eval_bytes": sizes.eval_bytes or 20_000})
            model, tok = res.model.eval(), res.tokenizer
            run_dir = work / "run"
            save_checkpoint(run_dir, model, tok)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        window = min(sizes.window, model.config.block_size)
        results = quality_rows(model, tok, corpus.val, window, sizes.eval_bytes, work)
        if not args.no_timing:
            results += speed_rows(run_dir, work, sizes, threads)
    config = {"profile": args.profile, "corpus": args.corpus, "run": args.run or "trained here",
              "model": dict(model.config.__dict__), "threads": threads, "timing": not args.no_timing,
              **{k: v for k, v in asdict(sizes).items() if k != "model"}}
    return make_report("export", config, results)
