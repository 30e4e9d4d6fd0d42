"""Where the repository is (the one definition of the repository root), and where a command may write.

The package is installed editable (`make venv`), so the repository is the parent of the
`neuro_lib/` folder; data/cache, figures/, notebooks/ and papermill_runs/ hang off it.
`check_output` is the one check of an output path (tests/test_hardening_doors.py).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def check_output(path, what: str, folder: bool = False, exist_ok: bool = False) -> Path:
    """Refuse, in one sentence and before any work, a place a command is about to write (read only):
    a path under a regular file, of the wrong kind (a folder where a file goes, or the reverse), a
    symbolic link (nothing is written through a link: a planted one would send the write elsewhere),
    an existing one unless `exist_ok`, or one whose nearest existing folder is not writable.
    Every door that writes a file or folder the user names (or one derived from it) asks this first."""
    from neuro_lib.errors import NeuroError

    p = Path(path)
    what = f"{what} {p}" if what else str(p)
    if p.is_symlink():
        raise NeuroError(f"{what} is a symbolic link (to {os.readlink(p)}); nothing is written through a link, "
                         "name the real place instead")
    if p.exists():
        if folder and not p.is_dir():
            raise NeuroError(f"{what} is a file, not a folder")
        if not folder and p.is_dir():
            raise NeuroError(f"{what} is a folder; give a file name")
        if not exist_ok:
            raise NeuroError(f"{what} already exists")
    existing = p.absolute().parent
    while not existing.exists():
        if existing.is_symlink():
            raise NeuroError(f"{what} cannot be created: {existing} is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise NeuroError(f"{what} cannot be created: {existing} is a file")
    if not p.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise NeuroError(f"{what} cannot be created: {existing} is not writable")
    return p


def check_new_file(path: str, suffixes: tuple[str, ...], force: bool | None) -> Path:
    """An output file to write: the right suffix, an existing folder, no link, nothing overwritten unless forced."""
    from neuro_lib.errors import NeuroError

    out = Path(path)
    if out.suffix not in suffixes:
        raise NeuroError(f"{out.name} must end in {' or '.join(suffixes)}")
    if out.exists() and not out.is_symlink() and not out.is_dir() and not force:
        raise NeuroError(f"{out} already exists" + ("; add --force to replace it" if force is False else ""))
    check_output(out, "", exist_ok=bool(force))
    if not out.parent.is_dir():
        raise NeuroError(f"the folder {out.parent} does not exist")
    return out
