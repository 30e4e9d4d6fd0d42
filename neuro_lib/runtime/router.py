"""Routing: which skills a query needs, and whether it takes the fast or the slow path.

A router turns a `Query` into a `Route` (types.py): multi-label skills, most likely first, and a
complexity score compared with a threshold (fast: one expert, no judge; slow: memory, every skill's
expert, the judge, retries). This file holds the protocol and the keyword-rules baseline; the
trained classifier and the random router live beside it (rt-router).

    router = KeywordRouter()
    router.route(Query("compute 17 * 23, then write a python function that prints it"))
    # Route(path="slow", skills=["math", "code"], complexity=0.6..., router="keywords")

The keyword router is RouteLLM's "rules" baseline (Ong et al. 2024, arXiv:2406.18665): regular
expressions per skill, and a complexity score from surface features (clauses, operators, numbers,
length, several skills at once). It reads nothing but the text, so it costs microseconds.

Tests: tests/test_runtime_engine.py (routing cases).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from neuro_lib.runtime.types import SKILLS, Query, Route


@runtime_checkable
class Router(Protocol):
    name: str

    def route(self, query: Query) -> Route: ...


# Every rule must run in time linear in the query's length (a hostile 1 MB line must not stall routing):
# no `.*` that a later failure backtracks into from every start. "f(...)" used to read `[a-z_]+\(.*\)`,
# quadratic on a long run of letters or of "f(" without ")". Both rules below commit (an atomic group) to the
# line's first "f(" / "what does ", then scan the rest of that line once: a ")" / "do|return|raise" after the
# first occurrence exists exactly when one exists after any occurrence, so the meaning is unchanged.
CALL_RULE = r"(?m)^(?>[^\n]*?[a-z_]\()[^\n]*\)"
WHICH_RULE = r"(?m)\bwhich (exception|function|class|method)\b|^(?>[^\n]*?\bwhat does )[^\n]*? (do|return|raise)\b"

# Skill -> patterns (case-insensitive). Each pattern that matches counts once towards the skill's score.
KEYWORD_RULES: dict[str, tuple[str, ...]] = {
    "math": (r"\d\s*[-+*/x×^%]\s*\d", r"\b(sum|product|total|average|percent|how (many|much)|calculate|compute)\b",
             r"\b(plus|minus|times|divided|multipl\w*|subtract\w*|add(ed)?|square root|sqrt)\b",
             r"\b(km|kg|meters?|miles?|hours?|minutes?|seconds?|dollars?|euros?|cost|price|speed)\b"),
    "json": (r"\bjson\b", r"\bschema\b", r"\b(fields?|keys?|record|structured)\b",
             r"\b(extract|fill in|as a (dict|record))\b"),
    "code": (r"\b(python|function|def|code|program|script|loop|list comprehension|return|print)\b",
             r"\b(implement|write a (function|program|script)|run (this|the) code)\b", CALL_RULE,
             r"\b(sort|reverse|string|integer|array|variable)\b"),
    "retrieval": (r"\b(docs?|documentation|module|stdlib|standard library|according to)\b",
                  WHICH_RULE,
                  r"\b(raise[sd]?|exception|argument|parameter|attribute)\b"),
    "chat": (r"^\s*(hi|hello|hey|thanks|thank you|good (morning|evening))\b", r"\b(you|your|tell me|how are)\b",
             r"\b(story|poem|joke|opinion|feel)\b"),
}


@dataclass
class KeywordRouterConfig:
    threshold: float = 0.5        # complexity >= threshold -> slow path
    default_skill: str = "chat"   # when no rule fires
    rules: dict = field(default_factory=lambda: dict(KEYWORD_RULES))
    # complexity = 1 - prod(1 - w * feature), each feature saturating in [0, 1]
    w_clauses: float = 0.35       # per extra clause ("then", ";", "and then", ", and")
    w_operators: float = 0.15     # per arithmetic operator
    w_numbers: float = 0.08       # per number
    w_length: float = 0.3         # at 40 words and above
    w_compound: float = 0.4       # several skills at once


_CLAUSE = re.compile(r"\b(then|after that|and also|finally|next)\b|;|,\s*and\b|\band then\b", re.I)
_OPERATOR = re.compile(r"(?<=[\d\s)])[-+*/^%×](?=[\s\d(])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def complexity_features(text: str) -> dict[str, int]:
    """The surface features the complexity score reads: clauses, operators, numbers, words."""
    return {"clauses": len(_CLAUSE.findall(text)), "operators": len(_OPERATOR.findall(text)),
            "numbers": len(_NUMBER.findall(text)), "words": len(text.split())}


class KeywordRouter:
    """Multi-label skills from regular expressions; fast vs slow from a complexity score."""

    name = "keywords"

    def __init__(self, config: KeywordRouterConfig | None = None):
        self.config = config or KeywordRouterConfig()
        unknown = set(self.config.rules) - set(SKILLS)
        if unknown:
            raise ValueError(f"keyword rules name unknown skills {sorted(unknown)}; skills are {SKILLS}")
        self._rules = {s: [re.compile(p, re.I) for p in pats] for s, pats in self.config.rules.items()}

    def skill_scores(self, query: Query) -> dict[str, float]:
        """Per skill, 1 - 0.5 ** (patterns matched): 0 when none, 0.5 for one, 0.75 for two..."""
        scores = {s: 1 - 0.5 ** sum(bool(p.search(query.text)) for p in pats) for s, pats in self._rules.items()}
        if query.wants_json:  # the caller asked for JSON: the json skill is certain
            scores["json"] = 1.0
        return scores

    def complexity(self, text: str, n_skills: int) -> float:
        c, f = self.config, complexity_features(text)
        parts = (c.w_clauses * min(f["clauses"], 2), c.w_operators * min(f["operators"], 4),
                 c.w_numbers * min(f["numbers"], 6), c.w_length * min(f["words"] / 40, 1.0),
                 c.w_compound * (n_skills > 1))
        keep = 1.0
        for p in parts:
            keep *= 1 - min(p, 0.95)
        return round(1 - keep, 4)

    def route(self, query: Query) -> Route:
        scores = self.skill_scores(query)
        skills = sorted((s for s, v in scores.items() if v > 0), key=lambda s: (-scores[s], SKILLS.index(s)))
        if len(skills) > 1 and "chat" in skills:  # chat words ("you", "tell me") ride along with real tasks
            skills.remove("chat")
        skills = skills or [self.config.default_skill]
        complexity = self.complexity(query.text, len(skills))
        return Route(path="slow" if complexity >= self.config.threshold else "fast", skills=skills,
                     complexity=complexity, scores=scores, router=self.name)
