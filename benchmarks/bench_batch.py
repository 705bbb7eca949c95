"""Batch runs against the emulator: throughput under a rate limit, and resume after SIGKILL.

**Throughput.** The emulator answers each request after ``--latency`` seconds and admits at most
``--rpm`` requests per minute (a token bucket holding ``--window`` seconds' worth, refilled
continuously; past it: HTTP 429 with ``Retry-After``). A batch of enough requests to last
``--seconds`` runs with ``--concurrency`` requests in flight, in two set-ups:

* ``learnt``: the runner is told nothing; it learns the limit from the ``x-ratelimit-*``
  headers (and the 429s of its first burst);
* ``told``: the runner is given the limit (``requests_per_minute``).

Reported: the rate the emulator admitted requests at after ``--warmup`` seconds (admissions
from then to the last one, over that time) against the allowed rate, and the 429s before and
after the warm-up (the emulator's own verdicts). Goals: at least 95% of the allowed rate, no
429 after the warm-up.

**Resume.** ``--trials`` times: ``python -m inference batch`` runs ``--resume-requests``
requests in a child process, is killed with SIGKILL at a random moment between its first
result and its last, and is run again to the end. Each trial checks the output: every
custom_id exactly once (none lost, none duplicated), and no request with a result before the
kill sent again. Goal: zero lost and zero duplicated custom_ids over all trials.

Usage: ``python benchmarks/bench_batch.py [--seconds S] [--rpm N] [--trials N] [--quick]
[--json FILE]``. ``--quick`` uses tiny sizes: it only shows that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inference.batch import Counts, run_batch
from inference.testing import Emulator, EmulatorOptions


def write_requests(path: Path, count: int) -> None:
    """``count`` chat requests r0, r1, ... (short answers)."""
    with path.open("w") as file:
        for i in range(count):
            body = {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 8}
            line = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions"}
            file.write(json.dumps({**line, "body": body}) + "\n")


class Timeline:
    """Completion times (a progress sink) and the emulator's verdicts (wrapped)."""

    def __init__(self, emulator: Emulator) -> None:
        self.done: list[float] = []
        self.admitted: list[float] = []
        self.refused: list[float] = []
        limiter = emulator._rate_limiter  # the harness watches the emulator's own verdicts
        admit = limiter.admit

        def watched(*args: Any, **kwargs: Any) -> Any:
            verdict = admit(*args, **kwargs)
            (self.admitted if verdict.admitted else self.refused).append(time.monotonic())
            return verdict

        limiter.admit = watched  # type: ignore[method-assign]

    def update(self, counts: Counts) -> None:
        """A result was written."""
        self.done.append(time.monotonic())

    def close(self, counts: Counts) -> None:
        """The run ended."""


async def throughput(args: argparse.Namespace, told: bool) -> dict[str, Any]:
    """One rate-limited run; its rate after the warm-up and its 429s."""
    allowed = args.rpm / 60.0
    count = int(allowed * args.seconds)
    options = EmulatorOptions(
        first_token_delay=args.latency, rate_limit_requests=args.rpm, rate_limit_window=args.window
    )
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        write_requests(source, count)
        async with Emulator(options) as emulator:
            timeline = Timeline(emulator)
            start = time.monotonic()
            summary = await run_batch(
                source,
                target,
                endpoint=emulator.endpoint(),
                concurrency=args.concurrency,
                requests_per_minute=args.rpm if told else None,
                progress=timeline,
            )
    # The rate the server admitted requests at, from the end of the warm-up to the last one.
    end = max(timeline.done)
    since = start + args.warmup
    steady = [t for t in timeline.admitted if t >= since]
    rate = (len(steady) - 1) / (steady[-1] - since) if len(steady) > 1 else 0.0
    return {
        "setup": "told" if told else "learnt",
        "requests": count,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "seconds": round(end - start, 2),
        "allowed_per_s": round(allowed, 3),
        "rate_after_warmup_per_s": round(rate, 3),
        "share_of_allowed": round(rate / allowed, 4),
        "throttled_in_warmup": sum(1 for t in timeline.refused if t < since),
        "throttled_after_warmup": sum(1 for t in timeline.refused if t >= since),
    }


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_bytes().splitlines()]


def _batch(source: Path, target: Path, endpoint: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "inference", "batch", str(source), str(target)]
    command += ["--endpoint", endpoint, "--concurrency", "8", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_INFERENCE")}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _kill_at_random(child: subprocess.Popen[bytes], target: Path, rng: random.Random) -> float:
    """Wait for the first result, then SIGKILL ``child`` after a random delay; the delay."""
    deadline = time.monotonic() + 30
    while not (target.exists() and target.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.002)
    delay = rng.uniform(0.0, 1.0)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    return delay


def resume_trial(emulator: Emulator, count: int, rng: random.Random) -> dict[str, Any]:
    """Kill a batch at a random moment, rerun it, check the output."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        write_requests(source, count)
        delay = _kill_at_random(_batch(source, target, emulator.endpoint()), target, rng)
        written = target.read_bytes()
        finished = {
            json.loads(x)["custom_id"] for x in written[: written.rfind(b"\n") + 1].splitlines()
        }
        torn = not written.endswith(b"\n") and bool(written)
        before = len(emulator.requests)
        rerun = _batch(source, target, emulator.endpoint())
        _, err = rerun.communicate(timeout=120)
        if rerun.returncode != 0:
            raise RuntimeError(f"the rerun failed: {err.decode()[-2000:]}")
        resent = {
            "r" + r.json["messages"][0]["content"].split()[1] for r in emulator.requests[before:]
        }
        ids = _ids(target)
    expected = {f"r{i}" for i in range(count)}
    return {
        "killed_after_s": round(delay, 3),
        "finished_before_kill": len(finished),
        "torn_line": torn,
        "lost": len(expected - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "finished_sent_again": len(resent & finished),
    }


def resume(args: argparse.Namespace) -> dict[str, Any]:
    """``--trials`` resume trials against one emulator."""
    rng = random.Random(args.seed)
    trials = []
    with Emulator(EmulatorOptions(first_token_delay=args.latency)).run_in_thread() as emulator:
        for _ in range(args.trials):
            trials.append(resume_trial(emulator, args.resume_requests, rng))
    return {
        "trials": trials,
        "lost": sum(t["lost"] for t in trials),
        "duplicated": sum(t["duplicated"] for t in trials),
        "finished_sent_again": sum(t["finished_sent_again"] for t in trials),
        "killed_mid_run": sum(
            1 for t in trials if 0 < t["finished_before_kill"] < args.resume_requests
        ),
    }


def main() -> None:
    """Run both measurements and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of a throughput run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not counted")
    parser.add_argument("--rpm", type=int, default=1200, help="the emulator's request limit")
    parser.add_argument("--window", type=float, default=1.0, help="its bucket, in seconds")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--resume-requests", type=int, default=400)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (harness check)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.trials, args.resume_requests = 3.0, 1.0, 2, 60
    results = {
        "throughput": [asyncio.run(throughput(args, told)) for told in (False, True)],
        "resume": resume(args),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
    }
    for run in results["throughput"]:
        print(
            f"throughput ({run['setup']}): {run['rate_after_warmup_per_s']}/s after the warm-up "
            f"= {run['share_of_allowed']:.1%} of {run['allowed_per_s']}/s; 429s: "
            f"{run['throttled_in_warmup']} in the warm-up, {run['throttled_after_warmup']} after; "
            f"{run['succeeded']} succeeded, {run['failed']} failed"
        )
    summary = results["resume"]
    print(
        f"resume: {len(summary['trials'])} SIGKILL trials ({summary['killed_mid_run']} mid-run), "
        f"{summary['lost']} lost, {summary['duplicated']} duplicated, "
        f"{summary['finished_sent_again']} finished requests sent again"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
