"""`neuro bench scan`: the selective-scan recurrence timed three ways, forward + backward.

    neuro bench scan --lengths 256,512,1024,2048,4096 --threads 2 --json

For each sequence length L, the recurrence h_t = exp(a_t) h_{t-1} + v_t over inputs of
shape (batch, L, E, N) (models/scans.py) is run by

- `sequential`: the plain loop over time (models.scans.sequential_scan),
- `chunked`: closed form inside chunks, recursive across chunks (models.scans.chunked_scan),
- `compiled`: the loop compiled by numba, channels in parallel (models.scan_compiled),
- `mambapy`: the log-depth Blelloch scan of the mambapy package (mambapy.pscan.pscan),

and timed as forward + backward of sum(h * g) (one warm-up, then the median and the
minimum of `--repeats` runs; on a shared machine the minimum is the less noisy of the
two). Memory is the activation memory autograd keeps for the backward pass (bytes of
the distinct tensors saved, counted through saved-tensor hooks): deterministic, and the
part of peak memory that grows with L. The fused SSM (`scan="fused"`, models/ssm_fused.py)
never builds these inputs, so it is timed in a training step (`neuro bench lm --arch mamba`).
"""
from __future__ import annotations

import statistics
import time

import torch

from neuro_lib.errors import NeuroError
from neuro_lib.models.scans import SCANS
from neuro_lib.bench.flags import add_threads


def _mambapy_scan(a, v):
    from mambapy.pscan import pscan

    return pscan(torch.exp(a), v)


SCAN_FNS = {**SCANS, "mambapy": _mambapy_scan}


def saved_bytes(fn, *inputs) -> tuple[torch.Tensor, int]:
    """Run fn(*inputs) and count the bytes of distinct tensors autograd saves for backward."""
    seen = {}

    def pack(t):
        if t.numel():
            seen[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    return out, sum(seen.values())


def scan_inputs(batch: int, length: int, d_inner: int, d_state: int, seed: int = 0):
    """Log-decays in the range a trained Mamba uses (Δ·A in [-1, 0]), inputs and an upstream gradient."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, length, d_inner, d_state)
    a = -torch.rand(shape, generator=g)
    v = torch.randn(shape, generator=g)
    grad = torch.randn(shape, generator=g)
    return a, v, grad


def time_scan(fn, a, v, grad, repeats: int) -> dict:
    """{"median_ms", "min_ms", "saved_mb"} for forward + backward of fn."""
    times, mem = [], 0
    for i in range(repeats + 1):  # the first run is a warm-up
        a_, v_ = a.detach().requires_grad_(), v.detach().requires_grad_()
        t0 = time.perf_counter()
        h, mem = saved_bytes(fn, a_, v_)
        h.backward(grad)
        if i:
            times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "saved_mb": mem / 2**20}


def measure_scans(lengths, batch=1, d_inner=256, d_state=16, repeats=5, scans=("sequential", "chunked", "compiled", "mambapy"),
                  max_sequential=4096) -> list[dict]:
    """One row per (scan, length): the timings of time_scan plus the speed-up of each scan over `sequential`."""
    rows = []
    for L in lengths:
        a, v, grad = scan_inputs(batch, L, d_inner, d_state)
        by_scan = {}
        for name in scans:
            if name == "sequential" and L > max_sequential:
                continue
            by_scan[name] = time_scan(SCAN_FNS[name], a, v, grad, repeats)
        for name, r in by_scan.items():
            row = {"scan": name, "length": L, **{k: round(x, 3) for k, x in r.items()}}
            if "sequential" in by_scan:
                row["speedup_vs_sequential"] = round(by_scan["sequential"]["min_ms"] / r["min_ms"], 2)
            rows.append(row)
    return rows


def add_arguments(p):
    p.add_argument("--lengths", default="256,512,1024,2048,4096", help="comma-separated sequence lengths")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--d-inner", type=int, default=256, help="E, SSM channels (expand * d_model)")
    p.add_argument("--d-state", type=int, default=16, help="N, state size per channel")
    p.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up")
    add_threads(p, 2)
    p.add_argument("--no-mambapy", action="store_true", help="skip the mambapy reference")


def run(args) -> dict:
    from neuro_lib.bench.report import make_report

    try:
        lengths = [int(x) for x in args.lengths.split(",")]
    except ValueError:
        raise NeuroError(f"--lengths must be comma-separated integers, got {args.lengths!r}") from None
    if not lengths or min(lengths) < 1 or args.repeats < 1:
        raise NeuroError("--lengths must be positive and --repeats at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    scans = ("sequential", "chunked", "compiled") + (() if args.no_mambapy else ("mambapy",))
    rows = measure_scans(lengths, args.batch, args.d_inner, args.d_state, args.repeats, scans)
    results = []
    for r in rows:
        extra = {"length": r["length"], "median_ms": r["median_ms"], "saved_mb": r["saved_mb"]}
        if "speedup_vs_sequential" in r:
            extra["speedup"] = r["speedup_vs_sequential"]
        results.append({"name": f"{r['scan']} fwd+bwd L={r['length']}", "value": r["min_ms"], "unit": "ms (min)",
                        **extra})
    config = {"lengths": lengths, "batch": args.batch, "d_inner": args.d_inner, "d_state": args.d_state,
              "repeats": args.repeats, "threads": torch.get_num_threads(), "timing": "min and median after 1 warm-up"}
    return make_report("scan", config, results)
