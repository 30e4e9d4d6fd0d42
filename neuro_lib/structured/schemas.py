"""The schema registry: JSON Schemas kept as files in `data/schemas/<id>.json`.

Every schema is checked against its JSON Schema meta-schema (draft 2020-12 unless the file's
`$schema` names another) when it is loaded; a bad file fails with one sentence naming the
schema and the problem. References: JSON Schema 2020-12, the `jsonschema` package.

    from neuro_lib.structured.schemas import list_schemas, load_schema
    load_schema("product_v1")        # -> dict
    load_schema("path/to/file.json") # a file outside the registry works too

Tests: tests/test_structured_schemas.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema

from neuro_lib.errors import NeuroError
from neuro_lib.structured.verify import check_patterns

DEFAULT_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "data" / "schemas"


def list_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Ids of the registered schemas (file names without `.json`), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.json"))


def check_schema(schema, name: str) -> dict:
    """Raise NeuroError unless `schema` is a JSON object that its meta-schema accepts and whose every
    `$ref` / `$dynamicRef` resolves inside the schema itself (a remote reference is never fetched)."""
    if not isinstance(schema, dict):
        raise NeuroError(f"schema {name!r} is not a JSON object")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
        check_references(schema, name)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise NeuroError(f"schema {name!r} fails the JSON Schema meta-schema at {where}: {e.message}") from None
    except RecursionError:
        raise NeuroError(f"schema {name!r} is nested too deeply to check") from None
    check_patterns(schema, name)  # patterns run on RE2 (linear time); one it cannot run is refused here
    return schema


def check_references(schema: dict, name: str) -> None:
    """Resolve every reference of `schema` against the schema alone, with a registry that retrieves
    nothing (jsonschema's default would fetch an http(s) reference while validating)."""
    spec = referencing.jsonschema.specification_with(schema.get("$schema", DEFAULT_DIALECT),
                                                     default=referencing.jsonschema.DRAFT202012)
    root = spec.create_resource(schema)
    resolver = referencing.Registry().resolver_with_root(root)

    def walk(node, resolver):
        if isinstance(node, list):
            for v in node:
                walk(v, resolver)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("$id"), str) and node is not schema:
            resolver = resolver.in_subresource(spec.create_resource(node))
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    remote = "" if ref.startswith("#") else " (remote references are never fetched)"
                    raise NeuroError(f"schema {name!r} has a {key} {ref!r} that does not resolve within the "
                                     f"schema{remote}") from None
        for v in node.values():
            walk(v, resolver)

    walk(schema, resolver)


def schema_path(schema_id: str, directory: Path = SCHEMA_DIR) -> Path:
    """The file for a registry id, or the id itself when it names an existing .json file."""
    p = Path(schema_id)
    if p.suffix == ".json" and p.is_file():
        return p
    p = Path(directory) / f"{schema_id}.json"
    if not p.is_file():
        raise NeuroError(f"unknown schema {schema_id!r}; registered: {', '.join(list_schemas(directory))}")
    return p


def load_schema(schema_id: str, directory: Path = SCHEMA_DIR) -> dict:
    """Read, parse and meta-check one schema."""
    p = schema_path(schema_id, directory)
    try:
        schema = json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise NeuroError(f"schema {schema_id!r} ({p}) is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise NeuroError(f"schema {schema_id!r} ({p}) is not valid JSON: {e}") from None
    except RecursionError:
        raise NeuroError(f"schema {schema_id!r} ({p}) is nested too deeply to read") from None
    return check_schema(schema, schema_id)
