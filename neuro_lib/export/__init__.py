"""Export: a trained model as files other runtimes read (DESIGN.md: export/ sits beside rag/ and
structured/, reads checkpoints through neuro_lib/checkpoint.py and never imports train).

- graphs.py    the prefill and decode step as pure tensor functions (state in, state out)
- onnx.py      ONNX through torch's exporter, an onnxruntime runner, int8 dynamic quantisation
- pt2.py       torch.export programs (.pt2); TorchScript is deprecated upstream and not exported
- ggml.py      GGML's Q8_0 / Q4_0 block quantisation, written out
- gguf_file.py GGUF files through the `gguf` package (F32, Q8_0, Q4_0 + metadata + tokenizer)
- quant.py     torch dynamic int8 and torchao weight-only int8 / int4 for PyTorch inference

    neuro export RUN --format onnx|pt2|gguf [--quant q8_0|q4_0|int8] --out PATH
    neuro bench export --profile smoke

The packages are the `export` extra (`pip install -e '.[export]'`). Tests: tests/test_export.py.
"""
from __future__ import annotations

from pathlib import Path

from neuro_lib.errors import NeuroError

FORMATS = {"onnx": (None, "int8"), "pt2": (None,), "gguf": (None, "q8_0", "q4_0")}  # format -> quant choices
PACKAGES = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "pt2": (), "gguf": ("gguf",)}


def check_request(fmt: str, quant: str | None) -> None:
    """One sentence if the format/quantisation pair is not offered or its packages are missing."""
    if fmt not in FORMATS:
        raise NeuroError(f"unknown export format {fmt!r}; choose one of {sorted(FORMATS)}")
    if quant not in FORMATS[fmt]:
        offered = [q for q in FORMATS[fmt] if q] or ["none"]
        raise NeuroError(f"--quant {quant} is not offered for {fmt}; {fmt} takes {', '.join(offered)}")
    import importlib.util

    missing = [p for p in PACKAGES[fmt] if importlib.util.find_spec(p) is None]
    if missing:
        raise NeuroError(f"exporting {fmt} needs {', '.join(missing)}: pip install -e '.[export]'")


def export_model(model, tokenizer, fmt: str, out, quant: str | None = None, quantize_embedding: bool = True) -> Path:
    """Write `model` as `fmt` to `out` (a folder for onnx and pt2, a file for gguf) -> out."""
    check_request(fmt, quant)
    out = Path(out)
    if fmt == "gguf":
        from neuro_lib.export.gguf_file import write_gguf

        return write_gguf(model, tokenizer, out, quant or "f32", quantize_embedding)
    if fmt == "pt2":
        from neuro_lib.export.pt2 import export_pt2

        return export_pt2(model, out)
    from neuro_lib.export.onnx import export_onnx, quantize_int8

    if quant is None:
        return export_onnx(model, out)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return quantize_int8(export_onnx(model, Path(tmp) / "fp32"), out)
