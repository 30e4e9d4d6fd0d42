"""`neuro export RUN --format onnx|pt2|gguf [--quant q8_0|q4_0|int8] --out PATH [--force]`.

Reads the checkpoint (neuro_lib/checkpoint.py), checks the request in one sentence, writes the
export beside PATH under a temporary name and renames it into place, so a failed export leaves
nothing and an existing PATH is replaced only with --force. onnx and pt2 write a folder
(prefill + decode graphs and export.json), gguf one file.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from neuro_lib.errors import NeuroError


def _check_out(path: str, fmt: str, force: bool) -> Path:
    out = Path(path)
    if fmt == "gguf" and out.suffix != ".gguf":
        raise NeuroError(f"{out.name} must end in .gguf")
    if out.exists() and not force:
        raise NeuroError(f"{out} already exists; add --force to replace it")
    if out.exists() and out.is_dir() != (fmt != "gguf"):
        raise NeuroError(f"{out} is a {'folder' if out.is_dir() else 'file'}; a {fmt} export is "
                         f"{'a file' if fmt == 'gguf' else 'a folder'}")
    if not out.parent.is_dir():
        raise NeuroError(f"the folder {out.parent} does not exist")
    return out


def cmd_export(a):
    from neuro_lib.checkpoint import load_checkpoint
    from neuro_lib.export import check_request, export_model
    from neuro_lib.export.graphs import check_exportable

    check_request(a.format, a.quant)
    out = _check_out(a.out, a.format, a.force)
    model, tokenizer, _ = load_checkpoint(a.run)
    if a.format != "gguf":
        try:
            check_exportable(model)
        except TypeError as e:
            raise NeuroError(str(e)) from None
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        export_model(model, tokenizer, a.format, tmp, a.quant, quantize_embedding=not a.float_embedding)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) if out.is_dir() else out.stat().st_size
    print(f"wrote {out} ({a.format}{' ' + a.quant if a.quant else ''}, {size / 1e6:.2f} MB)")


def register(sub) -> None:
    p = sub.add_parser("export", help="write a trained run as ONNX, torch.export (.pt2) or GGUF")
    p.add_argument("run", help="a run folder or checkpoint (neuro train --out ...)")
    p.add_argument("--format", required=True, choices=["onnx", "pt2", "gguf"])
    p.add_argument("--quant", choices=["q8_0", "q4_0", "int8"],
                   help="gguf: q8_0 or q4_0 blocks (default f32); onnx: int8 dynamic (onnxruntime)")
    p.add_argument("--float-embedding", action="store_true",
                   help="gguf: keep the token embedding (tied LM head) in f32 when quantising")
    p.add_argument("--out", required=True, help="the output: a .gguf file, or a folder for onnx and pt2")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_export)
