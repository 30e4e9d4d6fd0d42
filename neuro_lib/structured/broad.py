"""Struct-mini's broad generator: descriptions of all six schemas with open vocabularies, so that a fine-tune learns
*where* a value is written rather than a closed list of values (issue 21: the narrow generator of task.py has
10 adjectives x 10 nouns, 10 cities, 12 people and 3 schemas; a fine-tune reaches a low loss on it and reads
nothing).

    ex = make_broad_examples(100, seed=0, split="train")   # [task.Example(schema_id, text, doc)]
    ex[0].source   # b"recipe_v1: Lemon barley soup, serves 4: 200 g barley, 2 tbsp olive oil. Ready in 40 minutes."

What varies (designed from the schemas and plain English, not from the outside sets in data/eval/):
- values: names, titles, cities, people, streets, ingredients and tags are drawn from an open pool: lower-case
  words harvested from the Python reference manual's topic pages (``pydoc_data.topics``, in the stdlib: the same
  text as the base's ``prose`` source), made-up capitalised words from syllables (brands, towns, people), short
  hand lists of everyday English nouns and adjectives, words with digits (models "X200"), 1-4 word spans;
- numbers: integers and decimals, thousands separators ("1,299"), signs and symbols, small integers spelled out
  ("four"), hours for minutes ("1.5 hours" -> 90), 12-hour clock times ("3:30 pm" -> "15:30");
- phrasing: a head sentence frame per schema, then the other fields as clauses in random order, joined as
  sentences, commas or semicolons; optional fields left out (a document holds only what the text states);
- distractors: numbers and words that are not a field's value (a kettle's 1.7 litres, a room number, an oven
  temperature, a year of birth next to the age).

Held-out split: every phrase list (head frames, clause wordings, synonyms) keeps its last quarter (lists of 4 or
more) for the held-out split only; a held-out example always uses a held-out head frame and takes held-out
wordings elsewhere where a list has them. Training never sees those wordings; values come from the same pools.
Tests: tests/test_struct_broad.py.
"""
from __future__ import annotations

import calendar
import datetime
import functools
import random
import re

from neuro_lib.structured.task import CURRENCY_SIGNS, MONTHS, Example

SCHEMAS = ("product_v1", "weather_v1", "event_v1", "order_v1", "person_v1", "recipe_v1")


# -- vocabulary pools -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def word_pool() -> tuple[str, ...]:
    """Lower-case alphabetic words (3-10 letters) of the Python reference manual's topic pages, sorted."""
    import pydoc_data.topics

    text = " ".join(pydoc_data.topics.topics.values())
    return tuple(sorted({w for w in re.findall(r"(?<![\w.])[a-z]{3,10}(?![\w.])", text)}))


ADJECTIVES = ["red", "blue", "green", "black", "white", "silver", "golden", "small", "large", "compact", "portable",
              "wireless", "electric", "wooden", "steel", "glass", "ceramic", "cotton", "leather", "wool", "vintage",
              "classic", "modern", "smart", "quiet", "heavy", "light", "folding", "waterproof", "organic", "mini",
              "deluxe", "stainless", "bamboo", "copper", "digital", "soft", "round", "square", "spicy"]
NOUNS = ["kettle", "lamp", "chair", "desk", "backpack", "mug", "keyboard", "mouse", "blender", "jacket", "tent",
         "umbrella", "scarf", "notebook", "pen", "headphones", "speaker", "charger", "bottle", "clock", "pillow",
         "blanket", "toaster", "camera", "drone", "bicycle", "helmet", "watch", "wallet", "sofa", "shelf", "rug",
         "teapot", "knife", "skillet", "monitor", "router", "printer", "candle", "basket"]
FOODS = ["flour", "sugar", "butter", "eggs", "milk", "salt", "rice", "pasta", "tomatoes", "onion", "garlic",
         "carrots", "lentils", "chickpeas", "spinach", "cheese", "yogurt", "honey", "lemon", "basil", "oats",
         "potatoes", "beans", "mushrooms", "olive oil", "chicken", "beef", "tofu", "apples", "cream", "pepper",
         "cinnamon", "water", "stock", "peas", "corn", "ginger", "noodles", "almonds", "cocoa"]
COUNTABLE = ["eggs", "apples", "lemons", "onions", "carrots", "tomatoes", "potatoes", "cloves garlic", "bananas",
             "peppers", "limes", "tortillas", "egg yolks", "shallots", "pears", "chillies"]
DISHES = ["soup", "stew", "salad", "curry", "pie", "cake", "bread", "risotto", "pancakes", "omelette", "tart",
          "porridge", "pasta bake", "chili", "muffins", "smoothie", "casserole", "noodle bowl", "cookies", "crumble"]
EVENT_WORDS = ["review", "sync", "standup", "workshop", "meeting", "demo", "kickoff", "retro", "planning", "lunch",
               "dinner", "interview", "training", "call", "briefing", "offsite", "party", "class", "webinar", "session"]
STREET_KINDS = ["Street", "Road", "Avenue", "Lane", "Way", "Drive", "Place", "Boulevard"]
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
LANG_NAMES = {"en": ["English"], "fr": ["French"], "de": ["German"], "es": ["Spanish"], "it": ["Italian"],
              "ja": ["Japanese"]}
SPELLED = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def _coined(rng: random.Random, syllables: int | None = None) -> str:
    """A made-up capitalised word of 2-3 syllables ("Korvana"): open-vocabulary names, towns and brands."""
    n = syllables or rng.choice([2, 2, 3])
    w = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(n))
    if rng.random() < 0.4:
        w += rng.choice("nlrstm")
    return w.capitalize()


def _pool_word(rng: random.Random) -> str:
    return rng.choice(word_pool())


def _noun_phrase(rng: random.Random, nouns: list[str], max_words: int = 4, max_len: int = 40) -> str:
    """1-4 words ending in a noun: adjectives and pool words before it, a brand or model sometimes."""
    while True:
        words = [rng.choice(nouns) if rng.random() < 0.7 else _pool_word(rng)]
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
            words.insert(0, rng.choice(ADJECTIVES) if rng.random() < 0.6 else _pool_word(rng))
        r = rng.random()
        if r < 0.2:
            words.insert(0, _coined(rng))  # a brand: "Velor desk lamp"
        elif r < 0.28:
            words.append(rng.choice("XZRQK") + str(rng.randint(1, 999)))  # a model: "speaker X200"
        words = words[-max_words:]
        phrase = " ".join(words)
        if len(phrase) <= max_len:
            return phrase


def _person(rng: random.Random, max_len: int = 40) -> str:
    name = _coined(rng) if rng.random() < 0.35 else f"{_coined(rng)} {_coined(rng)}"
    return name[:max_len].rstrip()


def _town(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        return _coined(rng)
    if r < 0.85:
        return f"{rng.choice(['San', 'Port', 'New', 'Lake', 'Santa', 'East', 'North'])} {_coined(rng)}"
    return f"{_coined(rng)} {rng.choice(['City', 'Bay', 'Falls', 'Springs', 'Hill'])}"


# -- phrase choice with held-out wordings -----------------------------------------------------------------------------
def _pick(rng: random.Random, opts: list, split: str, force_heldout: bool = False):
    """One option: lists of 4+ keep their last quarter for the held-out split (always taken for a head frame)."""
    k = len(opts) // 4
    if k == 0:
        return rng.choice(opts)
    if split == "train":
        return rng.choice(opts[:-k])
    return rng.choice(opts[-k:]) if force_heldout or rng.random() < 0.6 else rng.choice(opts[:-k])


def _listing(items: list[str], rng: random.Random, split: str) -> str:
    if len(items) == 1:
        return items[0]
    style = _pick(rng, ["and", "comma", "and", "oxford", "plus", "slash"], split)
    if style == "comma":
        return ", ".join(items)
    if style == "oxford" and len(items) > 2:
        return ", ".join(items[:-1]) + ", and " + items[-1]
    if style == "plus":
        return " + ".join(items)
    if style == "slash":
        return " / ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _fmt_num(x: float, rng: random.Random, commas: bool = True) -> str:
    """A number as a person writes it: 42, 42.00 (sometimes), 12.5 or 12.50, 1,299 (sometimes)."""
    if x == int(x):
        s = f"{int(x):,}" if commas and abs(x) >= 1000 and rng.random() < 0.5 else str(int(x))
        return s + (".00" if rng.random() < 0.15 else "")
    s = f"{x:.2f}" if rng.random() < 0.6 or round(x, 1) != x else f"{x:g}"
    if commas and abs(x) >= 1000 and rng.random() < 0.5:
        whole, frac = s.split(".")
        s = f"{int(whole):,}.{frac}"
    return s


def _small(n: int, rng: random.Random, p: float = 0.25) -> str:
    """A small integer, spelled out sometimes ("four")."""
    return SPELLED[n] if n < len(SPELLED) and rng.random() < p else str(n)


def _join(clauses: list[str], rng: random.Random, head: int = 0) -> str:
    """Clauses (each without end punctuation) as sentences, or run together with commas / semicolons; the fixed
    wordings start a sentence with a capital, the head (clauses[head], which may start with a value) is kept as is."""
    out = []
    for i, c in enumerate(clauses):
        if i == 0:
            out.append(c if i == head else c[0].upper() + c[1:])
            continue
        sep = rng.choice([". ", ". ", ", ", "; ", " - "])
        out.append(sep + (c[0].upper() + c[1:] if sep == ". " and i != head else c))
    return "".join(out) + rng.choice([".", ".", ".", "", "!"])


def _price(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.45:
        return float(rng.randint(1, 300))
    if r < 0.8:
        return round(rng.randint(1, 500) - rng.choice([0.01, 0.05, 0.5, 0.25, 0.1]), 2)
    return float(rng.randint(300, 5000)) if rng.random() < 0.6 else round(rng.uniform(1, 3000), 2)


def _money(rng: random.Random, price: float, cur: str, split: str) -> str:
    num = _fmt_num(price, rng)
    words = {"USD": ["dollars", "US dollars", "bucks", "USD"], "EUR": ["euros", "euro", "EUR", "Euros"],
             "GBP": ["pounds", "British pounds", "GBP", "pounds sterling"], "JPY": ["yen", "Japanese yen", "JPY", "Yen"]}[cur]
    forms = [f"{CURRENCY_SIGNS[cur]}{num}", f"{num} {_pick(rng, words, split)}", f"{cur} {num}",
             f"{CURRENCY_SIGNS[cur]} {num}", f"{num}{CURRENCY_SIGNS[cur]}", f"{num} {cur}"]
    return _pick(rng, forms, split)


def _date(rng: random.Random, split: str) -> tuple[str, str]:
    y, m = rng.randint(2024, 2028), rng.randint(1, 12)
    d = rng.randint(1, calendar.monthrange(y, m)[1])
    iso = f"{y:04d}-{m:02d}-{d:02d}"
    month, sfx = MONTHS[m - 1], {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(d, "th")
    day = calendar.day_name[datetime.date(y, m, d).weekday()]
    forms = [iso, f"{month} {d}, {y}", f"{d} {month} {y}", f"{month} {d}{sfx}, {y}", f"{month[:3]} {d}, {y}",
             f"{day}, {month} {d}, {y}", f"{d} {month[:3]} {y}", f"the {d}{sfx} of {month} {y}"]
    return iso, _pick(rng, forms, split)


def _clock(rng: random.Random, split: str) -> tuple[str, str]:
    h, mi = rng.randint(6, 21), rng.choice([0, 0, 0, 15, 30, 30, 45, 10, 20, 40, 50, 5])
    hhmm = f"{h:02d}:{mi:02d}"
    h12, ampm = (h - 12 if h > 12 else h), ("pm" if h >= 12 else "am")
    forms = [hhmm, f"{h12}:{mi:02d} {ampm}", f"{h12}:{mi:02d}{ampm}", f"{h}:{mi:02d}",
             f"{h12}:{mi:02d} {ampm.upper()}", f"{h:02d}.{mi:02d}", f"{h12}{ampm}" if mi == 0 else f"{h12}.{mi:02d}{ampm}",
             f"{h:02d}{mi:02d} hours"]
    if (h, mi) == (12, 0) and _maybe(rng, 0.5):
        return hhmm, rng.choice(["noon", "midday", "12 noon"])
    return hhmm, _pick(rng, forms, split)


def _minutes(rng: random.Random, minutes: int, split: str) -> str:
    hours = minutes / 60
    forms = [f"{minutes} minutes", f"{minutes} min", f"{minutes} minutes", f"{minutes} mins"]
    if hours == int(hours) or hours * 2 == int(hours * 2):
        h = f"{hours:g}"
        forms += [f"{h} hour" + ("s" if hours != 1 else ""), f"{h} hr" + ("s" if hours != 1 else "")]
        if hours == 1:
            forms.append(rng.choice(["one hour", "an hour"]))
        if hours in (0.5, 1.5):
            forms.append("half an hour" if hours == 0.5 else rng.choice(["an hour and a half", "one hour and a half"]))
    return _pick(rng, forms, split) if rng.random() < 0.5 else forms[rng.randrange(2)]


def _maybe(rng: random.Random, p: float) -> bool:
    return rng.random() < p


# -- per-schema samplers: (doc, clauses, head) -----------------------------------------------------------------------
def _product(rng: random.Random, split: str):
    name = _noun_phrase(rng, NOUNS, max_len=60)
    price, cur = _price(rng), rng.choice(["USD", "USD", "EUR", "GBP", "JPY"])
    if cur == "JPY":
        price = float(min(max(int(price), 1) * rng.choice([1, 10, 100]), 99_999))
    if _maybe(rng, 0.4):
        name = name[0].upper() + name[1:]  # as written at the start of a sentence, and so in the document
    doc = {"name": name, "price": int(price) if price == int(price) else price, "currency": cur}
    if _maybe(rng, 0.45):
        doc["in_stock"] = _maybe(rng, 0.55)
    if _maybe(rng, 0.35):
        doc["sku"] = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3)) + f"-{rng.randint(0, 9999):04d}"
    if _maybe(rng, 0.3):
        doc["tags"] = list(dict.fromkeys(_pool_word(rng) if _maybe(rng, 0.5) else rng.choice(ADJECTIVES + NOUNS)
                                         for _ in range(rng.randint(1, 3))))
    doc = {k: doc[k] for k in ("name", "price", "currency", "in_stock", "sku", "tags") if k in doc}
    money = _money(rng, price, cur, split)
    n = name
    head = _pick(rng, [f"The {name} costs {money}", f"{n}, priced at {money}", f"Product: {name}, price {money}",
                       f"For sale: a {name} at {money}", f"{n} - {money}", f"{n} for {money}",
                       f"Selling my {name} for {money}", f"Listing: {name}, {money}", f"{n} ({money})",
                       f"Get the {name} for just {money}", f"{n}: now {money}", f"New in: {name}, yours for {money}"],
                 split, force_heldout=True)
    clauses = []
    if "in_stock" in doc:
        clauses.append(_pick(rng, ["in stock", "available now", "ready to ship", "currently in stock",
                                   "plenty in stock", "available today", "ships today", "on the shelf now"]
                             if doc["in_stock"] else
                             ["out of stock", "sold out", "currently unavailable", "not in stock",
                              "temporarily out of stock", "none left", "back-ordered", "unavailable for now"], split))
    if "sku" in doc:
        clauses.append(_pick(rng, [f"SKU {doc['sku']}", f"item code {doc['sku']}", f"product code {doc['sku']}",
                                   f"SKU: {doc['sku']}", f"ref {doc['sku']}", f"article no. {doc['sku']}",
                                   f"catalogue number {doc['sku']}", f"part {doc['sku']}"], split))
    if "tags" in doc:
        t = doc["tags"]
        clauses.append(_pick(rng, [f"tagged {_listing(t, rng, split)}", f"tags: {', '.join(t)}",
                                   f"categories: {_listing(t, rng, split)}", f"filed under {_listing(t, rng, split)}",
                                   f"labels {', '.join(t)}", f"keywords: {', '.join(t)}",
                                   f"listed as {_listing(t, rng, split)}", f"tag {', '.join(t)}"], split))
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        clauses.append(_pick(rng, [f"{rng.randint(1, 5)}-year warranty", f"weighs {rng.randint(1, 9)}.{rng.randint(1, 9)} kg",
                                   f"rated {rng.randint(1, 4)}.{rng.randint(0, 9)} stars", f"{rng.randint(1, 3)}.{rng.randint(1, 9)} litres",
                                   f"pack of {rng.randint(2, 12)}", f"model year {rng.randint(2015, 2027)}",
                                   f"{rng.randint(10, 200)} cm wide", f"{rng.randint(2, 40)} colours available",
                                   f"free shipping over {rng.randint(2, 10)}0", f"{rng.randint(2, 90)} reviews",
                                   f"batch {rng.randint(100, 999)}", f"{rng.randint(2, 24)} month guarantee"], split))
    return doc, head, clauses


CONDITION_WORDS = {"sunny": ["sunny", "sunshine", "sunny skies", "clear and sunny", "bright sun", "full sun"],
                   "cloudy": ["cloudy", "overcast", "clouds", "grey skies", "cloudy skies", "heavy cloud"],
                   "rain": ["rain", "rainy", "raining", "showers", "light rain", "drizzle"],
                   "snow": ["snow", "snowy", "snowing", "snowfall", "light snow", "flurries"],
                   "fog": ["fog", "foggy", "thick fog", "mist", "dense fog", "misty"],
                   "storm": ["storm", "stormy", "thunderstorms", "a storm", "storms", "thunder and lightning"]}
DIRECTIONS = {"N": "north", "NE": "northeast", "E": "east", "SE": "southeast", "S": "south", "SW": "southwest",
              "W": "west", "NW": "northwest"}


def _weather(rng: random.Random, split: str):
    city = _town(rng)
    t = rng.randint(-25, 45) if _maybe(rng, 0.85) else round(rng.uniform(-20, 40), 1)
    cond = rng.choice(list(CONDITION_WORDS))
    doc = {"city": city, "temperature_c": t, "conditions": cond}
    if _maybe(rng, 0.5):
        doc["humidity"] = rng.randint(5, 100)
    if _maybe(rng, 0.4):
        wind = {"speed_kmh": rng.randint(0, 120) if _maybe(rng, 0.9) else round(rng.uniform(0, 60), 1)}
        if _maybe(rng, 0.6):
            wind["direction"] = rng.choice(list(DIRECTIONS))
        doc["wind"] = wind
    c = _pick(rng, CONDITION_WORDS[cond], split)
    ts = f"minus {-t}" if t < 0 and _maybe(rng, 0.2) else str(t)
    temp = _pick(rng, [f"{ts}°C", f"{ts} degrees", f"{ts} °C", f"{ts} degrees Celsius", f"{ts}C", f"{ts} C",
                       f"{ts} deg C", f"{ts}°"], split)
    head = _pick(rng, [f"In {city} it is {temp} with {c}", f"{city}: {c}, {temp}", f"Weather for {city} - {c} and {temp}",
                       f"{city} reports {c} at {temp}", f"{city} today: {temp}, {c}", f"Forecast for {city}: {c}, {temp}",
                       f"It's {temp} and {c} in {city}", f"{city} weather: {temp} with {c}",
                       f"Current conditions in {city}: {c}, {temp}", f"Expect {c} in {city}, around {temp}",
                       f"{city} has {c} and a temperature of {temp}", f"Over in {city}: {c}, {temp}"],
                 split, force_heldout=True)
    clauses = []
    if "humidity" in doc:
        h = doc["humidity"]
        clauses.append(_pick(rng, [f"humidity {h}%", f"{h}% humidity", f"{h} percent humidity", f"humidity at {h}%",
                                   f"relative humidity {h}%", f"humidity: {h} percent", f"{h}% relative humidity",
                                   f"air humidity of {h}%"], split))
    if "wind" in doc:
        w = doc["wind"]
        s = str(w["speed_kmh"])
        d = w.get("direction")
        dword = (d if _maybe(rng, 0.3) else DIRECTIONS[d]) if d else None
        frm = f" from the {dword}" if dword else ""
        clauses.append(_pick(rng, [f"wind {s} km/h{frm}", f"winds of {s} km/h{frm}", f"{s} km/h winds{frm}",
                                   f"wind at {s} kmh{frm}", f"{dword} wind at {s} km/h" if d else f"a {s} km/h wind",
                                   f"wind speed {s} km/h{frm}", f"gusts to {s} km/h{frm}", f"breeze of {s} km/h{frm}"],
                             split))
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        clauses.append(_pick(rng, [f"UV index {rng.randint(1, 11)}", f"visibility {rng.randint(1, 20)} km",
                                   f"pressure {rng.randint(980, 1040)} hPa", f"day {rng.randint(2, 9)} of the heatwave",
                                   f"sunset at {rng.randint(5, 9)}:{rng.randint(10, 59)} pm", f"{rng.randint(1, 30)} mm of rain expected tomorrow",
                                   f"{rng.randint(2, 60)}% chance of change later", f"station {rng.randint(10, 99)}"], split))
    return doc, head, clauses


def _event(rng: random.Random, split: str):
    words = [rng.choice(EVENT_WORDS)]
    for _ in range(rng.choice([0, 1, 1, 2])):
        words.insert(0, _pool_word(rng) if _maybe(rng, 0.5) else rng.choice(["team", "budget", "design", "product",
                                                                              "quarterly", "weekly", "sales", "board",
                                                                              "client", "project", "book", "yoga"]))
    title = " ".join(words)
    title = title[0].upper() + title[1:] if _maybe(rng, 0.4) else title
    iso, date = _date(rng, split)
    people = list(dict.fromkeys(_person(rng, 20) if _maybe(rng, 0.3) else _coined(rng)
                                for _ in range(rng.randint(1, 4))))
    doc = {"title": title, "date": iso}
    start = None
    if _maybe(rng, 0.55):
        doc["start"], start = _clock(rng, split)
    if _maybe(rng, 0.5):
        doc["duration_min"] = rng.choice([10, 15, 20, 30, 30, 45, 60, 60, 90, 120, 150, 180, 240, 25, 40, 50, 75])
    doc["attendees"] = people
    if _maybe(rng, 0.4):
        doc["online"] = _maybe(rng, 0.5)
    who = _listing(people, rng, split)
    head = _pick(rng, [f"{title} on {date} with {who}", f"Schedule {title} for {date}: {who}",
                       f"Event: {title}, {date}, attendees {who}", f"{who} meet for {title} on {date}",
                       f"{title} - {date} - {who}", f"Book {title} on {date} for {who}",
                       f"{who}: {title} on {date}", f"Calendar: {title}, {date}, with {who}",
                       f"Put {title} on {date} in the calendar for {who}", f"On {date}, {title} with {who}",
                       f"{title} with {who} is set for {date}", f"Invite {who} to {title} on {date}"],
                 split, force_heldout=True)
    clauses = []
    if start:
        clauses.append(_pick(rng, [f"starts at {start}", f"from {start}", f"at {start}", f"begins {start}",
                                   f"start time {start}", f"kicking off at {start}", f"doors at {start}",
                                   f"beginning at {start}"], split))
    if "duration_min" in doc:
        m = _minutes(rng, doc["duration_min"], split)
        clauses.append(_pick(rng, [f"{m}", f"lasts {m}", f"for {m}", f"duration {m}", f"runs {m}",
                                   f"about {m} long", f"takes {m}", f"planned for {m}"], split))
    if "online" in doc:
        clauses.append(_pick(rng, ["online", "on video", "video call", "remote", "on Zoom", "virtual",
                                   "held online", "via video link"] if doc["online"] else
                             ["in person", "in the office", "on site", "face to face", "in person only",
                              f"in room {rng.randint(1, 9)}{rng.choice('0123456789AB')}", "at the office",
                              "in the main hall"], split))
    for _ in range(rng.choice([0, 0, 1])):
        clauses.append(_pick(rng, [f"floor {rng.randint(2, 30)}", f"agenda has {rng.randint(2, 9)} items",
                                   f"bring {rng.randint(2, 5)} copies", f"ticket {rng.randint(100, 999)}",
                                   f"{rng.randint(2, 12)} chairs needed", f"budget {rng.randint(100, 900)} EUR",
                                   f"week {rng.randint(1, 52)}", f"slide deck v{rng.randint(2, 9)}"], split))
    return doc, head, clauses


STATUS_WORDS = {"pending": ["pending", "awaiting payment", "not yet paid", "payment pending", "on hold", "unpaid"],
                "paid": ["paid", "payment received", "paid in full", "fully paid", "settled", "paid for"],
                "shipped": ["shipped", "dispatched", "on its way", "sent out", "in transit", "out for delivery"],
                "cancelled": ["cancelled", "canceled", "called off", "voided", "cancelled by the customer", "withdrawn"]}


def _order(rng: random.Random, split: str):
    oid = f"ORD-{rng.randint(0, 99999):05d}"
    status = rng.choice(list(STATUS_WORDS))
    items = []
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
        item = {"sku": "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3)) + f"-{rng.randint(0, 9999):04d}",
                "quantity": rng.choice([1, 1, 2, 2, 3, 4, 5, 6, 10, 12, rng.randint(1, 99)])}
        if _maybe(rng, 0.5):
            p = _price(rng)
            item["unit_price"] = int(p) if p == int(p) else p
        items.append(item)
    doc = {"order_id": oid, "status": status, "items": items}
    if _maybe(rng, 0.4):
        doc["express"] = _maybe(rng, 0.5)
    cur = rng.choice(["$", "€", "£", ""])

    def line(it):
        q, s, w = it["quantity"], it["sku"], _small(it["quantity"], rng)
        at = ""
        if "unit_price" in it:
            p = _fmt_num(it["unit_price"], rng, commas=False)
            at = _pick(rng, [f" at {cur}{p} each", f" @ {cur}{p}", f" ({cur}{p} each)", f" at {cur}{p}",
                             f" for {cur}{p} apiece", f", {cur}{p} per unit"], split)
        return _pick(rng, [f"{q} x {s}{at}", f"{w} units of {s}{at}", f"{s} x{q}{at}", f"{w} of {s}{at}",
                           f"{s} (qty {q}){at}", f"{q}x {s}{at}", f"{s} quantity {q}{at}", f"{q} pcs {s}{at}"], split)

    lines = _listing([line(it) for it in items], rng, split)
    st = _pick(rng, STATUS_WORDS[status], split)
    head = _pick(rng, [f"Order {oid}: {lines}", f"Order {oid} ({st}): {lines}", f"{oid} - {lines}",
                       f"Order number {oid} contains {lines}", f"Your order {oid}: {lines}",
                       f"Purchase {oid} with {lines}", f"{oid}: {lines}", f"Order {oid} for {lines}",
                       f"Order ID {oid}, items {lines}", f"Customer order {oid} lists {lines}",
                       f"We received order {oid}: {lines}", f"Ref {oid} covers {lines}"],
                 split, force_heldout=True)
    clauses = [] if f"({st})" in head else [_pick(rng, [f"status {st}", f"status: {st}", f"{st}", f"order is {st}",
                                                         f"it is {st}", f"currently {st}", f"marked {st}",
                                                         f"state: {st}"], split)]
    if "express" in doc:
        clauses.append(_pick(rng, ["express delivery", "express shipping", "sent express", "express", "by express post",
                                   "with express courier", "rush delivery (express)", "express service"]
                             if doc["express"] else
                             ["standard delivery", "standard shipping", "regular post", "not express",
                              "economy shipping", "normal delivery", "no express", "ground shipping"], split))
    for _ in range(rng.choice([0, 0, 1])):
        clauses.append(_pick(rng, [f"placed {rng.randint(2, 9)} days ago", f"box {rng.randint(1, 5)} of {rng.randint(5, 9)}",
                                   f"gate {rng.randint(1, 40)}", f"customer {rng.randint(1000, 9999)}",
                                   f"{rng.randint(2, 30)} kg total", f"invoice {rng.randint(100, 999)}"], split))
    rng.shuffle(clauses)
    return doc, head, clauses


def _person_doc(rng: random.Random, split: str):
    name = _person(rng)
    age = rng.randint(1, 99)
    doc = {"name": name, "age": age}
    first = name.split()[0].lower()
    if _maybe(rng, 0.45):
        user = rng.choice([first, name.replace(" ", ".").lower(), first + str(rng.randint(1, 99)),
                           first[0] + name.split()[-1].lower()])
        host = rng.choice([_pool_word(rng), _coined(rng).lower(), "example", "mail"])
        doc["email"] = f"{user}@{host}.{rng.choice(['com', 'org', 'net', 'io', 'de', 'fr'])}"
    address = None
    if _maybe(rng, 0.55):
        address = {}
        if _maybe(rng, 0.5):
            address["street"] = f"{rng.randint(1, 250)} {_coined(rng)} {rng.choice(STREET_KINDS)}"
        address["city"] = _town(rng)
        if _maybe(rng, 0.4):
            address["postcode"] = f"{rng.randint(0, 99999):05d}"
        doc["address"] = address
    if _maybe(rng, 0.4):
        doc["languages"] = rng.sample(list(LANG_NAMES), rng.randint(1, 3))
    a = _pick(rng, [f"{age}", f"{age} years old", f"aged {age}", f"age {age}", f"{age}-year-old", f"{age} yrs",
                    f"age: {age}", f"{age} years of age"], split)
    head = _pick(rng, [f"{name}, {a}", f"{name} is {age} years old", f"Name: {name}, age {age}", f"{name} ({age})",
                       f"Profile: {name}, {a}", f"Contact {name}, {a}", f"{name}, aged {age}", f"Meet {name}, {a}",
                       f"Person: {name}; age {age}", f"This is {name}, {a}", f"{name} - {a}",
                       f"New member {name}, {a}"], split, force_heldout=True)
    clauses = []
    if "email" in doc:
        e = doc["email"]
        clauses.append(_pick(rng, [f"email {e}", f"email: {e}", f"reach them at {e}", f"e-mail {e}", f"contact: {e}",
                                   f"mail {e}", f"writes from {e}", f"inbox {e}"], split))
    if address:
        city, street, pc = address["city"], address.get("street"), address.get("postcode")
        where = ", ".join(x for x in (street, f"{city} {pc}" if pc and _maybe(rng, 0.5) else (f"{pc} {city}" if pc else city)) if x)
        clauses.append(_pick(rng, [f"lives at {where}" if street else f"lives in {where}", f"address: {where}",
                                   f"based in {where}", f"home: {where}", f"living in {where}", f"located at {where}",
                                   f"resides in {where}", f"from {where}"], split))
    if "languages" in doc:
        langs = _listing([rng.choice(LANG_NAMES[c]) for c in doc["languages"]], rng, split)
        clauses.append(_pick(rng, [f"speaks {langs}", f"languages: {langs}", f"fluent in {langs}", f"speaks {langs} fluently",
                                   f"knows {langs}", f"language skills: {langs}", f"talks {langs}",
                                   f"can speak {langs}"], split))
    for _ in range(rng.choice([0, 0, 1])):
        clauses.append(_pick(rng, [f"has {_small(rng.randint(2, 5), rng)} children", f"joined in {rng.randint(1990, 2025)}",
                                   f"member no. {rng.randint(100, 999)}", f"works {rng.randint(20, 45)} hours a week",
                                   f"{rng.randint(2, 9)} pets", f"badge {rng.randint(1000, 9999)}"], split))
    return doc, head, clauses


UNIT_WORDS = {"g": ["g", "grams", "gram", "gr"], "kg": ["kg", "kilograms", "kilo", "kilos"],
              "ml": ["ml", "millilitres", "milliliters", "mL"], "l": ["l", "litres", "liters", "litre"],
              "cup": ["cup", "cups", "cup", "cups"], "tbsp": ["tbsp", "tablespoons", "tablespoon", "Tbsp"],
              "tsp": ["tsp", "teaspoons", "teaspoon", "tsp."], "piece": ["piece", "pieces", "pcs", "whole"]}


def _recipe(rng: random.Random, split: str):
    words = [rng.choice(DISHES)]
    for _ in range(rng.choice([1, 1, 2])):
        words.insert(0, rng.choice(FOODS + ADJECTIVES[-6:]) if _maybe(rng, 0.7) else _pool_word(rng))
    title = " ".join(words)[:40]
    title = title[0].upper() + title[1:] if _maybe(rng, 0.5) else title
    serv = rng.randint(1, 12)
    doc = {"title": title, "servings": serv}
    if _maybe(rng, 0.4):
        doc["vegetarian"] = _maybe(rng, 0.5)
    ings = []
    for _ in range(rng.randint(1, 5)):
        unit = rng.choice(list(UNIT_WORDS))
        amount = {"g": rng.choice([50, 100, 125, 150, 200, 250, 300, 400, 500, rng.randint(5, 900)]),
                  "kg": rng.choice([1, 0.5, 1.5, 2, 0.25]), "ml": rng.choice([50, 100, 150, 200, 250, 500, 750]),
                  "l": rng.choice([1, 0.5, 1.5, 2]), "cup": rng.choice([1, 2, 0.5, 1.5, 3, 0.25]),
                  "tbsp": rng.choice([1, 2, 3, 4, 0.5]), "tsp": rng.choice([1, 2, 0.5, 0.25, 3]),
                  "piece": rng.randint(1, 8)}[unit]
        if unit == "piece":  # counted things
            name = rng.choice(COUNTABLE) if _maybe(rng, 0.8) else _pool_word(rng)
        else:
            name = rng.choice(FOODS) if _maybe(rng, 0.75) else _pool_word(rng)
        if any(i["name"] == name for i in ings):
            continue
        ings.append({"name": name[:20], "amount": amount, "unit": unit})
    doc["ingredients"] = ings
    if _maybe(rng, 0.5):
        doc["prep_minutes"] = rng.choice([5, 10, 15, 20, 25, 30, 40, 45, 60, 90, 120, 180])
    doc = {k: doc[k] for k in ("title", "servings", "vegetarian", "ingredients", "prep_minutes") if k in doc}

    def ing(i):
        a = f"{i['amount']:g}"
        if i["amount"] != int(i["amount"]) and i["unit"] in ("cup", "tbsp", "tsp", "kg", "l") and _maybe(rng, 0.35):
            whole, frac = int(i["amount"]), i["amount"] - int(i["amount"])
            f = rng.choice([{0.5: "1/2", 0.25: "1/4", 0.75: "3/4"}, {0.5: "½", 0.25: "¼", 0.75: "¾"}])[frac]
            a = f"{whole} {f}" if whole else (f if f not in ("1/2", "½") or _maybe(rng, 0.6) else "half a")
        if i["unit"] == "piece" and _maybe(rng, 0.5):
            return f"{_small(i['amount'], rng, 0.2)} {i['name']}"  # "3 eggs": pieces, the unit left unsaid
        u = _pick(rng, UNIT_WORDS[i["unit"]], split)
        if a == "half a":
            u = {"cup": "cup", "tbsp": "tablespoon", "tsp": "teaspoon", "kg": "kilo", "l": "litre"}[i["unit"]]
        sep = "" if len(u) <= 2 and u.islower() and a[-1].isdigit() and _maybe(rng, 0.4) else " "
        return _pick(rng, [f"{a}{sep}{u} {i['name']}", f"{a}{sep}{u} of {i['name']}",
                           f"{i['name']} ({a}{sep}{u})", f"{i['name']}: {a}{sep}{u}", f"{i['name']} {a}{sep}{u}"], split)

    ing_list = _listing([ing(i) for i in ings], rng, split)
    s = _small(serv, rng, 0.3)
    sv = _pick(rng, [f"serves {s}", f"for {s}", f"{s} servings", f"makes {s} portions", f"feeds {s}",
                     f"for {s} people", f"yields {s} servings", f"{s} portions"], split)
    head = _pick(rng, [f"{title} ({sv}): {ing_list}", f"Recipe: {title}, {sv}. Ingredients: {ing_list}",
                       f"{title}, {sv}, needs {ing_list}", f"To make {title} ({sv}) you need {ing_list}",
                       f"{title} - {sv} - {ing_list}", f"{title}: {ing_list}; {sv}", f"{title}. Uses {ing_list}. {sv}",
                       f"My {title}, {sv}: {ing_list}", f"{title} recipe, {sv}, with {ing_list}",
                       f"How to cook {title} ({sv}): take {ing_list}", f"{title} for the week, {sv}: {ing_list}",
                       f"Grandma's {title}, {sv}. Ingredients: {ing_list}"], split, force_heldout=True)
    clauses = []
    if "vegetarian" in doc:
        clauses.append(_pick(rng, ["vegetarian", "it is vegetarian", "veggie friendly", "meat-free", "suitable for vegetarians",
                                   "vegetarian dish", "no meat", "fully vegetarian"] if doc["vegetarian"] else
                             ["not vegetarian", "contains meat", "not suitable for vegetarians", "non-vegetarian",
                              "has meat in it", "not veggie", "meat dish", "not meat-free"], split))
    if "prep_minutes" in doc:
        m = _minutes(rng, doc["prep_minutes"], split)
        clauses.append(_pick(rng, [f"ready in {m}", f"prep time {m}", f"takes {m}", f"{m} to prepare",
                                   f"prep: {m}", f"about {m} of work", f"done in {m}", f"prepared in {m}"], split))
    for _ in range(rng.choice([0, 0, 1])):
        clauses.append(_pick(rng, [f"bake at {rng.choice([160, 180, 200, 220])} degrees", f"step {rng.randint(2, 6)} is the hardest",
                                   f"keeps {rng.randint(2, 5)} days", f"oven {rng.choice([150, 180, 200])}°C",
                                   f"{rng.randint(200, 900)} kcal", f"page {rng.randint(10, 300)} of the book"], split))
    return doc, head, clauses


GENERATORS = {"product_v1": _product, "weather_v1": _weather, "event_v1": _event, "order_v1": _order,
              "person_v1": _person_doc, "recipe_v1": _recipe}


MAX_PAIR = 440  # source + target + 2 markers: every example fits the fine-tune's max_len (profiles.py, 448)


def make_broad_example(schema_id: str, rng: random.Random, split: str) -> Example:
    while True:  # a long draw (five ingredients, every option) is drawn again
        ex = _draw(schema_id, rng, split)
        if len(ex.source) + len(ex.target) + 2 <= MAX_PAIR:
            return ex


def _draw(schema_id: str, rng: random.Random, split: str) -> Example:
    doc, head, clauses = GENERATORS[schema_id](rng, split)
    rng.shuffle(clauses)
    if clauses and _maybe(rng, 0.2):  # sometimes a clause leads: "Sold out. The red lamp costs $4."
        parts, at = [clauses.pop(0), head] + clauses, 1
    else:
        parts, at = [head] + clauses, 0
    return Example(schema_id, _join(parts, rng, at), doc)


def make_broad_examples(n: int, seed: int = 0, split: str = "train", schemas=SCHEMAS) -> list[Example]:
    """n examples cycling over `schemas`; split "train" or "heldout" (held-out wordings)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = random.Random(f"broad-{seed}-{split}")
    return [make_broad_example(schemas[i % len(schemas)], rng, split) for i in range(n)]
