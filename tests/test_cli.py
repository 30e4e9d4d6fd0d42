"""Every CLI error path of issue 2 gets one sentence on stderr, exit 2, and leaves disk alone."""
import json

import pytest

from neuro_lib.cli import main

TINY = ["--model", "d_model=32", "n_layer=1", "n_head=2", "d_ff=64", "block_size=32"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(path):
    return {p.name: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def trained(tmp_path, text_corpus, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(capsys, "train", "--corpus", text_corpus, "--steps", "3", "--out", str(out), *TINY)
    assert code == 0 and "val bpb" in stdout
    return out


def test_train_eval_generate_happy_path(trained, text_corpus, capsys):
    assert {p.name for p in trained.iterdir()} == {"checkpoint.json", "ckpt-000002", "metrics.jsonl", ".lock"}
    assert {"config.json", "model.safetensors", "train_state.json", "train_state.safetensors", "tokenizer"} <= {
        p.name for p in (trained / "ckpt-000002").iterdir()}
    code, out, _ = _run(capsys, "eval", str(trained), "--corpus", text_corpus)
    assert code == 0 and json.loads(out)["bpb"] > 0
    code, out, _ = _run(capsys, "generate", str(trained), "--prompt", "The ", "--max-new-tokens", "5", "--seed", "1")
    assert code == 0 and out.startswith("The ")


def test_unknown_arch(tmp_path, text_corpus, capsys):
    code, _, err = _run(capsys, "train", "--arch", "nope", "--corpus", text_corpus, "--steps", "1",
                        "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown arch 'nope'" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_missing_and_empty_corpus(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--corpus", f"text:{tmp_path}/nope.txt", "--steps", "1", "--out",
                        str(tmp_path / "x"))
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty.txt").write_bytes(b"")
    code, _, err = _run(capsys, "train", "--corpus", f"text:{tmp_path}/empty.txt", "--steps", "1", "--out",
                        str(tmp_path / "x"))
    assert code == 2 and "empty" in err


@pytest.mark.parametrize("flag,value", [("--time-budget", "0"), ("--time-budget", "-5"), ("--steps", "0")])
def test_non_positive_budget(tmp_path, text_corpus, capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--corpus", text_corpus, flag, value, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "must be positive" in err and err.count("\n") == 1


def test_out_holding_another_run_is_untouched(trained, text_corpus, capsys):
    before = _snapshot(trained)
    code, _, err = _run(capsys, "train", "--corpus", text_corpus, "--steps", "3", "--out", str(trained),
                        "--model", "d_model=64", "n_layer=1", "n_head=2", "d_ff=64", "block_size=32")
    assert code == 2 and "holds another run" in err
    assert _snapshot(trained) == before


def test_out_holding_other_files(tmp_path, text_corpus, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = _run(capsys, "train", "--corpus", text_corpus, "--steps", "1", "--out", str(tmp_path), *TINY)
    assert code == 2 and "already holds other files" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_finished_run_is_not_rewritten(trained, text_corpus, capsys):
    before = _snapshot(trained)
    code, _, _ = _run(capsys, "train", "--corpus", text_corpus, "--steps", "3", "--out", str(trained), *TINY)
    assert code == 0 and _snapshot(trained) == before


def test_corrupt_checkpoint(trained, capsys):
    (trained / "ckpt-000002" / "model.safetensors").write_bytes(b"\x00garbage")
    code, _, err = _run(capsys, "generate", str(trained), "--prompt", "x")
    assert code == 2 and "corrupt" in err


def test_checkpoint_with_former_field_names_loads(trained, text_corpus, capsys):
    """A GPT checkpoint saved before the shared config vocabulary (n_embd, n_inner) and before versioned run
    folders (format 1: one flat folder, no hashes, no step) still evaluates."""
    folder = trained / "ckpt-000002"
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["n_embd"], cfg["model"]["n_inner"] = cfg["model"].pop("d_model"), cfg["model"].pop("d_ff")
    for key in ("files", "step"):
        del cfg[key]
    cfg["format"] = 1
    (folder / "config.json").write_text(json.dumps(cfg))
    code, out, _ = _run(capsys, "eval", str(folder), "--corpus", text_corpus)
    assert code == 0 and json.loads(out)["bpb"] > 0


def test_former_field_name_on_the_command_line(tmp_path, text_corpus, capsys):
    code, _, err = _run(capsys, "train", "--corpus", text_corpus, "--steps", "1", "--out", str(tmp_path / "x"),
                        "--model", "n_embd=32")
    assert code == 2 and "n_embd is now d_model" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_mismatched_checkpoint(trained, capsys):
    """An edited config.json: the run folder's pointer catches it; a checkpoint folder loaded alone, the weights."""
    folder = trained / "ckpt-000002"
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["d_model"] = 64
    (folder / "config.json").write_text(json.dumps(cfg))
    code, _, err = _run(capsys, "eval", str(trained))
    assert code == 2 and "does not match checkpoint.json" in err
    code, _, err = _run(capsys, "eval", str(folder))
    assert code == 2 and "does not match its config.json" in err


def test_not_a_checkpoint(tmp_path, capsys):
    code, _, err = _run(capsys, "eval", str(tmp_path))
    assert code == 2 and "not a checkpoint" in err
    (tmp_path / "config.json").write_text("{not json")
    code, _, err = _run(capsys, "eval", str(tmp_path))
    assert code == 2 and "corrupt" in err


def test_data_stats_and_doctor(text_corpus, capsys):
    code, out, _ = _run(capsys, "data", "stats", text_corpus)
    assert code == 0 and "val_bytes" in out
    code, out, _ = _run(capsys, "doctor")
    assert code == 0 and "torch" in out and "gpt" in out


def test_bench_lm_rejects_bad_budget(text_corpus, capsys):
    code, _, err = _run(capsys, "bench", "lm", "--corpus", text_corpus, "--time-budget", "0")
    assert code == 2 and "--time-budget must be positive" in err


def test_report_rejects_unknown_parameter(capsys):
    code, _, err = _run(capsys, "report", "--only", "00", "-p", "no_such_param", "1")
    assert code == 2 and "no_such_param" in err
