import pytest
import torch

from neuro_lib.errors import NeuroError
from neuro_lib.infer.engine import generate
from neuro_lib.infer.sampling import filter_logits, next_token_probs
from neuro_lib.models import build_model
from neuro_lib.tokenizers import ByteTokenizer


def test_shapes(tiny_gpt_cfg):
    m = build_model("gpt", **tiny_gpt_cfg)
    logits = m(torch.randint(0, 256, (3, 17)))
    assert logits.shape == (3, 17, 256)


@pytest.mark.parametrize("arch", ["gpt", "nanogpt"])  # nanogpt: the recipe bench's baseline (models/nanogpt.py)
@pytest.mark.parametrize("chunks", [[20], [1] * 20, [7, 1, 1, 5, 6], [13, 7]])
def test_kv_cache_decoding_equals_full_forward(tiny_gpt_cfg, chunks, arch):
    torch.manual_seed(0)
    m = build_model(arch, **tiny_gpt_cfg).eval()
    x = torch.randint(0, 256, (2, sum(chunks)))
    full = m(x)
    assert full.shape == (2, sum(chunks), 256)
    state, outs, i = m.init_state(2), [], 0
    for n in chunks:
        logits, state = m.step(x[:, i:i + n], state)
        outs.append(logits)
        i += n
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_tied_embeddings_share_storage(tiny_gpt_cfg):
    m = build_model("gpt", **tiny_gpt_cfg)
    assert m.lm_head.weight.data_ptr() == m.tok_emb.weight.data_ptr()


def test_sequence_longer_than_block_is_rejected(tiny_gpt_cfg):
    m = build_model("gpt", **tiny_gpt_cfg)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 33, dtype=torch.long))


def test_invalid_config_rejected():
    with pytest.raises(NeuroError, match="divisible"):
        build_model("gpt", d_model=30, n_head=4)
    with pytest.raises(NeuroError, match="no field"):
        build_model("gpt", n_embed=30)


def test_top_k_and_top_p_filtering():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    k2 = filter_logits(logits, top_k=2)
    assert torch.isfinite(k2).tolist() == [[True, True, False, False]]
    p = filter_logits(logits, top_p=0.7)  # 0.5 + 0.3 reaches 0.7: keep two
    assert torch.isfinite(p).tolist() == [[True, True, False, False]]
    p = filter_logits(logits, top_p=0.9)  # needs the third
    assert torch.isfinite(p).tolist() == [[True, True, True, False]]
    assert next_token_probs(logits, temperature=0).argmax().item() == 0 == logits.argmax().item()


def test_generate_is_seeded_and_honours_stop(tiny_gpt_cfg):
    torch.manual_seed(0)
    m = build_model("gpt", **tiny_gpt_cfg)
    tok = ByteTokenizer()
    a = generate(m, tok, "ab", max_new_tokens=50, temperature=1.0, seed=3)
    b = generate(m, tok, "ab", max_new_tokens=50, temperature=1.0, seed=3)
    assert a == b and len(a) == 50  # also runs past block_size=32 (re-prefill path)
    stop = a[10:12]
    cut = generate(m, tok, "ab", max_new_tokens=50, temperature=1.0, seed=3, stop=[stop])
    assert stop not in cut and a.startswith(cut) and len(cut) <= 10
