"""Command modules of the `neuro` CLI, registered the way bench suites are.

Each module has `register(sub)`: it adds its subparser(s) to the `neuro` subparsers and sets
`func` (a callable taking the parsed arguments and returning an exit status or None). Library
logic stays in the library; a command parses, checks its input in one sentence and calls.
Register a command by adding its module to COMMANDS.
"""
from __future__ import annotations

from neuro_lib.commands import align, claims, export, family, graph, info, merge, nproc, rag, structured, workbook

COMMANDS: list = [structured, rag, graph, workbook, info, nproc, family, align, merge, export, claims]  # `neuro --help` order
