"""environment.yml (conda route) lists the same packages as pyproject.toml; `make lab` opens as root."""
import os
import re
import shutil
import subprocess
import tomllib

import pytest

from neuro_lib.paths import REPO_ROOT as ROOT


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # the conda route installs everything: the base dependencies and every optional extra
    deps = project["dependencies"] + [d for extra in project.get("optional-dependencies", {}).values() for d in extra]
    yml = (ROOT / "environment.yml").read_text()
    pip_section = yml.split("- pip:", 1)[1]
    conda_pip = [line.strip()[2:] for line in pip_section.splitlines() if line.strip().startswith("- ")]
    assert sorted(map(_norm, conda_pip)) == sorted(map(_norm, deps))


def test_torch_is_pinned_to_the_cpu_wheel_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_installs_the_export_extra():
    out = subprocess.run(["make", "-n", "-B", "venv"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install -q -e '.[export]'" in out


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_allows_root_only_as_root():
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (line,) = [ln for ln in out.splitlines() if "jupyter lab notebooks" in ln]
    assert ("--allow-root" in line) == (os.getuid() == 0)
