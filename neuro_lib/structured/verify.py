"""Verify a document against a JSON Schema with `jsonschema`: every error with its JSON path
and the rule (keyword) it breaks. Formats ("date", "email", ...) are checked too.

    errs = verify(doc, load_schema("product_v1"))   # [] when valid
    errs[0].path, errs[0].rule, errs[0].message     # "$.price", "minimum", "-3 is less than ..."
    verify_text('{"name": 1}', schema)              # parses first; a syntax error is one error, rule "syntax"

`pattern` and `patternProperties` run on RE2 (the `google-re2` package), not on Python's `re`: a
backtracking engine takes exponential time on a pattern such as `^(a+)+$` against "aaaa...b", so a
schema could hang validation; RE2 matches in time linear in the text. RE2 has no backreferences or
lookaround (ECMA-262 has them): a schema using one is refused in one sentence (`check_patterns`, run by
`schemas.check_schema`). RE2's `\d` and `\w` are ASCII, as ECMA-262's are.

Tests: tests/test_structured_repair.py.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import jsonschema
import re2
import referencing
from jsonschema import ValidationError

from neuro_lib.errors import NeuroError

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported once, as a NeuroError, not also on stderr


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


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str):
    """A schema pattern compiled by RE2 (linear-time matching); NeuroError when RE2 cannot run it."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as e:
        why = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise NeuroError(f"schema pattern {pattern[:80]!r} cannot be run by the linear-time regex engine (RE2: "
                         f"{why}); backreferences and lookaround are not supported") from None


def _search(pattern: str, text: str) -> bool:
    # RE2 takes UTF-8; a lone surrogate (JSON allows "\ud800") cannot be encoded, so it is matched as U+FFFD
    return compile_pattern(pattern).search(text.encode("utf-8", "replace").decode("utf-8")
                                           if not text.isascii() else text) is not None


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for k, v in instance.items():
            if _search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def check_patterns(schema, name: str) -> None:
    """NeuroError unless every `pattern` and `patternProperties` key in the schema compiles under RE2."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            try:
                if isinstance(node.get("pattern"), str):
                    compile_pattern(node["pattern"])
                if isinstance(node.get("patternProperties"), dict):
                    for p in node["patternProperties"]:
                        compile_pattern(p)
            except NeuroError as e:
                raise NeuroError(f"schema {name!r}: {e}") from None
            stack.extend(node.values())


@functools.lru_cache(maxsize=None)
def _linear_class(cls):
    """`cls` with `pattern` and `patternProperties` matched by RE2."""
    return jsonschema.validators.extend(cls, {"pattern": _pattern, "patternProperties": _pattern_properties})


def validator(schema: dict):
    """A validator whose patterns run on RE2 and that resolves references within `schema` only: an empty
    registry retrieves nothing (jsonschema's default fetches an http(s) `$ref` while validating)."""
    cls = _linear_class(jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator))
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
