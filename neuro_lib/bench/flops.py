"""Training FLOPs of one optimiser step, measured with torch's counter, plus the one term it cannot see.

    per_step = train_step_flops(model, train_config)   # {"counted", "scan", "total"}
    training FLOPs after S steps = per_step["total"] * S

Counted (`torch.utils.flop_counter.FlopCounterMode`, one real step on a copy of the model, a batch of the
training config's shape): every matrix product torch dispatches in the forward pass, the backward pass and the
optimiser's step: mm, addmm, bmm, convolutions, and scaled-dot-product attention forward and backward. Muon's
Newton-Schulz iterations are matrix products, so the `best` recipe's extra work is in the count; AdamW's update
is elementwise and is not. Attention is counted over the whole T x T score matrix, as torch's formula does (a
causal kernel skips about half). Elementwise work (norms, activations, softmax, the loss) is not counted: the
6·N·D convention's choice too. On the CPU, SDPA runs a kernel torch's counter has no formula for
(`_scaled_dot_product_flash_attention_for_cpu` and its backward); the counter's own SDPA formulas are mapped onto
it, so attention on the CPU counts what it counts on a GPU. And torch's formula for a convolution's backward
ignores groups in the weight gradient (it would count Mamba's depthwise convolution E times over); here each
gradient a convolution's backward computes costs one forward convolution.

Added by hand: Mamba's selective scan (models/scans.py) is elementwise recurrences or a compiled kernel, which
the counter does not see. Per layer call on (B, L) positions with E inner channels and N states per channel, each
of the B·L·E·N state elements costs exp(Δ·A) (a product and an exponential: 2), Δ·B·x (2), h = dA·h + dBx (2) and
y += C·h (2): 8 FLOPs forward; backward is taken as twice the forward, the usual ratio, so

    scan FLOPs per step = 24 · B · L · E · N, summed over every MambaBlock call of the step (RNK's too).

Tests: tests/test_shootout.py counts a tiny GPT and a tiny Mamba by hand and compares.
"""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, sdpa_backward_flop_count, sdpa_flop_count

from neuro_lib.models.mamba import MambaBlock
from neuro_lib.optim import make_optimizer

SCAN_FLOPS_PER_STATE = 8 * 3  # forward 8 per state element, backward twice that (module docstring)



def _cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _conv_backward(grad_out, x, w, _bias, _stride, _padding, _dilation, transposed, _output_padding, _groups,
                   output_mask, out_shape=None, **kwargs) -> int:
    """Each gradient asked for (input, weight) costs one forward convolution. torch's own formula counts the
    weight gradient of a grouped convolution as a dense one (Mamba's depthwise conv: E times too many)."""
    return conv_flop_count(x, w, grad_out, transposed) * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


_aten = torch.ops.aten
# formulas of shapes (FlopCounterMode passes shapes, not tensors): the CPU's SDPA kernels with torch's SDPA
# formulas (same argument order), and convolution backward with groups respected
FORMULAS = {_aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa,
            _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward,
            _aten.convolution_backward: _conv_backward}


def scan_flops(calls: list[tuple[int, int, int, int]]) -> int:
    """Training FLOPs of the selective scans of one step, from each MambaBlock call's (B, L, E, N)."""
    return sum(SCAN_FLOPS_PER_STATE * b * length * e * n for b, length, e, n in calls)


def train_step_flops(model: torch.nn.Module, config) -> dict:
    """FLOPs of one training step of `model` under `config` (a TrainConfig: batch_size, block_size, optimiser):
    {"counted": torch's count, "scan": the scan term, "total": both}. The model is copied, so neither its
    weights nor the global random state change."""
    clone = copy.deepcopy(model).train()
    optimizer = make_optimizer(clone, config.optimizer, config.lr, config.weight_decay, betas=(0.9, config.beta2),
                               muon_lr_scale=config.muon_lr_scale)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(clone.config.vocab_size, (config.batch_size, config.block_size + 1), generator=gen)
    batch = {"tokens": x[:, :-1], "targets": x[:, 1:]}  # the shape is what counts, not the bytes
    calls = []

    def record(block, args, _out):
        calls.append((*args[0].shape[:2], block.cfg.d_inner, block.cfg.d_state))  # (B, L, E, N)

    hooks = [m.register_forward_hook(record) for m in clone.modules() if isinstance(m, MambaBlock)]
    counter = FlopCounterMode(display=False, custom_mapping=FORMULAS)
    try:
        with torch.random.fork_rng(), counter:
            loss, _ = clone.compute_loss(batch)
            loss.backward()
            optimizer.step()
    finally:
        for h in hooks:
            h.remove()
    counted, scan = counter.get_total_flops(), scan_flops(calls)
    return {"counted": int(counted), "scan": int(scan), "total": int(counted + scan)}
