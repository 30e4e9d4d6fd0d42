"""A conversation through the runtime, with memory across turns (`neuro chat`).

    session = ChatSession(build_engine(RuntimeConfig(graph="chat", memory="memory.sqlite")))
    session.turn("what is 12 * 7?")          # {"reply", "ok", "path", "skills", "recalled", "from_memory", ...}
    session.turn("/remember the kettle is blue")
    session.turn("/recall kettle")            # the most relevant long-term memories
    session.loop(sys.stdin, sys.stdout)       # a line per turn until EOF or an empty line

Every turn is an engine run: the conversation window (short-term memory) goes into the query's
context, the graph's memory nodes recall facts and past results from SQLite and write the turn's result
back, so a later session with the same memory file remembers. `RNKChatExpert` lets an RNK chat
checkpoint (infer/chat.py) be the engine's expert for every skill.

Tests: tests/test_cli_runtime.py.
"""
from __future__ import annotations

import json
import sys

from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.types import SKILLS, ExpertAnswer, Query, ToolCall


class RNKChatExpert:
    """An RNK chat checkpoint (greedy, its calculator rule on) as an expert that serves every skill."""

    tools = ("calc",)
    contract = {"input": "one line of text", "output": "text"}

    def __init__(self, model, name: str = "general", max_new_bytes: int = 96):
        self.model, self.name, self.skills, self.max_new_bytes = model, name, SKILLS, max_new_bytes

    def answer(self, query: Query) -> ExpertAnswer:
        from neuro_lib.infer.chat import chat_reply

        r = chat_reply(self.model, " ".join(query.text.split()), self.max_new_bytes)  # the RNK reads one line
        calls = [ToolCall("calc", {"expression": query.text}, True, r["calculator"])] if r["calculator"] else []
        return ExpertAnswer(r["reply"], tool_calls=calls, model_calls=1, tokens=len(r["reply"].encode()),
                            meta={k: r[k] for k in ("intent", "answerable", "calculator", "stopped_by")})


class ChatSession:
    def __init__(self, engine: RuntimeEngine):
        if engine.memory is None:
            raise ValueError("a chat session needs an engine with memory")
        self.engine = engine

    def turn(self, line: str) -> dict:
        """One user line -> what to show. `/remember FACT` and `/recall TEXT` talk to long-term memory."""
        mem = self.engine.memory
        if line.startswith("/remember "):
            row = mem.long.add_fact(line[len("/remember "):])
            return {"reply": f"remembered (memory {row})", "ok": True}
        if line.startswith("/recall "):
            found = mem.long.search(line[len("/recall "):], k=5)
            return {"reply": "\n".join(f"[{m['id']}] {m['text']}" for m in found) or "nothing relevant remembered",
                    "ok": True, "recalled": found}
        r = self.engine.run(line)
        recall = next((s.output for s in r.trace if s.kind == "memory" and isinstance(s.output, dict)
                       and "recalled" in s.output), {"recalled": [], "hit": None})
        meta = next((s.output[0].get("meta", {}) for s in reversed(r.trace) if s.kind == "expert" and s.output), {})
        return {"reply": r.answer, "ok": r.ok, "status": r.status, "error": r.error, "path": r.route.path if r.route else None,
                "skills": r.route.skills if r.route else [], "recalled": [m["text"] for m in recall["recalled"]],
                "from_memory": recall["hit"] is not None, **meta}

    def loop(self, stdin=None, stdout=None, as_json: bool = False) -> int:
        """Read turns line by line until EOF or an empty line; print each reply. Returns the turns answered."""
        stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
        turns = 0
        for line in stdin:
            line = line.strip()
            if not line:
                break
            t = self.turn(line)
            print(json.dumps(t) if as_json else format_turn(t), file=stdout, flush=True)
            turns += 1
        return turns


def format_turn(t: dict) -> str:
    """A reply as `neuro chat` prints it: the text, then what memory and routing did, in brackets."""
    if "path" not in t:  # a memory command
        return t["reply"]
    notes = [f"{t['path']} path", "+".join(t["skills"])]
    if t.get("from_memory"):
        notes.append("answered from memory")
    elif t["recalled"]:
        notes.append(f"{len(t['recalled'])} memories recalled")
    if "intent" in t:
        notes.append(f"intent={t['intent']} answerable={t['answerable']}")
    status = t.get("status", "verified" if t["ok"] else "failed")
    if status == "verified":
        reply = t["reply"]
    elif status == "failed":
        reply = f"{t['reply']} (failed: {t['error']})".strip()
    elif status == "abstained":  # declined: the reason, not the rejected text
        reply = f"(abstained: {t['error']})"
    else:  # unverified: shown, labelled, with the reason
        notes.append(f"{status}: {t['error']}")
        reply = f"{status}: {t['reply']}"
    return f"{reply}   [{', '.join(notes)}]"
