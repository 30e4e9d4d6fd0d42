"""Schema-constrained decoding with llguidance: a JSON Schema compiled into a per-step token
mask for our tokenizers, plugged into the decoding engine's logits-processor hook.

References: llguidance (github.com/guidance-ai/llguidance; the `llguidance` package) for the
schema -> grammar compiler, the Earley parser and the token masks; "Guiding LLMs the right
way" (Moskal et al., 2024) for the lexer/parser split that makes masks cheap.

    c = JsonConstraint(load_schema("product_v1"), ByteTokenizer(), budget=200)
    text = generate(model, tok, prompt, max_new_tokens=200, processor=c, eos_id=c.eos_id)

- Vocabulary: every token id of the tokenizer with its bytes (byte: 256 single bytes, bpe:N: the
  BPE table) plus one end token, id `tokenizer.vocab_size`. A model trained for JSON has that
  many + 1 logits; a plain LM without the end slot still works (the engine stops when the
  grammar is complete). Tokenizers whose ids have no fixed bytes (vq, word) are refused.
- Contract (DESIGN.md): `c(ids_so_far, logits) -> logits` with ids_so_far the generated ids
  (prompt excluded), and `c.forced(ids_so_far) -> list[int]`: the tokens the grammar forces
  next (fast-forward), which the engine appends without sampling.
- Output is compact JSON (no whitespace, "," and ":"), properties in the schema's order:
  that is the grammar llguidance builds. A schema keyword llguidance cannot express
  ("not", "uniqueItems", an unknown format, ...) is an error naming it, never dropped.
- Budget: the greedy *finisher* (closing bytes first: `"`, `}`, `]`, `,`, then the smallest
  digit...) gives a valid completion from any state; its length L is the distance to a
  valid end. A schema whose L from the start exceeds the budget is refused up front. While
  decoding, a token that could make L exceed the tokens left is masked, and once the slack
  is down to a few tokens the finisher's path is the only choice, so a budget never yields
  truncated JSON.

Tests: tests/test_structured_constrain.py.
"""
from __future__ import annotations

import functools
import json
import time

import numpy as np
import torch
from llguidance import LLMatcher, LLTokenizer
from llguidance._tokenizer import TokenizerWrapper

from neuro_lib.errors import NeuroError

# compact JSON: the grammar then has exactly one serialisation per document (key order = schema order)
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
BYTE_MAPPED = ("byte", "bpe")  # tokenizer kinds whose every id stands for fixed bytes
END_TOKEN = b"<|end|>"
# the finisher's preference: close a string, an object, an array, end a number, smallest digit
CLOSE_ORDER = b'"}],0123456789a'
_RANK = np.full(256, 1000, dtype=np.int64)
_RANK[list(CLOSE_ORDER)] = np.arange(len(CLOSE_ORDER))
_RANK += np.where(_RANK == 1000, np.arange(256), 0)  # then by byte value
STRUCTURAL = set(b',:[{"')  # bytes that can open a new element (a jump in the distance to the end)
QUOTE = ord('"')
FREE_SET = 32  # more allowed tokens than this: a free-text position for the finisher
STEER_SLACK = 2  # tokens of slack under which the finisher's path is forced


class _Vocab:
    """The tokenizer protocol llguidance's TokenizerWrapper reads (tokens, eos, encode)."""

    def __init__(self, tokenizer):
        self.tokens = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)] + [END_TOKEN]
        self.eos_token_id = tokenizer.vocab_size
        self.bos_token_id = None
        self.special_token_ids = [self.eos_token_id]
        self._encode = tokenizer.encode

    def __call__(self, s):
        return self._encode(s)


def _check_mapped(tokenizer) -> None:
    if getattr(tokenizer, "kind", None) not in BYTE_MAPPED:
        raise NeuroError(f"tokenizer {tokenizer.spec!r} has no byte mapping (constrained decoding needs one of "
                         f"{', '.join(BYTE_MAPPED)})")


_LL_TOKENIZERS: dict[tuple, tuple[LLTokenizer, list[bytes]]] = {}  # (spec, fingerprint) -> built once


def ll_tokenizer(tokenizer) -> tuple[LLTokenizer, list[bytes]]:
    """(llguidance tokenizer, id -> bytes table) for a byte-mapped tokenizer; cached per tokenizer."""
    _check_mapped(tokenizer)
    key = (tokenizer.spec, tokenizer.fingerprint() if hasattr(tokenizer, "fingerprint") else "")
    if key not in _LL_TOKENIZERS:
        vocab = _Vocab(tokenizer)
        _LL_TOKENIZERS[key] = LLTokenizer(TokenizerWrapper(vocab), slices=LLTokenizer.json_slices()), vocab.tokens
    return _LL_TOKENIZERS[key]


def compile_schema(schema: dict, name: str = "schema") -> str:
    """JSON Schema -> llguidance grammar; NeuroError naming any feature it cannot express."""
    try:
        grammar = LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)
    except ValueError as e:
        raise NeuroError(f"schema {name!r} cannot be compiled: {e}") from None
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error or messages:  # llguidance warns where it would ignore a keyword: refuse, never drop
        raise NeuroError(f"schema {name!r} uses a feature llguidance cannot express: {'; '.join(messages)}")
    return grammar


def _matcher(llt: LLTokenizer, grammar: str, name: str) -> LLMatcher:
    m = LLMatcher(llt, grammar, log_level=0)
    if m.is_error():
        raise NeuroError(f"schema {name!r}: llguidance rejected the grammar: {m.get_error().splitlines()[0]}")
    return m


@functools.lru_cache(maxsize=8)
def _byte_ids(tokens: tuple) -> np.ndarray:
    """byte value -> the id of the token that is that single byte (byte and BPE vocabularies have all 256)."""
    index = {t: i for i, t in enumerate(tokens[:-1])}
    missing = [b for b in range(256) if bytes([b]) not in index]
    if missing:
        raise NeuroError(f"the vocabulary has no single-byte token for {len(missing)} byte values")
    return np.array([index[bytes([b])] for b in range(256)], dtype=np.int64)


def finish(m: LLMatcher, tokens: list[bytes], encode, limit: int) -> list[int] | None:
    """The finisher's completion from matcher m (consumed into m, byte by byte), as the ids of
    `encode(completion bytes)`, or None if that takes more than `limit` tokens. Bytes are picked
    by CLOSE_ORDER; where many are allowed (inside a string) a byte already used in this string loses
    its rank, so a pattern that needs a particular byte (an email's "@") gets it instead of looping."""
    ids = _byte_ids(tuple(tokens))
    used = np.zeros(256, dtype=np.int64)
    out = bytearray()
    max_bytes = limit * max(len(t) for t in tokens[:-1])
    while len(out) <= max_bytes:
        if m.is_accepting():
            path = encode(bytes(out)) if out else []
            return path if len(path) <= limit else None
        ff = m.compute_ff_bytes()
        if ff:
            m.consume_tokens(ids[list(ff)].tolist())
            out += ff
            continue
        allowed = np.flatnonzero(np.frombuffer(m.compute_logit_bias(), dtype=np.uint8)[ids])  # allowed bytes
        if allowed.size == 0:
            return None
        free = allowed.size > FREE_SET
        best = int(allowed[np.argmin(used[allowed] * free * 1024 + _RANK[allowed])])
        m.consume_token(int(ids[best]))
        out.append(best)
        used[best] += free
        if best == QUOTE:
            used[:] = 0  # a string opened or closed: the next lexeme starts afresh
    return None


def _sub_schemas(schema: dict):
    """Each property value and array item schema, recursively (what one token can open)."""
    for key, sub in (schema.get("properties") or {}).items():
        yield key, sub
        yield from _sub_schemas(sub)
    items = schema.get("items")
    if isinstance(items, dict):
        yield "", items
        yield from _sub_schemas(items)


class JsonConstraint:
    """A logits processor that keeps decoding inside a JSON Schema (see the module docstring)."""

    def __init__(self, schema: dict, tokenizer, budget: int | None = None, name: str = "schema"):
        self.name = name
        self.llt, self.tokens = ll_tokenizer(tokenizer)
        self.eos_id = tokenizer.vocab_size
        self.encode = tokenizer.encode
        self.grammar = compile_schema(schema, name)
        self.matcher = _matcher(self.llt, self.grammar, name)
        self.budget = budget
        self.n_consumed = 0
        self.mask_us: list[float] = []  # time of each mask computation + our glue, microseconds
        self.minimal = finish(self.matcher.deep_copy(), self.tokens, self.encode, 1 << 12)
        if self.minimal is None:
            raise NeuroError(f"schema {name!r} has no finite valid document the finisher can reach")
        if budget is not None and len(self.minimal) > budget:
            raise NeuroError(f"schema {name!r}: its shortest valid document takes {len(self.minimal)} tokens, "
                             f"more than the budget of {budget}")
        self.max_jump = self._max_jump(schema, tokenizer) if budget is not None else 0
        self._path: list[int] = list(self.minimal)  # the finisher's completion from the current state

    def _max_jump(self, schema: dict, tokenizer) -> int:
        """Most tokens one new element (a property with its key, an array item) can add to the distance
        to the end: each sub-schema's own minimal document, its key and separators, plus a margin."""
        jump = 0
        for key, sub in _sub_schemas(schema):
            try:
                m = _matcher(self.llt, compile_schema(sub, self.name), self.name)
            except NeuroError:
                return 1 << 30  # cannot bound it: check every structural token
            path = finish(m, self.tokens, self.encode, 1 << 12) or []
            jump = max(jump, len(path) + len(tokenizer.encode(json.dumps(key))) + 4)
        return jump

    # -- engine hooks --------------------------------------------------------------------------
    def _sync(self, ids) -> None:
        new = [int(i) for i in ids[self.n_consumed:]]
        if new:
            if self._path[:len(new)] == new:
                self._path = self._path[len(new):]
            else:
                self._path = []  # recomputed on demand
            if not self.matcher.consume_tokens(new):
                raise RuntimeError(f"token outside the grammar reached the constraint: {self.matcher.get_error()}")
            self.n_consumed += len(new)

    def _finisher_path(self) -> list[int]:
        if not self._path and not self.matcher.is_accepting():
            self._path = finish(self.matcher.deep_copy(), self.tokens, self.encode, 1 << 12) or []
        return self._path

    def forced(self, ids) -> list[int]:
        """Tokens the grammar forces next (the engine appends them without sampling); [end] when done."""
        self._sync(ids)
        if self.matcher.is_stopped():
            return [self.eos_id]
        if self.budget is not None and self.budget - self.n_consumed - len(self._finisher_path()) <= STEER_SLACK:
            return self._finisher_path()[:1] or [self.eos_id]  # steer: the shortest valid completion
        ff = self.matcher.compute_ff_bytes()
        return self.encode(ff) if ff else []

    def __call__(self, ids, logits: torch.Tensor) -> torch.Tensor:
        """logits (..., V_model) -> the same with every token the grammar forbids at -inf."""
        self._sync(ids)
        t0 = time.perf_counter()
        allowed = np.frombuffer(self.matcher.compute_logit_bias(), dtype=np.uint8).astype(bool)
        V = logits.size(-1)
        keep = torch.from_numpy(allowed[:V].copy())
        if V > allowed.size:  # a model with more logits than the grammar's vocabulary
            keep = torch.cat([keep, torch.zeros(V - allowed.size, dtype=torch.bool)])
        self.mask_us.append((time.perf_counter() - t0) * 1e6)
        if self.budget is not None:
            keep = self._steer(keep)
        if not keep.any():
            raise RuntimeError("the grammar allows no token of this model's vocabulary")
        return logits.masked_fill(~keep.to(logits.device), float("-inf"))

    def _steer(self, keep: torch.Tensor) -> torch.Tensor:
        """Mask tokens after which the finisher would need more tokens than are left."""
        left = self.budget - self.n_consumed - 1  # tokens left after this one
        path = self._finisher_path()
        if left - len(path) + 1 > self.max_jump:
            return keep  # far from the end: no single token can use up the slack
        keep = keep.clone()
        for i in torch.nonzero(keep).flatten().tolist():
            if i == self.eos_id or (path and i == path[0]):
                continue  # the finisher's own next token is safe by construction
            if not STRUCTURAL.intersection(self.tokens[i]) and left - len(path) >= STEER_SLACK:
                continue  # a character inside a string or number moves the end by at most one token
            m = self.matcher.deep_copy()
            m.consume_token(i)
            if finish(m, self.tokens, self.encode, left) is None:
                keep[i] = False
        return keep

    # -- acceptor ------------------------------------------------------------------------------
    def accepts(self, text: bytes | str, tokenizer) -> bool:
        """Whether the grammar accepts `text` as a whole document (a fresh matcher; state untouched)."""
        data = text.encode() if isinstance(text, str) else text
        m = _matcher(self.llt, self.grammar, self.name)
        return m.consume_tokens(tokenizer.encode(data)) and m.is_accepting()
