"""Benchmark suites. Each suite is a module with `add_arguments(parser)` and
`run(args) -> dict`; the dict follows DESIGN.md:

    {"suite", "machine", "git", "config", "results": [{"name", "value", "unit", ...}]}

`neuro bench SUITE [--json] [--out FILE]` prints a table (and JSON when asked).
Register a suite by adding its module to SUITES.
"""
from __future__ import annotations

from neuro_lib.bench import (aeron_modules, ddp, decode, experts, export, family, lm, merge, rag, rlhf, rnk, runtime,
                             scaling, scan, search, speculative, tokenizers, tools)
from neuro_lib.bench import structured as json_suite

SUITES = {
    "lm": lm,
    "tokenizers": tokenizers,
    "scan": scan,
    "scaling": scaling,
    "rnk": rnk,
    "decode": decode,
    "speculative": speculative,
    "search": search,
    "rag": rag,
    "tools": tools,
    "json": json_suite,
    "experts": experts,
    "aeron-modules": aeron_modules,
    "runtime": runtime,
    "ddp": ddp,
    "export": export,
    "family": family,
    "merge": merge,
    "rlhf": rlhf,
}
