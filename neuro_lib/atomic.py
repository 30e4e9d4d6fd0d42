"""Crash-safe file writes: a temporary sibling, fsync, rename, fsync of the folder.

A reader sees either the old file or the whole new one, never a torn write; a write that
fails (full disk, read-only folder) removes its temporary file and raises one sentence
(NeuroError), leaving the old file as it was. POSIX rename semantics; on filesystems that
cannot fsync a folder the folder sync is skipped.

    write_atomic(path, b"bytes")                       # or a callable writing to the temp path
    write_atomic(path, lambda tmp: torch.save(obj, tmp))

Tested in tests/test_runs.py (full-disk simulation).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

from neuro_lib.errors import NeuroError

DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


def disk_error(e: OSError, what) -> NeuroError:
    """One sentence for an OSError from the environment (full disk, read-only, no permission)."""
    reason = e.strerror or type(e).__name__
    return NeuroError(f"could not write {what}: {reason.lower()}")


def fsync_dir(path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems do not sync folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def fsync_file(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data: bytes | str | Callable[[Path], None]) -> Path:
    """Write `data` (bytes, text, or a function writing to the temp path) to `path` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # per process: two writers never share it
    try:
        if callable(data):
            data(tmp)
        else:
            tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, path) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
