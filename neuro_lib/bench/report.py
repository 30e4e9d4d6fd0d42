"""The benchmark result dict (DESIGN.md) and its table rendering."""
from __future__ import annotations

import time

import numpy as np

from neuro_lib.envinfo import git_state, machine


def percentile(xs, q) -> float:
    """The q-th percentile (0-100) of xs, NaN when there is nothing to rank (latency rows)."""
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def make_report(suite: str, config: dict, results: list[dict]) -> dict:
    return {"suite": suite, "machine": machine(), "git": git_state(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()), "config": config, "results": results}


def format_table(report: dict) -> str:
    rows = report["results"]
    extra = sorted({k for r in rows for k in r} - {"name", "value", "unit"})
    header = ["name", "value", "unit", *extra]

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [header] + [[fmt(r.get(k, "")) for k in header] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = report["machine"]
    title = (f"bench {report['suite']} — {m['cpu']} ({m['cores']} cores, {m['torch_threads']} threads, "
             f"load {m['load_avg_1m']} at start), git {report['git']['sha']}")
    dirty = report["git"].get("dirty_files") or []
    if dirty:  # the figures below come from code that differs from that commit in these files
        title += f" + uncommitted changes to {', '.join(dirty)}"
    return title + "\n" + "\n".join(lines)

