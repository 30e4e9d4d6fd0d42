"""Code-mini: a small programming task -> a Python program -> its output, run in the sandbox: the family base
fine-tuned on the "code" task (runtime/experts/; data/word_problems.py's code tasks, e.g. "sum of squares of
numbers from 3 to 9" -> `print(sum(i*i for i in range(3, 9+1)))`). The answer is what the program prints when
neuro_lib.tools' PythonSandbox runs it: a program that fails (syntax error, exception, timeout) gives ok=False
with the sandbox's reason, never a guess.

    expert = CodeMini(model)                   # or build_experts()["code-mini"]
    a = expert.answer(Query("reverse the string 'abc'"))
    a.text, a.ok, a.meta["program"], a.tool_calls[0].value["exit_code"]

Held-out evaluation: bench/expert_eval.py. Sizes: profiles.py tasks.code_mini (decode budget).
Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

import time

from neuro_lib.data.sft import MARK, prompt_ids
from neuro_lib.infer.engine import generate
from neuro_lib.runtime.experts.reason import RETRY_TEMPERATURE
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tools import get_tool

TIMEOUT_S = 2.0  # per program: the tasks print in milliseconds, a loop that does not end is cut here


def write_program(model, text: str, budget: int, temperature: float = 0.0, seed: int | None = None) -> bytes:
    return generate(model, ByteTokenizer(), prompt_ids(text.encode()), max_new_tokens=budget, temperature=temperature,
                    eos_id=MARK, seed=seed)


def run_program(program: str, sandbox=None) -> tuple[ExpertAnswer, dict]:
    """Run `program` in the sandbox -> (answer: its stripped stdout, ok = exit 0; the sandbox's value dict)."""
    sandbox = sandbox or get_tool("python")
    t0 = time.perf_counter()
    r = sandbox.call({"code": program, "timeout_s": TIMEOUT_S})
    call = ToolCall("python", {"code": program}, r.ok, r.value, r.error, time.perf_counter() - t0)
    value = r.value or {}
    out = value.get("stdout", "").strip()
    error = None if r.ok else f"the program failed: {r.error}"
    if r.ok and not out:
        error = "the program printed nothing"
    return ExpertAnswer(out, ok=error is None, value=out if error is None else None, tool_calls=[call], error=error,
                        meta={"program": program, "exit_code": value.get("exit_code"),
                              "stderr": value.get("stderr", "")[-500:]}), value


class CodeMini:
    name = "code-mini"
    skills = ("code",)
    tools = ("python",)
    contract = {"input": "a small programming task in English",
                "output": {"type": "string", "description": "the printed output of the program it wrote"}}

    def __init__(self, model, budget: int = 100, write=None):
        self.model, self.budget = model, budget
        self.sample_retries = write is None  # a given writer (tests) is used as it is on every attempt
        self.write = write or (lambda text: write_program(model, text, budget))
        self.sandbox = get_tool("python")

    def answer(self, query: Query) -> ExpertAnswer:
        if query.attempt and self.sample_retries:  # a retry samples (reason.RETRY_TEMPERATURE), seeded by the attempt
            program = write_program(self.model, query.text, self.budget, RETRY_TEMPERATURE, seed=query.attempt)
        else:
            program = self.write(query.text)
        a, _ = run_program(program.decode("utf-8", "replace"), self.sandbox)
        a.model_calls, a.tokens = 1, len(program) + 1
        return a
