"""The one YAML reader of the package: graphs and settings files go through `load_yaml`.

`yaml.safe_load` runs no code, but it is not bounded: anchors and aliases build a document that is
small on disk and shared in memory ("billion laughs": nine lines, a list of 10**9 strings once
anything walks it), a self-referencing alias builds a cycle, and deep nesting overflows the
composer's recursion. Every such file is refused here with one sentence (NeuroError) before any
object is built: the file's size is capped, the node graph is composed first, and its size *as if
every alias were copied* is counted (memoised per node, so the count itself is linear in the file).

    doc = load_yaml("data/graphs/default.yaml", "graph default.yaml")

Tests: tests/test_hardening_limits.py.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from neuro_lib.errors import NeuroError

MAX_YAML_BYTES = 1 << 20      # graphs and settings are a few KiB
MAX_YAML_NODES = 100_000      # scalars, sequences and mappings, with every alias expanded


def _expanded_nodes(root: yaml.Node, label: str) -> int:
    """How many nodes the document has once every alias is copied; a cycle (an alias inside its own
    anchor) or more than MAX_YAML_NODES is refused. Iterative: deep files do not exhaust the stack."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [x for pair in node.value for x in pair]
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            if size[key] > MAX_YAML_NODES:
                raise NeuroError(f"{label} expands to more than {MAX_YAML_NODES} YAML nodes once its aliases are "
                                 f"copied (an alias bomb?); it is refused")
            continue
        if key in size:
            continue
        if key in open_:
            raise NeuroError(f"{label} has an alias that refers to itself (a cycle); it is refused")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)]


def load_yaml(path: str | Path, label: str):
    """Parse one YAML file safely and boundedly: NeuroError (one sentence starting with `label`) for a file
    that is too large, not UTF-8, not YAML, nested too deeply, cyclic, or an alias bomb."""
    p = Path(path)
    try:
        n_bytes = p.stat().st_size
        if n_bytes > MAX_YAML_BYTES:
            raise NeuroError(f"{label} is {n_bytes} bytes; YAML files are read up to {MAX_YAML_BYTES} bytes")
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NeuroError(f"{label} is not UTF-8 text") from None
    except OSError as e:
        raise NeuroError(f"{label} cannot be read: {e.strerror or e}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, label)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise NeuroError(f"{label} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise NeuroError(f"{label} is nested too deeply to read") from None
    finally:
        loader.dispose()
