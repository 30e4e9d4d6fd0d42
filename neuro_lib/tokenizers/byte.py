"""Byte tokenizer: 256 ids, one per byte value; lossless on any input (RNK's choice)."""
from __future__ import annotations

from neuro_lib.tokenizers.base import Tokenizer, as_bytes


class ByteTokenizer(Tokenizer):
    kind = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    @property
    def spec(self) -> str:
        return "byte"

    def encode(self, data: str | bytes) -> list[int]:
        return list(as_bytes(data))

    def decode(self, ids) -> bytes:
        return bytes(int(i) for i in ids)

    @classmethod
    def train(cls, text: bytes, size: int | None = None, **_) -> "ByteTokenizer":
        return cls()  # nothing to learn

    @classmethod
    def load(cls, path) -> "ByteTokenizer":
        cls.read_meta(path)
        return cls()
