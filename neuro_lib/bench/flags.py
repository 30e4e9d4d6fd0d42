"""The flags several bench suites share, declared once with one meaning (each suite picks its default).

    from neuro_lib.bench.flags import add_seed, add_threads
    add_threads(p)            # --threads N: torch threads, 0 = leave as is
    add_seed(p, 1337)         # --seed: an integer in [0, 2**63)
"""
from __future__ import annotations

from neuro_lib.argtypes import number, seed


def add_threads(p, default: int = 0) -> None:
    p.add_argument("--threads", type=number(int, 0, strict=False), default=default,
                   help=f"torch threads (0 = leave as is; default {default})")


def add_seed(p, default: int = 0, help: str = "fixes the weights, data and sampling of the run") -> None:
    p.add_argument("--seed", type=seed, default=default, help=help)
