"""Run the client benchmarks: every client x scenario, each in a fresh process, in rounds.

Usage::

    python benchmarks/run.py                      # full sizes, 5 rounds, every installed client
    python benchmarks/run.py --rounds 3 --write-readme
    python benchmarks/run.py --quick --clients raw,floor,inference-async,inference-sync

It starts the local server (``benchmarks/server.py``, its own process), then runs round after
round; a round runs every scenario with every client once, the clients in an order rotated by
the round number (this library's clients and the two floors first, next to each other, then
the peer libraries). Each run is a new process (``python -m benchmarks.clients.<name>``) that
prints one JSON line. Inside that process the timed part of ``stream``, ``sequential`` and
``concurrent`` runs ``--repeat`` times (default 3) and the process reports the medians;
``ttft`` is timed once (it is the median of 100 requests). The server's ``/stats`` before and
after a run give its TCP connections per request.

Reported per client and scenario: the median wall time over rounds and its ratio to the raw
aiohttp floor (the median of the ratios of the same round, so a slow moment on the machine
hits both sides), the same for the client process's CPU time, chunks per second or
microseconds per request, time to first token and how much it adds to the floor's, the
process's peak resident memory, memory per open stream, and connections per request.
Peer libraries (``azure-ai-inference``, ``openai``: the ``bench`` extra) are skipped, with a
note, when they are not installed.

``--quick`` uses tiny sizes, one round and one timed sample: it proves the harness works, it
measures nothing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.clients import CLIENTS  # noqa: E402
from benchmarks.clients._common import REPEATED  # noqa: E402

__all__ = ["SCENARIOS", "Run", "main", "render"]

SCENARIOS = ("stream", "sequential", "concurrent", "ttft")
FULL_REPEAT = 3  # timed samples per process of the scenarios in REPEATED (1 with --quick)

FULL_SIZES: dict[str, float] = {
    "chunks": 20_000,
    "requests": 2_000,
    "concurrency": 200,
    "concurrent_chunks": 200,
    "samples": 100,
    "ttft_chunks": 20,
    "gap_ms": 3,
    "mem_gap_ms": 2000,
}
QUICK_SIZES: dict[str, float] = {
    "chunks": 200,
    "requests": 20,
    "concurrency": 10,
    "concurrent_chunks": 20,
    "samples": 5,
    "ttft_chunks": 5,
    "gap_ms": 2,
    "mem_gap_ms": 300,
}

README = ROOT / "benchmarks" / "README.md"
START_MARK = "<!-- results:start -->"
END_MARK = "<!-- results:end -->"

Run = dict[str, Any]  # one client process's JSON result plus the server's counters


# -- the server ------------------------------------------------------------------------------


class Server:
    """The benchmark server in its own process."""

    def __init__(self, sizes: Sequence[int], pin: int | None) -> None:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "server.py"), "--port", "0"]
        cmd += ["--chunks", ",".join(str(s) for s in sizes)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=_pinner(pin)
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.match(r"listening on ([\d.]+):(\d+)", line)
        if not match:
            self.stop()
            raise SystemExit(f"the benchmark server did not start: {line!r}")
        self.port = int(match.group(2))

    def stats(self) -> dict[str, int]:
        """The server's counters (this probe's connection is not counted)."""
        url = f"http://127.0.0.1:{self.port}/stats"
        request = urllib.request.Request(url, headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, int] = json.loads(response.read())
        return data

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _pinner(cpu: int | None) -> Any:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


# -- running clients -------------------------------------------------------------------------


def client_command(
    name: str, scenario: str, port: int, sizes: dict[str, float], repeat: int = 1
) -> list[str]:
    """The command line that runs one scenario with one client (``repeat`` timed samples of
    the scenarios in ``REPEATED``)."""
    cmd = [sys.executable, "-m", CLIENTS[name].module, "--scenario", scenario]
    cmd += ["--port", str(port), "--repeat", str(repeat)]
    for key, value in sizes.items():
        cmd += [f"--{key.replace('_', '-')}", f"{value:g}"]
    return cmd


def run_one(
    server: Server,
    name: str,
    scenario: str,
    sizes: dict[str, float],
    timeout: float,
    pin: int | None,
    repeat: int = 1,
) -> Run:
    """Run one client process; return its result with connections and requests added, or a
    result with an ``error`` key."""
    before = server.stats()
    cmd = client_command(name, scenario, server.port, sizes, repeat)
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_pinner(pin),
        )
    except subprocess.TimeoutExpired:
        return {"client": name, "scenario": scenario, "error": f"timed out after {timeout} s"}
    after = server.stats()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {
            "client": name,
            "scenario": scenario,
            "error": f"exit code {proc.returncode}: " + " | ".join(tail),
        }
    result: Run = json.loads(lines[-1])
    result["connections"] = after["connections"] - before["connections"]
    result["requests"] = after["requests"] - before["requests"]
    return result


def rotated(items: Sequence[str], k: int) -> list[str]:
    """``items`` rotated left by ``k``."""
    if not items:
        return []
    k %= len(items)
    return list(items[k:]) + list(items[:k])


# Clients that take about a second per run: they run next to each other in every round, so
# that ``raw`` and this library's clients are measured seconds apart, not with a peer
# library's half-minute runs in between (the machine's speed drifts over seconds).
FAST_CLIENTS = ("raw", "floor", "inference-async", "inference-sync")


def round_order(clients: Sequence[str], k: int) -> list[str]:
    """The order of round ``k``: the fast clients rotated by ``k``, then the peers rotated."""
    fast = [c for c in clients if c in FAST_CLIENTS]
    peers = [c for c in clients if c not in FAST_CLIENTS]
    return rotated(fast, k) + rotated(peers, k)


# -- statistics ------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


class Results:
    """Every run, indexed by (round, scenario, client)."""

    def __init__(self, clients: Sequence[str], scenarios: Sequence[str] = SCENARIOS) -> None:
        self.clients = list(clients)
        self.scenarios = [s for s in SCENARIOS if s in scenarios]
        self.runs: dict[tuple[int, str, str], Run] = {}
        self.errors: list[str] = []

    def add(self, round_no: int, run: Run) -> None:
        """Record one run (or its error)."""
        if "error" in run:
            self.errors.append(f"{run['client']} / {run['scenario']}: {run['error']}")
            return
        self.runs[(round_no, run["scenario"], run["client"])] = run

    def rounds(self, scenario: str, client: str) -> list[tuple[int, Run]]:
        """The successful runs of one client in one scenario, by round."""
        return sorted(
            (r, run) for (r, s, c), run in self.runs.items() if s == scenario and c == client
        )

    def values(self, scenario: str, client: str, key: str) -> list[float]:
        """One field of every run of a client in a scenario."""
        return [
            float(run[key]) for _, run in self.rounds(scenario, client) if run.get(key) is not None
        ]

    def round_ratios(
        self, scenario: str, client: str, base: str, key: str, *, diff: bool = False
    ) -> list[float]:
        """client/base (or client - base) for one field, one value per round both ran in."""
        theirs = {r: run.get(key) for r, run in self.rounds(scenario, base)}
        out = []
        for r, run in self.rounds(scenario, client):
            mine, other = run.get(key), theirs.get(r)
            if mine is None or other is None:
                continue
            if diff:
                out.append(float(mine) - float(other))
            elif other:
                out.append(float(mine) / float(other))
        return out

    def same_round(
        self, scenario: str, client: str, base: str, key: str, *, diff: bool = False
    ) -> float | None:
        """Median over rounds of client/base (or client - base) for one field."""
        return _median(self.round_ratios(scenario, client, base, key, diff=diff))


# -- rendering -------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def _label(name: str) -> str:
    return CLIENTS[name].label


def render(results: Results, sizes: dict[str, float], sse_line: str | None, repeat: int = 1) -> str:
    """The Markdown report: summary, one table per scenario that ran, and the targets."""
    clients = results.clients
    base = "raw" if "raw" in clients else None
    out: list[str] = []

    # Summary, as the issue lays it out: wall time relative to the raw floor.
    out.append("Wall time relative to the raw aiohttp floor (median of same-round ratios):\n")
    out.append("| scenario | " + " | ".join(_label(c) for c in clients) + " |")
    out.append("|---|" + "---:|" * len(clients))
    names = {
        "stream": f"one {sizes['chunks']:,.0f}-chunk stream",
        "sequential": f"{sizes['requests']:,.0f} sequential non-streamed requests",
        "concurrent": f"{sizes['concurrency']:,.0f} concurrent streams x "
        f"{sizes['concurrent_chunks']:,.0f} chunks",
    }
    for scenario in ("stream", "sequential", "concurrent"):
        if scenario not in results.scenarios:
            continue
        cells = []
        for c in clients:
            ratio = results.same_round(scenario, c, base, "seconds") if base else None
            cells.append(_fmt(ratio, ".2f", "x"))
        out.append(f"| {names[scenario]} | " + " | ".join(cells) + " |")
    if "ttft" in results.scenarios:
        cells = []
        for c in clients:
            added = results.same_round("ttft", c, base, "ttft", diff=True) if base else None
            cells.append(_fmt(None if added is None else added * 1e3, "+.2f", " ms"))
        out.append("| time to first token, added | " + " | ".join(cells) + " |")
    out.append("")

    for scenario in results.scenarios:
        out.extend(_scenario_table(results, scenario, base, sizes, repeat))

    out.extend(_targets(results, base, sse_line, sizes))
    if results.errors:
        out.append("\nFailed runs:\n")
        out.extend(f"- {e}" for e in results.errors)
    return "\n".join(out) + "\n"


def _scenario_table(
    results: Results, scenario: str, base: str | None, sizes: dict[str, float], repeat: int
) -> list[str]:
    title = {
        "stream": f"### One stream of {sizes['chunks']:,.0f} chunks",
        "sequential": f"### {sizes['requests']:,.0f} sequential non-streamed requests",
        "concurrent": f"### {sizes['concurrency']:,.0f} concurrent streams of "
        f"{sizes['concurrent_chunks']:,.0f} chunks",
        "ttft": f"### Time to first token ({sizes['samples']:g} streams one after the other, "
        f"median; the first delta arrives alone)",
    }[scenario]
    if scenario in REPEATED and repeat > 1:
        title += f" (each process: median of {repeat} timed runs)"
    head = ["client", "wall (median)", "x raw", "CPU", "CPU x raw"]
    if scenario in ("stream", "concurrent"):
        head.append("chunks/s")
    elif scenario == "sequential":
        head.append("µs/request")
    else:
        head += ["TTFT (fastest)", "added vs raw"]
    if scenario == "concurrent":
        head.append("memory per open stream")
    head += ["peak RSS", "TCP conns / requests"]
    rows = [title, "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for c in results.clients:
        seconds = _median(results.values(scenario, c, "seconds"))
        cpu = _median(results.values(scenario, c, "cpu_seconds"))
        ops = _median(results.values(scenario, c, "ops"))
        row = [
            _label(c),
            _fmt(seconds, ".3f", " s"),
            _fmt(results.same_round(scenario, c, base, "seconds") if base else None, ".2f", "x"),
            _fmt(cpu, ".3f", " s"),
            _fmt(
                results.same_round(scenario, c, base, "cpu_seconds") if base else None, ".2f", "x"
            ),
        ]
        if scenario in ("stream", "concurrent"):
            rate = ops / seconds if ops and seconds else None
            row.append(_fmt(rate, ",.0f"))
        elif scenario == "sequential":
            per = seconds / ops * 1e6 if ops and seconds else None
            row.append(_fmt(per, ",.0f", " µs"))
        else:
            ttft = _median(results.values(scenario, c, "ttft"))
            fastest = _median(results.values(scenario, c, "ttft_min"))
            added = results.same_round(scenario, c, base, "ttft", diff=True) if base else None
            text = _fmt(None if ttft is None else ttft * 1e3, ".3f", " ms")
            if fastest is not None:
                text += f" ({fastest * 1e3:.3f})"
            row.append(text)
            row.append(_fmt(None if added is None else added * 1e3, "+.3f", " ms"))
        if scenario == "concurrent":
            per_stream = _median(results.values(scenario, c, "mem_per_stream"))
            opened = _median(results.values(scenario, c, "mem_streams_open"))
            text = _fmt(None if per_stream is None else per_stream / 1024, ",.1f", " KiB")
            if opened is not None and per_stream is not None:
                text += f" ({opened:g} open)"
            row.append(text)
        rss = _median(results.values(scenario, c, "peak_rss"))
        row.append(_fmt(None if rss is None else rss / 2**20, ".0f", " MiB"))
        conns = results.values(scenario, c, "connections")
        reqs = results.values(scenario, c, "requests")
        row.append(f"{max(conns):g} / {max(reqs):g}" if conns and reqs else "–")
        rows.append("| " + " | ".join(row) + " |")
    rows.append("")
    return rows


def _verdict(value: float | None, limit: float, *, at_least: bool = False) -> str:
    if value is None:
        return "not measured"
    ok = value >= limit if at_least else value <= limit
    return "met" if ok else "**missed**"


class _Ratios:
    """Ratios between two clients' runs of one scenario, as target rows of the report."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def _both(self, client: str, other: str | None) -> bool:
        return (
            other is not None and client in self.results.clients and other in self.results.clients
        )

    def spread(
        self, scenario: str, client: str, other: str | None, spec: str, scale: float = 1.0
    ) -> str:
        """The lowest and highest per-round ratio, or "" with fewer than two rounds."""
        if other is None or not self._both(client, other):
            return ""
        key, diff = ("ttft", True) if scenario == "ttft" else ("seconds", False)
        values = self.results.round_ratios(scenario, client, other, key, diff=diff)
        if len(values) < 2:
            return ""
        return f"{min(values) * scale:{spec}} – {max(values) * scale:{spec}}"

    def ratio(self, scenario: str, client: str, other: str | None, key: str) -> float | None:
        """The same-round median ratio of ``key``, or None when a client is missing."""
        if other is None or not self._both(client, other):
            return None
        return self.results.same_round(scenario, client, other, key)

    def row(self, text: str, scenario: str, client: str, other: str | None, limit: float) -> str:
        """A table row: wall and CPU ratio with their verdicts against ``limit``."""
        wall = self.ratio(scenario, client, other, "seconds")
        cpu = self.ratio(scenario, client, other, "cpu_seconds")
        return (
            f"| {text} ≤ {limit}x | {_fmt(wall, '.2f', 'x')} "
            f"| {self.spread(scenario, client, other, '.2f')} | {_verdict(wall, limit)} "
            f"| {_fmt(cpu, '.2f', 'x')} | {_verdict(cpu, limit)} |"
        )


def _async_rows(
    results: Results, ratios: _Ratios, base: str | None, sizes: dict[str, float]
) -> list[str]:
    """The async client's targets against the raw floor."""
    asy = "inference-async"
    label = _label(asy)
    rows = [
        ratios.row(f"{label}: {text}, over raw", scenario, asy, base, limit)
        for scenario, limit, text in (
            ("stream", 3.5, f"one {sizes['chunks']:,.0f}-chunk stream"),
            ("sequential", 1.5, f"{sizes['requests']:,.0f} sequential requests"),
            ("concurrent", 3.0, f"{sizes['concurrency']:,.0f} concurrent streams"),
        )
    ]
    per_stream = _median(results.values("concurrent", asy, "mem_per_stream"))
    opened = _median(results.values("concurrent", asy, "mem_streams_open"))
    if per_stream is not None and opened is not None:
        rows.append(
            f"| {label}: memory per open stream (reported, no limit) | "
            f"{per_stream / 1024:,.1f} KiB ({opened:g} open) | | reported | | |"
        )
    added = results.same_round("ttft", asy, base, "ttft", diff=True) if base is not None else None
    ms = None if added is None else added * 1e3
    rows.append(
        f"| {label}: time to first token ≤ +0.3 ms over raw | "
        f"{_fmt(ms, '+.3f', ' ms')} | {ratios.spread('ttft', asy, base, '+.3f', 1e3)} "
        f"| {_verdict(ms, 0.3)} | | |"
    )
    return rows


def _reuse_rows(results: Results, clients: tuple[str, ...]) -> list[str]:
    """One row per client: was the keep-alive connection reused after each stream?"""
    rows = []
    for client in clients:
        runs = results.rounds("ttft", client) if client in results.clients else []
        if runs:
            conns = max(run["connections"] for _, run in runs)
            reqs = max(run["requests"] for _, run in runs)
            verdict = "met" if conns == 1 else "**missed**"
            rows.append(
                f"| {_label(client)}: keep-alive connection reused after each stream | "
                f"{conns} connection(s) for {reqs} streams | | {verdict} | | |"
            )
    return rows


def _sse_row(sse_line: str | None) -> str:
    """The SSE decoder's throughput target, read from ``bench_sse.py``'s LF line."""
    match = re.search(r"([\d.]+) MB/s median", sse_line) if sse_line else None
    mbps = float(match.group(1)) if match else None
    return (
        f"| SSE decoder alone ≥ 200 MB/s (`bench_sse.py`, LF, median) | "
        f"{_fmt(mbps, '.0f', ' MB/s')} | | {_verdict(mbps, 200, at_least=True)} | | |"
    )


def _targets(
    results: Results, base: str | None, sse_line: str | None, sizes: dict[str, float]
) -> list[str]:
    rows = ["### Targets", ""]
    if sizes != FULL_SIZES:
        rows += ["Sizes differ from the issue's: these verdicts say nothing about the targets.", ""]
    rows += [
        "Verdicts are on wall time, as the targets are stated; the CPU-time ratio of the client "
        "process is shown beside it. The ratios to raw are targets for the async client; the "
        "sync client's targets are its ratios to the async client and connection reuse (its "
        "ratios to raw are in the tables above).",
        "",
        "| target | wall | wall, lowest–highest round | verdict | CPU | verdict on CPU |",
        "|---|---:|---:|---|---:|---|",
    ]
    ratios = _Ratios(results)
    asy, syn = "inference-async", "inference-sync"
    if asy in results.clients:
        rows += _async_rows(results, ratios, base, sizes)
    if asy in results.clients and syn in results.clients:
        for scenario, limit, text in (
            ("stream", 1.2, "the stream"),
            ("sequential", 1.5, "per non-streamed request"),
        ):
            rows.append(ratios.row(f"{_label(syn)} over async, {text},", scenario, syn, asy, limit))
    rows += _reuse_rows(results, (asy, syn))
    rows.append(_sse_row(sse_line))
    rows.append("")
    return rows


def run_sse_bench(quick: bool) -> str | None:
    """Run ``benchmarks/bench_sse.py`` (if present) and return its LF line."""
    script = ROOT / "benchmarks" / "bench_sse.py"
    if not script.exists():
        return None
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else ["--repeat", "5"])
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("LF "):
            return re.sub(r"\s+", " ", line.strip())
    return None


def machine_note() -> str:
    """A line about the machine, Python and the load while the run took place."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def code_note() -> str:
    """The commit of the working tree that was measured, and whether it had changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        changed = _git(
            "status", "--porcelain", "--untracked-files=no", "--", "inference", "benchmarks"
        )
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if changed else "")


def write_readme(report: str, header: str) -> None:
    """Put the report between the result markers of benchmarks/README.md."""
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    block = f"{START_MARK}\n{header}\n{report}{END_MARK}"
    if START_MARK in text and END_MARK in text:
        before, rest = text.split(START_MARK, 1)
        after = rest.split(END_MARK, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


# -- main ------------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's command line."""
    parser = argparse.ArgumentParser(description="Run the client benchmarks.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke test)")
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated: " + ", ".join(CLIENTS)
    )
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (1 with --quick)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"timed runs of stream, sequential and concurrent per process, median reported "
        f"(default {FULL_REPEAT}, 1 with --quick)",
    )
    for key, value in FULL_SIZES.items():
        parser.add_argument(
            f"--{key.replace('_', '-')}", type=float, default=None, help=f"default {value:g}"
        )
    parser.add_argument("--pin", type=int, default=None, help="run server and clients on this CPU")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per client run")
    parser.add_argument("--json", type=Path, default=None, help="also save every run here")
    parser.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md")
    parser.add_argument("--no-sse", action="store_true", help="skip benchmarks/bench_sse.py")
    return parser.parse_args(argv)


def _sizes_and_counts(args: argparse.Namespace) -> tuple[dict[str, float], int, int]:
    """The run's sizes (quick or full, with overrides), its rounds and timed runs per process."""
    sizes = dict(QUICK_SIZES if args.quick else FULL_SIZES)
    for key in sizes:
        value = getattr(args, key)
        if value is not None:
            sizes[key] = value
    rounds = args.rounds or (1 if args.quick else 5)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else FULL_REPEAT)
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    return sizes, rounds, repeat


def _selection(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The scenarios and the installed clients asked for (unknown names end the run)."""
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    wanted = [c.strip() for c in args.clients.split(",") if c.strip()]
    for name in wanted:
        if name not in CLIENTS:
            raise SystemExit(f"unknown client {name!r}; choose from {', '.join(CLIENTS)}")
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    clients: list[str] = []
    for name in wanted:
        requires = CLIENTS[name].requires
        if requires and not _installed(requires):
            print(f"skipping {name}: {requires} is not installed (pip install -e '.[bench]')")
            continue
        clients.append(name)
    return scenarios, clients


def _shown_command(argv: list[str] | None) -> str:
    """The command line of this run as the report shows it (without ``--json PATH``)."""
    shown = list(sys.argv[1:] if argv is None else argv)
    if "--json" in shown:  # where the raw results went is not part of the recipe
        i = shown.index("--json")
        del shown[i : i + 2]
    return "python benchmarks/run.py " + shlex.join(shown)


def _run_rounds(
    args: argparse.Namespace,
    results: Results,
    scenarios: list[str],
    sizes: dict[str, float],
    counts: tuple[int, int],
) -> None:
    """Every round of every scenario for every client, against one benchmark server."""
    rounds, repeat = counts
    stream_sizes = sorted({int(sizes["chunks"]), int(sizes["concurrent_chunks"])})
    server = Server([*stream_sizes, int(sizes["ttft_chunks"]), 20], args.pin)
    try:
        for r in range(rounds):
            order = round_order(results.clients, r)
            for scenario in scenarios:
                for name in order:
                    run = run_one(server, name, scenario, sizes, args.timeout, args.pin, repeat)
                    results.add(r, run)
                    status = run.get("error") or f"{run['seconds']:.3f} s"
                    print(f"round {r + 1}/{rounds} {scenario:<10} {name:<16} {status}", flush=True)
    finally:
        server.stop()


def _library_versions(results: Results) -> list[str]:
    """The library versions the client processes reported, each once."""
    versions: list[str] = []
    for run in results.runs.values():
        for part in str(run.get("version", "")).split(", "):
            if part and part not in versions:
                versions.append(part)
    return versions


def _save_json(
    path: Path, results: Results, sizes: dict[str, float], rounds: int, repeat: int
) -> None:
    """Every run of the benchmark as JSON, for later analysis."""
    path.write_text(
        json.dumps(
            {
                "sizes": sizes,
                "rounds": rounds,
                "repeat": repeat,
                "runs": [{"round": r, **run} for (r, _, _), run in results.runs.items()],
                "errors": results.errors,
            },
            indent=1,
        ),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; print the report; return the exit code (1 if any run failed)."""
    args = parse_args(argv)
    sizes, rounds, repeat = _sizes_and_counts(args)
    scenarios, clients = _selection(args)
    command = _shown_command(argv)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    code = code_note()  # before the run: the code the client processes import
    started = time.monotonic()
    results = Results(clients, scenarios)
    # SIGTERM unwinds like Ctrl-C, so the server and a running client process are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _run_rounds(args, results, scenarios, sizes, (rounds, repeat))
    sse_line = None if args.no_sse else run_sse_bench(args.quick)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    report = render(results, sizes, sse_line, repeat)
    load = (
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
        if load_before and load_after
        else ""
    )
    header = (
        f"Command: `{command}` ({rounds} round(s), {repeat} timed run(s) of stream, sequential "
        f"and concurrent per process, {elapsed:.0f} s, {datetime.date.today().isoformat()}).\n"
        f"Code: {code}. Machine: {machine_note()}; {load}.\n"
        f"Libraries: {', '.join(sorted(_library_versions(results)))}.\n"
    )
    if sse_line:
        header += f"SSE decoder (`benchmarks/bench_sse.py`): `{sse_line}`\n"
    print()
    print(header)
    print(report)
    if args.json is not None:
        _save_json(args.json, results, sizes, rounds, repeat)
    if args.write_readme:
        write_readme(report, header)
        print(f"wrote {README.relative_to(ROOT)}")
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
