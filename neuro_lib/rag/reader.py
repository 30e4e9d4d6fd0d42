"""The generative reader: our LM fine-tuned to answer from a question and a passage.

One prompt format for the three readers compared at the same step budget:

    Question: In posixpath, what is returned if the path is absolute?
    Passage [posixpath#3]: Return True if the path is absolute. ...     (absent for "none")
    Answer: True\n

"none" is closed-book (no passage), "retrieval" gets the top-1 passage of a retriever
(in training too, so it learns to live with retrieval errors), "oracle" the gold one.
A passage longer than `ctx_bytes` is cut to a window centred on its sentence that best
matches the question (lite.best_sentence). Fine-tuning starts from one pre-trained LM
(any arch in models.ARCHS with a byte tokenizer), runs the shared Trainer for
`finetune_steps` with the loss on the answer bytes only (loss_mask), and decodes
greedily with infer.sampling.generate until a newline. The answer cites the passage it
was given and the byte span where the answer occurs in it (or the whole window when
the model wrote something the passage does not contain: `grounded` is then False).

    model = finetune_reader(base, tok, examples, sizes, seed=0)
    reader_answer(model, tok, corpus.data, question, passage, sizes)

Tests: tests/test_rag.py (prompt fits the block; the loss mask covers exactly the answer;
citations point at the answer's bytes).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from neuro_lib.infer.engine import generate
from neuro_lib.profiles import RagSizes
from neuro_lib.rag.lite import Answer, best_sentence
from neuro_lib.rag.passages import Passage
from neuro_lib.train.trainer import TrainConfig, Trainer

CONDITIONS = ("none", "retrieval", "oracle")


def context_window(data: bytes, passage: Passage, question: str, nbytes: int) -> tuple[int, int]:
    """Byte span of at most nbytes inside the passage, centred on its best-matching sentence."""
    if passage.end - passage.start <= nbytes:
        return passage.start, passage.end
    s, e = best_sentence(data, passage, question)
    start = max(passage.start, min((s + e) // 2 - nbytes // 2, passage.end - nbytes))
    while start < passage.end and data[start] & 0xC0 == 0x80:  # never start inside a UTF-8 character
        start += 1
    end = min(passage.end, start + nbytes)
    while end > start and end < len(data) and data[end] & 0xC0 == 0x80:
        end -= 1
    return start, end


def prompt_bytes(question: str, data: bytes | None = None, passage: Passage | None = None,
                 span: tuple[int, int] | None = None) -> bytes:
    """The reader's prompt, ending in "Answer:"; with a passage, its bytes data[span]."""
    q = " ".join(question.split()).encode("utf-8")
    if passage is None:
        return b"Question: " + q + b"\nAnswer:"
    ctx = b" ".join(data[span[0]:span[1]].split())  # newlines would end the answer early
    return b"Question: " + q + b"\nPassage [" + passage.id.encode("utf-8") + b"]: " + ctx + b"\nAnswer:"


def fit_prompt(question: str, data: bytes, passage: Passage | None, ctx_bytes: int, budget: int) -> bytes:
    """A prompt of at most `budget` bytes: the context window shrinks until it fits."""
    if passage is None:
        return prompt_bytes(question)[-budget:]
    span = context_window(data, passage, question, ctx_bytes)
    p = prompt_bytes(question, data, passage, span)
    while len(p) > budget and span[1] > span[0]:
        span = context_window(data, passage, question, max(0, span[1] - span[0] - (len(p) - budget)))
        p = prompt_bytes(question, data, passage, span)
    return p[-budget:]


def reader_batches(examples: list[tuple[bytes, bytes]], batch_size: int, block_size: int, seed: int):
    """batches(step) for the Trainer from (prompt, answer) byte pairs; loss on the answer bytes
    (a leading space and the final newline included). Deterministic in (seed, step)."""
    def batches(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        rows = [examples[i] for i in rng.integers(0, len(examples), batch_size)]
        seqs = [(p + b" " + a.encode("utf-8") + b"\n")[-(block_size + 1):] for p, a in rows]
        T = max(len(s) for s in seqs) - 1
        tokens = torch.zeros(batch_size, T, dtype=torch.long)
        targets = torch.zeros(batch_size, T, dtype=torch.long)
        mask = torch.zeros(batch_size, T)
        for i, ((p, a), s) in enumerate(zip(rows, seqs)):
            ids = torch.tensor(list(s))
            tokens[i, :len(s) - 1] = ids[:-1]
            targets[i, :len(s) - 1] = ids[1:]
            n_answer = len(a.encode("utf-8")) + 2  # " " + answer + "\n"
            mask[i, len(s) - 1 - n_answer:len(s) - 1] = 1.0
        return {"tokens": tokens, "targets": targets, "loss_mask": mask}
    return batches


def finetune_reader(base_model, tokenizer, examples: list[tuple[bytes, str]], sizes: RagSizes, seed: int = 0,
                    callback=None):
    """A copy of base_model fine-tuned on (prompt, answer) pairs for sizes.finetune_steps steps."""
    model = copy.deepcopy(base_model).train()
    block = sizes.reader_block
    config = TrainConfig(batch_size=sizes.reader_batch, block_size=block, lr=sizes.reader_lr,
                         warmup_steps=10, max_steps=sizes.finetune_steps, eval_every=0, log_every=10, seed=seed)
    trainer = Trainer(model, tokenizer, config, reader_batches(examples, config.batch_size, block, seed))
    history = trainer.fit(callback=callback)
    return model.eval(), history


def reader_answer(model, tokenizer, data: bytes, question: str, passage: Passage | None, sizes: RagSizes) -> Answer:
    """Greedy answer (up to sizes.answer_bytes bytes, stopped at a newline) with its citation."""
    budget = sizes.reader_block - sizes.answer_bytes
    prompt = fit_prompt(question, data, passage, sizes.ctx_bytes, budget)
    out = generate(model, tokenizer, prompt, max_new_tokens=sizes.answer_bytes, temperature=0.0, stop=[b"\n"])
    text = out.decode("utf-8", errors="replace").strip()
    if passage is None:
        return Answer(text, [])
    s, e = context_window(data, passage, question, sizes.ctx_bytes)
    raw = text.encode("utf-8")
    at = data.find(raw, s, e) if raw else -1
    if at < 0 and raw:
        at = data[s:e].lower().find(raw.lower())
        at = s + at if at >= 0 else -1
    if at >= 0:
        return Answer(text, [{"passage_id": passage.id, "start": at, "end": at + len(raw), "grounded": True}])
    return Answer(text, [{"passage_id": passage.id, "start": s, "end": e, "grounded": False}])
