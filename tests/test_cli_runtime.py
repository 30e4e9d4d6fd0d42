"""The runtime's doors (neuro run, neuro chat, neuro graph show, neuro init), the settings file, the chat
session's memory across turns and processes, and the pictures, with test-double experts in place of the
trained ones (RuntimeEngine.from_profile is patched, so nothing trains here)."""
from __future__ import annotations

import io
import json

import pytest
import yaml

from neuro_lib.cli import main
from neuro_lib.errors import NeuroError
from neuro_lib.runtime.chat import ChatSession, format_turn
from neuro_lib.runtime.config import RuntimeConfig, build_engine, load_config
from neuro_lib.runtime.engine import RuntimeEngine
from neuro_lib.runtime.graph import load_graph
from test_runtime_engine import COMPOUND, Echo, ScriptedJudge, experts
from test_runtime_ollama import server  # noqa: F401 - the fake Ollama server fixture


@pytest.fixture
def doubles(monkeypatch):
    """from_profile builds test doubles (and records the profile it was asked for)."""
    import neuro_lib.runtime.router_model as router_model
    from neuro_lib.runtime.router import KeywordRouter

    made = {}

    def fake(cls, profile="smoke", graph="default", memory=None, router=None, extra_experts=None, **kw):
        made["profile"] = profile
        made["router"] = router
        made["experts"] = {**experts(), **(extra_experts or {})}
        # the doubles' answers are checked by scripted verdicts on both paths (the verify node's and the judge's)
        return cls(graph, made["experts"], router, ScriptedJudge(), memory, verifier=ScriptedJudge(), **kw)

    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(fake))
    # the default router is the trained classifier: a keyword router stands in, so nothing trains here
    monkeypatch.setattr(router_model, "cached_router", lambda sizes, **kw: KeywordRouter())
    return made


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_the_answer_and_the_trace(doubles, capsys):
    code, out, err = _run(capsys, "run", "hello there", "--trace")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "general: hello there"
    assert lines[1].startswith("route: fast path, skills chat, complexity")
    assert [ln.split()[1] for ln in lines[3:7]] == ["route", "answer", "check", "done"]
    assert lines[7].endswith("ms, verified") and lines[8] == "step 2 general (chat): general: hello there"
    assert "verdict chat: passed by recomputed" in out and lines[-1] == "status: verified"
    code, out, _ = _run(capsys, "run", COMPOUND, "--format", "json", "--profile", "bench")
    r = json.loads(out)
    assert code == 0 and r["ok"] and r["route"]["path"] == "slow" and len(r["trace"]) == 7
    assert doubles["profile"].name == "bench"


def test_run_failures(doubles, capsys, tmp_path, monkeypatch):
    for argv, msg in [(["run", " "], "the query is empty"),
                      (["run", "x", "--json", "--schema", "nope_v9"], "unknown schema 'nope_v9'"),
                      (["run", "x", "--json"], "a JSON answer needs a schema id"),
                      (["run", "x", "--schema", "product_v1"], "--schema goes with --json"),
                      (["run", "x", "--graph", "nope"], "unknown graph 'nope'"),
                      (["run", "x", "--profile", "huge"], "unknown profile 'huge'"),
                      (["run", "x", "--ollama-url", "http://127.0.0.1:1"], "--ollama-url needs --ollama MODEL")]:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and err.startswith(f"neuro: error: {msg}") and err.count("\n") == 1, (argv, err)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "b", "entry": "a", "nodes": [{"id": "a", "kind": "wizard"}], "edges": []}))
    code, _, err = _run(capsys, "run", "x", "--graph", str(bad))
    assert code == 2 and err == "neuro: error: graph bad.yaml: node 'a' has unknown kind 'wizard'; kinds are " \
                                "router, expert, tool, judge, verify, memory, combine, decompose, expand, exit\n"
    # a run that fails (an expert crashes) prints its one sentence, and its trace when asked; exit 1
    crashing = experts(general=Echo("general", "chat", raises=ValueError("boom")))
    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(
        lambda cls, profile, graph, memory=None, router=None, extra_experts=None, **kw:
        cls(graph, crashing, router, None, memory, **kw)))
    code, out, err = _run(capsys, "run", "hello", "--trace")
    assert code == 1 and err == "neuro: error: expert 'general' failed on skill chat: ValueError: boom\n"
    assert " answer " in out and out.splitlines()[-2].endswith("failed")
    assert out.splitlines()[-1] == "status: failed (expert 'general' failed on skill chat: ValueError: boom)"



def test_run_refuses_bad_input_before_any_expert_is_built(monkeypatch, capsys, tmp_path):
    """Every refusal of `neuro run` comes before an expert is trained or loaded (those would take minutes)."""
    from neuro_lib.runtime import experts as experts_mod

    def never(*a, **k):
        pytest.fail("experts were built for input that is refused")

    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(never))
    monkeypatch.setattr(experts_mod, "build_experts", never)
    for argv, msg in [(["run", " \n "], "the query is empty"),
                      (["run", "x" * 100_001], "the query is 100001 characters long; the limit is 100000"),
                      (["run", "x", "--json"], "a JSON answer needs a schema id"),
                      (["run", "x", "--json", "--schema", "nope_v9"], "unknown schema 'nope_v9'"),
                      (["run", "x", "--schema", "product_v1"], "--schema goes with --json"),
                      (["run", "x", "--profile", "huge"], "unknown profile 'huge'"),
                      (["run", "x", "--graph", "nope"], "unknown graph 'nope'"),
                      (["run", "x", "--trace-out", str(tmp_path / "trace.txt")], "")]:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "" and err.startswith(f"neuro: error: {msg}") and err.count("\n") == 1, (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_run_draws_its_trace(doubles, capsys, tmp_path):
    page = tmp_path / "trace.html"
    code, _, _ = _run(capsys, "run", COMPOUND, "--trace-out", str(page))
    html = page.read_text()
    assert code == 0 and html.count("<html>") == 1 and html.count("Plotly.newPlot") == 2  # graph + timeline
    assert "trace of" in html
    code, _, err = _run(capsys, "run", COMPOUND, "--trace-out", str(page))
    assert code == 2 and err == f"neuro: error: {page} already exists\n"
    code, _, err = _run(capsys, "run", "x", "--trace-out", str(tmp_path / "none" / "t.html"))
    assert code == 2 and "does not exist" in err


def test_json_run(doubles, capsys):
    code, out, _ = _run(capsys, "run", "the blue kettle costs 12 dollars", "--json", "--schema", "product_v1")
    assert code == 0 and out.startswith("struct-mini:")


def test_graph_show_and_pictures(capsys, tmp_path):
    code, out, _ = _run(capsys, "graph", "show", "default")
    assert code == 0 and "graph default: entry route, exits done, step budget 24" in out
    assert "  gate -> solve   when not judge.passed" in out and "solve        expert   retries=2 skills=all" in out
    html, png = tmp_path / "g.html", tmp_path / "g.png"
    assert _run(capsys, "graph", "show", "default", "--out", str(html))[0] == 0
    assert html.read_text().count("<html>") == 1 and "plotly" in html.read_text()
    assert _run(capsys, "graph", "show", "chat", "--out", str(png))[0] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = _run(capsys, "graph", "show", "default", "--out", str(png))
    assert code == 2 and "already exists; add --force" in err and png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = _run(capsys, "graph", "show", "default", "--out", str(tmp_path / "g.svg"))
    assert code == 2 and "g.svg must end in .html or .png" in err
    code, _, err = _run(capsys, "graph", "show", str(tmp_path / "none.yaml"))
    assert code == 2 and "does not exist" in err


def test_init_writes_a_starter_and_never_overwrites(doubles, capsys, tmp_path):
    d = tmp_path / "proj"
    code, out, _ = _run(capsys, "init", str(d))
    assert code == 0 and sorted(p.name for p in d.iterdir()) == ["graph.yaml", "neuro.yaml"]
    assert load_graph(d / "graph.yaml").name == "default"
    cfg = load_config(d / "neuro.yaml")
    assert cfg.graph == str(d / "graph.yaml") and cfg.memory == str(d / "memory.sqlite")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    (d / "neuro.yaml").write_text((d / "neuro.yaml").read_text() + "# mine\n")
    before["neuro.yaml"] = (d / "neuro.yaml").read_bytes()
    code, _, err = _run(capsys, "init", str(d))
    assert code == 2 and "already exist; neuro init never overwrites files" in err
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    (tmp_path / "afile").write_text("x")
    assert "is a file, not a folder" in _run(capsys, "init", str(tmp_path / "afile"))[2]
    # the starter works: a slow-path run writes its result to the memory file next to the settings
    code, out, _ = _run(capsys, "run", "--config", str(d / "neuro.yaml"), COMPOUND)
    assert code == 0 and (d / "memory.sqlite").is_file()


def test_config_errors(tmp_path):
    p = tmp_path / "neuro.yaml"
    for text, msg in [("graph: [1]\n", "graph: [1] is not of type 'string'"), ("colour: red\n", "'colour' was unexpected"),
                      ("window: 0\n", "window: 0 is less than the minimum of 1"), ("a: [\n", "is not valid YAML"),
                      ("ollama: {url: x}\n", "'model' is a required property")]:
        p.write_text(text)
        with pytest.raises(NeuroError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            load_config(p)
    with pytest.raises(NeuroError, match="does not exist"):
        load_config(tmp_path / "none.yaml")


def test_chat_remembers_across_turns_and_processes(doubles, capsys, tmp_path):
    db = tmp_path / "mem.sqlite"
    code, out, _ = _run(capsys, "chat", "--memory", str(db), "--prompt", "what is 12 * 7?", "--json")
    first = json.loads(out)
    assert code == 0 and first["reply"] == "reason-mini: what is 12 * 7?" and not first["from_memory"]
    # a new session (as after a restart) on the same file: the verified past answer comes from memory
    code, out, _ = _run(capsys, "chat", "--memory", str(db), "--prompt", "What is 12*7", "--json")
    again = json.loads(out)
    assert again["from_memory"] and again["reply"] == first["reply"]
    assert len(doubles["experts"]["reason-mini"].seen) == 0  # this session's expert was never asked
    code, out, _ = _run(capsys, "chat", "--memory", str(db), "--prompt", "/remember the kettle is blue")
    assert out.startswith("remembered (memory 2)")
    code, out, _ = _run(capsys, "chat", "--memory", str(db), "--prompt", "/recall kettle colour")
    assert "[2] the kettle is blue" in out
    code, _, err = _run(capsys, "chat", "--prompt", " ")
    assert code == 2 and "--prompt is empty" in err


def test_chat_session_window_reaches_the_expert(doubles):
    engine = build_engine(RuntimeConfig(graph="chat", window=2))
    out = io.StringIO()
    n = ChatSession(engine).loop(io.StringIO("hello\ntell me a joke\n\nnot read\n"), out)
    assert n == 2 and len(out.getvalue().splitlines()) == 2
    general = doubles["experts"]["general"]
    assert general.seen[1].context[:2] == [{"role": "user", "text": "hello"},
                                          {"role": "assistant", "text": "general: hello"}]
    assert format_turn({"reply": "hi", "ok": True, "error": None, "path": "fast", "skills": ["chat"], "recalled": [],
                        "from_memory": True}) == "hi   [fast path, chat, answered from memory]"


def test_ollama_flag_adds_the_expert_for_its_skills(doubles):
    cfg = RuntimeConfig(graph="fast", ollama={"model": "tiny:1b", "url": "http://127.0.0.1:9", "timeout_s": 1})
    engine = build_engine(cfg)
    assert engine.experts["ollama"].config.model == "tiny:1b" and engine.expert_for("chat") == "ollama"
    r = engine.run("hello")  # nothing listens on port 9: a failed result, not an exception
    assert not r.ok and "is not reachable" in r.error


def test_run_with_an_ollama_model(doubles, capsys, server):  # noqa: F811 - the fixture
    code, out, _ = _run(capsys, "run", "tell me a joke", "--ollama", "tiny:1b", "--ollama-url", server)
    assert code == 0 and out == "echo: tell me a joke\n"  # the chat skill went to the Ollama expert


def test_trace_pictures_from_a_real_run():
    from neuro_lib.viz.graph import back_edges, graph_figure, layout, trace_figure, trace_timeline

    g = load_graph("default")
    r = RuntimeEngine(g, experts(), judge=ScriptedJudge(math=[False, True])).run(COMPOUND)
    assert back_edges(g) == {("gate", "solve")}
    pos = layout(g)
    assert pos["route"][0] == 0 and pos["done"][0] == max(x for x, _ in pos.values())
    assert pos["solve"][0] < pos["gate"][0] < pos["combine"][0]
    fig = trace_figure(g, r)
    assert len(fig.frames) == len(r.trace) == 9
    assert fig.frames[-1].data[-1].text[list(g.nodes).index("solve")] == "solve (3,5)"  # visited at steps 3 and 5
    assert fig.frames[0].data[-1].marker.color[list(g.nodes).index("gate")] == "#e0e0e0"  # not yet visited
    assert len(graph_figure(g).data) > len(g.nodes) // 2
    assert len(trace_timeline(r).data) == len(r.trace)
