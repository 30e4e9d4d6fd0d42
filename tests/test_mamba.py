"""Mamba: the chunked and compiled scans equal the sequential loop (outputs, final state, gradients) and
mambapy's parallel scan; the fused SSM equals the PyTorch composition; recurrent step() decoding equals
the full forward pass."""
import pytest
import torch

from neuro_lib.models import build_model
from neuro_lib.models.mamba import MambaConfig
from neuro_lib.models.scan_compiled import compiled_scan
from neuro_lib.models.scans import LOG_DECAY_FLOOR, SCANS, chunked_scan, selective_ssm, sequential_scan
from neuro_lib.models.ssm_fused import fused_ssm

TINY = dict(vocab_size=256, d_model=32, n_layer=2, d_state=4, expand=2, block_size=64)


def _inputs(L, B=2, E=6, N=4, low=-2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(B, L, E, N, generator=g) * low).requires_grad_()
    v = torch.randn(B, L, E, N, generator=g).requires_grad_()
    grad = torch.randn(B, L, E, N, generator=g)
    return a, v, grad


def _run(scan, a, v, grad, **kw):
    a_, v_ = a.detach().clone().requires_grad_(), v.detach().clone().requires_grad_()
    h = scan(a_, v_, **kw)
    h.backward(grad)
    return h.detach(), a_.grad, v_.grad


@pytest.mark.parametrize("L", [1, 7, 8, 9, 63, 130, 300])
@pytest.mark.parametrize("chunk,block", [(8, 128), (4, 16), (2, 8)])
def test_chunked_scan_matches_sequential(L, chunk, block):
    a, v, grad = _inputs(L)
    h1, ga1, gv1 = _run(sequential_scan, a, v, grad)
    h2, ga2, gv2 = _run(chunked_scan, a, v, grad, chunk=chunk, block=block)
    torch.testing.assert_close(h2, h1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h2[:, -1], h1[:, -1], rtol=1e-5, atol=1e-5)  # final state
    torch.testing.assert_close(ga2, ga1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gv2, gv1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("L", [1, 2, 9, 300])
@pytest.mark.parametrize("E,N", [(6, 4), (300, 5)])  # E*N = 1500 spans two of the kernel's channel tiles
def test_compiled_scan_matches_sequential(L, E, N):
    a, v, grad = _inputs(L, E=E, N=N)
    h1, ga1, gv1 = _run(sequential_scan, a, v, grad)
    h2, ga2, gv2 = _run(SCANS["compiled"], a, v, grad)
    torch.testing.assert_close(h2, h1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ga2, ga1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gv2, gv1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("L,E", [(1, 5), (37, 40)])  # E = 40 spans three channel tiles, the last one short
@pytest.mark.parametrize("with_h0", [False, True])
def test_fused_ssm_equals_the_pytorch_composition(L, E, with_h0):
    """The fused SSM gives the same y and last state, and the same gradients for x, Δ, A, B, C and h0,
    as building the log-decays and inputs in PyTorch and running the reference loop; some Δ·A are pushed
    below the floor so the clamp's zero gradient is exercised."""
    g = torch.Generator().manual_seed(1)
    B, N = 2, 4
    x, Bm, Cm = torch.randn(B, L, E, generator=g), torch.randn(B, L, N, generator=g), torch.randn(B, L, N, generator=g)
    dt = torch.rand(B, L, E, generator=g) * 0.5
    dt[0, 0, :3] = 40.0                                   # Δ·A far below LOG_DECAY_FLOOR
    A = -torch.rand(E, N, generator=g) - 0.1
    h0 = torch.randn(B, E, N, generator=g) if with_h0 else None
    gy, gh = torch.randn(B, L, E, generator=g), torch.randn(B, E, N, generator=g)
    results = []
    for kind in ("sequential", "fused"):
        inputs = [t.clone().requires_grad_() for t in (x, dt, A, Bm, Cm) + ((h0,) if with_h0 else ())]
        y, h_last = selective_ssm(kind, *inputs[:5], inputs[5] if with_h0 else None)
        torch.autograd.backward((y, h_last), (gy, gh))
        results.append([y.detach(), h_last.detach()] + [t.grad for t in inputs])
    for ref, got in zip(*results):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_compiled_kernels_reject_what_they_cannot_run_and_auto_falls_back():
    a, v, grad = _inputs(20)
    with pytest.raises(ValueError, match="float32 CPU"):
        compiled_scan(a.double(), v.double(), LOG_DECAY_FLOOR)
    g = torch.Generator().manual_seed(2)
    x, dt = torch.randn(2, 20, 6, generator=g, dtype=torch.float64), torch.rand(2, 20, 6, generator=g, dtype=torch.float64)
    A, Bm, Cm = -torch.rand(6, 4, dtype=torch.float64), torch.randn(2, 20, 4, dtype=torch.float64), torch.randn(2, 20, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="float32 CPU"):
        fused_ssm(x, dt, A, Bm, Cm, x.new_zeros(2, 6, 4), LOG_DECAY_FLOOR)
    y, h = selective_ssm("auto", x, dt, A, Bm, Cm)  # auto: float64 goes to a pure-PyTorch scan
    y_ref, h_ref = selective_ssm("sequential", x, dt, A, Bm, Cm)
    torch.testing.assert_close((y, h), (y_ref, h_ref))


@pytest.mark.parametrize("scan", ["chunked", "compiled"])
def test_fast_scans_strong_decay_stay_finite(scan):
    """Log-decays far below the floor (Δ·A ≈ -50 per step) must not overflow, and get no gradient."""
    a, v, grad = _inputs(100, low=-50.0)
    h1, ga1, gv1 = _run(sequential_scan, a, v, grad)
    h2, ga2, gv2 = _run(SCANS[scan], a, v, grad)
    assert torch.isfinite(h2).all() and torch.isfinite(ga2).all()
    torch.testing.assert_close(h2, h1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv2, gv1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ga2, ga1, rtol=1e-4, atol=1e-4)
    assert (ga2[a.detach() < LOG_DECAY_FLOOR] == 0).all()


@pytest.mark.parametrize("scan", ["chunked", "compiled"])
def test_fast_scans_match_mambapy_pscan(scan):
    pscan = pytest.importorskip("mambapy.pscan").pscan
    a, v, grad = _inputs(100, B=2, E=8, N=4)
    h1, ga1, gv1 = _run(SCANS[scan], a, v, grad)
    h2, ga2, gv2 = _run(lambda a, v: pscan(torch.exp(a), v), a, v, grad)
    torch.testing.assert_close(h1, h2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ga1, ga2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gv1, gv2, rtol=1e-4, atol=1e-4)


def test_chunk_argument_validated():
    a, v, _ = _inputs(4)
    with pytest.raises(ValueError, match="chunk"):
        chunked_scan(a, v, chunk=16)


def test_model_scans_agree_and_step_equals_forward():
    torch.manual_seed(0)
    model = build_model("mamba", **TINY).eval()
    x = torch.randint(0, 256, (2, 45))
    with torch.no_grad():
        full = model(x)  # "auto": the fused SSM here (float32 on the CPU)
        model.config.scan = "sequential"
        torch.testing.assert_close(model(x), full, rtol=1e-4, atol=1e-4)
        model.config.scan = "chunked"
        state = model.init_state(2)
        outs = []
        logits, state = model.step(x[:, :10], state)  # a multi-token prefill, then one token at a time
        outs.append(logits)
        for t in range(10, 45):
            logits, state = model.step(x[:, t:t + 1], state)
            outs.append(logits)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-4)


def test_model_gradients_agree_between_scans():
    torch.manual_seed(0)
    model = build_model("mamba", **TINY)
    x = torch.randint(0, 256, (2, 33))
    grads = []
    for scan in ("sequential", "chunked", "compiled", "fused"):
        model.zero_grad()
        model.config.scan = scan
        loss, _ = model.compute_loss({"tokens": x[:, :-1], "targets": x[:, 1:]})
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0], rtol=1e-4, atol=1e-5)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="scan"):
        MambaConfig(scan="blelloch")
    with pytest.raises(ValueError, match="d_model"):
        MambaConfig(d_model=0)
