"""Smoke test of benchmarks/bench_batch.py: tiny sizes, no timing assertion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(120)
def test_the_batch_benchmark_runs_both_measurements(tmp_path: Path) -> None:
    """--quick runs both throughput set-ups and two SIGKILL trials, and reports complete runs
    with nothing lost or duplicated (how fast is not looked at)."""
    out = tmp_path / "results.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_batch.py"),
            "--quick",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["setup"] for r in results["throughput"]] == ["learnt", "told"]
    for throughput in results["throughput"]:
        assert throughput["succeeded"] == throughput["requests"] > 0
        assert throughput["rate_after_warmup_per_s"] > 0
    resume = results["resume"]
    assert len(resume["trials"]) == 2
    assert (resume["lost"], resume["duplicated"]) == (0, 0)
    assert "resume: 2 SIGKILL trials" in run.stdout
