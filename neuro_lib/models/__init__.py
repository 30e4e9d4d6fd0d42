"""Model registry: arch name -> (config dataclass, model class). One dict, no factories."""
from __future__ import annotations

import dataclasses

from neuro_lib.errors import NeuroError
from neuro_lib.models.aeron import Aeron, AeronConfig
from neuro_lib.models.base import LanguageModel
from neuro_lib.models.gpt import GPT, GPTConfig
from neuro_lib.models.mamba import Mamba, MambaConfig
from neuro_lib.models.rnk import RNK, RNKConfig

ARCHS: dict[str, tuple[type, type]] = {
    "gpt": (GPTConfig, GPT),
    "mamba": (MambaConfig, Mamba),
    "rnk": (RNKConfig, RNK),
    "aeron": (AeronConfig, Aeron),
}


def build_model(arch: str, **config) -> LanguageModel:
    if arch not in ARCHS:
        raise NeuroError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
    cfg_cls, model_cls = ARCHS[arch]
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        raise NeuroError(f"{arch} config has no field(s) {unknown}")
    try:
        cfg = cfg_cls(**config)
    except (ValueError, TypeError) as e:
        raise NeuroError(f"invalid {arch} config: {e}") from None
    return model_cls(cfg)


def arch_of(model: LanguageModel) -> str:
    for name, (_, cls) in ARCHS.items():
        if type(model) is cls:
            return name
    raise KeyError(f"{type(model).__name__} is not registered in ARCHS")
