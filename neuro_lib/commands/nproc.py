"""`neuro train ... --nproc N`: the same training in N local data-parallel processes (train/distributed.py).

    neuro train --arch gpt --steps 300 --out runs/x --nproc 2
    torchrun --nproc-per-node 2 -m neuro_lib.cli train --arch gpt --steps 300 --out runs/x   # the same run

`--nproc` starts the workers with torchrun's elastic launcher (rendezvous on 127.0.0.1), each of which
runs the ordinary `train` command; under torchrun the command finds its rank in the environment
instead. Rank 0 prints the summary; a worker's error is the command's one sentence.
Tests: tests/test_distributed.py.
"""
from __future__ import annotations

import argparse
import contextlib
import io

from neuro_lib.errors import NeuroError


def register(sub) -> None:
    from neuro_lib.cli import _positive

    train = sub.choices["train"]
    train.add_argument("--nproc", type=_positive(int), metavar="N",
                       help="train in N local data-parallel processes (DDP; gloo on CPU, NCCL on GPU); "
                            "--profile's batch size is the global batch")
    train.set_defaults(func=cmd_train)


def cmd_train(a):
    from neuro_lib.train import distributed

    world = distributed.world_from_env()
    if world.distributed and a.nproc:
        raise NeuroError("--nproc starts its own processes; under torchrun leave it out")
    if not a.nproc or a.nproc == 1:
        return _train_here(a)
    results = distributed.launch(_rank_main, a.nproc, argparse.Namespace(**{**vars(a), "nproc": None}))
    errors = [results[r] for r in sorted(results) if results[r]]
    if errors:
        first = errors[0]
        if "signum" in first:
            from neuro_lib.train.trainer import TrainingStopped

            raise TrainingStopped(first["signum"], first["step"], a.out)
        raise NeuroError(first["error"])


def _train_here(a):
    """This process's part: the ordinary command (rank > 0 keeps quiet; the process group is left at the end)."""
    from neuro_lib.cli import cmd_train as train
    from neuro_lib.train import distributed

    quiet = distributed.world_from_env().rank > 0
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            return train(a)
    finally:
        distributed.teardown()


def _rank_main(a) -> dict | None:
    """One launched worker: None on success, else what stopped it (the parent turns it into one sentence)."""
    from neuro_lib.train.trainer import TrainingStopped

    try:
        _train_here(a)
    except NeuroError as e:
        return {"error": str(e)}
    except TrainingStopped as e:
        return {"signum": e.signum, "step": e.step}
    return None
