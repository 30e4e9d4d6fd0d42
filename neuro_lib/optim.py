"""AdamW with decay / no-decay parameter groups, Muon for the hidden matrices, and the LR schedules.

- `make_adamw`: AdamW, matrices decay, vectors do not; the fused kernel where the parameters allow it (one
  op per step instead of ~30 per parameter: on a small CPU model the unfused step issues more ATen calls
  than the forward and backward together; docs/LOG.md 2026-12-03).
- `make_muon`: `torch.optim.Muon` (Jordan et al. 2024; orthogonalised momentum through Newton-Schulz) for the
  2-D weights inside the blocks, AdamW for embeddings, the LM head, norms and biases, as modded-nanoGPT does.
  `muon_groups` is the split, every trainable parameter exactly once.
- `warmup_cosine` and `warmup_stable_decay` (WSD: flat after warmup, linear decay over the last
  `decay_frac` of the budget), the LR multipliers; `lr_multiplier` picks one by name.

Shared by the Trainer (train/trainer.py) and the VQ-VAE tokenizer (tokenizers/vq.py), so it sits
below both layers and imports nothing from neuro_lib. Tests: tests/test_train.py.
"""
from __future__ import annotations

import math

import torch


SCHEDULES = ("cosine", "wsd")
OPTIMIZERS = ("adamw", "muon")


def _trainable(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) for each trainable parameter once (a tied weight under its first name)."""
    out, seen = [], set()
    for name, p in model.named_parameters():  # named_parameters already drops repeats; the set guards aux stacks
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


def _fusable(params) -> bool:
    """The fused AdamW kernel takes floating-point parameters on one CPU or CUDA device."""
    params = list(params)
    devices = {p.device.type for p in params}
    return bool(params) and len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)


def _adamw_groups(named, weight_decay: float) -> list[dict]:
    decay = [p for _, p in named if p.dim() >= 2]
    no_decay = [p for _, p in named if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95)) -> torch.optim.AdamW:
    """Matrices (dim >= 2) decay; biases, norm gains and other vectors do not."""
    named = _trainable(model)
    return torch.optim.AdamW(_adamw_groups(named, weight_decay), lr=lr, betas=betas,
                             fused=True if _fusable(p for _, p in named) else None)


# Parameters that stay on AdamW although they are matrices: embedding tables and the output head are lookups
# and a classifier, not hidden linear maps (Muon's orthogonalised update assumes the latter).
ADAMW_MATRIX_NAMES = ("emb", "lm_head", "embed", "wte", "wpe")


def muon_groups(model: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[tuple[str, torch.nn.Parameter]]]:
    """-> (Muon's parameters: the 2-D weights inside the blocks, AdamW's (name, parameter) pairs: the rest)."""
    muon, adamw = [], []
    for name, p in _trainable(model):
        leaf = name.split(".")
        if p.dim() == 2 and not any(k in part for part in leaf for k in ADAMW_MATRIX_NAMES):
            muon.append(p)
        else:
            adamw.append((name, p))
    return muon, adamw


class MuonAdamW:
    """Muon on the hidden matrices and AdamW on the rest, stepped together as one optimiser.

    `param_groups` lists both optimisers' groups (each carries `lr_scale`: the trainer sets lr = base x scale
    x schedule), and `state_dict` holds both, so the Trainer's loop, clipping and checkpoints need no change."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95),
                 muon_lr_scale: float = 1.0, momentum: float = 0.95):
        muon, adamw = muon_groups(model)
        self.muon = torch.optim.Muon([{"params": muon, "lr_scale": muon_lr_scale}], lr=lr * muon_lr_scale,
                                     weight_decay=weight_decay, momentum=momentum,
                                     adjust_lr_fn="match_rms_adamw") if muon else None
        groups = [dict(g, lr_scale=1.0) for g in _adamw_groups(adamw, weight_decay)]
        self.adamw = torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True if _fusable(p for _, p in adamw) else None)
        self.parts = [o for o in (self.muon, self.adamw) if o is not None]
        self.defaults = {"lr": lr}

    @property
    def param_groups(self) -> list[dict]:
        """Both parts' groups, read afresh: load_state_dict replaces a torch optimiser's group dicts."""
        return [g for o in self.parts for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True):
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        for o in self.parts:
            o.step()

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict() if self.muon else None, "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"muon", "adamw"} or (state["muon"] is None) != (self.muon is None):
            raise ValueError("the optimiser state is not a Muon + AdamW state of this model")
        if self.muon:
            self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, betas=(0.9, 0.95),
                   muon_lr_scale: float = 1.0):
    """The optimiser called `name` (OPTIMIZERS) over the model's trainable parameters."""
    if name == "adamw":
        return make_adamw(model, lr, weight_decay, betas)
    if name == "muon":
        return MuonAdamW(model, lr, weight_decay, betas, muon_lr_scale=muon_lr_scale)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def warmup_cosine(progress: float, step: int, warmup_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup over `warmup_steps`, then cosine from 1 to `min_ratio` as
    `progress` (fraction of the budget spent, steps or seconds) goes from 0 to 1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_stable_decay(progress: float, step: int, warmup_steps: int, min_ratio: float,
                        decay_frac: float = 0.2) -> float:
    """LR multiplier: linear warmup, then 1 until the last `decay_frac` of the budget, then linear to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    start = 1.0 - decay_frac
    if progress <= start:
        return 1.0
    return 1.0 - (1.0 - min_ratio) * (progress - start) / decay_frac


def lr_multiplier(schedule: str, progress: float, step: int, warmup_steps: int, min_ratio: float,
                  decay_frac: float = 0.2) -> float:
    if schedule == "cosine":
        return warmup_cosine(progress, step, warmup_steps, min_ratio)
    if schedule == "wsd":
        return warmup_stable_decay(progress, step, warmup_steps, min_ratio, decay_frac)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
