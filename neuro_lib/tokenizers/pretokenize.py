"""Pre-tokenization on raw bytes: split a byte string into pieces with a regex, so that
`b"".join(split(x)) == x` for every input (invalid UTF-8 included).

Two patterns, in the spirit of GPT-2's: a letter run keeps one leading space
(" word"), digits and punctuation likewise, and whitespace runs are pieces of their own
(a run followed by a word leaves its last space to that word). Bytes >= 0x80 count as
letters, so the bytes of a multi-byte UTF-8 character stay in one piece.

- `WORD`: punctuation one character at a time (the word tokenizer's units).
- `BPE`: punctuation runs together (what BPE merges inside; merges never cross pieces).
"""
from __future__ import annotations

import re

_L = rb"A-Za-z\x80-\xff"  # letters, plus every non-ASCII byte
_WS = rb" \t\n\r\x0b\x0c"  # ASCII whitespace, as bytes-regex \s
_PUNCT = rb"[^" + _WS + _L + rb"0-9]"

WORD = re.compile(rb" ?[" + _L + rb"]+| ?[0-9]+| ?" + _PUNCT + rb"|[" + _WS + rb"]+(?![^" + _WS + rb"])|[" + _WS + rb"]+")
BPE = re.compile(rb"'(?:s|t|re|ve|m|ll|d)| ?[" + _L + rb"]+| ?[0-9]+| ?" + _PUNCT + rb"+|[" + _WS + rb"]+(?![^"
                 + _WS + rb"])|[" + _WS + rb"]+")


def split(data: bytes, pattern: re.Pattern = WORD) -> list[bytes]:
    """Pieces of `data` in order; they concatenate back to `data` exactly."""
    return pattern.findall(data)
