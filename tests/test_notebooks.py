"""Notebook hygiene (DESIGN.md): saved stripped, python3 kernelspec, a typed parameters cell."""
import re

import nbformat
import papermill as pm
import pytest

from neuro_lib.workbook import CHECK_MARK, NOTEBOOK_DIR

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
PARAM_LINE = re.compile(r"^[a-z_][a-z0-9_]*: (int|float|str|bool) = .+  # \S.*$")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        if CHECK_MARK not in cell.source:
            assert not cell.outputs, f"{path.name}: unchecked cell saved with output: {cell.source[:60]!r}"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell not tagged parameters"
    lines = [ln for ln in first.source.splitlines() if ln.strip()]
    bad = [ln for ln in lines if not PARAM_LINE.match(ln)]
    assert not bad, f"{path.name}: parameter lines need `name: type = value  # help`: {bad}"
    declared = pm.inspect_notebook(str(path))
    assert declared["profile"]["default"] == '"smoke"' and "run_dir" in declared
