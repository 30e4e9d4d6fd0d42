"""`neuro tool ...`: results on stdout, bad input as one sentence and exit 2; `neuro bench tools` runs."""
import json
from types import SimpleNamespace

from neuro_lib.bench import tools as bench_tools
from neuro_lib.cli import main


def test_calc(capsys):
    assert main(["tool", "calc", "2**10 / 3"]) == 0
    assert capsys.readouterr().out.strip() == repr(2**10 / 3)
    assert main(["tool", "calc", "().__class__", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert captured.err.startswith("neuro: error: Attribute is not allowed") and captured.err.count("\n") == 1


def test_run_and_fetch_bad_input(tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("print(40 + 2)")
    assert main(["tool", "run", str(script), "--timeout", "5", "--isolation", "process"]) == 0
    assert capsys.readouterr().out == "42\n"
    assert main(["tool", "run", str(tmp_path / "missing.py")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert main(["tool", "fetch", "http://127.0.0.1:9/", "--allow", "example.org"]) == 2
    assert capsys.readouterr().err == "neuro: error: host '127.0.0.1' is not in the allow-list (example.org)\n"


def test_bench_tools_smoke():
    report = bench_tools.run(SimpleNamespace(runs=2, calc_calls=50, fetches=2, no_hostile=True))
    names = [r["name"] for r in report["results"]]
    assert report["suite"] == "tools" and "calculator" in names and "sandbox start-up p50 (process)" in names
    assert all(r["value"] > 0 for r in report["results"])
