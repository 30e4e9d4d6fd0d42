"""Int8 and int4 weights in PyTorch: torch's dynamic quantisation and torchao's weight-only configs.

- `torch_dynamic_int8(model)`: `torch.ao.quantization.quantize_dynamic` on every nn.Linear:
  int8 weights (per tensor), activations quantised on the fly per call, fbgemm/onednn int8
  GEMMs. torch.ao.quantization is deprecated upstream (its warning points to torchao) but is
  still in torch 2.13 and is the one int8 path with fused CPU kernels here. A tied LM head
  becomes an untied int8 copy (the embedding stays float).
- `torchao_weight_only(model, bits)`: torchao's weight-only quantisation of nn.Linear weights.
  8 bits: `Int8WeightOnlyConfig` (per output channel). 4 bits: `IntxWeightOnlyConfig(int4,
  PerGroup(32))`, whose CPU path stores each 4-bit value unpacked in an int8 and dequantises
  before a float matmul: the accuracy of int4, not its size or speed. torchao's packed int4
  (`Int4WeightOnlyConfig`) needs its `mslk` kernels, which have no CPU build; `torchao_status`
  says whether torchao imports at all.

`state_bytes(model)` is the size of `torch.save(model.state_dict())`, the honest file size of a
quantised PyTorch model (tied tensors saved once).
Tests: tests/test_export.py.
"""
from __future__ import annotations

import copy
import io
import warnings

import torch
import torch.nn as nn


def torch_dynamic_int8(model) -> nn.Module:
    """A copy of `model` with int8 dynamically quantised Linear layers (CPU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def torchao_status() -> tuple[bool, str]:
    """(torchao imports, a reason when it does not)."""
    try:
        import torchao.quantization  # noqa: F401
    except Exception as e:  # an ImportError, or a kernel library that fails to load
        return False, f"torchao does not import ({type(e).__name__}: {e})"
    return True, ""


def torchao_weight_only(model, bits: int) -> nn.Module:
    """A copy of `model` with torchao weight-only int8 (bits=8) or int4 (bits=4, groups of 32) Linears."""
    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    m = copy.deepcopy(model).eval()
    if hasattr(m, "lm_head") and hasattr(m, "tok_emb") and m.lm_head.weight is m.tok_emb.weight:
        m.lm_head.weight = nn.Parameter(m.tok_emb.weight.detach().clone())  # quantise the head, not the lookup
    cfg = Int8WeightOnlyConfig() if bits == 8 else IntxWeightOnlyConfig(weight_dtype=torch.int4,
                                                                         granularity=PerGroup(32))
    quantize_(m, cfg)
    return m


def state_bytes(model) -> int:
    """Bytes of torch.save(model.state_dict())."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes
