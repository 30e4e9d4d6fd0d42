"""The tokenizer benchmark's measurements on tiny text, checked against hand-computed values."""
import argparse

from neuro_lib.bench import SUITES
from neuro_lib.bench.tokenizers import byte_fidelity, code_counts, documents, measure, pieces
from neuro_lib.tokenizers import ByteTokenizer, WordTokenizer

TEXT = b"the cat sat\nthe dog\n\nsat on the mat\n"


def test_documents_cover_the_text():
    assert b"".join(documents(TEXT)) == TEXT and len(documents(TEXT)) == 4


def test_byte_fidelity_counts_matched_bytes():
    assert byte_fidelity(b"abcdef", b"abcdef") == 6
    assert byte_fidelity(b"abcdef", b"abXdef") == 5
    assert byte_fidelity(b"abcdef", b"") == 0


def test_measure_byte_and_word():
    m = measure(ByteTokenizer(), TEXT)
    assert m["bytes_per_token"] == 1 and m["doc_roundtrip"] == 1 and m["byte_fidelity"] == 1
    word = WordTokenizer.train(b"the cat sat on the mat", 8)  # 4 specials + " the", "the", " cat", " sat"
    m = measure(word, TEXT)
    assert 0 < m["unk_rate"] < 1 and m["byte_fidelity"] < 1 and m["doc_roundtrip"] < 1
    assert b"".join(pieces(ByteTokenizer(), TEXT)) == TEXT
    counts = code_counts(word, TEXT)
    assert sum(counts) == len(word.encode(TEXT)) and counts == sorted(counts, reverse=True)


def test_suite_registered_and_runs(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(TEXT * 50)
    mod = SUITES["tokenizers"]
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    rep = mod.run(p.parse_args(["--corpus", f"text:{corpus}", "--kinds", "byte,word,bpe", "--sizes", "300"]))
    names = {r["name"] for r in rep["results"]}
    assert rep["suite"] == "tokenizers" and "bpe:300 bytes_per_token" in names and "word:300 unk_rate" in names
