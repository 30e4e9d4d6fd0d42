"""VQ-VAE tokenizer: lossless mode is exact on any bytes (trained or not), the lossless
search agrees with running the network, lossy mode is one code per patch, save/load,
errors, and the language-model path (get_tokenizer -> train_lm) for every kind."""
import json

import pytest
import torch
from hypothesis import given, settings, strategies as st

from neuro_lib.data.corpus import Corpus
from neuro_lib.errors import NeuroError
from neuro_lib.tokenizers import BPETokenizer, VQTokenizer, load_tokenizer, train_tokenizer
from neuro_lib.tokenizers.vq import VQConfig, VQVAE, from_symbols, patches_of, to_tensor
from neuro_lib.profiles import get_profile

TEXT = (b"The quick brown fox jumps over the lazy dog. " * 30
        + b"Return the value of the named attribute of object.\n" * 30
        + "na\u00efve caf\u00e9\n".encode() * 10)
TINY = dict(patch_len=6, d_byte=8, d_hidden=64, d_code=16)
ANY_BYTES = st.binary(max_size=200) | st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    return VQTokenizer.train(TEXT, 32, train={"steps": 150, "batch_size": 128, "lr": 1e-2, "warmup_steps": 5, "log_every": 10},
                             **TINY)


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return VQTokenizer(VQVAE(VQConfig(codebook_size=16, **TINY)))


@settings(max_examples=150, deadline=None)
@given(ANY_BYTES)
def test_lossless_round_trip_untrained(untrained, data):
    ids = untrained.encode(data)
    assert all(0 <= i < untrained.vocab_size for i in ids)
    assert untrained.decode(ids) == data


@settings(max_examples=150, deadline=None)
@given(ANY_BYTES)
def test_lossless_round_trip_trained(trained, data):
    assert trained.decode(trained.encode(data)) == data


def test_invalid_utf8(trained):
    raw = b"\xff\xfe\x80 the \xc3 fox \xed\xa0\x80" + TEXT[:100]
    assert trained.decode(trained.encode(raw)) == raw


def test_vocab_includes_escapes(trained):
    assert trained.vocab_size == 32 + 256 and trained.spec == "vq:32"
    ids = trained.encode(b"\x00\x01")  # bytes never seen in training: escapes
    assert all(trained.is_escape(i) for i in ids) and trained.decode(ids) == b"\x00\x01"


def test_lossless_codes_agree_with_the_network(trained):
    """Every code emitted in lossless mode is what the encoder picks for that patch, and
    the decoder gives the patch back: the precomputed search is the network's answer."""
    ids = trained.encode(TEXT)
    codes = [i for i in ids if not trained.is_escape(i)]
    assert codes, "training should make some codes exact"
    patches = [trained.decode([c]) for c in codes]
    again = trained.model.encode_patches(to_tensor(patches, trained.L)).tolist()
    assert again == codes
    back = [from_symbols(r) for r in trained.model.decode_codes(torch.tensor(codes)).tolist()]
    assert back == patches


def test_training_compresses_and_tracks_the_codebook(trained):
    ids = trained.encode(TEXT)
    assert len(ids) < len(TEXT) / 1.5
    last = trained.history[-1]
    assert {"recon", "commit", "perplexity", "codes_in_batch", "patch_acc", "restarted"} <= set(last)
    assert last["recon"] < trained.history[0]["recon"]


def test_lossy_mode_one_code_per_patch(trained):
    lossy = trained.lossy()
    ids = lossy.encode(TEXT)
    assert len(ids) == len(patches_of(TEXT, trained.L))
    assert all(0 <= i < trained.K for i in ids)
    assert trained.lossless and not lossy.lossless  # the original is untouched


def test_save_load(trained, tmp_path):
    trained.save(tmp_path / "vq")
    again = load_tokenizer(tmp_path / "vq")
    assert isinstance(again, VQTokenizer)
    assert again.encode(TEXT) == trained.encode(TEXT) and again.fingerprint() == trained.fingerprint()
    assert again.history == trained.history
    meta = json.loads((tmp_path / "vq" / "tokenizer_meta.json").read_text())
    assert meta["vocab_size"] == 288 and meta["config"]["codebook_size"] == 32


def test_errors(trained, tmp_path):
    with pytest.raises(NeuroError, match="empty corpus"):
        train_tokenizer("vq:32", b"")
    with pytest.raises(NeuroError, match="at least 2 codes"):
        train_tokenizer("vq:1", TEXT)
    BPETokenizer.train(TEXT, 260).save(tmp_path / "bpe")
    with pytest.raises(NeuroError, match="not a 'vq' one"):
        VQTokenizer.load(tmp_path / "bpe")
    trained.save(tmp_path / "vq")
    (tmp_path / "vq" / "vq_model.safetensors").write_bytes(b"not weights")
    with pytest.raises(NeuroError, match="does not hold"):
        VQTokenizer.load(tmp_path / "vq")
    with pytest.raises(NeuroError, match="outside the vocabulary"):
        trained.decode([trained.vocab_size])


@pytest.mark.parametrize("spec", ["word:64", "bpe:300", "vq:32"])
def test_language_model_trains_on_each_tokenizer(spec, tmp_path, monkeypatch):
    from neuro_lib.data import batching
    from neuro_lib.train import lm

    monkeypatch.setattr(lm, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(batching, "CACHE_DIR", tmp_path / "cache")
    corpus = Corpus("test", TEXT * 2)
    tok_train = {"vq": {"train": {"steps": 10, "batch_size": 32}, **TINY}}
    res = lm.train_lm("gpt", corpus, tokenizer=spec, profile=get_profile("smoke"),
                      model_overrides=dict(d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=32),
                      train_overrides=dict(max_steps=3, batch_size=4, block_size=32, eval_bytes=600),
                      tokenizer_train=tok_train)
    assert res.tokenizer.spec == spec
    assert res.model.config.vocab_size == res.tokenizer.vocab_size
    assert res.val_bpb == res.val_bpb and res.val_bpb > 0  # finite, per byte
    cached = list((tmp_path / "cache" / "tokenizers").iterdir())
    assert len(cached) == 1 and load_tokenizer(cached[0]).spec == spec
