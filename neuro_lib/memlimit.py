"""Whether something of known size fits in the memory this process may still use, asked before allocating.

A model built from a config, a checkpoint's weights or a RAG index whose size is known up front is
checked here first, so one that cannot fit fails with one sentence (NeuroError) instead of a
MemoryError traceback, an allocator's RuntimeError, or the kernel's OOM killer. The bound is the
smallest of: the address-space limit (RLIMIT_AS, less the address space already mapped), the
memory cgroup's limit less its usage (v2 `memory.max`, v1 `memory.limit_in_bytes`), and the
kernel's MemAvailable.

    check_fits(n_bytes, "a gpt model of 1.2e9 parameters")

Tests: tests/test_hardening_limits.py.
"""
from __future__ import annotations

import resource
from pathlib import Path

from neuro_lib.errors import NeuroError


def _kib_field(path: str, key: str) -> int | None:
    """A "Key:   N kB" line of a /proc file, in bytes."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _status(key: str) -> int | None:
    return _kib_field("/proc/self/status", key)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """The memory cgroup's limit less its usage, when this process is in one with a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":  # v2
            base = Path("/sys/fs/cgroup") / rel.lstrip("/")
            limit, used = _read_int(base / "memory.max"), _read_int(base / "memory.current")
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
            limit, used = _read_int(base / "memory.limit_in_bytes"), _read_int(base / "memory.usage_in_bytes")
        else:
            continue
        if limit is not None and used is not None and limit < 1 << 60:  # v1 writes "no limit" as ~2**63
            return max(limit - used, 0)
    return None


def memory_room() -> tuple[int | None, str]:
    """(bytes this process may still allocate, what sets that bound); (None, "") when nothing is known."""
    bounds = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    mapped = _status("VmSize")
    if soft != resource.RLIM_INFINITY and mapped is not None:
        bounds.append((max(soft - mapped, 0), "the address-space limit (RLIMIT_AS)"))
    room = _cgroup_room()
    if room is not None:
        bounds.append((room, "the memory cgroup's limit"))
    available = _kib_field("/proc/meminfo", "MemAvailable")
    if available is not None:
        bounds.append((available, "the memory available on this machine"))
    return min(bounds) if bounds else (None, "")


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_fits(n_bytes: int, what: str) -> None:
    """NeuroError (one sentence) when `n_bytes` more would not fit in what this process may still allocate."""
    room, bound = memory_room()
    if room is not None and n_bytes > room:
        raise NeuroError(f"{what} needs about {_gib(n_bytes)}, but {bound} leaves {_gib(room)}; "
                         f"use a smaller model or raise the limit")
