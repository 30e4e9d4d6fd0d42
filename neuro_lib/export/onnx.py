"""ONNX export of a language model's prefill and decode step, and an onnxruntime runner.

    from neuro_lib.export.onnx import export_onnx, OnnxLM
    export_onnx(model, "out/gpt-onnx")          # prefill.onnx, decode.onnx, export.json
    lm = OnnxLM("out/gpt-onnx", threads=2)
    ids = lm.greedy([[1, 2, 3]], 64)             # onnxruntime only: no torch model needed

The graphs are export/graphs.py's `Prefill` and `Decode` traced by torch's exporter
(`torch.onnx.export(..., dynamo=True)`, which needs onnxscript): batch, prompt length and
past length are dynamic dimensions, the decoding state is explicit inputs and outputs
(`graphs.state_names`). `export.json` records the arch, config, opset, the state names and
the length limit, so the runner needs nothing else. `quantize_int8` writes a dynamically
quantised copy of both graphs through onnxruntime's `quantize_dynamic` (int8 weights of
MatMul/Gemm, activations quantised per call).

Known traps, each tested in tests/test_export.py: the tied LM head is stored once (the file
holds one (V, C) embedding matrix; with nn.Linear's h @ W^T the exporter's optimiser folded the
transpose into a second copy, so the export computes the head as W @ h^T, graphs.TiedHead); one file answers two prompt lengths and two past lengths
(attention did not fix the shape it was traced at); the decode graph returns new state
tensors and leaves its inputs as they were (no in-place scan or cache update).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import torch

from neuro_lib.errors import NeuroError
from neuro_lib.export.graphs import Decode, Prefill, check_exportable, state_names
from neuro_lib.models import arch_of
from neuro_lib.models.mamba import Mamba

OPSET = 18
FILES = ("prefill.onnx", "decode.onnx")
MANIFEST = "export.json"


def _limits(model) -> tuple[int, int]:
    """(longest prompt, longest past) a graph accepts: block_size for attention models; Mamba has no
    limit but the quadratic prefill's memory, so its pieces are capped at its training window."""
    if isinstance(model, Mamba):
        return model.config.block_size, 1 << 20
    return model.config.block_size, model.config.block_size - 1


def export_onnx(model, out_dir, batch_example: int = 2) -> Path:
    """Write prefill.onnx, decode.onnx and export.json into out_dir (created) -> out_dir."""
    check_exportable(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = state_names(model)
    max_t, max_past = _limits(model)
    vocab = model.config.vocab_size
    batch = torch.export.Dim("batch", min=1, max=1024)
    length = torch.export.Dim("length", min=1, max=max_t)
    prompt = torch.randint(0, vocab, (batch_example, 3))
    prefill = Prefill(model)
    with torch.no_grad():
        state = prefill(prompt)[1:]
    torch.onnx.export(prefill, (prompt,), out / FILES[0], input_names=["tokens"], output_names=["logits", *names],
                      dynamic_shapes={"tokens": {0: batch, 1: length}}, opset_version=OPSET, dynamo=True,
                      verbose=False)
    past = torch.export.Dim("past", min=1, max=max_past)
    new = torch.export.Dim("new", min=1, max=max_t)
    # Mamba's state has no time axis; a KV cache's is dim 2
    state_dims = tuple({0: batch} if isinstance(model, Mamba) else {0: batch, 2: past} for _ in names)
    tokens = torch.randint(0, vocab, (batch_example, 2))  # 2, not 1: a size-1 example would be specialised
    torch.onnx.export(Decode(model), (tokens, *state), out / FILES[1], input_names=["tokens", *names],
                      output_names=["logits", *[f"{n}_out" for n in names]],
                      dynamic_shapes={"tokens": {0: batch, 1: new}, "state": state_dims}, opset_version=OPSET,
                      dynamo=True, verbose=False)
    manifest = {"arch": arch_of(model), "config": dataclasses.asdict(model.config), "opset": OPSET,
                "state": names, "max_prompt": max_t, "max_len": model.max_len, "files": list(FILES)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def quantize_int8(src_dir, out_dir) -> Path:
    """A copy of an ONNX export with int8 dynamic quantisation (onnxruntime.quantization.quantize_dynamic)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, out = Path(src_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        quantize_dynamic(src / name, out / name, weight_type=QuantType.QInt8)
    manifest = json.loads((src / MANIFEST).read_text())
    manifest["quant"] = "int8-dynamic"
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def export_bytes(out_dir) -> int:
    """Bytes of an export's graph files."""
    return sum(os.path.getsize(Path(out_dir) / name) for name in FILES)


class OnnxLM:
    """An exported model run by onnxruntime: prefill, decode steps, greedy decoding, full-sequence logits.

    State is a list of numpy arrays in `state` order; `step` returns a new list (inputs untouched)."""

    def __init__(self, export_dir, threads: int = 0):
        import onnxruntime as ort

        d = Path(export_dir)
        if not (d / MANIFEST).is_file():
            raise NeuroError(f"{d} is not an ONNX export (no {MANIFEST})")
        self.manifest = json.loads((d / MANIFEST).read_text())
        self.state_names = self.manifest["state"]
        self.max_len = self.manifest["max_len"]
        self.max_prompt = self.manifest["max_prompt"]
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.prefill_session = ort.InferenceSession(str(d / FILES[0]), opts, providers=["CPUExecutionProvider"])
        self.decode_session = ort.InferenceSession(str(d / FILES[1]), opts, providers=["CPUExecutionProvider"])

    def prefill(self, tokens) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (B, T) -> (logits (B, T, V), state). Prompts longer than max_prompt go in pieces."""
        tokens = np.asarray(tokens, dtype=np.int64)
        first = tokens[:, : self.max_prompt]
        logits, *state = self.prefill_session.run(None, {"tokens": first})
        pieces = [logits]
        for s in range(self.max_prompt, tokens.shape[1], self.max_prompt):
            out, state = self.step(tokens[:, s: s + self.max_prompt], state)
            pieces.append(out)
        return np.concatenate(pieces, axis=1), state

    def step(self, tokens, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """tokens (B, t) continuing `state` -> (logits (B, t, V), the new state)."""
        feeds = {"tokens": np.asarray(tokens, dtype=np.int64), **dict(zip(self.state_names, state))}
        logits, *new = self.decode_session.run(None, feeds)
        return logits, new

    def logits(self, tokens) -> np.ndarray:
        """The full pass: tokens (B, T) -> logits (B, T, V)."""
        return self.prefill(tokens)[0]

    def greedy(self, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
        """Greedy continuation of equal-length prompts: new_tokens ids per row."""
        logits, state = self.prefill(np.asarray(prompts))
        out = [[] for _ in prompts]
        length = len(prompts[0])
        for i in range(new_tokens):
            nxt = logits[:, -1].argmax(-1)                                      # (B,)
            for row, t in zip(out, nxt):
                row.append(int(t))
            if i + 1 == new_tokens:
                break
            if self.max_len and length + 1 > self.max_len:
                raise NeuroError(f"greedy decoding past the export's {self.max_len} positions is not supported")
            logits, state = self.step(nxt[:, None], state)
            length += 1
        return out
