"""Reason-mini: a word problem -> a plan of calculator calls -> the answer (seeds/neurotiny.md's reasoning
expert, TinyLLM's tool-using specialist).

A byte-level Aeron (the profile's kind, encoder-decoder by default; train/seq2seq.py) is trained on
data/word_problems.py to write

    CALL calc(45*3) -> 135
    CALL calc(135*1000) -> 135000
    ANSWER 135000

With the tool, decoding stops at each " -> ": the runtime runs the expression through the calculator
(neuro_lib.tools Calculator), writes the true result into the decoder's context and lets the model go on
(a later call copies it, like "135*1000"); when the model starts "ANSWER", the answer is the last tool
result. Without the tool the model writes every result and the answer itself: the same weights, so the
difference between the two is what the calculator buys.

    expert = ReasonMini(model)                        # or build_experts()["reason-mini"]
    a = expert.answer(Query("Convert 7 hours to minutes."))
    a.value, a.tool_calls, a.model_calls, a.meta["plan"]
    evaluate_reason_mini(profile="smoke")             # exact match on held-out templates, with and without the tool

Sizes: profiles.py tasks["reason_mini"]. Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

import re
import time

from neuro_lib.data.word_problems import fmt_number, make_problems
from neuro_lib.infer.engine import generate
from neuro_lib.profiles import get_profile
from neuro_lib.progress import Progress
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tools import get_tool
from neuro_lib.train.seq2seq import END, aeron_config, prompt_for, train_seq2seq

CALL_RE = re.compile(r"CALL calc\((?P<expr>.*)\)$")                     # an open call: decoding stopped at " -> "
PLAN_RE = re.compile(r"^CALL calc\((?P<expr>.*)\) -> (?P<value>\S+)$")   # a call with its (claimed) result
ANSWER_RE = re.compile(r"^ANSWER (?P<value>\S+)$")
ARROW, ANSWER = b" -> ", b"\nANSWER"
MAX_CALLS = 6  # a plan longer than this is cut: the expert answers ok=False


def sizes(profile: str) -> dict:
    return dict(get_profile(profile).tasks["reason_mini"])


def model_config(profile: str, kind: str) -> dict:
    s = sizes(profile)
    return aeron_config(kind, get_profile(profile).model("aeron"), s["enc_layers"], s["dec_layers"], s["max_len"])


def train_reason_mini(profile: str = "smoke", steps: int | None = None, seed: int = 0, out_dir=None, callback=None,
                      kind: str | None = None):
    """Train Reason-mini (the profile's kind, or `kind`: encdec | decoder) on training-template problems;
    validation loss on held-out-template ones."""
    s = sizes(profile)
    kind = kind or s["kind"]
    train = make_problems(s["n_train"], seed=seed, split="train")
    val = make_problems(s["n_val"], seed=seed + 1, split="heldout")
    return train_seq2seq(train, val, model_config(profile, kind), s, kind, seed, steps, out_dir,
                         {"task": "reason_mini", "profile": profile}, callback)


# a retry (Query.attempt > 0) samples at this temperature, seeded by the attempt: a greedy expert would only
# repeat the answer the judge just failed
RETRY_TEMPERATURE = 0.7


def model_writer(model, budget: int, temperature: float = 0.0, seed: int | None = None):
    """write(source, written, stop) -> the model's continuation of `written` (bytes; greedy unless a temperature
    is given), cut before a stop."""
    tok = ByteTokenizer()

    def write(source: bytes, written: bytes, stop: tuple) -> bytes:
        prompt, src = prompt_for(model, source, written)
        return generate(model, tok, prompt, max_new_tokens=max(budget - len(written), 1), temperature=temperature,
                        stop=stop, eos_id=END, src=src, seed=seed)

    return write


def parse_plan(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """A written plan -> ([(expression, claimed result)], the ANSWER value or None). Other lines are ignored."""
    steps, answer = [], None
    for line in text.splitlines():
        if m := PLAN_RE.match(line.strip()):
            steps.append((m["expr"], m["value"]))
        elif m := ANSWER_RE.match(line.strip()):
            answer = m["value"]
    return steps, answer


def solve(write, text: str, use_tool: bool = True, calc=None) -> ExpertAnswer:
    """Run the plan loop: `write` is model_writer(...) or any function of the same form (tests script one)."""
    source, written = text.encode(), b""
    calls, model_calls, tokens = [], 0, 0
    if not use_tool:
        written = write(source, b"", ())
        steps, answer = parse_plan(written.decode("utf-8", "replace"))
        meta = {"plan": written.decode("utf-8", "replace"), "tool": False}
        if answer is None:
            return ExpertAnswer("", ok=False, model_calls=1, tokens=len(written) + 1,
                                error="the model wrote no ANSWER line", meta=meta)
        return ExpertAnswer(answer, value=_number(answer), model_calls=1, tokens=len(written) + 1, meta=meta)
    calc = calc or get_tool("calc")
    for _ in range(MAX_CALLS + 1):
        out = write(source, written, (ARROW, ANSWER))
        model_calls, tokens = model_calls + 1, tokens + len(out) + 1
        written += out
        last = written.decode("utf-8", "replace").rsplit("\n", 1)[-1].strip()
        m = CALL_RE.match(last)
        if m is None:  # stopped at ANSWER, at the end token or at the budget: the plan is done
            break
        t0 = time.perf_counter()
        r = calc.call({"expression": m["expr"]})
        calls.append(ToolCall("calc", {"expression": m["expr"]}, r.ok, r.value, r.error, time.perf_counter() - t0))
        if not r.ok:
            return _failed(written, calls, model_calls, tokens, f"the calculator refused {m['expr']!r}: {r.error}")
        written += ARROW + fmt_number(r.value).encode()
        if len(calls) > MAX_CALLS:
            return _failed(written, calls, model_calls, tokens, f"the plan made more than {MAX_CALLS} calls")
    if not calls:
        return _failed(written, calls, model_calls, tokens, "the plan made no calculator call")
    value = calls[-1].value
    return ExpertAnswer(fmt_number(value), value=value, tool_calls=calls, model_calls=model_calls, tokens=tokens,
                        meta={"plan": written.decode("utf-8", "replace"), "tool": True})


def _failed(written: bytes, calls, model_calls: int, tokens: int, error: str) -> ExpertAnswer:
    return ExpertAnswer("", ok=False, tool_calls=calls, model_calls=model_calls, tokens=tokens, error=error,
                        meta={"plan": written.decode("utf-8", "replace"), "tool": True})


def _number(text: str):
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return None


class ReasonMini:
    name = "reason-mini"
    skills = ("math",)
    tools = ("calc",)
    contract = {"input": "an arithmetic or unit word problem in English",
                "output": {"type": "number", "description": "the answer; tool_calls hold the calculator plan"}}

    def __init__(self, model, use_tool: bool = True, budget: int = 120, write=None):
        self.model, self.use_tool, self.budget = model, use_tool, budget
        self.sample_retries = write is None  # a given writer (tests) is used as it is on every attempt
        self.write = write or model_writer(model, budget)
        self.calc = get_tool("calc")

    def answer(self, query: Query) -> ExpertAnswer:
        if not re.search(r"\d", query.text):  # a plan may only use the question's numbers, and it has none
            return ExpertAnswer("", ok=False, abstained=True,
                                error="the question holds no numbers (in digits) to plan a calculation with")
        write = self.write
        if query.attempt and self.sample_retries:
            write = model_writer(self.model, self.budget, RETRY_TEMPERATURE, seed=query.attempt)
        return solve(write, query.text, self.use_tool, self.calc)


def evaluate_reason_mini(model=None, profile: str = "smoke", n: int | None = None, seed: int = 0,
                         problems=None) -> dict:
    """Exact match on held-out-template problems, with the calculator and without it (the model's own numbers);
    per family too. `model` defaults to the cached expert of the profile."""
    if model is None:
        from neuro_lib.runtime.experts import cached_model
        model = cached_model("reason-mini", profile)[0]
    s = sizes(profile)
    problems = problems or make_problems(n or s["n_eval"], seed=seed + 7, split="heldout")
    out = {"n": len(problems), "profile": profile, "steps": s["steps"], "seed": seed}
    write = model_writer(model, s["budget"])
    for mode, use_tool in (("with_tool", True), ("without_tool", False)):
        right, fam, calls, toks = [], {}, 0, 0
        with Progress(len(problems), desc=f"reason-mini {mode}", unit="problem") as bar:
            for p in problems:
                a = solve(write, p.text, use_tool)
                ok = a.ok and a.text == p.answer
                right.append(ok)
                fam.setdefault(p.family, []).append(ok)
                calls, toks = calls + a.model_calls, toks + a.tokens
                bar.update()
        out[mode] = {"exact_match": sum(right) / len(right),
                     "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())},
                     "model_calls_per_problem": calls / len(problems), "tokens_per_problem": toks / len(problems)}
    return out
