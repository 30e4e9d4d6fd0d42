"""GGML's block quantisation, Q8_0 and Q4_0, written out (the algorithm is the point).

A weight matrix is cut along its rows into blocks of QK = 32 consecutive values; each block
keeps one float16 scale d and 32 small integers, and dequantises as x ≈ d * q.

- Q8_0 (34 bytes per block, 8.5 bits per weight): d = max|x| / 127, q = round(x / d) in
  [-127, 127] (round half away from zero, C's roundf), stored as int8. Layout: d (fp16), q[0..31].
- Q4_0 (18 bytes per block, 4.5 bits per weight): m = the value of largest magnitude, sign
  kept; d = m / -8, q = trunc(x / d + 8.5) clipped to [0, 15], so the extreme value maps to
  q = 0 exactly (x = -8 d) and the other side reaches +7 d. Layout: d (fp16), then 16 bytes
  whose low nibbles hold q[0..15] and high nibbles q[16..31]; x = d * (q - 8).

A zero block has d = 0 and q = 0 (1/d is taken as 0). The arithmetic is float32 numpy in the
order ggml-quants.c uses, so the bytes equal the reference's; tests/test_export.py checks
them byte for byte against gguf.quants (the gguf package's port of ggml's reference).
"""
from __future__ import annotations

import numpy as np

QK = 32
BLOCK_BYTES = {"q8_0": 2 + QK, "q4_0": 2 + QK // 2}
TYPES = ("f32", "q8_0", "q4_0")


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % QK:
        raise ValueError(f"the last dimension ({x.shape[-1]}) must be a multiple of {QK} to quantise")
    return x.reshape(-1, QK)                                         # (n_blocks, 32)


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    """float array (..., K), K % 32 == 0 -> uint8 (..., K / 32 * 34)."""
    b = _blocks(x)
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)     # (n, 1)
    scaled = b * _inverse(d)
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)  # roundf
    out = np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], axis=1)  # (n, 34)
    return out.reshape(*x.shape[:-1], -1)


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    """float array (..., K), K % 32 == 0 -> uint8 (..., K / 32 * 18)."""
    b = _blocks(x)
    idx = np.abs(b).argmax(axis=1)[:, None]                          # first value of largest magnitude
    m = np.take_along_axis(b, idx, axis=1)                           # (n, 1), sign kept
    d = m / np.float32(-8)
    q = np.trunc(b * _inverse(d) + np.float32(8.5)).astype(np.uint8).clip(0, 15)  # (n, 32)
    packed = q[:, : QK // 2] | (q[:, QK // 2:] << np.uint8(4))       # (n, 16)
    out = np.concatenate([d.astype(np.float16).view(np.uint8), packed], axis=1)  # (n, 18)
    return out.reshape(*x.shape[:-1], -1)


def dequantize_q8_0(data: np.ndarray) -> np.ndarray:
    """uint8 (..., n * 34) -> float32 (..., n * 32)."""
    b = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, BLOCK_BYTES["q8_0"])
    d = b[:, :2].copy().view(np.float16).astype(np.float32)         # (n, 1)
    q = b[:, 2:].copy().view(np.int8).astype(np.float32)            # (n, 32)
    return (d * q).reshape(*data.shape[:-1], -1)


def dequantize_q4_0(data: np.ndarray) -> np.ndarray:
    """uint8 (..., n * 18) -> float32 (..., n * 32)."""
    b = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, BLOCK_BYTES["q4_0"])
    d = b[:, :2].copy().view(np.float16).astype(np.float32)         # (n, 1)
    packed = b[:, 2:]
    q = np.concatenate([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=1).astype(np.float32) - 8  # (n, 32)
    return (d * q).reshape(*data.shape[:-1], -1)


QUANTIZE = {"q8_0": quantize_q8_0, "q4_0": quantize_q4_0}
DEQUANTIZE = {"q8_0": dequantize_q8_0, "q4_0": dequantize_q4_0}


def quantizable(shape) -> bool:
    """Matrices whose rows split into whole blocks; vectors (norms, biases) and odd widths stay float32."""
    return len(shape) >= 2 and shape[-1] % QK == 0


def roundtrip(x: np.ndarray, qtype: str) -> np.ndarray:
    """x quantised to `qtype` and back (float32, same shape)."""
    if qtype == "f32":
        return np.asarray(x, dtype=np.float32)
    return DEQUANTIZE[qtype](QUANTIZE[qtype](x))
