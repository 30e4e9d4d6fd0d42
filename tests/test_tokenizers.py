"""Byte, word and BPE tokenizers: round trips (hypothesis), parity with references
(a naive splitter, the HF library itself), specials/UNK, save/load, errors."""
import pytest
from hypothesis import given, settings, strategies as st

from neuro_lib.errors import NeuroError
from neuro_lib.tokenizers import (BPETokenizer, ByteTokenizer, WordTokenizer, load_tokenizer, parse_spec,
                                  train_tokenizer)
from neuro_lib.tokenizers.bpe import ALPHABET, _mapped_text
from neuro_lib.tokenizers.pretokenize import BPE, WORD, split
from neuro_lib.tokenizers.word import BOS, EOS, PAD, UNK

TEXT = (b"The quick brown fox jumps over the lazy dog.\n\n" * 20
        + b"Return the value of the named attribute of object; it's 42 (or 43).\n" * 20
        + "Caf\u00e9 na\u00efve \u2014 d\u00e9j\u00e0 vu!\n".encode() * 10
        + b"  indented    code(x, y):\n\treturn x + y\n" * 10)

INTERESTING = st.binary(max_size=300) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))
FEW_BYTES = st.lists(st.sampled_from(list(b"ab1 \n\t.'(\xc3\xff")), max_size=60).map(bytes)


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TEXT, 300)


@pytest.fixture(scope="module")
def word():
    return WordTokenizer.train(TEXT, 40)


# -- pre-tokenizer ---------------------------------------------------------------------------
def _ws(c):
    return c in b" \t\n\r\x0b\x0c"


def _cls(c):
    if c in b"0123456789":
        return "digit"
    if c >= 0x80 or chr(c).isalpha():
        return "letter"
    return "punct"


def reference_word_split(b: bytes) -> list[bytes]:
    """A naive scanner with the semantics WORD is meant to have."""
    out, i, n = [], 0, len(b)
    while i < n:
        start = i
        if b[i] == 32 and i + 1 < n and not _ws(b[i + 1]):
            i += 1  # a single space joins the piece that follows
        elif _ws(b[i]):
            j = i
            while j < n and _ws(b[j]):
                j += 1
            if j < n and j - i > 1:
                j -= 1  # a run followed by a non-space leaves its last character to the next piece
            out.append(b[i:j])
            i = j
            continue
        kind = _cls(b[i])
        i += 1
        while kind != "punct" and i < n and _cls(b[i]) == kind:
            i += 1
        out.append(b[start:i])
    return out


@settings(max_examples=300, deadline=None)
@given(FEW_BYTES | st.binary(max_size=100))
def test_word_split_matches_naive_reference(data):
    assert split(data, WORD) == reference_word_split(data)


@settings(max_examples=200, deadline=None)
@given(INTERESTING)
def test_pretokenizers_cover_every_byte(data):
    assert b"".join(split(data, WORD)) == data
    assert b"".join(split(data, BPE)) == data


# -- byte ------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(INTERESTING)
def test_byte_round_trip(data):
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(data)) == data


# -- BPE -------------------------------------------------------------------------------------
def test_bpe_alphabet_is_hf_byte_level():
    from tokenizers import pre_tokenizers

    assert len(set(ALPHABET)) == 256
    assert set(ALPHABET) == set(pre_tokenizers.ByteLevel.alphabet())


@settings(max_examples=200, deadline=None)
@given(INTERESTING)
def test_bpe_round_trips_any_bytes(bpe, data):
    ids = bpe.encode(data)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == data


@settings(max_examples=100, deadline=None)
@given(INTERESTING)
def test_bpe_encode_matches_hf_on_the_whole_string(bpe, data):
    """The piece cache must not change what HF would produce."""
    expect = bpe.hf.encode(_mapped_text(data)).ids if data else []
    assert bpe.encode(data) == expect


def test_bpe_invalid_utf8_and_str_input(bpe):
    raw = b"\xff\xfe\x80 lone \xc3 byte \xed\xa0\x80"
    assert bpe.decode(bpe.encode(raw)) == raw
    assert bpe.decode(bpe.encode("d\u00e9j\u00e0 vu")) == "d\u00e9j\u00e0 vu".encode()


def test_bpe_learns_merges(bpe):
    assert bpe.vocab_size == 300 and bpe.spec == "bpe:300"
    assert len(bpe.encode(TEXT)) < len(TEXT) / 1.5  # 44 merges already compress repetitive text


def test_bpe_save_load(bpe, tmp_path):
    bpe.save(tmp_path / "t")
    again = load_tokenizer(tmp_path / "t")
    assert isinstance(again, BPETokenizer) and again.spec == bpe.spec
    assert again.encode(TEXT) == bpe.encode(TEXT) and again.fingerprint() == bpe.fingerprint()
    assert (tmp_path / "t" / "bpe.json").is_file()


def test_bpe_errors(tmp_path, word):
    with pytest.raises(NeuroError, match="smaller than the 256-byte"):
        train_tokenizer("bpe:100", TEXT)
    with pytest.raises(NeuroError, match="empty corpus"):
        train_tokenizer("bpe:300", b"")
    with pytest.raises(NeuroError, match="needs a vocabulary size"):
        train_tokenizer("bpe", TEXT)
    word.save(tmp_path / "w")
    with pytest.raises(NeuroError, match="holds a 'word' tokenizer, not a 'bpe' one"):
        BPETokenizer.load(tmp_path / "w")
    with pytest.raises(NeuroError, match="outside the vocabulary"):
        BPETokenizer.train(TEXT, 256).decode([256])


# -- word ------------------------------------------------------------------------------------
def test_word_specials_and_cap(word):
    assert word.vocab_size == 40 and word.spec == "word:40"
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    ids = word.encode(b" the", add_bos_eos=True)
    assert ids[0] == BOS and ids[-1] == EOS
    assert word.decode([PAD, BOS, EOS]) == b""
    assert word.decode([UNK]) == "\ufffd".encode()


def test_word_unk_and_exact_whitespace(word):
    known = b"The quick fox.\n\nThe dog"
    assert UNK not in word.encode(known)
    assert word.decode(word.encode(known)) == known
    ids = word.encode(b"the zebra")
    assert UNK in ids and word.unk_rate(ids) > 0
    assert word.decode(ids) != b"the zebra"


def test_word_space_fallback():
    tok = WordTokenizer.train(b"dog dog dog\n cat", 10)
    ids = tok.encode(b" dog")  # " dog" never occurs in training, "dog" and " " do
    assert UNK not in ids and tok.decode(ids) == b" dog"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([b"The", b" quick", b" fox", b".", b"\n\n", b" ", b"  "]), max_size=30))
def test_word_round_trips_without_unk(word, parts):
    data = b"".join(parts)
    ids = word.encode(data)
    if UNK not in ids:
        assert word.decode(ids) == data


def test_word_most_frequent_pieces_win():
    tok = WordTokenizer.train(b"a a a a b b c", 6)  # 4 specials + 2 pieces
    assert tok.pieces == [b" a", b" b"]


def test_word_save_load_and_errors(word, tmp_path, bpe):
    word.save(tmp_path / "w")
    again = load_tokenizer(tmp_path / "w")
    assert again.encode(TEXT) == word.encode(TEXT) and again.fingerprint() == word.fingerprint()
    with pytest.raises(NeuroError, match="no room"):
        train_tokenizer("word:4", TEXT)
    with pytest.raises(NeuroError, match="empty corpus"):
        WordTokenizer.train(b"", 100)
    bpe.save(tmp_path / "b")
    with pytest.raises(NeuroError, match="not a 'word' one"):
        WordTokenizer.load(tmp_path / "b")
    with pytest.raises(NeuroError, match="outside the vocabulary"):
        word.decode([10_000])


def test_specs_and_registry():
    assert parse_spec("word:8192") == ("word", 8192) and parse_spec("vq:4096") == ("vq", 4096)
    with pytest.raises(NeuroError, match="unknown tokenizer"):
        parse_spec("sentencepiece:10")
