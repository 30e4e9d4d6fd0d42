"""The runtime's experts (seeds/neurotiny.md, seeds/tinyllm.md): each declares its skills, the tools it may
call and its input/output contract, and answers a Query with an ExpertAnswer (text, value, tool calls,
citations, model calls, tokens).

- reason-mini (runtime/reason.py): word problem -> calculator plan -> number;
- struct-mini: structured/expert.py's Struct-mini under schema-constrained decoding for the query's schema_id;
- code-mini (runtime/code.py): task -> Python program -> its output from the sandbox;
- retrieval: a question about the Python documentation -> rag's index (BM25 by the profile's reader_retriever)
  + the extractive "lite" reader; the answer cites the passage id and the exact byte span it copied;
- general: a small GPT trained briefly on the stdlib-docs corpus, continuing the query (everything else).

    experts = build_experts("smoke")          # trains on first use, then loads data/cache/runtime/
    experts["code-mini"].answer(Query("factorial of 6")).text   # "720" once trained enough

Trained models are checkpoints (neuro_lib/checkpoint.py) in data/cache/runtime/NAME-PROFILE (Struct-mini keeps its
own cache folder, structured/expert.py); a run interrupted mid-training resumes, a finished one is only loaded.
Sizes: profiles.py tasks["reason_mini"], ["code_mini"], ["struct_mini"], ["rag"], ["experts"].
Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.data.corpus import CACHE_DIR, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import generate
from neuro_lib.profiles import get_profile
from neuro_lib.rag.experiment import rag_sizes
from neuro_lib.rag.index import RagIndex, build_index, load_index
from neuro_lib.rag.lite import lite_answer, match_key, question_keys
from neuro_lib.runtime.code import CodeMini, train_code_mini
from neuro_lib.runtime.reason import ReasonMini, train_reason_mini
from neuro_lib.runtime.types import Expert, ExpertAnswer, Query
from neuro_lib.structured.expert import cached_expert, write_json
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify_text
from neuro_lib.checkpoint import load_checkpoint
from neuro_lib.train.lm import train_lm

RUNTIME_CACHE = CACHE_DIR / "runtime"
EXPERT_NAMES = ("reason-mini", "struct-mini", "code-mini", "retrieval", "general")
# retrieval abstains unless the top passage holds more than this share of the question's words (docs/LOG.md
# 2026-12-03 "honest answers": the smoke index's test questions average 0.81, off-corpus questions <= 0.5)
RELEVANT_SHARE = 0.5


def expert_sizes(profile: str) -> dict:
    return dict(get_profile(profile).tasks["experts"])


class StructMini:
    name = "struct-mini"
    skills = ("json",)
    tools = ()
    contract = {"input": "a description of a product, a weather report or an event, and a schema_id",
                "output": "a JSON document valid against the query's schema (constrained decoding)"}

    def __init__(self, model, budget: int = 256):
        self.model, self.budget = model, budget

    def answer(self, query: Query) -> ExpertAnswer:
        if not query.schema_id:
            return ExpertAnswer("", ok=False, error="struct-mini needs a schema_id")
        try:
            schema = load_schema(query.schema_id)
        except NeuroError as e:
            return ExpertAnswer("", ok=False, error=str(e))
        out, _ = write_json(self.model, query.text, query.schema_id, constrained=True, budget=self.budget)
        doc, errors = verify_text(out, schema)
        return ExpertAnswer(out.decode("utf-8", "replace"), ok=not errors, value=doc, model_calls=1,
                            tokens=len(out) + 1, error=str(errors[0]) if errors else None,
                            meta={"schema_id": query.schema_id})


class Retrieval:
    name = "retrieval"
    skills = ("retrieval",)
    tools = ()
    contract = {"input": "a question about the Python standard library documentation",
                "output": "a span copied from the top passage, cited by passage id and byte span"}

    def __init__(self, index: RagIndex, retriever: str = "bm25", k: int = 3):
        self.index, self.retriever, self.k = index, retriever, k

    def answer(self, query: Query) -> ExpertAnswer:
        question = " ".join(query.text.split())
        if not question:
            return ExpertAnswer("", ok=False, error="the question is empty")
        ids, scores = self.index.retriever(self.retriever).search([question], self.k)
        top = [self.index.passages[i] for i in ids[0]]
        retrieved = {"retrieved": [{"passage_id": p.id, "start": p.start, "end": p.end, "score": float(s)}
                                   for p, s in zip(top, scores[0])], "retriever": self.retriever}
        keys = question_keys(question)
        found = keys & {match_key(w) for w in self.index.corpus.data[top[0].start:top[0].end].split()}
        if len(found) <= RELEVANT_SHARE * len(keys):  # the corpus does not hold the question's subject: say so
            return ExpertAnswer("", ok=False, abstained=True, meta=retrieved,
                                error=f"the documentation holds nothing relevant (the best passage has "
                                      f"{len(found)} of the question's {len(keys)} words)")
        a = lite_answer(self.index.corpus.data, top[0], question)
        cites = [dict(c, source=self.index.corpus.spec, score=float(scores[0][0])) for c in a.citations]
        return ExpertAnswer(a.text, ok=bool(a.text.strip()), value=a.text, citations=cites, meta=retrieved,
                            abstained=not a.text.strip(), error=None if a.text.strip() else
                            "the best passage holds no answer span for the question")


class General:
    name = "general"
    skills = ("chat",)
    tools = ()
    contract = {"input": "any text", "output": "text continued by a small byte-level language model"}

    def __init__(self, model, tokenizer, max_new_tokens: int = 80):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens

    def answer(self, query: Query) -> ExpertAnswer:
        history = "".join(f"{t['text']}\n" for t in query.context[-4:])  # recent turns, if the memory gave any
        prompt = f"{history}{query.text}\n"
        out = generate(self.model, self.tokenizer, prompt, max_new_tokens=self.max_new_tokens, temperature=0.7,
                       top_k=20, seed=0)  # seeded sampling: greedy decoding of a tiny LM repeats one byte
        text = out.decode("utf-8", "replace").strip().split("\n\n")[0].strip()  # the first paragraph
        return ExpertAnswer(text, ok=bool(text), value=text, model_calls=1, tokens=len(self.tokenizer.encode(out)),
                            error=None if text else "the model wrote nothing")


# -- training on first use, loading afterwards ------------------------------------------------------------------
def cached_model(name: str, profile: str = "smoke", callback=None):
    """A trained expert's (model, tokenizer, config) from data/cache/runtime/ (trained there on first use)."""
    out = RUNTIME_CACHE / f"{name}-{profile}"
    if name == "reason-mini":
        train_reason_mini(profile, out_dir=out, callback=callback)
    elif name == "code-mini":
        train_code_mini(profile, out_dir=out, callback=callback)
    elif name == "general":
        train_lm("gpt", "stdlib-docs", profile=profile, out_dir=out, callback=callback,
                 train_overrides=dict(max_steps=expert_sizes(profile)["general_steps"], time_budget_s=0, eval_every=0))
    elif name == "struct-mini":
        return cached_expert("encdec", profile)
    else:
        raise NeuroError(f"no trained model for expert {name!r}; trained experts: reason-mini, code-mini, "
                         "struct-mini, general")
    return load_checkpoint(out)


def cached_index(profile: str = "smoke", callback=None) -> RagIndex:
    """The RAG index (stdlib-docs, the profile's rag_profile sizes) from data/cache/runtime/, built on first use."""
    rag_profile = expert_sizes(profile)["rag_profile"]
    path = RUNTIME_CACHE / f"rag-index-{rag_profile}"
    if (path / "index.json").exists():
        return load_index(path)
    index = build_index(load_corpus("stdlib-docs"), rag_sizes(rag_profile), seed=0, callback=callback)
    try:
        index.save(path)
    except NeuroError:  # another process saved it first: theirs is the same build
        return load_index(path)
    return index


def build_experts(profile: str = "smoke", names=EXPERT_NAMES, callback=None) -> dict[str, Expert]:
    """The experts by name, trained (first time) or loaded from data/cache/runtime/."""
    unknown = sorted(set(names) - set(EXPERT_NAMES))
    if unknown:
        raise NeuroError(f"unknown expert {unknown[0]!r}; known experts: {', '.join(EXPERT_NAMES)}")
    tasks, experts = get_profile(profile).tasks, {}
    for name in names:
        if name == "retrieval":
            rag = rag_sizes(expert_sizes(profile)["rag_profile"])
            experts[name] = Retrieval(cached_index(profile, callback), rag["reader_retriever"])
            continue
        model, tok, _ = cached_model(name, profile, callback)
        if name == "reason-mini":
            experts[name] = ReasonMini(model, budget=tasks["reason_mini"]["budget"])
        elif name == "code-mini":
            experts[name] = CodeMini(model, budget=tasks["code_mini"]["budget"])
        elif name == "struct-mini":
            experts[name] = StructMini(model, budget=tasks["struct_mini"]["budget"])
        else:
            experts[name] = General(model, tok, expert_sizes(profile)["general_tokens"])
    return experts
