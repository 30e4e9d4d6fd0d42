"""Hostile inputs that used to hang or exhaust memory: each door has a bound and refuses in one sentence.

Every test that could hang runs its work in a subprocess with a timeout (no pytest-timeout here), or
against a server of its own on 127.0.0.1 with a bounded wait.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.paths import REPO_ROOT

CLI = [sys.executable, "-m", "neuro_lib.cli"]


def _neuro(*args, timeout=60, **kw):
    """`neuro ARGS` in a subprocess (so a hang is a failed test, not a stuck run)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)}, **kw)


def _one_sentence(err: str) -> None:
    assert err.startswith("neuro: error: ") and err.count("\n") == 1 and "Traceback" not in err, err


# -- the keyword router ------------------------------------------------------------------------------------
ROUTE_SNIPPET = """
import sys, time
from neuro_lib.runtime.router import KeywordRouter
from neuro_lib.runtime.types import Query
r = KeywordRouter()
for text in (sys.argv[1] * int(sys.argv[2]),):
    r.route(Query(text))
print("routed")
"""


@pytest.mark.parametrize("unit", ["a", "f(", "what does ", "f(x" + " " * 50])
def test_keyword_router_routes_a_megabyte_in_bounded_time(unit):
    """The old `[a-z_]+\\(.*\\)` took about a minute on 120 KB; every rule is now linear."""
    n = 1_000_000 // len(unit)
    p = subprocess.run([sys.executable, "-c", ROUTE_SNIPPET, unit, str(n)], capture_output=True, text=True,
                       timeout=60, cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and p.stdout.strip() == "routed", p.stderr


def test_rewritten_rules_mean_what_the_old_ones_meant():
    """The linear rules accept exactly the texts the quadratic ones accepted (random short texts)."""
    import random
    import re

    from neuro_lib.runtime.router import KEYWORD_RULES

    old = [r"[a-z_]+\(.*\)", r"\b(which (exception|function|class|method)|what does .* (do|return|raise))\b"]
    new = [KEYWORD_RULES["code"][2], KEYWORD_RULES["retrieval"][1]]
    pieces = ["a", "F", "(", ")", "\n", " ", "what does ", " do", " Return", "x_", "which class ", "1"]
    rng = random.Random(0)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for o, n in zip(old, new):
            assert bool(re.search(o, text, re.I)) == bool(re.search(n, text, re.I)), (text, o)


def test_engine_refuses_an_overlong_query_in_one_sentence():
    from neuro_lib.runtime.engine import MAX_QUERY_CHARS, RuntimeEngine
    from neuro_lib.runtime.graph import parse_graph

    g = parse_graph({"name": "t", "entry": "c", "nodes": [{"id": "c", "kind": "tool", "tool": "calc",
                                                          "args": {"expression": "1+1"}}, {"id": "x", "kind": "exit"}],
                     "edges": [{"from": "c", "to": "x"}]})
    from neuro_lib.runtime.memory import Memory

    engine = RuntimeEngine(g, memory=Memory(None, 4))
    r = engine.run("x" * (MAX_QUERY_CHARS + 1))
    assert not r.ok and r.error == f"the query is {MAX_QUERY_CHARS + 1} characters long; the limit is {MAX_QUERY_CHARS}"
    assert r.trace == [] and engine.memory.short.turns() == []  # refused input is not remembered


# -- the runtime's wall-clock budget -----------------------------------------------------------------------
def _ring(step_budget=10_000, wall_s=None):
    from neuro_lib.runtime.graph import parse_graph

    doc = {"name": "ring", "entry": "a", "step_budget": step_budget,
           "nodes": [{"id": "a", "kind": "tool", "tool": "python", "retries": 100,
                      "args": {"code": "import time; time.sleep(0.2)"}},
                     {"id": "b", "kind": "tool", "tool": "python", "retries": 100,
                      "args": {"code": "import time; time.sleep(0.2)"}},
                     {"id": "x", "kind": "exit"}],
           "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "x"}]}
    if wall_s is not None:
        doc["wall_s"] = wall_s
    return parse_graph(doc)


def test_a_ring_of_sandboxed_tool_nodes_is_cut_at_the_wall_clock_budget():
    """200 legal steps of 0.2 s each would take 40 s or more; the run ends failed at its budget, with a trace."""
    from neuro_lib.runtime.engine import RuntimeEngine

    engine = RuntimeEngine(_ring(), wall_s=1.5)
    t0 = time.monotonic()
    r = engine.run("go")
    took = time.monotonic() - t0
    assert not r.ok and r.error.startswith("the run was cut at its wall-clock budget of 1.5 s after ")
    assert 2 <= len(r.trace) < 100 and "cut at wall-clock budget" in r.trace[-1].note
    assert took < 1.5 + 10  # the step in progress gets no more than the time left (and sandbox start-up)


def test_wall_budget_comes_from_the_graph_then_the_engine_default():
    from neuro_lib.runtime.engine import DEFAULT_WALL_S, RuntimeEngine

    assert RuntimeEngine(_ring(wall_s=7)).wall_s == 7
    assert RuntimeEngine(_ring()).wall_s == DEFAULT_WALL_S
    assert RuntimeEngine(_ring(wall_s=7), wall_s=2).wall_s == 2


def test_settings_file_takes_wall_s(tmp_path):
    from neuro_lib.runtime.config import load_config

    (tmp_path / "neuro.yaml").write_text("wall_s: 12.5\n")
    assert load_config(tmp_path / "neuro.yaml").wall_s == 12.5
    (tmp_path / "neuro.yaml").write_text("wall_s: 0\n")
    with pytest.raises(NeuroError, match="wall_s: 0 is less than or equal to the minimum of 0"):
        load_config(tmp_path / "neuro.yaml")


# -- JSON Schema patterns run on RE2 --------------------------------------------------------------------------
VALIDATE_SNIPPET = """
import sys
from neuro_lib.structured.schemas import load_schema
from neuro_lib.structured.verify import verify_text
errors = verify_text(open(sys.argv[2], "rb").read(), load_schema(sys.argv[1]))[1]
print(sorted((e.path, e.rule) for e in errors))
"""


def _bomb_schema(tmp_path):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}},
              "patternProperties": {"^(b+)+$": {"type": "integer"}}}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    (tmp_path / "d.json").write_text(json.dumps({"s": "a" * 5000 + "!", "b" * 5000 + "!": 1, "bb": "x"}))
    return str(tmp_path / "s.json"), str(tmp_path / "d.json")


def test_catastrophic_schema_pattern_validates_in_bounded_time(tmp_path):
    """`^(a+)+$` against 5000 a's and a '!' backtracks for ages in Python's re; RE2 answers at once."""
    schema, doc = _bomb_schema(tmp_path)
    p = subprocess.run([sys.executable, "-c", VALIDATE_SNIPPET, schema, doc], capture_output=True, text=True,
                       timeout=60, cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[('$.bb', 'type'), ('$.s', 'pattern')]"


@pytest.mark.slow
def test_neuro_json_validate_with_a_catastrophic_pattern(tmp_path):
    schema, doc = _bomb_schema(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    p = _neuro("json", "validate", doc, "--schema", schema, timeout=120)
    assert p.returncode == 1, p.stderr  # the document is invalid: a run that finished and found errors
    assert "$.s: pattern:" in p.stdout and "$.bb: type:" in p.stdout and "Traceback" not in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == before


def test_pattern_matching_agrees_with_python_re_where_both_run():
    from neuro_lib.structured.verify import verify

    schema = {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
              "patternProperties": {"^x_": {"type": "integer"}}}
    assert verify({"zip": "12345", "x_a": 1}, schema) == []
    errs = verify({"zip": "1234", "x_a": "no"}, schema)
    assert [(e.path, e.rule) for e in errs] == [("$.x_a", "type"), ("$.zip", "pattern")]
    assert verify({"zip": "\ud800"}, {"properties": {"zip": {"pattern": "^.$"}}}) == []  # a lone surrogate


def test_a_pattern_re2_cannot_run_is_refused_in_one_sentence(tmp_path, capsys):
    from neuro_lib.cli import main

    (tmp_path / "s.json").write_text(json.dumps({"type": "string", "pattern": "(a)\\1"}))
    (tmp_path / "d.json").write_text('"aa"')
    assert main(["json", "validate", str(tmp_path / "d.json"), "--schema", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    _one_sentence(err)
    assert "cannot be run by the linear-time regex engine" in err


# -- the web reader: one deadline for connect, headers and body ------------------------------------------------
@pytest.fixture
def trickle_server():
    """A server on 127.0.0.1 that answers every request with its status line, one byte every 0.1 s."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                for b in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: " + b"x" * 10_000:
                    if stop.is_set():
                        break
                    try:
                        conn.sendall(bytes([b]))
                    except OSError:
                        break
                    time.sleep(0.1)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/"
    stop.set()
    t.join(5)
    srv.close()


def test_web_reader_deadline_covers_the_response_headers(trickle_server):
    from neuro_lib.tools.web import WebReader

    results = []
    worker = threading.Thread(target=lambda: results.append(
        WebReader(allow=["127.0.0.1"], timeout_s=1.0).call({"url": trickle_server})), daemon=True)
    worker.start()
    worker.join(20)  # the old reader stayed busy for as long as the server trickled (here about 17 minutes)
    assert results, "the web reader did not return"
    assert not results[0].ok and results[0].error == "fetch took longer than 1 s"
    assert results[0].timings["total_s"] < 4  # one second of deadline, plus the last 0.1 s read


@pytest.mark.slow
def test_neuro_tool_fetch_against_a_trickling_server_exits_in_one_sentence(trickle_server):
    t0 = time.monotonic()
    p = _neuro("tool", "fetch", trickle_server, "--allow", "127.0.0.1", "--timeout", "1", timeout=120)
    assert p.returncode == 2 and p.stderr == "neuro: error: fetch took longer than 1 s\n"
    assert time.monotonic() - t0 < 100  # interpreter start-up included


# -- YAML alias bombs and other hostile YAML ------------------------------------------------------------------
BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize("text, message", [
    (BOMB, "expands to more than 100000 YAML nodes once its aliases are copied"),
    ("a: &a [*a]\n", "has an alias that refers to itself"),
    ("[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("x: 1\n" + "#" * (1 << 20) + "\n", "bytes; YAML files are read up to 1048576 bytes"),
    (b"name: caf\xe9\n", "is not UTF-8 text"),
])
def test_hostile_yaml_is_refused_in_one_sentence(tmp_path, text, message):
    from neuro_lib.yamlfile import load_yaml

    p = tmp_path / "f.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(NeuroError, match=message):
        load_yaml(p, "settings f.yaml")


def test_yaml_aliases_within_the_cap_still_load(tmp_path):
    from neuro_lib.yamlfile import load_yaml

    p = tmp_path / "ok.yaml"
    p.write_text("base: &b {k: 1}\nuse: [*b, *b]\n")
    assert load_yaml(p, "ok.yaml") == {"base": {"k": 1}, "use": [{"k": 1}, {"k": 1}]}


def test_every_yaml_read_in_the_package_goes_through_load_yaml():
    offenders = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "neuro_lib").rglob("*.py")
                 if p.name != "yamlfile.py" and any(f"yaml.{f}(" in p.read_text() for f in
                                                    ("load", "safe_load", "full_load", "unsafe_load", "load_all",
                                                     "safe_load_all", "compose"))]
    assert offenders == []


@pytest.mark.parametrize("door", ["graph", "config"])
def test_alias_bomb_through_the_cli_is_one_sentence_and_exit_2(tmp_path, door, capsys):
    """In process: the loader is bounded by construction (the hang-prone doors above run in subprocesses)."""
    from neuro_lib.cli import main

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    args = ["graph", "show", str(bomb)] if door == "graph" else ["run", "--config", str(bomb), "hello"]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err
    _one_sentence(err)
    assert "alias bomb" in err
    assert sorted(x.name for x in tmp_path.iterdir()) == before


# -- sandboxed code dies with its host, at every isolation level and for every signal -----------------------------
def _levels():
    from neuro_lib.tools.sandbox import namespace_available

    return ["process"] + (["namespace"] if namespace_available() else [])


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            out[int(entry.name)] = (int(fields[1]), fields[0], cmd)
    return out


def _descendants(pid: int) -> dict[int, str]:
    table, found, frontier = _proc_table(), {}, [pid]
    while frontier:
        parent = frontier.pop()
        for p, (pp, _, cmd) in table.items():
            if pp == parent and p not in found:
                found[p] = cmd
                frontier.append(p)
    return found


def _program_runs(tree: dict[int, str]) -> bool:
    """Whether the sandboxed interpreter itself is among the processes (not only the namespace's script)."""
    return any(cmd.rstrip().endswith("-I -S -B main.py") for cmd in tree.values())


def _alive(pids) -> list[int]:
    table = _proc_table()
    return [p for p in pids if p in table and table[p][1] != "Z"]


def _host(level: str) -> int:
    """A forked copy of this process that runs a sleeping program in the sandbox (cheap: no new interpreter)."""
    import os

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the host
        code = 1
        try:
            from neuro_lib.tools.sandbox import Limits, PythonSandbox

            PythonSandbox(isolation=level, limits=Limits(wall_s=60, cpu_s=60)).call(
                {"code": "import time\nprint('up', flush=True)\ntime.sleep(60)"})
            code = 0
        finally:
            os._exit(code)
    return pid


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("level", _levels())
def test_the_sandboxed_program_dies_with_its_host(level, sig):
    import os
    import signal
    import tempfile

    from neuro_lib.tools.sandbox import sweep_stale_workdirs

    host = _host(level)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the program itself runs (python ... main.py)
            tree = _descendants(host)
            if _program_runs(tree):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the sandboxed program never started")
        workdirs = list(Path(tempfile.gettempdir()).glob(f"neuro-sandbox-{host}-*"))
        assert len(workdirs) == 1
        time.sleep(0.2)
        tree = _descendants(host)
        os.kill(host, getattr(signal, sig))
        _, status = os.waitpid(host, 0)
        if sig != "SIGKILL":  # the host unwound through its clean-up, then died of the signal (or exited on ^C)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM if sig == "SIGTERM" else True
        deadline = time.monotonic() + 5
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(tree) == [], f"left running after {sig}: {[tree[p] for p in _alive(tree)]}"
        if sig == "SIGKILL":  # nothing of the host ran: the next host's start-up sweep removes the directory
            assert workdirs[0].exists()
            assert str(workdirs[0]) in sweep_stale_workdirs()
        assert not workdirs[0].exists()
    finally:
        try:
            os.kill(host, signal.SIGKILL)
            os.waitpid(host, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.mark.slow
def test_neuro_tool_run_killed_by_sigterm_leaves_nothing(tmp_path):
    """The door itself: `neuro tool run` under SIGTERM exits 143 and its program is gone."""
    import os
    import signal

    level = _levels()[-1]
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(60)\n")
    p = subprocess.Popen([*CLI, "tool", "run", str(script), "--timeout", "60", "--isolation", level], cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _program_runs(_descendants(p.pid)):
            time.sleep(0.1)
        tree = _descendants(p.pid)
        assert _program_runs(tree), "the program never started"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 128 + signal.SIGTERM  # the CLI stops in one line, exit 128 + signal
        deadline = time.monotonic() + 5
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alive(tree) == []
        assert not list(Path(__import__("tempfile").gettempdir()).glob(f"neuro-sandbox-{p.pid}-*"))
    finally:
        p.kill()
        p.communicate()


# -- a model that cannot fit fails in one sentence, before allocating ----------------------------------------------
def test_memory_room_reads_the_address_space_limit():
    snippet = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
               "from neuro_lib.memlimit import memory_room\nroom, bound = memory_room()\nprint(room, '|', bound)")
    p = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                       env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    room, bound = p.stdout.strip().split(" | ")
    assert bound == "the address-space limit (RLIMIT_AS)" and 0 < int(room) < 2**30, p.stderr


def test_a_model_too_large_for_the_limit_is_refused_before_allocating(monkeypatch):
    import neuro_lib.memlimit as memlimit
    from neuro_lib.models import build_model

    monkeypatch.setattr(memlimit, "memory_room", lambda: (50 * 2**20, "the address-space limit (RLIMIT_AS)"))
    big = dict(vocab_size=256, d_model=1024, n_layer=8, n_head=8, d_ff=4096, block_size=64, dropout=0.0)
    with pytest.raises(NeuroError, match=r"^a gpt model of [\d,]+ float32 values needs about 0\.\d\d GiB, but the "
                                         r"address-space limit \(RLIMIT_AS\) leaves 0\.05 GiB; use a smaller model"):
        build_model("gpt", **big)
    small = dict(big, d_model=32, n_layer=1, n_head=4, d_ff=64)
    assert build_model("gpt", **small).num_params() > 0  # what fits still builds


@pytest.mark.slow
def test_a_model_too_large_under_a_real_rlimit_fails_in_one_sentence():
    """A real RLIMIT_AS (not a patched bound): the refusal comes before torch tries to allocate."""
    snippet = ("import resource\nfrom neuro_lib.memlimit import _status\nfrom neuro_lib.errors import NeuroError\n"
               "from neuro_lib.models import build_model\nlimit = _status('VmSize') + 256 * 2**20\n"
               "resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))\ntry:\n"
               "    build_model('gpt', vocab_size=256, d_model=2048, n_layer=16, n_head=16, d_ff=8192, block_size=64)\n"
               "except NeuroError as e:\n    print('refused:', e)\n")
    p = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
                       env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.startswith("refused: a gpt model of ") and "address-space limit (RLIMIT_AS)" in p.stdout
