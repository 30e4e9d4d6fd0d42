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

from neuro_lib.models.aeron.config import AeronConfig
from neuro_lib.models.aeron.model import Aeron
from neuro_lib.models.cache import KVCache, PagedKVCache

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


def component_counts(model: Aeron) -> dict[str, int]:
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
    """`component_counts` of the config's model, built on the meta device."""
    return component_counts(meta_model(cfg))


def with_kv_heads(cfg: AeronConfig, n_kv_head: int) -> AeronConfig:
    """The same config with another number of KV heads (n_kv_head = n_head is MHA)."""
    return dataclasses.replace(cfg, n_kv_head=n_kv_head)


def kv_bytes_per_token(cfg: AeronConfig, tokens: int = 256, dtype=torch.bfloat16, paged: bool = False,
                       block_size: int = 16) -> float:
    """Bytes the decoder self-attention cache spends per position, measured on a real
    cache of `tokens` positions for one sequence (zeros, allocated and freed here)."""
    args = (cfg.n_decoder_layer, 1, cfg.n_kv_head, cfg.head_dim, tokens)
    cache = (PagedKVCache(*args, block_size=block_size, dtype=dtype) if paged else KVCache(*args, dtype=dtype))
    return cache.nbytes() / tokens


def seed_table_rows(cfg: AeronConfig | None = None) -> list[dict]:
    """The seed's parameter-budget table next to this code's count of the same config
    (millions). Components outside the backbone have no count here (None)."""
    from neuro_lib.models.aeron.config import PRESETS, SEED_BUDGET_M

    b = param_budget(cfg or PRESETS["aeron-3.85b"])
    ours = {"token embeddings (shared with output)": b["token embeddings"] + b.get("output projection (untied)", 0),
            "encoder stack (32 layers)": b["encoder stack"], "decoder stack (32 layers)": b["decoder stack"],
            "total (claimed)": b["total"]}
    rows = [{"component": k, "seed_M": v, "ours_M": round(ours[k] / 1e6, 1) if k in ours else None}
            for k, v in SEED_BUDGET_M.items()]
    rows.insert(-1, {"component": "sum of the seed's rows", "seed_M": sum(list(SEED_BUDGET_M.values())[:-1]),
                     "ours_M": None})
    return rows


def interpretations() -> list[dict]:
    """Readings of the seed's default config and the backbone size each gives (millions):
    does any reproduce the seed's encoder ~1,376M and decoder ~2,048M?"""
    from neuro_lib.models.aeron.config import preset

    variants = {
        "SwiGLU hidden 2/3 x 8192 = 5461 (the seed's diagram), GQA 32/8": preset("aeron-3.85b"),
        "SwiGLU hidden 8192 (dim_feedforward taken literally), GQA 32/8": preset("aeron-3.85b", d_ff=8192),
        "SwiGLU hidden 5461, MHA 32/32": preset("aeron-3.85b", n_kv_head=32),
        "SwiGLU hidden 8192, MHA 32/32": preset("aeron-3.85b", n_kv_head=32, d_ff=8192),
    }
    rows = []
    for name, cfg in variants.items():
        b = param_budget(cfg)
        rows.append({"reading": name, "encoder_M": round(b["encoder stack"] / 1e6, 1),
                     "decoder_M": round(b["decoder stack"] / 1e6, 1), "total_M": round(b["total"] / 1e6, 1)})
    return rows


def preset_rows() -> list[dict]:
    """Every named preset: the seed's claimed size next to our count (millions), in the
    seed's encoder-decoder layout and as a decoder-only LM with the same decoder."""
    from neuro_lib.models.aeron.config import PRESETS, SEED_CLAIMS

    rows = []
    for name, cfg in PRESETS.items():
        b = param_budget(cfg)
        dec = param_budget(dataclasses.replace(cfg, mode="decoder", n_encoder_layer=0))
        rows.append({"preset": name, "seed_says": SEED_CLAIMS[name], "encoder_decoder_M": round(b["total"] / 1e6, 1),
                     "non_embedding_M": round((b["total"] - b["token embeddings"]) / 1e6, 1),
                     "decoder_only_M": round(dec["total"] / 1e6, 1)})
    return rows


def kv_memory_rows(cfg: AeronConfig, tokens: int = 256, dtype=torch.bfloat16) -> list[dict]:
    """Decoder self-attention cache per token for MHA (H_kv = H) and for the config's GQA,
    measured on real caches, and what a full `block_size` context (the seed's max_position_embeddings) costs."""
    rows = []
    for label, kv_heads in (("MHA", cfg.n_head), ("GQA", cfg.n_kv_head)):
        per_token = kv_bytes_per_token(with_kv_heads(cfg, kv_heads), tokens, dtype)
        rows.append({"attention": f"{label} ({cfg.n_head} query / {kv_heads} KV heads)", "kv_heads": kv_heads,
                     "KiB_per_token": per_token / 1024,
                     "GiB_at_max_context": per_token * cfg.block_size / 2**30})
    rows.append({"attention": "MHA / GQA", "kv_heads": None, "KiB_per_token": rows[0]["KiB_per_token"] /
                 rows[1]["KiB_per_token"], "GiB_at_max_context": None})
    return rows
