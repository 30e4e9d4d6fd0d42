"""Parameter and KV-cache accounting for Aeron, to check the seed's numbers.

`param_budget(cfg)` builds the model on the meta device (shapes, no memory), so even
the 3.85B preset is counted in milliseconds, and splits the count by component.
`kv_bytes_per_token(cfg)` allocates a real cache for the decoder's self-attention and
divides its size by the positions it holds; `with_kv_heads` swaps GQA for MHA.

    from neuro_lib.models.aeron.budget import param_budget
    param_budget(preset("aeron-3.85b"))["total"]
"""
from __future__ import annotations

import dataclasses

import torch

from neuro_lib.infer.kv_cache import KVCache
from neuro_lib.infer.paged_cache import PagedKVCache
from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.aeron.model import Aeron

# parameter-name pieces -> component, checked in order
_COMPONENTS = [
    ("tok_emb.", "token embeddings"),
    ("lm_head.", "output projection (untied)"),
    ("encoder_norm.", "encoder norms"),
    ("decoder_norm.", "decoder norms"),
    ("encoder.", {"attn.": "encoder self-attention", "ffn.": "encoder feed-forward", "norm": "encoder norms"}),
    ("decoder.", {"self_attn.": "decoder self-attention", "cross_attn.": "decoder cross-attention",
                  "ffn.": "decoder feed-forward", "norm": "decoder norms"}),
]


def component_of(name: str) -> str:
    """'decoder.3.cross_attn.q_proj.weight' -> 'decoder cross-attention'."""
    for prefix, target in _COMPONENTS:
        if name.startswith(prefix):
            if isinstance(target, str):
                return target
            rest = name.split(".", 2)[2]  # drop "decoder.<i>."
            for piece, comp in target.items():
                if rest.startswith(piece):
                    return comp
    raise KeyError(f"parameter {name!r} belongs to no known Aeron component")


def meta_model(cfg: AeronConfig) -> Aeron:
    """The model with every tensor on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        return Aeron(cfg)


def param_breakdown(model: Aeron) -> dict[str, int]:
    """Parameters per component (tied weights counted once), plus the stacks and "total"."""
    out: dict[str, int] = {}
    for name, p in model.named_parameters():  # shared tensors appear once
        comp = component_of(name)
        out[comp] = out.get(comp, 0) + p.numel()
    out["encoder stack"] = sum(v for k, v in out.items() if k.startswith("encoder "))
    out["decoder stack"] = sum(v for k, v in out.items() if k.startswith("decoder "))
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


def param_budget(cfg: AeronConfig) -> dict[str, int]:
    """`param_breakdown` of the config's model, built on the meta device."""
    return param_breakdown(meta_model(cfg))


def with_kv_heads(cfg: AeronConfig, num_kv_heads: int) -> AeronConfig:
    """The same config with another number of KV heads (num_kv_heads = nhead is MHA)."""
    return dataclasses.replace(cfg, num_kv_heads=num_kv_heads)


def kv_bytes_per_token(cfg: AeronConfig, tokens: int = 256, dtype=torch.bfloat16, paged: bool = False,
                       block_size: int = 16) -> float:
    """Bytes the decoder self-attention cache spends per position, measured on a real
    cache of `tokens` positions for one sequence (zeros, allocated and freed here)."""
    args = (cfg.num_decoder_layers, 1, cfg.num_kv_heads, cfg.head_dim, tokens)
    cache = (PagedKVCache(*args, block_size=block_size, dtype=dtype) if paged else KVCache(*args, dtype=dtype))
    return cache.nbytes() / tokens
