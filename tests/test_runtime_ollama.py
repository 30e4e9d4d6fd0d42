"""The Ollama expert (neuro_lib/runtime/ollama.py) against a fake Ollama server started here on 127.0.0.1
(http.server in a thread) that speaks the same /api/chat and /api/tags API; and a server that is down."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.ollama import OllamaConfig, OllamaExpert
from neuro_lib.runtime.types import Expert, Query
from neuro_lib.structured.schemas import load_schema


class FakeOllama(BaseHTTPRequestHandler):
    """/api/chat answers "echo: <last user message>" (or a JSON document when `format` is set);
    model "missing" is a 404 like Ollama's; model "garbled" sends a body that is not JSON."""
    requests: list = []

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _send(self, status, body: bytes, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/api/tags":
            self._send(200, json.dumps({"models": [{"name": "tiny:1b"}, {"name": "qwen2.5:0.5b"}]}).encode())
        else:
            self._send(404, b"404 page not found", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOllama.requests.append((self.path, body))
        if self.path != "/api/chat":
            return self._send(404, b"404 page not found", "text/plain")
        if body["model"] == "missing":
            return self._send(404, json.dumps({"error": "model \"missing\" not found, try pulling it first"}).encode())
        if body["model"] == "garbled":
            return self._send(200, b"<html>oops</html>", "text/html")
        user = body["messages"][-1]["content"]
        content = json.dumps({"name": user, "price": 12}) if "format" in body else f"echo: {user}"
        if body["model"] == "badjson":
            content = "{not json"
        self._send(200, json.dumps({"model": body["model"], "message": {"role": "assistant", "content": content},
                                    "done": True, "total_duration": 1234, "prompt_eval_count": 7,
                                    "eval_count": 4, "eval_duration": 99}).encode())


@pytest.fixture
def server():
    FakeOllama.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_answer_through_the_chat_api(server):
    ex = OllamaExpert(OllamaConfig(model="tiny:1b", url=server, system="be brief", temperature=0.0, seed=3))
    assert isinstance(ex, Expert) and ex.skills == ("chat",)
    q = Query("hello there", context=[{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hey"},
                                      {"role": "memory", "text": "the user likes tea"}])
    ans = ex.answer(q)
    assert ans.ok and ans.text == "echo: hello there" and (ans.tokens, ans.model_calls) == (4, 1)
    assert ans.meta == {"model": "tiny:1b", "total_duration": 1234, "prompt_eval_count": 7, "eval_duration": 99}
    path, body = FakeOllama.requests[-1]
    assert path == "/api/chat" and body["stream"] is False and body["model"] == "tiny:1b"
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hey"},
                                {"role": "system", "content": "memory: the user likes tea"},
                                {"role": "user", "content": "hello there"}]
    assert body["options"] == {"temperature": 0.0, "num_predict": 256, "seed": 3}
    assert ex.models() == ["tiny:1b", "qwen2.5:0.5b"]


def test_json_answers_send_the_schema_and_parse_the_reply(server):
    ex = OllamaExpert(OllamaConfig(model="tiny:1b", url=server))
    ans = ex.answer(Query("kettle", wants_json=True, schema_id="product_v1"))
    assert ans.ok and ans.value == {"name": "kettle", "price": 12}
    assert FakeOllama.requests[-1][1]["format"] == load_schema("product_v1")  # Ollama's structured outputs
    bad = OllamaExpert(OllamaConfig(model="badjson", url=server)).answer(Query("kettle", wants_json=True))
    assert not bad.ok and bad.error.startswith("the model's reply is not valid JSON")
    assert FakeOllama.requests[-1][1]["format"] == "json"


def test_server_errors_are_one_sentence_answers(server):
    ans = OllamaExpert(OllamaConfig(model="missing", url=server)).answer(Query("hi"))
    assert not ans.ok and ans.error == (f"the Ollama server at {server} answered HTTP 404: model \"missing\" not "
                                        f"found, try pulling it first")
    ans = OllamaExpert(OllamaConfig(model="garbled", url=server)).answer(Query("hi"))
    assert not ans.ok and "with a body that is not JSON" in ans.error
    with pytest.raises(NeuroError, match="needs a model name"):
        OllamaExpert(OllamaConfig(model=""))


def test_server_down_gives_a_clear_failed_result():
    with socket.socket() as s:  # a port nobody listens on once the socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    ex = OllamaExpert(OllamaConfig(model="tiny:1b", url=url, timeout_s=2))
    ans = ex.answer(Query("hi"))
    assert not ans.ok and ans.error == f"the Ollama server at {url} is not reachable (is `ollama serve` running?)"
    with pytest.raises(NeuroError, match="not reachable"):
        ex.models()
    r = RuntimeEngine("fast", {"general": ex}).run("hello")
    assert not r.ok and r.error == ans.error and [s.node for s in r.trace] == ["route", "answer", "check", "done"]
    assert r.trace[1].output[0]["ok"] is False  # the node ran; its answer failed


def test_engine_runs_on_the_ollama_expert(server):
    ex = OllamaExpert(OllamaConfig(model="tiny:1b", url=server, name="general"))
    r = RuntimeEngine("fast", {"general": ex}).run("tell me a joke")
    # a chat reply with no judge attached is shown, but nothing verified it
    assert r.status == "unverified" and r.answer == "echo: tell me a joke" and r.trace[1].tokens == 4
