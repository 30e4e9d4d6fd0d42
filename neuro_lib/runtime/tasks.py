"""The runtime's evaluation tasks: queries from every expert's own generator, with gold answers and a
check, per family (math, code, json, retrieval, and compound math + code), and the same texts as
labelled router examples.

    tasks = family_tasks(10, seed=0, split="heldout", index=experts["retrieval"].index)
    t = tasks[0]; t.family, t.query, t.skills, t.gold
    succeeded(t, engine.run(t.query))          # the result's answer checked against the gold answer
    router_examples(500, seed=0, split="train")  # LabelledQuery rows (data/queries.py) for the router

Families and their checks (the experts' own evaluations use the same ones):
- math: Reason-mini's word problems (data/word_problems.py); the answer text equals the formatted value;
- code: Code-mini's tasks; the program's printed output equals the reference output;
- json: Struct-mini's descriptions (structured/task.py), asked with wants_json and the schema id; the
  document equals the gold document;
- retrieval: questions generated from the documentation's passages (rag/questions.py, the index's
  test sections); the answer holds the gold span (rag/metrics.py holds_fact, the outside sets' check: the
  retrieval expert answers with a sentence, issue 21);
- compound: a word problem and a programming task in one query ("... Also, ..."); it succeeds only when
  both answers are right, which needs both experts (the slow path's `skills: all` and combine).
Chat has no gold answer, so it has no family here.

Router examples reuse these generators' texts (train phrasings for training, held-out phrasings for
testing) beside data/queries.py's own templates, so the router is trained on how the experts are
actually asked. Retrieval phrasings follow rag/questions.py's templates filled with module names.

Tests: tests/test_bench_runtime.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from neuro_lib.data.queries import MODULES, LabelledQuery
from neuro_lib.data.word_problems import make_code_tasks, make_problems
from neuro_lib.rag.metrics import holds_fact
from neuro_lib.rag.questions import TEMPLATES as RAG_TEMPLATES
from neuro_lib.runtime.types import Query
from neuro_lib.structured.task import make_examples

FAMILIES = ("math", "code", "json", "retrieval", "compound")
JOIN = " Also, "
# retrieval phrasings for the router: rag/questions.py's kinds, two for training and one held out
RAG_KINDS = (("raises", "returns"), ("default",))
TAILS = (" if the argument is not valid", " when the file is missing", " by default", " for an empty input",
         " after the call")
SUBJECTS = ("the timeout", "the encoding", "the mode", "the separator", "the flag")


@dataclass
class Task:
    family: str
    query: Query
    skills: tuple          # gold skills, most important first
    gold: Any              # the gold answer (text, document, or {skill: answer} for compound)
    slow: bool = False     # the generator's "needs several steps" label
    template: str = ""     # the phrasing it came from (structured/task.py does not record its index: the
                           # split is named instead; its train and held-out indexes are disjoint by construction)


def _math(p) -> Task:
    return Task("math", Query(p.text), ("math",), p.answer, len(p.steps) >= 2, f"math:{p.family}:{p.template}")


def _code(t) -> Task:
    return Task("code", Query(t.text), ("code",), t.expected, False, f"code:{t.family}:{t.template}")


def family_tasks(n: int, seed: int = 0, split: str = "heldout", index=None, families=FAMILIES) -> list[Task]:
    """`n` tasks per family; retrieval needs the expert's RAG index (its test-section questions)."""
    out = []
    if "math" in families:
        out += [_math(p) for p in make_problems(n, seed=seed + 101, split=split)]
    if "code" in families:
        out += [_code(t) for t in make_code_tasks(n, seed=seed + 202, split=split)]
    if "json" in families:
        out += [Task("json", Query(e.text, wants_json=True, schema_id=e.schema_id), ("json",), e.doc, False,
                     f"json:{e.schema_id}:{split}") for e in make_examples(n, seed=seed + 303, split=split)]
    if "retrieval" in families and index is not None:
        qs = [q for q in index.questions if q.split == ("train" if split == "train" else "test")]
        rng = random.Random(f"retrieval:{seed}")
        out += [Task("retrieval", Query(q.text), ("retrieval",), q.answer) for q in rng.sample(qs, min(n, len(qs)))]
    if "compound" in families:
        probs, codes = make_problems(n, seed=seed + 404, split=split), make_code_tasks(n, seed=seed + 505, split=split)
        out += [Task("compound", Query(p.text + JOIN + t.text), ("math", "code"), {"math": p.answer, "code": t.expected},
                     True, f"{_math(p).template}+{_code(t).template}") for p, t in zip(probs, codes)]
    return out


def _same(family: str, text: str, value, gold) -> bool:
    if family == "math":
        return text.strip() == gold
    if family == "code":
        return text.strip() == gold
    if family == "json":
        return value == gold
    return holds_fact(text, gold)  # retrieval: the answer holds the gold fact (the outside sets' check)


def answer_succeeds(task: Task, text: str, value) -> bool:
    """Is this answer (text and typed value, an ExpertAnswer's or a Result's) the gold one?"""
    if task.family != "compound":
        return _same(task.family, text, value, task.gold)
    if not isinstance(value, dict):  # one expert answered: a compound query needs both
        return False
    texts = {}
    for line in text.splitlines():  # join_answers labels each part "[skill] text"
        if line.startswith("[") and "] " in line:
            skill, rest = line[1:].split("] ", 1)
            texts[skill] = rest
    return all(_same(s, texts.get(s, ""), value.get(s), g) for s, g in task.gold.items())


def succeeded(task: Task, result) -> bool:
    """A RuntimeEngine Result checked against the task's gold answer: an answer shown (verified or unverified; the
    label says how far to trust it, bench/runtime.py's selective_accuracy measures that) that is the gold one."""
    return result.status in ("verified", "unverified") and answer_succeeds(task, result.answer, result.value)


def router_examples(n: int, seed: int = 0, split: str = "train") -> list[LabelledQuery]:
    """Labelled router queries phrased as the experts are asked: about n / 5 each of word problems, programming
    tasks, JSON descriptions, documentation questions and compound word problem + programming task."""
    k = max(1, n // 5)
    tasks = family_tasks(k, seed=seed, split=split, families=("math", "code", "json", "compound"))
    rows = [LabelledQuery(t.query.text, t.skills, t.slow, t.template) for t in tasks]
    rng = random.Random(f"router-rag:{seed}:{split}")
    kinds = RAG_KINDS[0 if split == "train" else 1]
    for _ in range(k):
        m, f = rng.choice(MODULES)
        kind = rng.choice(kinds)
        text = RAG_TEMPLATES[kind].format(section=f"{m}.{f}", tail=rng.choice(TAILS), subj=rng.choice(SUBJECTS))
        rows.append(LabelledQuery(text, ("retrieval",), False, f"rag-{kind}"))
    return rows
