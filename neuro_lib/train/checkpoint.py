"""Checkpoint directories (DESIGN.md).

    DIR/config.json        {"arch", "model", "tokenizer", "train", "format"}
    DIR/model.safetensors  weights (tied weights stored once)
    DIR/tokenizer/         the saved tokenizer
    DIR/train_state.pt     optimiser, step, elapsed seconds, RNG states (optional)
    DIR/metrics.jsonl      appended by the Trainer

Writes are atomic per file (temp file + rename), so an interrupted save never leaves a
half-written checkpoint behind. Loading checks config against weights and fails with
one sentence (NeuroError) on mismatch or corruption.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_model

from neuro_lib.errors import NeuroError
from neuro_lib.models import ARCHS, arch_of, build_model, upgrade_config
from neuro_lib.tokenizers import load_tokenizer

FORMAT = 1


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def read_config(path) -> dict:
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise NeuroError(f"{path} is not a checkpoint (no config.json)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError:
        raise NeuroError(f"{cfg_path} is corrupt (not valid JSON)") from None
    if not isinstance(cfg, dict) or "arch" not in cfg or "model" not in cfg:
        raise NeuroError(f"{cfg_path} is not a neuro_lib checkpoint config (needs 'arch' and 'model')")
    if cfg["arch"] in ARCHS and isinstance(cfg["model"], dict):  # saved under former field names: today's
        cfg["model"] = upgrade_config(cfg["arch"], cfg["model"])
    return cfg


def save_checkpoint(path, model, tokenizer, train_config: dict | None = None, train_state: dict | None = None,
                    extra: dict | None = None) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"format": FORMAT, "arch": arch_of(model), "model": dataclasses.asdict(model.config),
           "tokenizer": tokenizer.spec, "train": train_config or {}, **(extra or {})}
    _atomic(path / "model.safetensors", lambda p: save_model(model, str(p)))
    tokenizer.save(path / "tokenizer")
    if train_state is not None:
        _atomic(path / "train_state.pt", lambda p: torch.save(train_state, p))
    # config.json last: its presence marks a complete checkpoint
    _atomic(path / "config.json", lambda p: p.write_text(json.dumps(cfg, indent=2)))
    return path


def load_checkpoint(path, map_location="cpu"):
    """-> (model in eval mode, tokenizer, config dict)."""
    path = Path(path)
    cfg = read_config(path)
    if cfg["arch"] not in ARCHS:
        raise NeuroError(f"checkpoint {path} has unknown arch {cfg['arch']!r}")
    model = build_model(cfg["arch"], **cfg["model"])
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise NeuroError(f"checkpoint {path} has no model.safetensors")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise NeuroError(f"checkpoint weights {weights} are corrupt ({e})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _is_tied(model, k, state)]
    unexpected = [k for k in state if k not in expected]
    bad_shapes = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or bad_shapes:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape mismatch in {bad_shapes[:3]}")
        raise NeuroError(f"checkpoint {path} does not match its config.json ({detail})")
    model.load_state_dict(state, strict=False)
    tokenizer = load_tokenizer(path / "tokenizer")
    if tokenizer.spec != cfg.get("tokenizer"):
        raise NeuroError(f"checkpoint {path} tokenizer is {tokenizer.spec!r} but config.json says {cfg.get('tokenizer')!r}")
    return model.eval(), tokenizer, cfg


def _is_tied(model, key: str, state: dict) -> bool:
    """safetensors stores shared tensors once; a missing key is fine if its storage twin is present."""
    params = dict(model.named_parameters(remove_duplicate=False))
    if key not in params:
        return False
    return any(p is params[key] and k in state for k, p in params.items() if k != key)


def load_train_state(path) -> dict | None:
    f = Path(path) / "train_state.pt"
    if not f.is_file():
        return None
    try:
        return torch.load(f, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated pickle
        raise NeuroError(f"{f} is corrupt ({type(e).__name__})") from None
