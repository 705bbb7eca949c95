"""Importing the package is cheap: heavy dependencies load when first needed.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything) and reads which modules the import loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import inference

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("aiohttp", "azure.identity", "azure.core", "attrs", "cattrs", "yarl")


def loaded_after(statement: str) -> set[str]:
    """The heavy modules that ``statement`` imports in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
        check=True,
    )
    return set(json.loads(proc.stdout))


@pytest.mark.parametrize(
    "statement",
    [
        "import inference",
        "from inference import ChatCompletionsClient, EmbeddingsClient, Timeout",
        "import inference.aio, inference.models",
    ],
)
def test_import_loads_no_heavy_dependency(statement: str) -> None:
    """Importing the package, its clients or the async API loads neither aiohttp nor
    azure-identity; ``import inference`` alone loads no dependency at all."""
    loaded = loaded_after(statement)
    assert "aiohttp" not in loaded and "azure.identity" not in loaded and "yarl" not in loaded
    if statement == "import inference":
        assert loaded == set()


def test_aiohttp_loads_with_the_first_client() -> None:
    """The first client built imports aiohttp (the transport needs it from then on)."""
    statement = (
        "from inference import ChatCompletionsClient\n"
        "ChatCompletionsClient('http://127.0.0.1:1/v1').close()"
    )
    assert "aiohttp" in loaded_after(statement)


def test_every_public_name_resolves() -> None:
    """Every name in ``inference.__all__`` is reachable and listed by ``dir()``; an unknown
    name is an AttributeError."""
    for name in inference.__all__:
        assert getattr(inference, name) is not None, name
    assert set(inference.__all__) <= set(dir(inference))
    with pytest.raises(AttributeError, match="no_such_name"):
        inference.no_such_name  # noqa: B018


def test_submodules_are_reachable_from_the_package() -> None:
    """After ``import inference`` alone, ``inference.models``, ``inference.aio`` and
    ``inference.exceptions`` work as attributes, as when everything was imported at once."""
    statement = (
        "import inference\n"
        "assert inference.models.UserMessage('x').content == 'x'\n"
        "assert inference.aio.ChatCompletionsClient.__name__ == 'ChatCompletionsClient'\n"
        "assert inference.exceptions.InferenceError is inference.InferenceError"
    )
    assert "aiohttp" not in loaded_after(statement)


def test_the_import_benchmark_runs() -> None:
    """``benchmarks/bench_import.py --quick`` times every statement and reports each (how fast
    is not looked at)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_import.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 fresh processes each" in proc.stdout
    for label in ("import inference", "from inference import ChatCompletionsClient"):
        assert f"  {label} " in proc.stdout
