"""Byte-level BPE (Aeron's tokenizer), trained and run by the Hugging Face `tokenizers`
library and saved in its own JSON format (`bpe.json`) inside the tokenizer directory.

Lossless on arbitrary bytes, invalid UTF-8 included. HF works on `str`, so the bytes
never reach it raw: each byte is mapped to one printable character of the GPT-2
byte-level alphabet (the same 256 characters as `pre_tokenizers.ByteLevel.alphabet()`,
checked in tests), pre-tokenized on bytes (pretokenize.BPE) and the pieces joined with a
separator HF splits on. Decoding never goes through HF: a table maps each id straight
back to its bytes, so `decode(encode(x)) == x` for every byte string.

    tok = BPETokenizer.train(text, 4096); tok.save("dir"); BPETokenizer.load("dir")
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from neuro_lib.errors import NeuroError
from neuro_lib.tokenizers.base import PieceCache, Tokenizer, as_bytes
from neuro_lib.tokenizers.pretokenize import BPE, split

JSON_FILE = "bpe.json"
SEP = "\u3000"  # joins pre-tokenized pieces; outside the byte alphabet, so HF can split on it


def byte_alphabet() -> list[str]:
    """GPT-2's byte -> printable character map: printable Latin-1 bytes stand for
    themselves, the other 68 bytes are shifted to U+0100 and up."""
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


ALPHABET = byte_alphabet()
_TO_CHAR = {b: c for b, c in enumerate(ALPHABET)}          # for str.translate on latin-1 text
_TO_BYTE = {c: b for b, c in enumerate(ALPHABET)}


def _mapped_text(data: bytes) -> str:
    """Pieces of `data` as alphabet strings joined by SEP."""
    return SEP.join(p.decode("latin-1") for p in split(data, BPE)).translate(_TO_CHAR)


class BPETokenizer(Tokenizer):
    kind = "bpe"

    def __init__(self, hf, size: int):
        self.hf, self.size = hf, size
        self._cache = PieceCache()
        vocab = hf.get_vocab()
        self._bytes = [b""] * len(vocab)  # id -> bytes
        for token, i in vocab.items():
            self._bytes[i] = bytes(_TO_BYTE[c] for c in token)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    @property
    def spec(self) -> str:
        return f"bpe:{self.size}"

    def encode(self, data: str | bytes) -> list[int]:
        """Same ids as `self.hf.encode(_mapped_text(data)).ids` (tested), but each distinct piece
        goes through HF once: pieces repeat, and HF's offset tracking dominates on long strings."""
        def encode_new(pieces):
            return [e.ids for e in self.hf.encode_batch_fast([p.decode("latin-1").translate(_TO_CHAR) for p in pieces])]

        return self._cache.encode(split(as_bytes(data), BPE), encode_new)

    def decode(self, ids) -> bytes:
        table, n = self._bytes, len(self._bytes)
        out = []
        for i in ids:
            if not 0 <= i < n:
                raise NeuroError(f"token id {i} is outside the vocabulary (0..{n - 1})")
            out.append(table[i])
        return b"".join(out)

    @classmethod
    def train(cls, text: bytes, size: int | None = None, **_) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer, models, pre_tokenizers, trainers

        if size is None:
            raise NeuroError("the BPE tokenizer needs a vocabulary size, e.g. bpe:4096")
        if size < 256:
            raise NeuroError(f"bpe:{size} is smaller than the 256-byte base alphabet; use at least bpe:256")
        if not text:
            raise NeuroError("cannot train a tokenizer on an empty corpus")
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.Split(SEP, behavior="removed")
        trainer = trainers.BpeTrainer(vocab_size=size, initial_alphabet=ALPHABET, special_tokens=[],
                                      show_progress=False)
        text = as_bytes(text)
        cuts = _cuts(text, 1 << 16)  # feed the corpus in ~64 KB slices
        hf.train_from_iterator((_mapped_text(text[a:b]) for a, b in zip(cuts, cuts[1:])), trainer=trainer)
        return cls(hf, size)

    # -- persistence -------------------------------------------------------------------------
    def _save_files(self, path: Path) -> None:
        self.hf.save(str(path / JSON_FILE))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.hf.to_str().encode()).hexdigest()[:16]

    def _meta(self) -> dict:
        return {"size": self.size}

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        meta = cls.read_meta(path)
        f = Path(path) / JSON_FILE
        if not f.is_file():
            raise NeuroError(f"{path} has no {JSON_FILE}; the BPE tokenizer was not saved completely")
        try:
            hf = HFTokenizer.from_file(str(f))
        except Exception as e:  # the Rust side raises a plain Exception on bad JSON
            raise NeuroError(f"{f} is not a valid tokenizers JSON file ({e})") from None
        return cls(hf, meta.get("size", hf.get_vocab_size()))


def _cuts(text: bytes, step: int) -> list[int]:
    """Offsets 0 < ... < len(text) of ~step-byte slices, cut before a newline (rarely inside a piece)."""
    cuts, i = [0], step
    while i < len(text):
        j = text.find(b"\n", i)
        if j < 0:
            break
        cuts.append(j)
        i = j + step
    return cuts + [len(text)]
