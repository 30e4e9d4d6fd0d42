"""Runs that survive (issue 10): bad input, full disks, real kills, two trainers at once.

Bad input: every case gets exit 2, one line on stderr, and leaves the run folder (and its
parent) exactly as it was. Interruptions are real: `neuro train` runs as a subprocess and
is killed with SIGKILL at chosen moments (a wrapper arms a function to kill its own
process on its n-th call, or the test kills it from outside), then the same command is
run again and its final weights are compared with an unbroken run's.
"""
import errno
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from neuro_lib.cli import _stop_bytes, main
from neuro_lib.checkpoint import load_checkpoint, read_config
from tests.conftest import ENGLISH, run_cli as _main, snapshot as _snapshot

TINY = ["--model", "d_model=8", "n_layer=1", "n_head=2", "d_ff=16", "block_size=16"]
STEPS = "24"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    corpus = root / "corpus.txt"
    corpus.write_bytes(ENGLISH)
    assert main(["train", "--corpus", f"text:{corpus}", "--steps", "3", "--out", str(root / "run"), *TINY]) == 0
    return root


@pytest.fixture
def ws(tmp_path, finished_run):
    """A fresh copy of a finished run (`run`) and its corpus, in a folder of its own."""
    shutil.copytree(finished_run, tmp_path / "ws")
    (tmp_path / "ws" / "short.txt").write_bytes(ENGLISH[:25])
    (tmp_path / "ws" / "other.txt").write_bytes(ENGLISH[::-1])
    return tmp_path / "ws"


def _corrupt(ws, what):
    run = ws / "run"
    folder = run / json.loads((run / "checkpoint.json").read_text())["checkpoint"]
    if what == "weights":
        (folder / "model.safetensors").write_bytes(b"\x00garbage")
    elif what == "metrics":
        (run / "metrics.jsonl").write_text('{"step": 1, "kind": "train", "loss": 0}\n')
    elif what == "tokenizer":
        (folder / "tokenizer" / "tokenizer_meta.json").write_text("{not json")
    elif what == "config":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["model"]["d_model"] = "wide"
        (folder / "config.json").write_text(json.dumps(cfg))
    elif what == "pointer":
        (run / "checkpoint.json").write_text('{"checkpoint": 7}')
    elif what == "train_state":
        (folder / "train_state.json").write_text("{truncated")


TRAIN = ["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "3", "--out", "{ws}/run", *TINY]
BAD = {
    # training arguments, checked before any work
    "budget nan": (["train", "--time-budget", "nan", "--out", "{ws}/new"], "finite"),
    "budget inf": (["train", "--time-budget", "inf", "--out", "{ws}/new"], "finite"),
    "budget 0": (["train", "--time-budget", "0", "--out", "{ws}/new"], "positive"),
    "steps 0": (["train", "--steps", "0", "--out", "{ws}/new"], "positive"),
    "steps 2.5": (["train", "--steps", "2.5", "--out", "{ws}/new"], "not an integer"),
    "ckpt-every 0": (["train", "--ckpt-every", "0", "--out", "{ws}/new"], "positive"),
    "ckpt-every nan s": (["train", "--ckpt-every", "nans", "--out", "{ws}/new"], "finite"),
    "ckpt-every junk": (["train", "--ckpt-every", "often", "--out", "{ws}/new"], "not an integer"),
    "seed negative": (["train", "--seed", "-1", "--out", "{ws}/new"], "at least 0"),
    "unknown profile": (["train", "--profile", "huge", "--out", "{ws}/new"], "unknown profile"),
    "unknown arch": (["train", "--arch", "lstm", "--out", "{ws}/new"], "unknown arch"),
    "unknown model field": (["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "1", "--out", "{ws}/new",
                             "--model", "d_modell=8"], "no field"),
    "corpus too short": (["train", "--corpus", "text:{ws}/short.txt", "--steps", "1", "--out", "{ws}/new",
                          *TINY[:-1], "block_size=32"],
                         "fewer than one window"),
    "missing corpus": (["train", "--corpus", "text:{ws}/none.txt", "--steps", "1", "--out", "{ws}/new"],
                       "does not exist"),
    "out below a file": (["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "1", "--out",
                          "{ws}/run/metrics.jsonl/sub", *TINY], "is a file"),
    "out is a file": (["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "1", "--out", "{ws}/corpus.txt",
                       *TINY], "is a file"),
    "out holds other files": (["train", "--corpus", "text:{ws}/corpus.txt", "--steps", "1", "--out", "{ws}", *TINY],
                              "already holds other files"),
    "another model": (TRAIN[:-1] + ["block_size=8"], "holds another run"),
    "another corpus": ([a.replace("corpus.txt", "other.txt") for a in TRAIN], "corpus_sha256 differ"),
    "another budget": ([a.replace("3", "4") for a in TRAIN], "train differ"),
    "chat with corpus": (["train", "--arch", "rnk", "--task", "chat", "--corpus", "text:{ws}/corpus.txt",
                          "--out", "{ws}/new"], "drop --corpus"),
    "chat with tokenizer": (["train", "--arch", "rnk", "--task", "chat", "--tokenizer", "bpe:512",
                             "--out", "{ws}/new"], "drop --corpus and --tokenizer"),
    "chat data without chat": (["train", "--chat-data", "{ws}/corpus.txt", "--out", "{ws}/new"], "needs --task chat"),
    "missing chat data": (["train", "--arch", "rnk", "--task", "chat", "--chat-data", "{ws}/none.jsonl",
                           "--out", "{ws}/new"], "does not exist"),
    # a corrupt run folder: resuming, evaluating and sampling all refuse it
    "train, weights corrupt": (TRAIN, "corrupt", "weights"),
    "train, metrics edited": (TRAIN, "metrics.jsonl", "metrics"),
    "train, tokenizer corrupt": (TRAIN, "corrupt", "tokenizer"),
    "train, config mistyped": (TRAIN, "does not match checkpoint.json", "config"),
    "train, pointer corrupt": (TRAIN, "corrupt", "pointer"),
    "train, train state corrupt": (TRAIN, "corrupt", "train_state"),
    "eval, weights corrupt": (["eval", "{ws}/run"], "corrupt", "weights"),
    "eval, tokenizer corrupt": (["eval", "{ws}/run"], "corrupt", "tokenizer"),
    "generate, config mistyped": (["generate", "{ws}/run"], "does not match", "config"),
    "eval, checkpoint folder with mistyped config": (["eval", "{ws}/run/ckpt-000002"], "invalid gpt config", "config"),
    # eval
    "eval max-bytes 1": (["eval", "{ws}/run", "--corpus", "text:{ws}/corpus.txt", "--max-bytes", "1"],
                         "shorter than two tokens"),
    "eval max-bytes -5": (["eval", "{ws}/run", "--max-bytes", "-5"], "at least 0"),
    "eval block above the model's": (["eval", "{ws}/run", "--block-size", "64"], "exceeds the model's context"),
    "eval block 0": (["eval", "{ws}/run", "--block-size", "0"], "positive"),
    # generate
    "top-k negative": (["generate", "{ws}/run", "--top-k", "-1"], "--top-k must be >= 0"),
    "top-p 0": (["generate", "{ws}/run", "--top-p", "0"], "--top-p must be in (0, 1]"),
    "top-p negative": (["generate", "{ws}/run", "--top-p", "-0.5"], "--top-p must be in (0, 1]"),
    "top-p 2": (["generate", "{ws}/run", "--top-p", "2"], "--top-p must be in (0, 1]"),
    "temperature nan": (["generate", "{ws}/run", "--temperature", "nan"], "finite"),
    "temperature negative": (["generate", "{ws}/run", "--temperature", "-1"], "--temperature must be >= 0"),
    "stop empty": (["generate", "{ws}/run", "--stop", ""], "--stop must not be empty"),
    "stop broken escape": (["generate", "{ws}/run", "--stop", "\\x4"], "broken escape"),
    "prompt not UTF-8": (["generate", "{ws}/run", "--prompt", "caf\udce9"], "not valid UTF-8 (byte 0xe9"),
    # report and bench: checked before a notebook or a budget starts
    "report seed abc": (["report", "--only", "00", "-p", "seed", "abc", "--out-root", "{ws}/reports"],
                        "parameter seed of 00_quickstart.ipynb is int"),
    "report budget nan": (["report", "--only", "00", "-p", "time_budget_s", "NaN", "--out-root", "{ws}/reports"],
                          "is float"),
    "report unknown profile": (["report", "--profile", "huge", "--out-root", "{ws}/reports"], "unknown profile"),
    "bench lm budget nan": (["bench", "lm", "--corpus", "text:{ws}/corpus.txt", "--time-budget", "nan"],
                            "must be positive"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_sentence_and_changes_nothing(ws, capsys, case):
    argv, expected, *corruption = BAD[case]
    if corruption:
        _corrupt(ws, corruption[0])
    before = _snapshot(ws)
    code, out, err = _main(capsys, [a.format(ws=ws) for a in argv])
    assert code == 2, (case, out, err)
    assert err.startswith("neuro: error:") and err.count("\n") == 1 and expected in err, err
    assert _snapshot(ws) == before


def test_stop_sequences_keep_utf8_and_decode_escapes():
    assert _stop_bytes(["é", "\\n\\n", "\\x41\\t", "a\\\\b"]) == ["é".encode(), b"\n\n", b"A\t", b"a\\b"]


def test_same_seed_same_weights_different_seed_different(tmp_path, text_corpus, capsys):
    def weights(name, seed):
        assert main(["train", "--corpus", text_corpus, "--steps", "3", "--seed", seed, "--out", str(tmp_path / name),
                     *TINY]) == 0
        return load_checkpoint(tmp_path / name)[0].state_dict()

    a, b, c = weights("a", "1"), weights("b", "1"), weights("c", "2")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["lm_head.weight"], c["lm_head.weight"])
    loss = [[r["loss"] for r in map(json.loads, (tmp_path / n / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "train"] for n in "ab"]
    assert loss[0] == loss[1]


def test_chat_task_honours_time_budget(tmp_path, capsys):
    code, out, err = _main(capsys, ["train", "--arch", "rnk", "--task", "chat", "--time-budget", "1", "--out",
                                    str(tmp_path / "rnk"), "--model", "d_model=16", "n_layer=1", "d_state=4",
                                    "d_plan=16", "d_dec=16", "hrm_steps=1"])
    assert code == 0, err
    cfg = read_config(tmp_path / "rnk")
    assert cfg["train"]["time_budget_s"] == 1 and cfg["train"]["max_steps"] == 0


# -- full disk ---------------------------------------------------------------------------------------
def _steps_logged(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _only_one_checkpoint(run):
    """The pointer, the folder it names, the log and the lock: no partial folder, no temporary file."""
    names = {p.name for p in run.iterdir()}
    folder = json.loads((run / "checkpoint.json").read_text())["checkpoint"]
    assert names - {folder, "metrics.jsonl"} == {".lock", "checkpoint.json"}, names


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, text_corpus, capsys, monkeypatch):
    """ENOSPC in the middle of the third save (train_state.safetensors half written): one sentence, the step-2
    checkpoint intact, no partial folder or temp file left; the same command then finishes the run."""
    argv = ["train", "--corpus", text_corpus, "--steps", "6", "--ckpt-every", "2", *TINY]
    assert main([*argv, "--out", str(tmp_path / "unbroken")]) == 0
    real_write, saves = pathlib.Path.write_bytes, []

    def full_disk(self, data):
        if self.name == "train_state.safetensors":
            saves.append(self)
            if len(saves) == 3:
                real_write(self, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    run = tmp_path / "run"
    code, _, err = _main(capsys, [*argv, "--out", str(run)])
    assert code == 2 and err.count("\n") == 1, err
    assert "no space left on device at step 4; the checkpoint of step 2 is intact" in err
    assert read_config(run)["step"] == 2
    _only_one_checkpoint(run)
    monkeypatch.setattr(pathlib.Path, "write_bytes", real_write)
    assert main([*argv, "--out", str(run)]) == 0
    _only_one_checkpoint(run)
    assert _steps_logged(run) == _steps_logged(tmp_path / "unbroken")
    _assert_same_weights(run, tmp_path / "unbroken")


@pytest.fixture
def small_disk(tmp_path):
    """mount(kib) -> a real tmpfs of that size (root only; skipped elsewhere), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()

    def mount(kib, options=""):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k{options}", "tmpfs", str(mnt)],
                           capture_output=True)
        if r.returncode:
            pytest.skip("cannot mount a tmpfs here (needs root); test_full_disk_keeps_the_previous_checkpoint "
                        "simulates ENOSPC instead")
        return mnt

    yield mount
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_real_full_disk(tmp_path, text_corpus, capsys, small_disk):
    """A tmpfs with room for one checkpoint and a half: a later save fills it. One sentence, the previous
    checkpoint intact, nothing partial left; moved to a roomier disk, the same command finishes the run."""
    argv = ["train", "--corpus", text_corpus, "--steps", "8", "--ckpt-every", "2", *TINY]
    assert main([*argv, "--out", str(tmp_path / "unbroken")]) == 0
    folder = pathlib.Path(read_config(tmp_path / "unbroken")["folder"])
    pages = sum(-(-p.stat().st_size // 4096) for p in folder.rglob("*") if p.is_file())
    run = small_disk(pages * 4 * 3 // 2 + 8) / "run"
    code, _, err = _main(capsys, [*argv, "--out", str(run)])
    assert code == 2 and err.count("\n") == 1 and "no space left on device" in err, err
    kept = int(err.split("the checkpoint of step ")[1].split(" ")[0])
    assert read_config(run)["step"] == kept < 8
    _only_one_checkpoint(run)
    capsys.readouterr()
    shutil.copytree(run, tmp_path / "moved")
    assert main([*argv, "--out", str(tmp_path / "moved")]) == 0
    assert _steps_logged(tmp_path / "moved") == _steps_logged(tmp_path / "unbroken")
    _assert_same_weights(tmp_path / "moved", tmp_path / "unbroken")


def test_read_only_disk_is_refused_before_any_work(text_corpus, capsys, small_disk):
    disk = small_disk(64, ",ro")
    code, _, err = _main(capsys, ["train", "--corpus", text_corpus, "--steps", "2", "--out", str(disk / "run"), *TINY])
    assert code == 2 and err.count("\n") == 1 and "is not writable" in err, err


def _assert_same_weights(a, b):
    wa, wb = load_checkpoint(a)[0].state_dict(), load_checkpoint(b)[0].state_dict()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-5, atol=1e-7), k


# -- real interruptions: subprocesses killed with SIGKILL, then the same command again ----------------
WRAPPER = r"""
import os, pathlib, signal, sys, time
import torch
import neuro_lib.checkpoint as ck
from neuro_lib.cli import main

point, n = sys.argv[1], int(sys.argv[2])
calls = 0

def arm(owner, name, torn=False):
    orig = getattr(owner, name)
    def wrapped(*args, **kwargs):
        global calls
        calls += 1
        if point == "slow":
            time.sleep(n / 1000)
        elif point == "hold" and calls == n:  # hold step n until the test says go
            hold = pathlib.Path(os.environ["NEURO_TEST_HOLD"])
            hold.with_suffix(".held").touch()
            while not hold.with_suffix(".go").exists():
                time.sleep(0.02)
        elif calls == n:
            if torn:
                orig(args[0], args[1][: len(args[1]) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(*args, **kwargs)
    setattr(owner, name, wrapped)

if point in ("step", "slow", "hold"):
    arm(torch.optim.AdamW, "step")        # the n-th call: after backward, before the update
elif point == "fsync":
    arm(ck, "fsync_file")                 # inside a save, between two files
elif point == "pointer":
    arm(ck, "write_atomic")               # the n-th save: its folder complete, the pointer not swapped
elif point == "garbage":
    arm(ck, "collect_garbage")            # the n-th save: pointer swapped, the old folder still there
elif point == "torn":
    arm(pathlib.Path, "write_bytes", torn=True)  # half a file written
sys.exit(main(sys.argv[3:]))
"""
KILL_STEPS = "24"


def _train_cmd(corpus, out):
    return ["train", "--corpus", f"text:{corpus}", "--steps", KILL_STEPS, "--ckpt-every", "3", "--out", str(out),
            *TINY]


def _spawn(point, n, argv, **env):
    env = {**os.environ, "NEURO_PROGRESS": "off", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, "-c", WRAPPER, point, str(n), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _records(run):
    """metrics.jsonl without wall-clock fields: what an unbroken run and a resumed one must share."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "tokens_per_s", "eval_s")} for r in recs]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    root = tmp_path_factory.mktemp("unbroken")
    (root / "corpus.txt").write_bytes(ENGLISH)
    code, _, err = _finish(_spawn("none", 0, _train_cmd(root / "corpus.txt", root / "run")))
    assert code == 0, err
    return root


def _resume(unbroken, run):
    load_checkpoint(run)  # right after the kill the folder already holds one complete checkpoint
    return _spawn("none", 0, _train_cmd(unbroken / "corpus.txt", run))


def _compare(unbroken, run):
    _only_one_checkpoint(run)
    assert read_config(run)["step"] == int(KILL_STEPS)
    got, want = _records(run), _records(unbroken / "run")
    assert [(r["step"], r["kind"]) for r in got] == [(r["step"], r["kind"]) for r in want]  # no gap, no duplicate
    assert [r.get("loss", r.get("val_bpb")) for r in got] == pytest.approx(
        [r.get("loss", r.get("val_bpb")) for r in want], rel=1e-5)
    _assert_same_weights(run, unbroken / "run")


def _resume_and_compare(unbroken, run):
    code, _, err = _finish(_resume(unbroken, run))
    assert code == 0, err
    _compare(unbroken, run)


KILL_AT = {"mid-step": ("step", 12), "mid-save, between files": ("fsync", 15), "mid-save, half a file": ("torn", 7),
           "before the pointer swap": ("pointer", 4), "after the swap, before cleanup": ("garbage", 4)}


@pytest.mark.slow
def test_sigkill_then_same_command_equals_unbroken_run(unbroken, tmp_path):
    """Five runs killed at five moments (in parallel, to save wall clock), each resumed by the same command."""
    runs = {name: tmp_path / f"run{i}" for i, name in enumerate(KILL_AT)}
    killed = {name: _spawn(*KILL_AT[name], _train_cmd(unbroken / "corpus.txt", runs[name])) for name in KILL_AT}
    for name, proc in killed.items():
        code, _, err = _finish(proc)
        assert code == -signal.SIGKILL, (name, err)
    resumed = {name: _resume(unbroken, runs[name]) for name in KILL_AT}
    for name, proc in resumed.items():
        code, _, err = _finish(proc)
        assert code == 0, (name, err)
        _compare(unbroken, runs[name])


def _wait_for(predicate, proc, timeout=60):
    t0 = time.time()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


def _saved_step(run):
    try:
        return json.loads((run / "checkpoint.json").read_text())["step"]
    except (OSError, ValueError):
        return -1


@pytest.mark.slow
def test_sigkill_from_outside_mid_run(unbroken, tmp_path):
    run = tmp_path / "run"
    proc = _spawn("slow", 40, _train_cmd(unbroken / "corpus.txt", run))  # 40 ms a step: a target to hit
    _wait_for(lambda: _saved_step(run) >= 6, proc)
    proc.kill()
    assert _finish(proc)[0] == -signal.SIGKILL
    _resume_and_compare(unbroken, run)


@pytest.mark.slow
def test_two_trainers_then_sigterm_then_resume(unbroken, tmp_path):
    """A second trainer is refused naming the first; SIGTERM stops the first after its step and a save."""
    run, hold = tmp_path / "run", tmp_path / "hold"
    first = _spawn("hold", 8, _train_cmd(unbroken / "corpus.txt", run), NEURO_TEST_HOLD=str(hold))
    _wait_for(lambda: hold.with_suffix(".held").exists(), first)  # inside step 8, holding the lock
    code, _, err = _finish(_spawn("none", 0, _train_cmd(unbroken / "corpus.txt", run)))
    assert code == 2 and err.count("\n") == 1 and f"is in use by pid {first.pid} on " in err, err
    first.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    hold.with_suffix(".go").touch()
    code, _, err = _finish(first)
    assert code == 128 + signal.SIGTERM, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("neuro: stopped by SIGTERM at step 8; checkpoint saved in "), last
    assert last.endswith("run the same command again to resume"), last
    assert read_config(run)["step"] == 8
    _resume_and_compare(unbroken, run)


def test_lineage_refuses_a_changed_or_missing_parent(ws):
    """A child records its parent's id; changing or removing the parent makes the child refused."""
    from neuro_lib.checkpoint import check_lineage, checkpoint_id, lineage, parents_of, save_checkpoint
    from neuro_lib.errors import NeuroError

    parent = ws / "run"
    model, tok, _ = load_checkpoint(parent)
    child = ws / "child"
    save_checkpoint(child, model, tok, extra={"parent": lineage(parent, "finetune", steps=0)})
    cfg = check_lineage(child)
    assert parents_of(cfg)[0]["id"] == checkpoint_id(parent) and parents_of(cfg)[0]["method"] == "finetune"
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(parent, model, tok)  # the parent moves on: the child's task vector is stale
    with pytest.raises(NeuroError, match="has changed since"):
        check_lineage(child)
    shutil.rmtree(parent)
    with pytest.raises(NeuroError, match="missing or unreadable"):
        check_lineage(child)
