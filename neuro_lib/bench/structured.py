"""`neuro bench json`: the cost and the effect of schema-constrained decoding, and Struct-mini.

    neuro bench json --profile smoke --json
    neuro bench json --profile bench --threads 2 --out data/reference/bench_json.json

Constraint cost (every registered schema, byte and bpe:N vocabularies, an untrained model so
the output is as unruly as it gets): validity of constrained documents (goal 100 %), the
per-token mask time p50/p99 in microseconds (llguidance's mask plus our glue: what the
processor adds before sampling), end-to-end latency p50/p95 per document, and decoding
tokens/s with and without the constraint (the same model and seeds).
Struct-mini (structured/expert.py): both experts trained for the profile's step budget, then
greedy on held-out phrasing templates: validity unconstrained vs constrained, exact match,
field accuracy overall and per field. Timings measure the machine they ran on: re-run the
timing rows on a quiet one before quoting them.
"""
from __future__ import annotations

import time

import torch

from neuro_lib.bench.report import make_report, percentile
from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import generate
from neuro_lib.models import build_model
from neuro_lib.profiles import get_profile
from neuro_lib.structured.constrain import JsonConstraint
from neuro_lib.structured.expert import KINDS, evaluate_expert, train_expert
from neuro_lib.structured.schemas import list_schemas, load_schema
from neuro_lib.structured.task import make_examples
from neuro_lib.structured.verify import verify_text
from neuro_lib.tokenizers import ByteTokenizer, train_tokenizer
from neuro_lib.bench.flags import add_seed, add_threads


def task_bpe(size: int = 1024, seed: int = 0):
    """A BPE vocabulary trained on Struct-mini descriptions and their JSON (the text it will write)."""
    ex = make_examples(3000, seed=seed, split="train")
    return train_tokenizer(f"bpe:{size}", b"\n".join(e.source + b" " + e.target for e in ex))


def constraint_cost(tokenizer, n_docs: int = 3, budget: int = 160, seed: int = 0) -> dict:
    """Random-model generation over every schema, constrained and not: validity, mask times, latency, tok/s."""
    torch.manual_seed(seed)
    model = build_model("gpt", vocab_size=tokenizer.vocab_size + 1, d_model=64, n_layer=2, n_head=4, d_ff=256,
                        block_size=budget + 64, dropout=0.0)
    valid, valid_free, total, mask_us, latency = 0, 0, 0, [], []
    tok_s = {"constrained": [0, 0.0], "unconstrained": [0, 0.0]}
    for sid in list_schemas():
        schema = load_schema(sid)
        for i in range(n_docs):
            t0 = time.perf_counter()
            c = JsonConstraint(schema, tokenizer, budget=budget, name=sid)
            out = generate(model, tokenizer, b"{", max_new_tokens=budget, temperature=1.0, seed=seed + i,
                           processor=c, eos_id=c.eos_id)
            dt = time.perf_counter() - t0
            latency.append(dt)
            valid += not verify_text(out, schema)[1]
            total += 1
            mask_us += c.mask_us
            tok_s["constrained"][0] += c.n_consumed + 1
            tok_s["constrained"][1] += dt
            t0 = time.perf_counter()
            out = generate(model, tokenizer, b"{", max_new_tokens=c.n_consumed + 1, temperature=1.0, seed=seed + i,
                           eos_id=c.eos_id)
            tok_s["unconstrained"][0] += len(tokenizer.encode(out)) + 1
            valid_free += not verify_text(b"{" + out, schema)[1]
            tok_s["unconstrained"][1] += time.perf_counter() - t0
    return {"validity": valid / total, "validity_unconstrained": valid_free / total, "n_docs": total, "mask_us": mask_us, "latency_s": latency,
            "tokens_per_s": {k: n / s for k, (n, s) in tok_s.items()}}


def add_arguments(p):
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py (tasks.struct_mini)")
    p.add_argument("--steps", type=int, default=0, help="optimiser steps per expert (0 = the profile's)")
    p.add_argument("--n-eval", type=int, default=0, help="held-out examples decoded per expert (0 = profile's)")
    p.add_argument("--n-docs", type=int, default=3, help="random-model documents per schema and tokenizer")
    p.add_argument("--bpe-size", type=int, default=1024, help="the bpe:N vocabulary for the mask-time rows")
    p.add_argument("--skip-experts", action="store_true", help="only the constraint-cost rows")
    add_threads(p)
    add_seed(p, 0)


def run(args) -> dict:
    if min(args.steps, args.n_eval) < 0 or args.n_docs <= 0 or args.bpe_size < 256:
        raise NeuroError("--steps and --n-eval must be non-negative, --n-docs positive, --bpe-size at least 256")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    s = profile.tasks.struct_mini
    results = []
    for tok in (ByteTokenizer(), task_bpe(args.bpe_size, args.seed)):
        r = constraint_cost(tok, args.n_docs, seed=args.seed)
        name = tok.spec
        results += [
            {"name": f"{name} random-model validity, constrained", "value": r["validity"], "unit": "fraction",
             "n": r["n_docs"]},
            {"name": f"{name} random-model validity, unconstrained", "value": r["validity_unconstrained"],
             "unit": "fraction", "n": r["n_docs"]},
            {"name": f"{name} mask time p50", "value": round(percentile(r["mask_us"], 50), 2), "unit": "us"},
            {"name": f"{name} mask time p99", "value": round(percentile(r["mask_us"], 99), 2), "unit": "us"},
            {"name": f"{name} latency per document p50", "value": round(percentile(r["latency_s"], 50) * 1e3, 1),
             "unit": "ms"},
            {"name": f"{name} latency per document p95", "value": round(percentile(r["latency_s"], 95) * 1e3, 1),
             "unit": "ms"},
            {"name": f"{name} tokens/s unconstrained", "value": round(r["tokens_per_s"]["unconstrained"]),
             "unit": "tok/s"},
            {"name": f"{name} tokens/s constrained", "value": round(r["tokens_per_s"]["constrained"]),
             "unit": "tok/s"}]
    if not args.skip_experts:
        examples = make_examples(args.n_eval or s.n_eval, seed=args.seed + 7, split="heldout")
        for kind in KINDS:
            res = train_expert(kind, profile, args.steps or None, seed=args.seed)
            m = evaluate_expert(res.model, examples, s.budget)
            results.append({"name": f"{kind} params", "value": res.model.num_params(), "unit": "params"})
            for mode in ("unconstrained", "constrained"):
                for k in ("validity", "exact_match", "field_accuracy"):
                    results.append({"name": f"{kind} {k}, {mode}", "value": round(m[mode][k], 4),
                                    "unit": "fraction"})
            for f, v in m["constrained"]["per_field"].items():
                results.append({"name": f"{kind} field {f}, constrained", "value": round(v, 4), "unit": "fraction"})
    config = {"profile": args.profile, "steps": args.steps or s.steps, "n_eval": args.n_eval or s.n_eval,
              "n_docs": args.n_docs, "bpe_size": args.bpe_size, "seed": args.seed, "schemas": list_schemas(),
              "eval": "held-out templates, greedy", "skip_experts": args.skip_experts}
    return make_report("json", config, results)
