import pytest

from neuro_lib.bench.compressors import compressor_anchors
from neuro_lib.data.corpus import VAL_FRACTION, corpus_stats, load_corpus
from neuro_lib.errors import NeuroError


def test_split_is_contiguous_last_ten_percent(tmp_path):
    p = tmp_path / "c.bin"
    p.write_bytes(bytes(range(256)) * 4 + b"\xff\xfe invalid utf-8")
    c = load_corpus(f"text:{p}")
    assert c.train + c.val == c.data
    assert len(c.val) == len(c.data) - int(len(c.data) * (1 - VAL_FRACTION))
    assert corpus_stats(c)["valid_utf8"] is False


def test_stdlib_docs_is_deterministic_and_large():
    a, b = load_corpus("stdlib-docs"), load_corpus("stdlib-docs")
    assert a.sha256 == b.sha256 and len(a.data) >= 2_000_000
    a.data.decode("utf-8")  # English prose, valid UTF-8


def test_bad_corpus_specs(tmp_path):
    with pytest.raises(NeuroError, match="does not exist"):
        load_corpus(f"text:{tmp_path}/missing.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(NeuroError, match="empty"):
        load_corpus(f"text:{tmp_path}/empty.txt")
    with pytest.raises(NeuroError, match="unknown corpus"):
        load_corpus("wikipedia")


def test_compressor_anchors_reward_context():
    train = b"the same sentence again and again. " * 200
    val = b"the same sentence again and again. " * 20
    anchors = compressor_anchors(train, val)
    assert set(anchors) == {"gzip -9", "bz2 -9", "xz -9e"}
    assert all(v < 1.0 for v in anchors.values())  # val is predictable from train
