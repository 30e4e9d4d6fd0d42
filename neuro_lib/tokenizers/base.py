"""The Tokenizer interface (DESIGN.md) and the registry of kinds.

Every tokenizer maps bytes to ids and back:
    encode(data: str | bytes) -> list[int]; decode(ids) -> bytes
    vocab_size; spec ("byte", "bpe:4096", "vq:4096"); save(dir); load(dir)

A saved tokenizer is a directory with `tokenizer_meta.json` ({"kind", "spec", ...})
plus whatever files the kind needs. `load_tokenizer(dir)` dispatches on the kind;
`Kind.load(dir)` refuses a directory that holds another kind.
"""
from __future__ import annotations

import json
from pathlib import Path

from neuro_lib.errors import NeuroError

META_FILE = "tokenizer_meta.json"


def as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class PieceCache:
    """piece (bytes) -> its ids, for tokenizers whose encoding of a piece never depends on its
    neighbours (BPE within a pre-token, VQ within a patch): text repeats its pieces, so each distinct
    piece is encoded once. Bounded: when a call would pass `limit` entries it starts afresh."""

    def __init__(self, limit: int = 1 << 17):
        self.limit = limit
        self.ids: dict[bytes, list[int]] = {}

    def encode(self, pieces: list[bytes], encode_new) -> list[int]:
        """The ids of `pieces` in order; `encode_new(list of distinct uncached pieces) -> list of id lists`
        is called at most once."""
        missing = list({p: None for p in pieces if p not in self.ids})
        if len(self.ids) + len(missing) > self.limit:
            self.ids.clear()
            missing = list(dict.fromkeys(pieces))
        if missing:
            self.ids.update(zip(missing, encode_new(missing)))
        return [i for p in pieces for i in self.ids[p]]


class Tokenizer:
    kind: str = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def spec(self) -> str:
        raise NotImplementedError

    def encode(self, data: str | bytes) -> list[int]:
        raise NotImplementedError

    def decode(self, ids) -> bytes:
        raise NotImplementedError

    def lost_bytes(self, data: str | bytes) -> list[int]:
        """Per token of `encode(data)`, how many input bytes it stands for but does not decode back to
        (an UNK's word). Lossless kinds lose nothing: an empty list. Bits per byte charges these bytes
        (train/evaluate.py), so a lossy tokenizer cannot look better by dropping what it cannot spell."""
        return []

    # -- persistence -------------------------------------------------------------------------
    def _meta(self) -> dict:
        """Extra fields stored in the meta file; kinds override to add theirs."""
        return {}

    def _save_files(self, path: Path) -> None:
        """Write the kind's own files; kinds with state override."""

    def save(self, path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_files(path)
        meta = {"kind": self.kind, "spec": self.spec, "vocab_size": self.vocab_size, **self._meta()}
        (path / META_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def read_meta(cls, path) -> dict:
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise NeuroError(f"{path} holds no saved tokenizer ({META_FILE} missing)")
        meta = json.loads(meta_path.read_text())
        if cls.kind and meta.get("kind") != cls.kind:
            raise NeuroError(f"{path} holds a {meta.get('kind')!r} tokenizer, not a {cls.kind!r} one")
        return meta

    @classmethod
    def load(cls, path) -> "Tokenizer":
        raise NotImplementedError


# kind -> class; each kind registers itself in neuro_lib/tokenizers/__init__.py
TOKENIZER_KINDS: dict[str, type[Tokenizer]] = {}


def parse_spec(spec: str) -> tuple[str, int | None]:
    """'bpe:4096' -> ('bpe', 4096); 'byte' -> ('byte', None)."""
    kind, _, size = spec.partition(":")
    if kind not in TOKENIZER_KINDS:
        raise NeuroError(f"unknown tokenizer {spec!r}; known kinds: {sorted(TOKENIZER_KINDS)}")
    if size:
        if not size.isdigit() or int(size) <= 0:
            raise NeuroError(f"tokenizer spec {spec!r} needs a positive vocabulary size after ':'")
        return kind, int(size)
    return kind, None


def train_tokenizer(spec: str, text: bytes, **kwargs) -> Tokenizer:
    """Build a tokenizer from a spec, training it on `text` when the kind needs training."""
    kind, size = parse_spec(spec)
    if not text:
        raise NeuroError("cannot train a tokenizer on an empty corpus")
    return TOKENIZER_KINDS[kind].train(text, size, **kwargs)


def load_tokenizer(path) -> Tokenizer:
    meta = Tokenizer.read_meta(path)
    kind = meta.get("kind")
    if kind not in TOKENIZER_KINDS:
        raise NeuroError(f"{path} holds an unknown tokenizer kind {kind!r}")
    return TOKENIZER_KINDS[kind].load(path)
