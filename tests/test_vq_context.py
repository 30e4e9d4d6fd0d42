"""The VQ tokenizer's contextual decoder: windows and shapes, it starts as the per-patch decoder,
it recovers patches that share a code from their neighbours, bad ids are refused."""
import pytest
import torch

from neuro_lib.errors import NeuroError
from neuro_lib.tokenizers import VQTokenizer
from neuro_lib.tokenizers.vq import VQConfig, VQVAE, to_tensor, patches_of
from neuro_lib.tokenizers.vq_context import (ContextConfig, ContextDecoder, ContextTrainConfig, fit_context,
                                              train_context_decoder)

SMALL = ContextConfig(window=1, d_ctx=16, d_hidden=64)


def untrained(K=16):
    torch.manual_seed(0)
    return VQTokenizer(VQVAE(VQConfig(codebook_size=K, patch_len=4, d_byte=8, d_hidden=32, d_code=8)))


def test_windows_pad_with_the_boundary_id_and_logits_have_patch_shape():
    tok = untrained()
    ctx = ContextDecoder(tok.model, SMALL)
    win = ctx.windows(torch.tensor([3, 5, 7]))
    assert win.tolist() == [[16, 3, 5], [3, 5, 7], [5, 7, 16]]
    assert ctx(win).shape == (3, 4, 257)


def test_untrained_context_decoder_equals_the_per_patch_decoder():
    tok = untrained()
    lossy, ctx = tok.lossy(), tok.contextual(ContextDecoder(tok.model, SMALL))
    text = b"the cat sat on the mat, 42 times."
    ids = lossy.encode(text)
    assert ctx.encode(text) == ids                 # same codes: bytes/token unchanged
    assert ctx.decode(ids) == lossy.decode(ids)    # zero residual: decodes as the per-patch decoder
    assert ctx.decode([]) == b""


def test_context_recovers_patches_that_share_a_code():
    # three patches, two codes: " ab" -> 0, " cd" and " ef" -> 1. A per-patch decoder returns one patch
    # for code 1; in the repeating text the neighbours say which one it is, and the decoder learns it
    tok = untrained()
    ctx = ContextDecoder(tok.model, ContextConfig(window=1, d_ctx=16, d_hidden=64))
    codes = torch.tensor([0, 1, 1] * 20)
    targets = to_tensor([b" ab", b" cd", b" ef"] * 20, 4)
    fit_context(ctx, ctx.windows(codes), targets, ContextTrainConfig(steps=60, batch_size=32, lr=1e-2, warmup_steps=2))
    assert ctx.decode([0, 1, 1, 0, 1, 1, 0]) == b" ab cd ef ab cd ef ab"
    per_patch = tok.lossy().decode([0, 1, 1])
    assert per_patch[-len(per_patch) // 2:] != b" cd ef"   # one code, one patch: it cannot do this


def test_escape_ids_and_empty_text_refused():
    tok = untrained()
    ctx = ContextDecoder(tok.model, SMALL)
    with pytest.raises(NeuroError, match="no escapes"):
        ctx.decode([tok.K + 65])
    with pytest.raises(NeuroError, match="empty text"):
        train_context_decoder(tok, b"", steps=1)


def test_training_keeps_the_vq_frozen():
    tok = untrained()
    before = {k: v.clone() for k, v in tok.model.state_dict().items()}
    train_context_decoder(tok, b"some text to read in context " * 5, config=SMALL,
                          train={"steps": 3, "batch_size": 8})
    after = tok.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert to_tensor(patches_of(b"ab", 4), 4).shape == (1, 4)
