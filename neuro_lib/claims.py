"""The claims ledger: every claim of the five seeds, our verdict, and the evidence behind it.

`data/claims.yaml` holds one entry per claim (the seed file, the section, the seed's own words, a
verdict on a fixed scale, the tests and recorded figures that back it, the anchor it was compared
with, a one-line reason). This module loads and checks it, resolves its evidence keys, and renders
it: the README's "Seed coverage" block (generated, never edited by hand) and a DataFrame for
notebook 13.

Evidence keys
- a test id `tests/test_x.py::test_name` (or `::TestClass::test_name`): resolved by parsing the test
  file with `ast`, not by running pytest;
- a figure key `data/reference/FILE.json#NAME`: the result row whose `name` is NAME, its `value`.
  `#NAME|FIELD` reads another field of that row (`spread`, `per_seed.0`; `\|` inside a markdown table); `#NAME[KEY=VALUE]`
  picks among rows sharing a name (tools_bench has one row per isolation level: `[isolation=namespace]`);
  `#/a/b/0` (a fragment starting with `/`) is a JSON pointer (RFC 6901) into the whole record.

Quoted figures
In the README and notebook markdown a figure taken from a recorded file carries its key in a comment
right after it: `0.81<!-- ref: data/reference/runtime_bench.json#router classifier exact skill set -->`.
`quoted_figures(text)` finds them; `check_quote` says whether the shown number equals the recorded
value rounded as shown (a trailing `%` multiplies a fraction by 100, `k` divides by 1,000, `M` by a
million). A figure computed from recorded ones says so instead: `0.57<!-- derived: mean of seeds 0-2 -->`.
"""
from __future__ import annotations

import ast
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jsonschema

from neuro_lib.errors import NeuroError
from neuro_lib.paths import REPO_ROOT
from neuro_lib.yamlfile import load_yaml

CLAIMS_FILE = REPO_ROOT / "data" / "claims.yaml"
# the seeds live beside the repository (DESIGN.md: ../shared/seeds/); NEURO_SEEDS_DIR overrides
SEED_DIR = Path(os.environ.get("NEURO_SEEDS_DIR") or REPO_ROOT.parent / "shared" / "seeds")
README = REPO_ROOT / "README.md"

VERDICTS = ("VERIFIED", "IMPLEMENTED", "PARTIAL", "NOT IMPLEMENTED", "REFUTED AT THIS SCALE",
            "NOT REPRODUCIBLE HERE", "UNFALSIFIABLE AS WORDED")
SEEDS = {"nanorag.md": "NanoRAG", "neurotiny.md": "NeuroTiny", "tinyllm.md": "TinyLLM",
         "aeron.md": "Aeron", "rnk.md": "RNK"}
BEGIN = "<!-- claims:begin (generated from data/claims.yaml by `neuro claims table --write-readme`; do not edit) -->"
END = "<!-- claims:end -->"

_TEST_ID = r"^tests/test_[A-Za-z0-9_]+\.py::[A-Za-z0-9_]+(::[A-Za-z0-9_]+)?$"
_FIGURE = r"^data/reference/[A-Za-z0-9_.-]+\.json#.+$"

SCHEMA = {
    "type": "object",
    "required": ["claims"],
    "additionalProperties": False,
    "properties": {
        "claims": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "seed", "section", "feature", "quote", "verdict", "reason"],
                "properties": {
                    "id": {"type": "string", "pattern": r"^[a-z0-9]+(\.[a-z0-9_-]+)+$"},
                    "seed": {"enum": list(SEEDS)},
                    "section": {"type": "string", "minLength": 1},
                    "feature": {"type": "string", "minLength": 1},
                    "quote": {"type": "string", "minLength": 3, "maxLength": 240},
                    "verdict": {"enum": list(VERDICTS)},
                    "reason": {"type": "string", "minLength": 10},
                    "modules": {"type": "array", "items": {"type": "string"}},
                    "notebook": {"type": "string", "pattern": r"^[0-9]{2}$"},
                    "section_link": {"type": "string", "pattern": r"^notebooks/[0-9]{2}_[a-z0-9_]+\.ipynb(#.+)?$"},
                    "tests": {"type": "array", "items": {"type": "string", "pattern": _TEST_ID}},
                    "figures": {"type": "array", "items": {"type": "string", "pattern": _FIGURE}},
                    "anchor": {
                        "type": "object", "additionalProperties": False, "required": ["what", "source"],
                        "properties": {"what": {"type": "string"}, "source": {"type": "string"}},
                    },
                    "pending": {"type": "string", "pattern": r"^issue [0-9]+$"},
                },
                "allOf": [
                    # VERIFIED: parity with an anchor and a measured result
                    {"if": {"properties": {"verdict": {"const": "VERIFIED"}}},
                     "then": {"required": ["anchor", "tests"]}},
                    # IMPLEMENTED: works (a test) and measured (a test or a figure)
                    {"if": {"properties": {"verdict": {"const": "IMPLEMENTED"}}},
                     "then": {"required": ["tests"]}},
                    # REFUTED AT THIS SCALE: measured, and it does not hold
                    {"if": {"properties": {"verdict": {"const": "REFUTED AT THIS SCALE"}}},
                     "then": {"anyOf": [{"required": ["figures"]}, {"required": ["tests"]}]}},
                    # pending work belongs to NOT IMPLEMENTED rows only
                    {"if": {"required": ["pending"]},
                     "then": {"properties": {"verdict": {"const": "NOT IMPLEMENTED"}}}},
                ],
            },
        },
    },
}


@dataclass
class Claim:
    id: str
    seed: str
    section: str
    feature: str
    quote: str
    verdict: str
    reason: str
    modules: list
    notebook: str
    section_link: str
    tests: list
    figures: list
    anchor: dict | None
    pending: str


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    """The ledger, checked against SCHEMA and for unique ids; NeuroError in one sentence otherwise."""
    path = Path(path)
    if not path.is_file():
        raise NeuroError(f"no claims ledger at {path}")
    doc = load_yaml(path, f"claims ledger {path}")
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise NeuroError(f"{path}: {where}: {e.message}") from None
    claims = [Claim(modules=c.get("modules", []), notebook=c.get("notebook", ""),
                    section_link=c.get("section_link", ""), tests=c.get("tests", []),
                    figures=c.get("figures", []), anchor=c.get("anchor"), pending=c.get("pending", ""),
                    **{k: c[k] for k in ("id", "seed", "section", "feature", "quote", "verdict", "reason")})
              for c in doc["claims"]]
    seen = set()
    for c in claims:
        if c.id in seen:
            raise NeuroError(f"{path}: claim id {c.id!r} appears twice")
        seen.add(c.id)
    return claims


# ---------------------------------------------------------------- evidence keys

@lru_cache(maxsize=None)
def test_ids(tests_dir: Path = REPO_ROOT / "tests") -> frozenset:
    """Every test id in tests/test_*.py, found by parsing (module-level `test_*` functions and
    `test_*` methods of `Test*` classes)."""
    ids = set()
    for f in sorted(Path(tests_dir).glob("test_*.py")):
        rel = f"tests/{f.name}"
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                ids.add(f"{rel}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for m in node.body:
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith("test"):
                        ids.add(f"{rel}::{node.name}::{m.name}")
    return frozenset(ids)


@lru_cache(maxsize=None)
def _record(path: str) -> dict:
    p = REPO_ROOT / path
    if not p.is_file():
        raise NeuroError(f"no recorded file {path}")
    return json.loads(p.read_text(encoding="utf-8"))


_SELECT = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def resolve_figure(key: str):
    """The value a figure key names (see the module docstring); NeuroError if it names nothing."""
    if "#" not in key:
        raise NeuroError(f"figure key {key!r} has no '#': write FILE.json#NAME")
    path, frag = key.split("#", 1)
    frag = frag.replace("\\|", "|")  # inside a markdown table the field bar is written `\|`
    rec = _record(path)
    if frag.startswith("/"):
        node = rec
        for part in frag[1:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise NeuroError(f"{key}: the record has nothing at {frag}") from None
        return node
    field = "value"
    if "|" in frag:
        frag, field = frag.split("|", 1)
    selectors = _SELECT.findall(frag)
    name = _SELECT.sub("", frag).strip()
    rows = [r for r in rec.get("results", []) if r.get("name") == name
            and all(str(r.get(k)) == v for k, v in selectors)]
    if not rows:
        raise NeuroError(f"{key}: {path} has no result named {name!r}"
                         + (f" with {selectors}" if selectors else ""))
    if len(rows) > 1:
        raise NeuroError(f"{key}: {len(rows)} results in {path} are named {name!r}; pick one with [KEY=VALUE]")
    node = rows[0]
    for part in field.split("."):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise NeuroError(f"{key}: the result {name!r} has no field {field!r}") from None
    return node


def evidence_problems(claims: list[Claim]) -> list[str]:
    """One sentence per evidence key that does not resolve (empty: all resolve)."""
    problems, known = [], test_ids()
    for c in claims:
        for t in c.tests:
            if t not in known:
                problems.append(f"{c.id}: no test {t}")
        for f in c.figures:
            try:
                resolve_figure(f)
            except NeuroError as e:
                problems.append(f"{c.id}: {e}")
        if c.section_link:
            nb, _, anchor = c.section_link.partition("#")
            if not (REPO_ROOT / nb).is_file():
                problems.append(f"{c.id}: no notebook {nb}")
            elif anchor and anchor not in notebook_anchors(REPO_ROOT / nb):
                problems.append(f"{c.id}: {nb} has no heading #{anchor}")
    return problems


def notebook_anchors(path: Path) -> set:
    """The anchors Jupyter gives a notebook's markdown headings (the text, spaces as '-')."""
    heads = re.findall(r"^#+\s+(.+?)\s*$", notebook_markdown(path), flags=re.M)
    return {h.replace(" ", "-") for h in heads}


def _headings(text: str) -> set:
    return {_squash(h.strip("# ")) for h in re.findall(r"^#+\s+(.+?)\s*$", text, flags=re.M)}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip().lower()


def quote_problems(claims: list[Claim], seed_dir: Path = SEED_DIR) -> list[str]:
    """Claims whose quote is not the seed's words (compared with whitespace, `**` and backticks
    squashed, case-insensitive) or whose section is not one of its headings. Empty when the seeds
    are not beside the repository."""
    if not Path(seed_dir).is_dir():
        return []
    raw = {s: (Path(seed_dir) / s).read_text(encoding="utf-8", errors="replace") for s in SEEDS}
    texts = {s: _squash(t) for s, t in raw.items()}
    heads = {s: _headings(t) for s, t in raw.items()}
    return ([f"{c.id}: {c.seed} does not say {c.quote!r}" for c in claims if _squash(c.quote) not in texts[c.seed]]
            + [f"{c.id}: {c.seed} has no section {c.section!r}" for c in claims
               if _squash(c.section) not in heads[c.seed]])


# ---------------------------------------------------------------- quoted figures

_QUOTE = re.compile(r"(?P<num>\d[\d,]*(?:\.\d+)?)(?P<tail>[^\d<]{0,24}?)\s*<!--\s*ref:\s*(?P<key>.+?)\s*-->")


@dataclass
class Quote:
    shown: str
    tail: str
    key: str


def quoted_figures(text: str) -> list[Quote]:
    """Every figure in `text` followed by a `<!-- ref: KEY -->` comment."""
    return [Quote(m["num"], m["tail"], m["key"]) for m in _QUOTE.finditer(text)]


def check_quote(q: Quote) -> str | None:
    """None when the shown figure equals the recorded value rounded as shown; else one sentence."""
    try:
        recorded = resolve_figure(q.key)
    except NeuroError as e:
        return str(e)
    if not isinstance(recorded, (int, float)) or isinstance(recorded, bool):
        return f"{q.key} is {recorded!r}, not a number"
    shown = float(q.shown.replace(",", ""))
    tail = q.tail.strip()
    unit = re.match(r"%|[kM](?![A-Za-z])", tail)  # 3 MiB is 3, not 3 millionths
    scale = {"%": 100.0, "k": 1e-3, "M": 1e-6}[unit[0]] if unit else 1.0
    decimals = len(q.shown.split(".")[1]) if "." in q.shown else 0
    if abs(recorded * scale - shown) <= 0.5 * 10 ** -decimals + 1e-9:
        return None
    return f"{q.shown}{tail[:1]} quoted, but {q.key} records {recorded!r}"


def document_quote_problems(text: str, where: str) -> list[str]:
    return [f"{where}: {p}" for q in quoted_figures(text) if (p := check_quote(q))]


def notebook_markdown(path: Path) -> str:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


# ---------------------------------------------------------------- rendering

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_coverage(claims: list[Claim]) -> str:
    """The README's Seed coverage block: a count line, then one table per seed."""
    out = [BEGIN, "",
           "Every system and feature the five seeds name, one row per claim, generated from `data/claims.yaml` "
           "(`neuro claims table --write-readme`; `tests/test_claims.py` checks every evidence key resolves and this "
           "block equals the ledger). Verdicts: **VERIFIED** parity with an anchor and a measured result; "
           "**IMPLEMENTED** works and measured, no anchor (for a structural claim, a test that asserts it); **PARTIAL**; **NOT IMPLEMENTED**; **REFUTED AT THIS "
           "SCALE** measured and it does not hold; **NOT REPRODUCIBLE HERE**; **UNFALSIFIABLE AS WORDED**. "
           "Notebook 13 shows the ledger as a filterable table. Module paths are under `neuro_lib/`.", ""]
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    out.append("Totals: " + ", ".join(f"{v} {n}" for v, n in counts.items() if n) + f" ({len(claims)} claims).")
    for seed, title in SEEDS.items():
        rows = [c for c in claims if c.seed == seed]
        if not rows:
            continue
        out += ["", f"### {title} (`seeds/{seed}`)", "",
                "| claim | the seed says | verdict | module | notebook | evidence | reason |",
                "|---|---|---|---|---|---|---|"]
        for c in rows:
            ev = [t.split("::", 1)[0].removeprefix("tests/") + "::" + t.split("::", 1)[1] for t in c.tests]
            ev += [f.removeprefix("data/reference/") for f in c.figures]
            reason = c.reason + (f" (pending: {c.pending})" if c.pending else "")
            out.append("| " + " | ".join([
                _cell(c.feature), _cell(f"\"{c.quote}\" ({c.section})"), f"**{c.verdict}**",
                _cell(", ".join(f"`{m}`" for m in c.modules)), c.notebook,
                _cell("; ".join(f"`{e}`" for e in ev)), _cell(reason)]) + " |")
    out += ["", END]
    return "\n".join(out)


def readme_block(text: str) -> str:
    """The generated block currently in the README text."""
    if BEGIN not in text or END not in text:
        raise NeuroError("README.md has no generated claims block (the claims:begin / claims:end comments)")
    start = text.index(BEGIN)
    return text[start:text.index(END, start) + len(END)]


def write_readme(claims: list[Claim], path: Path = README) -> bool:
    """Replace the README's generated block with the rendering; True when it changed."""
    from neuro_lib.atomic import write_atomic

    text = Path(path).read_text(encoding="utf-8")
    new = text.replace(readme_block(text), render_coverage(claims))
    if new == text:
        return False
    write_atomic(Path(path), new)
    return True


def claims_frame(claims: list[Claim]):
    """The ledger as a pandas DataFrame (one row a claim), for notebook 13."""
    import pandas as pd

    return pd.DataFrame([{
        "id": c.id, "seed": SEEDS[c.seed], "section": c.section, "feature": c.feature, "quote": c.quote,
        "verdict": c.verdict, "reason": re.sub(r"<!--.*?-->", "", c.reason), "modules": ", ".join(c.modules), "notebook": c.notebook,
        "section_link": c.section_link, "tests": len(c.tests), "figures": len(c.figures),
        "anchor": (c.anchor or {}).get("what", ""), "anchor_source": (c.anchor or {}).get("source", ""),
        "pending": c.pending} for c in claims])


def counts_by_seed(claims: list[Claim]) -> dict:
    """{seed title: {verdict: count}} in the fixed orders."""
    return {t: {v: sum(c.seed == s and c.verdict == v for c in claims) for v in VERDICTS}
            for s, t in SEEDS.items()}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------- the README's Results table

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOT_RECORDED = ("not recorded", "exact", "tests")  # record cells that name no file, and why


def _leaves(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    elif is_number(node):
        yield float(node)


def results_rows(text: str) -> list[dict]:
    """The README's Results table as dicts (column name -> cell), from its header row on."""
    sec = text.split("\n## Results", 1)
    if len(sec) < 2:
        raise NeuroError("README.md has no '## Results' section")
    body = sec[1].split("\n## ", 1)[0]
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        raise NeuroError("README.md's Results section has no table")
    split = lambda ln: [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]]
    head = split(lines[0])
    return [dict(zip(head, split(ln))) for ln in lines[2:]]


_NUMBER = re.compile(r"(?<![\w.])(-?\d[\d,]*\.\d+)(\s*%|k\b|M\b)?")  # a minus after a word or digit is a range dash
# a figure that is not read from a record says where it is from instead: computed from recorded ones
# (`0.57<!-- derived: mean of seeds 0-2 -->`), the seed's own number (`<!-- seed -->`), or an exact count a
# test asserts or a live run computes (`<!-- exact: tests/test_aeron.py -->`), or a goal (`<!-- target -->`)
_DERIVED = re.compile(r"\d[\d,]*(?:\.\d+)?[^\d<]{0,8}<!--\s*(?:derived|seed|exact|target)\b.*?-->")


def results_table_problems(text: str) -> list[str]:
    """Rows of the Results table whose `record` cell is missing or names a file that does not exist,
    and decimals in a `value` cell that no number of the cited records rounds to (a figure with no
    file behind it). Figures with a `<!-- ref: -->` comment are checked exactly by `check_quote`."""
    problems = []
    for i, row in enumerate(results_rows(text), 1):
        where = f"README Results row {i} ({row.get('figure', '')[:50]!r})"
        record = row.get("record", "")
        files = re.findall(r"[A-Za-z0-9_.-]+\.json", record)
        if not files and not any(w in record for w in NOT_RECORDED):
            problems.append(f"{where}: the record cell names no data/reference file and does not say 'not recorded'")
            continue
        if files:
            problems += unrecorded_figures(row.get("value", ""), files, where)
    return problems


def unrecorded_figures(text: str, files: list[str], where: str) -> list[str]:
    """Decimals in `text` that no number of the cited records (`data/reference/` file names) rounds to,
    as shown; figures marked `<!-- derived -->` are skipped, `<!-- ref: -->` ones are checked exactly
    elsewhere."""
    problems, leaves = [], []
    for f in files:
        try:
            leaves += list(_leaves(_record(f"data/reference/{f}")))
        except NeuroError as e:
            problems.append(f"{where}: {e}")
    text = re.sub(r"<!--.*?-->", "", _DERIVED.sub("", text), flags=re.S)
    for m in _NUMBER.finditer(text):
        shown, tail = float(m[1].replace(",", "")), (m[2] or "").strip()
        d = len(m[1].split(".")[1])
        scale = {"%": 100.0, "k": 1e-3, "M": 1e-6}.get(tail, 1.0)
        if not any(abs(x * s - shown) <= 0.5 * 10 ** -d + 1e-9 for x in leaves for s in {scale, 1.0}):
            problems.append(f"{where}: {m[0].strip()} is in no cited record ({', '.join(files)})")
    return problems


def reason_problems(claims: list[Claim]) -> list[str]:
    """Decimals in a claim's reason (the README's coverage table shows it) that none of the claim's own
    recorded files holds; a claim that cites no file may quote only marked figures."""
    problems = []
    for c in claims:
        files = sorted({f.split("#", 1)[0].removeprefix("data/reference/") for f in c.figures})
        if files:
            problems += unrecorded_figures(c.reason, files, f"claim {c.id}")
        else:
            text = re.sub(r"<!--.*?-->", "", _DERIVED.sub("", c.reason))
            problems += [f"claim {c.id}: {m[0].strip()} cites no recorded file" for m in _NUMBER.finditer(text)]
    return problems


def figure_problems(readme: Path = README, notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Every quoted figure that differs from its record: README (comments and the Results table) and
    the notebooks' markdown."""
    text = Path(readme).read_text(encoding="utf-8")
    problems = document_quote_problems(text, "README.md") + results_table_problems(text)
    for nb in sorted(Path(notebook_dir).glob("*.ipynb")):
        problems += document_quote_problems(notebook_markdown(nb), nb.name)
        # a markdown cell that names a recorded file quotes figures from it
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for i, c in enumerate(cells):
            text = "".join(c["source"])
            files = sorted(set(re.findall(r"data/reference/([A-Za-z0-9_.-]+\.json)", text)))
            if c["cell_type"] == "markdown" and files:
                problems += unrecorded_figures(text, files, f"{nb.name} cell {i}")
    return problems


def section_hrefs(claim: Claim) -> tuple[str, str]:
    """Links to the notebook section that shows a claim: beside the notebooks (`05_x.ipynb#anchor`) and
    inside a report folder (`../05_x/05_x.html#anchor`, where `neuro report` puts each notebook's HTML)."""
    if not claim.section_link:
        return "", ""
    path, _, anchor = claim.section_link.partition("#")
    stem = Path(path).stem
    frag = f"#{anchor}" if anchor else ""
    return f"{stem}.ipynb{frag}", f"../{stem}/{stem}.html{frag}"


def record_provenance(claims: list[Claim]) -> list[dict]:
    """Each recorded file the ledger cites: its date, the commit it ran at, whether that tree was dirty
    (and which files), whether it was transcribed by hand, and how many claims cite it."""
    cited: dict[str, int] = {}
    for c in claims:
        for f in {k.split("#", 1)[0] for k in c.figures}:
            cited[f] = cited.get(f, 0) + 1
    rows = []
    for f in sorted(cited):
        rec = _record(f)
        git = rec.get("git") or {}
        rows.append({"file": f.removeprefix("data/reference/"), "date": rec.get("date", ""),
                     "commit": git.get("sha", "unknown"), "dirty": git.get("dirty"),
                     "dirty_files": ", ".join(git.get("dirty_files", [])),
                     "transcribed": (rec.get("provenance") or {}).get("kind") == "transcribed",
                     "claims citing it": cited[f]})
    return rows
