"""The outside evaluation sets (issue 21): questions written by hand, outside the task generators, in
data/eval/*.jsonl; never used to train or to tune (data/eval/README.md says how they were written).

    items = load_set("math")                    # [EvalItem(id, family, type, input, gold, ...)]
    sets = load_sets(n_per_family=30)           # {family: items}, a spread of each set's types
    parse_number("$1,234.50")                   # Fraction(2469, 2)

Families and golds:
- math: an exact decimal string (compare with `parse_number`);
- code: the exact stdout the requested program prints;
- retrieval: a short fact the answer must contain, or None with `refuse` True (the corpus lacks it);
- json: the exact document, `schema` naming one of data/schemas/;
- compound: the final output of a two-step chain (a number or a string).

Loading only: the scoring (sandbox, schemas, refusals) is bench/outside.py. Tests: tests/test_eval_sets.py.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from neuro_lib.errors import NeuroError

EVAL_DIR = Path(__file__).resolve().parents[2] / "data" / "eval"
FAMILIES = ("math", "code", "retrieval", "json", "compound")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


@dataclass(frozen=True)
class EvalItem:
    id: str
    family: str
    type: str
    input: str
    gold: Any
    schema: str | None = None       # json: the schema id the document follows
    refuse: bool = False            # retrieval: the corpus does not hold the answer
    extra: dict = field(default_factory=dict)


def load_set(family: str, directory: Path | None = None) -> list[EvalItem]:
    """Every item of one family's file, in file order."""
    if family not in FAMILIES:
        raise NeuroError(f"unknown evaluation family {family!r}; choose from {', '.join(FAMILIES)}")
    path = Path(directory or EVAL_DIR) / f"{family}.jsonl"
    if not path.is_file():
        raise NeuroError(f"the outside evaluation set {path} is missing")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise NeuroError(f"{path.name} line {n} is not JSON ({e.msg})") from None
        missing = {"id", "type", "input", "gold"} - set(row)
        if missing:
            raise NeuroError(f"{path.name} line {n} lacks {', '.join(sorted(missing))}")
        known = {"id", "type", "input", "gold", "schema", "refuse"}
        items.append(EvalItem(row["id"], family, row["type"], row["input"], row["gold"], row.get("schema"),
                              bool(row.get("refuse", False)), {k: v for k, v in row.items() if k not in known}))
    if len({i.id for i in items}) != len(items):
        raise NeuroError(f"{path.name} repeats an id")
    return items


def spread(items: list[EvalItem], n: int) -> list[EvalItem]:
    """`n` items taken evenly through the file (the files are grouped by type, so every type is kept); 0 = all."""
    if not n or n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def load_sets(families=FAMILIES, n_per_family: int = 0, directory: Path | None = None) -> dict[str, list[EvalItem]]:
    return {f: spread(load_set(f, directory), n_per_family) for f in families}


def parse_number(text: str) -> Fraction | None:
    """The last number written in `text` (thousands commas and currency signs ignored), exactly; None if none."""
    found = _NUMBER.findall(str(text))
    if not found:
        return None
    return Fraction(found[-1].replace(",", ""))
