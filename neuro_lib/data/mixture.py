"""The base model's pretraining mixture: five byte-level sources, sampled by fixed shares.

Sources (each built deterministically from this Python and the package's own generators, cached in data/cache/):

- ``api-docs``: the standard library's documented API *with* the names and signatures it documents, read with
  ``ast`` from the sources: ``heapq.heappop(heap)`` then its docstring, ``json.JSONDecoder.decode(self, s,
  _w=WHITESPACE.match)`` then its docstring (data/corpus.py's ``stdlib-docs`` keeps the docstrings but drops
  the names, so a question about ``heappop`` cannot match it).
- ``c-docs``: ``pydoc`` plain-text pages of the modules written in C, which have no .py source to read
  (``math``, ``time``, ``itertools``, ``zlib``, ...; public names only; the machine-specific FILE section cut).
- ``stdlib-src``: the standard library's .py sources, sorted by path (tests and vendored folders excluded).
- ``prose``: English prose: the Python reference manual's topic pages (``pydoc_data.topics``, in the stdlib).
  No general-English corpus is installed in the project's environment; this is the prose source that is.
- ``tasks``: the task generators' *training* templates (data/sft.py: reason, code, struct, chat; their original
  "templated" variants, so a broader fine-tuning generator leaves the base unchanged), laid out as
  fine-tuning lays them out (``source <s> target <end>``), so the base has seen the format and the vocabulary.
  Held-out templates are never used. (The reader task's questions come from the docs already in the mix.)

Documents are separated by the extra token 256 (data/sft.MARK); the vocabulary is 257. The last 10 % of each
source is its validation split (DESIGN.md), scored in bits per byte.

    mix = build_mixture(MIXTURE_SPEC, max_bytes={"stdlib-src": 2_000_000})
    mix.sources["api-docs"].train   # np.uint16 token array
    batch = mix.batch(step=3, seed=0, batch_size=16, block_size=128)

Byte share = the fraction of training bytes drawn from a source (`shares`), independent of its size; the
README's table and `neuro pretrain`'s first line give both the shares and the bytes available.
"""
from __future__ import annotations

import hashlib
import importlib
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuro_lib.atomic import disk_error, write_atomic
from neuro_lib.data.apidocs import indented, stdlib_api, stdlib_files
from neuro_lib.data.corpus import CACHE_DIR, VAL_FRACTION
from neuro_lib.data.sft import MARK, layout, task_pairs

VERSION = 1  # bump when a source's text changes: it is part of every cache key built on the mixture
SOURCES = ("api-docs", "c-docs", "stdlib-src", "prose", "tasks")
# sampling shares of training bytes (sum 1); chosen so names/signatures and task formats are a large part of a
# short run while source code, the biggest source, does not crowd them out
MIXTURE_SPEC = {"api-docs": 0.30, "c-docs": 0.10, "stdlib-src": 0.20, "prose": 0.15, "tasks": 0.25}
TASK_MIX = {"reason": 4000, "code": 4000, "struct": 3000, "chat": 3000}  # training-template pairs per task
# private, test and deprecated modules; posix is documented through os, and its DATA holds this process's environment
_SKIP_C = re.compile(r"^(_|xx|test|nis$|spwd$|ossaudiodev$|audioop$|readline$|posix$)")
_MACHINE_DATA = {"sys"}  # DATA sections that describe this process (argv, path, executable): cut


def build_api_docs() -> list[bytes]:
    """One document per module: its docstring under its bare name, each object's heading and indented docstring
    (data/apidocs.py reads them; the format is fixed by VERSION)."""
    docs = []
    for module, objects in stdlib_api():
        entries = [f"{o.name}\n{o.doc}" if o.kind == "module" else o.head + "\n" + indented(o.doc) for o in objects]
        if entries:
            docs.append("\n\n".join(entries).encode("utf-8"))
    return docs


def c_modules() -> list[str]:
    """Public modules of this Python written in C: built in, or a lib-dynload extension."""
    dyn = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    names = set(sys.builtin_module_names)
    if dyn.is_dir():
        names |= {p.name.split(".")[0] for p in dyn.iterdir() if p.suffix == ".so"}
    return sorted(n for n in names if not _SKIP_C.match(n))


def build_c_docs() -> list[bytes]:
    import pydoc

    docs = []
    for name in c_modules():
        try:
            module = importlib.import_module(name)
        except Exception:  # a module built for this Python may still fail to load here (missing system library)
            continue
        text = pydoc.render_doc(module, renderer=pydoc.plaintext)
        text = re.sub(r"\nMODULE REFERENCE\n.*?(?=\n[A-Z])", "", text, flags=re.S)  # a URL and boilerplate
        text = re.sub(r"\nFILE\n.*", "", text, flags=re.S)                       # this machine's path
        text = re.sub(r" at 0x[0-9a-f]+", "", text)                                # object addresses
        if name in _MACHINE_DATA:
            text = re.sub(r"\nDATA\n.*?(?=\n[A-Z]|\Z)", "", text, flags=re.S)
        docs.append(text.encode("utf-8"))
    return docs


def build_stdlib_src() -> list[bytes]:
    return [p.read_bytes() for p in stdlib_files()]


def build_prose() -> list[bytes]:
    import pydoc_data.topics

    return [f"{name}\n\n{text.strip()}\n".encode("utf-8") for name, text in sorted(pydoc_data.topics.topics.items())]


def build_tasks() -> list[list[int]]:
    docs = []
    for task, n in TASK_MIX.items():
        # seed apart from fine-tuning's; the original generators, whatever the fine-tunes use now (the base's key)
        docs += [layout(p) for p in task_pairs(task, n, seed=1_000, split="train", variant="templated")]
    order = np.random.default_rng(1_000).permutation(len(docs))  # interleave the tasks
    return [docs[i] for i in order]


BUILDERS = {"api-docs": build_api_docs, "c-docs": build_c_docs, "stdlib-src": build_stdlib_src,
            "prose": build_prose, "tasks": build_tasks}


def _tokens(docs) -> np.ndarray:
    """Documents -> one uint16 array, each document followed by MARK."""
    out = []
    for d in docs:
        out.append(np.frombuffer(d, dtype=np.uint8).astype(np.uint16) if isinstance(d, bytes)
                   else np.asarray(d, dtype=np.uint16))
        out.append(np.array([MARK], dtype=np.uint16))
    return np.concatenate(out)


def source_tokens(name: str) -> np.ndarray:
    """The whole token array of source `name`, built once per Python version and cached in data/cache/."""
    ver = f"py{sys.version_info.major}.{sys.version_info.minor}"
    path = CACHE_DIR / "mixture" / f"{name}-{ver}-v{VERSION}.npy"
    if path.is_file():
        return np.load(path)
    arr = _tokens(BUILDERS[name]())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise disk_error(e, path.parent) from None
    import io
    buf = io.BytesIO()
    np.save(buf, arr)
    write_atomic(path, buf.getvalue())
    return arr


@dataclass
class Source:
    name: str
    share: float
    train: np.ndarray
    val: np.ndarray


@dataclass
class Mixture:
    sources: dict
    spec: dict

    def describe(self) -> dict:
        """Per source: sampling share and the bytes (tokens) available for training and validation."""
        return {n: {"share": s.share, "train_tokens": int(len(s.train)), "val_tokens": int(len(s.val))}
                for n, s in self.sources.items()}

    def batch(self, step: int, seed: int, batch_size: int, block_size: int) -> dict:
        """A pure function of (seed, step): each row a window of a source drawn by share."""
        rng = np.random.default_rng([seed, step])
        names = list(self.sources)
        shares = np.array([self.sources[n].share for n in names])
        rows = rng.choice(len(names), size=batch_size, p=shares / shares.sum())
        xs = []
        for r in rows:
            arr = self.sources[names[r]].train
            i = rng.integers(0, len(arr) - block_size - 1)
            xs.append(arr[i: i + block_size + 1].astype(np.int64))
        x = torch.from_numpy(np.stack(xs))
        return {"tokens": x[:, :-1], "targets": x[:, 1:]}

    def key(self) -> str:
        """A content hash of the mixture (spec, caps, every source's tokens)."""
        h = hashlib.sha256(repr(sorted(self.spec.items())).encode())
        for n, s in self.sources.items():
            h.update(n.encode())
            h.update(s.train.tobytes())
            h.update(s.val.tobytes())
        return h.hexdigest()


def build_mixture(spec: dict | None = None, max_bytes: dict | None = None) -> Mixture:
    """The mixture of `spec` (source -> share); `max_bytes` caps a source (the first bytes; 0 or absent = all),
    before its 90/10 split."""
    spec = dict(spec or MIXTURE_SPEC)
    unknown = sorted(set(spec) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown mixture source(s) {unknown}; known: {SOURCES}")
    if not spec or any(not v > 0 for v in spec.values()):
        raise ValueError("every mixture share must be positive (leave a source out instead)")
    total = sum(spec.values())
    spec = {k: v / total for k, v in spec.items()}  # shares of training bytes: they sum to 1
    sources = {}
    for name, share in spec.items():
        arr = source_tokens(name)
        cap = (max_bytes or {}).get(name, 0)
        if cap:
            arr = arr[:cap]
        cut = int(len(arr) * (1 - VAL_FRACTION))
        sources[name] = Source(name, share, arr[:cut], arr[cut:])
    return Mixture(sources, spec)
