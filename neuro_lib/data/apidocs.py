"""The standard library's documented API, read with `ast` from its .py sources: one record per documented public
object (module, class, function, method) with its qualified name, its heading (name and signature) and docstring.

Two texts are written from these records, each deterministic for one Python version:
- data/mixture.py's ``api-docs`` source (the base model's pretraining mix): one document per module, the module
  docstring under its bare name, each object's heading then its docstring indented (bytes unchanged since the
  mixture's VERSION 1: every base cache key depends on them);
- data/corpus.py's ``stdlib-api`` corpus (RAG): every module's name on its own line (a section), then each object
  as a heading line at column 0 with its docstring indented four spaces under it, so a retriever's passage can
  carry the object it documents (rag/passages.py cuts one passage per object).

Python sources only: modules written in C (``math``, ``time``, ``itertools``) have no .py file and are absent.
Private names (a leading underscore, ``__init__`` excepted) and nested functions are left out; private *modules*
(``_pydecimal``) are kept, as the mixture always kept them.

    for module, objects in stdlib_api(): objects[0].head, objects[0].doc
    build_stdlib_api()   # the corpus text (bytes); api_text([(module, api_objects(ast.parse(src), module))])

Tests: tests/test_rag_names.py (the corpus format, determinism, the mixture's api-docs bytes unchanged).
"""
from __future__ import annotations

import ast
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from neuro_lib.data.corpus import _SKIP_DIRS

INDENT = "    "  # docstring lines under a heading; a heading is the only kind of line at column 0


@dataclass(frozen=True)
class ApiObject:
    kind: str   # module | class | function
    name: str   # qualified name: heapq.heappop, json.JSONDecoder.decode
    head: str   # the heading: the module name, "heapq.heappop(heap)", "class json.JSONDecoder(object)"
    doc: str    # the docstring, cleaned (ast.get_docstring(clean=True))


def stdlib_files() -> list[Path]:
    """This Python's stdlib .py files in sorted path order, tests and vendored folders excluded."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py") if not (set(p.relative_to(root).parts[:-1]) & _SKIP_DIRS))


def module_name(path: Path) -> str:
    """The import name of a stdlib file (a package's __init__.py is the package)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def api_objects(tree: ast.Module, module: str) -> list[ApiObject]:
    """The documented public objects of one module, in source order (the module itself first)."""
    out = []
    doc = ast.get_docstring(tree, clean=True)
    if doc:
        out.append(ApiObject("module", module, module, doc))

    def visit(body, prefix: str):
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if node.name.startswith("_") and node.name != "__init__":
                continue
            name = f"{prefix}.{node.name}"
            if isinstance(node, ast.ClassDef):
                bases = ", ".join(ast.unparse(b) for b in node.bases)
                head = f"class {name}({bases})" if bases else f"class {name}"
            else:
                head = f"{name}({ast.unparse(node.args)})"
                if node.returns is not None:
                    head += f" -> {ast.unparse(node.returns)}"
            d = ast.get_docstring(node, clean=True)
            if d:
                out.append(ApiObject("class" if isinstance(node, ast.ClassDef) else "function", name, head, d))
            if isinstance(node, ast.ClassDef):  # methods, whether or not the class has a docstring
                visit(node.body, name)

    visit(tree.body, module)
    return out


def stdlib_api() -> list[tuple[str, list[ApiObject]]]:
    """(module name, its documented objects) for every parsable stdlib file, in sorted path order."""
    out = []
    for path in stdlib_files():
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        out.append((module_name(path), api_objects(tree, module_name(path))))
    return out


def indented(doc: str) -> str:
    """A docstring under its heading: each non-empty line indented by INDENT."""
    return "\n".join(INDENT + line if line else "" for line in doc.splitlines())


def build_stdlib_api() -> bytes:
    """The ``stdlib-api`` corpus text of this Python's standard library."""
    return api_text(stdlib_api())


def api_text(modules: list[tuple[str, list[ApiObject]]]) -> bytes:
    """Per module with documented objects, its name line, then one entry per object (the module docstring under
    the name; each other object's heading, its docstring indented), blank-line separated."""
    parts = []
    for module, objects in modules:
        if not objects:
            continue
        lines = [module]
        for o in objects:
            if o.kind == "module":
                lines[0] = module + "\n" + indented(o.doc)
            else:
                lines.append(o.head + "\n" + indented(o.doc))
        parts.append("\n\n".join(lines) + "\n")
    return "\n".join(parts).encode("utf-8")
