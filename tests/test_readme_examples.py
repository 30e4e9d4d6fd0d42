"""Every runtime example of the README (`neuro run`, `neuro json --prompt`, `neuro rag ask`) run as written, at the
smoke profile, through the real CLI and the real (cached) experts, checked against a gold answer written here:
the honest contract is `ok => right` (issue 21 item 7): an example either answers right or its result is not ok
(a non-zero exit, a refusal, an unverified or failed result). A wrong answer with exit 0 fails the test.

The README lines are read from README.md, so an example added there without a gold here fails
`test_every_readme_example_has_a_gold`. The experts are the smoke family's (pretrained and fine-tuned on first
use into data/cache/runtime/, then loaded); they are built once for the whole file (build_experts memoised),
as is the RAG index the `neuro rag ask` example reads (`neuro rag index` into a temporary runs/idx).

At smoke size no example answers right: they pass because their result is not ok (exit 1 failed, exit 3
unverified or abstained, a refusal) or their answer holds the gold.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest

from neuro_lib.bench.outside import final_output, is_refusal
from neuro_lib.cli import main
from neuro_lib.data.eval_sets import parse_number
from neuro_lib.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
EXAMPLE = re.compile(r"^(?:neuro init \S+ && )?neuro (?:run|json --schema|rag ask) .*")
KETTLE = {"name": "blue kettle", "price": 12, "currency": "USD"}


def readme_examples() -> list[str]:
    """The README's runtime example lines (the command, its trailing comment cut off)."""
    out = []
    for line in README.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if EXAMPLE.match(line) and '"..."' not in line:  # "..." is a placeholder, not a question
            out.append(re.split(r"\s{2,}#", line)[0].strip())
    return out


def answer_of(out: str) -> str:
    """`neuro run`'s answer: stdout up to the trace (which starts "route: ")."""
    lines = out.splitlines()
    cut = next((i for i, ln in enumerate(lines) if ln.startswith("route: ")), len(lines))
    return "\n".join(lines[:cut]).strip()


def number_is(gold):
    return lambda out: parse_number(answer_of(out)) == gold


def run_json_value(out: str):
    return json.loads(out).get("value")


def json_doc(out: str):
    """`neuro json`: the document (the repaired one when there is one)."""
    docs = []
    for line in out.splitlines():
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return docs[-1] if docs else None


def compound_right(out: str) -> bool:
    """The program and what it printed: a program line with print( and the final output 395."""
    text = answer_of(out)
    return "print(" in text and final_output(text).strip() == "395"


# the README line -> (gold check on stdout, a mark for this branch or None, a note)
GOLD = {
    'neuro run "A shop sells pens at 3 dollars each. How much do 17 pens cost?" --trace':
        (number_is(51), None),
    'neuro run "a blue kettle for 12 dollars" --json --schema product_v1 --format json':
        (lambda out: run_json_value(out) == KETTLE, None),
    'neuro run "compute 17 * 23 + 4, then write a python function that prints it" --trace-out trace.html':
        (compound_right, None),
    'neuro run "compute 48 / 4, then multiply it by 7" --graph expand --trace':
        (lambda out: parse_number(final_output(answer_of(out))) == 84, None),
    'neuro init myproject && neuro run --config myproject/neuro.yaml "what is 2 + 3?"':
        (number_is(5), None),
    'neuro json --schema product_v1 --prompt "The blue kettle costs \\$12."':
        (lambda out: json_doc(out) == KETTLE, None),
    'neuro rag ask runs/idx "What does queue.Queue.get do?"':
        (lambda out: "remove and return an item from the queue" in out.splitlines()[0].lower() if out.strip()
         else False, None),
}


def argvs(line: str) -> list[list[str]]:
    """A README line as the argument lists of its `neuro` commands (`a && b` is two)."""
    return [shlex.split(part.replace("\\$", "$"))[1:] for part in line.split("&&")]


def ok_of(argv: list[str], code: int, out: str) -> bool:
    """Did the command claim success? exit 0, and: a Result marked ok (--format json), a valid document
    (`neuro json`), not a refusal (`neuro rag ask`)."""
    if code != 0:
        return False
    if "--format" in argv and argv[argv.index("--format") + 1] == "json":
        return bool(json.loads(out).get("ok"))
    if argv[0] == "json":
        return "valid against" in out
    if argv[:2] == ["rag", "ask"]:
        return not is_refusal(out.splitlines()[0] if out.strip() else "")
    return True


@pytest.fixture(scope="module")
def shared_experts():
    """build_experts memoised for the module: every example reuses the same loaded smoke experts."""
    import neuro_lib.runtime.experts as experts_mod

    real, built = experts_mod.build_experts, {}

    def shared(profile, names=experts_mod.EXPERT_NAMES, callback=None):
        key = (profile.name, tuple(names))
        if key not in built:
            built[key] = real(profile, names, callback)
        return built[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experts_mod, "build_experts", shared)
        yield


@pytest.fixture(scope="module")
def rag_dir(tmp_path_factory):
    """The `neuro rag index` the README's `neuro rag ask runs/idx` reads, built once."""
    root = tmp_path_factory.mktemp("readme")
    assert main(["rag", "index", "--out", str(root / "runs" / "idx")]) == 0  # the default corpus, as the README
    return root


def test_every_readme_example_has_a_gold():
    found = readme_examples()
    assert found, "no runtime examples found in README.md"
    assert sorted(found) == sorted(GOLD)


@pytest.mark.slow  # under a minute with the smoke family cached; a fresh checkout trains it first
@pytest.mark.parametrize("line", [pytest.param(k, marks=[m] if m else [], id=k.split('"')[1][:40] or k[:40])
                                  for k, (_, m) in GOLD.items()])
def test_readme_example_is_right_or_not_ok(line, shared_experts, rag_dir, monkeypatch, capsys):
    check, _ = GOLD[line]
    monkeypatch.chdir(rag_dir)  # relative paths (runs/idx, trace.html, myproject) land in the temporary folder
    for name in ("trace.html", "myproject"):
        path = rag_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    *setup, argv = argvs(line)
    for a in setup:
        assert main(a) == 0
        capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    ok, right = ok_of(argv, code, out), check(out)
    assert right or not ok, f"{line!r} answered wrong with exit {code} and marked ok:\n{out}\n{err}"
    assert code in (0, 1, 3), err  # answered, failed, or unverified/abstained; never a usage error (2)
