"""profiles.py: every profile constructs with every typed section, a misspelt key fails when the module is
imported (not at the first read), and the profile is resolved only at the doors."""
import ast
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

import pytest

import neuro_lib
from neuro_lib import profiles
from neuro_lib.errors import NeuroError
from neuro_lib.profiles import PROFILES, Profile, RagSizes, Tasks, get_profile

SOURCE = Path(profiles.__file__).read_text()


def _check_typed(obj, cls, where: str) -> None:
    """`obj` is a `cls`, and each of its dataclass-typed fields is, recursively."""
    assert isinstance(obj, cls), f"{where} is a {type(obj).__name__}, not a {cls.__name__}"
    for name, hint in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(hint):
            _check_typed(getattr(obj, name), hint, f"{where}.{name}")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_constructs_with_every_section(name):
    p = get_profile(name)
    assert p.name == name
    _check_typed(p, Profile, name)
    assert {f.name for f in dataclasses.fields(Tasks)} == set(vars(p.tasks))
    for f in dataclasses.fields(Tasks):
        section = getattr(p.tasks, f.name)
        assert dataclasses.replace(section) == section  # its own fields are its constructor's arguments
        json.dumps(dataclasses.asdict(section))  # records (bench reports, run folders) store sections as JSON
    for arch in p.models:
        assert p.train_sizes(arch).batch_size > 0 and p.model(arch) is not p.models[arch]  # a fresh copy


def _import(source: str, monkeypatch) -> None:
    """Run `source` as a fresh module (dataclasses look their module up in sys.modules)."""
    module = types.ModuleType("profiles_under_test")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, "profiles.py", "exec"), module.__dict__)


def test_a_misspelt_key_fails_at_import(monkeypatch):
    """profiles.py with one key misspelt (`steps` -> `step` in the smoke struct_mini section) does not import."""
    good = "struct_mini=replace(STRUCT_MINI, steps=12,"
    assert SOURCE.count(good) == 1
    with pytest.raises(TypeError, match="step"):
        _import(SOURCE.replace(good, good.replace("steps=12", "step=12")), monkeypatch)
    _import(SOURCE, monkeypatch)  # the file as it is imports


def test_a_misspelt_key_fails_loudly_at_construction_and_read():
    rag = get_profile("smoke").tasks.rag
    with pytest.raises(TypeError, match="chunk_byte"):
        dataclasses.replace(rag, chunk_byte=300)
    with pytest.raises(TypeError, match="chunk_byte"):
        RagSizes(**{**dataclasses.asdict(rag), "chunk_byte": 300})
    with pytest.raises(AttributeError, match="chunk_byte"):
        rag.chunk_byte  # noqa: B018 - the read itself is the test
    with pytest.raises(dataclasses.FrozenInstanceError):
        rag.chunk_bytes = 1  # profiles are shared constants: nobody edits one in place
    with pytest.raises(TypeError, match="export"):
        Tasks(**{f.name: getattr(get_profile("smoke").tasks, f.name) for f in dataclasses.fields(Tasks)
                 if f.name != "export"})  # a profile without a section


def test_unknown_profile_is_one_sentence():
    with pytest.raises(NeuroError, match="unknown profile 'huge'; choose one of"):
        get_profile("huge")


# where the profile may be resolved by name: the command line, the workbook, the runtime's settings, and each
# bench suite's run(args); everywhere else the library takes the Profile or one of its sections
DOORS = {"neuro_lib/cli.py", "neuro_lib/workbook.py", "neuro_lib/runtime/config.py", "neuro_lib/profiles.py"}


def _calls(tree) -> set[int]:
    return {n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "get_profile"}


def test_get_profile_is_called_only_at_the_doors():
    root = Path(neuro_lib.__file__).parent
    outside = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if rel in DOORS or rel.startswith("neuro_lib/commands/"):
            continue
        tree = ast.parse(path.read_text())
        allowed = set()
        if rel.startswith("neuro_lib/bench/"):  # a suite's run(args) is its door
            for func in ast.walk(tree):
                if isinstance(func, ast.FunctionDef) and func.name == "run":
                    allowed |= _calls(func)
        outside += [f"{rel}:{line}" for line in sorted(_calls(tree) - allowed)]
    assert outside == []
