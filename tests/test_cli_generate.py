"""`neuro generate` with the engine's options: speculative (a draft run or n-grams), best-of-N, streaming,
and the bad-input errors (one sentence, exit 2)."""
from __future__ import annotations

import pytest

from neuro_lib.cli import main
from neuro_lib.infer.best_of_n import best_of_n
from neuro_lib.infer.engine import Engine, Sampling
from neuro_lib.models import build_model
from neuro_lib.tokenizers.base import train_tokenizer
from neuro_lib.tokenizers.byte import ByteTokenizer
from neuro_lib.checkpoint import save_checkpoint

from test_engine import TINY, tiny


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def runs(tmp_path):
    target = save_checkpoint(tmp_path / "target", tiny("gpt"), ByteTokenizer())
    draft = save_checkpoint(tmp_path / "draft", tiny("mamba", seed=1), ByteTokenizer())
    word = train_tokenizer("word:64", b"the cat sat on the mat " * 20)
    other = save_checkpoint(tmp_path / "word", build_model("gpt", **dict(TINY["gpt"], vocab_size=word.vocab_size)),
                            word)
    return target, draft, other


def test_speculative_and_plain_greedy_print_the_same(runs, capsys):
    target, draft, _ = runs
    common = ["generate", str(target), "--prompt", "ab ab ab ", "--max-new-tokens", "20", "--temperature", "0"]
    code, plain, _ = _run(capsys, *common)
    assert code == 0 and plain.startswith("ab ab ab ")
    for extra in (["--draft", str(draft), "--gamma", "3"], ["--draft", "ngram", "--adaptive"], ["--stream"],
                  ["--draft", "ngram", "--stream"]):
        code, out, err = _run(capsys, *common, *extra)
        assert code == 0 and out == plain, extra


def test_best_of_n_prints_the_most_likely_sample(runs, capsys):
    target, _, _ = runs
    code, out, _ = _run(capsys, "generate", str(target), "--prompt", "x", "--max-new-tokens", "6", "--best-of", "4",
                        "--seed", "3", "--temperature", "1.0", "--top-k", "0", "--top-p", "1.0")
    best = best_of_n(Engine(tiny("gpt"), ByteTokenizer()), "x", 4, Sampling(6, 1.0, 0, 1.0, seed=3)).best
    assert code == 0 and out == "x" + best.text.decode("utf-8", errors="replace") + "\n"


@pytest.mark.parametrize("extra,message", [
    (["--gamma", "0", "--draft", "ngram"], "--gamma must be at least 1"),
    (["--best-of", "0"], "--best-of must be at least 1"),
    (["--draft", "/nonexistent/run"], "does not exist"),
    (["--best-of", "2", "--stream"], "takes neither --draft nor --stream"),
])
def test_bad_input_is_one_sentence_and_exit_2(runs, capsys, extra, message):
    target, _, _ = runs
    code, out, err = _run(capsys, "generate", str(target), "--prompt", "x", *extra)
    assert code == 2 and message in err and err.startswith("neuro: error:") and err.count("\n") == 1 and not out


def test_draft_with_another_tokenizer_is_refused(runs, capsys):
    target, _, other = runs
    code, _, err = _run(capsys, "generate", str(target), "--prompt", "x", "--draft", str(other))
    assert code == 2 and "same one" in err and "word:64" in err
