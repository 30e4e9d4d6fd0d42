"""Train a language model on a corpus in one call: the path shared by the CLI
(`neuro train`, `neuro bench lm`) and the notebooks.

    result = train_lm("gpt", "stdlib-docs", profile=get_profile("smoke"), out_dir="runs/gpt")
    result.val_bpb, result.history, result.model
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from neuro_lib.atomic import disk_error
from neuro_lib.data.batching import encode_to_array
from neuro_lib.data.corpus import CACHE_DIR, Corpus, load_corpus
from neuro_lib.errors import NeuroError
from neuro_lib.memlimit import check_fits
from neuro_lib.models import build_model
from neuro_lib.profiles import Profile
from neuro_lib.tokenizers import Tokenizer, load_tokenizer, parse_spec, train_tokenizer
from neuro_lib.train.evaluate import evaluate_bpb
from neuro_lib.train.trainer import TrainConfig, Trainer, check_run_folder, seed_everything


def get_tokenizer(spec: str, corpus: Corpus, train_kwargs: dict | None = None) -> Tokenizer:
    """A tokenizer for `spec` trained on the corpus's training split, cached in data/cache/tokenizers/.
    `train_kwargs` maps a kind to extra arguments of its train() (profiles.py: tokenizers["train"]),
    e.g. {"vq": {"train": {"steps": 300}}}; they are part of the cache key."""
    kind, _ = parse_spec(spec)
    kwargs = (train_kwargs or {}).get(kind, {})
    if kind == "byte":
        return train_tokenizer(spec, corpus.train)
    h = hashlib.sha256(corpus.train)
    if kwargs:
        h.update(json.dumps(kwargs, sort_keys=True).encode())
    path = CACHE_DIR / "tokenizers" / f"{spec.replace(':', '-')}-{h.hexdigest()[:16]}"
    if (path / "tokenizer_meta.json").exists():
        return load_tokenizer(path)
    tok = train_tokenizer(spec, corpus.train, **kwargs)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # saved aside, then renamed: never half a cache entry
    try:
        tok.save(tmp)
        tmp.rename(path)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / "tokenizer_meta.json").exists():  # else another process cached the same tokenizer first
            raise disk_error(e, path) from None
    return tok


@dataclass
class TrainResult:
    model: torch.nn.Module
    tokenizer: Tokenizer
    history: list = field(default_factory=list)
    out_dir: Path | None = None
    config: TrainConfig | None = None   # the training config it ran under (batch shape, optimiser, budget)

    @property
    def val_bpb(self) -> float:
        vals = [r["val_bpb"] for r in self.history if r.get("kind") == "val"]
        return vals[-1] if vals else float("nan")

    @property
    def train_seconds(self) -> float:
        return max((r["elapsed_s"] for r in self.history), default=0.0)

    @property
    def tokens_per_s(self) -> float:
        rates = [r["tokens_per_s"] for r in self.history if r.get("kind") == "train"]
        rates = rates[len(rates) // 5:] or rates  # skip warm-up steps
        return sorted(rates)[len(rates) // 2] if rates else float("nan")


def train_lm(arch: str, corpus: str | Corpus = "stdlib-docs", tokenizer: str | Tokenizer = "byte", *, profile: Profile,
             out_dir=None, model_overrides: dict | None = None, train_overrides: dict | None = None,
             callback=None, tokenizer_train: dict | None = None) -> TrainResult:
    """Build tokenizer + model from the profile's sizes, train under its budget, return the result.
    `tokenizer_train` overrides the profile's tokenizer training arguments (see get_tokenizer)."""
    prof = profile
    corpus = load_corpus(corpus) if isinstance(corpus, str) else corpus
    if out_dir is not None:
        check_run_folder(out_dir)  # before any work: a bad --out fails in a second, not after the tokenizer
    mcfg = prof.model(arch) if arch in prof.models else {}
    mcfg.update(model_overrides or {})
    t = prof.train_sizes(arch)
    # the training window: a block_size given as an override, else the profile's, cut to the model's block_size
    # (the longest sequence it takes; Aeron's is longer than its training window, for RoPE past it)
    window = (model_overrides or {}).get("block_size") or min(mcfg.get("block_size", t.block_size), t.block_size)
    overrides = dict(train_overrides or {})
    if overrides.get("max_steps"):
        overrides.setdefault("time_budget_s", 0)  # a step budget replaces the profile's time budget
    config = TrainConfig(**{**asdict(t), "block_size": window, **overrides})
    if "block_size" in mcfg and config.block_size > mcfg["block_size"]:
        raise NeuroError(f"training block_size {config.block_size} exceeds the model's {mcfg['block_size']}")
    if isinstance(tokenizer, Tokenizer):  # an already trained tokenizer (notebook 01 compares them)
        tok = tokenizer
    else:
        tok = get_tokenizer(tokenizer, corpus, prof.tokenizers.get("train") if tokenizer_train is None
                            else tokenizer_train)
    mcfg["vocab_size"] = tok.vocab_size
    seed_everything(config.seed)  # before the model is built: the seed fixes the initial weights
    model = build_model(arch, **mcfg)
    # training holds gradients and AdamW's two moments beside the weights: three more copies
    check_fits(3 * sum(p.numel() * p.element_size() for p in model.parameters()),
               f"training a {arch} model (gradients and optimiser state)")
    train_ids = encode_to_array(tok, corpus.train)
    if len(train_ids) <= config.block_size + 1:
        raise NeuroError(f"corpus {corpus.spec!r} has {len(train_ids)} training tokens, fewer than one window of "
                         f"{config.block_size + 1}; use a longer corpus or a smaller block_size")
    if len(tok.encode(corpus.val[:4096])) < 2:
        raise NeuroError(f"corpus {corpus.spec!r} has a validation split of fewer than two tokens; use a longer corpus")

    def batches(step):
        x, y = train_ids.batch(config.batch_size, config.block_size, config.seed, step)
        return {"tokens": x, "targets": y}

    def evaluate(m):
        r = evaluate_bpb(m, tok, corpus.val, config.block_size, max_bytes=config.eval_bytes)
        return {"val_bpb": r["bpb"], "val_bytes": r["bytes"]}

    trainer = Trainer(model, tok, config, batches, evaluate, out_dir=out_dir,
                      extra_config={"corpus_sha256": corpus.sha256, "profile": prof.name}, info={"corpus": corpus.spec})
    history = trainer.fit(callback=callback)
    return TrainResult(model.eval(), tok, history, Path(out_dir) if out_dir else None, config)
