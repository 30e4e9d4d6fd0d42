"""Held-out evaluations of the runtime's model experts (runtime/experts/), outside the runtime: Reason-mini's exact
answers with the calculator (grounded and not) and without it, Code-mini's sandboxed outputs. The problems are the
held-out phrasing templates of a generator variant (data/sft.VARIANTS: "broad", data/broad_problems.py, the
current one; "templated", data/word_problems.py). `neuro bench family` and `neuro bench experts` call these.

    evaluate_reason_mini(get_profile("smoke"), model, n=50)  # {"with_tool": {...}, "grounded": {...}, ...}
    evaluate_code_mini(get_profile("smoke"), model, n=50, variant="templated")   # {"accuracy", "ran_ok", ...}

`model` defaults to the runtime's cached expert of the profile. Sizes: profiles.py tasks.reason_mini,
.code_mini (n_eval, decode budget). Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.data.sft import task_pairs
from neuro_lib.profiles import Profile
from neuro_lib.progress import Progress
from neuro_lib.runtime.experts.code import CodeMini
from neuro_lib.runtime.experts.reason import model_writer, solve
from neuro_lib.runtime.types import Query

REASON_MODES = {"with_tool": (True, False), "grounded": (True, True), "without_tool": (False, False)}


def evaluate_reason_mini(profile: Profile, model=None, n: int | None = None, seed: int = 0,
                         problems=None, variant: str | None = None) -> dict:
    """Exact match on held-out-template problems: with the calculator, with it and the question's numbers only
    (grounded), and without it (the model's own numbers); per family too."""
    if model is None:
        from neuro_lib.runtime.experts import cached_model
        model = cached_model("reason-mini", profile)[0]
    s = profile.tasks.reason_mini
    problems = problems or [p.meta for p in task_pairs("reason", n or s.n_eval, seed + 7, "heldout", variant)]
    out = {"n": len(problems), "profile": profile.name, "seed": seed}
    write = model_writer(model, s.budget)
    for mode, (use_tool, grounded) in REASON_MODES.items():
        right, fam, calls, toks = [], {}, 0, 0
        with Progress(len(problems), desc=f"reason-mini {mode}", unit="problem") as bar:
            for p in problems:
                a = solve(write, p.text, use_tool, grounded=grounded)
                ok = a.ok and a.text == p.answer
                right.append(ok)
                fam.setdefault(p.family, []).append(ok)
                calls, toks = calls + a.model_calls, toks + a.tokens
                bar.update()
        out[mode] = {"exact_match": sum(right) / len(right),
                     "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())},
                     "model_calls_per_problem": calls / len(problems), "tokens_per_problem": toks / len(problems)}
    return out


def evaluate_code_mini(profile: Profile, model=None, n: int | None = None, seed: int = 0, tasks=None,
                       variant: str | None = None) -> dict:
    """Share of held-out-template tasks whose program, run in the sandbox, prints the reference output; also the
    share that ran at all (exit 0), and per family."""
    if model is None:
        from neuro_lib.runtime.experts import cached_model
        model = cached_model("code-mini", profile)[0]
    s = profile.tasks.code_mini
    tasks = tasks or [p.meta for p in task_pairs("code", n or s.n_eval, seed + 7, "heldout", variant)]
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
    return {"n": n, "profile": profile.name, "seed": seed, "accuracy": sum(right) / n,
            "ran_ok": sum(ran) / n, "program_exact": sum(exact_program) / n,
            "per_family": {k: sum(v) / len(v) for k, v in sorted(fam.items())}}
