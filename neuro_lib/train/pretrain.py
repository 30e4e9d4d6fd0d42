"""The base model every expert is fine-tuned from: an Aeron decoder pretrained on the mixture of data/mixture.py.

    run = pretrain(get_profile("smoke"))    # built on first use, cached in data/cache/base-<key>/, then reused
    model, tokenizer, cfg = load_checkpoint(run)

The cache key is a content hash of everything that defines the base: the profile's model and pretraining sizes,
the mixture (shares, caps and every source's tokens), the seed and CODE_VERSION (bump it when this recipe
changes). Every expert of a profile therefore starts from the same folder, and `checkpoint_id(run)` is the
parent id its children record. `out` trains into a folder of your choice instead (same recipe, not the cache).

Crash-safe and resumable through the Trainer: a killed run continues from its last checkpoint when called
again (batches are a pure function of (seed, step), so a step budget ends on the weights of an unbroken run);
a finished folder is returned without training. The budget is in steps (the profile's `pretrain.steps`, or
`steps=`) so the cache key names one model; `seconds=` gives a wall-clock budget instead (its result then
depends on the machine, and the key records it).

Layout: bytes plus one marker token (256, data/sft.MARK) that ends every document and, inside a task example,
separates the prompt from the answer, exactly as fine-tuning lays a pair out.

Tests: tests/test_family_finetune.py (cached, resumed after an interruption).
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neuro_lib.data.corpus import CACHE_DIR
from neuro_lib.data.mixture import VERSION as MIXTURE_VERSION
from neuro_lib.data.mixture import Mixture, build_mixture
from neuro_lib.data.sft import MARK, TOKENIZER, VOCAB
from neuro_lib.errors import NeuroError
from neuro_lib.checkpoint import POINTER, read_config
from neuro_lib.models import build_model
from neuro_lib.profiles import Profile
from neuro_lib.tokenizers import ByteTokenizer
from neuro_lib.train.evaluate import evaluate_bpb
from neuro_lib.train.trainer import TrainConfig, Trainer

CODE_VERSION = 1  # bump when the pretraining recipe changes: every cached base is then rebuilt
ARCH = "aeron"


def base_key(profile: Profile, mixture: Mixture, seed: int, steps: int | None, seconds: float | None) -> dict:
    sizes = profile.tasks.family
    return {"recipe": "family-base", "code_version": CODE_VERSION, "mixture_version": MIXTURE_VERSION,
            "model": sizes.base, "pretrain": asdict(sizes.pretrain), "max_bytes": sizes.max_bytes,
            "mixture": mixture.spec, "mixture_sha256": mixture.key(), "seed": seed, "steps": steps,
            "seconds": seconds, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


def key_hash(key: dict) -> str:
    """A stable hash of a JSON-able cache key (the same key, the same folder name)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def cache_path(profile: Profile, key: dict) -> Path:
    """Where pretrain() keeps the base of `key` when no `out` is given."""
    return CACHE_DIR / f"base-{profile.name}-{key_hash(key)[:16]}"


def _finished(run: Path, key: dict, steps: int, seconds: float | None) -> bool:
    """Read only: `run` holds this base, trained to its whole step budget (a time budget: the Trainer decides)."""
    if seconds or not (run / POINTER).exists():
        return False
    cfg = read_config(run)
    return cfg.get("base_key") == key and cfg["step"] >= steps


def _val_texts(mixture: Mixture, n: int) -> dict[str, bytes]:
    """The first `n` bytes of each source's validation split, markers dropped (bpb counts bytes)."""
    out = {}
    for name, s in mixture.sources.items():
        v = s.val[s.val != MARK][:n]
        out[name] = v.astype(np.uint8).tobytes()
    return out


def pretrain(profile: Profile, out: str | Path | None = None, *, seconds: float | None = None, steps: int | None = None,
             seed: int = 0, mixture: dict | None = None, callback=None) -> Path:
    """The run folder of the profile's base model, trained now if it is not there yet (or resumed). `mixture`
    replaces the sampling shares of data/mixture.MIXTURE_SPEC (an ablation; part of the cache key)."""
    sizes = profile.tasks.family
    p = sizes.pretrain
    if steps is not None and steps <= 0 or seconds is not None and seconds <= 0:
        raise NeuroError("the pretraining budget must be positive")
    if steps is not None and seconds is not None:
        raise NeuroError("give steps or seconds, not both")
    try:
        mixture = build_mixture(mixture, max_bytes=sizes.max_bytes)
    except ValueError as e:
        raise NeuroError(str(e)) from None
    key = base_key(profile, mixture, seed, steps, seconds)
    run = Path(out) if out is not None else cache_path(profile, key)
    if _finished(run, key, steps or p.steps, seconds):
        return run  # built before: nothing to train, nothing rewritten
    model_cfg = dict(sizes.base, vocab_size=VOCAB, mode="decoder", n_encoder_layer=0)
    torch.manual_seed(seed)
    model = build_model(ARCH, **model_cfg)
    budget = dict(max_steps=0, time_budget_s=seconds) if seconds else dict(max_steps=steps or p.steps)
    trained = {k: v for k, v in asdict(p).items() if k != "steps"}  # the rest are TrainConfig's own fields
    config = TrainConfig(**trained, log_every=10, seed=seed, **budget)
    val = _val_texts(mixture, p.eval_bytes)
    tokenizer = ByteTokenizer()

    def batches(step: int) -> dict:
        return mixture.batch(step, seed, p.batch_size, p.block_size)

    def evaluate(m) -> dict:
        per = {name: evaluate_bpb(m, tokenizer, text, p.block_size)["bpb"] for name, text in val.items()}
        return {"val_bpb": sum(per.values()) / len(per), **{f"val_bpb_{k}": v for k, v in per.items()}}

    n_params = model.num_params()
    budget_text = f"{seconds:.0f} s" if seconds else f"{budget['max_steps']} steps"
    print(f"[pretrain] {profile.name} base: Aeron decoder, {n_params / 1e6:.2f}M parameters, {budget_text} of "
          f"{p.batch_size}x{p.block_size} tokens on the mixture "
          + ", ".join(f"{n} {s.share:.0%}" for n, s in mixture.sources.items())
          + f" -> {run}; the profile's {p.steps} steps take {sizes.about_pretrain}", file=sys.stderr,
          flush=True)
    trainer = Trainer(model, tokenizer, config, batches, evaluate, out_dir=run,
                      extra_config={"base_key": key, "tokenizer_spec": TOKENIZER},
                      info={"mixture": mixture.describe(), "profile": profile.name})
    trainer.fit(callback=callback)
    return run


def scratch_base(profile: Profile, seed: int = 0) -> Path:
    """The from-scratch control: the base's architecture at its seed's initialisation, untrained (step 0), saved as
    a checkpoint in the cache so `finetune` treats it like any base (the same recipe, the same lineage record)."""
    from neuro_lib.checkpoint import save_checkpoint
    model_cfg = dict(profile.tasks.family.base, vocab_size=VOCAB, mode="decoder", n_encoder_layer=0)
    key = {"recipe": "family-scratch", "code_version": CODE_VERSION, "model": model_cfg, "seed": seed}
    run = CACHE_DIR / f"scratch-{profile.name}-{key_hash(key)[:16]}"
    if (run / POINTER).exists() and read_config(run).get("scratch_key") == key:
        return run
    torch.manual_seed(seed)  # the same initialisation pretrain() starts from
    save_checkpoint(run, build_model(ARCH, **model_cfg), ByteTokenizer(), extra={"scratch_key": key})
    return run
