"""Export-ready graphs: a model's prefill and decode step as pure functions of tensors.

An exporter traces `forward(*tensors) -> tuple of tensors`; the models' decoding states are
Python objects updated in place (a preallocated KVCache written by slice, MambaState.copy_),
which a traced graph can neither take as input nor hand back. These wrappers run the model's
own blocks (so the export is the model, not a re-implementation) with the state as explicit
tensors:

- attention models (GPT, the Aeron decoder): `Prefill(tokens (B, T)) -> (logits (B, T, V),
  k_0, v_0, ..., k_{L-1}, v_{L-1})` with each k, v (B, H_kv, T, D); `Decode(tokens (B, 1),
  k_0, v_0, ...) -> (logits (B, 1, V), k_0', v_0', ...)` where each present = concat(past, new)
  along time. `GrowingCache` is the cache object the blocks see: it hands back the
  concatenation instead of writing into a preallocated tensor, so the graph has no in-place
  update and the past length is a dynamic dimension of its inputs.
- Mamba: `Prefill(tokens) -> (logits, conv_0, ssm_0, ...)` from a zero state, `Decode(tokens
  (B, 1), conv_0, ssm_0, ...) -> (logits, conv_0', ssm_0', ...)`, new state tensors returned
  (the eager `MambaState.update` copies into the old ones in place). The scan is the
  loop-free "quadratic" form (models/scans.py): a Python loop over time would be unrolled at
  trace time and fix the prompt length.

`state_names(model)` names the state tensors in graph order; `STATE_LAYOUT` says what each is.
Tests: tests/test_export.py.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from neuro_lib.models.aeron import Aeron
from neuro_lib.models.gpt import GPT
from neuro_lib.models.mamba import Mamba

EXPORTABLE = (GPT, Aeron, Mamba)


class GrowingCache:
    """A KV cache for tracing: `update` returns concat(past, new) per layer and keeps it as `present`."""

    def __init__(self, past: list[tuple[torch.Tensor, torch.Tensor]] | None, n_layer: int):
        self.past = past
        self.present: list = [None] * n_layer
        self.pos = 0 if past is None else past[0][0].shape[2]  # a symbolic size while tracing

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        if self.past is not None:
            k = torch.cat([self.past[layer][0], k], dim=2)  # (B, H_kv, S + t, D)
            v = torch.cat([self.past[layer][1], v], dim=2)
        self.present[layer] = (k, v)
        return k, v

    def advance(self, t: int) -> None:
        """Nothing to move: the next step's past length is the size of its inputs."""


def check_exportable(model) -> None:
    if not isinstance(model, EXPORTABLE):
        raise TypeError(f"{type(model).__name__} has no export graphs; exportable: "
                        f"{[c.__name__ for c in EXPORTABLE]}")
    if isinstance(model, Aeron) and model.encoder_decoder:
        raise TypeError("only the Aeron decoder (mode='decoder') is exportable; this one is encoder-decoder")


def n_layers(model) -> int:
    return len(model.decoder) if isinstance(model, Aeron) else len(model.blocks)


def state_names(model) -> list[str]:
    """The state tensors' names in graph order: k_i, v_i (attention) or conv_i, ssm_i (Mamba)."""
    a, b = ("conv", "ssm") if isinstance(model, Mamba) else ("k", "v")
    return [f"{x}_{i}" for i in range(n_layers(model)) for x in (a, b)]


def _flat(pairs) -> tuple:
    return tuple(t for pair in pairs for t in pair)


def _pairs(flat) -> list:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


class TiedHead(nn.Module):
    """The LM head as W @ h^T with W the embedding matrix (V, C) untransposed.

    nn.Linear computes h @ W^T; the ONNX exporter writes that as MatMul(h, Transpose(W)) and its
    optimiser folds the transpose into a second, transposed copy of W: the tied embedding would be
    stored twice. Transposing the activations instead keeps one (V, C) initializer that both the
    embedding lookup and the head read (tests/test_export.py counts them)."""

    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight = weight

    def forward(self, h):
        """h (B, T, C) -> logits (B, T, V)."""
        return torch.matmul(self.weight, h.transpose(1, 2)).transpose(1, 2)  # (V, C) @ (B, C, T) -> (B, V, T)


def export_copy(model):
    """An eval-mode copy for tracing (Mamba switched to the loop-free scan, a tied head kept tied in
    the file); the original is untouched."""
    check_exportable(model)
    m = copy.deepcopy(model).eval()
    if m.lm_head.weight is m.tok_emb.weight:
        m.lm_head = TiedHead(m.tok_emb.weight)
    if isinstance(m, Mamba):
        m.config.scan = "quadratic"
        for blk in m.blocks:
            blk.cfg = m.config
    return m


class Prefill(nn.Module):
    """tokens (B, T) -> (logits (B, T, V), *state) from an empty state."""

    def __init__(self, model):
        super().__init__()
        self.model = export_copy(model)
        self.eval()

    def forward(self, tokens):
        m = self.model
        if isinstance(m, Mamba):
            h, states = m.hidden(tokens)
            return (m.lm_head(h), *_flat(states))
        cache = GrowingCache(None, n_layers(m))
        logits = m._run(tokens, cache)
        return (logits, *_flat(cache.present))


class Decode(nn.Module):
    """tokens (B, t), *state -> (logits (B, t, V), *new state); new tensors, the inputs untouched."""

    def __init__(self, model):
        super().__init__()
        self.model = export_copy(model)
        self.eval()

    def forward(self, tokens, *state):
        m = self.model
        if isinstance(m, Mamba):
            h, states = m.hidden(tokens, _pairs(state))
            return (m.lm_head(h), *_flat(states))
        cache = GrowingCache(_pairs(state), n_layers(m))
        logits = m._run(tokens, cache)
        return (logits, *_flat(cache.present))
