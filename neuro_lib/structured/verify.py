"""Verify a document against a JSON Schema with `jsonschema`: every error with its JSON path
and the rule (keyword) it breaks. Formats ("date", "email", ...) are checked too.

    errs = verify(doc, load_schema("product_v1"))   # [] when valid
    errs[0].path, errs[0].rule, errs[0].message     # "$.price", "minimum", "-3 is less than ..."
    verify_text('{"name": 1}', schema)              # parses first; a syntax error is one error, rule "syntax"

Tests: tests/test_structured_repair.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import jsonschema
import referencing


@dataclass(frozen=True)
class SchemaViolation:
    path: str        # JSONPath of the offending value, "$" for the root
    rule: str        # the schema keyword broken ("type", "required", "syntax", ...)
    message: str
    location: tuple  # the same path as a tuple of keys and indices

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}: {self.message}"


def json_path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def validator(schema: dict):
    """A validator that resolves references within `schema` only: an empty registry retrieves nothing
    (jsonschema's default fetches an http(s) `$ref` while validating)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=referencing.Registry())


def verify(doc, schema: dict) -> list[SchemaViolation]:
    """All schema violations of a parsed document, ordered by path."""
    try:
        errs = sorted(validator(schema).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    except RecursionError:
        return [SchemaViolation("$", "depth", "nested too deeply to check", ())]
    return [SchemaViolation(json_path(e.absolute_path), str(e.validator), _short(e.message), tuple(e.absolute_path))
            for e in errs]


def _short(message: str, limit: int = 300) -> str:
    """jsonschema quotes the whole offending value; a huge one would bury the report."""
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message)} characters)"


def verify_text(text: str | bytes, schema: dict) -> tuple[object, list[SchemaViolation]]:
    """Parse then verify; -> (document or None, violations)."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, [SchemaViolation("$", "syntax", f"not valid JSON: {e}", ())]
    except RecursionError:
        return None, [SchemaViolation("$", "syntax", "not valid JSON: nested too deeply to read", ())]
    return doc, verify(doc, schema)
