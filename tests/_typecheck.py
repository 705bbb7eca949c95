"""Type-check a sample of user code with ``mypy --strict`` and compare its errors with the
lines the sample marks ``# error:``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mypy_errors(sample_text: str, folder: Path) -> tuple[set[int], set[int], str]:
    """Run ``mypy --strict`` on ``sample_text`` (written into ``folder``).

    Returns the lines mypy reported an error on, the lines marked ``# error:`` in the
    sample, and mypy's output (for the assertion message).
    """
    sample = folder / "sample.py"
    sample.write_text(sample_text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         str(sample)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=300,
    )  # fmt: skip
    expected = {i + 1 for i, line in enumerate(sample_text.splitlines()) if "# error:" in line}
    reported = {
        int(line.split(":")[1])
        for line in result.stdout.splitlines()
        if line.startswith(str(sample)) and ": error:" in line
    }
    return reported, expected, result.stdout
