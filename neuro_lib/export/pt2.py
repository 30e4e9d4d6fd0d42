"""torch.export programs (`.pt2`) of a model's prefill and decode step.

    export_pt2(model, "out/gpt-pt2")        # prefill.pt2, decode.pt2, export.json
    prefill, decode = load_pt2("out/gpt-pt2")
    logits, *state = prefill.module()(tokens)

The same graphs as the ONNX export (export/graphs.py: the state is explicit inputs and
outputs; batch, prompt and past lengths are dynamic; the decode program takes one token per row), saved with `torch.export.save` and read
back with `torch.export.load`: an ExportedProgram holds ATen ops and the weights, runs without
the model's Python code (`.module()`), and is what AOTInductor and ExecuTorch compile from.
The round trip is bit-exact (tests/test_export.py).

TorchScript (`torch.jit`) is deprecated upstream in favour of torch.export and is not exported
here.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from neuro_lib.export.graphs import Decode, Prefill, check_exportable, state_names
from neuro_lib.models import arch_of
from neuro_lib.models.mamba import Mamba

FILES = ("prefill.pt2", "decode.pt2")
MANIFEST = "export.json"


def export_programs(model, batch_example: int = 2):
    """-> (prefill ExportedProgram, decode ExportedProgram), dynamic in batch and lengths."""
    check_exportable(model)
    names = state_names(model)
    vocab = model.config.vocab_size
    max_t = model.config.block_size
    max_past = (1 << 20) if isinstance(model, Mamba) else model.config.block_size - 1
    batch = torch.export.Dim("batch", min=1, max=1024)
    prompt = torch.randint(0, vocab, (batch_example, 3))
    prefill = Prefill(model)
    ep_prefill = torch.export.export(prefill, (prompt,),
                                     dynamic_shapes={"tokens": {0: batch, 1: torch.export.Dim("length", min=1,
                                                                                               max=max_t)}})
    with torch.no_grad():
        state = prefill(prompt)[1:]
    dyn = torch.export.Dim.DYNAMIC  # ranges found by export (past < block_size for attention)
    state_dims = tuple({0: dyn} if isinstance(model, Mamba) else {0: dyn, 2: dyn} for _ in names)
    # one new token per step: with a dynamic count the Aeron graph keeps a guard against exactly one
    tokens = torch.randint(0, vocab, (batch_example, 1))
    with torch.fx.experimental._config.patch(backed_size_oblivious=True):  # no 0/1 specialisation of past
        ep_decode = torch.export.export(Decode(model), (tokens, *state),
                                        dynamic_shapes={"tokens": {0: dyn}, "state": state_dims})
    return ep_prefill, ep_decode


def export_pt2(model, out_dir) -> Path:
    """Write prefill.pt2, decode.pt2 and export.json into out_dir (created) -> out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, ep in zip(FILES, export_programs(model)):
        torch.export.save(ep, out / name)
    manifest = {"arch": arch_of(model), "config": dataclasses.asdict(model.config), "state": state_names(model),
                "files": list(FILES), "torch": torch.__version__}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def load_pt2(out_dir):
    """-> (prefill, decode) ExportedPrograms from an export_pt2 folder."""
    out = Path(out_dir)
    return tuple(torch.export.load(out / name) for name in FILES)
