"""Recorded benchmark results (`data/reference/*.json`), read back for notebooks and the report index.

A smoke-profile notebook trains for seconds; the figures worth quoting come from bench-size runs
(`neuro bench SUITE ... --out data/reference/NAME.json`). A notebook loads them here and draws
them beside its own live result, labelled with where they came from, so a report never passes a
recorded figure off as its own.

Each file is a bench report (DESIGN.md: `{"suite", "machine", "git", "date", "config",
"results": [{"name", "value", "unit", ...}]}`). Files transcribed by hand from a dated record
(docs/LOG.md) rather than written by `--out` carry a `provenance` field saying so, with the
command, date and machine of the run they transcribe.

    ref = load_reference("lm_gpt_plays_200s"); value(ref, "gpt val bpb"); label(ref)
    beside(ref, "gpt val bpb")   # {"value", "unit", "label"}: the "reference" of a metrics.json headline row

Tested in tests/test_reference.py (every committed file parses and follows the schema).
"""
from __future__ import annotations

import json
from pathlib import Path

from neuro_lib.envinfo import REPO_ROOT
from neuro_lib.errors import NeuroError

REFERENCE_DIR = REPO_ROOT / "data" / "reference"
REQUIRED = ("suite", "machine", "git", "date", "config", "results")


def reference_names(folder: Path = REFERENCE_DIR) -> list[str]:
    """Names (file stems) of the committed reference results."""
    return sorted(p.stem for p in Path(folder).glob("*.json"))


def check_reference(ref: dict, where: str = "reference") -> dict:
    """Raise NeuroError unless `ref` has the bench report's fields and well-formed result rows."""
    missing = [k for k in REQUIRED if k not in ref]
    if missing:
        raise NeuroError(f"{where} lacks the bench report field(s) {missing}")
    for i, row in enumerate(ref["results"]):
        if not {"name", "value", "unit"} <= set(row):
            raise NeuroError(f"{where} result {i} needs name, value and unit, has {sorted(row)}")
    prov = ref.get("provenance")
    if prov is not None and not {"kind", "date", "command", "machine"} <= set(prov):
        raise NeuroError(f"{where} provenance needs kind, date, command and machine")
    return ref


def load_reference(name: str, folder: Path = REFERENCE_DIR) -> dict:
    """The reference result `name` (a file stem in data/reference/), checked."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise NeuroError(f"no reference result {name!r} in {folder}; have {reference_names(folder)}")
    try:
        ref = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise NeuroError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    return check_reference(ref, str(path))


def row(ref: dict, name: str) -> dict:
    """The result row called `name`."""
    for r in ref["results"]:
        if r["name"] == name:
            return r
    raise NeuroError(f"reference {ref['suite']} ({ref['date']}) has no result {name!r}")


def value(ref: dict, name: str) -> float:
    """The value of the result row called `name`."""
    return row(ref, name)["value"]


def command(ref: dict) -> str:
    """The command that produced the figures (recorded in provenance or in the config by the suite, else the
    suite's name alone)."""
    prov = ref.get("provenance") or {}
    return prov.get("command") or ref["config"].get("command") or f"neuro bench {ref['suite']}"


def label(ref: dict) -> str:
    """One line for a chart legend or a table: recorded, when, where, how."""
    prov = ref.get("provenance") or {}
    how = "transcribed from the record of" if prov.get("kind") == "transcribed" else "written by"
    where = prov.get("machine") or f"{ref['machine'].get('cpu', '?')}, {ref['machine'].get('cores', '?')} cores"
    return f"recorded {ref['date']}, {where}; {how} `{command(ref)}`"


def beside(ref: dict, name: str, missing_ok: bool = False) -> dict | None:
    """The recorded figure `name` as a headline row's "reference" (workbook.headline): value, unit, label.
    With `missing_ok`, None where the record has no such figure."""
    if missing_ok and not any(r["name"] == name for r in ref["results"]):
        return None
    r = row(ref, name)
    return {"value": r["value"], "unit": r["unit"], "label": label(ref)}
