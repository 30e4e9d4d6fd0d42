"""Rule and regex floors (issue 21): what a few lines of rules score on the outside sets, so a trained expert
can be read against the least it should beat.

    math_floor("A jacket costs 120 dollars and is on sale at 25% off. What is the sale price?")   # "90"
    json_floor("The red umbrella is 12 GBP (SKU UMB-0007).", "product_v1")
    # {"name": "red umbrella", "price": 12, "currency": "GBP", "sku": "UMB-0007"}

- math: a rule parser; written arithmetic ("48 divided by 6", "(15 + 9) * 4", "15% of 80") goes to the
  calculator tool; a word problem is read by keywords (split/shared -> divide, each/per -> multiply, % off ->
  discount, change/left -> subtract); anything else abstains (None).
- json: a regex extractor driven by the schema: patterns (SKU, order id, date, time, postcode) searched as
  written in the schema, enums by their values and common synonyms ($ -> USD, French -> fr), numbers by the
  word beside them, strings by position; a field that breaks the schema is dropped.
- retrieval: BM25 + the rule ("lite") reader, i.e. runtime/experts.py's Retrieval on the bm25 retriever, which
  bench/outside.py builds from the expert's index. It never refuses.

Neither is tuned on the outside sets (they were written after these rules' shapes were fixed by the
schemas and the README's examples). Tests: tests/test_eval_sets.py.
"""
from __future__ import annotations

import re
from fractions import Fraction

from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify
from neuro_lib.tools.calculator import Calculator

_CALC = Calculator()
_WORD_OPS = ((r"\bdivided by\b", "/"), (r"\bmultiplied by\b", "*"), (r"\btimes\b", "*"), (r"\bplus\b", "+"),
             (r"\bminus\b", "-"), (r"\bsquared\b", "**2"), (r"\bcubed\b", "**3"), (r"\bto the power of\b", "**"),
             (r"\bremainder when (\d+) is divided by (\d+)", r"\1 % \2"))
_EXPR = re.compile(r"[\d(][\d\s.+\-*/%()]*[\d)]")


def _num(s: str) -> Fraction:
    return Fraction(s.replace(",", ""))


def _fmt(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else f"{float(v):.10g}"


def _calc(expr: str) -> Fraction | None:
    r = _CALC.call({"expression": expr})
    return Fraction(str(r.value)) if r.ok and isinstance(r.value, (int, float)) else None


def math_floor(text: str) -> str | None:
    """A number as text, or None (the rules do not know this kind of question)."""
    t = re.sub(r"(\d),(\d{3})", r"\1\2", text.lower()).replace("$", "")
    pct = re.search(r"(\d+(?:\.\d+)?)\s*%\s*of\s*(\d+(?:\.\d+)?)", t)
    if pct:
        return _fmt(_num(pct.group(1)) / 100 * _num(pct.group(2)))
    for pattern, op in _WORD_OPS:
        t = re.sub(pattern, op, t)
    exprs = [e for e in _EXPR.findall(t) if re.search(r"\d\s*[+\-*/%]+\s*[\d(]", e)]
    if exprs:
        v = _calc(max(exprs, key=len))
        return None if v is None else _fmt(v)
    nums = [_num(n) for n in re.findall(r"\d+(?:\.\d+)?", t)]
    pcts = [_num(n) for n in re.findall(r"(\d+(?:\.\d+)?)\s*(?:%|percent)", t)]
    if pcts and len(nums) >= 2:
        base = max(n for n in nums if n not in pcts[:1]) if len(nums) > 1 else nums[0]
        p = pcts[0] / 100
        if re.search(r"\b(off|discount|drops?|lose|loses|removed|decrease)", t):
            return _fmt(base * (1 - p))
        if re.search(r"\b(grows|rise|rises|increase|tax included|total|new)\b", t):
            return _fmt(base * (1 + p))
        return _fmt(base * p)
    if len(nums) < 2:
        return None
    a, b = nums[0], nums[1]
    if re.search(r"\b(split|shared?|equally|among|divided|cut into|per (day|minute|hour|kilogram|can)|each one|one \w+ (cost|weigh))", t) and b:
        return _fmt(max(a, b) / min(a, b))
    if re.search(r"\b(change|left|remain|remains|empty)\b", t):
        return _fmt(max(a, b) - min(a, b))
    if re.search(r"\b(each|per|at|every|a week|an hour)\b", t):
        return _fmt(a * b)
    return None


# -- JSON ---------------------------------------------------------------------------------------------------------
_SYNONYMS = {"USD": r"\$|\bdollars?\b|\busd\b", "EUR": r"€|\beuros?\b|\beur\b", "GBP": r"£|\bpounds?\b|\bgbp\b",
             "JPY": r"¥|\byen\b|\bjpy\b", "en": r"\benglish\b", "fr": r"\bfrench\b", "de": r"\bgerman\b",
             "es": r"\bspanish\b", "it": r"\bitalian\b", "ja": r"\bjapanese\b", "rain": r"\brain(y|ing)?\b",
             "snow": r"\bsnow(y|ing)?\b", "sunny": r"\bsunny\b", "cloudy": r"\bcloudy\b", "fog": r"\bfog(gy)?\b",
             "storm": r"\b(thunder)?storm\b", "pending": r"\bpending\b|awaiting payment",
             "paid": r"\bpaid\b|payment for", "shipped": r"\bshipped\b", "cancelled": r"\bcancell?ed\b"}
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_NUMBER_RULES = {  # field -> regexes, the first match's group 1 is the value
    "price": [r"[$€£¥]\s*" + _NUMBER, _NUMBER + r"\s*(?:dollars?|usd|euros?|eur|pounds?|gbp|yen|jpy)\b"],
    "temperature_c": [_NUMBER + r"\s*(?:°|degrees|c\b)"],
    "humidity": [r"humidity\s*(?:of\s*)?" + _NUMBER, _NUMBER + r"\s*(?:%|percent)"],
    "age": [r"\baged?\s*:?\s*" + _NUMBER, _NUMBER + r"[- ]years?", r"\(" + _NUMBER + r"\)", r"\bis\s+" + _NUMBER + r"\b",
            r",\s*" + _NUMBER + r"\b"],
    "duration_min": [_NUMBER + r"\s*min", _NUMBER + r"\s*hours?"],
    "servings": [r"\bserves\s+" + _NUMBER, r"\bfor\s+" + _NUMBER, _NUMBER + r"\s*servings?", r"\bfeeds\s+" + _NUMBER],
    "prep_minutes": [_NUMBER + r"\s*min"],
    "speed_kmh": [_NUMBER + r"\s*km/h"],
}
_BOOLEANS = {"in_stock": ((r"out of stock|sold out|unavailable|none left", False), (r"in stock|available|ready to ship", True)),
             "online": ((r"not online|in person", False), (r"online|video|remote", True)),
             "vegetarian": ((r"not vegetarian", False), (r"vegetarian", True)),
             "express": ((r"not express|standard delivery|regular post", False), (r"express", True))}
_LEAD = re.compile(r"^(?:listing|product|for sale|recipe|profile|contact|name|schedule)\s*:?\s*", re.I)


def _search_pattern(pattern: str, text: str) -> str | None:
    m = re.search(r"(?<![\w-])(?:" + pattern.strip("^$") + r")(?![\w-])", text)
    return m.group(0) if m else None


def _enum(values: list, text: str, many: bool = False):
    low = text.lower()
    hits = []
    for v in values:
        pat = _SYNONYMS.get(v, r"(?<![\w-])" + re.escape(str(v)).lower() + r"(?![\w-])")
        m = re.search(pat, low if v not in ("N", "NE", "E", "SE", "S", "SW", "W", "NW") else text)
        if m:
            hits.append((m.start(), v))
    hits.sort()
    return [v for _, v in hits] if many else (hits[0][1] if hits else None)


def _number(name: str, text: str, integer: bool):
    for rule in _NUMBER_RULES.get(name, []):
        m = re.search(rule, text, re.I)
        if m:
            v = Fraction(m.group(1)) * (60 if name == "duration_min" and "hour" in m.group(0).lower() else 1)
            return int(v) if integer or v.denominator == 1 else float(v)
    return None


def _head(text: str) -> str:
    """The leading noun phrase: the text up to its first separator, without a lead-in or an article."""
    t = _LEAD.sub("", text.strip())
    t = re.split(r",|:| - | is | costs?\b| at | for | on | retails| has| turned| serves| \(|\.(?:\s|$)", t, maxsplit=1)[0]
    return re.sub(r"^(?:a|an|the)\s+", "", t.strip(" '\""), flags=re.I).strip(" '\"")


def _list_after(words: str, text: str) -> list[str]:
    m = re.search(r"(?:" + words + r")\s*:?\s*([^.;]+)", text, re.I)
    if not m:
        return []
    parts = re.split(r",\s*|\s+and\s+", m.group(1))
    return [p.strip() for p in parts if p.strip() and len(p.strip()) <= 20]


def _field(name: str, spec: dict, text: str):
    if "pattern" in spec:
        return _search_pattern(spec["pattern"], text)
    if "enum" in spec:
        return _enum(spec["enum"], text)
    kind = spec.get("type")
    if kind in ("number", "integer"):
        return _number(name, text, kind == "integer")
    if kind == "boolean":
        for pat, value in _BOOLEANS.get(name, ()):
            if re.search(pat, text, re.I):
                return value
        return None
    if name == "email":
        m = re.search(r"[\w.+-]+@[\w-]+\.[\w.]+\w", text)
        return m.group(0) if m else None
    if name in ("name", "title"):
        return _head(text) or None
    if name == "city":
        m = re.search(r"(?:in|from|over|,)\s+([A-Z][a-z]+(?: [A-Z][a-z]+)?)", text) if not re.match(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?\s*(?::|,| is| reports| today| weather)", text) else re.match(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?", text)
        return m.group(1) if m and m.groups() else (m.group(0) if m else None)
    if name == "street":
        m = re.search(r"\d+ [A-Z][a-z]+(?: [A-Z][a-z]+)*", text)
        return m.group(0) if m else None
    return None


def _items(text: str) -> list[dict]:
    out = []
    for m in re.finditer(r"(?:(\d+)\s*(?:x|units? of|of)\s*([A-Z]{3}-\d{4})|([A-Z]{3}-\d{4})\s*x\s*(\d+))"
                         r"(?:\s*(?:at|@|\(|priced at)\s*" + _NUMBER + r")?", text):
        q, sku = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        item = {"sku": sku, "quantity": int(q)}
        if m.group(5):
            p = Fraction(m.group(5))
            item["unit_price"] = int(p) if p.denominator == 1 else float(p)
        out.append(item)
    if not out:
        out = [{"sku": s, "quantity": 1} for s in re.findall(r"[A-Z]{3}-\d{4}", text)]
    return out[:4]


def _ingredients(text: str) -> list[dict]:
    out = []
    for m in re.finditer(_NUMBER + r"\s*(g|kg|ml|l|cup|tbsp|tsp|piece)\s+([a-z][a-z ]*?)(?=,|\.|;| and |$)", text):
        a = Fraction(m.group(1))
        out.append({"name": m.group(3).strip()[:20], "amount": int(a) if a.denominator == 1 else float(a),
                    "unit": m.group(2)})
    return out[:5]


def json_floor(text: str, schema_id: str) -> dict:
    """The document the rules read from `text`, valid against the schema (fields that break it are dropped)."""
    schema = load_schema(schema_id)
    doc = {}
    for name, spec in schema["properties"].items():
        if name == "items":
            v = _items(text) or None
        elif name == "ingredients":
            v = _ingredients(text) or None
        elif name == "attendees":
            v = _list_after(r"\bwith|attending|attendees|invite|for|are coming", text) or None
        elif name == "tags":
            v = _list_after(r"\btags?|tagged|labelled", text) or None
        elif name == "languages":
            v = _enum(spec["items"]["enum"], text, many=True)[:3] or None
        elif spec.get("type") == "object":
            sub = {k: _field(k, s, text) for k, s in spec["properties"].items()}
            v = {k: x for k, x in sub.items() if x is not None} or None
        else:
            v = _field(name, spec, text)
        if v is not None:
            doc[name] = v
    for _ in range(len(doc)):  # drop what the schema refuses, one top-level field at a time
        errors = verify(doc, schema)
        if not errors:
            break
        bad = {e.location[0] for e in errors if e.location} & set(doc)
        if not bad:
            break
        for k in bad:
            doc.pop(k)
    return doc
