"""The value parsers of every door (the CLI, its command modules, the bench suites): one each.

An argparse `type=` callable turns text into a value or raises ArgumentTypeError with the reason,
which the parser prints as one line (`neuro: error: ...`, exit 2) before any work starts.

    p.add_argument("--lr", type=number(float, 0))       # finite, > 0
    p.add_argument("--seed", type=seed)                  # an integer in [0, 2**63)
"""
from __future__ import annotations

import argparse
import math

SEED_LIMIT = 2**63  # torch, numpy and JSON readers all take a seed below this (a signed 64-bit integer)


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error: `neuro: error: ...`, exit 2."""

    def error(self, message):
        self.exit(2, f"neuro: error: {self.prog}: {message} (see {self.prog} --help)\n")


def number(kind, low=None, strict=True, high=None):
    """An argparse type: a finite number of `kind`, above `low` (or at least `low` when not strict),
    below `high` when given."""
    def check(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (v <= low if strict else v < low):
            raise argparse.ArgumentTypeError(f"must be {'positive' if low == 0 and strict else f'at least {low}'}"
                                             f", got {text}")
        if high is not None and v >= high:
            raise argparse.ArgumentTypeError(f"must be below {high}, got {text}")
        return v
    return check


def positive(kind):
    return number(kind, 0)


seed = number(int, 0, strict=False, high=SEED_LIMIT)
