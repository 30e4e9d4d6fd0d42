"""Tools the runtime hands to experts: a safe calculator, a sandboxed Python executor, and a web
reader with provenance. They stand alone (no models, train, infer or data imports).

    from neuro_lib.tools import get_tool, TOOLS
    get_tool("calc").call({"expression": "sqrt(2) * 3"})
    get_tool("python").call({"code": "print(6 * 7)", "timeout_s": 2})
    get_tool("fetch", allow=["example.org"]).call({"url": "https://example.org/"})

Tests: tests/test_tools_*.py.  Bench: `neuro bench tools`.
"""
from __future__ import annotations

from neuro_lib.errors import NeuroError
from neuro_lib.tools.base import Tool, ToolError, ToolResult
from neuro_lib.tools.calculator import Calculator
from neuro_lib.tools.sandbox import PythonSandbox
from neuro_lib.tools.web import WebReader

TOOLS: dict[str, type[Tool]] = {"calc": Calculator, "python": PythonSandbox, "fetch": WebReader}


def get_tool(name: str, **options) -> Tool:
    """A fresh tool by registry name; options go to its constructor. Unknown name -> NeuroError."""
    if name not in TOOLS:
        raise NeuroError(f"unknown tool {name!r}; known tools: {', '.join(sorted(TOOLS))}")
    return TOOLS[name](**options)


__all__ = ["TOOLS", "Tool", "ToolError", "ToolResult", "get_tool", "Calculator", "PythonSandbox", "WebReader"]
