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
from tests.conftest import ENGLISH

TINY = ["--model", "d_model=8", "n_layer=1", "n_head=2", "d_ff=16", "block_size=16"]


def _snapshot(root: pathlib.Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _main(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


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


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_at_start_up_is_one_line(tmp_path, signame):
    (tmp_path / "corpus.txt").write_bytes(ENGLISH)
    r = _signalled("start-up", signame, ["train", "--corpus", f"text:{tmp_path / 'corpus.txt'}", "--steps", "3",
                                         "--out", str(tmp_path / "run"), *TINY])
    signum = getattr(__import__("signal"), signame)
    assert r.returncode == 128 + signum, r.stderr
    assert r.stderr.strip() == f"neuro: stopped by {signame}", r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_step_0_save_keeps_it_and_stops(tmp_path, signame):
    (tmp_path / "corpus.txt").write_bytes(ENGLISH)
    argv = ["train", "--corpus", f"text:{tmp_path / 'corpus.txt'}", "--steps", "3", "--out", str(tmp_path / "run"),
            *TINY]
    r = _signalled("step-0 save", signame, argv)
    signum = getattr(__import__("signal"), signame)
    assert r.returncode == 128 + signum and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last == f"neuro: stopped by {signame} at step 0; checkpoint saved in {tmp_path / 'run'}; run the same " \
                   "command again to resume", r.stderr
    assert read_config(tmp_path / "run")["step"] == 0
    assert main(argv) == 0 and read_config(tmp_path / "run")["step"] == 3  # the same command resumes


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_final_validation_finishes_saves_and_says_so(tmp_path, signame):
    (tmp_path / "corpus.txt").write_bytes(ENGLISH)
    argv = ["train", "--corpus", f"text:{tmp_path / 'corpus.txt'}", "--steps", "3", "--out", str(tmp_path / "run"),
            *TINY]
    r = _signalled("final validation", signame, argv)
    signum = getattr(__import__("signal"), signame)
    assert r.returncode == 128 + signum and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"neuro: stopped by {signame} at step 3; checkpoint saved in "), r.stderr
    assert read_config(tmp_path / "run")["step"] == 3
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "val" and records[-1]["step"] == 3  # the validation finished and was kept


# -- a corrupt or missing RAG index file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_index(tmp_path_factory):
    from neuro_lib.data.corpus import load_corpus
    from neuro_lib.rag.index import build_index
    from tests.conftest import SIZES, _doc_text

    root = tmp_path_factory.mktemp("rag")
    (root / "docs.txt").write_bytes(_doc_text())
    build_index(load_corpus(f"text:{root / 'docs.txt'}"), dict(SIZES, encoder_steps=2), seed=0).save(root / "idx")
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
