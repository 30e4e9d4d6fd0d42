"""Data-parallel training with torch.distributed: the process group, DDP, communication hooks, launching.

One process per worker, each holding a full replica; DistributedDataParallel all-reduces the
gradients during backward, so every replica takes the same AdamW step. The process group comes
from the environment torchrun (or `launch` below, the same elastic launcher) sets: RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. The backend follows the device: NCCL on CUDA,
gloo on CPU.

The Trainer's batch size is the *global* batch: `batches(step)` gives the whole batch and rank r
keeps rows r, r+W, r+2W, ... (`shard`, DistributedSampler's strided assignment), so the ranks
see disjoint shards whose union is the single-process batch, a step is the same step whatever
the world size, and the data position (step x global batch = samples seen) survives a resume
with another world size.

    torchrun --nproc-per-node 2 -m neuro_lib.cli train --steps 200 --out runs/x     # or: neuro train ... --nproc 2
    results = launch(fn, 2, arg)   # fn(arg) in 2 local processes, process group ready; {rank: fn's result}

Communication hooks (`comm_hook`): "" (DDP's own all-reduce), "allreduce" (the same through the
hook API, so its bytes can be counted), "fp16" (gradients sent in half precision), and
"powersgd:RANK[:START]" (low-rank PowerSGD with error feedback, vanilla all-reduce for the first
START iterations). `count_allreduce_bytes` counts the payload the hooks hand to all_reduce.

Tests: tests/test_distributed.py. Bench: neuro_lib/bench/ddp.py.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed import distributed_c10d
from torch.nn.parallel import DistributedDataParallel

from neuro_lib.errors import NeuroError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (a single process when it describes none)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise NeuroError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device: str = "auto") -> tuple[World, torch.device]:
    """Join the process group the environment describes (once per process); -> (world, this rank's device).
    `device` is TrainConfig.device: "auto" is this rank's GPU (cuda:LOCAL_RANK) when there is one, else the CPU."""
    world = world_from_env()
    if device == "auto":
        dev = torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{world.local_rank}")
    if not world.distributed:
        return world, dev
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise NeuroError(f"WORLD_SIZE={world.size} but {var} is not set; start the workers with torchrun "
                                 "or `neuro train --nproc N`")
        dist.init_process_group(backend_for(dev), device_id=dev if dev.type == "cuda" else None)
    if dist.get_world_size() != world.size or dist.get_rank() != world.rank:
        raise NeuroError(f"the process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match "
                         f"the environment (RANK={world.rank}, WORLD_SIZE={world.size})")
    return world, dev


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# -- the data shard --------------------------------------------------------------------------------------
def check_divisible(batch_size: int, world: World, grad_accum: int = 1) -> None:
    if batch_size % (world.size * grad_accum):
        raise NeuroError(f"the global batch of {batch_size} does not split evenly over {world.size} process(es) x "
                         f"{grad_accum} accumulation step(s); choose a batch size divisible by {world.size * grad_accum}")


def shard(batch: dict, rank: int, size: int) -> dict:
    """This rank's rows of a global batch: rank, rank+size, ... (the strided split DistributedSampler makes)."""
    if size == 1:
        return batch
    return {k: v[rank::size] if torch.is_tensor(v) and v.dim() > 0 else v for k, v in batch.items()}


# -- the model -------------------------------------------------------------------------------------------
class LossModule(torch.nn.Module):
    """`compute_loss` as `forward`: DDP synchronises gradients only for work done inside its forward."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict):
        return self.model.compute_loss(batch)


def wrap(model: torch.nn.Module, device: torch.device, comm_hook: str = "") -> DistributedDataParallel:
    """DDP over `model.compute_loss` (parameters broadcast from rank 0), with the named communication hook."""
    ddp = DistributedDataParallel(LossModule(model), device_ids=[device] if device.type == "cuda" else None)
    state, hook = make_hook(comm_hook)
    if hook is not None:
        ddp.register_comm_hook(state, hook)
    return ddp


def parse_hook(spec: str) -> tuple[str, int, int]:
    """"" | "allreduce" | "fp16" | "powersgd:RANK[:START]" -> (kind, rank, start iteration)."""
    kind, *rest = (spec or "").split(":")
    if kind in ("", "allreduce", "fp16") and not rest:
        return kind, 0, 0
    if kind == "powersgd" and 1 <= len(rest) <= 2 and all(r.isdigit() for r in rest) and int(rest[0]) > 0:
        return kind, int(rest[0]), int(rest[1]) if len(rest) == 2 else 10
    raise NeuroError(f"unknown communication hook {spec!r}; use allreduce, fp16 or powersgd:RANK[:START] "
                     "(e.g. powersgd:4:10)")


def make_hook(spec: str):
    """-> (state, hook) for DistributedDataParallel.register_comm_hook; (None, None) for DDP's own all-reduce."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

    kind, rank, start = parse_hook(spec)
    if kind == "":
        return None, None
    if kind == "allreduce":
        return None, default_hooks.allreduce_hook
    if kind == "fp16":
        return None, default_hooks.fp16_compress_hook
    # start_powerSGD_iter must be >= 2 (PowerSGD's rule: DDP builds its buckets in the first iterations)
    state = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=rank,
                                        start_powerSGD_iter=max(start, 2), min_compression_rate=2,
                                        use_error_feedback=True, warm_start=True, random_seed=0)
    return state, in_bucket_order(powerSGD_hook.powerSGD_hook)


def in_bucket_order(hook):
    """`hook`, started for bucket i only when bucket i-1's communication is complete. PowerSGD issues its
    second all-reduce from a callback; with several buckets those callbacks can run in a different order
    on different ranks, and gloo, which pairs collectives by their order, then aborts ("Received data
    size doesn't match expected size"). Serialising the buckets keeps every rank's order the same."""
    last = {"future": None}

    def ordered(state, bucket):
        previous = last["future"]
        if bucket.index() == 0 or previous is None:  # the first bucket of an iteration: nothing pending
            future = hook(state, bucket)
        else:
            future = torch.futures.Future()

            def start(_):
                try:
                    hook(state, bucket).add_done_callback(lambda f: _forward(f, future))
                except Exception as e:  # noqa: BLE001 - handed to DDP, which raises it in backward
                    future.set_exception(e)

            previous.add_done_callback(start)
        last["future"] = future
        return future

    return ordered


def _forward(done, future) -> None:
    try:
        future.set_result(done.value())
    except Exception as e:  # noqa: BLE001
        future.set_exception(e)


@contextlib.contextmanager
def count_allreduce_bytes():
    """Count the bytes handed to torch.distributed.all_reduce inside the block (what a communication hook
    sends per rank; a ring all-reduce moves about 2(W-1)/W times that over the wire). DDP's built-in
    all-reduce runs in C++ and is not seen: use the "allreduce" hook for an uncompressed baseline."""
    counter = {"bytes": 0, "calls": 0}
    original = dist.all_reduce

    def counting(tensor, *args, **kwargs):
        counter["bytes"] += tensor.numel() * tensor.element_size()
        counter["calls"] += 1
        return original(tensor, *args, **kwargs)

    dist.all_reduce = counting  # the hooks call dist.all_reduce through the module, so this sees them all
    try:
        yield counter
    finally:
        dist.all_reduce = original


# -- agreement between ranks -----------------------------------------------------------------------------
def all_sum(values: list[float], device: torch.device) -> list[float]:
    """The element-wise sum over ranks of a few numbers (one small all-reduce)."""
    t = torch.tensor(values, dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
    distributed_c10d.all_reduce(t)  # not through dist.all_reduce: count_allreduce_bytes counts the hooks' only
    return t.tolist()


def broadcast_from_main(obj):
    """Rank 0's `obj` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# -- launching -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(entrypoint, nproc: int, *args, monitor_interval: float = 0.1) -> dict:
    """Run `entrypoint(*args)` in `nproc` local processes with torchrun's elastic launcher (the same
    environment torchrun sets; rendezvous on 127.0.0.1 at a free port) -> {rank: return value}.
    `entrypoint` is a picklable function, or a program path whose `args` are its arguments."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise NeuroError(f"--nproc must be at least 1, got {nproc}")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{free_port()}", max_restarts=0,
                          monitor_interval=monitor_interval, start_method="spawn")
    # the elastic agent installs its own SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers in this process and leaves
    # them behind: put back what the caller had, so a later SIGTERM means what it meant before
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
    previous = {s: signal.getsignal(s) for s in handled} if threading.current_thread() is threading.main_thread() else {}
    try:
        return elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        detail = failure.message if isinstance(failure.message, str) else failure.message.get("message", "")
        raise NeuroError(f"worker {rank} of {nproc} failed: {str(detail).strip().splitlines()[-1] if detail else e}")\
            from None
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: installed outside Python, nothing to put back
                signal.signal(signum, handler)
