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
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def verify(doc, schema: dict) -> list[SchemaViolation]:
    """All schema violations of a parsed document, ordered by path."""
    errs = sorted(validator(schema).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    return [SchemaViolation(json_path(e.absolute_path), str(e.validator), e.message, tuple(e.absolute_path))
            for e in errs]


def verify_text(text: str | bytes, schema: dict) -> tuple[object, list[SchemaViolation]]:
    """Parse then verify; -> (document or None, violations)."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, [SchemaViolation("$", "syntax", f"not valid JSON: {e}", ())]
    return doc, verify(doc, schema)
