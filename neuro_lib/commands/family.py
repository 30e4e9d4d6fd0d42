"""`neuro pretrain` and `neuro finetune`: the model family's doors (train/pretrain.py, train/finetune.py).

    neuro pretrain --profile smoke                       # the cached base of the profile (built on first use)
    neuro pretrain --profile bench --out runs/base       # the same recipe into a folder of your choice
    neuro finetune runs/base --task reason --out runs/reason [--lora-rank 8] [--steps N] [--profile P]

Each prints the run folder on stdout (progress and the one line saying what is trained go to stderr).
"""
from __future__ import annotations

from neuro_lib.cli import _number, _positive


def register(sub) -> None:
    from neuro_lib.data.sft import TASKS

    p = sub.add_parser("pretrain", help="build (or reuse) the profile's base model, the parent of every expert")
    p.add_argument("--profile", default="smoke", help="sizes from profiles.py: smoke, bench, full")
    p.add_argument("--out", help="run folder (default: the shared cache, data/cache/base-...); the same command "
                                 "again resumes it")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_positive(int), help="optimiser steps (default: the profile's)")
    budget.add_argument("--seconds", type=_positive(float), help="a wall-clock budget instead of steps")
    p.add_argument("--seed", type=_number(int, 0, strict=False), default=0)
    p.set_defaults(func=cmd_pretrain)

    f = sub.add_parser("finetune", help="fine-tune a base on one task (full or LoRA); the child records its parent")
    f.add_argument("base", help="the parent run folder (e.g. from `neuro pretrain`)")
    f.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    f.add_argument("--out", required=True, help="the child's run folder; the same command again resumes it")
    f.add_argument("--lora-rank", type=_number(int, 0, strict=False), default=0, help="0 = full fine-tuning")
    f.add_argument("--steps", type=_positive(int), help="optimiser steps (default: the profile's)")
    f.add_argument("--profile", default="smoke", help="fine-tuning sizes from profiles.py")
    f.add_argument("--seed", type=_number(int, 0, strict=False), default=0)
    f.set_defaults(func=cmd_finetune)


def cmd_pretrain(a) -> None:
    from neuro_lib.profiles import get_profile
    from neuro_lib.train.pretrain import pretrain

    print(pretrain(get_profile(a.profile), a.out, steps=a.steps, seconds=a.seconds, seed=a.seed))


def cmd_finetune(a) -> None:
    from neuro_lib.data.sft import check_task
    from neuro_lib.profiles import get_profile
    from neuro_lib.train.finetune import finetune

    check_task(a.task)
    profile = get_profile(a.profile)
    print(finetune(a.base, a.task, a.out, steps=a.steps, lora_rank=a.lora_rank, seed=a.seed, profile=profile))
