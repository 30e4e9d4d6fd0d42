"""The runtime's shared vocabulary (DESIGN.md "Runtime"): what flows between the router, the
experts, the judge, the memory and the graph engine, as typed dataclasses.

    query = Query("what is 17 * 23 + 4?")
    answer = expert.answer(query)              # ExpertAnswer: text, value, tool calls, citations, costs
    verdict = judge(query, answer)             # Verdict: passed, score, method
    result = RuntimeEngine(...).run(query.text) # Result: answer, route, trace, timings

Skills are the router's labels; an expert declares the skills it serves, the tools it may call and
its input/output contract. Tests: tests/test_runtime_*.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

SKILLS = ("math", "json", "code", "retrieval", "chat")  # the router's multi-label vocabulary
PATHS = ("fast", "slow")                                  # fast: one expert, no plan/judge; slow: plan, tools, judge
# what a Result's answer is worth: verified (a real check passed on every part: recomputed, re-run, schema and
# grounding, retrieval support), unverified (shown, but no check could decide: chat, no check on the path),
# abstained (the system declines: an expert on purpose, or a check rejected the answer), failed (no answer)
STATUSES = ("verified", "unverified", "abstained", "failed")
EXIT_CODES = {"verified": 0, "failed": 1, "unverified": 3, "abstained": 3}  # `neuro run`'s exit status (2: bad input)


@dataclass
class Query:
    text: str
    wants_json: bool = False
    schema_id: str | None = None
    context: list[dict] = field(default_factory=list)  # memory: recent turns and recalled facts ({"role", "text"})
    attempt: int = 0               # 0: the first try; n: the graph's n-th retry (an expert may sample differently)


@dataclass
class ToolCall:
    tool: str
    args: dict
    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class ExpertAnswer:
    text: str                                   # the answer as shown to the user
    ok: bool = True                             # False: the expert could not finish (tool error, no parse)
    value: Any = None                           # the typed answer where there is one (number, JSON document)
    tool_calls: list[ToolCall] = field(default_factory=list)
    citations: list[dict] = field(default_factory=list)  # retrieval: passage id, byte span, source
    model_calls: int = 0                        # forward passes of a generation loop count as one call
    tokens: int = 0                             # tokens generated
    error: str | None = None
    meta: dict = field(default_factory=dict)    # expert-specific details (the plan, the program, the schema id)
    abstained: bool = False                     # with ok False: the expert declined on purpose (error says why)


@runtime_checkable
class Expert(Protocol):
    name: str
    skills: tuple[str, ...]        # subset of SKILLS
    tools: tuple[str, ...]         # names in neuro_lib.tools.TOOLS it may call
    contract: dict                 # {"input": str, "output": "text" | JSON Schema}

    def answer(self, query: Query) -> ExpertAnswer: ...


@dataclass
class Route:
    path: str                      # one of PATHS
    skills: list[str]              # predicted labels, most likely first
    complexity: float              # the score compared with the fast/slow threshold
    scores: dict[str, float] = field(default_factory=dict)  # per-skill probability
    router: str = ""               # which router decided ("classifier", "keywords", "random", "fixed")


@dataclass
class Verdict:
    passed: bool
    score: float                   # in [0, 1]
    method: str                    # "schema" | "executed" | "recomputed" | "model" | "none"
    reason: str = ""


@dataclass
class TraceStep:
    step: int
    node: str                      # node id in the graph
    kind: str                      # router | expert | tool | judge | memory | combine
    input: Any
    output: Any
    seconds: float
    tokens: int = 0
    model_calls: int = 0
    ok: bool = True
    note: str = ""                 # "retry 2/3", "loop cut at budget", an error sentence


@dataclass
class Result:
    query: str
    answer: str
    ok: bool
    route: Route | None
    trace: list[TraceStep] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # total_s and per node kind
    value: Any = None
    citations: list[dict] = field(default_factory=list)
    error: str | None = None       # one sentence when ok is False: why it is not verified, or why it failed
    status: str = "failed"         # one of STATUSES; ok is True exactly when status is "verified"
    verdicts: dict[str, dict] = field(default_factory=dict)  # skill -> the check's Verdict (asdict) on the answer

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; known: {', '.join(STATUSES)}")
        if self.ok != (self.status == "verified"):
            raise ValueError(f"a Result with status {self.status!r} cannot have ok={self.ok}")

    def to_dict(self) -> dict:
        return asdict(self)

    def explain(self) -> list[str]:
        """Lines for --trace / --trace-out: each expert's answer (its program or plan when it has one) per attempt,
        each task's verdict, and the status with its reason."""
        lines = []
        for s in self.trace:
            if s.kind != "expert" or not isinstance(s.output, list):
                continue
            for o in s.output:
                meta = o.get("meta") or {}
                said = o["text"] if o.get("ok", True) else f"declined: {o.get('error')}"
                lines.append(f"step {s.step} {o['expert']} ({o['skill']}): {' '.join(str(said).split())[:200]}")
                for key in ("program", "plan"):
                    if meta.get(key):
                        lines.append(f"    {key}: " + " | ".join(str(meta[key]).strip().splitlines())[:300])
        for skill, v in self.verdicts.items():
            lines.append(f"verdict {skill}: {'passed' if v['passed'] else 'not passed'} by {v['method']} "
                         f"(score {v['score']:.2f}): {v['reason']}")
        lines.append(f"status: {self.status}" + (f" ({self.error})" if self.error else ""))
        return lines
