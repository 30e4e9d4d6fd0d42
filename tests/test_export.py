"""neuro_lib/export: ONNX and torch.export parity, GGUF read-back, GGML quantisers against gguf.quants,
int8/int4 quantisation, the `neuro export` command. Tiny models (d_model 16-32). The ONNX exports take
seconds each, so those tests are marked slow."""
import numpy as np
import pytest
import torch

from neuro_lib.cli import main
from neuro_lib.models import build_model
from neuro_lib.models.scans import quadratic_scan, sequential_scan
from neuro_lib.tokenizers.byte import ByteTokenizer

V = 256  # the byte tokenizer's vocabulary, so the engine can decode the same models
CFGS = {"gpt": dict(vocab_size=V, d_model=32, n_layer=2, n_head=2, d_ff=64, block_size=96, dropout=0.0),
        "aeron": dict(vocab_size=V, d_model=32, n_head=4, n_kv_head=2, n_encoder_layer=0, n_decoder_layer=2, d_ff=64,
                      block_size=96, dropout=0.0),
        "mamba": dict(vocab_size=V, d_model=16, n_layer=2, d_state=4, expand=2, block_size=32)}


def tiny(arch, seed=0):
    torch.manual_seed(seed)
    return build_model(arch, **CFGS[arch]).eval()


# -- the loop-free scan -----------------------------------------------------------------------
@pytest.mark.parametrize("L", [1, 5, 33])
def test_quadratic_scan_equals_the_sequential_reference(L):
    g = torch.Generator().manual_seed(L)
    a = -torch.rand(2, L, 3, 4, generator=g) * 3
    a[0, L // 2] = -40.0  # below the clamp floor
    v = torch.randn(2, L, 3, 4, generator=g)
    torch.testing.assert_close(quadratic_scan(a, v), sequential_scan(a, v), atol=1e-5, rtol=1e-5)


# -- GGML quantisers against the gguf package's reference ------------------------------------
def _arrays():
    rng = np.random.default_rng(0)
    halves = (np.round(rng.normal(size=(4, 64)) * 8) / 2).astype(np.float32)  # ties at .5 after scaling
    zeros = np.zeros((2, 32), np.float32)
    mixed = rng.normal(size=(8, 96)).astype(np.float32)
    mixed[1, :32] = 0.0                   # an all-zero block among others
    mixed[2, :32] = -mixed[2, :32] ** 2    # the largest magnitude negative
    return [halves, zeros, mixed, (rng.normal(size=(3, 5, 64)) * 1e-4).astype(np.float32)]


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_our_quantised_bytes_equal_gguf_quants(qtype):
    gguf = pytest.importorskip("gguf")
    from gguf.quants import dequantize, quantize

    from neuro_lib.export.ggml import DEQUANTIZE, QUANTIZE

    t = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}[qtype]
    for x in _arrays():
        ours = QUANTIZE[qtype](x)
        ref = quantize(x, t)
        assert ours.dtype == np.uint8 and ours.shape == ref.shape
        assert np.array_equal(ours, ref)
        assert np.array_equal(DEQUANTIZE[qtype](ours), dequantize(ref, t))


def test_quantisation_error_bounds_and_bad_widths():
    from neuro_lib.export.ggml import quantize_q8_0, roundtrip

    x = np.random.default_rng(1).normal(size=(16, 64)).astype(np.float32)
    blocks = np.abs(x).reshape(-1, 32).max(1, keepdims=True)
    err8 = np.abs(roundtrip(x, "q8_0") - x).reshape(-1, 32)
    err4 = np.abs(roundtrip(x, "q4_0") - x).reshape(-1, 32)
    assert (err8 <= blocks / 127 * 0.5 + 1e-3 * blocks).all()   # half a step (+ the fp16 scale's rounding)
    assert (err4 <= blocks / 8 + 1e-3 * blocks).all()            # one step at the clipped top end
    assert err4.mean() > err8.mean()
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize_q8_0(np.zeros((2, 33), np.float32))


# -- GGUF -------------------------------------------------------------------------------------
def test_gguf_f32_reads_back_bit_exact_with_metadata_and_shape_order(tmp_path):
    gguf = pytest.importorskip("gguf")
    from neuro_lib.export.gguf_file import read_gguf, unique_state, write_gguf

    model, tok = tiny("gpt"), ByteTokenizer()
    path = write_gguf(model, tok, tmp_path / "m.gguf", "f32")
    reader = gguf.GGUFReader(str(path))
    assert reader.get_field("general.architecture").contents() == "neuro_gpt"
    assert reader.get_field("neuro_gpt.embedding_length").contents() == 32
    assert reader.get_field("neuro_gpt.block_count").contents() == 2
    assert reader.get_field("neuro_gpt.attention.head_count").contents() == 2
    assert reader.get_field("tokenizer.ggml.model").contents() == "byte"
    tokens = reader.get_field("tokenizer.ggml.tokens").contents()
    assert len(tokens) == V and tokens[65] == "A" and tokens[200].encode("latin-1") == bytes([200])
    state = unique_state(model)
    assert "lm_head.weight" not in state  # tied: the head is the embedding, stored once
    by_name = {t.name: t for t in reader.tensors}
    assert set(by_name) == set(state)
    for name, t in state.items():
        rt = by_name[name]
        assert rt.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(rt.shape) == list(reversed(t.shape))           # ggml order: innermost first
        assert np.array_equal(np.array(rt.data).reshape(t.shape), t.numpy())
        assert tuple(rt.data.shape) == tuple(t.shape)
    back, tok2, info = read_gguf(path)
    assert tok2.spec == "byte"
    x = torch.randint(0, V, (2, 20))
    assert torch.equal(back(x), model(x))


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_gguf_quantised_tensors_hold_the_reference_bytes(tmp_path, qtype):
    gguf = pytest.importorskip("gguf")
    from gguf.quants import quantize

    from neuro_lib.export.gguf_file import embedding_names, read_gguf, unique_state, write_gguf

    model = tiny("gpt")
    embeddings = embedding_names(model)
    assert embeddings == {"tok_emb.weight", "pos_emb.weight"}
    gtype = getattr(gguf.GGMLQuantizationType, qtype.upper())
    for q_emb in (True, False):
        path = write_gguf(model, ByteTokenizer(), tmp_path / f"m{q_emb}.gguf", qtype, quantize_embedding=q_emb)
        by_name = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
        for name, t in unique_state(model).items():
            rt = by_name[name]
            if name in embeddings and not q_emb or t.ndim < 2:
                assert rt.tensor_type == gguf.GGMLQuantizationType.F32
                continue
            assert rt.tensor_type == gtype
            assert list(rt.shape) == list(reversed(t.shape))
            assert np.array_equal(np.array(rt.data), quantize(t.numpy(), gtype))
        back, _, _ = read_gguf(path)
        x = torch.randint(0, V, (1, 16))
        diff = (back(x) - model(x)).abs().max().item()
        assert 0 < diff < (0.05 if qtype == "q8_0" else 0.5)


def test_gguf_reader_refuses_foreign_files(tmp_path):
    pytest.importorskip("gguf")
    from neuro_lib.errors import NeuroError
    from neuro_lib.export.gguf_file import read_gguf

    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(NeuroError):
        read_gguf(bad)


# -- torch.export -----------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["gpt", "aeron", "mamba"])
def test_pt2_round_trip_is_bit_exact(tmp_path, arch):
    from neuro_lib.export.graphs import Decode, Prefill
    from neuro_lib.export.pt2 import export_pt2, load_pt2

    model = tiny(arch)
    prefill, decode = load_pt2(export_pt2(model, tmp_path / "p"))
    pre_eager, dec_eager = Prefill(model), Decode(model)
    for T in (4, 11):
        x = torch.randint(0, V, (2, T))
        out = prefill.module()(x)
        ref = pre_eager(x)
        assert all(torch.equal(a, b) for a, b in zip(out, ref))
        if arch != "mamba":  # the same ops as forward(); Mamba's export runs the loop-free scan instead
            assert torch.equal(out[0], model(x))
        nxt = torch.randint(0, V, (2, 1))
        step = decode.module()(nxt, *out[1:])
        assert all(torch.equal(a, b) for a, b in zip(step, dec_eager(nxt, *out[1:])))
        torch.testing.assert_close(step[0][:, -1], model(torch.cat([x, nxt], 1))[:, -1], atol=1e-5, rtol=0)


# -- ONNX -------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["gpt", "aeron", "mamba"])
def onnx_export(request, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from neuro_lib.export.onnx import OnnxLM, export_onnx

    model = tiny(request.param)
    out = export_onnx(model, tmp_path_factory.mktemp(request.param))
    return request.param, model, out, OnnxLM(out, threads=1)


@pytest.mark.slow
def test_onnx_logits_match_eager_at_several_lengths(onnx_export):
    arch, model, _, lm = onnx_export
    for T in (1, 7, 30):  # one file, several prompt lengths: no shape fixed at trace time
        x = torch.randint(0, V, (2, T))
        logits, state = lm.prefill(x.numpy())
        assert np.abs(logits - model(x).detach().numpy()).max() <= 1e-4
        for past in (T,):  # decode continues the state of this length
            nxt = torch.randint(0, V, (2, 2))
            out, _ = lm.step(nxt.numpy(), state)
            ref = model(torch.cat([x, nxt], 1))[:, past:].detach().numpy()
            assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.slow
def test_onnx_decode_step_leaves_its_state_inputs_unchanged(onnx_export):
    arch, model, _, lm = onnx_export
    _, state = lm.prefill(np.random.default_rng(0).integers(0, V, (2, 5)))
    before = [s.copy() for s in state]
    _, new = lm.step(np.array([[3], [4]]), state)
    assert all(np.array_equal(a, b) for a, b in zip(state, before))   # no in-place cache or scan update
    assert not all(np.array_equal(a, b) for a, b in zip(new, before))
    if arch != "mamba":
        assert new[0].shape[2] == before[0].shape[2] + 1               # the KV cache grew by one position


@pytest.mark.slow
def test_onnx_greedy_64_tokens_equal_the_engine(onnx_export):
    from neuro_lib.infer.engine import Engine, Sampling

    arch, model, _, lm = onnx_export
    prompts = [[5, 9, 13, 2, 7, 1, 8, 3], [40, 41, 42, 43, 44, 45, 46, 47]]
    engine = Engine(model, ByteTokenizer())
    ref = [[], []]
    for tok in engine.stream(prompts, Sampling(max_new_tokens=64, temperature=0.0)):
        ref[tok.row].append(tok.id)
    assert lm.greedy(prompts, 64) == ref


@pytest.mark.slow
def test_onnx_file_holds_the_tied_embedding_once(onnx_export):
    import onnx
    from onnx import numpy_helper

    arch, model, out, _ = onnx_export
    emb = model.tok_emb.weight.detach().numpy()
    for name in ("prefill.onnx", "decode.onnx"):
        inits = [numpy_helper.to_array(t) for t in onnx.load(str(out / name)).graph.initializer]
        copies = [a for a in inits if a.shape in (emb.shape, emb.T.shape) and (np.array_equal(a, emb)
                                                                               or np.array_equal(a, emb.T))]
        assert len(copies) == 1
        assert sum(a.size for a in inits if a.dtype == np.float32) <= model.num_params() + 4096  # no duplicated weights


@pytest.mark.slow
def test_onnx_int8_dynamic_stays_close(onnx_export, tmp_path):
    from neuro_lib.export.onnx import OnnxLM, export_bytes, quantize_int8

    arch, model, out, lm = onnx_export
    if arch == "mamba":
        pytest.skip("one architecture is enough for the quantised copy")
    q = OnnxLM(quantize_int8(out, tmp_path / "q"), threads=1)
    x = np.random.default_rng(0).integers(0, V, (2, 12))
    ref = lm.logits(x)
    diff = np.abs(q.logits(x) - ref).max()
    assert 0 < diff < 0.1 * np.abs(ref).max() + 1e-2
    import onnx

    graph = onnx.load(str(tmp_path / "q" / "decode.onnx")).graph
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)        # int8 weights
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for n in graph.node)
    # at d_model 32 the scales, zero points and the float embedding outweigh the savings: no size claim here
    assert export_bytes(tmp_path / "q") > 0


# -- torch int8 / torchao ---------------------------------------------------------------------
def test_torch_dynamic_int8_is_close_and_smaller():
    from neuro_lib.export.quant import state_bytes, torch_dynamic_int8

    torch.manual_seed(0)
    model = build_model("gpt", vocab_size=64, d_model=128, n_layer=2, n_head=4, d_ff=512, block_size=32, dropout=0.0)
    q = torch_dynamic_int8(model.eval())
    x = torch.randint(0, 64, (2, 16))
    ref = model(x)
    diff = (q(x) - ref).abs().max().item()
    assert 0 < diff < 0.1 * ref.abs().max().item()
    assert state_bytes(q) < 0.6 * state_bytes(model)


@pytest.mark.parametrize("bits", [8, 4])
def test_torchao_weight_only(bits):
    pytest.importorskip("torchao")
    from neuro_lib.export.quant import torchao_status, torchao_weight_only

    ok, why = torchao_status()
    if not ok:
        pytest.skip(why)
    torch.manual_seed(0)
    model = build_model("gpt", vocab_size=64, d_model=64, n_layer=1, n_head=2, d_ff=128, block_size=32,
                        dropout=0.0).eval()
    q = torchao_weight_only(model, bits)
    x = torch.randint(0, 64, (2, 16))
    ref = model(x)
    diff = (q(x) - ref).abs().max().item()
    assert 0 < diff < (0.05 if bits == 8 else 0.5) * ref.abs().max().item()
    assert torch.equal(model(x), ref)  # the original is untouched


# -- the command --------------------------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path):
    from neuro_lib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "run", tiny("gpt"), ByteTokenizer())
    return tmp_path / "run"


def test_cli_export_gguf_and_refuses_to_overwrite(run_dir, tmp_path, capsys):
    pytest.importorskip("gguf")
    from neuro_lib.export.gguf_file import read_gguf

    out = tmp_path / "m.gguf"
    assert main(["export", str(run_dir), "--format", "gguf", "--quant", "q8_0", "--out", str(out)]) == 0
    model, tok, info = read_gguf(out)
    assert info["types"]["blocks.0.mlp.fc.weight"] == "Q8_0" and tok.spec == "byte"
    before = out.read_bytes()
    assert main(["export", str(run_dir), "--format", "gguf", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["export", str(run_dir), "--format", "gguf", "--out", str(out), "--force"]) == 0
    assert read_gguf(out)[2]["types"]["blocks.0.mlp.fc.weight"] == "F32"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("args, message", [
    (["--format", "gguf", "--quant", "int8"], "not offered for gguf"),
    (["--format", "pt2", "--quant", "q8_0"], "not offered for pt2"),
    (["--format", "gguf", "--out-suffix", ".bin"], "must end in .gguf"),
])
def test_cli_export_bad_requests_are_one_sentence(run_dir, tmp_path, capsys, args, message):
    out = tmp_path / "out.gguf"
    if "--out-suffix" in args:
        out = tmp_path / "out.bin"
        args = args[:2]
    assert main(["export", str(run_dir), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_export_pt2_folder(run_dir, tmp_path):
    from neuro_lib.export.pt2 import load_pt2

    out = tmp_path / "p"
    assert main(["export", str(run_dir), "--format", "pt2", "--out", str(out)]) == 0
    prefill, _ = load_pt2(out)
    x = torch.randint(0, V, (1, 6))
    assert torch.equal(prefill.module()(x)[0], tiny("gpt")(x))


@pytest.mark.slow
def test_bench_export_quality_rows_cover_every_format(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("gguf")
    from neuro_lib.bench.export import quality_rows

    torch.manual_seed(0)
    model = build_model("gpt", vocab_size=V, d_model=32, n_layer=1, n_head=2, d_ff=64, block_size=32,
                        dropout=0.0).eval()
    text = b"The quick brown fox jumps over the lazy dog. " * 30
    rows = {r["name"]: r for r in quality_rows(model, ByteTokenizer(), text, 32, 0, tmp_path)}
    for name in ("eager/fp32", "onnx/fp32", "onnx/int8-dynamic", "pt2/fp32", "gguf/f32", "gguf/q8_0",
                 "gguf/q8_0+f32-embedding", "gguf/q4_0", "gguf/q4_0+f32-embedding", "torch/int8-dynamic"):
        assert rows[name]["unit"] == "bpb" and rows[name]["bytes"] > 0, name
    assert rows["gguf/f32"]["bpb_delta_pct"] == 0 and rows["pt2/fp32"]["bpb_delta_pct"] == 0
    assert abs(rows["onnx/fp32"]["bpb_delta_pct"]) < 1e-3
    assert rows["gguf/q4_0"]["bytes"] < rows["gguf/q8_0"]["bytes"] < rows["gguf/f32"]["bytes"]
