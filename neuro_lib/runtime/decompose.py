"""Compound queries as ordered sub-tasks (issue 21 item 6): a rule splitter, the hand-off of one step's result
into the next step's text, and the composition of the steps' answers into one.

    steps = split_query("compute 17 * 23 + 4, then write a python function that prints it")
    # [Step("compute 17 * 23 + 4", refers=False), Step("write a python function that prints it", refers=True)]
    hand_off(steps[1].text, "395")     # "write a python function that prints 395"
    compose([(skill, answer), ...])    # one ExpertAnswer: each step labelled "[skill] ...", a program shown with it

The splitter is rules, not a model: a query is cut at sequence connectives ("then", "and then", "after that",
"and use it to", a new sentence that starts with "Then" / "Next" / "Finally" / "Also", and " and " before an
imperative verb such as "write" or "compute"), never inside quotes or brackets. A later step refers to the one
before it when it holds an anaphor ("it", "them", "the result", "that number", "the reversed word"); the
engine (engine.py's decompose node) then writes the earlier step's result in its place (a number as written, a
string in quotes, a record's scalar fields beside the words that name them), so the expert of the later step
sees a self-contained task ("write a python function that prints 395"). A step that asks for a record of a known
schema ("build the product record") is a JSON step under that schema, reading its quoted description. A step
that names no earlier result (the generators' "... Also, ..." pairs) runs on its own text.

Composition: the answers joined in order as "[skill] text" lines; a code step shows its program (indented) on
a "[code] program:" line before its output, so a compound "compute X, then write code that prints it" answers
with the program and what it printed, and the last labelled line is the final output (what bench/outside.py's
final_output and tasks.answer_succeeds read).

Tests: tests/test_runtime_compound.py.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from neuro_lib.runtime.types import ExpertAnswer, Query

MAX_STEPS = 4  # a query cut into more pieces keeps the rest in its last step

# where one step ends and the next begins; each alternative consumes the connective itself
_IMPERATIVE = (r"(?:write|compute|calculate|work out|find|add|subtract|multiply|divide|square|double|halve|"
               r"build|extract|convert|round|use|look up|give me|produce|create|make)")
CUT = re.compile(
    r"(?:[.?!;]\s+|,\s*|\s+)(?:and\s+)?then\b,?\s*"                          # ", then", "and then", ". Then"
    r"|(?:[.?!;]\s+|,\s*(?:and\s+)?)(?:after that|afterwards|next|finally|also)\b,?\s*"  # ". After that,"
    r"|,?\s+and\s+(?=" + _IMPERATIVE + r"\b)",                                  # "... and write ..."
    re.I)
# a "then" that closes an "if" in its own clause is a condition, not a sequence (the clause: after the last , . ;)
_IF = re.compile(r"\bif\b", re.I)
# a bracket's body stops at the next opening bracket too, so a text of many unclosed "[" is scanned once (linear)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\[[^\[\]]*\]|\([^()]*\)|\{[^{}]*\}")

_NOUNS = (r"(?:result|answer|value|number|output|total|sum|product|quotient|difference|remainder|count|average|"
          r"figure|amount|word|string|text|list|item|element|record|document)")
ANAPHOR = re.compile(r"\b(?:(?:that|this|the|its|those|these)\s+(?:\w+\s+)?" + _NOUNS + r"(?!\s+of\b)"
                     r"|it|them)\b", re.I)


@dataclass(frozen=True)
class Step:
    text: str            # the sub-task as the user wrote it
    refers: bool         # it names an earlier step's result (an anaphor), to be handed off


def _masked(text: str) -> str:
    """`text` with quoted and bracketed spans blanked (same length), so no cut falls inside them."""
    return _QUOTED.sub(lambda m: " " * len(m.group()), text)


def split_query(text: str, max_steps: int = MAX_STEPS) -> list[Step]:
    """The ordered sub-tasks of `text` (one Step when nothing joins two tasks)."""
    masked, pieces, start = _masked(text), [], 0
    for m in CUT.finditer(masked):
        head = text[start:m.start()]
        clause = head[max(head.rfind(c) for c in ",.;") + 1:]
        if not head.strip() or "then" in m.group().lower() and _IF.search(clause):
            continue
        pieces.append(head)
        start = m.end()
    pieces.append(text[start:])
    pieces = [p.strip(" \t\n,;:") for p in pieces]
    pieces = [p for p in pieces if p.strip(" .?!")]
    if len(pieces) > max_steps:  # the rest stays one step: better a long last step than a dropped task
        pieces = pieces[:max_steps - 1] + [" then ".join(pieces[max_steps - 1:])]
    return [Step(p, i > 0 and bool(ANAPHOR.search(_masked(p)))) for i, p in enumerate(pieces)] or [Step(text, False)]


def render(value: Any, text: str = "") -> str:
    """An earlier step's result as it is written into the next step: a number bare, other text quoted."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    s = str(value if value not in ("", None) else text).strip()
    try:  # a printed number, list or dict is written as the literal it is
        if isinstance(ast.literal_eval(s), (int, float, list, tuple, dict)):
            return s
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    return repr(s)


def hand_off(text: str, value: Any, answer_text: str = "") -> str:
    """`text` with its first anaphor replaced by the earlier result. A record (a JSON document) is handed off
    field by field instead: each scalar field whose name the text mentions gets its value beside the name
    ("the price" -> "the price (24)"); a text without an anaphor or a named field is returned unchanged."""
    if isinstance(value, dict):
        out = text
        for key, v in value.items():
            if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                words = key.replace("_", " ")
                out = re.sub(rf"\b({re.escape(words)})\b(?!\s*\()", rf"\1 ({render(v)})", out, count=1, flags=re.I)
        return out
    m = ANAPHOR.search(_masked(text))
    if m is None:
        return text
    said = m.group()
    if said.lower().startswith("its "):  # "its first element" -> "the first element of [1, 3, 4]"
        return f"{text[:m.start()]}the {said[4:]} of {render(value, answer_text)}{text[m.end():]}"
    return text[:m.start()] + render(value, answer_text) + text[m.end():]


def source_text(text: str) -> str:
    """The description a JSON step reads: its longest quoted span of three words or more, else the whole step."""
    quoted = [q[1:-1] for q in re.findall(r"'[^']*'|\"[^\"]*\"", text) if len(q[1:-1].split()) >= 3]
    return max(quoted, key=len) if quoted else text


def schema_for(text: str, schemas, default: str | None = None) -> str | None:
    """The schema a JSON step asks for: the first schema id whose stem ("product" of product_v1) the step names."""
    for sid in schemas:
        stem = sid.split("_v")[0]
        if re.search(rf"\b{re.escape(stem)}s?\b", text, re.I):
            return sid
    return default


def record_schema(text: str, schemas) -> str | None:
    """A step that asks for a record, document or JSON of a known schema ("build the product record") -> that
    schema id; None otherwise (the router decides such a step's skill)."""
    if not re.search(r"\b(record|document|json|entry)\b", text, re.I):
        return None
    return schema_for(text, schemas)


def step_skill(text: str, router, schemas, default_schema: str | None = None, context=()) -> tuple[str, str | None]:
    """A sub-task's skill and, for a JSON step, its schema: a step asking for a record of a known schema is JSON
    under that schema; any other goes by the router's top skill on the sub-task alone (a JSON step then takes the
    schema it names, else `default_schema`)."""
    record = record_schema(text, schemas)
    skill = "json" if record else router.route(Query(text, context=list(context))).skills[0]
    if skill != "json":
        return skill, None
    return skill, record or schema_for(text, schemas, default_schema)


def step_lines(skill: str, answer: ExpertAnswer) -> list[str]:
    """One step's part of the composed answer: a code step's program (indented), then its output."""
    lines = []
    program = answer.meta.get("program")
    if skill == "code" and program:
        lines.append(f"[{skill}] program:")
        lines += ["    " + line for line in str(program).rstrip().splitlines()]
    text = answer.text if answer.ok else f"(failed: {answer.error or 'no answer'})"
    lines.append(f"[{skill}] {text}")
    return lines


def compose(parts: list[tuple[str, ExpertAnswer]], planned: int | None = None) -> ExpertAnswer:
    """The steps' answers as one: labelled lines in order, values by skill (a later step of the same skill
    replaces an earlier one's), costs summed; ok only when every planned step ran and answered."""
    planned = len(parts) if planned is None else planned
    errors = [f"step {i} ({s}): {a.error or 'no answer'}" for i, (s, a) in enumerate(parts, 1) if not a.ok]
    if len(parts) < planned and not errors:
        errors.append(f"{planned - len(parts)} of {planned} steps did not run")
    return ExpertAnswer(text="\n".join(line for s, a in parts for line in step_lines(s, a)), ok=not errors,
                        value={s: a.value for s, a in parts}, tool_calls=[c for _, a in parts for c in a.tool_calls],
                        citations=[c for _, a in parts for c in a.citations],
                        model_calls=sum(a.model_calls for _, a in parts), tokens=sum(a.tokens for _, a in parts),
                        error="; ".join(errors) or None,
                        meta={"decomposed": [s for s, _ in parts], "final": parts[-1][1].value if parts else None})
