"""Checkpoints (DESIGN.md): versioned folders inside a run folder, a pointer written last.

    RUN/checkpoint.json          {"format", "checkpoint": "ckpt-000007", "seq", "step", "config_sha256"}
    RUN/ckpt-000007/config.json  {"arch", "model", "tokenizer", "train", "step", "files": {name: sha256}, ...}
    RUN/ckpt-000007/model.safetensors, tokenizer/,
                 train_state.json + train_state.safetensors (optimiser, step, RNG, metrics offset)
    RUN/metrics.jsonl            appended by the Trainer; the checkpoint records its length and hash
    RUN/.lock                    held by the process training into RUN (train/runlock.py)

A save writes a new `ckpt-<seq>` folder completely (every file fsynced, config.json last
with the hash of every other file), then swaps `checkpoint.json` atomically (temp + rename),
then deletes the older folders. At every instant the pointer names one complete
checkpoint: a kill at any moment leaves either the old or the new one, plus garbage that
the next save or resume removes. A save that fails (full disk) removes its partial folder
and leaves the previous checkpoint as it was.

The train state holds no pickle: its tensors (optimiser moments, the torch RNG) are in safetensors and
everything else in JSON, so a planted run folder cannot run code when a run resumes (the SHA-256 checks
do not help there: whoever writes the file writes the hashes). A pickled `train_state.pt` of before
2026-12-03 is refused, never unpickled; its weights still load.

Loading verifies the chain: pointer -> config.json hash -> every file's hash -> config
against the weights -> the train state's step. Anything off is one sentence (NeuroError).
A child (fine-tuned, aligned, merged) records `parent`: `lineage(parent, method)` writes it and
`check_lineage(child)` refuses a child whose parent is missing or changed.

    save_checkpoint("runs/x", model, tokenizer)          # also a standalone export
    model, tokenizer, cfg = load_checkpoint("runs/x")   # or a ckpt-* folder itself

Tests: tests/test_runs.py (kills mid-save, full disk, corruption), tests/test_cli.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from neuro_lib.atomic import DISK_ERRNOS, disk_error, fsync_dir, fsync_file, write_atomic
from neuro_lib.errors import NeuroError
from neuro_lib.memlimit import check_fits
from neuro_lib.models import ARCHS, arch_of, build_model, upgrade_config
from neuro_lib.tokenizers import load_tokenizer

FORMAT = 2
POINTER = "checkpoint.json"
METRICS = "metrics.jsonl"
LOCK = ".lock"
CKPT_RE = re.compile(r"ckpt-\d{6}")
TEMP_RE = re.compile(r"\..+\.tmp-\d+")  # write_atomic's temporary files
STATE_JSON, STATE_TENSORS = "train_state.json", "train_state.safetensors"
LEGACY_STATE = "train_state.pt"  # pickled (before 2026-12-03): refused, never loaded


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------
def _weights_bytes(model) -> bytes:
    """safetensors bytes of the state dict, tied tensors stored once (load accepts either twin)."""
    tensors, seen = {}, set()
    for k, v in model.state_dict().items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        if key in seen:
            continue
        seen.add(key)
        tensors[k] = v.detach().cpu().contiguous()
    return save_safetensors(tensors)


def _write_folder(folder: Path, model, tokenizer, cfg: dict, train_state: dict | None) -> None:
    """Write a complete checkpoint folder (which must not exist); config.json last, with file hashes."""
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(_weights_bytes(model))
    if train_state is not None:
        tensors: dict = {}
        doc = _pack(train_state, tensors)  # serialise in memory: a disk error is then a plain OSError
        (folder / STATE_TENSORS).write_bytes(save_safetensors(tensors))
        (folder / STATE_JSON).write_text(json.dumps(doc, allow_nan=False))
    tokenizer.save(folder / "tokenizer")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        fsync_file(p)
    cfg = {**cfg, "files": {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}}
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    fsync_file(folder / "config.json")
    for d in sorted({p.parent for p in files} | {folder}, key=lambda d: -len(d.parts)):
        fsync_dir(d)


def read_pointer(run_dir) -> dict | None:
    f = Path(run_dir) / POINTER
    if not f.is_file():
        return None
    try:
        ptr = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NeuroError(f"{f} is corrupt (not valid JSON)") from None
    if not (isinstance(ptr, dict) and isinstance(ptr.get("checkpoint"), str) and CKPT_RE.fullmatch(ptr["checkpoint"])
            and isinstance(ptr.get("seq"), int) and isinstance(ptr.get("step"), int)):
        raise NeuroError(f"{f} is corrupt (needs 'checkpoint', 'seq' and 'step')")
    return ptr


def collect_garbage(run_dir) -> None:
    """Remove what a killed save leaves behind: folders the pointer does not name, temporary files."""
    run_dir = Path(run_dir)
    ptr = read_pointer(run_dir)
    keep = ptr["checkpoint"] if ptr else None
    for p in run_dir.iterdir():
        if CKPT_RE.fullmatch(p.name) and p.name != keep:
            shutil.rmtree(p, ignore_errors=True)
        elif TEMP_RE.fullmatch(p.name):
            p.unlink(missing_ok=True)


def save_checkpoint(run_dir, model, tokenizer, train_config: dict | None = None, train_state: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write a new checkpoint into `run_dir` and point at it; returns the checkpoint folder.
    A failure leaves the previous checkpoint (if any) intact and no partial folder behind."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    prev = read_pointer(run_dir)
    seq = prev["seq"] + 1 if prev else 1
    folder = run_dir / f"ckpt-{seq:06d}"
    step = (train_state or {}).get("step", 0)
    cfg = {"format": FORMAT, "arch": arch_of(model), "model": dataclasses.asdict(model.config),
           "tokenizer": tokenizer.spec, "train": train_config or {}, "step": step, **(extra or {})}
    try:
        if folder.exists():  # left by a save killed before its pointer was written
            shutil.rmtree(folder)
        _write_folder(folder, model, tokenizer, cfg, train_state)
        ptr = {"format": FORMAT, "checkpoint": folder.name, "seq": seq, "step": step,
               "config_sha256": sha256_file(folder / "config.json")}
        write_atomic(run_dir / POINTER, json.dumps(ptr, indent=2))
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, f"checkpoint {folder}") from None
        raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    collect_garbage(run_dir)
    return folder


# -- reading -------------------------------------------------------------------------------------
def resolve(path) -> tuple[Path, dict | None]:
    """-> (checkpoint folder, pointer or None). `path` is a run folder or a ckpt-* folder itself."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path, None
    ptr = read_pointer(path)
    if ptr is None:
        raise NeuroError(f"{path} is not a checkpoint (no {POINTER} or config.json)")
    folder = path / ptr["checkpoint"]
    if not (folder / "config.json").is_file():
        raise NeuroError(f"{path}/{POINTER} names {ptr['checkpoint']}, which is missing or incomplete")
    return folder, ptr


def read_config(path) -> dict:
    """The verified config.json of the checkpoint at `path` (run folder or ckpt-* folder)."""
    folder, ptr = resolve(path)
    cfg_path = folder / "config.json"
    if ptr is not None and ptr.get("config_sha256") != sha256_file(cfg_path):
        raise NeuroError(f"{cfg_path} does not match {POINTER} (edited or corrupt)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NeuroError(f"{cfg_path} is corrupt (not valid JSON)") from None
    if not isinstance(cfg, dict) or "arch" not in cfg or "model" not in cfg:
        raise NeuroError(f"{cfg_path} is not a neuro_lib checkpoint config (needs 'arch' and 'model')")
    formats = {"arch": str, "model": dict, "tokenizer": str, "train": dict}
    if cfg.get("format", 1) >= 2:  # format 1 (one flat folder, before 2026-11-25) had no hashes and no step
        formats.update(files=dict, step=int)
    bad = [k for k, t in formats.items() if not isinstance(cfg.get(k), t) or isinstance(cfg.get(k), bool)]
    if bad:
        raise NeuroError(f"{cfg_path} has missing or mistyped field(s) {bad}")
    if ptr is not None and ptr["step"] != cfg["step"]:
        raise NeuroError(f"{cfg_path} is of step {cfg['step']} but {POINTER} says {ptr['step']}")
    for rel, digest in cfg.get("files", {}).items():
        f = folder / rel
        if not f.is_file() or sha256_file(f) != digest:
            raise NeuroError(f"checkpoint {folder} is corrupt: {rel} is missing or does not match its recorded hash")
    cfg["model"] = upgrade_config(cfg["arch"], cfg["model"]) if cfg["arch"] in ARCHS else cfg["model"]  # former names
    cfg["folder"] = str(folder)
    return cfg


def load_checkpoint(path, map_location="cpu"):
    """-> (model in eval mode, tokenizer, config dict)."""
    cfg = read_config(path)
    folder = Path(cfg["folder"])
    if cfg["arch"] not in ARCHS:
        raise NeuroError(f"checkpoint {folder} has unknown arch {cfg['arch']!r}")
    weights = folder / "model.safetensors"
    if weights.is_file():  # reading the weights holds a second copy beside the model's own
        check_fits(2 * weights.stat().st_size, f"checkpoint {folder} (model and weights file)")
    model = build_model(cfg["arch"], **cfg["model"])
    load_weights(model, folder)
    model.to(map_location)
    try:
        tokenizer = load_tokenizer(folder / "tokenizer")
    except NeuroError:
        raise
    except Exception as e:  # a tokenizer's own loader raises many types on bad metadata
        raise NeuroError(f"checkpoint {folder} has an unreadable tokenizer ({type(e).__name__})") from None
    if tokenizer.spec != cfg.get("tokenizer"):
        raise NeuroError(f"checkpoint {folder} tokenizer is {tokenizer.spec!r} but config.json says {cfg.get('tokenizer')!r}")
    return model.eval(), tokenizer, cfg


# -- lineage -------------------------------------------------------------------------------------
def checkpoint_id(path) -> str:
    """A checkpoint's identity: the SHA-256 of its verified config.json, which holds every file's hash."""
    folder = Path(read_config(path)["folder"])
    return sha256_file(folder / "config.json")


def lineage(parent_path, method: str, **details) -> dict:
    """The `parent` record a child checkpoint stores (`save_checkpoint(..., extra={"parent": lineage(...)})`):
    the parent's id and path, the method that made the child (finetune, lora, merge:ties, dpo, ...) and
    the method's settings. Several parents (a merge) are a list of these records."""
    return {"id": checkpoint_id(parent_path), "path": str(Path(parent_path).resolve()), "method": method, **details}


def parents_of(cfg: dict) -> list[dict]:
    """The parent records of a checkpoint config (none for a model trained from scratch)."""
    parent = cfg.get("parent")
    if parent is None:
        return []
    records = parent if isinstance(parent, list) else [parent]
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("path"), str)
               for r in records):
        raise NeuroError(f"checkpoint {cfg.get('folder', '?')} has a malformed 'parent' record")
    return records


def check_lineage(path) -> dict:
    """The child's verified config, after checking each recorded parent still exists unchanged.
    A missing or changed parent is refused in one sentence: a task vector against it would be wrong."""
    cfg = read_config(path)
    for record in parents_of(cfg):
        try:
            current = checkpoint_id(record["path"])
        except NeuroError:
            raise NeuroError(f"{path} was made from {record['path']}, which is missing or unreadable") from None
        if current != record["id"]:
            raise NeuroError(f"{path} was made from {record['path']}, which has changed since "
                             f"(id {record['id'][:12]} then, {current[:12]} now)")
    return cfg


def load_weights(model, folder: Path) -> None:
    """Load folder/model.safetensors into `model` in place, after checking names and shapes."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NeuroError(f"checkpoint {folder} has no model.safetensors")
    try:
        state = load_safetensors(weights.read_bytes())
    except (SafetensorError, OSError, ValueError) as e:
        raise NeuroError(f"checkpoint weights {weights} are corrupt ({e})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _is_tied(model, k, state)]
    unexpected = [k for k in state if k not in expected]
    bad_shapes = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or bad_shapes:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape mismatch in {bad_shapes[:3]}")
        raise NeuroError(f"checkpoint {folder} does not match its config.json ({detail})")
    model.load_state_dict(state, strict=False)


def _is_tied(model, key: str, state: dict) -> bool:
    """Tied tensors are stored once; a missing key is fine if its storage twin is present."""
    params = dict(model.named_parameters(remove_duplicate=False))
    if key not in params:
        return False
    return any(p is params[key] and k in state for k, p in params.items() if k != key)


def load_train_state(path) -> dict | None:
    """The train state of the checkpoint at `path` (verified by read_config), None if it has none.
    Reads JSON and safetensors only: nothing in a run folder can run code here."""
    cfg = read_config(path)
    folder = Path(cfg["folder"])
    if not (folder / STATE_JSON).is_file():
        if (folder / LEGACY_STATE).is_file():
            raise NeuroError(f"{folder / LEGACY_STATE} is a pickled train state of before 2026-12-03, which is "
                             "never loaded because unpickling can run code; its weights still load (eval, generate), "
                             f"but to train delete {folder.parent} or choose a new --out")
        return None
    f = folder / STATE_JSON
    try:
        tensors = load_safetensors((folder / STATE_TENSORS).read_bytes())
        state = _unpack(json.loads(f.read_text()), tensors)
    except (OSError, ValueError, SafetensorError, RecursionError, KeyError, TypeError) as e:
        raise NeuroError(f"{f} is corrupt ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("step") != cfg["step"]:
        raise NeuroError(f"{f} does not belong to the step of its config.json ({cfg['step']})")
    return state


# The train state as JSON + tensors: each tensor becomes {"$tensor": name}; what JSON cannot hold exactly
# (tuples, dicts with non-string keys, numpy arrays, inf/nan) gets a tagged object of its own.
def _pack(obj, tensors: dict):
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"$tensor": name}
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        return {"$ndarray": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, tuple):
        return {"$tuple": [_pack(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_pack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _pack(v, tensors) for k, v in obj.items()}
        return {"$items": [[_pack(k, tensors), _pack(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"a train state cannot hold a {type(obj).__name__}")


def _unpack(doc, tensors: dict):
    """The inverse of _pack; anything else (an unknown tag, a missing tensor) raises ValueError or KeyError."""
    if isinstance(doc, list):
        return [_unpack(v, tensors) for v in doc]
    if not isinstance(doc, dict):
        return doc
    tags = [k for k in doc if k.startswith("$")]
    if not tags:
        return {k: _unpack(v, tensors) for k, v in doc.items()}
    tag = tags[0]
    if tag == "$tensor":
        return tensors[doc[tag]]
    if tag == "$float":
        return float(doc[tag]) if doc[tag] in ("inf", "-inf", "nan") else _bad(tag)
    if tag == "$ndarray":
        dtype = np.dtype(doc["dtype"])
        return np.array(doc[tag], dtype=dtype) if dtype.kind in "biuf" else _bad(tag)
    if tag == "$tuple":
        return tuple(_unpack(doc[tag], tensors))
    if tag == "$items":
        return {_unpack(k, tensors): _unpack(v, tensors) for k, v in doc[tag]}
    return _bad(tag)


def _bad(tag: str):
    raise ValueError(f"malformed {tag}")


# -- the metrics log -------------------------------------------------------------------------------
def metrics_mark(run_dir) -> dict:
    """Length and hash of metrics.jsonl now: saved with a checkpoint, checked and rewound to on resume."""
    f = Path(run_dir) / METRICS
    data = f.read_bytes() if f.is_file() else b""
    if data:
        fsync_file(f)  # the records a checkpoint counts are on disk before its pointer is
    return {"metrics_bytes": len(data), "metrics_sha256": hashlib.sha256(data).hexdigest()}


def read_metrics(run_dir, mark: dict) -> list[dict]:
    """The records up to `mark`, checked against its hash (read only)."""
    f = Path(run_dir) / METRICS
    data = f.read_bytes()[: mark["metrics_bytes"]] if f.is_file() else b""
    if len(data) != mark["metrics_bytes"] or hashlib.sha256(data).hexdigest() != mark["metrics_sha256"]:
        raise NeuroError(f"{f} does not match its checkpoint (truncated, edited or corrupt)")
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def rewind_metrics(run_dir, mark: dict) -> None:
    """Drop records written after the checkpoint (a killed run's tail): no duplicates on resume."""
    f = Path(run_dir) / METRICS
    if f.is_file() and f.stat().st_size > mark["metrics_bytes"]:
        os.truncate(f, mark["metrics_bytes"])
        fsync_file(f)
