"""Write the public names of azure-ai-inference to docs/azure-ai-inference-names.txt.

The migration guide (docs/migration.md) must name every one of them; tests/test_migration.py
checks it against this list, and against the installed package when it is there. Run it
after installing the ``bench`` extra (azure-ai-inference==1.0.0b9):
``python scripts/azure_names.py``.

Each line is ``kind<TAB>name``: ``module`` (dotted), ``class`` / ``function`` (the public
names of a module), ``method`` (``Class.method``), ``param`` (a keyword of a public
constructor or method, ``name=``), ``kwarg`` (a keyword taken through ``**kwargs``, ``name=``),
``member`` (``Enum.MEMBER``).
"""

from __future__ import annotations

import enum
import importlib
import inspect
import sys
from pathlib import Path

MODULES = (
    "azure.ai.inference",
    "azure.ai.inference.aio",
    "azure.ai.inference.models",
    "azure.ai.inference.tracing",
)
OUT = Path(__file__).resolve().parent.parent / "docs" / "azure-ai-inference-names.txt"
# Keywords the clients take through ``**kwargs`` (azure-core's pipeline and the SDK's README):
# not visible in a signature, so listed here.
CORE_KWARGS = (
    "api_version",
    "connection_timeout",
    "connection_verify",
    "credential_scopes",
    "headers",
    "logging_enable",
    "read_timeout",
    "retry_total",
    "transport",
    "user_agent",
)
# Parameters every method has in some form, not names users pass.
_SKIP_PARAMS = frozenset({"self", "args", "kwargs", "cls"})


def _members(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)))


def _params(func: object) -> list[str]:
    try:
        signature = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in _SKIP_PARAMS]


def _class_lines(cls: type) -> set[tuple[str, str]]:
    lines: set[tuple[str, str]] = set()
    if issubclass(cls, enum.Enum):
        lines.update(("member", f"{cls.__name__}.{m.name}") for m in cls)
        return lines
    lines.update(("param", f"{p}=") for p in _params(cls.__init__))
    if cls.__module__.startswith("azure.ai.inference.models"):
        return lines  # a model: its constructor keywords are its fields
    for name in _members(cls):
        lines.add(("method", f"{cls.__name__}.{name}"))
        lines.update(("param", f"{p}=") for p in _params(getattr(cls, name)))
    return lines


def names() -> list[str]:
    """Every line of the list, sorted."""
    lines: set[tuple[str, str]] = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        lines.add(("module", module_name))
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                lines.add(("class", name))
                lines.update(_class_lines(obj))
            else:
                lines.add(("function", name))
                lines.update(("param", f"{p}=") for p in _params(obj))
    lines.update(("kwarg", f"{name}=") for name in CORE_KWARGS)
    return [f"{kind}\t{name}" for kind, name in sorted(lines)]


def main() -> None:
    """Write the list (or, with ``--check``, exit 1 when the file differs)."""
    import azure.ai.inference

    header = f"# public names of azure-ai-inference {azure.ai.inference.__version__}"
    text = "\n".join([header, *names()]) + "\n"
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else 1)
    OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
