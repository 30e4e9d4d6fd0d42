"""A synthetic, labelled query set for the runtime's router (seeds/tinyllm.md "multi-dimensional
routing", seeds/neurotiny.md "fast/slow path").

    train = generate_queries(2000, seed=0, split="train")     # list[LabelledQuery]
    test = generate_queries(500, seed=1, split="heldout")     # only held-out templates
    q = test[0]; q.text, q.skills, q.slow, q.value, q.operands

Each query carries multi-label skills (math, json, code, retrieval, chat: runtime/types.py SKILLS),
most important first, and a gold "needs the slow path" label: a query needs the slow path when it
asks for several skills (a compound query, e.g. code + math, answered by several experts and
combined), or when one skill needs several steps (a sum of three or more operands, a JSON record
with a nested list, a program with two stages). Everything else is a one-expert fast-path query.

Every skill has training templates and held-out templates (and compound queries have their own
joining phrases, also split), so the held-out split measures generalisation to unseen phrasing,
not recall. Math queries are sums whose operands and value are kept (`operands`, `value`): the
router's cost-quality evaluation answers them with a real solver (runtime/expansion.py).

Tests: tests/test_runtime_router.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from neuro_lib.errors import NeuroError

SKILLS = ("math", "json", "code", "retrieval", "chat")  # the same vocabulary as runtime/types.py (data stands alone)
SPLITS = ("train", "heldout")

NAMES = ("Ada", "Bo", "Chen", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea")
CITIES = ("Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Accra", "Hanoi")
WORDS = ("banana", "river", "python", "kettle", "orange", "mirror", "lantern", "cobalt")
MODULES = (("json", "dumps"), ("os.path", "join"), ("itertools", "chain"), ("re", "sub"), ("math", "isclose"),
           ("functools", "lru_cache"), ("collections", "Counter"), ("pathlib", "Path.glob"))
TOPICS = ("the weather", "music", "chess", "cooking", "football", "travel", "gardening", "old films")
ANIMALS = ("cat", "dog", "owl", "frog", "whale", "goat")


def _expr(ops) -> str:
    return " + ".join(str(x) for x in ops)


# skill -> (training templates, held-out templates); each template is (text, slow). Slots: {e} a sum,
# {a} {b} two numbers, {n} a name, {c} a city, {w} a word, {m} {f} a module and its function,
# {t} a topic, {x} an animal, {k} a small count.
TEMPLATES = {
    "math": ([("what is {e}?", None), ("compute {e}", None), ("calculate {e} for me", None),
              ("how much is {e}?", None), ("add these numbers: {e}", None), ("{e} equals what?", None)],
             [("tell me the value of {e}", None), ("find the total of {e}", None), ("work out {e}", None)]),
    "json": ([("give me a json object for a person named {n} aged {a}", False),
              ("return json with the fields city={c} and population {b}", False),
              ("output a JSON record for the user {n} who lives in {c}", False),
              ("make a json object for {n} with a list of {k} favourite colours", True),
              ("json please: a shop order of {k} items, each with a name and a price", True)],
             [("produce a JSON document describing {n}, age {a}", False),
              ("format as json: name {n}, home {c}", False),
              ("build a json record of a library with {k} books, each with an author list", True)]),
    "code": ([("write a python function that reverses the string '{w}'", False),
              ("write code to count the vowels in '{w}'", False),
              ("python: sort the list [{a}, {b}, {k}]", False),
              ("write a function that checks whether {a} is prime", False),
              ("write a program that reads a file, parses each line and prints the longest one", True),
              ("code a function that filters the even numbers from a list and then sorts them", True)],
             [("implement a python snippet returning '{w}' upside down", False),
              ("show me a python loop that prints {w} {k} times", False),
              ("implement a script that loads a csv, groups rows by city and prints each count", True)]),
    "retrieval": ([("according to the docs, what does {m}.{f} do?", False),
                   ("look up the documentation of {m}.{f}", False),
                   ("what does the standard library reference say about {m}?", False),
                   ("find the docstring for {f} in the {m} module", False)],
                  [("search the manual for {m}.{f}", False), ("what is written in the {m} docs about {f}?", False)]),
    "chat": ([("hello, how are you?", False), ("tell me a joke about a {x}", False),
              ("thanks, that was helpful!", False), ("what do you think about {t}?", False),
              ("good night {n}", False)],
             [("hey there, nice to meet you", False), ("let's talk about {t} for a while", False),
              ("do you like the {x}?", False)]),
}

# Compound templates: (text, skills). They name two skills in one breath.
COMPOUND = ([("write a python function that returns {e}", ("code", "math")),
             ("return json with a field total equal to {e}", ("json", "math")),
             ("using the docs for {m}, write code that calls {f}", ("code", "retrieval")),
             ("look up {m}.{f} in the docs and give the answer as json", ("retrieval", "json"))],
            [("implement code that prints the result of {e}", ("code", "math")),
             ("give a json object whose sum field is {e}", ("json", "math"))])
# Two single-skill queries joined: first + joiner + second (both skills, slow).
JOINERS = ([" and then ", "; also, ", ". after that, "], [", and next ", " -- plus "])


@dataclass
class LabelledQuery:
    text: str
    skills: tuple            # gold labels, most important first
    slow: bool               # gold: needs the slow path (plan, tools, judge)
    template: str            # the template it came from (held-out split: held-out templates only)
    value: int | None = None  # the answer of a math-only query (a sum)
    operands: tuple = ()     # the sum's operands (math-only queries)

    @property
    def primary(self) -> str:
        return self.skills[0]


def _slots(rng: random.Random, n_ops: int) -> dict:
    ops = tuple(rng.randint(10, 99) for _ in range(n_ops))
    m, f = rng.choice(MODULES)
    return dict(e=_expr(ops), a=rng.randint(2, 99), b=rng.randint(100, 9999), n=rng.choice(NAMES),
                c=rng.choice(CITIES), w=rng.choice(WORDS), m=m, f=f, t=rng.choice(TOPICS), x=rng.choice(ANIMALS),
                k=rng.randint(2, 5), ops=ops)


def single_query(skill: str, rng: random.Random, split: str, n_ops: int | None = None) -> LabelledQuery:
    """One query of one skill from the split's templates; a math query sums `n_ops` (default 2..5) operands."""
    text, slow = rng.choice(TEMPLATES[skill][SPLITS.index(split)])
    slots = _slots(rng, n_ops or rng.randint(2, 5))
    if skill == "math":  # a sum of three or more operands is several steps
        ops = slots["ops"]
        return LabelledQuery(text.format(**slots), ("math",), len(ops) >= 3, text, sum(ops), ops)
    return LabelledQuery(text.format(**slots), (skill,), bool(slow), text)


def compound_query(rng: random.Random, split: str) -> LabelledQuery:
    """A query that needs two skills: a compound template, or two single queries joined."""
    s = SPLITS.index(split)
    if rng.random() < 0.5:
        text, skills = rng.choice(COMPOUND[s])
        return LabelledQuery(text.format(**_slots(rng, rng.randint(2, 4))), skills, True, text)
    first, second = rng.sample(SKILLS, 2)
    a, b = single_query(first, rng, split), single_query(second, rng, split)
    joiner = rng.choice(JOINERS[s])
    return LabelledQuery(a.text + joiner + b.text, (first, second), True, f"{a.template}{joiner}{b.template}")


def generate_queries(n: int, seed: int = 0, split: str = "train", compound_share: float = 0.3) -> list[LabelledQuery]:
    """`n` queries: a `compound_share` of two-skill queries, the rest single-skill, skills uniform."""
    if split not in SPLITS:
        raise NeuroError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    if n < 1 or not 0 <= compound_share <= 1:
        raise NeuroError(f"need n >= 1 and 0 <= compound_share <= 1, got n={n}, compound_share={compound_share}")
    rng = random.Random(f"queries:{seed}:{split}")
    return [compound_query(rng, split) if rng.random() < compound_share else single_query(rng.choice(SKILLS), rng, split)
            for _ in range(n)]


def math_queries(n_per_size: int, sizes=(2, 3, 4, 5), seed: int = 0, split: str = "heldout") -> list[LabelledQuery]:
    """Math-only queries (sums), `n_per_size` for each operand count: the cost-quality set, whose fast and
    slow answers a solver can check."""
    rng = random.Random(f"math:{seed}:{split}")
    return [single_query("math", rng, split, n_ops=k) for k in sizes for _ in range(n_per_size)]
