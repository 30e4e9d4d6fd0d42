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

from neuro_lib.errors import NeuroError
from neuro_lib.structured.verify import check_patterns

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "data" / "schemas"


def list_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Ids of the registered schemas (file names without `.json`), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.json"))


def check_schema(schema, name: str) -> dict:
    """Raise NeuroError unless `schema` is a JSON object that its meta-schema accepts."""
    if not isinstance(schema, dict):
        raise NeuroError(f"schema {name!r} is not a JSON object")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise NeuroError(f"schema {name!r} fails the JSON Schema meta-schema at {where}: {e.message}") from None
    check_patterns(schema, name)  # patterns run on RE2 (linear time); one it cannot run is refused here
    return schema


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
        schema = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise NeuroError(f"schema {schema_id!r} ({p}) is not valid JSON: {e}") from None
    return check_schema(schema, schema_id)
