"""The benchmark result dict (DESIGN.md), its table rendering, and recorded reports for notebooks.

A notebook quotes a bench-size figure only from a committed report, `data/reference/NAME.json`
(written by `neuro bench SUITE ... --out data/reference/NAME.json`), labelled with `reference_label`.
"""
from __future__ import annotations

import json
import time

from neuro_lib.envinfo import REPO_ROOT, git_state, machine

REFERENCE_DIR = REPO_ROOT / "data" / "reference"


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
    return title + "\n" + "\n".join(lines)


def load_reference(name: str) -> dict | None:
    """The recorded report data/reference/NAME.json, or None when none is committed."""
    path = REFERENCE_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def reference_label(report: dict) -> str:
    """"recorded DATE on MACHINE, git SHA" for a figure quoted from a recorded report."""
    m = report["machine"]
    return (f"recorded {report['date']} on {m['cpu']} ({m['cores']} cores, {m['torch_threads']} threads, "
            f"load {m['load_avg_1m']}), git {report['git']['sha']}")
