"""Hostile probes of the doors (issue 20): each case is one sentence and an exit code, no traceback,
nothing on disk changed, and nothing in a run folder can run code.

A planted file is written the way an attacker would: with the checkpoint's hashes re-written so that
every SHA-256 check passes.
"""
import hashlib
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys

import pytest
import torch

from neuro_lib.checkpoint import load_checkpoint, load_train_state, read_config
from neuro_lib.cli import main
from neuro_lib.errors import NeuroError
from tests.conftest import ENGLISH, run_cli as _main, snapshot as _snapshot

TINY = ["--model", "d_model=8", "n_layer=1", "n_head=2", "d_ff=16", "block_size=16"]


def _one_sentence(code, err, expected_code=2):
    assert code == expected_code, err
    assert err.startswith("neuro: error:") and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    (root / "corpus.txt").write_bytes(ENGLISH)
    argv = ["train", "--corpus", f"text:{root / 'corpus.txt'}", "--steps", "6", "--out", str(root / "run"), *TINY]
    assert main(argv) == 0
    return root, argv


@pytest.fixture
def ws(tmp_path, trained):
    root, argv = trained
    shutil.copytree(root, tmp_path / "ws")
    return tmp_path / "ws", [a.replace(str(root), str(tmp_path / "ws")) for a in argv]


# -- code execution from a run folder ------------------------------------------------------------------
class _Payload:
    """Unpickling this runs a shell command (touches the marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _rehash(run: pathlib.Path) -> None:
    """What an attacker does after planting a file: rewrite config.json's hashes and the pointer's."""
    ptr = json.loads((run / "checkpoint.json").read_text())
    folder = run / ptr["checkpoint"]
    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"] = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "config.json"}
    (folder / "config.json").write_text(json.dumps(cfg))
    ptr["config_sha256"] = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    (run / "checkpoint.json").write_text(json.dumps(ptr))


def _plant_pickle(run: pathlib.Path, marker: pathlib.Path, keep_new_files: bool) -> None:
    folder = pathlib.Path(read_config(run)["folder"])
    if not keep_new_files:
        (folder / "train_state.json").unlink()
        (folder / "train_state.safetensors").unlink()
    (folder / "train_state.pt").write_bytes(pickle.dumps({"step": 6, "x": _Payload(marker)}))
    _rehash(run)
    read_config(run)  # the planted folder passes every hash check


def test_the_payload_does_run_code_when_unpickled(tmp_path):
    """The probe is live: a full unpickling of the planted bytes would touch the marker."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("keep_new_files", [False, True], ids=["pickle only", "pickle beside the new files"])
def test_a_planted_pickle_never_runs(ws, capsys, keep_new_files):
    """`neuro train --out RUN` on a folder with a planted pickled train state: the pickle is not loaded.
    Alone, it is refused in one sentence; beside a valid JSON train state it is ignored."""
    ws, argv = ws
    marker = ws / "pwned"
    _plant_pickle(ws / "run", marker, keep_new_files)
    before = _snapshot(ws)
    code, out, err = _main(capsys, argv)
    assert not marker.exists()
    if keep_new_files:
        assert code == 0, err  # a finished run: nothing to do
    else:
        _one_sentence(code, err)
        assert "pickled train state" in err and "never loaded" in err
        with pytest.raises(NeuroError, match="pickled train state"):
            load_train_state(ws / "run")
        assert not marker.exists()
        load_checkpoint(ws / "run")  # weights only: still readable
    assert _snapshot(ws) == before


def test_a_planted_pickle_never_runs_in_a_subprocess(ws):
    """The same through the installed entry point, in a fresh interpreter."""
    ws, argv = ws
    marker = ws / "pwned"
    _plant_pickle(ws / "run", marker, keep_new_files=False)
    r = subprocess.run([sys.executable, "-m", "neuro_lib.cli", *argv], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NEURO_PROGRESS": "off"})
    assert r.returncode == 2 and "pickled train state" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not marker.exists()


def test_no_full_unpickling_anywhere_in_the_package():
    """Every torch.load in neuro_lib is weights_only=True (there is none today); no pickle module either."""
    root = pathlib.Path(__file__).resolve().parent.parent / "neuro_lib"
    for f in root.rglob("*.py"):
        text = f.read_text()
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, (f, line)
        assert "import pickle" not in text and "allow_pickle=True" not in text, f


@pytest.mark.parametrize("doc", ['{"step": 6, "x": {"$tensor": "nope"}}', '{"step": 6, "x": {"$eval": "1"}}',
                                 '{"step": 6, "x": {"$ndarray": [1], "dtype": "O"}}', "[" * 100_000,
                                 '{"step": 5}', "not json"])
def test_a_malformed_json_train_state_is_one_sentence(ws, capsys, doc):
    """Hashes re-written, contents hostile: refused in one sentence, nothing changed."""
    ws, argv = ws
    folder = pathlib.Path(read_config(ws / "run")["folder"])
    (folder / "train_state.json").write_text(doc)
    _rehash(ws / "run")
    before = _snapshot(ws)
    code, _, err = _main(capsys, argv)
    _one_sentence(code, err)
    assert "train_state.json" in err
    assert _snapshot(ws) == before


def test_train_state_round_trips_exactly(ws):
    """Optimiser moments, RNG states, step and metrics mark: what was saved is what loads."""
    from neuro_lib.checkpoint import _pack, _unpack
    import numpy as np
    import random

    ws, _ = ws
    state = load_train_state(ws / "run")
    assert state["step"] == 6 and isinstance(state["python_rng"], tuple) and state["numpy_rng"][0] == "MT19937"
    assert all(isinstance(k, int) for k in state["optimizer"]["state"])
    tensors = {}
    doc = json.loads(json.dumps(_pack(state, tensors)))
    again = _unpack(doc, tensors)
    assert again["python_rng"] == state["python_rng"]
    assert np.array_equal(again["numpy_rng"][1], state["numpy_rng"][1])
    for k, v in state["optimizer"]["state"].items():
        for name, t in v.items():
            assert torch.equal(again["optimizer"]["state"][k][name], t)
    assert _unpack(_pack({"a": float("inf"), 3: (1, None)}, {}), {}) == {"a": float("inf"), 3: (1, None)}
    random.setstate(state["python_rng"])  # a valid state for the interpreter


# -- signals outside the training loop -----------------------------------------------------------------
# A wrapper sends its own process a real signal from inside a chosen function (its n-th call), then lets
# the function go on: the signal arrives exactly there, whatever the machine's load.
SIGNAL_WRAPPER = r"""
import os, signal, sys
import neuro_lib.checkpoint as ck
import neuro_lib.profiles as profiles
import neuro_lib.train.lm as lm
import neuro_lib.train.trainer as trainer
from neuro_lib.cli import main

where, signame, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
owner, name, n = {"start-up": (profiles, "get_profile", 1), "step-0 save": (trainer, "save_checkpoint", 1),
                  "final validation": (lm, "evaluate_bpb", 1)}[where]
orig, calls = getattr(owner, name), [0]

def wrapped(*args, **kwargs):
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), getattr(signal, signame))
    return orig(*args, **kwargs)

setattr(owner, name, wrapped)
sys.exit(main(argv))
"""


def _signalled(where, signame, argv):
    env = {**os.environ, "NEURO_PROGRESS": "off", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", SIGNAL_WRAPPER, where, signame, *argv], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.slow  # a fresh interpreter (torch import) per case
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_at_start_up_is_one_line(tmp_path, signame):
    (tmp_path / "corpus.txt").write_bytes(ENGLISH)
    r = _signalled("start-up", signame, ["train", "--corpus", f"text:{tmp_path / 'corpus.txt'}", "--steps", "3",
                                         "--out", str(tmp_path / "run"), *TINY])
    signum = getattr(__import__("signal"), signame)
    assert r.returncode == 128 + signum, r.stderr
    assert r.stderr.strip() == f"neuro: stopped by {signame}", r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a fresh interpreter (torch import) per case
@pytest.mark.parametrize("where,step", [("step-0 save", 0), ("final validation", 3)])
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_outside_the_loop_lets_the_work_finish_saves_and_says_so(tmp_path, where, step, signame):
    """The save or the validation in hand finishes and is kept; then the promised line and 128 + signal;
    the same command then resumes (or finds the run finished)."""
    (tmp_path / "corpus.txt").write_bytes(ENGLISH)
    run = tmp_path / "run"
    argv = ["train", "--corpus", f"text:{tmp_path / 'corpus.txt'}", "--steps", "3", "--out", str(run), *TINY]
    r = _signalled(where, signame, argv)
    assert r.returncode == 128 + getattr(__import__("signal"), signame) and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (f"neuro: stopped by {signame} at step {step}; checkpoint saved in "
                                                 f"{run}; run the same command again to resume"), r.stderr
    assert read_config(run)["step"] == step
    if where == "final validation":
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["kind"] == "val" and records[-1]["step"] == 3  # the validation finished and was kept
    assert main(argv) == 0 and read_config(run)["step"] == 3


# -- a corrupt or missing RAG index file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_index(tmp_path_factory):
    from dataclasses import replace

    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.rag.index import build_index
    from tests.conftest import SIZES, _doc_text

    root = tmp_path_factory.mktemp("rag")
    (root / "docs.txt").write_bytes(_doc_text())
    build_index(load_corpus(f"text:{root / 'docs.txt'}"), replace(SIZES, encoder_steps=2), seed=0).save(root / "idx")
    return root


def _write_npy(path, shape):
    import numpy as np
    np.save(path, np.zeros(shape, dtype=np.float32))


INDEX_DAMAGE = {
    "index.json not JSON": lambda i: (i / "index.json").write_text("{nope"),
    "index.json not UTF-8": lambda i: (i / "index.json").write_bytes(b'{"kind": "\xff"}'),
    "index.json a list": lambda i: (i / "index.json").write_text("[1, 2]"),
    "index.json without its corpus": lambda i: (i / "index.json").write_text(json.dumps(
        {k: v for k, v in json.loads((i / "index.json").read_text()).items() if k != "corpus"})),
    "passages missing": lambda i: (i / "passages.jsonl").unlink(),
    "passages not JSON": lambda i: (i / "passages.jsonl").write_text("garbage\n"),
    "passage of the wrong shape": lambda i: (i / "passages.jsonl").write_text('{"id": "x", "start": 0}\n'),
    "passage offsets mistyped": lambda i: (i / "passages.jsonl").write_text(
        '{"id": "x", "section": "s", "start": "0", "end": 5}\n'),
    "passage outside the corpus": lambda i: (i / "passages.jsonl").write_text(
        (i / "passages.jsonl").read_text() + '{"id": "far", "section": "s", "start": 0, "end": 99999999}\n'),
    "questions missing": lambda i: (i / "questions.jsonl").unlink(),
    "question of an unknown passage": lambda i: (i / "questions.jsonl").write_text(
        (i / "questions.jsonl").read_text().replace('"passage_id": "', '"passage_id": "gone-')),
    "bm25 missing": lambda i: shutil.rmtree(i / "bm25"),
    "bm25 files corrupt": lambda i: [f.write_bytes(b"\x00junk") for f in (i / "bm25").iterdir()],
    "encoder.json missing": lambda i: (i / "dense" / "encoder.json").unlink(),
    "encoder.json of another shape": lambda i: (i / "dense" / "encoder.json").write_text('{"width": 3}'),
    "encoder weights corrupt": lambda i: (i / "dense" / "encoder.safetensors").write_bytes(b"\x00junk"),
    "vectors corrupt": lambda i: (i / "dense" / "vectors.npy").write_bytes(b"\x93NUMPY junk"),
    "vectors of another count": lambda i: _write_npy(i / "dense" / "vectors.npy", (3, 16)),
    "vectors of another width": lambda i: _write_npy(i / "dense" / "vectors.npy", (
        __import__("numpy").load(i / "dense" / "vectors.npy").shape[0], 5)),
    "hnsw corrupt": lambda i: (i / "dense" / "hnsw.faiss").write_bytes(b"\x00junk"),
    "hnsw missing": lambda i: (i / "dense" / "hnsw.faiss").unlink(),
}


@pytest.mark.parametrize("case", list(INDEX_DAMAGE))
def test_a_damaged_rag_index_is_one_sentence(saved_index, tmp_path, capsys, case):
    shutil.copytree(saved_index, tmp_path / "ws")
    idx = tmp_path / "ws" / "idx"
    INDEX_DAMAGE[case](idx)
    before = _snapshot(tmp_path / "ws")
    code, _, err = _main(capsys, ["rag", "ask", str(idx), "which exception is raised?"])
    _one_sentence(code, err)
    assert str(idx) in err
    assert _snapshot(tmp_path / "ws") == before


# -- output paths: under a regular file, of the wrong kind, or a symbolic link -------------------------------
@pytest.fixture
def place(tmp_path):
    """A folder with a regular file, a folder, links to a file and a folder outside it, and a dangling
    link whose target (outside) must never appear."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (ws / "file.txt").write_text("keep me")
    (ws / "dir.html").mkdir()
    (outside / "victim.txt").write_text("keep me too")
    (ws / "link.html").symlink_to(outside / "victim.txt")
    (ws / "dangling.html").symlink_to(outside / "planted.html")
    (ws / "dirlink").symlink_to(outside, target_is_directory=True)
    return ws, outside


def _refused_and_unchanged(capsys, place, argv, expected):
    ws, outside = place
    before = _snapshot(ws.parent)
    code, _, err = _main(capsys, argv)
    _one_sentence(code, err)
    assert expected in err, err
    assert _snapshot(ws.parent) == before


PATH_CASES = {
    # name: (argv with {ws}, words of the sentence)
    "graph --out under a file": (["graph", "show", "default", "--out", "{ws}/file.txt/g.html"], "is a file"),
    "graph --out is a folder": (["graph", "show", "default", "--out", "{ws}/dir.html", "--force"], "is a folder"),
    "graph --out a link to a file": (["graph", "show", "default", "--out", "{ws}/link.html", "--force"],
                                     "symbolic link"),
    "graph --out a dangling link": (["graph", "show", "default", "--out", "{ws}/dangling.html"], "symbolic link"),
    "init under a file": (["init", "{ws}/file.txt/proj"], "is a file"),
    "init into a file": (["init", "{ws}/file.txt"], "is a file, not a folder"),
    "init into a link": (["init", "{ws}/dirlink"], "symbolic link"),
    "report --out-root under a file": (["report", "--only", "00", "--out-root", "{ws}/file.txt/r"], "is a file"),
    "report --out-root is a file": (["report", "--only", "00", "--out-root", "{ws}/file.txt"], "not a folder"),
    "report --out-root a link": (["report", "--only", "00", "--out-root", "{ws}/dirlink"], "symbolic link"),
    "nbfreeze a folder": (["nbfreeze", "{ws}/dir.html"], "is a folder"),
    "nbfreeze under a file": (["nbfreeze", "{ws}/file.txt/n.ipynb"], "is a file"),
    "nbfreeze a link": (["nbfreeze", "{ws}/link.html"], "symbolic link"),
    "nbfreeze not a notebook": (["nbfreeze", "{ws}/file.txt"], "not a readable notebook"),
    "nbfreeze missing": (["nbfreeze", "{ws}/none.ipynb"], "does not exist"),
}


@pytest.mark.parametrize("case", list(PATH_CASES))
def test_output_paths_are_checked_at_every_door(capsys, place, case):
    argv, expected = PATH_CASES[case]
    _refused_and_unchanged(capsys, place, [a.format(ws=place[0]) for a in argv], expected)
    assert not (place[1] / "planted.html").exists()


def test_init_never_writes_through_a_planted_link(capsys, place):
    ws, outside = place
    (ws / "proj").mkdir()
    (ws / "proj" / "graph.yaml").symlink_to(outside / "graph.yaml")  # dangling: exists() says no
    _refused_and_unchanged(capsys, place, ["init", str(ws / "proj")], "symbolic link")
    assert not (outside / "graph.yaml").exists()


@pytest.fixture
def no_experts(monkeypatch):
    """A door that would build experts fails the test instead of training them."""
    from neuro_lib.runtime.engine import RuntimeEngine

    def refuse(*a, **k):
        raise AssertionError("experts were built: the bad path was not refused first")
    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(refuse))


MEMORY_CASES = {
    "under a file": ("{ws}/file.txt/m.sqlite", "is a file"),
    "a folder": ("{ws}/dir.html", "is a directory"),
    "a link to a file elsewhere": ("{ws}/link.html", "symbolic link"),
    "a dangling link": ("{ws}/dangling.html", "symbolic link"),
    "a text file": ("{ws}/file.txt", "cannot be used"),
}


@pytest.mark.parametrize("case", list(MEMORY_CASES))
def test_memory_paths_are_refused_before_any_expert(capsys, place, no_experts, case):
    path, expected = MEMORY_CASES[case]
    _refused_and_unchanged(capsys, place, ["run", "hello", "--memory", path.format(ws=place[0])], expected)
    assert not (place[1] / "planted.html").exists()


def test_a_planted_wal_link_is_refused(capsys, place, no_experts):
    ws, outside = place
    (ws / "m.sqlite-wal").symlink_to(outside / "wal")
    _refused_and_unchanged(capsys, place, ["run", "hello", "--memory", str(ws / "m.sqlite")], "symbolic link")
    assert not (outside / "wal").exists() and not (ws / "m.sqlite").exists()


def _foreign_db(path, table="other (a TEXT)"):
    import sqlite3
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table}")
    conn.execute(f"INSERT INTO {table.split()[0]} VALUES ('x')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("table", ["other (a TEXT)", "memories (text TEXT)"], ids=["another app's", "another shape"])
def test_a_refused_sqlite_file_is_not_touched(capsys, place, no_experts, table):
    """Refused before anything is written: the file keeps its bytes (not switched to WAL), no side files."""
    ws, _ = place
    _foreign_db(ws / "app.sqlite", table)
    _refused_and_unchanged(capsys, place, ["run", "hello", "--memory", str(ws / "app.sqlite")], "give another file")
    assert (ws / "app.sqlite").read_bytes()[18:20] == b"\x01\x01"  # the header's journal mode: still rollback


def test_trace_out_failure_leaves_no_file_and_a_rerun_works(capsys, tmp_path, monkeypatch):
    import neuro_lib.viz.graph as viz
    from neuro_lib.runtime import router_model
    from neuro_lib.runtime.engine import RuntimeEngine
    from neuro_lib.runtime.router import KeywordRouter
    from tests.test_cli_runtime import COMPOUND, ScriptedJudge, experts  # test-double experts: nothing trains

    monkeypatch.setattr(router_model, "cached_router", lambda sizes, **kw: KeywordRouter())  # nor the router
    monkeypatch.setattr(RuntimeEngine, "from_profile", classmethod(
        lambda cls, profile="smoke", graph="default", memory=None, router=None, extra_experts=None, **kw:
        cls(graph, experts(), router, ScriptedJudge(), memory, **kw)))
    page = tmp_path / "trace.html"
    real = viz.trace_html
    monkeypatch.setattr(viz, "trace_html", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    code, _, err = _main(capsys, ["run", COMPOUND, "--trace-out", str(page)])
    assert code == 2 and "no space left on device" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # no empty page, no temporary file
    monkeypatch.setattr(viz, "trace_html", real)
    code, _, err = _main(capsys, ["run", COMPOUND, "--trace-out", str(page)])
    assert code == 0 and page.read_text().count("<html>") == 1, err


def test_a_query_that_is_not_utf8_is_one_sentence(capsys, no_experts):
    code, _, err = _main(capsys, ["run", "caf\udce9"])
    _one_sentence(code, err)
    assert "the query is not valid UTF-8" in err


# -- values: repetition penalty, seeds -----------------------------------------------------------------------
VALUE_CASES = {
    "repetition penalty nan": (["generate", "{run}", "--repetition-penalty", "nan"], "finite"),
    "repetition penalty 0": (["generate", "{run}", "--repetition-penalty", "0"], "positive"),
    "repetition penalty -1": (["generate", "{run}", "--repetition-penalty", "-1"], "positive"),
    "generate seed 2**63": (["generate", "{run}", "--seed", str(2**63)], "below"),
    "train seed 2**63": (["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "1", "--seed", str(2**63),
                          "--out", "{ws}/new", *TINY], "below"),
    "train seed 2**64": (["train", "--seed", str(2**64), "--out", "{ws}/new"], "below"),
    "json seed 2**63": (["json", "--schema", "product_v1", "--prompt", "x", "--seed", str(2**63)], "below"),
    "rag index seed -1": (["rag", "index", "--out", "{ws}/idx", "--seed", "-1"], "at least 0"),
}


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_values_without_a_meaning_are_one_sentence(ws, capsys, case):
    ws, _ = ws
    argv, expected = VALUE_CASES[case]
    before = _snapshot(ws)
    code, _, err = _main(capsys, [a.format(ws=ws, run=ws / "run") for a in argv])
    _one_sentence(code, err)
    assert expected in err, err
    assert _snapshot(ws) == before


def test_the_library_refuses_the_same_values():
    from neuro_lib.infer.engine import Sampling
    from neuro_lib.train.trainer import TrainConfig

    for penalty in (float("nan"), 0.0, -1.0, float("inf")):
        with pytest.raises(ValueError):
            Sampling(repetition_penalty=penalty)
    with pytest.raises(ValueError, match="seed"):
        Sampling(seed=2**63)
    with pytest.raises(NeuroError, match="seed"):
        TrainConfig(max_steps=1, seed=2**63)


# -- recorded files name their commit and, from a dirty tree, the dirty files ----------------------------------
def _git(root, *args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_names_the_commit_and_the_dirty_files(tmp_path):
    from neuro_lib.envinfo import git_state

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("ignored.txt\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = git_state(repo)
    assert clean["commit"] == _git(repo, "rev-parse", "HEAD") and clean["sha"] == clean["commit"][:7]
    assert clean["dirty"] is False and clean["dirty_files"] == []
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.py").write_text("")
    (repo / "ignored.txt").write_text("")
    dirty = git_state(repo)
    assert dirty["dirty"] is True and dirty["dirty_files"] == [" M a.py", "?? new.py"]
    outside = git_state(tmp_path / "repo" / ".git")  # inside .git: not a work tree
    assert outside["sha"] == "unknown" and outside["error"]
    plain = tmp_path / "plain"
    plain.mkdir()
    gone = git_state(plain)
    assert gone["sha"] == "unknown" and gone["dirty"] is None and "not a git repository" in gone["error"].lower()


def test_a_bench_record_carries_the_git_state():
    import neuro_lib.bench.report as report
    from neuro_lib.envinfo import git_state

    rec = report.make_report("x", {}, [{"name": "n", "value": 1.0, "unit": "u"}])
    assert rec["git"] == git_state()  # this checkout's commit and dirty files, as the record stores them
    assert rec["git"]["commit"] is None or len(rec["git"]["commit"]) == 40


# -- the engine streams text with stop sequences held back (moved out of the CLI) --------------------------------
def test_stream_text_holds_back_stop_prefixes_and_equals_the_cut_text():
    from neuro_lib.infer.engine import Token, cut_at_stop, stream_text
    from neuro_lib.tokenizers import ByteTokenizer

    tok = ByteTokenizer()
    for text, stop in [(b"abcENxEND tail", (b"END",)), (b"no stop here", (b"\n\n",)), (b"caf\xc3\xa9!", ()),
                       (b"EEND", ("END", b"EE")), (b"", (b"x",))]:
        tokens = [Token(0, b, 0.0) for b in text]
        chunks = list(stream_text(iter(tokens), tok, stop))
        assert b"".join(chunks) == cut_at_stop(text, tuple(s.encode() if isinstance(s, str) else s for s in stop))[0]
        assert all(chunks)  # nothing empty is yielded
