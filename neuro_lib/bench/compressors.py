"""Classical compressors as bits-per-byte anchors (DESIGN.md).

Conditional cost of the validation text given the training text as context:
    bits(compress(train + val)) - bits(compress(train)), divided by len(val).
gzip only sees a 32 KiB window, so its context is effectively the end of train; xz with
-9e and bz2 see more. This is what a model that read the training data "knows".
"""
from __future__ import annotations

import bz2
import gzip
import lzma


def _gzip(b: bytes) -> int:
    return len(gzip.compress(b, compresslevel=9, mtime=0))


def _bz2(b: bytes) -> int:
    return len(bz2.compress(b, compresslevel=9))


def _xz(b: bytes) -> int:
    return len(lzma.compress(b, preset=9 | lzma.PRESET_EXTREME))


COMPRESSORS = {"gzip -9": _gzip, "bz2 -9": _bz2, "xz -9e": _xz}


def conditional_bpb(train: bytes, val: bytes, compressor: str) -> float:
    size = COMPRESSORS[compressor]
    return 8 * (size(train + val) - size(train)) / len(val)


def compressor_anchors(train: bytes, val: bytes) -> dict[str, float]:
    """{name: conditional bpb} for every compressor."""
    return {name: conditional_bpb(train, val, name) for name in COMPRESSORS}
