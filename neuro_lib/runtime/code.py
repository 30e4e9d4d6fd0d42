"""Code-mini: a small programming task -> a Python program -> its output, run in the sandbox.

A byte-level Aeron (the profile's kind; train/seq2seq.py) is trained on data/word_problems.py's code tasks
("sum of squares of numbers from 3 to 9" -> `print(sum(i*i for i in range(3, 9+1)))`). The answer is what
the program prints when neuro_lib.tools' PythonSandbox runs it: a program that fails (syntax error,
exception, timeout) gives ok=False with the sandbox's reason, never a guess.

    expert = CodeMini(model)                   # or build_experts()["code-mini"]
    a = expert.answer(Query("reverse the string 'abc'"))
    a.text, a.ok, a.meta["program"], a.tool_calls[0].value["exit_code"]
    evaluate_code_mini(get_profile("smoke"))      # executed output == reference, held-out templates

Sizes: profiles.py tasks.code_mini. Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

import time

from neuro_lib.data.word_problems import make_code_tasks
from neuro_lib.infer.engine import generate
from neuro_lib.profiles import Profile
from neuro_lib.progress import Progress
from neuro_lib.runtime.reason import RETRY_TEMPERATURE
from neuro_lib.runtime.types import ExpertAnswer, Query, ToolCall
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.tools import get_tool
from neuro_lib.train.seq2seq import END, expert_config, prompt_for, train_seq2seq

TIMEOUT_S = 2.0  # per program: the tasks print in milliseconds, a loop that does not end is cut here


def train_code_mini(profile: Profile, steps: int | None = None, seed: int = 0, out_dir=None, callback=None):
    s = profile.tasks.code_mini
    train = make_code_tasks(s.n_train, seed=seed, split="train")
    val = make_code_tasks(s.n_val, seed=seed + 1, split="heldout")
    return train_seq2seq(train, val, expert_config(s.kind, profile, s), s, s.kind, seed, steps, out_dir,
                         {"task": "code_mini", "profile": profile.name}, callback)


def write_program(model, text: str, budget: int, temperature: float = 0.0, seed: int | None = None) -> bytes:
    prompt, src = prompt_for(model, text.encode())
    return generate(model, ByteTokenizer(), prompt, max_new_tokens=budget, temperature=temperature, eos_id=END,
                    src=src, seed=seed)


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


def evaluate_code_mini(profile: Profile, model=None, n: int | None = None, seed: int = 0, tasks=None) -> dict:
    """Share of held-out-template tasks whose program, run in the sandbox, prints the reference output; also the
    share that ran at all (exit 0), and per family."""
    if model is None:
        from neuro_lib.runtime.experts import cached_model
        model = cached_model("code-mini", profile)[0]
    s = profile.tasks.code_mini
    tasks = tasks or make_code_tasks(n or s.n_eval, seed=seed + 7, split="heldout")
    expert = CodeMini(model, s.budget)
    right, ran, fam, exact_program = [], [], {}, []
    with Progress(len(tasks), desc="code-mini", unit="task") as bar:
        for t in tasks:
            a = expert.answer(Query(t.text))
            ok = a.ok and a.text == t.expected
            right.append(ok)
            ran.append(a.ok)
            exact_program.append(a.meta["program"] == t.program)
            fam.setdefault(t.family, []).append(ok)
            bar.update()
    n = len(tasks)
    return {"n": n, "profile": profile, "steps": s.steps, "seed": seed, "accuracy": sum(right) / n,
            "ran_ok": sum(ran) / n, "program_exact": sum(exact_program) / n,
            "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())}}
