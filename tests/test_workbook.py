"""The report runner on two tiny notebooks: one passes, one fails; both get HTML and an index."""
import json

import nbformat
import pytest

from neuro_lib.errors import NeuroError
from neuro_lib.workbook import run_workbook, strip_notebook


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile: str = "smoke"  # sizes\nrun_dir: str = ""  # output folder')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture
def books(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    _notebook(d / "00_ok.ipynb", "import json, pathlib\n"
              "pathlib.Path(run_dir, 'metrics.json').write_text(json.dumps({'answer': 42, 'profile': profile}))")
    _notebook(d / "01_broken.ipynb", "raise RuntimeError('deliberate failure')")
    return d


def test_runner_keeps_going_and_reports_failures(books, tmp_path):
    failures = run_workbook(profile="smoke", jobs=2, out_root=tmp_path / "runs", notebook_dir=books)
    assert failures == ["01_broken"]
    (run,) = list((tmp_path / "runs").iterdir())
    assert run.name.endswith("-smoke")
    ok, broken = run / "00_ok", run / "01_broken"
    assert json.loads((ok / "metrics.json").read_text()) == {"answer": 42, "profile": "smoke"}
    assert json.loads((ok / "parameters.json").read_text())["profile"] == "smoke"
    assert "git" in json.loads((ok / "environment.json").read_text())
    assert (ok / "00_ok.html").exists() and (broken / "01_broken.html").exists()
    assert "deliberate failure" in (broken / "01_broken.ipynb").read_text()  # traceback kept
    index = (run / "index.html").read_text()
    assert "00_ok/00_ok.html" in index and "failed" in index and "<td>answer</td><td>42</td>" in index


def test_runner_rejects_unknown_parameters_before_running(books, tmp_path):
    with pytest.raises(NeuroError, match="no parameter"):
        run_workbook(params={"colour": "red"}, out_root=tmp_path / "runs", notebook_dir=books)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(NeuroError, match="no notebook matches"):
        run_workbook(only=["07"], out_root=tmp_path / "runs", notebook_dir=books)


def test_strip_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    drop = nbformat.v4.new_code_cell("print(2)", execution_count=2,
                                     outputs=[nbformat.v4.new_output("stream", text="2\n")])
    nb.cells = [keep, drop]
    strip_notebook(nb)
    assert keep.outputs and keep.execution_count == 1
    assert drop.outputs == [] and drop.execution_count is None
    assert nb.metadata["kernelspec"]["name"] == "python3"
