"""Struct-mini's task: a plain-English description -> the JSON document it describes.

Examples are generated from the registered schemas (enums, ranges and optional fields are
read from the schema files, so a value is always valid): product_v1, weather_v1 and event_v1,
with varied phrasings, number formats, units ($12 / 12 dollars / USD 12, "degrees"), lists
("tagged a, b and c") and optional fields left out at random. Each schema has TRAIN phrasing
templates and HELD-OUT ones; evaluation uses only held-out templates, never seen in training.

    ex = make_examples(100, seed=0, split="train")     # [Example(schema_id, text, doc)]
    ex[0].source   # b"product_v1: The blue kettle costs $12.50 ..."
    ex[0].target   # b'{"name":"blue kettle","price":12.5,"currency":"USD"}' (the grammar's serialisation)

Tests: tests/test_struct_mini.py.
"""
from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass

from neuro_lib.structured.schemas import load_schema

_schema = functools.lru_cache(maxsize=None)(load_schema)  # read-only use here: one parse per schema

TASK_SCHEMAS = ("product_v1", "weather_v1", "event_v1")
ADJ = ["blue", "red", "small", "large", "steel", "wooden", "smart", "compact", "classic", "green"]
NOUN = ["kettle", "lamp", "backpack", "chair", "headphones", "mug", "keyboard", "blender", "jacket", "tent"]
TAGS = ["kitchen", "office", "travel", "outdoor", "gift", "sale", "new", "eco"]
CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Austin", "Perth", "Quito", "Dublin", "Nairobi"]
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kim", "Lea"]
EVENTS = ["team sync", "budget review", "lunch", "design demo", "yoga class", "book club", "kickoff", "retro"]
CURRENCY_WORDS = {"USD": ["dollars", "US dollars"], "EUR": ["euros", "EUR"], "GBP": ["pounds", "GBP"],
                  "JPY": ["yen", "JPY"]}
CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# What the task grounds in the description (infer/grounding.GroundedJson), for all six schemas (keys at any depth:
# an order's items' "sku", a person's address "city"): "span" values are copied from it byte for byte (array items
# too), "number" values are numbers written in it, "minutes" numbers written in it or hours times 60, "date" and
# "time" one of the dates / clock times it states ("May 3, 2026" -> "2026-05-03", "3:30 pm" -> "15:30"). Enums and
# booleans are the model's: the text says "yen" or "sold out" where the document holds "JPY" or false.
GROUNDED = {"product_v1": {"name": "span", "sku": "span", "tags": "span", "price": "number"},
            "weather_v1": {"city": "span", "temperature_c": "number", "humidity": "number", "speed_kmh": "number"},
            "event_v1": {"title": "span", "attendees": "span", "duration_min": "minutes", "date": "date",
                         "start": "time"},
            "order_v1": {"order_id": "span", "sku": "span", "quantity": "number", "unit_price": "number"},
            "person_v1": {"name": "span", "age": "number", "email": "span", "street": "span", "city": "span",
                          "postcode": "span"},
            "recipe_v1": {"title": "span", "servings": "number", "name": "span", "amount": "number",
                          "prep_minutes": "minutes"}}


@dataclass
class Example:
    schema_id: str
    text: str   # the description
    doc: dict   # the gold document

    @property
    def source(self) -> bytes:
        return f"{self.schema_id}: {self.text}".encode()

    @property
    def target(self) -> bytes:
        return serialise(self.doc, _schema(self.schema_id))


def serialise(doc: dict, schema: dict) -> bytes:
    """The grammar's serialisation: compact, properties in the schema's order."""
    order = list(schema.get("properties", {}))
    return json.dumps({k: doc[k] for k in order if k in doc}, separators=(",", ":"), ensure_ascii=False).encode()


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _money(rng: random.Random, price: float, cur: str) -> str:
    num = f"{price:g}" if price == int(price) else f"{price:.2f}"
    return rng.choice([f"{CURRENCY_SIGNS[cur]}{num}", f"{num} {rng.choice(CURRENCY_WORDS[cur])}", f"{cur} {num}"])


# -- per-schema value samplers (ranges and enums from the schema) --------------------------------
def _product(rng: random.Random, schema: dict) -> tuple[dict, dict]:
    p = schema["properties"]
    doc = {"name": f"{rng.choice(ADJ)} {rng.choice(NOUN)}",
           "price": rng.choice([rng.randint(1, 500), round(rng.uniform(1, 500), 2)]),
           "currency": rng.choice(p["currency"]["enum"])}
    if rng.random() < 0.5:
        doc["in_stock"] = rng.random() < 0.5
    if rng.random() < 0.4:
        doc["sku"] = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3)) + f"-{rng.randint(0, 9999):04d}"
    if rng.random() < 0.4:
        doc["tags"] = rng.sample(TAGS, rng.randint(1, min(3, p["tags"]["maxItems"])))
    words = {"name": doc["name"], "money": _money(rng, doc["price"], doc["currency"])}
    return doc, words


def _weather(rng: random.Random, schema: dict) -> tuple[dict, dict]:
    p = schema["properties"]
    doc = {"city": rng.choice(CITIES), "temperature_c": rng.randint(-20, 40),
           "conditions": rng.choice(p["conditions"]["enum"])}
    if rng.random() < 0.5:
        doc["humidity"] = rng.randint(p["humidity"]["minimum"], p["humidity"]["maximum"])
    if rng.random() < 0.4:
        wind = {"speed_kmh": rng.randint(0, 90)}
        if rng.random() < 0.6:
            wind["direction"] = rng.choice(p["wind"]["properties"]["direction"]["enum"])
        doc["wind"] = wind
    t = doc["temperature_c"]
    words = {"temp": rng.choice([f"{t} degrees", f"{t}°C", f"{t} C", f"{t} degrees Celsius"])}
    return doc, words


def _event(rng: random.Random, schema: dict) -> tuple[dict, dict]:
    p = schema["properties"]
    y, m, d = rng.randint(2024, 2027), rng.randint(1, 12), rng.randint(1, 28)
    doc = {"title": rng.choice(EVENTS), "date": f"{y:04d}-{m:02d}-{d:02d}"}
    if rng.random() < 0.5:
        doc["start"] = f"{rng.randint(7, 20):02d}:{rng.choice([0, 15, 30, 45]):02d}"
    if rng.random() < 0.5:
        doc["duration_min"] = rng.choice([15, 30, 45, 60, 90, 120])
    doc["attendees"] = rng.sample(NAMES, rng.randint(p["attendees"]["minItems"], 4))
    if rng.random() < 0.4:
        doc["online"] = rng.random() < 0.5
    words = {"date": rng.choice([doc["date"], f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1]} {y}"])}
    return doc, words


# -- phrasing: each template renders a whole description; the last two per schema are held out ----
def _product_text(t: int, doc: dict, w: dict, rng: random.Random) -> str:
    parts = [[f"The {w['name']} costs {w['money']}.", f"{w['name'].capitalize()}, priced at {w['money']}.",
              f"Product: {w['name']}; price {w['money']}.", f"For sale: a {w['name']} at {w['money']}.",
              f"New listing - {w['name']} for {w['money']}.", f"You can buy the {w['name']} for {w['money']}."][t]]
    if "in_stock" in doc:
        parts.append(rng.choice(["In stock.", "Available now."] if doc["in_stock"] else
                                ["Out of stock.", "Currently unavailable."]))
    if "sku" in doc:
        parts.append(rng.choice([f"SKU {doc['sku']}.", f"Item code {doc['sku']}."]))
    if "tags" in doc:
        parts.append(rng.choice([f"Tagged {_listing(doc['tags'])}.", f"Tags: {', '.join(doc['tags'])}."]))
    return " ".join(parts)


def _weather_text(t: int, doc: dict, w: dict, rng: random.Random) -> str:
    c, city = doc["conditions"], doc["city"]
    parts = [[f"In {city} it is {w['temp']} with {c}.", f"{city}: {c}, {w['temp']}.",
              f"Weather for {city} - {c} and {w['temp']}.", f"{city} reports {c} at {w['temp']}.",
              f"Expect {c} in {city}, around {w['temp']}.", f"Today {city} has {c}; temperature {w['temp']}."][t]]
    if "humidity" in doc:
        parts.append(rng.choice([f"Humidity {doc['humidity']}%.", f"{doc['humidity']} percent humidity."]))
    if "wind" in doc:
        wind = doc["wind"]
        d = f" from the {wind['direction']}" if "direction" in wind else ""
        parts.append(rng.choice([f"Wind {wind['speed_kmh']} km/h{d}.", f"Winds of {wind['speed_kmh']} kmh{d}."]))
    return " ".join(parts)


def _event_text(t: int, doc: dict, w: dict, rng: random.Random) -> str:
    who = _listing(doc["attendees"])
    parts = [[f"{doc['title'].capitalize()} on {w['date']} with {who}.", f"Schedule {doc['title']} for {w['date']}: {who}.",
              f"Event: {doc['title']}, {w['date']}, attendees {who}.", f"{who} meet for {doc['title']} on {w['date']}.",
              f"Put {doc['title']} on {w['date']} in the calendar for {who}.",
              f"On {w['date']}, {doc['title']} with {who}."][t]]
    if "start" in doc:
        parts.append(rng.choice([f"Starts at {doc['start']}.", f"From {doc['start']}."]))
    if "duration_min" in doc:
        parts.append(rng.choice([f"{doc['duration_min']} minutes.", f"Lasts {doc['duration_min']} min."]))
    if "online" in doc:
        parts.append(rng.choice(["Online.", "On video."] if doc["online"] else ["In person.", "In the office."]))
    return " ".join(parts)


GENERATORS = {"product_v1": (_product, _product_text), "weather_v1": (_weather, _weather_text),
              "event_v1": (_event, _event_text)}
N_TEMPLATES, N_HELDOUT = 6, 2  # templates 0..3 train, 4..5 held out


def make_example(schema_id: str, rng: random.Random, split: str) -> Example:
    values, text = GENERATORS[schema_id]
    doc, words = values(rng, _schema(schema_id))
    train_n = N_TEMPLATES - N_HELDOUT
    t = rng.randrange(train_n) if split == "train" else train_n + rng.randrange(N_HELDOUT)
    return Example(schema_id, text(t, doc, words, rng), doc)


def make_examples(n: int, seed: int = 0, split: str = "train", schemas=TASK_SCHEMAS) -> list[Example]:
    """n examples cycling over `schemas`; split "train" or "heldout" (held-out phrasing templates)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    rng = random.Random(f"{seed}-{split}")
    return [make_example(schemas[i % len(schemas)], rng, split) for i in range(n)]


def field_scores(pred, gold: dict) -> dict[str, bool]:
    """Per top-level field of either document: equal in both (absent in both counts as correct)."""
    pred = pred if isinstance(pred, dict) else {}
    return {k: pred.get(k) == gold.get(k) and (k in pred) == (k in gold) for k in {*gold, *pred}}
