"""Repair a JSON document in two stages and report every change.

1. Syntax: text that does not parse goes through the `json-repair` package (unclosed brackets
   and strings, trailing commas, single quotes, ...).
2. Schema: a minimal repair driven by the `jsonschema` errors (verify.py):
   - type coercion only where lossless: "12" -> 12 for an integer, "2.5" -> 2.5 for a number,
     12.0 -> 12 for an integer, "true" -> true for a boolean, 12 -> "12" for a string;
   - properties the schema forbids (`additionalProperties: false`) are dropped;
   - a missing required property is filled only from the schema's `default`;
   anything else (a number out of range, a pattern, an unknown enum value, a required field
   with no default) leaves the document unrepairable, with the remaining errors listed.
A valid document is never touched.

    r = repair('{"name": "Pen", "price": "12", "colour": "red"', load_schema("product_v1"))
    r.ok, r.doc, [str(c) for c in r.changes], r.errors

Tests: tests/test_structured_repair.py (hypothesis property tests and hand-made cases).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import json_repair

from neuro_lib.structured.verify import SchemaViolation, json_path, validator, verify

MAX_ROUNDS = 50  # each round fixes at least one error or stops


@dataclass(frozen=True)
class Change:
    path: str     # JSONPath of the changed value
    action: str   # "syntax", "coerce", "drop", "default"
    before: object = None
    after: object = None

    def __str__(self) -> str:
        if self.action == "syntax":
            return "$: syntax repaired by json-repair"
        if self.action == "drop":
            return f"{self.path}: dropped (not allowed by the schema), was {json.dumps(self.before)}"
        if self.action == "default":
            return f"{self.path}: missing, filled with the schema default {json.dumps(self.after)}"
        return f"{self.path}: {json.dumps(self.before)} -> {json.dumps(self.after)}"


@dataclass
class RepairResult:
    doc: object                                   # the repaired document (None if the text was hopeless)
    changes: list[Change] = field(default_factory=list)
    errors: list[SchemaViolation] = field(default_factory=list)  # what is still wrong (empty when ok)

    @property
    def ok(self) -> bool:
        return self.doc is not None and not self.errors


def coerce(value, types) -> tuple[bool, object]:
    """A lossless conversion of `value` to one of the JSON types `types`; (False, None) if none exists."""
    types = [types] if isinstance(types, str) else list(types)
    for t in types:
        if t == "integer":
            if isinstance(value, float) and value.is_integer():
                return True, int(value)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit() and str(int(value)) == value.strip():
                return True, int(value)
        if t == "number" and isinstance(value, str):
            try:
                num = json.loads(value.strip())
            except json.JSONDecodeError:
                continue
            if isinstance(num, (int, float)) and not isinstance(num, bool) and json.dumps(num) == value.strip():
                return True, num
        if t == "boolean" and value in ("true", "false"):
            return True, value == "true"
        if t == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, json.dumps(value)
    return False, None


def _parent(doc, location):
    node = doc
    for key in location[:-1]:
        node = node[key]
    return node


def _fix(doc, err) -> list[Change]:
    """Changes that fix one jsonschema error in place, or [] if it cannot be fixed minimally."""
    loc = tuple(err.absolute_path)
    if err.validator == "type" and loc:
        ok, new = coerce(err.instance, err.validator_value)
        if ok:
            _parent(doc, loc)[loc[-1]] = new
            return [Change(json_path(loc), "coerce", err.instance, new)]
    if err.validator == "additionalProperties" and err.validator_value is False and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        node = _parent(doc, loc + ("",)) if loc else doc
        changes = [Change(json_path(loc + (k,)), "drop", node[k]) for k in extra]
        for k in extra:
            del node[k]
        return changes
    if err.validator == "required" and isinstance(err.instance, dict):
        props = err.schema.get("properties", {})
        node = _parent(doc, loc + ("",)) if loc else doc
        changes = []
        for k in err.validator_value:
            if k not in node and "default" in props.get(k, {}):
                node[k] = copy.deepcopy(props[k]["default"])
                changes.append(Change(json_path(loc + (k,)), "default", None, node[k]))
        return changes
    return []


def repair(text: str | bytes, schema: dict) -> RepairResult:
    """Syntax then schema repair of `text`; see the module docstring."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    changes: list[Change] = []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = json_repair.repair_json(text, return_objects=True)
        if doc == "" and text.strip() not in ('""', "''"):  # json-repair's answer for hopeless input
            return RepairResult(None, [], [SchemaViolation("$", "syntax", "not JSON and not repairable", ())])
        changes.append(Change("$", "syntax", text, doc))
    v = validator(schema)
    for _ in range(MAX_ROUNDS):
        errs = list(v.iter_errors(doc))
        if not errs:
            break
        fixed = []
        for err in sorted(errs, key=lambda e: -len(e.absolute_path)):  # innermost first: paths stay valid
            fixed = _fix(doc, err)
            if fixed:
                break
        if not fixed:
            break
        changes += fixed
    return RepairResult(doc, changes, verify(doc, schema))
