"""Smoke test of the benchmark harness: tiny sizes, one round, no timing assertions.

It proves that ``benchmarks/run.py`` still starts its server, runs every scenario with the
floors and this library's clients in fresh processes (with two timed runs of the repeated
scenarios, as full runs do), checks their results and prints the report. How fast anything
ran is not looked at.
"""

from __future__ import annotations

import json
import statistics
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
REPEAT = 2


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
            "--repeat",
            str(REPEAT),
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
def test_repeated_scenarios_report_the_median_of_their_samples(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, object]],
) -> None:
    """``stream``, ``sequential`` and ``concurrent`` run their timed part ``--repeat`` times
    in one process and report the medians of the kept samples; ``ttft`` runs once."""
    _, data = quick_run
    assert data["repeat"] == REPEAT
    runs = data["runs"]
    sizes = data["sizes"]
    assert isinstance(runs, list) and isinstance(sizes, dict)
    for run in runs:
        if run["scenario"] in ("stream", "sequential", "concurrent"):
            assert run["repeat"] == REPEAT
            assert len(run["samples_seconds"]) == len(run["samples_cpu_seconds"]) == REPEAT
            assert run["seconds"] == statistics.median(run["samples_seconds"])
            assert run["cpu_seconds"] == statistics.median(run["samples_cpu_seconds"])
        else:
            assert "samples_seconds" not in run
        if run["scenario"] == "stream":
            # The server saw the warm-up stream and every repeat.
            assert run["requests"] == 1 + REPEAT
        if run["scenario"] == "sequential":
            # The warm-up request and every repeat of the quick run's requests.
            assert run["requests"] == 1 + REPEAT * sizes["requests"]


@pytest.mark.timeout(180)
def test_targets_judge_the_sync_client_against_the_async_one_only(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, object]],
) -> None:
    """The targets table holds the async client's ratios to raw, the sync client's ratios to
    the async client and keep-alive reuse for both, and no sync-versus-raw verdicts."""
    proc, _ = quick_run
    targets = proc.stdout.split("### Targets", 1)[1].splitlines()
    rows = [line for line in targets if line.startswith("| ")][1:]  # without the header
    sync_rows = [line for line in rows if line.startswith("| inference (sync)")]
    assert sync_rows, targets
    for row in sync_rows:
        assert "over raw" not in row
    assert any("inference (sync) over async, the stream, ≤ 1.2x" in row for row in sync_rows)
    assert any("per non-streamed request, ≤ 1.5x" in row for row in sync_rows)
    assert any("keep-alive" in row for row in sync_rows)
    async_rows = [line for line in rows if line.startswith("| inference (async)")]
    assert sum("over raw ≤" in row for row in async_rows) == 3
    assert any("time to first token ≤ +0.3 ms over raw" in row for row in async_rows)
    assert any("keep-alive" in row for row in async_rows)


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


def test_round_order_keeps_the_fast_clients_together() -> None:
    """Every round runs each client once; the floors and this library's clients come first,
    next to each other, each group rotated by the round number."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.run import round_order
    finally:
        sys.path.remove(str(ROOT))
    clients = ["raw", "floor", "inference-async", "inference-sync", "azure-async", "openai-async"]
    orders = [round_order(clients, k) for k in range(4)]
    for order in orders:
        assert sorted(order) == sorted(clients)
        assert set(order[:4]) == {"raw", "floor", "inference-async", "inference-sync"}
    assert [order[0] for order in orders] == ["raw", "floor", "inference-async", "inference-sync"]
    assert [order[4] for order in orders] == ["azure-async", "openai-async"] * 2
