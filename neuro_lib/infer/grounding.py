"""Grounded decoding: logits processors (infer/engine.py's hook) that keep what a model writes tied to its input,
and one way to use a tool while decoding.

    span = GroundedJson(JsonConstraint(schema, tok), source=b"The red kettle costs $42.", fields={"name": "span",
                        "price": "number"})            # "name" is a span of the source, "price" a number in it
    nums = NumbersFrom({"45", "3"}, opener=b"calc(", closer=b")")   # inside calc(...), only these numbers
    tool = ToolInjector(re.compile(rb"CALL calc\\((.*)\\) -> $"), run, eos_id=256)   # the result, as forced tokens
    generate(model, tok, prompt, processor=chain(tool, nums), eos_id=256)

- `GroundedJson` wraps a grammar processor (structured/constrain.JsonConstraint): inside the value of a field
  marked "span", every prefix of the string is a substring of the source (a name is copied, never invented); in
  a field marked "number", the number is one written in the source, digit for digit ($42 stays 42). Where the
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


class GroundedJson:
    """A grammar processor whose "span" fields copy from `source` and whose "number" fields are numbers in it."""

    def __init__(self, inner, source: bytes, fields: dict[str, str]):
        bad = sorted(set(fields.values()) - {"span", "number"})
        if bad:
            raise ValueError(f"a grounded field is 'span' or 'number', got {bad[0]!r}")
        self.inner, self.source, self.fields = inner, source, dict(fields)
        self.literals = numbers_in(source)
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
            nxt = {self.source[i + len(s.buf)] for i in _find_all(self.source, s.buf)
                   if i + len(s.buf) < len(self.source)}
            nxt -= {0x22, 0x5C}  # a quote or backslash would need an escape: not a plain span
            return nxt | ({0x22} if s.buf else set())
        if kind == "number" and s.in_num:
            return _number_mask(s.buf, self._viable[1] if self._viable else self.literals, True)
        if kind == "number" and s.want_value and not s.in_str:
            if self._viable is None or self._viable[0] != s.n:
                self._viable = (s.n, self._grammar_takes(self.literals))
            return _number_mask(b"", self._viable[1], False)
        return None

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
