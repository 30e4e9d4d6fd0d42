"""The runtime's experts (seeds/neurotiny.md, seeds/tinyllm.md), one module each: every model expert is the
profile's pretrained family base (train/pretrain.py, cached by content hash) fine-tuned on its task by the one
shared recipe (train/finetune.py); the retrieval expert is an index and a rule reader.

- reason-mini (reason.py): word problem -> calculator plan, the calculator's results injected while decoding;
- struct-mini (struct.py): description -> JSON under the schema's grammar, grounded in the description;
- code-mini (code.py): task -> Python program -> its output from the sandbox;
- retrieval (reader.py): rag's index + the extractive "lite" reader, with citations;
- general (chat.py): the chat fine-tune, for everything else.

    experts = build_experts(get_profile("smoke"))  # pretrains the base and fine-tunes on first use, then loads
    experts["code-mini"].answer(Query("factorial of 6")).text

Each child is data/cache/runtime/NAME-PROFILE-<base id>[-<recipe hash>]/ (the hash when its training data or steps
are not the original recipe's), a checkpoint whose `parent` records the base's id
(checkpoint.lineage): a rebuilt base gets new children, and a child whose parent changed is refused in one
sentence (checkpoint.check_lineage) before it is loaded. Task generators live in data/ (data/sft.py), held-out
evaluations in bench/ (bench/expert_eval.py, bench/family.py).
Sizes: profiles.py tasks.family (base and fine-tuning), decode budgets tasks.reason_mini, .code_mini, .struct_mini,
the index tasks.experts.rag. Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

from neuro_lib.checkpoint import check_lineage, checkpoint_id, load_checkpoint
from neuro_lib.data.corpus import CACHE_DIR, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import Profile, RagSizes
from neuro_lib.rag.index import RagIndex, build_index, load_index
from neuro_lib.runtime.experts.chat import General
from neuro_lib.runtime.experts.code import CodeMini
from neuro_lib.runtime.experts.reader import Retrieval
from neuro_lib.runtime.experts.reason import ReasonMini
from neuro_lib.runtime.experts.struct import StructMini
from neuro_lib.runtime.types import Expert

RUNTIME_CACHE = CACHE_DIR / "runtime"
EXPERT_NAMES = ("reason-mini", "struct-mini", "code-mini", "retrieval", "general")
TASK_OF = {"reason-mini": "reason", "struct-mini": "struct", "code-mini": "code", "general": "chat"}

__all__ = ["EXPERT_NAMES", "TASK_OF", "CodeMini", "General", "ReasonMini", "Retrieval", "StructMini",
           "build_experts", "cached_index", "cached_model", "train_expert"]


def train_expert(name: str, base: str | Path, out: str | Path, profile: Profile, steps: int | None = None,
                 seed: int = 0, callback=None) -> Path:
    """Fine-tune `base` into expert `name`'s child at `out` (train/finetune.py's recipe; resumed if interrupted,
    only checked if finished) -> `out`."""
    from neuro_lib.train.finetune import finetune
    if name not in TASK_OF:
        raise NeuroError(f"no trained model for expert {name!r}; trained experts: {', '.join(TASK_OF)}")
    return finetune(base, TASK_OF[name], out, steps=steps, seed=seed, profile=profile, callback=callback)


def _recipe_tag(task: str, profile: Profile) -> str:
    """"" for a child of the original recipe (its folder keeps its name), else "-" and a hash of the recipe (new
    training data or steps make a new folder, never a clash with an old child)."""
    from neuro_lib.train.finetune import default_steps, recipe
    rec = recipe(task, profile, default_steps(task, profile), 0, 0)
    if "data" not in rec and rec["steps"] == profile.tasks.family.finetune.steps:
        return ""
    return "-" + hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:8]


def cached_model(name: str, profile: Profile, callback=None):
    """A trained expert's (model, tokenizer, config): the profile's base (pretrained on first use) fine-tuned on
    the expert's task in data/cache/runtime/ (on first use), its lineage checked before it is loaded."""
    from neuro_lib.train.pretrain import pretrain
    if name not in TASK_OF:
        raise NeuroError(f"no trained model for expert {name!r}; trained experts: {', '.join(TASK_OF)}")
    base = pretrain(profile, callback=callback)
    out = RUNTIME_CACHE / f"{name}-{profile.name}-{checkpoint_id(base)[:12]}{_recipe_tag(TASK_OF[name], profile)}"
    train_expert(name, base, out, profile, callback=callback)
    check_lineage(out)
    return load_checkpoint(out)


def cached_index(sizes: RagSizes, callback=None) -> RagIndex:
    """The RAG index of `sizes.corpus` under `sizes` from data/cache/runtime/, built on first use. The folder is
    named by a hash of the sizes, so profiles with the same index sizes share it."""
    digest = hashlib.sha256(json.dumps(asdict(sizes), sort_keys=True).encode()).hexdigest()[:12]
    path = RUNTIME_CACHE / f"rag-index-{digest}"
    if (path / "index.json").exists():
        return load_index(path)
    index = build_index(load_corpus(sizes.corpus), sizes, seed=0, callback=callback)
    try:
        index.save(path)
    except NeuroError:  # another process saved it first: theirs is the same build
        return load_index(path)
    return index


def announce_first_use(profile: Profile, names=EXPERT_NAMES) -> bool:
    """One line on stderr, before anything trains, when the profile's experts are not in the cache yet: what will be
    trained and about how long (profiles.py's about_pretrain / about_finetune). True when it printed."""
    missing = [n for n in names if n in TASK_OF and not any(
        RUNTIME_CACHE.glob(f"{n}-{profile.name}-*{_recipe_tag(TASK_OF[n], profile)}/checkpoint.json"))]
    if not missing:
        return False
    fam = profile.tasks.family
    print(f"[neuro] first use of the {profile.name} experts: pretraining the family base if it is not cached "
          f"({fam.about_pretrain}), then fine-tuning {', '.join(missing)} from it ({fam.about_finetune} each) and "
          f"building the RAG index if needed; cached in {RUNTIME_CACHE}, later runs load them", file=sys.stderr,
          flush=True)
    return True


def build_experts(profile: Profile, names=EXPERT_NAMES, callback=None) -> dict[str, Expert]:
    """The experts by name, fine-tuned from the profile's base (first time) or loaded from data/cache/runtime/."""
    unknown = sorted(set(names) - set(EXPERT_NAMES))
    if unknown:
        raise NeuroError(f"unknown expert {unknown[0]!r}; known experts: {', '.join(EXPERT_NAMES)}")
    tasks, experts = profile.tasks, {}
    announce_first_use(profile, names)
    for name in names:
        if name == "retrieval":
            rag = tasks.experts.rag
            experts[name] = Retrieval(cached_index(rag, callback), rag.reader_retriever, extract=rag.reader_extract)
            continue
        model, tok, _ = cached_model(name, profile, callback)
        if name == "reason-mini":
            experts[name] = ReasonMini(model, budget=tasks.reason_mini.budget)
        elif name == "code-mini":
            experts[name] = CodeMini(model, budget=tasks.code_mini.budget)
        elif name == "struct-mini":
            experts[name] = StructMini(model, budget=tasks.struct_mini.budget)
        else:
            experts[name] = General(model, tok, tasks.experts.general_tokens)
    return experts
