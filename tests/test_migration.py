"""The migration guide (docs/migration.md) names every public name of azure-ai-inference,
and what it says exists here does exist.

The names come from the installed package when it is there (the ``bench`` extra), and then
the checked-in list (docs/azure-ai-inference-names.txt) must match it; without the package
the checked-in list is the reference. Either way every name is checked: none is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "migration.md"
NAMES = ROOT / "docs" / "azure-ai-inference-names.txt"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "azure_names", ROOT / "scripts" / "azure_names.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked_in() -> list[tuple[str, str]]:
    """(kind, name) of every line of the checked-in list."""
    lines = NAMES.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# public names of azure-ai-inference 1.0.0b9")
    return [tuple(line.split("\t")) for line in lines[1:]]  # type: ignore[misc]


def test_the_checked_in_list_matches_the_package() -> None:
    """With azure-ai-inference installed, the list regenerated from it is the checked-in one;
    without it, the checked-in list is read (and is not empty)."""
    names = checked_in()
    assert len(names) > 100
    try:
        installed = importlib.util.find_spec("azure.ai.inference") is not None
    except ModuleNotFoundError:  # not even the azure.ai namespace is installed
        installed = False
    if not installed:
        return
    assert [f"{k}\t{n}" for k, n in names] == _generator().names()


def guide_tokens() -> set[str]:
    """Every text in backticks in the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    return set(re.findall(r"`([^`]+)`", text))


@pytest.mark.parametrize(("kind", "name"), checked_in(), ids=lambda v: str(v))
def test_every_azure_name_is_in_the_guide(kind: str, name: str) -> None:
    """Each module, class, function, method, keyword and enum member appears in backticks."""
    assert name in guide_tokens(), f"docs/migration.md does not mention {kind} `{name}`"


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_what_the_guide_points_to_exists() -> None:
    """Every ``inference...`` name the guide gives as a replacement can be imported."""
    targets = sorted(
        {t.split("(")[0] for t in guide_tokens() if re.fullmatch(r"inference(\.\w+)+(\(.*\))?", t)}
    )
    assert len(targets) > 10
    missing = []
    for target in targets:
        try:
            _resolve(target)
        except (ImportError, AttributeError):
            missing.append(target)
    assert missing == []


def test_models_keep_their_names() -> None:
    """The guide says the model and enum classes keep their names in inference.models: each
    class of azure.ai.inference.models that the guide does not call absent is there."""
    import inference.models

    text = GUIDE.read_text(encoding="utf-8")
    absent = set(re.findall(r"`(\w+)` \| absent", text))
    classes = [n for k, n in checked_in() if k == "class"]
    elsewhere = {
        "ChatCompletionsClient",
        "EmbeddingsClient",
        "ImageEmbeddingsClient",
        "AIInferenceInstrumentor",
        "StreamingChatCompletions",
        "AsyncStreamingChatCompletions",
    }
    missing = [
        n for n in classes if n not in absent | elsewhere and not hasattr(inference.models, n)
    ]
    assert missing == []
