"""Which names a module's functions spell out, read from its syntax tree (for the tests that
check that parameters and options are declared once)."""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path


def spelled_in(path: Path, functions: Collection[str]) -> set[str]:
    """The names the functions called ``functions`` in the module at ``path`` spell out:
    their parameters, the keyword arguments of the calls they make, and string constants
    (dict keys such as ``"temperature"``)."""
    found: set[str] = set()
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name not in functions:
            continue
        found.update(a.arg for a in function.args.args + function.args.kwonlyargs)
        for node in ast.walk(function):
            if isinstance(node, ast.keyword) and node.arg:
                found.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found
