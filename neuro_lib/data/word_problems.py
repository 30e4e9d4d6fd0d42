"""Synthetic tasks for the runtime's tiny experts, each with train and held-out phrasing templates.

Reason-mini: arithmetic and unit word problems -> a plan of calculator calls -> the answer.

    p = make_problems(100, seed=0, split="train")[0]
    p.text     # "Ana has 17 boxes with 23 apples each and finds 4 more apples. How many apples does Ana have?"
    p.target   # b"CALL calc(17*23+4) -> 395\nANSWER 395"
    p.steps    # ["17*23+4"]; a two-step plan refers to the first result by value:
               # "CALL calc(45*3) -> 135\nCALL calc(135*1000) -> 135000\nANSWER 135000"

Code-mini: small programming tasks -> a Python program whose printed output is the answer.

    t = make_code_tasks(100, seed=0, split="heldout")[0]
    t.text, t.program, t.expected  # "Give the sum of the squares of the integers 3 through 9.",
                                   # "print(sum(i*i for i in range(3, 9+1)))", "280"

Every family has several phrasings (Reason-mini six, Code-mini four); the last N_HELDOUT of each are held
out (evaluation only), so a held-out problem's wording is never seen in training, while its numbers, names
and words are drawn from the same pools (and a word problem's optional frame, "Question: ...", from the
same frames). Programs and plans copy literals from the text (`range(3, 9+1)`): the arithmetic
is the calculator's or Python's job, not the model's.

Tests: tests/test_runtime_experts.py (template split, targets parse and evaluate to the answer).
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

N_HELDOUT = 1  # per family, the last phrasing(s)
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kim", "Lea", "Max", "Nia"]
THINGS = ["apples", "pencils", "stamps", "marbles", "cards", "shells", "coins", "stickers"]
WORDS = ["apple", "river", "stone", "planet", "window", "garden", "silver", "rocket", "yellow", "pencil", "music",
         "orange", "tiger", "cloud", "banana", "forest", "butter", "lemon", "ocean", "mirror"]
SPLITS = ("train", "heldout")


def fmt_number(x) -> str:
    """A calculator value as the answer is written: integers without a decimal point, floats to 10 digits."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}" if isinstance(x, float) else str(x)


@dataclass
class Problem:
    family: str
    template: int           # index into the family's phrasings
    text: str
    steps: list[str]        # calculator expressions; a later one contains earlier results as numbers
    values: list = field(default_factory=list)  # the exact value of each step
    answer: str = ""

    @property
    def source(self) -> bytes:
        return self.text.encode()

    @property
    def target(self) -> bytes:
        lines = [f"CALL calc({e}) -> {fmt_number(v)}" for e, v in zip(self.steps, self.values)]
        return "\n".join(lines + [f"ANSWER {self.answer}"]).encode()


# -- Reason-mini families: (phrasings, draw(rng) -> (slots, plan builder)) -------------------------------------
UNITS = [("kilometers", "meters", 1000), ("meters", "centimeters", 100), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("kilograms", "grams", 1000), ("days", "hours", 24)]
# every conversion a plan may bring (a superset of UNITS, which the templated generator draws from and must keep)
FACTORS = UNITS + [("weeks", "days", 7), ("liters", "milliliters", 1000), ("feet", "inches", 12),
                   ("yards", "feet", 3), ("pounds", "ounces", 16), ("centimeters", "millimeters", 10),
                   ("years", "months", 12), ("dozens", "items", 12), ("gallons", "quarts", 4)]
ALIASES = {"km": "kilometer", "kg": "kilogram", "cm": "centimeter", "mm": "millimeter", "ml": "milliliter",
           "hr": "hour", "hrs": "hour", "min": "minute", "mins": "minute", "sec": "second", "secs": "second",
           "ft": "feet", "foot": "feet", "inches": "inch", "yd": "yard", "oz": "ounce", "lb": "pound", "lbs": "pound"}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve"]
# words that bring a number with them: a percentage is out of 100, half divides by 2, ...
WORD_CONSTANTS = {"percent": "100", "percentage": "100", "per cent": "100", "%": "100", "half": "2", "halves": "2",
                  "twice": "2", "double": "2", "third": "3", "thirds": "3", "triple": "3", "quarter": "4",
                  "quarters": "4", "fifth": "5", "fifths": "5", "tenth": "10", "tenths": "10", "dozen": "12"}


def _unit(word: str) -> str:
    """A unit word in one form: "km" and "kilometers" -> "kilometer" ("feet" stays)."""
    word = ALIASES.get(word, word)
    return word if word in ("feet", "inch") else word.removesuffix("s")


def plan_constants(question: str) -> set[str]:
    """Numbers a plan may use that the question states without writing them as plain digits: the conversion factor
    of a unit pair it names (word by word, so "kilometers" does not name "meters"), the number a word brings
    (WORD_CONSTANTS: "15%" -> 100, "a third" -> 3), small counts written as words ("five" -> 5), numbers written
    with thousands commas ("1,200" -> 1200), and for a mean the counts of numbers it may average (2 up to how many
    numbers the question holds)."""
    low = question.lower()
    tokens = re.findall(r"[a-z]+", low)
    units = {_unit(w) for w in tokens}
    out = {str(f) for big, small, f in FACTORS if _unit(big) in units and _unit(small) in units}
    out |= {v for k, v in WORD_CONSTANTS.items() if (k in tokens if k.isalpha() else k in low)}
    out |= {str(NUMBER_WORDS.index(w)) for w in tokens if w in NUMBER_WORDS}
    out |= {m.replace(",", "") for m in re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", question)}
    if re.search(r"\b(average|mean)\b", low):
        out |= {str(k) for k in range(2, len(re.findall(r"\d+(?:\.\d+)?", question)) + 1)}
    return out



def _groups(rng):
    a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(1, 50)
    return dict(n=rng.choice(NAMES), a=a, b=b, c=c, t=rng.choice(THINGS)), [f"{a}*{b}+{c}"]


def _change(rng):
    b, c = rng.randint(2, 9), rng.randint(2, 20)
    a = b * c + rng.randint(1, 60)
    return dict(n=rng.choice(NAMES), a=a, b=b, c=c), [f"{a}-{b}*{c}"]


def _share(rng):
    b, k = rng.randint(2, 12), rng.randint(2, 40)
    return dict(a=b * k, b=b, t=rng.choice(THINGS)), [f"{b * k}/{b}"]


def _convert(rng):
    big, small, f = rng.choice(UNITS)
    a = rng.randint(2, 99)
    return dict(a=a, big=big, small=small), [f"{a}*{f}"]


def _speed(rng):  # two steps: distance, then a unit conversion of that result
    a, b = rng.randint(10, 120), rng.randint(2, 9)
    return dict(a=a, b=b), [f"{a}*{b}", "{0}*1000"]


def _savings(rng):
    a, b = rng.randint(3, 50), rng.randint(2, 20)
    c = rng.randint(1, a * b - 1)
    return dict(n=rng.choice(NAMES), a=a, b=b, c=c), [f"{a}*{b}-{c}"]


def _ages(rng):
    a, b, c = rng.randint(3, 60), rng.randint(1, 30), rng.randint(1, 20)
    n, m = rng.sample(NAMES, 2)
    return dict(n=n, m=m, a=a, b=b, c=c), [f"{a}+{b}+{c}"]


def _area(rng):  # two steps: area, then a price per square unit
    a, b, p = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 15)
    return dict(a=a, b=b, p=p), [f"{a}*{b}", f"{{0}}*{p}"]


REASON_FAMILIES = {
    "groups": (_groups, [
        "{n} has {a} boxes with {b} {t} in each and finds {c} more {t}. How many {t} does {n} have?",
        "There are {a} bags of {b} {t}, plus {c} loose {t}. How many {t} are there in total?",
        "{n} buys {a} packs of {b} {t} and gets {c} extra {t} free. How many {t} is that?",
        "Each of {a} jars holds {b} {t}. {n} adds {c} more {t}. What is the number of {t} now?",
        "{n} stacks {b} {t} on each of {a} shelves, then puts {c} {t} on the table. How many {t} altogether?",
        "Count the {t}: {a} rows of {b} {t}, and another {c} {t} on the side."]),
    "change": (_change, [
        "{n} pays {a} dollars for {b} tickets costing {c} dollars each. How much change does {n} get?",
        "{b} books cost {c} dollars each. {n} hands over {a} dollars. What is the change?",
        "With {a} dollars, {n} buys {b} shirts at {c} dollars apiece. How many dollars are left?",
        "{n} had {a} dollars and bought {b} pens for {c} dollars per pen. How much money remains?",
        "A shop sells {b} toys at {c} dollars each to {n}, who pays {a} dollars. Work out the change.",
        "What change is due from {a} dollars after buying {b} items priced at {c} dollars each?"]),
    "share": (_share, [
        "{a} {t} are shared equally among {b} children. How many {t} does each child get?",
        "Split {a} {t} evenly into {b} groups. How many {t} are in each group?",
        "{b} friends divide {a} {t} fairly. How many {t} does each friend receive?",
        "A teacher hands out {a} {t} to {b} students, the same number to each. How many {t} per student?",
        "{a} {t} are packed into {b} boxes with equal amounts. What does one box contain?",
        "If {a} {t} go into {b} equal piles, how many {t} are in one pile?"]),
    "convert": (_convert, [
        "How many {small} are there in {a} {big}?",
        "Convert {a} {big} to {small}.",
        "A task takes {a} {big}. How long is that in {small}?",
        "What is {a} {big} when measured in {small}?",
        "Turn {a} {big} into {small}. What number do you get?",
        "Express {a} {big} in {small}."]),
    "speed": (_speed, [
        "A car drives at {a} kilometers per hour for {b} hours. How many meters does it travel?",
        "A train runs {b} hours at {a} km per hour. What distance is that in meters?",
        "Going {a} km each hour for {b} hours, how many meters does a bus cover?",
        "A runner keeps up {a} km per hour for {b} hours. Give the distance in meters.",
        "For {b} hours a boat sails at {a} kilometers per hour. How far is that, in meters?",
        "How many meters does a cyclist ride in {b} hours at a speed of {a} km/h?"]),
    "savings": (_savings, [
        "{n} saves {a} dollars a week for {b} weeks, then spends {c} dollars. How much is left?",
        "Every week for {b} weeks {n} puts {a} dollars aside, and later spends {c}. What remains?",
        "{n} earns {a} dollars per day for {b} days and pays {c} dollars in fees. How much does {n} keep?",
        "{n} puts {a} dollars in a jar each month for {b} months, then takes out {c}. What is in the jar?",
        "Over {b} weeks {n} collects {a} dollars weekly and loses {c} dollars. How much does {n} have?",
        "After {b} weeks of saving {a} dollars weekly, {n} buys a gift for {c} dollars. How much money is left?"]),
    "ages": (_ages, [
        "{n} is {a} years old. {m} is {b} years older. How old will {m} be in {c} years?",
        "{m} is {b} years older than {n}, who is {a}. What will {m}'s age be {c} years from now?",
        "In {c} years, how old will {m} be, if {n} is {a} now and {m} is {b} years older?",
        "{n}'s age is {a}. {m} has {b} more years than {n}. What age will {m} reach after {c} more years?",
        "Add {c} years to the age of {m}, who is {b} years older than {n}, aged {a}. What is the result?",
        "{n} turned {a} today, and {m} was born {b} years before {n}. How old is {m} {c} years later?"]),
    "area": (_area, [
        "A floor is {a} m by {b} m. Tiles cost {p} dollars per square meter. What do the tiles cost?",
        "Carpet costs {p} dollars a square meter. How much for a {a} m by {b} m room?",
        "A {a} by {b} meter garden is covered with turf at {p} dollars per square meter. Total cost?",
        "A hall measures {a} m by {b} m and flooring is {p} dollars per square meter. Find the price.",
        "Glass at {p} dollars per square meter covers a {a} m by {b} m window. How much is the glass?",
        "What does it cost to paint a {a} m x {b} m wall at {p} dollars per square meter?"]),
}


def _templates(n_phr: int, split: str) -> range:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return range(0, n_phr - N_HELDOUT) if split == "train" else range(n_phr - N_HELDOUT, n_phr)


def evaluate_steps(steps: list[str], evaluate) -> tuple[list[str], list]:
    """Fill earlier results into the plan ("{0}" is step 0's value) and evaluate each step with `evaluate`
    (an expression -> value function, e.g. the calculator's)."""
    exprs, values = [], []
    for s in steps:
        e = s.format(*map(fmt_number, values))
        exprs.append(e)
        values.append(evaluate(e))
    return exprs, values


def _python_eval(expr: str):
    return eval(expr, {"__builtins__": {}})  # generator-only: our own fixed arithmetic strings


# frames around any phrasing, in both splits: they move the numbers around, so copying them is learnt by content
PREFIXES = ["", "", "Question: ", "Word problem. ", "Please solve: ", "Quick one: "]
SUFFIXES = ["", "", " Answer with a number.", " Use the calculator.", " Thanks!"]


def make_problem(family: str, rng: random.Random, split: str) -> Problem:
    draw, phrasings = REASON_FAMILIES[family]
    t = rng.choice(_templates(len(phrasings), split))
    slots, plan = draw(rng)
    exprs, values = evaluate_steps(plan, _python_eval)
    text = rng.choice(PREFIXES) + phrasings[t].format(**slots) + rng.choice(SUFFIXES)
    return Problem(family, t, text, exprs, values, fmt_number(values[-1]))


def make_problems(n: int, seed: int = 0, split: str = "train", families=tuple(REASON_FAMILIES)) -> list[Problem]:
    rng = random.Random(f"{seed}-{split}-reason")
    return [make_problem(families[i % len(families)], rng, split) for i in range(n)]


# -- Code-mini -------------------------------------------------------------------------------------------------
@dataclass
class CodeTask:
    family: str
    template: int
    text: str
    program: str     # the reference program (prints the answer)
    expected: str    # its output, stripped

    @property
    def source(self) -> bytes:
        return self.text.encode()

    @property
    def target(self) -> bytes:
        return self.program.encode()


def _range_pair(rng):
    a = rng.randint(1, 20)
    return a, a + rng.randint(2, 15)


def _word(rng, k=(1, 2)):
    return " ".join(rng.sample(WORDS, rng.randint(*k)))


def _sum_squares(rng):
    a, b = _range_pair(rng)
    return dict(a=a, b=b), f"print(sum(i*i for i in range({a}, {b}+1)))", sum(i * i for i in range(a, b + 1))


def _sum_evens(rng):
    a, b = _range_pair(rng)
    return dict(a=a, b=b), f"print(sum(i for i in range({a}, {b}+1) if i % 2 == 0))", \
        sum(i for i in range(a, b + 1) if i % 2 == 0)


def _reverse(rng):
    s = _word(rng)
    return dict(s=s), f"print('{s}'[::-1])", s[::-1]


def _vowels(rng):
    s = _word(rng, (1, 3))
    return dict(s=s), f"print(sum(c in 'aeiou' for c in '{s}'))", sum(c in "aeiou" for c in s)


def _factorial(rng):
    n = rng.randint(1, 15)
    return dict(n=n), f"import math\nprint(math.factorial({n}))", math.factorial(n)


def _maximum(rng):
    xs = [rng.randint(-50, 99) for _ in range(rng.randint(3, 6))]
    return dict(xs=str(xs)), f"print(max({xs}))", max(xs)


def _sort(rng):
    xs = [rng.randint(0, 99) for _ in range(rng.randint(3, 6))]
    return dict(xs=str(xs)), f"print(sorted({xs}))", sorted(xs)


def _upper(rng):
    s = _word(rng)
    return dict(s=s), f"print('{s}'.upper())", s.upper()


def _count_words(rng):
    s = _word(rng, (2, 6))
    return dict(s=s), f"print(len('{s}'.split()))", len(s.split())


CODE_FAMILIES = {
    "sum_squares": (_sum_squares, ["sum of squares of numbers from {a} to {b}",
                                   "What is the sum of i squared for i from {a} to {b}?",
                                   "Add up the squares of every integer between {a} and {b} inclusive.",
                                   "Give the sum of the squares of the integers {a} through {b}."]),
    "sum_evens": (_sum_evens, ["sum of the even numbers from {a} to {b}",
                               "Add all even integers between {a} and {b} inclusive.",
                               "What do the even numbers from {a} up to {b} add up to?",
                               "Total of the even values in the range {a} to {b}."]),
    "reverse": (_reverse, ["reverse the string '{s}'", "Write '{s}' backwards.",
                           "What is '{s}' reversed?", "Print the characters of '{s}' in reverse order."]),
    "vowels": (_vowels, ["count vowels in '{s}'", "How many vowels does '{s}' contain?",
                         "Number of vowels in the text '{s}'.", "Count the a, e, i, o and u letters in '{s}'."]),
    "factorial": (_factorial, ["factorial of {n}", "What is {n}!?", "Compute {n} factorial.",
                               "Multiply all integers from 1 to {n}."]),
    "maximum": (_maximum, ["largest number in {xs}", "What is the maximum of {xs}?",
                           "Find the biggest value in the list {xs}.", "Which element of {xs} is greatest?"]),
    "sort": (_sort, ["sort the list {xs}", "Put {xs} in ascending order.", "Order the numbers {xs} from small to large.",
                     "Arrange {xs} from lowest to highest."]),
    "upper": (_upper, ["uppercase '{s}'", "Convert '{s}' to capital letters.", "Write '{s}' in upper case.",
                       "Shout '{s}': all letters as capitals."]),
    "count_words": (_count_words, ["count the words in '{s}'", "How many words are in '{s}'?",
                                   "Number of words in the sentence '{s}'.", "Tell me the word count of '{s}'."]),
}


def make_code_task(family: str, rng: random.Random, split: str) -> CodeTask:
    draw, phrasings = CODE_FAMILIES[family]
    t = rng.choice(_templates(len(phrasings), split))
    slots, program, value = draw(rng)
    return CodeTask(family, t, phrasings[t].format(**slots), program, str(value))


def make_code_tasks(n: int, seed: int = 0, split: str = "train", families=tuple(CODE_FAMILIES)) -> list[CodeTask]:
    rng = random.Random(f"{seed}-{split}-code")
    return [make_code_task(families[i % len(families)], rng, split) for i in range(n)]
