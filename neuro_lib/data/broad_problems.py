"""Broad generators for Reason-mini (here) and Code-mini (data/broad_code.py): many problem families, open
vocabularies, varied wording.

data/word_problems.py's generators (the "templated" variant) have eight word-problem families and nine code
families with a handful of fixed phrasings and closed word lists: a fine-tune learns the generator, not reading.
These ("broad") draw from large pools of people, objects, containers, units and currencies, build each text from
fact sentences (several phrasings each, in shuffled order where the facts are independent, sometimes after the
question), add distractor sentences with numbers the plan must not use, write small counts as words now and then,
and cover many more families:

- reason: division and sharing (exact, remainders, whole groups, containers needed), percentages (of, discount,
  increase, percent change, what percent), rates (speed, time, work), unit prices, averages, fractions of an amount,
  ratios, multi-step shopping, totals and differences, written arithmetic, conversions both ways, area/perimeter,
  interest, saving towards a goal; and the templated families' kinds (groups, change, ages, speed, savings);
- code: strings (reverse, case, vowels, a letter's count, words, palindromes, acronyms, longest word, ...),
  numbers (primes, Fibonacci, factorial, gcd/lcm, digit sums, divisors, multiples, binary, ...), lists (max/min,
  sums, means, medians, sorting, filtering, de-duplication, second largest, ...), with an output format the task
  asks for (a list, spaces, commas, lines, yes/no).

    p = make_broad_problems(3, seed=0)[0]
    p.text, p.target    # "Priya buys 4 notebooks at $2.35 each ... How much change does Priya get?",
                        # b"CALL calc(4*2.35) -> 9.4\nCALL calc(20-9.4) -> 10.6\nANSWER 10.6"

Plans use the calculator format Reason-mini decodes, and every number in a plan is grounded: written in the question
(digits as written; "1,200" as 1200; small counts as words), a constant of a word the question uses
(word_problems.plan_constants: unit factors, 100 for a percentage, 2 for "half", the count of numbers averaged...),
or an earlier result. Programs: data/broad_code.py.

Held out: in every family the last question phrasing(s) and the last phrasing of each fact with more than one, so a
held-out text's wording is never seen in training (its vocabulary comes from the same pools). Nothing here was
written from the outside evaluation sets (data/eval/): the families follow the kinds issue 21 names.
Tests: tests/test_broad_problems.py.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable

from neuro_lib.data.word_problems import (FACTORS, NUMBER_WORDS, SPLITS, Problem, evaluate_steps,
                                          fmt_number)

# -- open vocabularies ------------------------------------------------------------------------------------------
NAMES = """Aaliyah Abdul Ada Adele Aiko Akira Alba Alejandro Ali Amara Amir Ana Anika Anton Aria Arjun Astrid Ayesha
Bao Beatriz Ben Bianca Bilal Bruno Camila Carlos Chen Chidi Chloe Dara Daniel Dev Diego Dmitri Eli Elena Emeka Emma
Esra Ethan Fatima Fay Felix Freya Gabriel Grace Gus Hana Hassan Hiro Ibrahim Ines Ingrid Isla Ivan Jack Jamal Jana
Javier Jin Jo Jonas Julia Kai Kamala Kenji Kim Kofi Lars Lea Leila Liam Lina Lucas Luis Maya Mei Mia Milan Mina Moses
Nadia Naomi Nia Nikhil Noah Nora Olga Omar Oscar Paolo Pedro Priya Rafael Rania Ravi Rosa Ruth Sami Sara Sean Selin
Sofia Sven Tariq Tess Theo Tomas Uma Victor Wei Yara Yusuf Zara Zoe""".split()
# (plural, singular) of countable things
THINGS = [tuple(x.split("/")) for x in """apples/apple pencils/pencil stamps/stamp marbles/marble cards/card
shells/shell coins/coin stickers/sticker cookies/cookie eggs/egg books/book oranges/orange buttons/button
beads/bead balloons/balloon candles/candle cupcakes/cupcake tomatoes/tomato potatoes/potato bottles/bottle
crayons/crayon erasers/eraser notebooks/notebook lemons/lemon plums/plum pears/pear bricks/brick tiles/tile
nails/nail screws/screw flowers/flower roses/rose tulips/tulip seeds/seed photos/photo toys/toy blocks/block
magnets/magnet pins/pin ribbons/ribbon socks/sock cups/cup plates/plate bowls/bowl spoons/spoon forks/fork
chairs/chair lamps/lamp boxes/box envelopes/envelope letters/letter tickets/ticket pebbles/pebble feathers/feather
muffins/muffin bagels/bagel sandwiches/sandwich peaches/peach carrots/carrot onions/onion mangoes/mango
dumplings/dumpling tokens/token badges/badge puzzles/puzzle kites/kite candies/candy berries/berry""".split()]
CONTAINERS = [tuple(x.split("/")) for x in """boxes/box bags/bag jars/jar baskets/basket crates/crate packs/pack
trays/tray tins/tin cartons/carton buckets/bucket envelopes/envelope sacks/sack drawers/drawer shelves/shelf
bins/bin cases/case""".split()]
# (plural, singular) of things bought at a price ("_" is a space)
GOODS = [tuple(x.replace("_", " ").split("/")) for x in """notebooks/notebook pens/pen mugs/mug shirts/shirt hats/hat scarves/scarf
tickets/ticket sandwiches/sandwich coffees/coffee books/book candles/candle towels/towel pillows/pillow
plants/plant posters/poster batteries/battery bottles_of_juice/bottle_of_juice loaves_of_bread/loaf_of_bread
kilograms_of_rice/kilogram_of_rice bags_of_flour/bag_of_flour boxes_of_tea/box_of_tea umbrellas/umbrella
headphones/pair_of_headphones paintbrushes/paintbrush puzzles/puzzle comics/comic jars_of_honey/jar_of_honey
pizzas/pizza muffins/muffin magazines/magazine cables/cable lightbulbs/lightbulb""".split()]
GROUPS = ["children", "students", "friends", "players", "guests", "workers", "teams", "classes", "neighbours",
          "families", "tables", "volunteers", "visitors", "cousins", "members"]
VEHICLES = ["car", "train", "bus", "cyclist", "runner", "boat", "truck", "plane", "walker", "horse", "scooter",
            "ferry", "van", "tram", "skater"]
MACHINES = [("printer", "pages"), ("machine", "bolts"), ("baker", "loaves"), ("factory", "chairs"),
            ("pump", "liters"), ("typist", "words"), ("robot", "parts"), ("team", "boxes"), ("farmer", "rows"),
            ("bakery", "rolls"), ("press", "posters"), ("tap", "liters"), ("mill", "sacks"), ("painter", "walls")]
# currencies: (how an amount is written, the word after a number)
CURRENCIES = [("${}", "dollars"), ("{} dollars", "dollars"), ("{} euros", "euros"), ("€{}", "euros"),
              ("£{}", "pounds"), ("{} pounds", "pounds"), ("{} francs", "francs"), ("{} yuan", "yuan")]
CONVERSIONS = FACTORS  # (big unit, small unit, factor): word_problems.plan_constants knows them all
WORDS = """apple river stone planet window garden silver rocket yellow pencil music orange tiger cloud banana
forest butter lemon ocean mirror anchor basket candle dragon engine falcon guitar harbor island jacket kettle ladder
meadow needle orchid pepper quartz rabbit saddle tunnel umbrella valley walnut yogurt zebra bridge castle dolphin
feather glacier hammer igloo jungle koala lantern marble nectar olive parrot puzzle radar sunset ticket violin
wagon copper desert ember frost goblet honey iris jasmine kayak lilac mango nutmeg oyster pebble quill raven sparrow
thistle velvet willow amber breeze cactus daisy eclipse fossil granite hazel indigo juniper kiwi lotus maple
noodle onyx pumpkin quiet rhythm saffron tulip unicorn vapor wizard yonder zephyr ballet cobalt domino ferry
gadget helmet inkwell jigsaw kernel legend mosaic nickel oracle pixel quiver ripple sketch timber upland vortex
whistle""".split()


def _pick(rng, pool):
    return rng.choice(pool)


def _count_text(rng, k: int) -> str:
    """A small count, sometimes as a word (plan_constants maps the word back to its digits)."""
    return NUMBER_WORDS[k] if k < len(NUMBER_WORDS) and k >= 2 and rng.random() < 0.2 else str(k)


def _big(rng, k: int) -> str:
    """An integer as written: thousands sometimes with commas (a plan writes it without)."""
    return f"{k:,}" if k >= 1000 and rng.random() < 0.4 else str(k)


def _money(rng, lo: int, hi: int, cents: float = 0.5) -> str:
    """An amount's literal: whole, or with two decimals (the plan copies it as written)."""
    whole = rng.randint(lo, hi)
    if rng.random() < cents:
        return f"{whole}.{rng.choice([5, 10, 20, 25, 40, 50, 75, 80, 95, 99, 15, 35, 45, 60]):02d}"
    return str(whole)


def _cur(rng):
    fmt, word = _pick(rng, CURRENCIES)
    return lambda x: fmt.format(x), word


# -- Reason: families -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    draw: Callable            # rng -> (slots, plan): plan steps use the slots' literal numbers, "{0}" earlier results
    facts: tuple              # each fact: its phrasings (the last one held out when there are several)
    questions: tuple          # the last N_HELDOUT_Q are held out
    ordered: bool = False     # facts must stay in order (a later one refers to an earlier one)


N_HELDOUT_Q = 1


def _groups(rng):
    c_pl, c_sg = _pick(rng, CONTAINERS)
    t_pl, t_sg = _pick(rng, THINGS)
    a, b, c = rng.randint(2, 40), rng.randint(2, 36), rng.randint(1, 60)
    return dict(n=_pick(rng, NAMES), a=_count_text(rng, a), b=str(b), c=str(c), C=c_pl, t=t_pl), \
        [f"{a}*{b}+{c}"]


def _share_exact(rng):
    k, each = rng.randint(2, 16), rng.randint(2, 60)
    t_pl, _ = _pick(rng, THINGS)
    return dict(n=_pick(rng, NAMES), T=_big(rng, k * each), k=_count_text(rng, k), t=t_pl, g=_pick(rng, GROUPS)), \
        [f"{k * each}/{k}"]


def _share_money(rng):
    k = rng.randint(2, 12)
    each = rng.choice([rng.randint(3, 90), rng.randint(3, 90) + rng.choice([0.25, 0.5, 0.75])])
    total = fmt_number(each * k) if each * k != int(each * k) else str(int(each * k))
    cur, _ = _cur(rng)
    return dict(T=cur(total), k=_count_text(rng, k), g=_pick(rng, GROUPS), n=_pick(rng, NAMES)), [f"{total}/{k}"]


def _remainder(rng):
    k = rng.randint(3, 15)
    T = k * rng.randint(2, 30) + rng.randint(1, k - 1)
    t_pl, _ = _pick(rng, THINGS)
    return dict(n=_pick(rng, NAMES), T=str(T), k=_count_text(rng, k), t=t_pl, g=_pick(rng, GROUPS)), [f"{T}%{k}"]


def _packing(rng, k_max: int, spare_min: int, plan: str):
    """T things packed k to a container, T = k * whole + spare; `plan` formats T and k (whole groups, containers
    needed)."""
    k = rng.randint(3, k_max)
    T = k * rng.randint(2, 40) + rng.randint(spare_min, k - 1)
    t_pl, _ = _pick(rng, THINGS)
    c_pl, c_sg = _pick(rng, CONTAINERS)
    return dict(n=_pick(rng, NAMES), T=_big(rng, T), k=str(k), t=t_pl, C=c_pl, c=c_sg), [plan.format(T=T, k=k)]


def _whole_groups(rng):
    return _packing(rng, 24, 0, "{T}//{k}")


def _containers_needed(rng):
    return _packing(rng, 30, 1, "ceil({T}/{k})")


def _percent_of(rng):
    p = rng.choice([5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 60, 75, 80, 8, 4, 2.5, 12.5, 3, 6, 90])
    x = rng.choice([rng.randint(2, 50) * 10, rng.randint(10, 999), rng.randint(1, 40) * 4])
    t_pl, _ = _pick(rng, THINGS)
    slots = dict(p=fmt_number(p), x=str(x), n=_pick(rng, NAMES), t=t_pl, g=_pick(rng, GROUPS))
    return slots, [f"{x}*{fmt_number(p)}/100"]


def _discount(rng):
    p = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 12, 35])
    x = _money(rng, 8, 400, 0.3)
    cur, _ = _cur(rng)
    g_pl, g_sg = _pick(rng, GOODS)
    return dict(p=str(p), X=cur(x), item=g_sg, n=_pick(rng, NAMES)), [f"{x}*{p}/100", f"{x}-{{0}}"]


def _increase(rng):
    p = rng.choice([5, 8, 10, 12, 15, 18, 20, 25, 30, 40, 50, 2, 3, 6])
    x = _money(rng, 10, 900, 0.3)
    cur, _ = _cur(rng)
    what = rng.choice(["tip", "tax", "service charge", "raise", "fee"])
    return dict(p=str(p), X=cur(x), w=what, n=_pick(rng, NAMES)), [f"{x}*{p}/100", f"{x}+{{0}}"]


def _growth(rng):
    p = rng.choice([5, 10, 20, 25, 30, 40, 50, 15, 60])
    x = rng.randint(2, 90) * 20
    up = rng.random() < 0.6
    what = rng.choice(["the town's population", "the club's membership", "the number of visitors",
                       "the school's enrolment", "the herd", "the library's collection", "the shop's sales"])
    return dict(p=str(p), x=_big(rng, x), w=what, dir="grows" if up else "falls",
                dir2="increase" if up else "decrease"), [f"{x}*{p}/100", f"{x}{'+' if up else '-'}{{0}}"]


def _percent_change(rng):
    a = rng.choice([20, 25, 40, 50, 80, 100, 125, 200, 250, 400, 500, 800, 1000, 160, 320])
    b = a + rng.choice([-1, 1]) * rng.randint(1, a // 2) if rng.random() < 0.9 else a * 2
    cur, _ = _cur(rng)
    g_pl, g_sg = _pick(rng, GOODS)
    up = b > a
    return dict(a=cur(str(a)), b=cur(str(b)), item=g_sg, dir="rise" if up else "fall",
                dir2="increase" if up else "decrease"), [f"({b}-{a})/{a}*100" if up else f"({a}-{b})/{a}*100"]


def _what_percent(rng):
    b = rng.choice([20, 25, 40, 50, 80, 100, 200, 250, 400, 500, 16, 32, 64, 125])
    a = rng.randint(1, b)
    t_pl, _ = _pick(rng, THINGS)
    return dict(a=str(a), b=str(b), t=t_pl, n=_pick(rng, NAMES), g=_pick(rng, GROUPS)), [f"{a}/{b}*100"]


def _unit_price(rng):
    k = rng.randint(2, 12)
    each = rng.randint(1, 60) + rng.choice([0, 0, 0.25, 0.5, 0.75, 0.2, 0.4, 0.8, 0.05])
    total = f"{each * k:.2f}".rstrip("0").rstrip(".") if rng.random() < 0.5 else f"{each * k:.2f}"
    cur, _ = _cur(rng)
    g_pl, g_sg = _pick(rng, GOODS)
    return dict(T=cur(total), k=_count_text(rng, k), item=g_pl, one=g_sg, n=_pick(rng, NAMES)), [f"{total}/{k}"]


def _unit_price_scale(rng):
    k, m = rng.randint(2, 10), rng.randint(2, 15)
    each = rng.randint(1, 40) + rng.choice([0, 0.25, 0.5, 0.75])
    total = fmt_number(round(each * k, 2))
    cur, _ = _cur(rng)
    g_pl, g_sg = _pick(rng, GOODS)
    return dict(T=cur(total), k=_count_text(rng, k), m=str(m), item=g_pl, n=_pick(rng, NAMES)), \
        [f"{total}/{k}", f"{{0}}*{m}"]


def _speed(rng):
    t = rng.randint(2, 9)
    v = rng.randint(4, 120)
    unit = rng.choice(["kilometers", "miles", "km"])
    return dict(d=str(v * t), t=str(t), u=unit, v=_pick(rng, VEHICLES)), [f"{v * t}/{t}"]


def _travel_time(rng):
    v = rng.choice([4, 5, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 60, 75, 80, 90, 100, 120])
    d = v * rng.randint(1, 9) + rng.choice([0, 0, v // 2 if v % 2 == 0 else 0])
    unit = rng.choice(["kilometers", "miles", "km"])
    return dict(d=str(d), s=str(v), u=unit, v=_pick(rng, VEHICLES)), [f"{d}/{v}"]


def _work_rate(rng):
    who, what = _pick(rng, MACHINES)
    h = rng.randint(2, 10)
    per = rng.randint(2, 90)
    s = rng.randint(2, 14)
    return dict(w=who, x=what, a=str(per * h), h=str(h), s=str(s)), [f"{per * h}/{h}", f"{{0}}*{s}"]


def _average(rng):
    k = rng.randint(3, 6)
    xs = [rng.randint(1, 100) for _ in range(k - 1)]
    xs.append(rng.randint(1, 100))
    while sum(xs) * 100 % k:          # a terminating mean with at most two decimals
        xs[-1] += 1
    what = rng.choice([("test scores", "score"), ("heights in centimeters", "height"), ("daily steps in thousands",
                       "value"), ("weights in kilograms", "weight"), ("points per game", "score"),
                       ("temperatures", "temperature"), ("prices in dollars", "price"), ("ages", "age")])
    listed = ", ".join(map(str, xs[:-1])) + " and " + str(xs[-1])
    return dict(L=listed, w=what[0], one=what[1], n=_pick(rng, NAMES)), [f"({'+'.join(map(str, xs))})/{k}"]


FRACTIONS = [("half", 1, 2), ("a third", 1, 3), ("a quarter", 1, 4), ("a fifth", 1, 5), ("two thirds", 2, 3),
             ("three quarters", 3, 4), ("two fifths", 2, 5), ("a tenth", 1, 10), ("three fifths", 3, 5)]


def _fraction_of(rng):
    word, num, den = _pick(rng, FRACTIONS)
    x = den * rng.randint(2, 60)
    t_pl, _ = _pick(rng, THINGS)
    plan = [f"{x}/{den}"] if num == 1 else [f"{x}*{num}/{den}"]
    return dict(f=word, x=str(x), t=t_pl, n=_pick(rng, NAMES)), plan


def _ratio(rng):
    a, b = rng.randint(1, 7), rng.randint(1, 7)
    total = (a + b) * rng.randint(2, 40)
    n, m = rng.sample(NAMES, 2)
    t_pl, _ = _pick(rng, THINGS)
    return dict(a=str(a), b=str(b), T=str(total), n=n, m=m, t=t_pl), [f"{total}/({a}+{b})*{a}"]


def _shopping(rng):
    (g1, s1), (g2, s2) = rng.sample(GOODS, 2)
    n1, n2 = rng.randint(1, 6), rng.randint(1, 6)
    p1, p2 = _money(rng, 1, 25, 0.6), _money(rng, 1, 25, 0.6)
    cost = n1 * float(p1) + n2 * float(p2)
    pay = rng.choice([x for x in (10, 20, 50, 100, 200) if x > cost] or [int(cost) + 1])
    cur, _ = _cur(rng)
    return dict(n=_pick(rng, NAMES), a=_count_text(rng, n1), b=_count_text(rng, n2), g1=g1 if n1 > 1 else s1,
                g2=g2 if n2 > 1 else s2, P1=cur(p1), P2=cur(p2), pay=cur(str(pay))), \
        [f"{n1}*{p1}+{n2}*{p2}", f"{pay}-{{0}}"]


def _split_bill(rng):
    k = rng.randint(2, 8)
    n_items, price = rng.randint(2, 9), _money(rng, 2, 40, 0.4)
    cur, _ = _cur(rng)
    g_pl, _ = _pick(rng, GOODS)
    return dict(k=_count_text(rng, k), a=str(n_items), P=cur(price), item=g_pl, g=_pick(rng, GROUPS)), \
        [f"{n_items}*{price}", f"{{0}}/{k}"]


def _total(rng):
    k = rng.randint(3, 5)
    xs = [_money(rng, 1, 80, 0.5) for _ in range(k)]
    cur, _ = _cur(rng)
    things = rng.sample(["lunch", "a bus fare", "a book", "groceries", "a gift", "a movie", "snacks", "a haircut",
                         "flowers", "a phone case", "parking", "coffee", "a magazine", "socks"], k)
    listed = ", ".join(f"{cur(x)} on {t}" for x, t in zip(xs[:-1], things)) + f" and {cur(xs[-1])} on {things[-1]}"
    return dict(n=_pick(rng, NAMES), L=listed), ["+".join(xs)]


def _difference(rng):
    n, m = rng.sample(NAMES, 2)
    kind = rng.choice([("centimeters", "tall", "taller"), ("kilograms", "heavy", "heavier"),
                       ("points", "scored", "more points"), ("dollars", "saved", "more money"),
                       ("pages", "read", "more pages")])
    a = rng.randint(20, 900)
    b = a - rng.randint(1, a - 1)
    return dict(n=n, m=m, a=str(a), b=str(b), u=kind[0], adj=kind[1], more=kind[2]), [f"{a}-{b}"]


def _written(rng):
    a, b, c = rng.randint(2, 99), rng.randint(2, 40), rng.randint(1, 99)
    form = rng.randrange(6)
    if form == 0:
        q, e = f"{a * b} divided by {b}", f"{a * b}/{b}"
    elif form == 1:
        q, e = f"{a} times {b} plus {c}", f"{a}*{b}+{c}"
    elif form == 2:
        q, e = f"({a} + {c}) * {b}", f"({a}+{c})*{b}"
    elif form == 3:
        q, e = f"{a} multiplied by {b} minus {c}", f"{a}*{b}-{c}"
    elif form == 4:
        q, e = f"{a}.5 * {b}", f"{a}.5*{b}"
    else:
        q, e = f"{a * 10 + c} - {b} * {c % 9 + 2}", f"{a * 10 + c}-{b}*{c % 9 + 2}"
    return dict(e=q), [e]


def _convert_up(rng):
    big, small, f = _pick(rng, CONVERSIONS)
    a = rng.randint(2, 99) if rng.random() < 0.8 else rng.randint(2, 19) + 0.5
    return dict(a=fmt_number(a), big=big, small=small), [f"{fmt_number(a)}*{f}"]


def _convert_down(rng):
    big, small, f = _pick(rng, CONVERSIONS)
    k = rng.randint(2, 40) * f + (f // 2 if f % 2 == 0 and rng.random() < 0.3 else 0)
    return dict(a=_big(rng, k), big=big, small=small), [f"{k}/{f}"]


def _speed_convert(rng):
    a, b = rng.randint(10, 120), rng.randint(2, 9)
    return dict(a=str(a), b=str(b), v=_pick(rng, VEHICLES)), [f"{a}*{b}", "{0}*1000"]


def _area(rng):
    a, b, p = rng.randint(2, 40), rng.randint(2, 40), _money(rng, 2, 30, 0.3)
    cur, _ = _cur(rng)
    what = rng.choice(["floor", "garden", "wall", "patio", "room", "roof", "yard", "stage", "field"])
    cover = rng.choice(["tiles", "turf", "paint", "carpet", "flooring", "boards", "gravel"])
    return dict(a=str(a), b=str(b), P=cur(p), w=what, c=cover), [f"{a}*{b}", f"{{0}}*{p}"]


def _perimeter(rng):
    a, b = rng.randint(2, 90), rng.randint(2, 90)
    what = rng.choice(["field", "garden", "pool", "playground", "yard", "rug", "table", "pen", "court"])
    return dict(a=str(a), b=str(b), w=what), [f"{a}+{b}+{a}+{b}"]


def _interest(rng):
    P = rng.randint(2, 90) * 100
    r = rng.choice([2, 3, 4, 5, 6, 8, 10, 2.5, 1.5])
    y = rng.randint(2, 10)
    cur, _ = _cur(rng)
    return dict(P=cur(_big(rng, P)), r=fmt_number(r), y=_count_text(rng, y), n=_pick(rng, NAMES)), \
        [f"{P}*{fmt_number(r)}/100", f"{{0}}*{y}"]


def _save_goal(rng):
    w = rng.randint(3, 60)
    goal = w * rng.randint(2, 30) + rng.randint(0, w - 1)
    cur, _ = _cur(rng)
    g_pl, g_sg = _pick(rng, GOODS)
    return dict(n=_pick(rng, NAMES), G=cur(str(goal)), W=cur(str(w)), item=g_sg), [f"ceil({goal}/{w})"]


def _change(rng):
    b, c = rng.randint(2, 9), _money(rng, 1, 20, 0.4)
    a = rng.choice([x for x in (10, 20, 50, 100, 200) if x > b * float(c)] or [int(b * float(c)) + 5])
    cur, _ = _cur(rng)
    g_pl, _ = _pick(rng, GOODS)
    return dict(n=_pick(rng, NAMES), A=cur(str(a)), b=_count_text(rng, b), C=cur(c), item=g_pl), \
        [f"{b}*{c}", f"{a}-{{0}}"]


def _savings(rng):
    a, b = rng.randint(3, 80), rng.randint(2, 20)
    c = rng.randint(1, a * b - 1)
    cur, _ = _cur(rng)
    per = rng.choice(["week", "month", "day"])
    return dict(n=_pick(rng, NAMES), A=cur(str(a)), b=str(b), C=cur(str(c)), per=per), [f"{a}*{b}-{c}"]


def _ages(rng):
    a, b, c = rng.randint(3, 60), rng.randint(1, 30), rng.randint(1, 20)
    n, m = rng.sample(NAMES, 2)
    return dict(n=n, m=m, a=str(a), b=str(b), c=str(c)), [f"{a}+{b}+{c}"]


def _f(*phrasings):
    return tuple(phrasings)


REASON_FAMILIES: dict[str, Family] = {
    "groups": Family(_groups, (
        _f("{n} has {a} {C} with {b} {t} in each.", "There are {a} {C}, each holding {b} {t}.",
           "{n} fills {a} {C} and puts {b} {t} into every one.",
           "{a} {C} sit on the table; every one contains {b} {t}."),
        _f("{n} also finds {c} more {t}.", "Another {c} {t} are lying loose.", "{c} extra {t} are added.")),
        ("How many {t} are there altogether?", "How many {t} in total?", "What is the total number of {t}?",
         "Find how many {t} there are now.")),
    "share_exact": Family(_share_exact, (
        _f("{n} has {T} {t}.", "There are {T} {t} in a pile.", "{T} {t} have been collected."),
        _f("They are shared equally among {k} {g}.", "They get divided evenly between {k} {g}.",
           "Each of {k} {g} receives the same number of them.")),
        ("How many {t} does each get?", "How many {t} go to each one?", "What is each share?",
         "Work out how many {t} one of them receives."), ordered=True),
    "share_money": Family(_share_money, (
        _f("{k} {g} split a bill of {T} equally.", "A total of {T} is shared evenly by {k} {g}.",
           "{n} divides {T} equally among {k} {g}."),),
        ("How much does each pay?", "How much is one share?", "What does each of them get?",
         "Find the amount per person.")),
    "remainder": Family(_remainder, (
        _f("{n} has {T} {t}.", "There are {T} {t}.", "The collection counts {T} {t}."),
        _f("They are shared equally among {k} {g}, as many as possible each.",
           "{n} hands them out to {k} {g}, the same number to everyone, as many as possible.",
           "They are dealt evenly to {k} {g} until no full round is left.")),
        ("How many {t} are left over?", "How many {t} remain undistributed?", "What is the remainder?",
         "How many {t} cannot be shared out?"), ordered=True),
    "whole_groups": Family(_whole_groups, (
        _f("{n} has {T} {t}.", "There are {T} {t} to pack.", "A store receives {T} {t}."),
        _f("Each of the {C} holds exactly {k} {t}.", "One {c} takes {k} {t}.", "They are packed {k} to a {c}.")),
        ("How many {C} can be completely filled?", "How many full {C} is that?",
         "How many {C} are filled to the top?", "Find the number of full {C}."), ordered=True),
    "containers_needed": Family(_containers_needed, (
        _f("{n} must pack {T} {t}.", "There are {T} {t} to store.", "A delivery has {T} {t}."),
        _f("A {c} holds {k} {t} at most.", "Each {c} fits up to {k} {t}.", "Only {k} {t} fit in one {c}.")),
        ("How many {C} are needed for all of them?", "What is the smallest number of {C} that holds them all?",
         "How many {C} must be used?", "Find the fewest {C} needed."), ordered=True),
    "percent_of": Family(_percent_of, (
        _f("{n} has {x} {t}.", "There are {x} {t} in a box.", "A carton is filled with {x} {t}."),
        _f("{p}% of them are red.", "Exactly {p} percent of them are broken.", "A share of {p} percent is given away.")),
        ("How many is that?", "How many {t} is that percentage?", "Work out that number.",
         "What number does that percentage come to?"), ordered=True),
    "discount": Family(_discount, (
        _f("A {item} costs {X}.", "The price of a {item} is {X}.", "{n} wants a {item} priced at {X}."),
        _f("It is on sale at {p}% off.", "The shop takes {p} percent off the price.",
           "There is a {p}% discount today.")),
        ("What is the sale price?", "How much does it cost after the discount?", "What does {n} pay now?",
         "Find the reduced price."), ordered=True),
    "increase": Family(_increase, (
        _f("A bill comes to {X}.", "{n}'s purchase costs {X} before the {w}.", "The base amount is {X}."),
        _f("A {w} of {p}% is added.", "{n} adds {p} percent as a {w}.", "There is a {p}% {w} on top.")),
        ("What is the total?", "How much is paid in all?", "What is the amount including the {w}?",
         "Find the final amount."), ordered=True),
    "growth": Family(_growth, (
        _f("Last year {w} was {x}.", "{w} stood at {x}.", "At the start, {w} is {x}."),
        _f("It {dir} by {p}%.", "Then it {dir} by {p} percent.", "This year there is a {p}% {dir2}.")),
        ("What is it now?", "What is the new figure?", "What is the number after the change?",
         "Find the new value."), ordered=True),
    "percent_change": Family(_percent_change, (
        _f("A {item} cost {a} last month.", "The old price of a {item} was {a}.", "A {item} used to sell for {a}."),
        _f("Now it costs {b}.", "The new price is {b}.", "Today it sells for {b}.")),
        ("By what percent did the price {dir}?", "What is the percent {dir2} in price?",
         "What is the {dir2} as a percentage of the old price?",
         "Express the price {dir2} as a share of the old price, in percent."), ordered=True),
    "what_percent": Family(_what_percent, (
        _f("{n} answered {a} of {b} questions correctly.", "Out of {b} {t}, {a} are blue.",
           "{a} of the {b} {g} came."),),
        ("What percent is that?", "What percentage is that?", "Give that as a percentage.",
         "Express it as a percent.")),
    "unit_price": Family(_unit_price, (
        _f("{k} {item} cost {T}.", "{n} pays {T} for {k} {item}.", "A pack of {k} {item} sells for {T}."),),
        ("What does one cost?", "How much is a single one?", "What is the price of each?",
         "Find the cost of one of them.")),
    "unit_price_scale": Family(_unit_price_scale, (
        _f("{k} {item} cost {T}.", "{n} paid {T} for {k} {item}.", "{T} buys exactly {k} {item}."),),
        ("How much would {m} of them cost?", "What do {m} cost at the same price each?",
         "At that rate, what is the price of {m}?", "Find the cost of {m} of them at the same rate.")),
    "speed": Family(_speed, (
        _f("A {v} travels {d} {u} in {t} hours.", "In {t} hours a {v} covers {d} {u}.",
           "A {v} goes {d} {u}, taking {t} hours."),),
        ("What is its average speed in {u} per hour?", "How many {u} per hour is that?", "How fast does it go?",
         "Find its speed in {u} per hour.")),
    "travel_time": Family(_travel_time, (
        _f("A {v} moves at {s} {u} per hour.", "A {v} keeps a steady {s} {u} an hour.",
           "A {v}'s speed is {s} {u} per hour."),
        _f("The trip is {d} {u}.", "It has {d} {u} to go.", "The distance to cover is {d} {u}.")),
        ("How many hours does the trip take?", "How long will it take, in hours?",
         "How many hours until it arrives?", "Find the travel time in hours.")),
    "work_rate": Family(_work_rate, (
        _f("A {w} makes {a} {x} in {h} hours.", "In {h} hours a {w} produces {a} {x}.",
           "A {w} turns out {a} {x} every {h} hours."),),
        ("At that rate, how many {x} in {s} hours?", "How many {x} does it make in {s} hours?",
         "What is the output over {s} hours?", "Find how many {x} it produces in {s} hours.")),
    "average": Family(_average, (
        _f("{n}'s {w} are {L}.", "The {w} recorded are {L}.", "Here are some {w}: {L}."),),
        ("What is the average?", "What is the mean {one}?", "Find the mean.", "Compute the average {one}.")),
    "fraction_of": Family(_fraction_of, (
        _f("{n} has {x} {t}.", "A basket holds {x} {t}.", "There are {x} {t} on a shelf."),
        _f("{n} gives away {f} of them.", "{f} of them are sold.", "{f} of the {t} are eaten.")),
        ("How many is that?", "How many {t} does that come to?", "How many {t} is that part?",
         "Work out that part."), ordered=True),
    "ratio": Family(_ratio, (
        _f("{n} and {m} share {T} {t} in the ratio {a}:{b}.", "{T} {t} are split between {n} and {m} as {a} to {b}.",
           "{n} and {m} divide {T} {t}, {a} parts to {b}."),),
        ("How many does {n} get?", "What is {n}'s share?", "How many {t} go to {n}?",
         "Find {n}'s part.")),
    "shopping": Family(_shopping, (
        _f("{n} buys {a} {g1} at {P1} each.", "{n} picks {a} {g1} costing {P1} apiece."),
        _f("{n} also buys {b} {g2} at {P2} each.", "There are also {b} {g2} at {P2} each in the basket."),
        _f("{n} pays with {pay}.", "{n} hands over {pay}.")),
        ("How much change does {n} get?", "What change is due?", "How much money comes back?",
         "Find the change.")),
    "split_bill": Family(_split_bill, (
        _f("{k} {g} order {a} {item} at {P} each.", "A group of {k} {g} buys {a} {item} costing {P} apiece."),
        _f("They split the cost equally.", "Everyone pays the same share.")),
        ("How much does each pay?", "What is each share?", "How much is one person's part?",
         "Find the amount each pays."), ordered=True),
    "total": Family(_total, (
        _f("{n} spends {L}.", "Today {n} paid {L}.", "{n}'s receipts show {L}."),),
        ("How much is spent in total?", "What is the total?", "How much did that come to?",
         "Find the sum spent.")),
    "difference": Family(_difference, (
        _f("{n} is {a} {u} {adj}.", "{n} has {a} {u}.", "{n} measures {a} {u}."),
        _f("{m} is {b} {u} {adj}.", "{m} has {b} {u}.", "{m} measures {b} {u}.")),
        ("How many {u} more does {n} have?", "What is the difference?", "By how many {u} do they differ?",
         "Find the gap between them.")),
    "written": Family(_written, (), (
        "What is {e}?", "Compute {e}.", "Calculate {e}.", "Evaluate {e}.", "Work out {e}, please.",
        "What do you get for {e}?")),
    "convert_up": Family(_convert_up, (), (
        "How many {small} are in {a} {big}?", "Convert {a} {big} to {small}.", "What is {a} {big} in {small}?",
        "Express {a} {big} in {small}.", "{a} {big} is how many {small}?", "Change {a} {big} into {small}.")),
    "convert_down": Family(_convert_down, (), (
        "How many {big} is {a} {small}?", "Convert {a} {small} to {big}.", "What is {a} {small} in {big}?",
        "Express {a} {small} as {big}.", "{a} {small} makes how many {big}?", "Turn {a} {small} into {big}.")),
    "speed_convert": Family(_speed_convert, (
        _f("A {v} goes {a} kilometers per hour.", "A {v} keeps up a speed of {a} kilometers every hour."),
        _f("It travels for {b} hours.", "The journey lasts {b} hours.")),
        ("How many meters does it travel?", "What distance is that in meters?", "How far is that, in meters?",
         "Give the distance in meters.")),
    "area_cost": Family(_area, (
        _f("A {w} is {a} m by {b} m.", "A {w} measures {a} meters by {b} meters."),
        _f("{c} costs {P} per square meter.", "Covering it with {c} costs {P} a square meter.")),
        ("What does it cost to cover the {w}?", "What is the total cost?", "How much for the whole {w}?",
         "Find the cost.")),
    "perimeter": Family(_perimeter, (
        _f("A rectangular {w} is {a} m long and {b} m wide.", "A {w} has sides of {a} meters and {b} meters.",
           "A rectangle-shaped {w} measures {a} m by {b} m."),),
        ("What is its perimeter?", "How long is a fence all the way around it?",
         "What distance is it around the edge?", "Find the length of its border.")),
    "interest": Family(_interest, (
        _f("{n} puts {P} in a savings account.", "{n} lends {P}.", "{n} deposits {P}."),
        _f("It earns {r}% simple interest per year.", "The simple interest rate is {r} percent a year."),
        _f("The money stays for {y} years.", "After {y} years it is taken out.")),
        ("How much interest is earned?", "What is the total interest?", "How much interest does it make?",
         "Find the interest earned."), ordered=True),
    "save_goal": Family(_save_goal, (
        _f("{n} wants a {item} that costs {G}.", "A {item} is priced at {G}, and {n} wants it."),
        _f("{n} saves {W} each week.", "Every week {n} puts aside {W}.")),
        ("How many weeks until {n} can buy it?", "After how many weeks of saving can {n} afford it?",
         "How many weeks does {n} need to save?", "Find the number of weeks needed.")),
    "change": Family(_change, (
        _f("{n} buys {b} {item} at {C} each.", "{b} {item} cost {C} apiece, and {n} buys them."),
        _f("{n} pays with {A}.", "{n} hands over {A}.")),
        ("How much change does {n} get?", "What is the change?", "How much money is returned?",
         "Work out the change.")),
    "savings": Family(_savings, (
        _f("{n} saves {A} every {per} for {b} {per}s.", "For {b} {per}s, {n} puts {A} aside each {per}."),
        _f("Then {n} spends {C}.", "Later {n} pays {C} for a present.")),
        ("How much is left?", "How much money remains?", "What does {n} have now?", "Find what is left."),
        ordered=True),
    "ages": Family(_ages, (
        _f("{n} is {a} years old.", "{n}'s age is {a}."),
        _f("{m} is {b} years older than {n}.", "{m} was born {b} years before {n}.")),
        ("How old will {m} be in {c} years?", "What will {m}'s age be {c} years from now?",
         "In {c} years, how old is {m}?", "Find {m}'s age after {c} more years."), ordered=True),
}

# sentences with numbers a plan must not use; the last two are held out
DISTRACTORS = ["{n} is {k} years old.", "It is {k} degrees outside.", "The shop opened {k} minutes ago.",
               "{n}'s house number is {k}.", "The clock shows {k} past the hour.",
               "{n} walked {k} steps this morning.", "It was raining on day {k} of the month.",
               "The bus number is {k}.", "{n}'s locker is number {k}."]
N_HELDOUT_DISTRACTORS = 2
PREFIXES = ["", "", "", "Question: ", "Math problem. ", "Please help: ", "Can you solve this? ", "Try this one. "]
SUFFIXES = ["", "", "", " Answer with a number.", " Show your working.", " Thanks.", " Give just the number."]


def split_range(n: int, held: int, split: str) -> range:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n <= held:                      # a single phrasing is shared (its vocabulary is open)
        return range(n)
    return range(0, n - held) if split == "train" else range(n - held, n)


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def make_broad_problem(family: str, rng: random.Random, split: str) -> Problem:
    fam = REASON_FAMILIES[family]
    slots, plan = fam.draw(rng)
    t = rng.choice(split_range(len(fam.questions), N_HELDOUT_Q, split))
    facts = [ph[rng.choice(split_range(len(ph), 1, split))] for ph in fam.facts]
    if not fam.ordered:
        rng.shuffle(facts)
    if rng.random() < 0.25:
        d = DISTRACTORS[rng.choice(split_range(len(DISTRACTORS), N_HELDOUT_DISTRACTORS, split))]
        facts.insert(rng.randint(0, len(facts)), d.format(n=slots.get("n", _pick(rng, NAMES)), k=rng.randint(2, 59)))
    sentences = [_cap(s.format(**slots)) for s in facts]
    question = _cap(fam.questions[t].format(**slots))
    if sentences and not fam.ordered and rng.random() < 0.2:  # the question first, then the facts
        body = " ".join([question] + sentences)
    else:
        body = " ".join(sentences + [question])
    text = rng.choice(PREFIXES) + body + rng.choice(SUFFIXES)
    exprs, values = evaluate_steps(plan, _python_eval)
    return Problem(family, t, text, exprs, values, fmt_number(values[-1]))


def _python_eval(expr: str):
    return eval(expr, {"__builtins__": {}, "ceil": math.ceil})  # generator-only: our own fixed arithmetic strings


def make_broad_problems(n: int, seed: int = 0, split: str = "train", families=tuple(REASON_FAMILIES)) -> list[Problem]:
    rng = random.Random(f"{seed}-{split}-reason-broad")
    return [make_broad_problem(families[i % len(families)], rng, split) for i in range(n)]


def fixed_words(template: str) -> list[str]:
    """A phrasing's literal pieces of three or more words (slots removed): what a held-out one must not share."""
    return [p.strip() for p in re.split(r"\{\w+\}", template) if len(p.split()) >= 3]
