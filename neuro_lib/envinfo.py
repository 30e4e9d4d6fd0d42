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


MAX_DIRTY_FILES = 50  # a record lists at most this many changed paths (and says how many there were)


def git_state(root=REPO_ROOT) -> dict:
    """The commit a number was measured at: `commit` (full hash), `sha` (short, for tables), `dirty`, and
    `dirty_files`, the `git status --porcelain` lines of a dirty tree (modified, staged, deleted, and
    untracked files git does not ignore: each can change a result). Outside a checkout, or without git,
    `sha` is "unknown" and `error` says why instead of the record silently naming no commit."""
    def run(*args) -> str:
        # safe.directory: reading the state of a checkout owned by another user (a CI or container mount)
        r = subprocess.run(["git", "-c", f"safe.directory={Path(root).resolve()}", *args], cwd=root,
                           capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError((r.stderr.strip().splitlines() or [f"git {args[0]} failed"])[0])
        return r.stdout

    try:
        commit = run("rev-parse", "HEAD").strip()
        status = [line for line in run("status", "--porcelain", "--untracked-files=normal").splitlines() if line]
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return {"sha": "unknown", "commit": None, "dirty": None, "dirty_files": [], "error": str(e)}
    state = {"sha": commit[:7], "commit": commit, "dirty": bool(status), "dirty_files": status[:MAX_DIRTY_FILES]}
    if len(status) > MAX_DIRTY_FILES:
        state["dirty_files_total"] = len(status)
    return state


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
