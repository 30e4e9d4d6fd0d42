"""Code-mini's broad generator (the "broad" variant of data/sft.py's code task; Reason-mini's is
data/broad_problems.py): over sixty families of small programs on strings, numbers and lists, their inputs drawn
from open pools and shown in varied forms (quotes, list syntax or plain commas), with the output format the task asks
for (a list, spaces, commas, lines; True/False or yes/no).

    t = make_broad_code_tasks(3, seed=0)[0]
    t.text, t.program, t.expected   # "Reverse the string 'cobalt ember'.", "s = 'cobalt ember'\nresult = ...", ...

Programs have one style: the inputs copied from the text bound to names on the first lines (`s = '...'`, `n = 97`,
`xs = [...]`), then the computation into `result`, then one `print`; the expected output is what the program prints
(run here once, in-process: our own fixed programs; the tests run them in the sandbox too). Held out: the last
phrasing of each family and the last phrase of each output format. Nothing here was written from the outside
evaluation sets (data/eval/). Tests: tests/test_broad_problems.py.
"""
from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from typing import Callable

from neuro_lib.data.broad_problems import N_HELDOUT_Q, WORDS, split_range
from neuro_lib.data.word_problems import CodeTask

@dataclass(frozen=True)
class CodeFamily:
    draw: Callable            # rng -> (slots for the phrasing, program lines binding the inputs, body lines)
    phrasings: tuple          # the last N_HELDOUT_Q held out
    formats: tuple = ()       # output formats this family's result may be asked in (see FORMATS); () = as is


# how a list result is printed, and the phrases that ask for it (the last phrase of each held out)
FORMATS = {
    "list": ("print(result)", ("Print it as a Python list.", "Show the result as a list.", "Output the list.")),
    "spaces": ("print(*result)", ("Print them on one line separated by spaces.", "Output them space-separated.",
                                  "Print the values with single spaces between them.")),
    "commas": ("print(', '.join(map(str, result)))", ("Print them separated by commas.",
                                                       "Output them as a comma-separated line.",
                                                       "Join them with a comma and a space.")),
    "lines": ("print(*result, sep='\\n')", ("Print each one on its own line.", "Output one value per line.",
                                            "Write them one per line.")),
}
BOOL_FORMATS = {
    "bool": ("print(result)", ("Print True or False.", "Answer True or False.", "Output True or False.")),
    "yesno": ("print('yes' if result else 'no')", ("Print yes or no.", "Answer yes or no.", "Reply yes or no.")),
}


def _text_words(rng, lo=1, hi=3) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _quote(rng, s: str) -> str:
    return rng.choice(["'{}'", '"{}"', "'{}'"]).format(s)


def _nums(rng, lo=3, hi=8, a=-20, b=99) -> list[int]:
    return [rng.randint(a, b) for _ in range(rng.randint(lo, hi))]


def _show_list(rng, xs) -> str:
    form = rng.random()
    if form < 0.6:
        return str(xs)
    if form < 0.85:
        return ", ".join(map(str, xs))
    return " ".join(map(str, xs))


def _s(fn):
    """A string family: body(s) -> lines computing `result`."""
    def draw(rng):
        s = _text_words(rng)
        return dict(q=_quote(rng, s)), [f"s = {s!r}"], fn(rng, s)
    return draw


def _n(lo, hi, fn=None):
    def draw(rng):
        n = rng.randint(lo, hi)
        return dict(n=str(n)), [f"n = {n}"], fn(rng, n) if fn else None
    return draw


def _xs(fn, lo=3, hi=8, a=-20, b=99):
    def draw(rng):
        xs = _nums(rng, lo, hi, a, b)
        return dict(L=_show_list(rng, xs)), [f"xs = {xs}"], fn(rng, xs)
    return draw


def _letter_count(rng):
    s = _text_words(rng, 2, 4)
    c = rng.choice(s.replace(" ", ""))
    return dict(q=_quote(rng, s), c=c), [f"s = {s!r}", f"c = {c!r}"], ["result = s.count(c)"]


def _replace(rng):
    s = _text_words(rng, 2, 3)
    a = rng.choice(s.replace(" ", ""))
    b = rng.choice("xyz*-#")
    return dict(q=_quote(rng, s), a=a, b=b), [f"s = {s!r}", f"a = {a!r}", f"b = {b!r}"], \
        ["result = s.replace(a, b)"]


def _repeat(rng):
    s, k = rng.choice(WORDS), rng.randint(2, 5)
    return dict(q=_quote(rng, s), k=str(k)), [f"s = {s!r}", f"k = {k}"], ["result = s * k"]


def _palindrome(rng):
    w = rng.choice(WORDS)
    s = rng.choice([w, w + w[::-1], w + w[-2::-1], w[::-1] + w[1:], rng.choice(["level", "radar", "noon", "refer",
                    "civic", "kayak", "rotor", "madam", "stats", "racecar", "deed", "peep"])])
    return dict(q=_quote(rng, s)), [f"s = {s!r}"], ["result = s == s[::-1]"]


def _gcd(rng):
    g = rng.randint(1, 20)
    a, b = g * rng.randint(1, 30), g * rng.randint(1, 30)
    return dict(a=str(a), b=str(b)), [f"a = {a}", f"b = {b}"], ["result = math.gcd(a, b)"]


def _lcm(rng):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return dict(a=str(a), b=str(b)), [f"a = {a}", f"b = {b}"], ["result = math.lcm(a, b)"]


def _multiples(kind):
    def draw(rng):
        k, n = rng.randint(2, 12), rng.randint(20, 300)
        body = {"sum": ["result = sum(i for i in range(1, n) if i % k == 0)"],
                "count": ["result = sum(1 for i in range(1, n) if i % k == 0)"],
                "list": ["result = [i for i in range(1, n) if i % k == 0]"]}[kind]
        return dict(k=str(k), n=str(n)), [f"k = {k}", f"n = {n}"], body
    return draw


def _power(rng):
    a, b = rng.randint(2, 12), rng.randint(2, 10)
    return dict(a=str(a), b=str(b)), [f"a = {a}", f"b = {b}"], ["result = a ** b"]


def _range_sum(kind):
    def draw(rng):
        a = rng.randint(0, 30)
        b = a + rng.randint(2, 60)
        cond = {"all": "", "even": " if i % 2 == 0", "odd": " if i % 2 == 1", "squares": ""}[kind]
        term = "i * i" if kind == "squares" else "i"
        body = [f"result = sum({term} for i in range(a, b + 1){cond})"]
        return dict(a=str(a), b=str(b)), [f"a = {a}", f"b = {b}"], body
    return draw


def _count_above(rng):
    xs, k = _nums(rng, 4, 9, 0, 99), rng.randint(10, 80)
    return dict(L=_show_list(rng, xs), k=str(k)), [f"xs = {xs}", f"k = {k}"], ["result = sum(1 for x in xs if x > k)"]


def _filter_above(rng):
    xs, k = _nums(rng, 4, 9, 0, 99), rng.randint(10, 80)
    return dict(L=_show_list(rng, xs), k=str(k)), [f"xs = {xs}", f"k = {k}"], ["result = [x for x in xs if x > k]"]


def _count_of(rng):
    xs = [rng.randint(0, 6) for _ in range(rng.randint(5, 10))]
    k = rng.choice(xs)
    return dict(L=_show_list(rng, xs), k=str(k)), [f"xs = {xs}", f"k = {k}"], ["result = xs.count(k)"]


def _index_of(rng):
    xs = rng.sample(range(1, 99), rng.randint(4, 8))
    k = rng.choice(xs)
    return dict(L=_show_list(rng, xs), k=str(k)), [f"xs = {xs}", f"k = {k}"], ["result = xs.index(k)"]


PRIME_TEST = "all(k % d for d in range(2, int(k ** 0.5) + 1))"
LIST_FORMATS = ("list", "spaces", "commas", "lines")
THE_LIST = "the list {L}"

CODE_FAMILIES: dict[str, CodeFamily] = {
    # strings
    "reverse": CodeFamily(_s(lambda r, s: ["result = s[::-1]"]), (
        "Reverse the string {q}.", "Print {q} backwards.", "What is {q} written in reverse?",
        "Show the text {q} with its characters in reverse order.", "Give {q} read from right to left.")),
    "upper": CodeFamily(_s(lambda r, s: ["result = s.upper()"]), (
        "Convert {q} to upper case.", "Print {q} in capital letters.", "Make every letter of {q} uppercase.",
        "Give {q} in all caps.")),
    "lower": CodeFamily(lambda r: (lambda s: (dict(q=_quote(r, s)), [f"s = {s!r}"], ["result = s.lower()"]))(
        _text_words(r).upper() if r.random() < 0.5 else _text_words(r).title()), (
        "Convert {q} to lower case.", "Print {q} in small letters.", "Make every letter of {q} lowercase.",
        "Give {q} with no capital letters.")),
    "title": CodeFamily(_s(lambda r, s: ["result = s.title()"]), (
        "Capitalize the first letter of each word in {q}.", "Convert {q} to title case.",
        "Print {q} with every word capitalized.", "Give {q} with each word starting with a capital.")),
    "vowels": CodeFamily(_s(lambda r, s: ["result = sum(1 for c in s if c in 'aeiou')"]), (
        "Count the vowels in {q}.", "How many vowels does {q} contain?", "Print the number of vowels in {q}.",
        "Find how many of the letters a, e, i, o, u appear in {q}.")),
    "letter_count": CodeFamily(_letter_count, (
        "Count how many times the letter '{c}' appears in {q}.", "How many '{c}' characters are in {q}?",
        "Print the number of occurrences of '{c}' in {q}.", "Find the count of '{c}' in the text {q}.")),
    "words": CodeFamily(_s(lambda r, s: ["result = len(s.split())"]), (
        "Count the words in {q}.", "How many words are in {q}?", "Print the number of words in {q}.",
        "Find the word count of {q}.")),
    "length": CodeFamily(_s(lambda r, s: ["result = len(s)"]), (
        "Print the length of the string {q}.", "How many characters are in {q}?",
        "Count the characters of {q}, spaces included.", "Find the number of characters in {q}.")),
    "palindrome": CodeFamily(_palindrome, (
        "Is {q} a palindrome?", "Check whether {q} reads the same backwards.",
        "Determine if the string {q} is a palindrome.", "Does {q} read the same forwards and backwards?"),
        ("bool",)),
    "no_spaces": CodeFamily(_s(lambda r, s: ["result = s.replace(' ', '')"]), (
        "Remove all spaces from {q}.", "Print {q} without its spaces.", "Delete the spaces in {q}.",
        "Give {q} with the spaces taken out.")),
    "replace": CodeFamily(_replace, (
        "Replace every '{a}' in {q} with '{b}'.", "In {q}, change each '{a}' to '{b}'.",
        "Print {q} with all '{a}' characters swapped for '{b}'.", "Substitute '{b}' for every '{a}' in {q}.")),
    "acronym": CodeFamily(_s(lambda r, s: ["result = ''.join(w[0] for w in s.split()).upper()"]), (
        "Make an acronym from the first letters of the words in {q}.",
        "Print the uppercase first letter of each word in {q}, joined together.",
        "Build the initials of {q} in capitals.", "Give the capitalized initials of the words of {q}.")),
    "longest_word": CodeFamily(lambda r: (lambda s: (dict(q=_quote(r, s)), [f"s = {s!r}"],
                                                     ["result = max(s.split(), key=len)"]))(_text_words(r, 3, 5)), (
        "Find the longest word in {q}.", "Which word of {q} is the longest?",
        "Print the longest word of {q} (the first one if tied).", "Give the word with the most letters in {q}.")),
    "sort_letters": CodeFamily(lambda r: (lambda s: (dict(q=_quote(r, s)), [f"s = {s!r}"],
                                                     ["result = ''.join(sorted(s))"]))(r.choice(WORDS)), (
        "Sort the letters of {q} alphabetically.", "Print the characters of {q} in alphabetical order.",
        "Arrange the letters of {q} from a to z.", "Give {q} with its letters sorted.")),
    "unique_letters": CodeFamily(_s(lambda r, s: ["result = len(set(s.replace(' ', '')))"]), (
        "How many different letters are in {q}?", "Count the distinct letters of {q}.",
        "Print the number of unique letters in {q}, ignoring spaces.", "Find how many distinct characters, spaces "
        "excluded, {q} has.")),
    "repeat": CodeFamily(_repeat, (
        "Repeat {q} {k} times.", "Print {q} {k} times in a row with no spaces.", "Write {q} joined to itself {k} "
        "times.", "Give {q} repeated {k} times.")),
    "swapcase": CodeFamily(lambda r: (lambda s: (dict(q=_quote(r, s)), [f"s = {s!r}"], ["result = s.swapcase()"]))(
        "".join(c.upper() if r.random() < 0.4 else c for c in _text_words(r))), (
        "Swap the case of every letter in {q}.", "Turn capitals into small letters and small into capitals in {q}.",
        "Invert the letter case of {q}.", "Print {q} with upper and lower case exchanged.")),
    # numbers
    "is_prime": CodeFamily(_n(2, 500, lambda r, n: [f"result = n > 1 and {PRIME_TEST.replace('k', 'n')}"]), (
        "Is {n} a prime number?", "Check whether {n} is prime.", "Determine if {n} is a prime.",
        "Tell whether {n} has no divisors other than 1 and itself."), ("bool",)),
    "primes_upto": CodeFamily(_n(10, 120, lambda r, n: [f"result = [k for k in range(2, n + 1) if {PRIME_TEST}]"]), (
        "List the prime numbers up to {n}.", "Find all primes less than or equal to {n}.",
        "Give every prime from 2 to {n}.", "Which numbers up to {n} are prime?"), LIST_FORMATS),
    "count_primes": CodeFamily(_n(10, 500, lambda r, n: [f"result = sum(1 for k in range(2, n + 1) if {PRIME_TEST})"]),
                               (
        "How many primes are there up to {n}?", "Count the prime numbers from 2 to {n}.",
        "Print the number of primes not above {n}.", "Find how many primes are at most {n}.")),
    "sum_primes": CodeFamily(_n(10, 300, lambda r, n: [f"result = sum(k for k in range(2, n + 1) if {PRIME_TEST})"]), (
        "Sum the primes up to {n}.", "What is the sum of all primes not greater than {n}?",
        "Add up every prime from 2 to {n}.", "Find the total of the primes up to {n}.")),
    "first_primes": CodeFamily(_n(3, 25, lambda r, n: [
        "result = []", "k = 2", "while len(result) < n:", f"    if {PRIME_TEST}:", "        result.append(k)",
        "    k += 1"]), (
        "List the first {n} prime numbers.", "Give the first {n} primes.", "Print the first {n} primes in order.",
        "What are the first {n} primes?"), LIST_FORMATS),
    "fib_nth": CodeFamily(_n(1, 60, lambda r, n: ["a, b = 0, 1", "for _ in range(n):", "    a, b = b, a + b",
                                                   "result = a"]), (
        "Compute the {n}th Fibonacci number, where F(0) = 0 and F(1) = 1.",
        "What is Fibonacci number {n} (F(0) = 0, F(1) = 1)?",
        "Print F({n}) for the Fibonacci sequence 0, 1, 1, 2, 3, ...",
        "Find Fibonacci({n}) counting from F(0) = 0.")),
    "fib_list": CodeFamily(_n(3, 25, lambda r, n: ["result = []", "a, b = 0, 1", "for _ in range(n):",
                                                    "    result.append(a)", "    a, b = b, a + b"]), (
        "List the first {n} Fibonacci numbers, starting 0, 1.", "Give the first {n} terms of the Fibonacci sequence "
        "beginning with 0 and 1.", "Print the first {n} Fibonacci numbers from 0.",
        "What are the first {n} Fibonacci numbers (0, 1, 1, 2, ...)?"), LIST_FORMATS),
    "fib_below": CodeFamily(_n(10, 5000, lambda r, n: ["result = []", "a, b = 0, 1", "while a < n:",
                                                        "    result.append(a)", "    a, b = b, a + b"]), (
        "List the Fibonacci numbers below {n}, starting 0, 1.", "Give every Fibonacci number less than {n} "
        "(0, 1, 1, 2, ...).", "Print the Fibonacci numbers smaller than {n}.",
        "Which Fibonacci numbers, from 0, are under {n}?"), LIST_FORMATS),
    "factorial": CodeFamily(_n(0, 20, lambda r, n: ["result = math.factorial(n)"]), (
        "Compute {n} factorial.", "What is {n}!?", "Print the factorial of {n}.",
        "Multiply together all the integers from 1 to {n}.")),
    "gcd": CodeFamily(_gcd, (
        "Find the greatest common divisor of {a} and {b}.", "What is the GCD of {a} and {b}?",
        "Print the largest number that divides both {a} and {b}.", "Compute gcd({a}, {b}).")),
    "lcm": CodeFamily(_lcm, (
        "Find the least common multiple of {a} and {b}.", "What is the LCM of {a} and {b}?",
        "Print the smallest positive number divisible by both {a} and {b}.", "Compute lcm({a}, {b}).")),
    "digit_sum": CodeFamily(_n(10, 10 ** 9, lambda r, n: ["result = sum(int(d) for d in str(n))"]), (
        "Sum the digits of {n}.", "What is the digit sum of {n}?", "Add up the digits in {n}.",
        "Print the total of the digits of {n}.")),
    "digit_count": CodeFamily(_n(1, 10 ** 12, lambda r, n: ["result = len(str(n))"]), (
        "How many digits does {n} have?", "Count the digits of {n}.", "Print the number of digits in {n}.",
        "Find the length of {n} written in decimal.")),
    "reverse_number": CodeFamily(_n(10, 10 ** 7, lambda r, n: ["result = int(str(n)[::-1])"]), (
        "Reverse the digits of {n}.", "Print {n} with its digits in reverse order.", "Write the number {n} backwards.",
        "Give the number made by reading {n} from right to left.")),
    "divisors": CodeFamily(_n(2, 300, lambda r, n: ["result = [d for d in range(1, n + 1) if n % d == 0]"]), (
        "List the divisors of {n}.", "Find all positive factors of {n}.", "Give every number that divides {n} evenly.",
        "What are the factors of {n}?"), LIST_FORMATS),
    "count_divisors": CodeFamily(_n(2, 1000, lambda r, n: ["result = sum(1 for d in range(1, n + 1) if n % d == 0)"]), (
        "How many divisors does {n} have?", "Count the positive factors of {n}.",
        "Print the number of divisors of {n}.", "Find how many numbers divide {n} evenly.")),
    "binary": CodeFamily(_n(1, 5000, lambda r, n: ["result = bin(n)[2:]"]), (
        "Convert {n} to binary.", "Write {n} in base 2.", "Print the binary representation of {n}.",
        "Give {n} as a string of binary digits.")),
    "even_odd": CodeFamily(_n(0, 10 ** 6, lambda r, n: ["result = 'even' if n % 2 == 0 else 'odd'"]), (
        "Is {n} even or odd?", "Print even or odd for {n}.", "Tell whether {n} is even or odd.",
        "Say if {n} is an even or an odd number.")),
    "perfect_square": CodeFamily(lambda r: (lambda n: (dict(n=str(n)), [f"n = {n}"],
                                                       ["result = math.isqrt(n) ** 2 == n"]))(
        r.choice([r.randint(1, 60) ** 2, r.randint(2, 3600)])), (
        "Is {n} a perfect square?", "Check whether {n} is the square of an integer.",
        "Determine if {n} is a perfect square.", "Does {n} have a whole-number square root?"), ("bool",)),
    "power": CodeFamily(_power, (
        "Compute {a} to the power {b}.", "What is {a} raised to {b}?", "Print {a}**{b}.",
        "Find {a} multiplied by itself {b} times.")),
    "sum_range": CodeFamily(_range_sum("all"), (
        "Sum the integers from {a} to {b}.", "Add all whole numbers between {a} and {b} inclusive.",
        "What is the total of the numbers {a} through {b}?", "Find the sum of every integer from {a} up to {b}.")),
    "sum_evens": CodeFamily(_range_sum("even"), (
        "Sum the even numbers from {a} to {b}.", "Add the even integers between {a} and {b} inclusive.",
        "What do the even numbers from {a} through {b} add up to?",
        "Find the total of the even values from {a} to {b}.")),
    "sum_odds": CodeFamily(_range_sum("odd"), (
        "Sum the odd numbers from {a} to {b}.", "Add the odd integers between {a} and {b} inclusive.",
        "What do the odd numbers from {a} through {b} add up to?",
        "Find the total of the odd values from {a} to {b}.")),
    "sum_squares": CodeFamily(_range_sum("squares"), (
        "Sum the squares of the integers from {a} to {b}.", "Add up i squared for i from {a} to {b}.",
        "What is the sum of the squares of {a} through {b}?", "Find the total of the squares from {a} to {b}.")),
    "multiples_sum": CodeFamily(_multiples("sum"), (
        "Sum the multiples of {k} below {n}.", "Add every positive multiple of {k} less than {n}.",
        "What is the total of the multiples of {k} under {n}?", "Find the sum of positive numbers below {n} "
        "divisible by {k}.")),
    "multiples_count": CodeFamily(_multiples("count"), (
        "Count the multiples of {k} below {n}.", "How many positive multiples of {k} are less than {n}?",
        "Print how many numbers under {n} are divisible by {k}.", "Find the number of multiples of {k} below {n}.")),
    "multiples_list": CodeFamily(_multiples("list"), (
        "List the multiples of {k} below {n}.", "Give every positive multiple of {k} less than {n}.",
        "Print the numbers under {n} divisible by {k}.", "Which positive numbers below {n} are multiples of {k}?"),
        LIST_FORMATS),
    # lists
    "maximum": CodeFamily(_xs(lambda r, xs: ["result = max(xs)"]), (
        f"Find the largest number in {THE_LIST}.", "What is the maximum of {L}?", "Print the biggest value among {L}.",
        "Which of these is greatest: {L}?")),
    "minimum": CodeFamily(_xs(lambda r, xs: ["result = min(xs)"]), (
        f"Find the smallest number in {THE_LIST}.", "What is the minimum of {L}?", "Print the lowest value among {L}.",
        "Which of these is least: {L}?")),
    "list_sum": CodeFamily(_xs(lambda r, xs: ["result = sum(xs)"]), (
        f"Sum {THE_LIST}.", "What do the numbers {L} add up to?", "Print the total of {L}.", "Add together {L}.")),
    "mean": CodeFamily(_xs(lambda r, xs: ["result = sum(xs) / len(xs)"], a=0), (
        f"Compute the mean of {THE_LIST}.", "What is the average of {L}?", "Print the arithmetic mean of {L}.",
        "Find the average value of {L}.")),
    "median": CodeFamily(_xs(lambda r, xs: ["ys = sorted(xs)", "m = len(ys) // 2",
                                            "result = ys[m] if len(ys) % 2 else (ys[m - 1] + ys[m]) / 2"], a=0), (
        f"Find the median of {THE_LIST}.", "What is the median of {L}?", "Print the middle value of {L} once sorted.",
        "Give the median of the numbers {L}.")),
    "sort_asc": CodeFamily(_xs(lambda r, xs: ["result = sorted(xs)"]), (
        f"Sort {THE_LIST} in ascending order.", "Put {L} in order from smallest to largest.",
        "Arrange {L} in increasing order.",
        "Order the numbers {L} from low to high."), LIST_FORMATS),
    "sort_desc": CodeFamily(_xs(lambda r, xs: ["result = sorted(xs, reverse=True)"]), (
        f"Sort {THE_LIST} in descending order.", "Put {L} in order from largest to smallest.",
        "Arrange {L} in decreasing order.", "Order the numbers {L} from high to low."),
        LIST_FORMATS),
    "list_len": CodeFamily(_xs(lambda r, xs: ["result = len(xs)"]), (
        f"How many items are in {THE_LIST}?", "Count the elements of {L}.", "Print the length of {L}.",
        "Find how many numbers {L} holds.")),
    "dedupe": CodeFamily(lambda r: (lambda xs: (dict(L=_show_list(r, xs)), [f"xs = {xs}"],
                                                ["result = list(dict.fromkeys(xs))"]))(
        [r.randint(0, 9) for _ in range(r.randint(5, 10))]), (
        f"Remove the duplicates from {THE_LIST}, keeping the first occurrence of each.",
        "Drop repeated values from {L}, keeping the original order.",
        "Print {L} with each value only once, in order of "
        "first appearance.", "Give the distinct values of {L} in the order they first appear."),
        LIST_FORMATS),
    "evens": CodeFamily(_xs(lambda r, xs: ["result = [x for x in xs if x % 2 == 0]"], a=0), (
        f"Keep only the even numbers of {THE_LIST}.", "Filter {L} down to its even values.",
        "Print the even numbers from {L}.", "Which numbers in {L} are even?"), LIST_FORMATS),
    "odds": CodeFamily(_xs(lambda r, xs: ["result = [x for x in xs if x % 2 == 1]"], a=0), (
        f"Keep only the odd numbers of {THE_LIST}.", "Filter {L} down to its odd values.",
        "Print the odd numbers from {L}.", "Which numbers in {L} are odd?"), LIST_FORMATS),
    "above": CodeFamily(_filter_above, (
        f"Keep the numbers greater than {{k}} in {THE_LIST}.", "Which values in {L} are above {k}?",
        "Print the elements of {L} that exceed {k}.", "Filter {L} to the numbers bigger than {k}."),
        LIST_FORMATS),
    "count_above": CodeFamily(_count_above, (
        f"Count the numbers greater than {{k}} in {THE_LIST}.", "How many values in {L} are above {k}?",
        "Print how many elements of {L} exceed {k}.", "Find how many of {L} are bigger than {k}.")),
    "count_of": CodeFamily(_count_of, (
        f"Count how many times {{k}} appears in {THE_LIST}.", "How often does {k} occur in {L}?",
        "Print the number of times {k} is in {L}.", "Find the count of {k} in {L}.")),
    "index_of": CodeFamily(_index_of, (
        f"Find the index of {{k}} in {THE_LIST}, counting from 0.", "At what zero-based position is {k} in {L}?",
        "Print the 0-based index of {k} in {L}.", "Where, counting from zero, does {k} appear in {L}?")),
    "second_largest": CodeFamily(lambda r: (lambda xs: (dict(L=_show_list(r, xs)), [f"xs = {xs}"],
                                                        ["result = sorted(set(xs))[-2]"]))(
        r.sample(range(-20, 99), r.randint(4, 8))), (
        f"Find the second largest number in {THE_LIST}.", "What is the second biggest value of {L}?",
        "Print the second highest of {L}.", "Which number of {L} is second greatest?")),
    "product": CodeFamily(_xs(lambda r, xs: ["result = math.prod(xs)"], 2, 5, -9, 12), (
        f"Multiply together the numbers in {THE_LIST}.", "What is the product of {L}?", "Print the product of {L}.",
        "Find what you get multiplying all of {L}.")),
    "reverse_list": CodeFamily(_xs(lambda r, xs: ["result = xs[::-1]"]), (
        f"Reverse {THE_LIST}.", "Print {L} in reverse order.", "Give {L} backwards.",
        "Turn {L} around, last item first."),
        LIST_FORMATS),
    "squares": CodeFamily(_xs(lambda r, xs: ["result = [x * x for x in xs]"], 3, 7, -12, 30), (
        f"Square every number in {THE_LIST}.", "Give the square of each value of {L}.",
        "Print {L} with each element squared.",
        "Map each number of {L} to its square."), LIST_FORMATS),
    "spread": CodeFamily(_xs(lambda r, xs: ["result = max(xs) - min(xs)"]), (
        f"Find the range (largest minus smallest) of {THE_LIST}.",
        "What is the difference between the biggest and smallest "
        "of {L}?", "Print max minus min for {L}.", "How far apart are the highest and lowest values of {L}?")),
}
CODE_PREFIXES = ["", "", "", "Write a Python program for this: ", "Python task: ", "Code: ", "Please write code. ",
                 "Using Python: "]
CODE_SUFFIXES = ["", "", "", " Print the answer.", " Use Python.", " The program should print the result."]


def make_broad_code_task(family: str, rng: random.Random, split: str) -> CodeTask:
    fam = CODE_FAMILIES[family]
    t = rng.choice(split_range(len(fam.phrasings), N_HELDOUT_Q, split))
    slots, inputs, body = fam.draw(rng)
    text = fam.phrasings[t].format(**slots)
    printer = "print(result)"
    if fam.formats:
        table = BOOL_FORMATS if fam.formats == ("bool",) else FORMATS
        keys = list(table) if fam.formats == ("bool",) else list(fam.formats)
        key = rng.choice(keys)
        printer, phrases = table[key]
        ask = phrases[rng.choice(split_range(len(phrases), 1, split))]
        if key != keys[0] or rng.random() < 0.5:  # the default format is sometimes left unsaid
            text = f"{text} {ask}"
    imports = ["import math"] if any("math." in line for line in body) else []
    program = "\n".join(imports + inputs + body + [printer])
    text = rng.choice(CODE_PREFIXES) + text + rng.choice(CODE_SUFFIXES)
    return CodeTask(family, t, text, program, _run(program))


def _run(program: str) -> str:
    """What the program prints (stripped): generator-only, our own fixed programs."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(program, {"__builtins__": __builtins__})
    return out.getvalue().strip()


def make_broad_code_tasks(n: int, seed: int = 0, split: str = "train", families=tuple(CODE_FAMILIES)) -> list[CodeTask]:
    rng = random.Random(f"{seed}-{split}-code-broad")
    return [make_broad_code_task(families[i % len(families)], rng, split) for i in range(n)]
