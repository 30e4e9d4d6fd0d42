"""Prompt -> answer pairs for fine-tuning the base model, one entry per task, from the existing generators.

    pairs = task_pairs("reason", 1000, seed=0, split="train")   # [Pair(source=b"Ana has ...", target=b"CALL ...")]
    generate(child, ByteTokenizer(), prompt_ids(pairs[0].source), eos_id=MARK, temperature=0)   # its answer

Tasks (TASKS), each with a training split and a held-out one that fine-tuning never sees:
- reason: word problem -> calculator plan (held-out phrasings; VARIANTS: "templated", data/word_problems.py, and
  "broad", data/broad_problems.py, the current one);
- code:   task -> Python program (held-out phrasings; the same two variants);
- struct: "schema_id: description" -> the JSON document (held-out phrasings; "templated", structured/task.py: three
  schemas, closed word lists, and "broad", structured/broad.py: all six schemas, open vocabularies, the current one);
- chat:   user turn -> reply (data/chat.py; held-out phrasings);
- reader: question + its gold passage -> the answer span (rag/questions.py over stdlib-docs; held-out sections),
  in the RAG reader's prompt format (rag/reader.py `fit_prompt`).

Every task is byte-level: a pair is laid out as `source <s> target <end>` with one extra token (256) for both
markers, the decoder layout of train/seq2seq.py, so the experts' decoding code reads a fine-tuned child unchanged.
Layering note: the struct and reader generators still live above data/ (structured/, rag/); they are imported
lazily here, and move into data/ with the experts' package.
"""
from __future__ import annotations

from dataclasses import dataclass

from neuro_lib.data.broad_code import make_broad_code_tasks
from neuro_lib.data.broad_problems import make_broad_problems
from neuro_lib.data.chat import generate_chat
from neuro_lib.data.word_problems import make_code_tasks, make_problems
from neuro_lib.errors import NeuroError

TASKS = ("reason", "struct", "code", "reader", "chat")
SPLITS = ("train", "heldout")
TOKENIZER = "byte"   # every task is byte-level: a base must use this tokenizer
MARK = 256           # the one extra token: answer start and end of document (train/seq2seq.py START = END)
VOCAB = 257
READER = dict(chunk_bytes=600, test_fraction=0.25, ctx_bytes=200, prompt_budget=320)
# generator variants per task, the current one last (tasks absent have one: "templated"). The base's pretraining
# mixture pins "templated" (data/mixture.py), so a new variant changes the fine-tunes, never the base.
VARIANTS = {"reason": ("templated", "broad"), "code": ("templated", "broad"), "struct": ("templated", "broad")}


@dataclass(frozen=True)
class Pair:
    source: bytes
    target: bytes
    meta: object = None  # the generator's own example (a Problem, CodeTask, Example, ...) for evaluation


def check_task(task: str) -> str:
    if task not in TASKS:
        raise NeuroError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def task_variant(task: str, variant: str | None = None) -> str:
    """The generator variant of `task`: `variant` checked, or the task's current one (the last of VARIANTS)."""
    known = VARIANTS.get(task, ("templated",))
    if variant is None:
        return known[-1]
    if variant not in known:
        raise NeuroError(f"task {task!r} has no {variant!r} variant; choose one of {', '.join(known)}")
    return variant


def task_pairs(task: str, n: int, seed: int = 0, split: str = "train", variant: str | None = None) -> list[Pair]:
    """`n` pairs of `task` (fewer for reader when the corpus holds fewer questions), deterministic in (seed, split,
    variant); `variant` None is the task's current generator (task_variant)."""
    check_task(task)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    variant = task_variant(task, variant)
    if task == "reason":
        make = make_broad_problems if variant == "broad" else make_problems
        return [Pair(p.source, p.target, p) for p in make(n, seed=seed, split=split)]
    if task == "code":
        make = make_broad_code_tasks if variant == "broad" else make_code_tasks
        return [Pair(t.source, t.target, t) for t in make(n, seed=seed, split=split)]
    if task == "chat":
        return [Pair(e.user.encode(), e.reply.encode(), e) for e in generate_chat(n, seed=seed, split=split)]
    if task == "struct":
        from neuro_lib.structured.broad import make_broad_examples
        from neuro_lib.structured.task import make_examples
        make = make_broad_examples if variant == "broad" else make_examples
        return [Pair(e.source, e.target, e) for e in make(n, seed=seed, split=split)]
    return _reader_pairs(n, seed, split)


def _reader_pairs(n: int, seed: int, split: str) -> list[Pair]:
    import random

    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.rag.passages import chunk_corpus
    from neuro_lib.rag.questions import generate_questions
    from neuro_lib.rag.reader import fit_prompt

    corpus = load_corpus("stdlib-docs")
    passages = chunk_corpus(corpus, READER["chunk_bytes"])
    by_id = {p.id: p for p in passages}
    want = "train" if split == "train" else "test"
    questions = [q for q in generate_questions(corpus, passages, READER["test_fraction"]) if q.split == want]
    random.Random(f"{seed}-{split}-reader").shuffle(questions)
    return [Pair(fit_prompt(q.text, corpus.data, by_id[q.passage_id], READER["ctx_bytes"], READER["prompt_budget"]),
                 q.answer.encode(), q) for q in questions[:n]]


def layout(pair: Pair) -> list[int]:
    """The token sequence a pair is trained as: source <s> target <end>."""
    return [*pair.source, MARK, *pair.target, MARK]


def prompt_ids(source: bytes) -> list[int]:
    """What a fine-tuned child is given to answer `source`: source <s>; it writes the answer and then MARK (eos)."""
    return [*source, MARK]
