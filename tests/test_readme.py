"""The README's Quick start snippets run as written (in a subprocess, against the emulator)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.testing import Emulator, EmulatorOptions

README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "readme-key"


def quick_start_blocks() -> list[str]:
    """The ```python blocks of the README's "Quick start" section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## Quick start")
    end = text.index("\n## ", start + 1)
    return re.findall(r"^```python\n(.*?)^```", text[start:end], re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """An emulator on a background thread that requires the key ``readme-key``."""
    with Emulator(EmulatorOptions(key=KEY)).run_in_thread() as emu:
        yield emu


def test_quick_start_has_a_sync_and_an_async_snippet() -> None:
    """Both snippets are found (so the run test below cannot pass on an empty list)."""
    blocks = quick_start_blocks()
    assert len(blocks) == 2
    assert "from inference import ChatCompletionsClient" in blocks[0]
    assert "from inference.aio import ChatCompletionsClient" in blocks[1]


@pytest.mark.parametrize("index", [0, 1], ids=["sync", "async"])
def test_quick_start_snippet_runs_as_written(
    index: int, emulator: Emulator, tmp_path: Path
) -> None:
    """The snippet, saved as a file and run with the endpoint and key set, prints an answer."""
    script = tmp_path / "chat.py"
    script.write_text(quick_start_blocks()[index], encoding="utf-8")
    env = dict(os.environ)
    env.update(
        AZURE_INFERENCE_ENDPOINT=emulator.endpoint("azure_ai_models"),
        AZURE_INFERENCE_CREDENTIAL=KEY,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    before = len(emulator.requests)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stdout.strip()) > 20, done.stdout
    assert len(emulator.requests) - before == 2  # one plain request, one stream
