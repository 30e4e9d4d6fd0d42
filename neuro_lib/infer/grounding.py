"""Grounded decoding: logits processors (infer/engine.py's hook) that keep what a model writes tied to its input,
and one way to use a tool while decoding.

    span = GroundedJson(JsonConstraint(schema, tok), source=b"The red kettle costs $42.", fields={"name": "span",
                        "price": "number"})            # "name" is a span of the source, "price" a number in it
    nums = NumbersFrom({"45", "3"}, opener=b"calc(", closer=b")")   # inside calc(...), only these numbers
    tool = ToolInjector(re.compile(rb"CALL calc\\((.*)\\) -> $"), run, eos_id=256)   # the result, as forced tokens
    generate(model, tok, prompt, processor=chain(tool, nums), eos_id=256)

- `GroundedJson` wraps a grammar processor (structured/constrain.JsonConstraint), by field kind:
  "span": every prefix of the string is a substring of the source (a name is copied, never invented); with
  `bounded` (the default) it starts and ends on a word boundary ("desk lam" and "kettle," are refused) and does
  not run on past a clause mark (", ", "; ", " / ", " ("); with `distinct` (the default) a field never repeats
  one of its values (a second attendee or SKU is another one).
  "number": one written in the source, digit for digit ($42 stays 42), also without thousands commas
  (1,299 -> 1299), spelled out (four -> 4), as a fraction (1/2 -> 0.5) or as "minus 5" (source_numbers).
  "minutes": such a number, or a number of hours times 60 ("1.5 hours" -> 90, "an hour" -> 60; minutes_in).
  "date" / "time": one of the dates or clock times the text states, written ISO or 24-hour ("May 3rd, 2026" ->
  "2026-05-03", "3:30 pm" -> "15:30"; dates_in, times_in). Where the
  source offers nothing the grammar also allows (an integer field whose only number in the text is 12.50, a SKU
  pattern the copied bytes leave), that position is left to the grammar and the field is listed in `ungrounded`:
  grounding never makes a document invalid. A number's candidates are checked whole against the grammar first
  (a range that refuses 2026 must not get 202).
- `NumbersFrom`: between `opener` and `closer` (a calculator expression), every number literal is one of an
  allowed set (the question's numbers and the results of earlier calls); the set may grow while decoding.
- `ToolInjector`: when the text written so far matches `trigger` (a regex anchored at the end), `run(match)`
  gives the tool's result and the processor returns it from `forced()`: the engine appends those tokens without
  sampling and feeds them to the model in one `step` on the same cache, so a calculator call costs no re-prefill
  and no second generate call. A failed call, or more than `max_calls`, forces the end token.
- `chain(a, b, ...)`: masks applied in order; the first processor that forces tokens wins.

All work on byte-level ids (ByteTokenizer, ids < 256 are bytes; the experts' marker is the end token).
Tests: tests/test_grounding.py.
"""
from __future__ import annotations

import re
from typing import Callable

import torch

NUM_RE = re.compile(rb"-?\d+(?:\.\d+)?")
NUM_BYTES = frozenset(b"0123456789.-+eE")


def numbers_in(text: bytes) -> set[bytes]:
    """Number literals as written in `text` (b"12.50", b"-3", b"375")."""
    return set(NUM_RE.findall(text))


COMMA_NUM_RE = re.compile(rb"(?<![\d.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
SPELLED = {w.encode(): str(i).encode() for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
SPELLED_RE = re.compile(rb"\b(" + b"|".join(SPELLED) + rb"|a dozen)\b", re.I)
HOUR_RE = re.compile(rb"\b(?:an|one|a) (?:hour|hr)\b", re.I)
HALF_HOUR_RE = re.compile(rb"\bhalf an hour\b", re.I)
HOUR_AND_HALF_RE = re.compile(rb"\b(?:an|one|a) hour and a half\b", re.I)
FRACTION_RE = re.compile(rb"(?<![\d/.])(?:(\d+) )?(\d{1,2})/(\d{1,2})(?![\d/])")
VULGAR = {"½".encode(): 0.5, "¼".encode(): 0.25, "¾".encode(): 0.75}
VULGAR_RE = re.compile(rb"(?:(\d+) ?)?(" + b"|".join(VULGAR) + rb")")
MINUS_RE = re.compile(rb"\bminus (\d+(?:\.\d+)?)", re.I)
HALF_RE = re.compile(rb"\bhalf (?:a|an)\b", re.I)


def _decimal(x: float) -> bytes:
    return (str(int(x)) if x == int(x) else repr(x)).encode()


def source_numbers(text: bytes) -> set[bytes]:
    """The numbers a description states: literals as written, those written with thousands commas without them
    (b"1,299.00" -> b"1299.00"), small numbers spelled out (b"four" -> b"4", "a dozen" -> 12), fractions as
    decimals ("1/2", "1 1/2", "½", "half a" -> 0.5, 1.5) and "minus 5" -> -5."""
    out = numbers_in(text) | {m.replace(b",", b"") for m in COMMA_NUM_RE.findall(text)}
    out |= {SPELLED.get(m.lower(), b"12") for m in SPELLED_RE.findall(text)}
    for whole, num, den in FRACTION_RE.findall(text):
        if int(den) in (2, 4, 8) and int(num) < int(den):  # a cooking fraction, not a date or a score
            out.add(_decimal(int(whole or 0) + int(num) / int(den)))
    out |= {_decimal(int(whole or 0) + VULGAR[v]) for whole, v in VULGAR_RE.findall(text)}
    out |= {b"-" + m for m in MINUS_RE.findall(text)}
    return out | ({b"0.5"} if HALF_RE.search(text) else set())


def minutes_in(text: bytes) -> set[bytes]:
    """Durations in minutes a description states: its numbers (as minutes) and each of them times 60 (as hours),
    60 for "an hour", 30 for "half an hour"."""
    nums = source_numbers(text)
    out = set(nums)
    for n in nums:
        try:
            v = float(n) * 60
        except ValueError:
            continue
        if v == int(v) and v >= 0:
            out.add(str(int(v)).encode())
    if HOUR_RE.search(text):
        out.add(b"60")
    if HALF_HOUR_RE.search(text):
        out.add(b"30")
    if HOUR_AND_HALF_RE.search(text):
        out.add(b"90")
    return out


_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
DATE_RES = [(re.compile(r"\b(\d{4})[-/](\d{1,2})[-/](\d{1,2})\b"), "ymd"),
            (re.compile(r"\b" + _MONTH + r"\s+" + _DAY + r",?\s+(\d{4})\b", re.I), "mdy"),
            (re.compile(r"\b" + _DAY + r"\s+(?:of\s+)?" + _MONTH + r",?\s+(\d{4})\b", re.I), "dmy"),
            (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b"), "ambiguous")]
TIME_RE = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?m\b\.?|\b(\d{1,2}):(\d{2})\b|\b(\d{2})\.(\d{2})\b"
                     r"|\b(\d{2})(\d{2}) hours\b|\b(noon|midday|midnight)\b", re.I)


def _month(name: str) -> int:
    return ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].index(name[:3].lower()) + 1


def dates_in(text: bytes) -> set[bytes]:
    """The calendar dates a description states, as ISO strings (b"2026-05-03" for "May 3rd, 2026", "3 May 2026",
    "the 3rd of May 2026", "2026-05-03"; "03/05/2026" gives both readings)."""
    import datetime

    t = text.decode("utf-8", "replace")
    out = set()
    for pattern, order in DATE_RES:
        for m in pattern.finditer(t):
            a, b, c = m.groups()
            if order == "ymd":
                ymd = [(a, b, c)]
            elif order == "mdy":
                ymd = [(c, _month(a), b)]
            elif order == "dmy":
                ymd = [(c, _month(b), a)]
            else:
                ymd = [(c, b, a), (c, a, b)]
            for y, mo, d in ymd:
                try:
                    out.add(datetime.date(int(y), int(mo), int(d)).isoformat().encode())
                except ValueError:
                    continue
    return out


def times_in(text: bytes) -> set[bytes]:
    """The clock times a description states, as 24-hour HH:MM (b"15:30" for "3:30 pm", "3.30pm", "15:30", "15.30",
    "1530 hours"; "noon" -> 12:00, "3 pm" -> 15:00)."""
    out = set()
    for m in TIME_RE.finditer(text.decode("utf-8", "replace")):
        h12, m12, ap, h24, m24, hd, md, hh, mh, word = m.groups()
        if word:
            h, mi = (0, 0) if word.lower() == "midnight" else (12, 0)
        elif ap:
            h, mi = int(h12) % 12 + (12 if ap.lower() == "p" else 0), int(m12 or 0)
        else:
            h, mi = (int(h24), int(m24)) if h24 else (int(hd), int(md)) if hd else (int(hh), int(mh))
        if 0 <= h <= 23 and 0 <= mi <= 59 and not (ap and not 1 <= int(h12) <= 12):
            out.add(f"{h:02d}:{mi:02d}".encode())
    return out


def _wordish(c: int) -> bool:
    """A byte that is part of a word: ASCII letters and digits, and every byte of a non-ASCII UTF-8 character."""
    return c >= 0x80 or chr(c).isalnum()


def _text(ids) -> bytes:
    return bytes(i for i in ids if i < 256)


def _keep_only(logits: torch.Tensor, allowed: set[int]) -> torch.Tensor:
    keep = torch.zeros(logits.size(-1), dtype=torch.bool)
    keep[[i for i in allowed if i < logits.size(-1)]] = True
    return logits.masked_fill(~keep, float("-inf"))


def _number_mask(written: bytes, literals: set[bytes], started: bool) -> set[int] | None:
    """Bytes allowed next in a number that must be one of `literals` (None: no restriction)."""
    nxt = {lit[len(written)] for lit in literals if lit.startswith(written) and len(lit) > len(written)}
    if started and written in literals:  # complete: anything that is not part of a number may follow
        return nxt | (set(range(256)) - NUM_BYTES)
    return nxt


class _JsonScan:
    """Where the bytes written so far stand in a JSON document: inside a key or a value string, inside a number,
    or waiting for a value; with the key each open object is at (arrays inherit their key)."""

    def __init__(self):
        self.stack: list[list] = []          # [kind "{" or "[", current key]
        self.in_str = self.is_key = self.esc = self.in_num = False
        self.want_value = False              # after ":" in an object, after "[" or "," in an array
        self.buf = b""
        self.n = 0
        self.closed: dict[str | None, set[bytes]] = {}  # key -> the string values written for it so far

    @property
    def key(self) -> str | None:
        return self.stack[-1][1] if self.stack else None

    def feed(self, data: bytes) -> None:
        for c in data:
            self._byte(c)
        self.n += len(data)

    def _byte(self, c: int) -> None:
        if self.in_str:
            if self.esc:
                self.esc, self.buf = False, self.buf + bytes([c])
            elif c == 0x5C:  # backslash
                self.esc = True
            elif c == 0x22:  # closing quote
                self.in_str = False
                if self.is_key:
                    self.stack[-1][1] = self.buf.decode("utf-8", "replace")
                else:
                    self.closed.setdefault(self.key, set()).add(self.buf)
            else:
                self.buf += bytes([c])
            return
        if self.in_num:
            if c in NUM_BYTES:
                self.buf += bytes([c])
                return
            self.in_num = False
        top = self.stack[-1][0] if self.stack else None
        if c == 0x22:
            self.in_str, self.is_key, self.buf = True, top == "{" and not self.want_value, b""
            self.want_value = False
        elif c == ord("{"):
            self.stack.append(["{", None])
            self.want_value = False
        elif c == ord("["):
            self.stack.append(["[", self.key])
            self.want_value = True
        elif c in b"}]":
            if self.stack:
                self.stack.pop()
            self.want_value = False
        elif c == ord(":"):
            self.want_value = True
        elif c == ord(","):
            self.want_value = top == "["
        elif c in NUM_BYTES:
            self.in_num, self.buf, self.want_value = True, bytes([c]), False
        elif c > 0x20:  # true / false / null
            self.want_value = False


KINDS = ("span", "number", "minutes", "date", "time")
SPAN_END = frozenset(b")%+")  # besides letters and digits, the bytes a bounded span may end with
CLAUSE_END = frozenset(b",;:!?")  # a bounded span does not run on past one of these and a space
LIST_MARK = frozenset(b"/+-|(")  # nor take one of these after a space ("Ana / Ben", "lamp (red)")


class GroundedJson:
    """A grammar processor whose "span" fields copy from `source` and whose "number" ("minutes") fields are numbers
    in it (or hours in it, times 60)."""

    def __init__(self, inner, source: bytes, fields: dict[str, str], bounded: bool = True, distinct: bool = True):
        bad = sorted(set(fields.values()) - set(KINDS))
        if bad:
            raise ValueError(f"a grounded field is one of {', '.join(map(repr, KINDS))}, got {bad[0]!r}")
        self.inner, self.source, self.fields = inner, source, dict(fields)
        self.bounded, self.distinct = bounded, distinct
        self.candidates = {"number": source_numbers(source), "minutes": minutes_in(source)}
        self.choices = {"date": dates_in(source), "time": times_in(source)}  # strings read from the text
        self.literals = self.candidates["number"]
        # where a bounded span may start: a word byte with no word byte before it
        self._starts = {i for i in range(len(source)) if _wordish(source[i]) and (i == 0 or not _wordish(source[i - 1]))}
        self.eos_id = getattr(inner, "eos_id", None)
        self.scan = _JsonScan()
        self.fallbacks = 0  # positions left to the grammar because the source offered nothing it allows
        self.ungrounded: set[str] = set()  # the fields of those positions
        self._viable: tuple[int, set[bytes]] | None = None  # (where the number starts, literals the grammar takes)

    def _sync(self, ids) -> None:
        self.scan.feed(_text(ids[self.scan.n:]))

    def forced(self, ids) -> list[int]:
        return self.inner.forced(ids) if hasattr(self.inner, "forced") else []

    def allowed(self) -> set[int] | None:
        """The bytes grounding allows next (None: this position is not grounded)."""
        s = self.scan
        kind = self.fields.get(s.key or "")
        if kind == "span" and s.in_str and not s.is_key:
            if s.esc:
                return set()
            nxt = self._span_next(s.buf)
            if self.distinct and s.buf in s.closed.get(s.key, ()):  # the same value again: not a second item
                nxt.discard(0x22)
            return nxt
        if kind in self.choices and s.in_str and not s.is_key:
            if not self.choices[kind]:  # the text states no date (time): left to the grammar
                self.ungrounded.add(s.key)
                return None
            return {c[len(s.buf)] for c in self.choices[kind] if c.startswith(s.buf) and len(c) > len(s.buf)} | (
                {0x22} if s.buf in self.choices[kind] else set())
        if kind in self.candidates and s.in_num:
            return _number_mask(s.buf, self._viable[1] if self._viable else self.candidates[kind], True)
        if kind in self.candidates and s.want_value and not s.in_str:
            if self._viable is None or self._viable[0] != s.n:
                self._viable = (s.n, self._grammar_takes(self.candidates[kind]))
            return _number_mask(b"", self._viable[1], False)
        return None

    def _span_next(self, buf: bytes) -> set[int]:
        """The bytes that may follow `buf` inside a span value (the closing quote when the span may end here)."""
        n, src = len(buf), self.source
        at = [i for i in _find_all(src, buf) if not self.bounded or i in self._starts]
        nxt = {src[i + n] for i in at if i + n < len(src)}
        nxt -= {0x22, 0x5C}  # a quote or backslash would need an escape: not a plain span
        if not buf:
            return nxt
        if not self.bounded:
            return nxt | {0x22}
        if buf[-1] in CLAUSE_END:
            nxt.discard(0x20)
        elif buf[-1] == 0x20:
            nxt -= LIST_MARK
        ends = any(i + n == len(src) or not _wordish(src[i + n]) for i in at)
        return nxt | ({0x22} if ends and (_wordish(buf[-1]) or buf[-1] in SPAN_END) else set())

    def _grammar_takes(self, literals: set[bytes]) -> set[bytes]:
        """The literals the grammar accepts here as a whole value (a range such as duration <= 600 refuses 2026,
        which digit by digit would be cut to 202): each is tried on a copy of the grammar's matcher."""
        matcher = getattr(self.inner, "matcher", None)
        if matcher is None:
            return set(literals)
        ok = set()
        for lit in literals:
            for end in (b",", b"}", b"]"):
                m = matcher.deep_copy()
                if m.consume_tokens(list(lit + end)):
                    ok.add(lit)
                    break
        return ok

    def __call__(self, ids, logits: torch.Tensor) -> torch.Tensor:
        self._sync(ids)
        x = self.inner(ids, logits) if self.inner is not None else logits
        allowed = self.allowed()
        if allowed is None:
            return x
        y = _keep_only(x, allowed)
        if torch.isinf(y).all():
            self.fallbacks += 1
            self.ungrounded.add(self.scan.key)
            return x
        return y


def _find_all(hay: bytes, needle: bytes):
    i = hay.find(needle)
    while i >= 0:
        yield i
        i = hay.find(needle, i + 1)


class NumbersFrom:
    """Between `opener` and `closer`, number literals come from `allowed` (a set of bytes; it may grow)."""

    def __init__(self, allowed: set[bytes], opener: bytes = b"calc(", closer: bytes = b")"):
        self.allowed, self.opener, self.closer = allowed, opener, closer
        self.fallbacks = 0

    def region(self, text: bytes) -> bytes | None:
        """The text written inside the open region, or None outside one. When the opener ends in "(" and the closer
        is ")", parentheses nest: "calc((45-40)/40*100" is still open after "(45-40)"."""
        i = text.rfind(self.opener)
        if i < 0:
            return None
        inside = text[i + len(self.opener):]
        if self.opener.endswith(b"(") and self.closer == b")":
            return inside if inside.count(b"(") >= inside.count(b")") else None
        return None if self.closer in inside else inside

    def __call__(self, ids, logits: torch.Tensor) -> torch.Tensor:
        inside = self.region(_text(ids))
        if inside is None:
            return logits
        m = re.search(rb"[\d.]*$", inside)
        written = m.group(0)
        others = set(range(logits.size(-1))) - set(b"0123456789.")
        if written:  # inside a number: continue an allowed literal; once it is complete, an operator may follow
            allowed = {lit[len(written)] for lit in self.allowed if lit.startswith(written) and len(lit) > len(written)}
            if written in self.allowed:  # (not _number_mask: in an expression "+", "-" and "e" end a number)
                allowed |= others
        else:  # not in a number: a digit may only start an allowed literal; other bytes are the model's
            allowed = {lit[0] for lit in self.allowed if lit} | others
        y = _keep_only(logits, allowed)
        if torch.isinf(y).all():
            self.fallbacks += 1
            return logits
        return y


class ToolInjector:
    """Runs a tool when the text matches `trigger` and injects its result as forced tokens.

    run(match) -> (ok, result bytes, record): the record (any object, e.g. a runtime ToolCall) is kept in
    `calls`; a failed call (ok False) or a call past `max_calls` forces `eos_id` and sets `error`."""

    def __init__(self, trigger: re.Pattern, run: Callable, eos_id: int, max_calls: int = 6,
                 encode: Callable[[bytes], list[int]] = list, name: str = "tool"):
        self.trigger, self.run, self.eos_id, self.max_calls, self.encode = trigger, run, eos_id, max_calls, encode
        self.name = name
        self.calls: list = []
        self.error: str | None = None
        self._done_at: set[int] = set()  # positions (len(ids)) already answered

    def forced(self, ids) -> list[int]:
        if self.error is not None:
            return [self.eos_id]
        if len(ids) in self._done_at:
            return []
        m = self.trigger.search(_text(ids))
        if m is None:
            return []
        self._done_at.add(len(ids))
        if len(self.calls) >= self.max_calls:
            self.error = f"the plan made more than {self.max_calls} calls"
            return [self.eos_id]
        ok, result, record = self.run(m)
        self.calls.append(record)
        if not ok:
            self.error = f"the {self.name} refused {m.group(1).decode('utf-8', 'replace')!r}: {result.decode()}"
            return [self.eos_id]
        return self.encode(result)

    def __call__(self, ids, logits: torch.Tensor) -> torch.Tensor:
        return logits


class chain:
    """Several processors as one: masks in order; forced tokens from the first processor that forces any."""

    def __init__(self, *processors):
        self.processors = [p for p in processors if p is not None]

    def forced(self, ids) -> list[int]:
        for p in self.processors:
            f = list(p.forced(ids)) if hasattr(p, "forced") else []
            if f:
                return f
        return []

    def __call__(self, ids, logits: torch.Tensor) -> torch.Tensor:
        for p in self.processors:
            logits = p(ids, logits)
        return logits
