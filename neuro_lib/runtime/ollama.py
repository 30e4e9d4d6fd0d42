"""An expert backed by a local Ollama server (TinyLLM's model backend, seeds/tinyllm.md), through its HTTP
API: POST /api/chat with `stream: false` (https://github.com/ollama/ollama/blob/main/docs/api.md).

    expert = OllamaExpert(OllamaConfig(model="qwen2.5:0.5b", skills=("chat",)))
    expert.answer(Query("hello"))                  # ExpertAnswer(text=..., tokens=eval_count, model_calls=1)
    RuntimeEngine("default", {**experts, "general": expert})

Optional: nothing in neuro_lib needs Ollama. The query's context (the conversation window, recalled
memories, the judge's feedback on a retry) becomes chat messages; a JSON query sends its schema as
Ollama's `format` (structured outputs) and parses the reply. A server that is down, slow, answers an
error (an unknown model) or sends something that is not JSON gives an ExpertAnswer with ok=False and a
one-sentence error, never an exception.

Tests: tests/test_runtime_ollama.py (a fake server on 127.0.0.1 that speaks the same API).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.types import ExpertAnswer, Query


@dataclass
class OllamaConfig:
    model: str                              # an Ollama model tag, e.g. "qwen2.5:0.5b"
    url: str = "http://127.0.0.1:11434"     # the server (`ollama serve` listens here by default)
    name: str = "ollama"                    # the expert's name in the engine
    skills: tuple[str, ...] = ("chat",)
    system: str = ""                        # a system prompt, if any
    temperature: float = 0.0                # greedy by default, so runs repeat
    num_predict: int = 256                  # the token budget of one answer
    seed: int = 0
    timeout_s: float = 60.0


class OllamaExpert:
    tools: tuple[str, ...] = ()

    def __init__(self, config: OllamaConfig):
        if not config.model:
            raise NeuroError("an Ollama expert needs a model name (e.g. qwen2.5:0.5b)")
        self.config = config
        self.name, self.skills = config.name, tuple(config.skills)
        self.contract = {"input": "text", "output": "text, or JSON under the query's schema"}
        self._client = httpx.Client(base_url=config.url.rstrip("/"), timeout=config.timeout_s,
                                    trust_env=False)  # a local server: no proxy from the environment

    def messages(self, query: Query) -> list[dict]:
        """The chat messages for a query: system prompt, context turns (others as system notes), the query."""
        out = [{"role": "system", "content": self.config.system}] if self.config.system else []
        for turn in query.context:
            role = turn.get("role", "user")
            if role in ("user", "assistant"):
                out.append({"role": role, "content": turn["text"]})
            else:  # recalled memories, the judge's feedback on a retry
                out.append({"role": "system", "content": f"{role}: {turn['text']}"})
        return out + [{"role": "user", "content": query.text}]

    def _post(self, path: str, body: dict) -> dict:
        """POST and decode; every way it can fail becomes one sentence (raised as NeuroError)."""
        c = self.config
        try:
            resp = self._client.post(path, json=body)
        except httpx.ConnectError:
            raise NeuroError(f"the Ollama server at {c.url} is not reachable (is `ollama serve` running?)") from None
        except httpx.TimeoutException:
            raise NeuroError(f"the Ollama server at {c.url} did not answer within {c.timeout_s:g} s") from None
        except httpx.HTTPError as e:
            raise NeuroError(f"the request to the Ollama server at {c.url} failed: {type(e).__name__}: {e}") from None
        try:
            data = resp.json()
        except ValueError:
            raise NeuroError(f"the Ollama server at {c.url} answered HTTP {resp.status_code} with a body that is "
                             f"not JSON") from None
        if resp.status_code >= 400 or "error" in data:
            raise NeuroError(f"the Ollama server at {c.url} answered HTTP {resp.status_code}: "
                             f"{data.get('error', 'no message')}")
        return data

    def answer(self, query: Query) -> ExpertAnswer:
        c = self.config
        body = {"model": c.model, "messages": self.messages(query), "stream": False,
                "options": {"temperature": c.temperature, "num_predict": c.num_predict, "seed": c.seed}}
        try:
            if query.wants_json:
                from neuro_lib.structured.schemas import load_schema

                body["format"] = load_schema(query.schema_id) if query.schema_id else "json"
            data = self._post("/api/chat", body)
            text = data["message"]["content"]
        except NeuroError as e:
            return ExpertAnswer("", ok=False, error=str(e), meta={"model": c.model})
        except (KeyError, TypeError):
            return ExpertAnswer("", ok=False, error=f"the Ollama server at {c.url} sent a reply without "
                                                    f"message.content", meta={"model": c.model})
        meta = {"model": c.model, **{k: data[k] for k in ("total_duration", "prompt_eval_count", "eval_duration")
                                     if k in data}}
        ans = ExpertAnswer(text, model_calls=1, tokens=int(data.get("eval_count", 0)), meta=meta)
        if query.wants_json:
            try:
                ans.value = json.loads(text)
            except json.JSONDecodeError as e:
                ans.ok, ans.error = False, f"the model's reply is not valid JSON ({e.msg} at character {e.pos})"
        return ans

    def models(self) -> list[str]:
        """The model tags the server has (GET /api/tags); NeuroError when it cannot be asked."""
        try:
            resp = self._client.get("/api/tags")
            return [m["name"] for m in resp.json().get("models", [])]
        except httpx.ConnectError:
            raise NeuroError(f"the Ollama server at {self.config.url} is not reachable") from None
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            raise NeuroError(f"the Ollama server at {self.config.url} gave no model list: {e}") from None

    def close(self) -> None:
        self._client.close()
