"""Prompt -> answer pairs for fine-tuning the base model, one entry per task, from the existing generators.

    pairs = task_pairs("reason", 1000, seed=0, split="train")   # [Pair(source=b"Ana has ...", target=b"CALL ...")]
    generate(child, ByteTokenizer(), prompt_ids(pairs[0].source), eos_id=MARK, temperature=0)   # its answer

Tasks (TASKS), each with a training split and a held-out one that fine-tuning never sees:
- reason: word problem -> calculator plan (data/word_problems.py; held-out phrasings);
- code:   task -> Python program (data/word_problems.py; held-out phrasings);
- struct: "schema_id: description" -> the JSON document: by default structured/broad.py (all six schemas, open
  vocabularies, held-out wordings); variant "templates" is structured/task.py's narrow generator (three schemas,
  closed word lists), which the base's pretraining mixture keeps (data/mixture.py: its bytes are in the base's key);
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

from neuro_lib.data.chat import generate_chat
from neuro_lib.data.word_problems import make_code_tasks, make_problems
from neuro_lib.errors import NeuroError

TASKS = ("reason", "struct", "code", "reader", "chat")
SPLITS = ("train", "heldout")
TOKENIZER = "byte"   # every task is byte-level: a base must use this tokenizer
MARK = 256           # the one extra token: answer start and end of document (train/seq2seq.py START = END)
VOCAB = 257
READER = dict(chunk_bytes=600, test_fraction=0.25, ctx_bytes=200, prompt_budget=320)
# a task's generators by variant name; the first is the task's default. A task whose default is not its first
# generator's data carries DATA_VERSION, which goes into every fine-tune's recipe (train/finetune.py) and the
# runtime's cache folder name, so a child trained on the old data is never reused for the new.
VARIANTS = {"struct": ("broad", "templates")}
DATA_VERSION = {"struct": "broad-1"}


@dataclass(frozen=True)
class Pair:
    source: bytes
    target: bytes
    meta: object = None  # the generator's own example (a Problem, CodeTask, Example, ...) for evaluation


def check_task(task: str) -> str:
    if task not in TASKS:
        raise NeuroError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def data_tag(task: str) -> str:
    """A suffix for the run folders of `task`'s fine-tunes: "" for a task on its first data, "-broad-1" after."""
    return f"-{DATA_VERSION[task]}" if task in DATA_VERSION else ""


def task_pairs(task: str, n: int, seed: int = 0, split: str = "train", variant: str | None = None) -> list[Pair]:
    """`n` pairs of `task` (fewer for reader when the corpus holds fewer questions), deterministic in (seed, split);
    `variant` picks one of the task's generators (VARIANTS; None: its default)."""
    check_task(task)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    variants = VARIANTS.get(task, ("default",))
    variant = variant or variants[0]
    if variant not in variants:
        raise NeuroError(f"task {task!r} has no variant {variant!r}; choose one of {', '.join(variants)}")
    if task == "reason":
        return [Pair(p.source, p.target, p) for p in make_problems(n, seed=seed, split=split)]
    if task == "code":
        return [Pair(t.source, t.target, t) for t in make_code_tasks(n, seed=seed, split=split)]
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
