"""Model registry: arch name -> (config dataclass, model class). One dict, no factories.

Every config speaks one vocabulary: vocab_size, d_model (width), n_layer (depth; Aeron:
n_encoder_layer / n_decoder_layer), n_head, n_kv_head, d_ff (FFN hidden width), block_size
(longest sequence; the training context), dropout. `upgrade_config` maps the names
checkpoints were saved with before that vocabulary (FORMER_NAMES) to today's.
"""
from __future__ import annotations

import dataclasses

import torch

from neuro_lib.errors import NeuroError
from neuro_lib.memlimit import check_fits
from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.aeron.config import SEED_NAMES
from neuro_lib.models.base import LanguageModel, renamed
from neuro_lib.models.gpt import GPT, GPTConfig
from neuro_lib.models.mamba import Mamba, MambaConfig
from neuro_lib.models.nanogpt import NanoGPT, NanoGPTConfig
from neuro_lib.models.rnk import RNK, RNKConfig

ARCHS: dict[str, tuple[type, type]] = {
    "gpt": (GPTConfig, GPT),
    "mamba": (MambaConfig, Mamba),
    "rnk": (RNKConfig, RNK),
    "aeron": (AeronConfig, Aeron),
    "nanogpt": (NanoGPTConfig, NanoGPT),
}

# Field names before the shared vocabulary: arch -> {former name: field}.
FORMER_NAMES: dict[str, dict[str, str]] = {
    "gpt": {"n_embd": "d_model", "n_inner": "d_ff"},
    "aeron": {**SEED_NAMES, "ffn_hidden": "d_ff"},
    "rnk": {"n_intents": "n_intent"},
}


def upgrade_config(arch: str, config: dict) -> dict:
    """A saved model config with former field names (FORMER_NAMES) renamed; today's pass unchanged."""
    config = dict(config)
    if "ffn_hidden" in config:  # Aeron saved its SwiGLU width (now d_ff) beside the seed's dim_feedforward
        config.pop("dim_feedforward", None)
    try:
        return renamed(config, FORMER_NAMES.get(arch, {}), f"{arch} config")
    except ValueError as e:
        raise NeuroError(str(e)) from None


def build_model(arch: str, **config) -> LanguageModel:
    if arch not in ARCHS:
        raise NeuroError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
    cfg_cls, model_cls = ARCHS[arch]
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        hints = [f"{k} is now {FORMER_NAMES[arch][k]}" for k in unknown if k in FORMER_NAMES.get(arch, {})]
        raise NeuroError(f"{arch} config has no field(s) {unknown}" + (f" ({'; '.join(hints)})" if hints else ""))
    try:
        cfg = cfg_cls(**config)
    except (ValueError, TypeError) as e:
        raise NeuroError(f"invalid {arch} config: {e}") from None
    n_bytes = model_bytes(model_cls, cfg)
    if n_bytes is not None:  # a model that cannot fit fails in one sentence, before any allocation
        check_fits(n_bytes, f"a {arch} model of {n_bytes // 4:,} float32 values")
    try:
        return model_cls(cfg)
    except MemoryError:
        raise NeuroError(f"a {arch} model of this config does not fit in memory") from None
    except RuntimeError as e:
        if "allocate" not in str(e):
            raise
        raise NeuroError(f"a {arch} model of this config does not fit in memory ({' '.join(str(e).split())[:120]})"
                         ) from None


def model_bytes(model_cls, cfg) -> int | None:
    """Bytes of a model's parameters and buffers, counted on the meta device (no memory is allocated);
    None when the model cannot be built there."""
    try:
        with torch.device("meta"):
            model = model_cls(cfg)
    except Exception:  # noqa: BLE001 - the real build below reports any real problem
        return None
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def arch_of(model: LanguageModel) -> str:
    for name, (_, cls) in ARCHS.items():
        if type(model) is cls:
            return name
    raise KeyError(f"{type(model).__name__} is not registered in ARCHS")
