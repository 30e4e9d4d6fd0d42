"""Chat with an RNK checkpoint: one reply per user turn, greedy, through the model's step().

    reply = chat_reply(model, "What is 12 * 7?")      # {"reply", "intent", "answerable", "calculator", ...}
    neuro chat runs/rnk --prompt "Hello!"              # through the runtime (runtime/chat.py), with memory

The prompt is laid out exactly as in training (data/chat.py): "User: ...\\n" padded to a
chunk boundary, then "Model: ". Decoding stops at the reply's newline (or a PAD byte), at
the end of the chunk after the stop head fires, or after `max_new_bytes`.

With the NS refiner on (RNKConfig.use_refiner), its rule R2 acts here: when the intent
head says "math", the calculator tool (tools/calculator.py, through `solve_arithmetic`)
evaluates the first arithmetic expression in the prompt, and once the reply reaches "= " its digits are emitted instead of the
network's guess, and no further digit may follow them. Rule R1 (unanswerable => refusal)
lives inside the model's refiner.
"""
from __future__ import annotations

import re

import torch

from neuro_lib.data.chat import INTENTS, PAD, prompt_bytes
from neuro_lib.errors import NeuroError
from neuro_lib.models.rnk import RNK
from neuro_lib.tools.calculator import Calculator, format_number

DIGITS = list(b"0123456789")
# A candidate expression: signs and parentheses, a digit, then digits, operators, points, spaces.
_EXPRESSION = re.compile(r"[-+(]*\d[\d\s.+\-*/%()]*")
_CALCULATOR = Calculator()


def solve_arithmetic(text: str) -> str | None:
    """Rule R2's calculator: the first span of text with an operator between numbers that the calculator
    tool evaluates, as the digits it writes; None if there is none."""
    for m in _EXPRESSION.finditer(text):
        expr = m.group().strip().rstrip(".").strip()  # a sentence's full stop is not a decimal point
        if not re.search(r"\d\s*[-+*/%]", expr):
            continue
        result = _CALCULATOR.call({"expression": expr})
        if result.ok:
            return format_number(result.value)
    return None


@torch.no_grad()
def chat_reply(model: RNK, user: str, max_new_bytes: int = 96) -> dict:
    """Greedy reply to one user turn -> {"reply", "intent", "answerable", "calculator", "stopped_by"}."""
    if not isinstance(model, RNK):
        raise NeuroError(f"chat needs an RNK model, got {type(model).__name__}")
    if not user.strip() or "\n" in user:
        raise NeuroError("a chat turn must be one non-empty line")
    model.eval()
    P = model.config.chunk_len
    prompt = prompt_bytes(user, P)
    state = model.init_state(1)
    logits, state = model.step(torch.tensor([list(prompt)]), state)
    heads = state.heads  # the last prompt chunk's heads ("Model: " is shorter than a chunk)
    intent = INTENTS[int(heads["intent"][0].argmax())]
    answerable = float(torch.sigmoid(heads["answerable"][0]))
    answer = solve_arithmetic(user) if model.config.use_refiner and intent == "math" else None
    reply, queue, used, last_chunk, stopped_by = bytearray(), [], False, None, "max_new_bytes"
    for _ in range(max_new_bytes):
        if answer is not None and not used and reply.endswith(b"= "):
            queue, used = list(answer.encode()), True
        if queue:
            b = queue.pop(0)
        else:
            nxt = logits[0, -1]
            if used and reply[-1:].isdigit():  # R2: the calculator's number is complete, no digit may follow
                nxt = nxt.clone()
                nxt[DIGITS] = float("-inf")
            b = int(nxt.argmax())
        if b in (PAD, ord("\n")):
            stopped_by = "newline" if b != PAD else "pad"
            break
        reply.append(b)
        logits, state = model.step(torch.tensor([[b]]), state)
        if state.pos % P == 0:  # a chunk completed: the stop head plans whether the next one is the last
            chunk = state.pos // P
            if last_chunk is not None and chunk > last_chunk:
                stopped_by = "stop_head"
                break
            if last_chunk is None and float(torch.sigmoid(state.heads["stop"][0])) > 0.5:
                last_chunk = chunk + 1
    return {"reply": reply.decode("utf-8", errors="replace"), "intent": intent, "answerable": round(answerable, 3),
            "calculator": answer, "stopped_by": stopped_by}

