"""Struct-mini: a tiny description -> JSON expert (seeds/neurotiny.md), trained on task.py.

Two experts at the same step budget and similar size, both byte-level with one extra token
(id 256: start of the answer and end of document):
- `encdec`: Aeron in encoder-decoder mode (the seed's layout): the description is encoded,
  the decoder writes `<s> JSON <end>` cross-attending to it;
- `decoder`: decoder-only Aeron (same width, encoder + decoder layers in one stack): reads
  `description <s>` then writes `JSON <end>`; the loss covers only the JSON and the end token.
Evaluated on held-out phrasing templates, greedy, with and without the grammar constraint
(constrain.py): JSON validity, exact match, per-field and overall field accuracy. The training loop and
the prompt layout are train/seq2seq.py's, shared with the runtime's Reason-mini and Code-mini.

    res = train_expert("encdec", get_profile("smoke"))         # TrainResult (model, tokenizer, history)
    m = evaluate_expert(res.model, "encdec", make_examples(20, split="heldout"))

Sizes: profiles.py, tasks.struct_mini. Tests: tests/test_struct_mini.py.
"""
from __future__ import annotations

import time

import numpy as np

from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import generate
from neuro_lib.infer.grounding import GroundedJson
from neuro_lib.profiles import Profile
from neuro_lib.structured.constrain import JsonConstraint
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.task import GROUNDED, Example, field_scores, make_examples
from neuro_lib.structured.verify import verify_text
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.lm import TrainResult
from neuro_lib.train.seq2seq import END, KINDS, collate, expert_config, expert_kind, prompt_for, train_seq2seq  # noqa: F401 (re-exported)


def model_config(kind: str, profile: Profile) -> dict:
    return expert_config(kind, profile, profile.tasks.struct_mini)


def train_expert(kind: str, profile: Profile, steps: int | None = None, seed: int = 0, out_dir=None,
                 callback=None) -> TrainResult:
    """Train one expert for the profile's step budget on generated training-template examples."""
    s = profile.tasks.struct_mini
    train = make_examples(s.n_train, seed=seed, split="train")
    val = make_examples(s.n_val, seed=seed + 1, split="heldout")
    return train_seq2seq(train, val, model_config(kind, profile), s, kind, seed, steps, out_dir,
                         {"task": "struct_mini", "profile": profile.name}, callback)


def check_description(text: str, schema_id: str, block_size: int) -> None:
    """Refuse a description longer than the expert's window (it reads it whole: no silent cut), before any
    model work. The decoder-only kind also reads the start token, hence `>=`."""
    n = len(f"{schema_id}: {text}".encode())
    if n >= block_size:
        raise NeuroError(f"the description is {n} bytes with its schema id, but this Struct-mini expert reads "
                         f"fewer than {block_size}; shorten it")


def write_json(model, text: str, schema_id: str, constrained: bool = True, budget: int = 256,
               temperature: float = 0.0, seed: int = 0, grounded: bool = False, bounded: bool = True,
               distinct: bool = True) -> tuple[bytes, JsonConstraint | None]:
    """One document from a Struct-mini expert: (output bytes, the constraint used or None). `grounded` (with
    `constrained`) adds infer/grounding.GroundedJson over task.GROUNDED's fields of the schema; `bounded`: its spans
    start and end on word boundaries; `distinct`: a span field never repeats one of its values."""
    tok = ByteTokenizer()
    c = JsonConstraint(load_schema(schema_id), tok, budget=budget, name=schema_id) if constrained else None
    check_description(text, schema_id, model.config.block_size)
    processor = (GroundedJson(c, text.encode(), GROUNDED.get(schema_id, {}), bounded=bounded, distinct=distinct)
                 if c is not None and grounded else c)
    prompt, src = prompt_for(model, f"{schema_id}: {text}".encode())
    out = generate(model, tok, prompt, max_new_tokens=budget, temperature=temperature, seed=seed,
                   processor=processor, eos_id=END, src=src)
    return out, c


# mode -> (grammar, grounding, word-bounded spans, distinct span values)
MODES = {"unconstrained": (False, False, False, False), "constrained": (True, False, False, False),
         "grounded": (True, True, True, True), "grounded_unbounded": (True, True, False, True),
         "grounded_repeats": (True, True, True, False)}


def evaluate_expert(model, examples: list[Example], budget: int = 256, modes=("unconstrained", "constrained")) -> dict:
    """Validity, exact match and field accuracy on `examples` (greedy) per mode: unconstrained, constrained (the
    grammar), grounded (the grammar and task.GROUNDED's spans/numbers, spans on word boundaries, no span value
    twice in a field), grounded_unbounded (spans may start or end inside a word) and grounded_repeats (a span
    value may repeat)."""
    out = {}
    for mode in modes:
        constrained, grounded, bounded, distinct = MODES[mode]
        valid, exact, fields, per_field, mask_us, secs, n_tok = 0, 0, [], {}, [], [], 0
        for ex in examples:
            t0 = time.perf_counter()
            text, c = write_json(model, ex.text, ex.schema_id, constrained, budget, grounded=grounded, bounded=bounded,
                                 distinct=distinct)
            secs.append(time.perf_counter() - t0)
            n_tok += len(text) + 1
            doc, errs = verify_text(text, load_schema(ex.schema_id))
            valid += not errs
            exact += doc == ex.doc
            for k, ok in field_scores(doc, ex.doc).items():
                fields.append(ok)
                per_field.setdefault(f"{ex.schema_id}.{k}", []).append(ok)
            if c is not None:
                mask_us += c.mask_us
        n = len(examples)
        out[mode] = {"validity": valid / n, "exact_match": exact / n, "field_accuracy": float(np.mean(fields)),
                     "per_field": {k: float(np.mean(v)) for k, v in sorted(per_field.items())},
                     "latency_s": secs, "tokens_per_s": n_tok / sum(secs), "mask_us": mask_us}
    return out


def answer(model, tokenizer, config: dict, schema_id: str, prompt: str, constrained: bool = True,
           budget: int = 256, temperature: float = 0.0, seed: int = 0, grounded: bool = False) -> dict:
    """One document for `prompt` from any run: a Struct-mini expert (this module's, or the family base fine-tuned
    on "struct"; their own prompt layout, grounded if asked) or a plain language model continuing the prompt.
    -> {"text", "valid", "errors", "repair"}; repair (repair.py) only when the output is invalid."""
    from neuro_lib.structured.repair import repair

    schema = load_schema(schema_id)
    if config.get("task") == "struct_mini" or (config.get("finetune") or {}).get("task") == "struct":
        out, _ = write_json(model, prompt, schema_id, constrained, budget, temperature, seed,
                            grounded=grounded and constrained)
    else:
        c = JsonConstraint(schema, tokenizer, budget=budget, name=schema_id) if constrained else None
        out = generate(model, tokenizer, prompt, max_new_tokens=budget, temperature=temperature, seed=seed,
                       processor=c, eos_id=c.eos_id if c else None)
    text = out.decode("utf-8", errors="replace")
    _, errors = verify_text(out, schema)
    return {"text": text, "valid": not errors, "errors": errors, "repair": repair(text, schema) if errors else None}
