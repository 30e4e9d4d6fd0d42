"""The decoding engine: one way to generate text from every neuro_lib model.

    from neuro_lib.infer.engine import Engine, Sampling
    eng = Engine(model, tokenizer, cache="paged")                  # cache: one of model.cache_kinds
    texts = eng.generate(["The ", "def f(x):"], Sampling(max_new_tokens=50, temperature=0.8, top_k=40,
                                                          top_p=0.95, repetition_penalty=1.1, stop=(b"\\n\\n",)))
    for tok in eng.stream(["The "], Sampling(temperature=0)):     # Token(row, id, logprob, forced)
        ...
    generate(model, tokenizer, "The ", max_new_tokens=50)          # the one-call form -> bytes
    generate(model, tokenizer, [257], src=source_ids, eos_id=258)  # ids as the prompt; an encoder-decoder source

Anything with `init_state`/`step` decodes here (DESIGN.md): greedy (temperature 0) or sampled
(temperature, top-k, top-p, repetition penalty; infer/sampling.py), stop sequences (the text is cut
before the first one), a token budget, batches of prompts of different lengths (prefilled row by
row into one state, then decoded together; a state with `ragged = False`, RNK's, decodes a
batch one prompt at a time), and a streaming iterator of tokens. A model with a bounded context (`max_len`) is
re-prefilled with the most recent half window when a row fills it.

The logits-processor hook (how structured decoding plugs in). A processor is a callable
    processor(ids_so_far: list[int], logits: Tensor (V,)) -> Tensor (V,)
called for each row before sampling, with the ids that row has generated so far (not the prompt)
and the model's raw next-token logits (float32, before temperature and filtering); it returns
logits to sample from (mask with -inf to forbid tokens). A processor MAY also have a method
    forced(ids_so_far: list[int]) -> list[int]
returning tokens a grammar forces next (an empty list when there is a choice): the engine then
appends those tokens without sampling and feeds them to the model in one `step`. Forced tokens
count toward `max_new_tokens` and carry logprob NaN (no model choice was made).

Model calls are counted in `Engine.calls` as sequence-steps: one `step` over B rows counts B
(best-of-N and MCTS are compared at equal calls on this count).

`compile=True` wraps `model.step` in `torch.compile(dynamic=True)`; `neuro bench speculative
--compile` measures whether that pays on a CPU (docs/LOG.md).

Tests: tests/test_engine.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from neuro_lib.infer.sampling import draw, next_token_probs, repetition_penalty
from neuro_lib.tokenizers.base import as_bytes


@dataclass
class Sampling:
    max_new_tokens: int = 200
    temperature: float = 1.0         # 0 = greedy
    top_k: int = 0                   # 0 = off
    top_p: float = 1.0               # 1 = off
    repetition_penalty: float = 1.0  # 1 = off (CTRL)
    stop: tuple = ()                 # byte strings; the text is cut before the first
    seed: int | None = None          # seeds a CPU generator: the same draws on every device
    eos_id: int | None = None        # a row ends at this token (not returned), e.g. a grammar's end token

    def __post_init__(self):
        if (self.max_new_tokens < 0 or self.top_k < 0 or not 0 < self.top_p <= 1
                or not 0 < self.repetition_penalty < math.inf):  # written so that nan fails too
            raise ValueError(f"invalid sampling parameters: {self}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"the sampling seed must be in [0, 2**63), got {self.seed}")
        self.stop = tuple(as_bytes(s) for s in self.stop)

    def generator(self) -> torch.Generator | None:
        return torch.Generator().manual_seed(self.seed) if self.seed is not None else None


@dataclass
class Token:
    row: int          # which prompt
    id: int
    logprob: float    # log p(id) under the model's raw distribution; NaN for a forced token
    forced: bool = False


def is_ids(prompt) -> bool:
    """A prompt given as token ids: a non-empty list of ints."""
    return isinstance(prompt, list) and len(prompt) > 0 and all(isinstance(t, int) for t in prompt)


def is_single(prompts) -> bool:
    """One prompt (text, bytes or ids) rather than a list of prompts."""
    return isinstance(prompts, (str, bytes)) or is_ids(prompts)


def cut_at_stop(text: bytes, stop: tuple) -> tuple[bytes, bool]:
    """text before the first stop sequence, and whether one occurred."""
    hits = [text.find(s) for s in stop if s in text]
    return (text[: min(hits)], True) if hits else (text, False)


def stream_text(tokens, tokenizer, stop=()) -> Iterator[bytes]:
    """The text of a token stream as it comes, cut before the first stop sequence: yields byte chunks,
    holding back a tail that may be the start of a stop sequence until the next tokens show it is not.
    The chunks joined equal `cut_at_stop(tokenizer.decode(all ids), stop)[0]`."""
    stop = tuple(as_bytes(s) for s in stop)
    hold = max((len(s) for s in stop), default=1) - 1  # the longest proper prefix of a stop sequence
    ids, sent = [], 0
    text = b""
    for t in tokens:
        ids.append(t.id)
        text, hit = cut_at_stop(tokenizer.decode(ids), stop)
        upto = len(text) if hit else max(sent, len(text) - hold)
        if upto > sent:
            yield text[sent:upto]
            sent = upto
        if hit:
            return
    if len(text) > sent:
        yield text[sent:]


class Engine:
    def __init__(self, model, tokenizer, cache: str | None = None, compile: bool = False, block_size: int = 16,
                 src: list[int] | None = None):
        """`src`: source token ids for an encoder-decoder model, encoded once into every row's state."""
        if cache is not None and cache not in model.cache_kinds:
            raise ValueError(f"{type(model).__name__} has no {cache!r} cache (it takes {model.cache_kinds or 'none'})")
        self.model, self.tokenizer, self.cache, self.block_size = model.eval(), tokenizer, cache, block_size
        self.step_fn = torch.compile(model.step, dynamic=True) if compile else model.step
        self.device = next(model.parameters()).device
        self.src = None if src is None else torch.tensor([src], device=self.device)  # (1, S)
        self.calls = 0

    # -- pieces -----------------------------------------------------------------------------
    def encode(self, prompt) -> list[int]:
        """A prompt as text, or already as token ids (a list of ints)."""
        ids = list(prompt) if is_ids(prompt) else self.tokenizer.encode(as_bytes(prompt))
        ids = ids or [0]  # an empty prompt starts from token 0
        max_len = self.model.max_len
        return ids[-(max_len - 1):] if max_len else ids

    def init_state(self, batch_size: int):
        kwargs = {} if self.cache is None else {"cache": self.cache, "block_size": self.block_size}
        if self.src is not None:
            kwargs["src"] = self.src.expand(batch_size, -1)
        return self.model.init_state(batch_size, **kwargs)

    @torch.no_grad()
    def step(self, ids: list[list[int]], state) -> torch.Tensor:
        """Feed equal-length rows of ids -> logits (B, t, V) in float32."""
        self.calls += len(ids)
        logits, _ = self.step_fn(torch.tensor(ids, device=self.device), state)
        return logits.float()

    def prefill(self, contexts: list[list[int]]):
        """A fresh state holding every context but its last token fed -> (state, next-token logits (B, V))."""
        state = self.init_state(len(contexts))
        if len({len(c) for c in contexts}) == 1:
            return state, self.step(contexts, state)[:, -1]
        rows = [self.step([c], state.row(b))[0, -1] for b, c in enumerate(contexts)]  # ragged: row by row
        return state, torch.stack(rows)

    def _feed_row(self, state, b: int, ids: list[int], context: list[int]) -> torch.Tensor:
        """Feed one row's new ids (re-prefilling the recent half window when the context is full)."""
        row, max_len = state.row(b), self.model.max_len
        if max_len and row.lengths[0] + len(ids) > max_len:
            row.rollback(0)
            ids = context[-(max_len // 2):]
        return self.step([ids], row)[0, -1]

    # -- decoding ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, state, logits: torch.Tensor, contexts: list[list[int]], params: Sampling,
               processor: Callable | None = None) -> Iterator[Token]:
        """Continue B rows from a state and their next-token logits (B, V); yields tokens as they come.
        `contexts` (prompt ids per row) grow in place with the generated ids."""
        gen, B = params.generator(), len(contexts)
        out: list[list[int]] = [[] for _ in range(B)]
        active = [params.max_new_tokens > 0] * B
        forced_fn = getattr(processor, "forced", None)
        # The stop check reads only what is new: a stop sequence first found at this token ends in its bytes
        # and starts at most len(stop) - 1 bytes earlier, so each row keeps that many trailing bytes and
        # decodes just the new tokens (every tokenizer decodes token by token: decode(a + b) is
        # decode(a) + decode(b)). Decoding the whole row at every token was quadratic in the output length.
        keep = max((len(s) for s in params.stop), default=1) - 1
        tails = [b""] * B
        while any(active):
            feeds: dict[int, list[int]] = {}
            for b in (b for b in range(B) if active[b]):
                forced = list(forced_fn(out[b]))[: params.max_new_tokens - len(out[b])] if forced_fn else []
                if forced:
                    new = [Token(b, t, float("nan"), True) for t in forced]
                else:
                    raw = logits[b]
                    x = processor(out[b], raw) if processor is not None else raw
                    x = repetition_penalty(x, contexts[b], params.repetition_penalty)
                    t = int(draw(next_token_probs(x[None], params.temperature, params.top_k, params.top_p), gen)[0]
                            if params.temperature > 0 else x.argmax())
                    new = [Token(b, t, float(torch.log_softmax(raw, -1)[t]))]
                ids = [tok.id for tok in new]
                ended = params.eos_id is not None and params.eos_id in ids
                if ended:
                    new = new[: ids.index(params.eos_id)]
                for tok in new:
                    yield tok
                out[b] += [tok.id for tok in new]
                contexts[b] += [tok.id for tok in new]
                stopped = ended
                if params.stop and not stopped:
                    window = tails[b] + self.tokenizer.decode([tok.id for tok in new])
                    stopped = any(stop in window for stop in params.stop)
                    tails[b] = window[len(window) - keep:] if keep else b""
                if stopped or len(out[b]) >= params.max_new_tokens:
                    active[b] = False
                else:
                    feeds[b] = [tok.id for tok in new]
            max_len = self.model.max_len
            batched = (len(feeds) == B and all(len(f) == 1 for f in feeds.values())
                       and not (max_len and max(state.lengths) + 1 > max_len))
            if batched:
                logits = self.step([feeds[b] for b in range(B)], state)[:, -1]
            elif feeds:
                logits = logits.clone()
                for b, ids in feeds.items():
                    logits[b] = self._feed_row(state, b, ids, contexts[b])

    def stream(self, prompts, params: Sampling | None = None, processor: Callable | None = None) -> Iterator[Token]:
        """Tokens for a prompt or a list of prompts (any lengths) as they are generated."""
        params = params or Sampling()
        prompts = [prompts] if is_single(prompts) else list(prompts)
        contexts = [self.encode(p) for p in prompts]
        if len(contexts) > 1 and not self.init_state(1).ragged:
            for b, c in enumerate(contexts):  # a state without row views decodes one prompt at a time
                for tok in self.decode(*self.prefill([c]), [c], params, processor):
                    yield Token(b, tok.id, tok.logprob, tok.forced)
            return
        yield from self.decode(*self.prefill(contexts), contexts, params, processor)

    def generate(self, prompts, params: Sampling | None = None, processor: Callable | None = None):
        """New bytes per prompt (cut before the first stop sequence): bytes for one prompt, else a list."""
        params = params or Sampling()
        single = is_single(prompts)
        n = 1 if single else len(prompts)
        out: list[list[int]] = [[] for _ in range(n)]
        for tok in self.stream(prompts, params, processor):
            out[tok.row].append(tok.id)
        texts = [cut_at_stop(self.tokenizer.decode(ids), params.stop)[0] for ids in out]
        return texts[0] if single else texts


class Cursor:
    """One sequence's state that follows any token list, rolling back to the common prefix first.

    `logits_after(seq, start)` -> (len(seq) - start, V): row i is the next-token logits after
    seq[:start + i + 1]. What is already fed and shared with `seq` is kept (a KV cache truncates,
    a recurrent state returns to its checkpoint and the rest is re-fed in the same step), so
    speculative decoding, drafters and MCTS move along and back a sequence in one `step` each.
    """

    def __init__(self, engine: Engine):
        self.engine, self.state, self.fed = engine, engine.init_state(1), []

    def logits_after(self, seq: list[int], start: int) -> torch.Tensor:
        if not 0 <= start < len(seq):
            raise ValueError(f"start {start} must index the sequence of {len(seq)} tokens")
        common = next((i for i, (a, b) in enumerate(zip(self.fed, seq)) if a != b), min(len(self.fed), len(seq)))
        keep = min(common, start)
        if keep < len(self.fed):
            keep = self.state.rollback(keep)[0]
        self.state.checkpoint()
        logits = self.engine.step([seq[keep:]], self.state)[0]
        self.fed = list(seq)
        return logits[start - keep:]


def generate(model, tokenizer, prompt, max_new_tokens: int = 200, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, stop=(), seed: int | None = None, repetition_penalty: float = 1.0,
             processor: Callable | None = None, cache: str | None = None, eos_id: int | None = None,
             src: list[int] | None = None):
    """Continue `prompt` (text or token ids, or a list of prompts); returns only the new bytes.
    `eos_id` ends a row (not returned); `src` is an encoder-decoder model's source ids."""
    params = Sampling(max_new_tokens, temperature, top_k, top_p, repetition_penalty, tuple(stop or ()), seed, eos_id)
    return Engine(model, tokenizer, cache, src=src).generate(prompt, params, processor)
