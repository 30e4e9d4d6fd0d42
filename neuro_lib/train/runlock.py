"""One writer per run folder: an exclusive flock on RUN/.lock, holding the holder's identity.

A second `neuro train` into the same folder fails at once with one sentence naming the
holder (pid, host, command, start time). The kernel drops a flock when its process dies,
so a killed run never leaves a stale lock: the file may stay, its content is then
ignored and overwritten. POSIX only (fcntl).

    with RunLock(Path("runs/x")):
        ...  # train, save

Tested in tests/test_runs.py (two trainers at once).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from neuro_lib.atomic import disk_error
from neuro_lib.errors import NeuroError
from neuro_lib.checkpoint import LOCK, POINTER


class RunLock:
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.fd = None
        self.created = False

    @staticmethod
    def probe(run_dir) -> None:
        """Read only: raise if another process holds the lock of `run_dir` now."""
        try:
            fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody has trained here
        try:
            _lock_or_name_holder(fd, run_dir)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        self.created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise disk_error(e, self.run_dir / LOCK) from None
        try:
            _lock_or_name_holder(fd, self.run_dir)
            me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join([Path(sys.argv[0]).name,
                  *sys.argv[1:]]), "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError as e:
            os.close(fd)
            raise disk_error(e, self.run_dir / LOCK) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        os.ftruncate(self.fd, 0)  # nobody holds it now
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        if exc_type is not None and self.created and not (self.run_dir / POINTER).exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)  # a run that failed before its first checkpoint


def _lock_or_name_holder(fd: int, run_dir) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace")
        raise NeuroError(f"{run_dir} is in use by {describe_holder(holder)}; wait for it to finish or stop it "
                         "first") from None


def describe_holder(text: str) -> str:
    try:
        h = json.loads(text)
        return f"pid {h['pid']} on {h['host']} ({h['command']!r}, since {h['since']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process"
