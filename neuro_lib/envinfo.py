"""Where a number came from: machine, software versions, git state.

Used by benchmarks (the "machine" and "git" fields of their JSON), by the report runner
(an environment record beside each executed notebook) and by `neuro doctor`.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from neuro_lib.paths import REPO_ROOT


def git_state() -> dict:
    """The commit a number was measured at; `dirty_files` names the tracked files that differed from it
    (a figure from a dirty tree cannot be pinned to a commit without knowing which code changed)."""
    def run(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout

    try:
        sha = run("rev-parse", "--short", "HEAD").strip()
        # porcelain v1: two status letters, a space, the path (renames: "old -> new")
        changed = [line[3:].split(" -> ")[-1] for line in
                   run("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    except OSError:
        return {"sha": "unknown", "dirty": None, "dirty_files": []}
    return {"sha": sha or "unknown", "dirty": bool(changed), "dirty_files": changed}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    dev = "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    # the load average flags timings taken while other work shared the cores
    return {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "device": dev, "load_avg_1m": round(os.getloadavg()[0], 2)}


def environment_record() -> dict:
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
            **machine(), "git": git_state()}
