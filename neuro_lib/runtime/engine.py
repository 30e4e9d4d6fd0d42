"""RuntimeEngine: runs a query through a graph (graph.py) of router, experts, tools, judge, memory and
combine nodes, and returns a Result with the answer, the route, a trace step per node and timings
(the NeuroTiny seed's `RuntimeEngine.run(query, wants_json, schema_id)`, TinyLLM's executor).

    engine = RuntimeEngine(graph="default", experts=experts, router=KeywordRouter(), judge=judge,
                           memory=Memory("data/cache/runtime/memory.sqlite"))
    r = engine.run("what is 17 * 23 + 4?")
    r.ok, r.answer, r.route.path, [(s.node, s.seconds) for s in r.trace], r.timings["total_s"]
    RuntimeEngine.from_profile(get_profile("smoke"))   # the trained tiny experts (experts.py), keyword router, judge

What a run does, step by step: the graph's entry node runs, then the first outgoing edge whose condition
holds (graph.py) names the next node, until an exit. Expert nodes answer one task per skill of the route
(`skills: all`: a compound query such as code + math goes to several experts, and a combine node joins
their answers) or the top skill only; on re-entry (a retry after the judge failed an answer) only the
failed tasks are asked again (`Query.attempt` counts the retries, the judge's reason is added to the
context), and the judge keeps each task's best-scored answer. A retry whose answers equal the last
attempt's is a loop without progress: the node takes no further retries (deterministic experts that
ignore the feedback would only repeat themselves). A decompose node cuts a compound query into ordered
sub-tasks (runtime/decompose.py), routes each to its expert with the earlier step's result written in, judges
each, and composes the answers (a trace step per sub-task, named NODE.1, NODE.2, ...); an expand node solves
the tasks the judge still rejects again (runtime/expansion.py: recursive steps or best-of-N). The
conversation window (short-term memory) is put into every query's
context and the turn is added to it after the run; memory nodes recall from and write to long-term memory.

A trace step's `ok` says whether its node did its work (an expert that raised, a tool error: not ok); an
expert that answered but could not finish (ExpertAnswer.ok False) is shown in the step's output, and the
run's Result is then failed with the expert's error. Nothing escapes `run` as an exception: bad input (empty query, unknown schema id), an expert or judge
that raises, a tool error mid-graph, no edge to follow, a spent retry budget, or the step budget cut
(loops), the wall-clock budget (`wall_s`: a run that takes longer, say a ring of sandboxed tool calls, is cut
after the step in progress, and a tool that takes a timeout gets no more than the time left) all end in a
Result with ok=False, a one-sentence error and the trace so far. The graph is loaded
and checked once, in the constructor; a run only walks it.

Every answer is checked (issue 21, "honest answers") by a node of the graph: the slow path's judge node (the
engine's judge, with retries) or the fast path's verify node (the cheap rule verifier, judge.py's `verify`: the
calculator plan recomputed, the program re-run in the sandbox, the JSON validated and grounded in the query,
the retrieved passage's support; no model call). A graph may use either or neither; an answer no node checked
is not trusted. Result.status is then `verified` (every task's answer passed a real check, method not "none"),
`unverified` (shown, but no check could decide: chat, a judge node with no judge, a graph without a check),
`abstained` (the system declines: the expert did on purpose, ExpertAnswer.abstained, e.g. nothing relevant
retrieved, or a check rejected the answer: a plan whose numbers are not the question's, a JSON value not in the
input, a program that prints something else; Result.answer keeps the rejected text for the trace) or `failed`;
Result.ok is True exactly when it is verified.

Tests: tests/test_runtime_engine.py.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from neuro_lib.errors import NeuroError
from neuro_lib.profiles import Profile
from neuro_lib.runtime.graph import Graph, Node, load_graph
from neuro_lib.runtime.memory import Memory
from neuro_lib.runtime.router import KeywordRouter, Router
from neuro_lib.runtime.types import (Expert, ExpertAnswer, Query, Result, Route, ToolCall, TraceStep,
                                     Verdict)

# which expert serves each skill unless the engine is told otherwise (experts.py builds these names)
SKILL_EXPERTS = {"math": "reason-mini", "json": "struct-mini", "code": "code-mini", "retrieval": "retrieval",
                 "chat": "general"}
Judge = Callable[[Query, ExpertAnswer, str], Verdict]
MAX_QUERY_CHARS = 100_000  # a query is a question, not a document; longer ones are refused in one sentence
DEFAULT_WALL_S = 300.0     # wall-clock budget of one run; a graph or the settings file may set another


def sentence(text: Any) -> str:
    """One line: an error message with its whitespace (newlines, tracebacks' indents) collapsed."""
    return " ".join(str(text).split()) or "unknown error"


def input_error(q: Query, schemas_ok=frozenset()) -> str | None:
    """Why the runtime refuses `q` before any expert runs (one sentence), or None. `neuro run` calls it before
    the experts are built, the engine at the start of every run; ids in `schemas_ok` were read and checked."""
    text = q.text.strip()
    if not text:
        return "the query is empty"
    if len(text) > MAX_QUERY_CHARS:
        return f"the query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}"
    if q.schema_id is None:
        return "a JSON answer needs a schema id (schema_id=..., or --schema ID)" if q.wants_json else None
    if q.schema_id not in schemas_ok:
        from neuro_lib.structured.schemas import load_schema

        try:
            load_schema(q.schema_id)
        except NeuroError as e:
            return str(e)
    return None


@dataclass
class _Run:
    """Everything one run knows so far; conditions read `facts()`."""
    query: Query
    route: Route | None = None
    answers: dict[str, ExpertAnswer] = field(default_factory=dict)   # task (skill) -> best answer so far
    verdicts: dict[str, Verdict] = field(default_factory=dict)       # task -> its answer's verdict
    best: dict[str, tuple[ExpertAnswer, Verdict]] = field(default_factory=dict)  # task -> best judged answer
    answer: ExpertAnswer | None = None                               # what an exit would return now
    memory_hit: bool = False
    visits: Counter = field(default_factory=Counter)
    last: dict[str, str] = field(default_factory=dict)               # task -> its last attempt's text
    stalled: set[str] = field(default_factory=set)                   # nodes whose retry changed nothing
    note: str = ""                                                   # a node's remark for its trace step
    deadline: float = float("inf")                                   # time.monotonic() when the run is cut
    multistep: bool = False                                          # the splitter cuts the query into steps
    decomposed: bool = False                                         # a decompose node solved it step by step
    substeps: list = field(default_factory=list)                     # trace steps of a node's sub-tasks

    def facts(self, ok: bool) -> dict:
        skills = self.route.skills if self.route else []
        return {"path": self.route.path if self.route else "fast", "skill": skills[0] if skills else None,
                "skills": skills, "compound": len(skills) > 1, "multistep": self.multistep,
                "decomposed": self.decomposed, "wants_json": self.query.wants_json,
                "judge_passed": bool(self.verdicts) and all(v.passed for v in self.verdicts.values()),
                "memory_hit": self.memory_hit, "ok": ok, "failed": not ok}


class _StepFailed(Exception):
    """A node could not do its work (an expert raised, a tool returned an error): the step fails."""


def join_answers(answers: dict[str, ExpertAnswer]) -> ExpertAnswer:
    """Several tasks' answers as one: texts labelled by skill, values by skill, citations and costs summed."""
    if len(answers) == 1:
        return next(iter(answers.values()))
    parts = list(answers.items())
    errors = [f"{s}: {a.error}" for s, a in parts if not a.ok]
    return ExpertAnswer(text="\n".join(f"[{s}] {a.text}" for s, a in parts), ok=not errors,
                        value={s: a.value for s, a in parts}, tool_calls=[c for _, a in parts for c in a.tool_calls],
                        citations=[c for _, a in parts for c in a.citations],
                        model_calls=sum(a.model_calls for _, a in parts), tokens=sum(a.tokens for _, a in parts),
                        error="; ".join(errors) or None, meta={"combined": [s for s, _ in parts]})


class RuntimeEngine:
    def __init__(self, graph: str | Graph = "default", experts: dict[str, Expert] | None = None,
                 router: Router | None = None, judge: Judge | None = None, memory: Memory | None = None,
                 skill_experts: dict[str, str] | None = None, fallback_expert: str = "general",
                 step_budget: int | None = None, wall_s: float | None = None, verifier: Judge | None = None):
        self.graph = graph if isinstance(graph, Graph) else load_graph(graph)
        self.verifier = verifier  # verify nodes' check; None: judge.py's rule verifier (imported on first use)
        self.experts = dict(experts or {})
        self.router = router or KeywordRouter()
        self.judge = judge
        self.memory = memory
        self.skill_experts = {**SKILL_EXPERTS, **(skill_experts or {})}
        self.fallback_expert = fallback_expert
        self.step_budget = step_budget or self.graph.step_budget
        # the step budget bounds the number of steps, not their length (a ring of tool nodes may legally
        # run the sandbox thousands of times): a run is also cut at this many seconds
        self.wall_s = float(wall_s or self.graph.wall_s or DEFAULT_WALL_S)
        self._schemas_seen: set[str] = set()
        self._check_wiring()

    @classmethod
    def from_profile(cls, profile: Profile, graph: str | Graph = "default", memory: Memory | None = None,
                     router: Router | None = None, extra_experts: dict[str, Expert] | None = None,
                     **kwargs) -> "RuntimeEngine":
        """The tiny experts of `profile` (trained once, cached under data/cache/runtime/) plus `extra_experts`
        (an Ollama model, say), the judge, the keyword router unless another is given."""
        from neuro_lib.runtime.experts import build_experts
        from neuro_lib.runtime.judge import judge

        graph = graph if isinstance(graph, Graph) else load_graph(graph)  # a bad graph fails before any training
        return cls(graph, {**build_experts(profile), **(extra_experts or {})}, router, judge, memory, **kwargs)

    def _check_wiring(self) -> None:
        """Every expert a node names exists; the skills' experts exist or fall back to one that does."""
        for node in self.graph.nodes.values():
            name = node.params.get("expert")
            if node.kind == "expert" and name is not None and name not in self.experts:
                raise NeuroError(f"graph {self.graph.name!r} node {node.id!r} names expert {name!r}, which this "
                                 f"engine does not have (experts: {', '.join(sorted(self.experts)) or 'none'})")
        needs_skills = any(n.kind == "expert" and "expert" not in n.params for n in self.graph.nodes.values())
        if needs_skills and not self.experts:
            raise NeuroError("the runtime engine has no experts, but its graph routes queries to them")

    def expert_for(self, skill: str) -> str:
        name = self.skill_experts.get(skill)
        if name in self.experts:
            return name
        if self.fallback_expert in self.experts:
            return self.fallback_expert
        raise _StepFailed(f"no expert serves skill {skill!r} and there is no fallback expert "
                          f"{self.fallback_expert!r}")

    # -- the run -------------------------------------------------------------------------------------------
    def run(self, query: str | Query, wants_json: bool = False, schema_id: str | None = None) -> Result:
        t0 = time.perf_counter()
        q = query if isinstance(query, Query) else Query(str(query), wants_json, schema_id)
        q = replace(q, text=q.text.strip(), wants_json=q.wants_json or wants_json,
                    schema_id=q.schema_id or schema_id, context=list(q.context))
        if self.memory is not None:
            q.context = self.memory.short.turns() + q.context
        run = _Run(q, deadline=time.monotonic() + self.wall_s)
        trace: list[TraceStep] = []
        error = self._check_input(q)
        refused = error is not None  # refused input (empty, too long, unknown schema) is not remembered
        if error is None:
            error = self._walk(run, trace)
        answer = run.answer
        if error is not None and run.best:  # cut short: the best judged answers, not an unjudged last attempt
            answer = join_answers({**run.answers, **{s: a for s, (a, _) in run.best.items()}})
        status, error = self._status(run, answer, error)
        if self.memory is not None and not refused:
            self.memory.short.add("user", q.text)
            if answer is not None:
                self.memory.short.add("assistant", answer.text)
        timings = {"total_s": time.perf_counter() - t0}
        for s in trace:
            timings[f"{s.kind}_s"] = timings.get(f"{s.kind}_s", 0.0) + s.seconds
        ok = status == "verified"
        return Result(query=q.text, answer=answer.text if answer else "", ok=ok, route=run.route, trace=trace,
                      timings=timings, value=answer.value if answer else None,
                      citations=list(answer.citations) if answer else [], error=None if ok else sentence(error),
                      status=status, verdicts={s: asdict(v) for s, v in run.verdicts.items()})

    def _status(self, run: _Run, answer: ExpertAnswer | None, error: str | None) -> tuple[str, str | None]:
        """(status, error sentence) from the run's end and the verdicts its judge/verify nodes gave: verified only
        when a real check (method not "none") passed on every task's answer; an answer no node checked (a graph
        without a judge or verify node) is unverified. The engine checks nothing itself here: the graph decides."""
        if error is not None:  # cut short after the judge rejected every retry: declined, with the reason
            rejected = run.best and not all(v.passed for _, v in run.best.values())
            return ("abstained" if rejected and answer is not None and answer.ok else "failed"), error
        if answer is None:
            return "failed", "the run ended without an answer"
        if not answer.ok:
            parts = [a for a in run.answers.values() if not a.ok] or [answer]
            why = sentence(answer.error or "the expert could not answer")
            return ("abstained" if all(a.abstained for a in parts) else "failed"), why
        if run.memory_hit:  # long-term memory returns only results that passed a real check when written
            return "verified", None
        if not run.answers:  # the answer came from a tool node, not an expert: no task to check it against
            return "unverified", "nothing checked the answer (no expert task to verify it against)"
        verdicts = {s: run.verdicts.get(s) or Verdict(False, 0.0, "none", "the graph has no judge or verify node "
                                                      "on this path") for s in run.answers}
        unchecked = {s: v for s, v in verdicts.items() if not v.passed or v.method == "none"}
        if not unchecked:
            return "verified", None
        reasons = "; ".join(f"{s}: {v.reason or v.method}" for s, v in unchecked.items())
        if any(not v.passed and v.method != "none" for v in unchecked.values()):
            # a check decided against the answer (numbers not the question's, a value not in the input, a program
            # that prints something else, no supporting passage): the system declines rather than show it as an
            # answer; Result.answer keeps it for the trace
            return "abstained", "the check rejected the answer: " + reasons
        return "unverified", "nothing could check the answer: " + reasons

    def _check_input(self, q: Query) -> str | None:
        error = input_error(q, self._schemas_seen)
        if error is None and q.schema_id is not None:
            self._schemas_seen.add(q.schema_id)  # read and meta-checked once per engine, not per run
        return error

    def _walk(self, run: _Run, trace: list[TraceStep]) -> str | None:
        """Walk the graph from the entry; the error sentence that ended the run, or None at an exit."""
        g, node = self.graph, self.graph.nodes[self.graph.entry]
        while True:
            if len(trace) >= self.step_budget:
                looping = run.visits.most_common(1)[0]
                trace[-1].note = (trace[-1].note + "; " if trace[-1].note else "") + "loop cut at budget"
                return (f"the run was cut at its step budget of {self.step_budget} steps (node {looping[0]!r} "
                        f"ran {looping[1]} times)")
            run.visits[node.id] += 1
            step, failure = self._step(node, run, len(trace) + 1)
            trace.append(step)
            if run.substeps:  # a decompose / expand node's sub-tasks, each its own step (their time not counted twice)
                step.seconds = max(step.seconds - sum(s.seconds for s in run.substeps), 0.0)
                trace += [replace(s, step=len(trace) + i) for i, s in enumerate(run.substeps, 1)]
                run.substeps = []
            if node.kind == "exit":
                return failure
            if time.monotonic() >= run.deadline:  # also when the step failed because its tool got only the rest
                step.note = (step.note + "; " if step.note else "") + "cut at wall-clock budget"
                return (f"the run was cut at its wall-clock budget of {self.wall_s:g} s after {len(trace)} steps "
                        f"(node {run.visits.most_common(1)[0][0]!r} ran most often)")
            facts = run.facts(step.ok)
            spent = None
            for edge in g.out_edges[node.id]:
                if not step.ok and not edge.on_failure or not edge.test(facts):
                    continue
                target = g.nodes[edge.target]
                if run.visits[target.id] >= target.max_visits or target.id in run.stalled:
                    spent = spent or target
                    continue
                node = target
                break
            else:
                if failure is not None:
                    return failure
                if spent is not None:
                    why = ("made no progress on its last retry" if spent.id in run.stalled
                           else f"spent its retry budget of {spent.retries}")
                    return f"node {spent.id!r} {why} and no other edge leads on from {node.id!r}"
                shown = {k: v for k, v in facts.items() if k in ("path", "skill", "judge_passed", "memory_hit")}
                return f"no edge out of node {node.id!r} matches ({', '.join(f'{k}={v}' for k, v in shown.items())})"

    def _step(self, node: Node, run: _Run, number: int) -> tuple[TraceStep, str | None]:
        """Run one node: its trace step, and the error sentence when it failed."""
        n = run.visits[node.id]
        budget = f"retry {n - 1}/{node.retries}" if n > 1 and node.retries is not None else ""
        t0 = time.perf_counter()
        error = None
        try:
            inp, out, tokens, calls = getattr(self, f"_do_{node.kind}")(node, run)
        except _StepFailed as e:
            inp, out, tokens, calls, error = run.query.text, None, 0, 0, sentence(e)
        except Exception as e:  # noqa: BLE001 - a run never raises: the failure is a step of the trace
            inp, out, tokens, calls = run.query.text, None, 0, 0
            error = sentence(f"node {node.id!r} ({node.kind}) failed: {type(e).__name__}: {e}")
        note = "; ".join(x for x in (budget, run.note, error) if x)
        run.note = ""
        return TraceStep(number, node.id, node.kind, inp, out, time.perf_counter() - t0, tokens, calls,
                         error is None, note), error

    # -- one method per node kind: (input, output, tokens, model calls) for the trace ----------------------
    def _do_router(self, node: Node, run: _Run):
        from neuro_lib.runtime.decompose import split_query

        run.route = self.router.route(run.query)
        run.multistep = len(split_query(run.query.text)) > 1
        return run.query.text, asdict(run.route), 0, 0

    def _tasks(self, node: Node, run: _Run) -> dict[str, str]:
        skills = run.route.skills if run.route else ["json" if run.query.wants_json else "chat"]
        if node.params.get("skills", "top") == "top" or "expert" in node.params:
            skills = skills[:1]
        tasks: dict[str, str] = {}
        for s in skills:
            name = node.params.get("expert") or self.expert_for(s)
            if name not in tasks.values():  # two skills served by one expert: ask it once
                tasks[s] = name
        return tasks

    def _do_expert(self, node: Node, run: _Run):
        tasks = self._tasks(node, run)
        retry = run.visits[node.id] > 1
        if retry:  # only the tasks the judge failed, told why
            tasks = {s: e for s, e in tasks.items() if s in run.verdicts and not run.verdicts[s].passed} or tasks
        inputs, outputs, tokens, calls, same = [], [], 0, 0, retry
        for skill, name in tasks.items():
            q = run.query
            if retry and skill in run.verdicts:
                why = run.verdicts[skill].reason or "it failed the check"
                q = replace(q, attempt=run.visits[node.id] - 1,
                            context=q.context + [{"role": "judge", "text": f"the previous answer was rejected: {why}"}])
            expert = self.experts[name]
            try:
                ans = expert.answer(q)
            except Exception as e:  # noqa: BLE001 - an expert's crash is this step's failure
                raise _StepFailed(f"expert {name!r} failed on skill {skill}: {type(e).__name__}: {e}") from None
            if not isinstance(ans, ExpertAnswer):
                raise _StepFailed(f"expert {name!r} returned {type(ans).__name__}, not an ExpertAnswer")
            tokens, calls = tokens + ans.tokens, calls + ans.model_calls
            same = same and run.last.get(skill) == ans.text
            run.last[skill] = ans.text
            run.answers[skill] = ans
            run.verdicts.pop(skill, None)  # to be judged; the judge keeps the better of this and the best so far
            inputs.append({"skill": skill, "expert": name, "text": q.text, "context": len(q.context)})
            outputs.append({"skill": skill, "expert": name, "text": ans.text, "ok": ans.ok, "error": ans.error,
                            "tool_calls": [asdict(c) for c in ans.tool_calls], "meta": ans.meta})
        if same:  # a loop that makes no progress: every retried task gave the same answer as before
            run.stalled.add(node.id)
            run.note = "no progress (same answers as the last attempt): no more retries"
        run.answer = join_answers(run.answers)
        return inputs, outputs, tokens, calls

    def _do_judge(self, node: Node, run: _Run):
        if not run.answers:
            raise _StepFailed(f"judge node {node.id!r} has no answer to judge (put an expert node before it)")
        out = {}
        for skill, ans in run.answers.items():
            if skill in run.verdicts:
                continue  # judged already (kept from an earlier attempt)
            if self.judge is None:  # no judge given: the expert's own ok flag decides
                v = Verdict(ans.ok, float(ans.ok), "none", "no judge attached; the expert's ok flag")
            else:
                try:
                    v = self.judge(run.query, ans, skill)
                except Exception as e:  # noqa: BLE001
                    raise _StepFailed(f"the judge failed on skill {skill}: {type(e).__name__}: {e}") from None
            out[skill] = asdict(v)
            best = run.best.get(skill)
            if best is None or (v.passed, v.score) > (best[1].passed, best[1].score):  # ties: the earlier one
                run.best[skill] = (ans, v)
            run.answers[skill], run.verdicts[skill] = run.best[skill]
        run.answer = join_answers(run.answers)
        return [{"skill": s, "text": a.text} for s, a in run.answers.items()], out, 0, 0

    def _do_verify(self, node: Node, run: _Run):
        """The cheap check of each task's answer not yet judged (the fast path's gate): rule checks only, no model
        call and no retry; a crashing check verifies nothing (method "none")."""
        if not run.answers:
            raise _StepFailed(f"verify node {node.id!r} has no answer to check (put an expert node before it)")
        if self.verifier is None:
            from neuro_lib.runtime.judge import verify

            self.verifier = verify
        out = {}
        for skill, ans in run.answers.items():
            if skill in run.verdicts:
                continue
            try:
                v = self.verifier(run.query, ans, skill)
            except Exception as e:  # noqa: BLE001 - a checker that crashes verifies nothing
                v = Verdict(False, 0.0, "none", f"the check failed: {type(e).__name__}: {e}")
            run.verdicts[skill] = v
            out[skill] = asdict(v)
        return [{"skill": s, "text": a.text} for s, a in run.answers.items()], out, 0, 0

    def _do_combine(self, node: Node, run: _Run):
        if not run.answers:
            raise _StepFailed(f"combine node {node.id!r} has no answers to combine")
        if run.decomposed:  # the steps' answers are composed in their order already (decompose.compose)
            return sorted(run.answers), run.answer.text, 0, 0
        if node.params.get("how", "join") == "best":
            skill = max(run.answers, key=lambda s: run.verdicts[s].score if s in run.verdicts else 0.0)
            run.answer = run.answers[skill]
        else:
            run.answer = join_answers(run.answers)
        return sorted(run.answers), run.answer.text, 0, 0

    # -- compound queries and expansion (runtime/decompose.py, runtime/expansion.py) -----------------------------
    def _verdict(self, q: Query, ans: ExpertAnswer, skill: str) -> Verdict:
        if self.judge is None:  # no judge given: the expert's own ok flag decides
            return Verdict(ans.ok, float(ans.ok), "none", "no judge attached; the expert's ok flag")
        try:
            return self.judge(q, ans, skill)
        except Exception as e:  # noqa: BLE001
            raise _StepFailed(f"the judge failed on skill {skill}: {type(e).__name__}: {e}") from None

    def _ask(self, name: str, skill: str, q: Query) -> ExpertAnswer:
        try:
            ans = self.experts[name].answer(q)
        except Exception as e:  # noqa: BLE001 - an expert's crash is this step's failure
            raise _StepFailed(f"expert {name!r} failed on skill {skill}: {type(e).__name__}: {e}") from None
        if not isinstance(ans, ExpertAnswer):
            raise _StepFailed(f"expert {name!r} returned {type(ans).__name__}, not an ExpertAnswer")
        return ans

    def _step_query(self, text: str, run: _Run, done: list) -> tuple[str, Query]:
        """A sub-task's skill (the engine's router on the sub-task alone) and its query: a JSON step reads its
        quoted description under the schema it names (else the run's schema); earlier steps go into the context."""
        from neuro_lib.runtime.decompose import source_text, step_skill
        from neuro_lib.structured.schemas import list_schemas

        context = run.query.context + [{"role": "step", "text": f"step {i} ({s}): {a.text}"}
                                       for i, (s, a) in enumerate(done, 1)]
        skill, schema = step_skill(text, self.router, list_schemas(), run.query.schema_id, context)
        if skill == "json":
            return skill, Query(source_text(text), wants_json=True, schema_id=schema, context=context)
        return skill, Query(text, context=context)

    def _solve_steps(self, node: Node, steps: list, run: _Run, retries: int) -> tuple[list, list]:
        """Each step routed to its expert in order, judged, re-asked up to `retries` times when rejected; a step
        that names an earlier result gets it written in (decompose.hand_off). Stops before a step that needs the
        result of one that could not answer (an independent step still runs). -> ([(skill, answer)], [verdict]); run.substeps gets a trace
        step per sub-task."""
        from neuro_lib.runtime.decompose import hand_off

        done, verdicts = [], []
        for i, step in enumerate(steps, 1):
            t0 = time.perf_counter()
            text, got = step.text, ""
            prev = done[-1][1] if done else None
            if prev is not None and not prev.ok and step.refers:
                break  # this step needs the result the last one could not give
            if prev is not None and (step.refers or isinstance(prev.value, dict)):  # a record hands on its fields
                text = hand_off(step.text, prev.value if isinstance(prev.value, (dict, list)) else prev.text, prev.text)
                got = f"; given step {i - 1}'s result"
            skill, q = self._step_query(text, run, done)
            name = self.expert_for(skill)
            best, last, tries, calls, tokens = None, None, 0, 0, 0
            for attempt in range(1 + retries):
                if attempt and (time.monotonic() >= run.deadline or best[1].passed):
                    break
                qa = q if not attempt else replace(q, attempt=attempt, context=q.context + [
                    {"role": "judge", "text": f"the previous answer was rejected: {best[1].reason or 'it failed'}"}])
                ans = self._ask(name, skill, qa)
                v = self._verdict(qa, ans, skill)
                tries, calls, tokens = tries + 1, calls + ans.model_calls, tokens + ans.tokens
                repeated = best is not None and ans.text == last
                if best is None or (v.passed, v.score) > (best[1].passed, best[1].score):
                    best = (ans, v)
                last = ans.text
                if repeated and not v.passed:
                    break  # the same rejected answer again: more tries would only repeat it
            ans, v = best
            done.append((skill, ans))
            verdicts.append(v)
            run.substeps.append(TraceStep(0, f"{node.id}.{i}", "expert",
                                          {"step": i, "of": len(steps), "text": q.text, "skill": skill, "expert": name,
                                           "schema_id": q.schema_id},
                                          {"text": ans.text, "ok": ans.ok, "error": ans.error, "verdict": asdict(v),
                                           "program": ans.meta.get("program")},
                                          time.perf_counter() - t0, tokens, calls, True,
                                          f"step {i}/{len(steps)}: {skill} -> {name}{got}; "
                                          f"{'passed' if v.passed else 'rejected'}"
                                          + (f" after {tries} tries" if tries > 1 else "")))
            if time.monotonic() >= run.deadline and i < len(steps):
                break
        return done, verdicts

    def _adopt_steps(self, steps: list, done: list, verdicts: list, run: _Run) -> ExpertAnswer:
        """The steps' answers become the run's tasks ("step 1 (math)", ...) and the composed answer its answer."""
        from neuro_lib.runtime.decompose import compose

        keys = [f"step {i} ({s})" for i, (s, _) in enumerate(done, 1)]
        run.answers = {k: a for k, (_, a) in zip(keys, done)}
        run.verdicts = dict(zip(keys, verdicts))
        run.best = {k: (run.answers[k], run.verdicts[k]) for k in keys}
        run.decomposed = True
        run.answer = compose(done, len(steps))
        return run.answer

    def _do_decompose(self, node: Node, run: _Run):
        """A compound query cut into ordered sub-tasks, each solved by its skill's expert and judged, the later
        steps given the earlier results, and the answers composed (runtime/decompose.py). A query that does not
        split passes through untouched (the graph's next edges send it on: `decomposed` is false)."""
        from neuro_lib.runtime.decompose import MAX_STEPS, split_query

        steps = split_query(run.query.text, node.params.get("max_steps", MAX_STEPS))
        if len(steps) < 2:
            run.note = "one task: not decomposed"
            return run.query.text, {"steps": [s.text for s in steps]}, 0, 0
        done, verdicts = self._solve_steps(node, steps, run, node.params.get("step_retries", 1))
        answer = self._adopt_steps(steps, done, verdicts, run)
        run.note = f"{len(steps)} steps: " + " -> ".join(s for s, _ in done) + (
            f" (stopped after step {len(done)})" if len(done) < len(steps) else "")
        # tokens and model calls are on the sub-tasks' own steps
        return {"steps": [s.text for s in steps], "handed_on": [s.refers for s in steps]}, answer.text, 0, 0

    def _do_expand(self, node: Node, run: _Run):
        """The tasks the judge rejected, solved again with more effort (runtime/expansion.py): a query the splitter
        cuts into steps is expanded recursively (every step solved and judged on its own, as a decompose node
        does) when no node has done so yet; every other rejected task is asked `n` more times (best-of-N, sampled
        retries seeded by the attempt) and the best judged answer kept. Within the run's wall-clock budget."""
        from neuro_lib.runtime.decompose import split_query
        from neuro_lib.runtime.expansion import best_of_n

        if not run.answers:
            raise _StepFailed(f"expand node {node.id!r} has no answers to expand (put an expert and a judge before it)")
        for skill, ans in run.answers.items():  # an answer no judge node saw is judged here first
            if skill not in run.verdicts and skill in self.skill_experts:
                run.verdicts[skill] = self._verdict(run.query, ans, skill)
                run.best.setdefault(skill, (ans, run.verdicts[skill]))
        rejected = [s for s in run.answers if s not in run.verdicts or not run.verdicts[s].passed]
        if not rejected:
            run.note = "every answer passed: nothing to expand"
            return sorted(run.answers), run.answer.text if run.answer else "", 0, 0
        n = node.params.get("n", 4)
        steps = split_query(run.query.text)
        if len(steps) > 1 and not run.decomposed:
            done, verdicts = self._solve_steps(node, steps, run, max(n - 1, 0))
            if all(v.passed for v in verdicts) or not any(v.passed for s, v in run.verdicts.items()):
                answer = self._adopt_steps(steps, done, verdicts, run)
                run.note = f"recursive: {len(steps)} steps"
                return {"rejected": rejected, "steps": [s.text for s in steps]}, answer.text, 0, 0  # costs: sub-steps
        out, tokens, calls = {}, 0, 0
        first = 1 + sum(run.visits[x.id] for x in self.graph.nodes.values() if x.kind == "expert")  # unused seeds
        for skill in rejected:
            if skill not in self.skill_experts:  # a decomposed step's key: its query is gone, nothing to resample
                continue
            name, q = self.expert_for(skill), run.query

            def ask(k, name=name, skill=skill, q=q):
                return self._ask(name, skill, replace(q, attempt=first + k))

            ans, v, samples = best_of_n(ask, lambda a, skill=skill: self._verdict(run.query, a, skill), n,
                                        run.deadline)
            tokens += sum(a.tokens for a, _ in samples)
            calls += sum(a.model_calls for a, _ in samples)
            old = run.best.get(skill)
            if old is None or (v.passed, v.score) >= (old[1].passed, old[1].score):  # ties: the vote of n samples
                run.best[skill] = (ans, v)
            run.answers[skill], run.verdicts[skill] = run.best[skill]
            out[skill] = {"samples": [{"text": a.text, "passed": sv.passed, "score": sv.score} for a, sv in samples],
                          "chosen": run.answers[skill].text, "passed": run.verdicts[skill].passed}
        run.answer = join_answers(run.answers)
        run.note = f"best-of-{n} on {', '.join(out) or 'nothing resampleable'}"
        return {"rejected": rejected}, out, tokens, calls

    def _do_memory(self, node: Node, run: _Run):
        if self.memory is None:
            return run.query.text, "no memory attached to this engine", 0, 0
        if node.params["op"] == "recall":
            items, hit = self.memory.recall(run.query, node.params.get("k", 3))
            run.query.context.extend({"role": i["role"], "text": i["text"]} for i in items)
            if hit is not None:
                run.memory_hit = True
                run.answer = ExpertAnswer(hit["text"], value=hit.get("value"), citations=hit.get("citations") or [],
                                          meta={"memory_id": hit["id"]})
            return run.query.text, {"recalled": items, "hit": hit}, 0, 0
        if run.answer is None:
            raise _StepFailed(f"memory node {node.id!r} has no answer to write (put it after an expert)")
        # only a verified answer is stored as passing: a memory hit comes back verified (Result.status)
        passed = bool(run.verdicts) and all(v.passed and v.method != "none" for v in run.verdicts.values())
        row = self.memory.write(run.query, run.answer, passed)
        return run.answer.text, {"stored": row, "passed": passed}, 0, 0

    def _do_tool(self, node: Node, run: _Run):
        from neuro_lib.tools import get_tool

        fill = {"query": run.query.text, "answer": run.answer.text if run.answer else ""}
        args = {k: v.format_map(fill) if isinstance(v, str) else v for k, v in node.params["args"].items()}
        tool = node.params["tool"]
        impl = get_tool(tool)
        left = max(run.deadline - time.monotonic(), 0.01)
        asked = args.get("timeout_s", getattr(getattr(impl, "limits", None), "wall_s", None))
        if "timeout_s" in impl.schema.get("properties", {}) and (asked is None or asked > left):
            args["timeout_s"] = left  # a tool call may not outlast the run's wall-clock budget
        r = impl.call(args)
        call = ToolCall(tool, args, r.ok, r.value, r.error, r.timings.get("total_s", 0.0))
        if not r.ok:
            raise _StepFailed(f"tool {tool!r} at node {node.id!r} failed: {r.error}")
        prior = run.answer.tool_calls if run.answer else []
        run.answer = ExpertAnswer(str(r.value), value=r.value, tool_calls=prior + [call],
                                  citations=run.answer.citations if run.answer else [])
        return args, r.value, 0, 0

    def _do_exit(self, node: Node, run: _Run):
        if run.answer is None:
            raise _StepFailed(f"the run reached exit {node.id!r} without an answer")
        return None, run.answer.text, 0, 0
