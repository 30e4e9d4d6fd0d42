"""General: everything no other expert takes; the family base fine-tuned on the "chat" task (data/chat.py),
answering the user's turn (with the recent turns the memory gave, if any) up to its end marker.

    expert = General(model, ByteTokenizer())            # or build_experts()["general"]
    expert.answer(Query("hello")).text

Tests: tests/test_runtime_experts.py.
"""
from __future__ import annotations

from neuro_lib.data.sft import MARK, prompt_ids
from neuro_lib.infer.engine import generate
from neuro_lib.runtime.types import ExpertAnswer, Query


class General:
    name = "general"
    skills = ("chat",)
    tools = ()
    contract = {"input": "any text", "output": "a reply from the chat fine-tune of the byte-level base"}

    def __init__(self, model, tokenizer, max_new_tokens: int = 80):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens

    def answer(self, query: Query) -> ExpertAnswer:
        history = "".join(f"{t['text']}\n" for t in query.context[-4:])  # recent turns, if the memory gave any
        prompt = prompt_ids(f"{history}{query.text}".encode())
        out = generate(self.model, self.tokenizer, prompt, max_new_tokens=self.max_new_tokens, temperature=0.0,
                       eos_id=MARK)
        text = out.decode("utf-8", "replace").strip()
        return ExpertAnswer(text, ok=bool(text), value=text, model_calls=1, tokens=len(out) + 1,
                            error=None if text else "the model wrote nothing")
