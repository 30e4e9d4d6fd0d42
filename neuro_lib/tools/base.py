"""The tool interface (DESIGN.md "Tool"): a name, a JSON Schema for the arguments, a docstring,
and `call(args) -> ToolResult`.

    result = Calculator().call({"expression": "2**10 / 3"})
    result.ok, result.value, result.error, result.timings, result.provenance

`call` validates the arguments with `jsonschema` before the tool runs, times the call, and turns
every failure, expected (`ToolError`) or not, into an error result: a tool never raises into the
caller's loop. Subclasses implement `run(args) -> ToolResult`.

Tests: tests/test_tools_calculator.py (interface cases too).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonschema


class ToolError(Exception):
    """An expected failure inside a tool (bad expression, host not allowed); becomes an error result."""


@dataclass
class ToolResult:
    ok: bool
    value: Any = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: validate_s, run_s, total_s
    provenance: dict | None = None                          # where the value came from (web reader)

    def to_dict(self) -> dict:
        return asdict(self)


class Tool:
    """Base class: set `name` and `schema`, write the docstring, implement `run`."""

    name: str = ""
    schema: dict = {"type": "object"}

    @property
    def description(self) -> str:
        return (type(self).__doc__ or "").strip()

    def run(self, args: dict) -> ToolResult:
        raise NotImplementedError

    def call(self, args: Any) -> ToolResult:
        t0 = time.perf_counter()
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(self.schema).iter_errors(args))
        t1 = time.perf_counter()
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path)
            return ToolResult(False, error=f"invalid arguments for tool {self.name!r}"
                                           f"{' at ' + where if where else ''}: {error.message}",
                              timings={"validate_s": t1 - t0, "run_s": 0.0, "total_s": t1 - t0})
        try:
            result = self.run(args)
        except ToolError as e:
            result = ToolResult(False, error=str(e))
        except Exception as e:  # noqa: BLE001 - the contract: a failing tool returns an error result
            result = ToolResult(False, error=f"tool {self.name!r} failed: {type(e).__name__}: {e}")
        t2 = time.perf_counter()
        result.timings = {**result.timings, "validate_s": t1 - t0, "run_s": t2 - t1, "total_s": t2 - t0}
        return result
