"""Smoke test of the benchmark harness: tiny sizes, one round, no timing assertions.

It proves that ``benchmarks/run.py`` still starts its server, runs every scenario with the
floors and this library's clients in fresh processes, checks their results and prints the
report. How fast anything ran is not looked at.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("raw", "floor", "inference-async", "inference-sync")
LABELS = (
    "raw aiohttp bytes",
    "aiohttp + SSE split + orjson",
    "inference (async)",
    "inference (sync)",
)
SCENARIOS = ("stream", "sequential", "concurrent", "ttft")


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """Run the harness once in quick mode; return the process and its JSON results."""
    out = tmp_path_factory.mktemp("bench") / "runs.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--no-sse",
            "--clients",
            ",".join(CLIENTS),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc, data


@pytest.mark.timeout(180)
def test_quick_run_exits_cleanly_and_reports_every_client(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, object]],
) -> None:
    """The quick run exits 0 and its report has a row per client in every scenario table."""
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = proc.stdout
    for heading in ("### One stream of", "### 20 sequential", "### 10 concurrent", "### Time to"):
        assert heading in report
    for label in LABELS:
        # The summary table plus four scenario tables each name the client.
        assert report.count(f"| {label} |") >= 4, label
    assert "### Targets" in report
    assert "Failed runs" not in report


@pytest.mark.timeout(180)
def test_quick_run_records_checked_results_for_every_pair(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, object]],
) -> None:
    """Every client x scenario produced one result with its workload and server counters."""
    _, data = quick_run
    runs = data["runs"]
    assert isinstance(runs, list)
    pairs = {(run["client"], run["scenario"]) for run in runs}
    assert pairs == {(c, s) for c in CLIENTS for s in SCENARIOS}
    for run in runs:
        assert run["seconds"] > 0
        assert run["requests"] >= 1
        assert run["connections"] >= 1
        assert run["peak_rss"] > 0
        if run["scenario"] == "ttft":
            assert run["ttft"] > 0
        if run["scenario"] == "concurrent":
            assert run["mem_streams_open"] >= 1


@pytest.mark.timeout(180)
def test_this_library_reuses_the_connection_after_each_stream(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, object]],
) -> None:
    """Streams read one after the other by the async and the sync client share one
    keep-alive connection (the body is read to its end after ``[DONE]``)."""
    _, data = quick_run
    runs = data["runs"]
    assert isinstance(runs, list)
    for client in ("inference-async", "inference-sync"):
        (run,) = [r for r in runs if r["client"] == client and r["scenario"] == "ttft"]
        assert run["requests"] == 6  # warm-up plus five samples
        assert run["connections"] == 1
