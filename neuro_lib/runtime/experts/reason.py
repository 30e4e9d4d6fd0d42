"""Reason-mini: a word problem -> a plan of calculator calls -> the answer (seeds/neurotiny.md's reasoning
expert, TinyLLM's tool-using specialist): the family base fine-tuned on the "reason" task (runtime/experts/).

The model writes

    CALL calc(45*3) -> 135
    CALL calc(135*1000) -> 135000
    ANSWER 135000

in ONE decode. With the tool, an infer/grounding.ToolInjector watches the text: when a line reaches " -> " it runs
the expression through the calculator (neuro_lib.tools Calculator) and injects the true result as forced tokens,
fed on the same cache (no re-prefill, no second generate); the model goes on from there (a later call copies it,
like "135*1000"), and when it starts "ANSWER" the answer is the last tool result. With `grounded` (the default),
infer/grounding.NumbersFrom keeps every number inside calc(...) to the question's numbers, the numbers its words
bring (data/word_problems.plan_constants: the factors of units it names, 100 for "15%", 5 for "five") and earlier
results. Without the tool the model writes every result and the answer itself: the same weights, so the difference
is what the calculator buys.

    expert = ReasonMini(model)                        # or build_experts()["reason-mini"]
    a = expert.answer(Query("Convert 7 hours to minutes."))
    a.value, a.tool_calls, a.model_calls, a.meta["plan"]

Held-out evaluation: bench/expert_eval.py. Sizes: profiles.py tasks.reason_mini (decode budget).
Tests: tests/test_runtime_experts.py, tests/test_grounding.py.
"""
from __future__ import annotations

import re
import time

from neuro_lib.data.sft import MARK, prompt_ids
from neuro_lib.data.word_problems import fmt_number, plan_constants
from neuro_lib.infer.engine import generate
from neuro_lib.infer.grounding import NumbersFrom, ToolInjector, chain, numbers_in
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tools import get_tool

PLAN_RE = re.compile(r"^CALL calc\((?P<expr>.*)\) -> (?P<value>\S+)$")   # a call with its (claimed) result
ANSWER_RE = re.compile(r"^ANSWER (?P<value>\S+)$")
CALL_TRIGGER = re.compile(rb"(?:^|\n)CALL calc\((.*)\) -> $")           # an open call, waiting for its result
ARROW, ANSWER = b" -> ", b"\nANSWER"
MAX_CALLS = 6  # a plan longer than this is cut: the expert answers ok=False
# a retry (Query.attempt > 0) samples at this temperature, seeded by the attempt: a greedy expert would only
# repeat the answer the judge just failed
RETRY_TEMPERATURE = 0.7


def model_writer(model, budget: int, temperature: float = 0.0, seed: int | None = None):
    """write(source, stop, processor) -> the model's plan for `source` (bytes; greedy unless a temperature is
    given), cut before a stop; `processor` (or None) rides along in the one decode."""
    tok = ByteTokenizer()

    def write(source: bytes, stop: tuple, processor=None) -> bytes:
        return generate(model, tok, prompt_ids(source), max_new_tokens=budget, temperature=temperature, stop=stop,
                        eos_id=MARK, seed=seed, processor=processor)

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


def allowed_numbers(question: str) -> set[bytes]:
    """Numbers a plan may use before any call: the question's own and those its words bring (plan_constants)."""
    return numbers_in(question.encode()) | {f.encode() for f in plan_constants(question)}


def calc_injector(calc, allowed: set[bytes] | None = None) -> ToolInjector:
    """The calculator as a tool used while decoding: each result is injected (and, when `allowed` is given,
    becomes a number later calls may use)."""

    def run(m):
        expr = m.group(1).decode("utf-8", "replace")
        t0 = time.perf_counter()
        r = calc.call({"expression": expr})
        call = ToolCall("calc", {"expression": expr}, r.ok, r.value, r.error, time.perf_counter() - t0)
        if not r.ok:
            return False, str(r.error).encode(), call
        result = fmt_number(r.value).encode()
        if allowed is not None:
            allowed.add(result)
        return True, result, call

    return ToolInjector(CALL_TRIGGER, run, eos_id=MARK, max_calls=MAX_CALLS, name="calculator")


def solve(write, text: str, use_tool: bool = True, calc=None, grounded: bool = False) -> ExpertAnswer:
    """One decode of the plan: `write` is model_writer(...) or any function of the same form (tests script one)."""
    source = text.encode()
    if not use_tool:
        written = write(source, (), None)
        steps, answer = parse_plan(written.decode("utf-8", "replace"))
        meta = {"plan": written.decode("utf-8", "replace"), "tool": False}
        if answer is None:
            return ExpertAnswer("", ok=False, model_calls=1, tokens=len(written) + 1,
                                error="the model wrote no ANSWER line", meta=meta)
        return ExpertAnswer(answer, value=_number(answer), model_calls=1, tokens=len(written) + 1, meta=meta)
    allowed = allowed_numbers(text) if grounded else None
    tool = calc_injector(calc or get_tool("calc"), allowed)
    numbers = NumbersFrom(allowed) if grounded else None
    written = write(source, (ANSWER,), chain(tool, numbers))
    calls, tokens = tool.calls, len(written) + 1
    meta = {"plan": written.decode("utf-8", "replace"), "tool": True, "grounded": grounded}
    error = tool.error or (None if calls else "the plan made no calculator call")
    if error:
        return ExpertAnswer("", ok=False, tool_calls=calls, model_calls=1, tokens=tokens, error=error, meta=meta)
    value = calls[-1].value
    return ExpertAnswer(fmt_number(value), value=value, tool_calls=calls, model_calls=1, tokens=tokens, meta=meta)


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

    def __init__(self, model, use_tool: bool = True, budget: int = 120, write=None, grounded: bool = True):
        self.model, self.use_tool, self.budget, self.grounded = model, use_tool, budget, grounded
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
        return solve(write, query.text, self.use_tool, self.calc, self.grounded)
