"""Word tokenizer (NanoRAG's NanoTokenizer): whole words, punctuation marks and
whitespace runs as tokens, with PAD/BOS/EOS/UNK specials and a vocabulary of the most
frequent pieces of a training corpus, capped at the spec's size (`word:8192`).

Lossy by design: a piece outside the vocabulary becomes UNK, which decodes to U+FFFD;
`lost_bytes` reports the length of each such piece, and bits per byte charges them 8 bits a
byte (train/evaluate.py).
Whitespace is kept exactly (runs are tokens; a word keeps its one leading space), so
`decode(encode(x)) == x` whenever no UNK occurs. A space-prefixed word missing from the
vocabulary is tried as " " + word before falling back to UNK.

    tok = WordTokenizer.train(text, 8192); tok.encode("Hello world"); tok.unk_rate(ids)
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from neuro_lib.errors import NeuroError
from neuro_lib.tokenizers.base import Tokenizer, as_bytes
from neuro_lib.tokenizers.pretokenize import WORD, split

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
PAD, BOS, EOS, UNK = range(4)
UNK_BYTES = "\ufffd".encode()
VOCAB_FILE = "word_vocab.json"


class WordTokenizer(Tokenizer):
    kind = "word"

    def __init__(self, pieces: list[bytes], size: int):
        self.size = size                       # the cap from the spec
        self.pieces = list(pieces)             # id - len(SPECIALS) -> piece
        self.index = {p: i + len(SPECIALS) for i, p in enumerate(self.pieces)}
        self._surface = [b"", b"", b"", UNK_BYTES] + self.pieces  # id -> decoded bytes

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.pieces)

    @property
    def spec(self) -> str:
        return f"word:{self.size}"

    @property
    def unk_id(self) -> int:
        return UNK

    def encode(self, data: str | bytes, add_bos_eos: bool = False) -> list[int]:
        ids = self._encode(data)[0]
        return [BOS, *ids, EOS] if add_bos_eos else ids

    def lost_bytes(self, data: str | bytes) -> list[int]:
        """Per token of `encode(data)`: the byte length of the piece an UNK replaced, 0 elsewhere."""
        return self._encode(data)[1]

    def _encode(self, data: str | bytes) -> tuple[list[int], list[int]]:
        ids, lost = [], []
        index = self.index
        for piece in split(as_bytes(data), WORD):
            i = index.get(piece)
            if i is not None:
                ids.append(i)
                lost.append(0)
            elif piece[:1] == b" " and len(piece) > 1 and b" " in index and piece[1:] in index:
                ids += [index[b" "], index[piece[1:]]]
                lost += [0, 0]
            else:
                ids.append(UNK)
                lost.append(len(piece))
        return ids, lost

    def decode(self, ids) -> bytes:
        surface, n = self._surface, len(self._surface)
        try:
            return b"".join(surface[i] for i in ids if 0 <= i < n or _bad_id(i, n))
        except TypeError:
            raise NeuroError("word tokenizer ids must be integers") from None

    def unk_rate(self, ids) -> float:
        """Fraction of tokens that are UNK."""
        return sum(1 for i in ids if i == UNK) / max(len(ids), 1)

    @classmethod
    def train(cls, text: bytes, size: int | None = None, **_) -> "WordTokenizer":
        if size is None:
            raise NeuroError("the word tokenizer needs a vocabulary size, e.g. word:8192")
        if size <= len(SPECIALS):
            raise NeuroError(f"word:{size} leaves no room for words beside the {len(SPECIALS)} special tokens")
        if not text:
            raise NeuroError("cannot train a tokenizer on an empty corpus")
        counts = Counter(split(as_bytes(text), WORD))
        counts[b" "] += 0  # keep the bare space around for the " " + word fallback when it occurs
        ranked = sorted((p for p in counts if counts[p] > 0), key=lambda p: (-counts[p], p))
        return cls(ranked[: size - len(SPECIALS)], size)

    # -- persistence -------------------------------------------------------------------------
    def _vocab_json(self) -> str:
        return json.dumps({"size": self.size, "specials": SPECIALS,
                           "pieces": [p.decode("latin-1") for p in self.pieces]}, ensure_ascii=True)

    def _save_files(self, path: Path) -> None:
        (path / VOCAB_FILE).write_text(self._vocab_json())

    def fingerprint(self) -> str:
        return hashlib.sha256(self._vocab_json().encode()).hexdigest()[:16]

    @classmethod
    def load(cls, path) -> "WordTokenizer":
        cls.read_meta(path)
        f = Path(path) / VOCAB_FILE
        if not f.is_file():
            raise NeuroError(f"{path} has no {VOCAB_FILE}; the word tokenizer was not saved completely")
        d = json.loads(f.read_text())
        return cls([p.encode("latin-1") for p in d["pieces"]], d["size"])


def _bad_id(i: int, n: int) -> bool:
    raise NeuroError(f"token id {i} is outside the vocabulary (0..{n - 1})")
