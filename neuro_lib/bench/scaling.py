"""`neuro bench scaling`: cost per byte against context length, recurrent vs attention models.

    neuro bench scaling --archs gpt,mamba --lengths 256,512,1024,2048,4096 --json

For each architecture (sizes from a profile, the context limit raised to the longest
length where the config has one) and each length L, with batch 1 and byte tokens:

- `forward`: one forward pass over L bytes, in microseconds per byte. Attention costs
  O(L) per byte (O(L^2) in all), a selective scan O(1) per byte (O(L) in all).
- `decode`: one incremental step() after a context of L bytes, in microseconds per byte:
  a KV cache attends over L keys, a recurrent state does not grow.

Timings: one warm-up, then the minimum and median of `--repeats` runs.
"""
from __future__ import annotations

import statistics
import time

import torch

from neuro_lib.errors import NeuroError
from neuro_lib.models import ARCHS, build_model
from neuro_lib.profiles import Profile, get_profile
from neuro_lib.bench.flags import add_threads


def _timed(fn, repeats: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def scaling_model(arch: str, profile: Profile, max_len: int):
    cfg = profile.model(arch)
    if "block_size" in cfg:  # positions / KV cache sized to the longest context
        cfg["block_size"] = max(cfg["block_size"], max_len)
    torch.manual_seed(0)
    return build_model(arch, **cfg).eval()


@torch.no_grad()
def measure_scaling(archs, lengths, profile: Profile, repeats: int = 3, decode_steps: int = 8) -> list[dict]:
    """Rows {"arch", "length", "mode", "us_per_byte_min", "us_per_byte_median", "params"}."""
    rows = []
    for arch in archs:
        model = scaling_model(arch, profile, max(lengths) + decode_steps + 1)
        params = model.num_params()
        for L in lengths:
            x = torch.randint(0, 256, (1, L), generator=torch.Generator().manual_seed(L))
            lo, med = _timed(lambda: model(x), repeats)
            rows.append({"arch": arch, "length": L, "mode": "forward", "us_per_byte_min": lo / L * 1e6,
                         "us_per_byte_median": med / L * 1e6, "params": params})
            times = []
            for _ in range(repeats + 1):  # the first is a warm-up; prefill untimed, then time the steps
                state = model.init_state(1)
                _, state = model.step(x, state)
                t0 = time.perf_counter()
                for _ in range(decode_steps):
                    _, state = model.step(x[:, -1:], state)
                times.append((time.perf_counter() - t0) / decode_steps)
            rows.append({"arch": arch, "length": L, "mode": "decode", "us_per_byte_min": min(times[1:]) * 1e6,
                         "us_per_byte_median": statistics.median(times[1:]) * 1e6, "params": params})
    return rows


def add_arguments(p):
    p.add_argument("--archs", default="gpt,mamba", help="comma-separated architectures from ARCHS")
    p.add_argument("--lengths", default="256,512,1024,2048,4096", help="comma-separated context lengths")
    p.add_argument("--profile", default="smoke", help="model sizes from profiles.py")
    p.add_argument("--repeats", type=int, default=3)
    add_threads(p, 2)


def run(args) -> dict:
    from neuro_lib.bench.report import make_report

    archs = [a for a in args.archs.split(",") if a]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        raise NeuroError(f"unknown arch(s) {unknown}; choose from {sorted(ARCHS)}")
    try:
        lengths = [int(x) for x in args.lengths.split(",")]
    except ValueError:
        raise NeuroError(f"--lengths must be comma-separated integers, got {args.lengths!r}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = measure_scaling(archs, lengths, get_profile(args.profile), args.repeats)
    results = [{"name": f"{r['arch']} {r['mode']} L={r['length']}", "value": round(r["us_per_byte_min"], 2),
                "unit": "us/byte (min)", "median": round(r["us_per_byte_median"], 2), "params": r["params"]}
               for r in rows]
    config = {"archs": archs, "lengths": lengths, "profile": args.profile, "repeats": args.repeats,
              "threads": torch.get_num_threads(), "batch": 1}
    return make_report("scaling", config, results)
