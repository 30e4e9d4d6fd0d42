"""Scoring on the outside evaluation sets (data/eval/, issue 21): one scorer per family, the rule floors, and
the table `neuro bench runtime --eval outside` / `neuro bench experts --eval outside` report.

    item = load_set("math")[0]
    score_math(item, "The answer is 8.")          # True
    run_and_score_code(item, "print(...)")        # the program run in the sandbox, its stdout compared
    rows = system_rows("routed (classifier)", scored)   # success per family, coverage, selective accuracy

Per answer the scorer returns whether it is right; beside it the bench keeps whether the system marked it ok
(ExpertAnswer.ok for an expert alone; for the engine Result.ok, which is True only for a verified answer).
From those two, selective() (the one implementation, also used on the generators' held-out tasks by
bench/runtime.py): success (right / all), coverage (marked ok / all), selective accuracy (right among marked ok)
and the share of wrong answers marked ok (wrong and marked ok / all wrong; issue 21's goal: <= 5 %), plus the
abstained share when the engine's statuses are given. Checks:
- math: the last number of the answer equals the gold exactly (fractions; thousands commas ignored);
- code: the printed output equals the gold stdout (surrounding whitespace ignored); a program can be run
  through the sandbox (tools/sandbox.py) first;
- retrieval: the answer holds the gold fact (case, spaces and backquotes ignored) and is not a refusal; a
  not-in-corpus item is right only when refused (marked not ok, empty, or saying it does not know);
- json: the document equals the gold (exact), field accuracy (structured/task.py's field_scores) and
  validity against the schema;
- compound: the final output (the last labelled part of a combined answer) equals the gold, as a number
  when the gold is one, else as text.
"""
from __future__ import annotations

import json
import re
from fractions import Fraction

import numpy as np

from neuro_lib.data.eval_sets import EvalItem, parse_number
from neuro_lib.profiles import OutsideEvalSizes
from neuro_lib.rag.metrics import holds_fact
from neuro_lib.runtime.experts.code import run_program
from neuro_lib.runtime.types import ExpertAnswer, Query
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.task import field_scores
from neuro_lib.structured.verify import verify

REFUSAL = re.compile(r"\b(i (?:do not|don't) know|not (?:in|found in|covered by) the (?:corpus|documentation|docs|index)"
                     r"|(?:cannot|can't|could not) (?:find|answer)|no answer|not answerable|unanswerable|i refuse)", re.I)


def numbers_equal(text: str, gold: str) -> bool:
    got = parse_number(text)
    return got is not None and got == Fraction(gold)


def score_math(item: EvalItem, text: str) -> bool:
    return numbers_equal(text, item.gold)


def score_code(item: EvalItem, output: str) -> bool:
    return str(output).strip() == item.gold.strip()


def run_and_score_code(item: EvalItem, program: str, sandbox=None) -> bool:
    """Run `program` in the project's sandbox and compare what it prints with the gold stdout."""
    answer, _ = run_program(program, sandbox)
    return answer.ok and score_code(item, answer.text)


def is_refusal(text: str, ok: bool = True) -> bool:
    return not ok or not str(text).strip() or bool(REFUSAL.search(str(text)))


def score_retrieval(item: EvalItem, text: str, ok: bool = True) -> bool:
    if item.refuse:
        return is_refusal(text, ok)
    return not is_refusal(text, ok) and holds_fact(text, item.gold)


def json_scores(item: EvalItem, doc) -> dict:
    """{"exact", "field_accuracy", "valid"} of a document (a dict, a JSON text, or None)."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = None
    fields = field_scores(doc, item.gold)
    return {"exact": doc == item.gold, "field_accuracy": float(np.mean(list(fields.values()))),
            "valid": isinstance(doc, dict) and not verify(doc, load_schema(item.schema))}


def score_json(item: EvalItem, doc) -> bool:
    return json_scores(item, doc)["exact"]


def final_output(text: str) -> str:
    """The last step's output: the last "[skill] ..." part of a combined answer, else the whole text."""
    parts = [line.split("] ", 1)[1] for line in str(text).splitlines() if line.startswith("[") and "] " in line]
    return parts[-1] if parts else str(text)


def score_compound(item: EvalItem, text: str) -> bool:
    out = final_output(text).strip()
    try:
        Fraction(item.gold)
    except ValueError:
        return out == item.gold or out.splitlines()[-1:] == [item.gold]
    return numbers_equal(out, item.gold)


def score(item: EvalItem, text: str, value=None, ok: bool = True) -> bool:
    """Is this answer right? (text as shown to the user, typed value where there is one, the ok mark)."""
    if item.family == "math":
        return score_math(item, text)
    if item.family == "code":
        return score_code(item, text)
    if item.family == "retrieval":
        return score_retrieval(item, text, ok)
    if item.family == "json":
        return score_json(item, value if value is not None else text)
    return score_compound(item, text)


def query_for(item: EvalItem) -> Query:
    """The query a user would send: JSON items name their schema, as `neuro json --schema` does."""
    if item.family == "json":
        return Query(item.input, wants_json=True, schema_id=item.schema)
    return Query(item.input)


def expert_answer(expert, item: EvalItem) -> ExpertAnswer:
    try:
        return expert.answer(query_for(item))
    except Exception as e:  # noqa: BLE001 - an expert that crashes on an input has failed it, marked not ok
        return ExpertAnswer("", ok=False, error=f"{type(e).__name__}: {e}")


# -- tables -------------------------------------------------------------------------------------------------------
ANSWERED = ("verified", "unverified")  # Result.status of an answer shown to the user (abstained, failed: none)


def selective(right: list[bool], marked_ok: list[bool], statuses: list[str] | None = None) -> dict:
    """Selective accuracy of a list of answers: success (right / all), coverage (marked ok / all), selective
    accuracy (right among marked ok; NaN when none is), wrong_marked_ok (wrong and marked ok / all wrong), and with
    the engine's statuses the abstained share."""
    if len(right) != len(marked_ok) or statuses is not None and len(statuses) != len(right):
        raise ValueError(f"{len(right)} scores, {len(marked_ok)} marks and "
                         f"{len(statuses) if statuses is not None else 'no'} statuses")
    n, covered = len(right), sum(marked_ok)
    wrong = [not x for x in right]
    out = {"n": n, "success": float(np.mean(right)) if n else float("nan"),
           "coverage": covered / n if n else float("nan"),
           "selective_accuracy": sum(a and b for a, b in zip(right, marked_ok)) / covered if covered else float("nan"),
           "wrong_marked_ok": (sum(w and b for w, b in zip(wrong, marked_ok)) / sum(wrong)) if any(wrong) else 0.0}
    if statuses is not None:
        out["abstained"] = statuses.count("abstained") / n if n else float("nan")
    return out


def summarise(items: list[EvalItem], right: list[bool], marked_ok: list[bool], statuses: list[str] | None = None) -> dict:
    """Per family and overall: selective() of the family's answers."""
    def block(idx):
        return selective([right[i] for i in idx], [marked_ok[i] for i in idx],
                         None if statuses is None else [statuses[i] for i in idx])
    fams = sorted({it.family for it in items}, key=[it.family for it in items].index)
    out = {f: block([i for i, it in enumerate(items) if it.family == f]) for f in fams}
    out["all"] = block(list(range(len(items))))
    return out


def system_rows(system: str, table: dict) -> list[dict]:
    rows = []
    for fam, b in table.items():
        rows.append({"name": f"outside {system}: {fam} success", "value": _r(b["success"]), "unit": "ratio", "n": b["n"],
                     "coverage": _r(b["coverage"]), "selective_accuracy": _r(b["selective_accuracy"]),
                     "wrong_marked_ok": _r(b["wrong_marked_ok"]),
                     **({"abstained": _r(b["abstained"])} if "abstained" in b else {})})
    return rows


def _r(x: float) -> float | None:
    return None if x != x else round(float(x), 4)  # NaN (nothing covered) is written as null


def oracle(right_by_system: dict[str, list[bool]]) -> list[bool]:
    """The oracle router: an item is right when any expert alone answered it right."""
    return [any(col) for col in zip(*right_by_system.values())]


FAMILY_SKILL = {"math": "math", "code": "code", "json": "json", "retrieval": "retrieval"}
FAMILY_EXPERT = {"math": "reason-mini", "code": "code-mini", "json": "struct-mini", "retrieval": "retrieval"}


def judge_agreement(items: list[EvalItem], alone: dict, answers: dict, judge) -> dict:
    """The judge (the engine's: rule checks, retrieval's support check) on each family's own expert's answers:
    per family and overall, agreement of its verdict with the gold scorer and the share of wrong answers it
    passes. `answers` holds each expert's ExpertAnswers over `items`, `alone` their gold scores; an answer the
    expert declined (ok False) is left out (nothing to judge); compound has no single expert."""
    rows: dict[str, list[tuple[bool, bool]]] = {}
    for i, it in enumerate(items):
        name = FAMILY_EXPERT.get(it.family)
        if name not in answers:
            continue
        a = answers[name][i]
        if not a.ok:
            continue
        passed = judge(query_for(it), a, FAMILY_SKILL[it.family]).passed
        rows.setdefault(it.family, []).append((passed, alone[name]["right"][i]))
    rows["all"] = [x for fam in list(rows) for x in rows[fam]]
    out = {}
    for fam, xs in rows.items():
        wrong = [p for p, r in xs if not r]
        out[fam] = {"n": len(xs), "agreement": float(np.mean([p == r for p, r in xs])) if xs else float("nan"),
                    "wrong": len(wrong), "wrong_passed": float(np.mean(wrong)) if wrong else float("nan")}
    return out


def floor_answers(items: list[EvalItem], retrieval_floor=None) -> tuple[list[bool], list[bool], list[dict]]:
    """(right, marked ok, json scores) of the rule floors; retrieval_floor is an expert (BM25 + rule reader)."""
    from neuro_lib.bench.floors import json_floor, math_floor

    right, marked, js = [], [], []
    for it in items:
        if it.family in ("math", "compound"):
            text = math_floor(it.input)
            right.append(text is not None and score(it, text))
            marked.append(text is not None)
        elif it.family == "json":
            doc = json_floor(it.input, it.schema)
            s = json_scores(it, doc)
            js.append(s)
            right.append(s["exact"])
            marked.append(s["valid"])
        elif it.family == "retrieval" and retrieval_floor is not None:
            a = expert_answer(retrieval_floor, it)
            right.append(score(it, a.text, a.value, a.ok))
            marked.append(a.ok)
        else:  # no floor for code
            right.append(False)
            marked.append(False)
    return right, marked, js


def retrieval_rows(system: str, items: list[EvalItem], texts: list[str], oks: list[bool]) -> list[dict]:
    """RAG: answer holds the fact (answerable items) and refusal rate (not-in-corpus items, and answerable)."""
    ans = [(it, t, o) for it, t, o in zip(items, texts, oks) if it.family == "retrieval" and not it.refuse]
    absent = [(it, t, o) for it, t, o in zip(items, texts, oks) if it.family == "retrieval" and it.refuse]
    rows = []
    if ans:
        rows.append({"name": f"outside {system}: retrieval answer holds the fact", "unit": "ratio", "n": len(ans),
                     "value": _r(np.mean([score_retrieval(it, t, o) for it, t, o in ans]))})
        rows.append({"name": f"outside {system}: retrieval refusals on answerable", "unit": "ratio", "n": len(ans),
                     "value": _r(np.mean([is_refusal(t, o) for _, t, o in ans]))})
    if absent:
        rows.append({"name": f"outside {system}: retrieval refusal rate (not in corpus)", "unit": "ratio",
                     "n": len(absent), "value": _r(np.mean([is_refusal(t, o) for _, t, o in absent]))})
    return rows


def splitter_rows(items: list[EvalItem], routers: dict) -> list[dict]:
    """The rule splitter (runtime/decompose.py) on the compound items, scored against the gold structure in their
    type ("math_then_code": two steps, math then code): the share cut into the right number of steps, and per
    router the share whose steps also get the right skills (the decompose node's choice: a record step is json,
    else the router's top skill on the step alone)."""
    from neuro_lib.runtime.decompose import split_query, step_skill
    from neuro_lib.structured.schemas import list_schemas

    chains = [it for it in items if it.family == "compound" and "_then_" in it.type]
    if not chains:
        return []
    schemas = list_schemas()
    golds = [it.type.split("_then_") for it in chains]
    steps = [split_query(it.input) for it in chains]
    count = [len(s) == len(g) for s, g in zip(steps, golds)]
    rows = [{"name": "outside splitter (rules): compound right step count", "value": _r(np.mean(count)),
             "unit": "ratio", "n": len(chains)}]
    for name, router in routers.items():
        right = [c and [step_skill(x.text, router, schemas)[0] for x in s] == g for c, s, g in zip(count, steps, golds)]
        rows.append({"name": f"outside splitter (rules) + {name} router: compound right steps and skills",
                     "value": _r(np.mean(right)), "unit": "ratio", "n": len(chains)})
    return rows


def json_rows(system: str, scores: list[dict], schemas: list[str] | None = None) -> list[dict]:
    """Exact, field accuracy and validity of the JSON items; with `schemas` (each score's schema) also per schema."""
    if not scores:
        return []
    rows = [{"name": f"outside {system}: json {k}", "unit": "ratio", "n": len(scores),
             "value": _r(np.mean([s[k] for s in scores]))} for k in ("exact", "field_accuracy", "valid")]
    for schema in sorted(set(schemas or ())):
        sub = [s for s, x in zip(scores, schemas) if x == schema]
        rows += [{"name": f"outside {system}: json {schema} {k}", "unit": "ratio", "n": len(sub),
                  "value": _r(np.mean([s[k] for s in sub]))} for k in ("exact", "field_accuracy", "valid")]
    return rows


# -- flags and sizes ------------------------------------------------------------------------------------------------
def add_eval(p) -> None:
    """`--eval heldout|outside` and `--n-outside` for the suites that score experts."""
    p.add_argument("--eval", choices=("heldout", "outside"), default="heldout",
                   help="heldout: the generators' held-out phrasings (default); outside: the hand-written sets in "
                        "data/eval/ (never trained or tuned on)")
    p.add_argument("--n-outside", type=int, default=-1,
                   help="outside items per family, spread through each set (0 = all; default: the profile's "
                        "outside_eval n_per_family)")


def outside_sizes(sizes: OutsideEvalSizes, n: int = -1, counts: bool = False) -> dict:
    """The outside items per family (the profile's outside_eval section, or `n` when given), or their counts."""
    from neuro_lib.data.eval_sets import load_sets
    from neuro_lib.errors import NeuroError

    if n < -1:
        raise NeuroError(f"--n-outside must be 0 (all) or positive, got {n}")
    n_per = sizes.n_per_family if n == -1 else n
    sets = load_sets(n_per_family=n_per)
    return {f: len(v) for f, v in sets.items()} if counts else sets
