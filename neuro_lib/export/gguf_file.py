"""GGUF files (the llama.cpp / ggml container) written and read with the `gguf` package.

    write_gguf(model, tokenizer, "gpt-q8.gguf", qtype="q8_0")           # f32 | q8_0 | q4_0
    model, tokenizer, info = read_gguf("gpt-q8.gguf")                   # dequantised to float32

What goes in:
- metadata: `general.architecture` = "neuro_<arch>" (our architectures; llama.cpp has no loader
  for them, so these files are for ggml-based tools and for reading back, not for llama-cli),
  `general.name`, `general.file_type`, the llama.cpp-style sizes under the architecture
  (`<arch>.context_length`, `.embedding_length`, `.block_count`, `.feed_forward_length`,
  `.attention.head_count`, `.attention.head_count_kv`, `.vocab_size`), the full model config as
  JSON (`neuro.config`), and the tokenizer: `tokenizer.ggml.model` (its kind),
  `tokenizer.ggml.tokens` (every token's bytes as a latin-1 string: one code point per byte,
  so any byte sequence survives UTF-8 storage), `neuro.tokenizer.spec`, and the tokenizer's
  saved files as strings (`neuro.tokenizer.file.<name>`), enough to rebuild it.
- tensors: the state dict under its own names, a tied LM head once (as the embedding).
  Matrices whose rows split into 32-value blocks are quantised with export/ggml.py
  (our implementation); vectors and odd widths stay F32. `quantize_embedding=False` keeps the
  embedding tables (the token embedding, which is also the tied LM head, and GPT's learned
  positions) in F32.

GGUF records dimensions innermost first (ne[0] is a row's length): the writer reverses
PyTorch's shape, `GGUFReader` reports `shape` in ggml order and `data` in numpy order.
Tests: tests/test_export.py (F32 bit-exact, shape order, bytes equal to gguf.quants').
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from neuro_lib.errors import NeuroError
from neuro_lib.export import ggml
from neuro_lib.models import ARCHS, arch_of, build_model

ARCH_PREFIX = "neuro_"


def _qtype(name: str):
    import gguf

    return {"f32": gguf.GGMLQuantizationType.F32, "q8_0": gguf.GGMLQuantizationType.Q8_0,
            "q4_0": gguf.GGMLQuantizationType.Q4_0}[name]


def unique_state(model) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once, under its first name (a tied head is the embedding)."""
    seen, out = set(), {}
    for name, t in model.state_dict(keep_vars=True).items():
        if id(t) in seen:
            continue
        seen.add(id(t))
        out[name] = t.detach()
    return out


def embedding_names(model) -> set[str]:
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Embedding)}


def tensor_types(model, qtype: str, quantize_embedding: bool = True) -> dict[str, str]:
    """name -> the type it is stored as: `qtype` for block-divisible matrices, else f32."""
    if qtype not in ggml.TYPES:
        raise NeuroError(f"unknown GGUF type {qtype!r}; choose one of {list(ggml.TYPES)}")
    emb = embedding_names(model)
    out = {}
    for name, t in unique_state(model).items():
        keep = qtype == "f32" or not ggml.quantizable(t.shape) or (not quantize_embedding and name in emb)
        out[name] = "f32" if keep else qtype
    return out


def _sizes(model) -> dict[str, int]:
    c = dataclasses.asdict(model.config)
    layers = c.get("n_layer", c.get("n_decoder_layer", 0))
    sizes = {"context_length": c.get("block_size", 0), "embedding_length": c["d_model"], "block_count": layers,
             "vocab_size": c["vocab_size"]}
    if "d_ff" in c:
        sizes["feed_forward_length"] = c["d_ff"]
    if "n_head" in c:
        sizes["attention.head_count"] = c["n_head"]
        sizes["attention.head_count_kv"] = c.get("n_kv_head") or c["n_head"]
    return sizes


def write_gguf(model, tokenizer, path, qtype: str = "f32", quantize_embedding: bool = True, name: str = "") -> Path:
    """Write `model` (+ tokenizer metadata) as a GGUF file -> path."""
    import gguf

    types = tensor_types(model, qtype, quantize_embedding)
    arch = ARCH_PREFIX + arch_of(model)
    path = Path(path)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name or arch)
    w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                     "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qtype])
    for key, value in _sizes(model).items():
        w.add_uint32(f"{arch}.{key}", int(value))
    w.add_string("neuro.config", json.dumps(dataclasses.asdict(model.config), sort_keys=True))
    w.add_bool("neuro.quantize_embedding", quantize_embedding)
    _add_tokenizer(w, tokenizer)
    for tname, t in unique_state(model).items():
        x = t.float().cpu().numpy()
        if types[tname] == "f32":
            w.add_tensor(tname, x)
        else:
            q = ggml.QUANTIZE[types[tname]](x)           # uint8 (..., bytes per row)
            w.add_tensor(tname, q, raw_shape=q.shape, raw_dtype=_qtype(types[tname]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _add_tokenizer(w, tokenizer) -> None:
    w.add_tokenizer_model(tokenizer.kind)
    w.add_token_list([tokenizer.decode([i]).decode("latin-1") for i in range(tokenizer.vocab_size)])
    w.add_string("neuro.tokenizer.spec", tokenizer.spec)
    with tempfile.TemporaryDirectory() as d:
        tokenizer.save(d)
        binary = []
        for f in sorted(Path(d).rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(d).as_posix()
            try:
                w.add_string(f"neuro.tokenizer.file.{rel}", f.read_bytes().decode("utf-8"))
            except UnicodeDecodeError:
                binary.append(rel)
        w.add_array("neuro.tokenizer.not_embedded", binary or [""])


def _field(reader, key: str):
    f = reader.get_field(key)
    if f is None:
        raise NeuroError(f"{reader.data.filename if hasattr(reader.data, 'filename') else 'GGUF file'} "
                         f"has no {key!r}; it was not written by neuro export")
    return f.contents()


def read_tensors(path) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (type name, float32 array in PyTorch's shape), dequantised with export/ggml.py."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    names = {gguf.GGMLQuantizationType.F32: "f32", gguf.GGMLQuantizationType.Q8_0: "q8_0",
             gguf.GGMLQuantizationType.Q4_0: "q4_0"}
    out = {}
    for t in reader.tensors:
        kind = names.get(t.tensor_type)
        if kind is None:
            raise NeuroError(f"{path}: tensor {t.name} has type {t.tensor_type.name}, which this reader does not take")
        data = np.array(t.data)
        out[t.name] = (kind, data if kind == "f32" else ggml.DEQUANTIZE[kind](data))
    return out


def read_gguf(path):
    """-> (model with the file's (dequantised) weights, tokenizer or None, info dict)."""
    import gguf

    from neuro_lib.tokenizers.base import load_tokenizer

    path = Path(path)
    if not path.is_file():
        raise NeuroError(f"{path} does not exist")
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as e:
        raise NeuroError(f"{path} is not a readable GGUF file ({e})") from None
    arch = str(_field(reader, "general.architecture"))
    if not arch.startswith(ARCH_PREFIX) or arch[len(ARCH_PREFIX):] not in ARCHS:
        raise NeuroError(f"{path} holds architecture {arch!r}, not one of neuro_lib's")
    model = build_model(arch[len(ARCH_PREFIX):], **json.loads(_field(reader, "neuro.config")))
    state = {name: torch.from_numpy(np.ascontiguousarray(x)) for name, (_, x) in read_tensors(path).items()}
    missing = set(unique_state(model)) - set(state)
    if missing:
        raise NeuroError(f"{path} lacks tensors {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)
    tokenizer = None
    not_embedded = [x for x in _field(reader, "neuro.tokenizer.not_embedded") if x]
    if not not_embedded:
        with tempfile.TemporaryDirectory() as d:
            for key in reader.fields:
                if key.startswith("neuro.tokenizer.file."):
                    f = Path(d) / key[len("neuro.tokenizer.file."):]
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_text(_field(reader, key), encoding="utf-8")
            tokenizer = load_tokenizer(d)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    return model.eval(), tokenizer, {"arch": arch, "types": types, "tokenizer_spec": _field(reader, "neuro.tokenizer.spec")}
