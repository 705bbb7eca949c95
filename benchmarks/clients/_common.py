"""What every client module shares: the scenarios, the measurements and the JSON result line.

A client module wraps one library in a small class (:class:`AsyncBenchClient` or
:class:`SyncBenchClient`) with three operations: open a streamed response and read it to the
end, send one non-streamed request, and close. The drivers here run a scenario with it:

- ``stream``: one streamed response of ``--chunks`` content events, timed ``--repeat`` times.
- ``sequential``: ``--requests`` non-streamed requests, one after the other, timed
  ``--repeat`` times.
- ``concurrent``: first a memory phase: ``--concurrency`` streams are opened at once with the
  server holding back all but their first events for ``--mem-gap-ms``, and the growth of
  resident memory is divided by the streams open (measured before the timed phase, so the
  allocator has no freed memory of earlier streams to reuse); then, timed,
  ``--concurrency`` streams of ``--concurrent-chunks`` events at once (tasks for async
  clients, threads sharing one client for sync clients), timed ``--repeat`` times.
- ``ttft``: ``--samples`` short streams one after the other, whose first text delta arrives
  alone (the rest follows ``--gap-ms`` later); time to first token is the median time from
  the call to the first non-empty text delta.

Every scenario starts with one warm-up request (connection opened, code paths warmed) that is
not timed. The warm-up of the streamed scenarios is a short stream, so the first timed stream
of a process can still pay one-off costs (buffers and allocator arenas grown to full size);
``stream``, ``sequential`` and ``concurrent`` therefore time their workload ``--repeat``
times in the same process (a garbage collection before each, untimed) and report the median
wall time and the median CPU time of the samples, with every sample kept in
``samples_seconds`` and ``samples_cpu_seconds``. ``ttft`` is the median of many requests
already and is timed once. Results are checked (number of text deltas and characters, or
body bytes for the raw client) so a fast but wrong client cannot win. The result is one
JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from benchmarks.server import (
    NONSTREAM_TEXT,
    completion_body_size,
    expected_text,
    stream_body_size,
)

__all__ = [
    "KEY",
    "MODEL",
    "REPEATED",
    "SYSTEM_PROMPT",
    "USER_PROMPT",
    "AsyncBenchClient",
    "OnFirst",
    "StreamResult",
    "SyncBenchClient",
    "current_rss",
    "main_async",
    "main_sync",
    "parse_options",
    "peak_rss",
]

KEY = "bench-key"
MODEL = "bench-model"
SYSTEM_PROMPT = "You are a helpful assistant."
USER_PROMPT = "Give me 3 good reasons why I should exercise every day."
WARMUP_CHUNKS = 20
#: The scenarios whose timed part runs ``--repeat`` times (``ttft`` is a median of many already).
REPEATED = ("stream", "sequential", "concurrent")

#: ``(updates, size, first)``: text deltas received (reads for the raw client), characters of
#: text (body bytes for the raw client), and ``time.perf_counter()`` at the first text delta.
StreamResult = tuple[int, int, float]
#: Called once per stream at its first text delta (to count open streams), or None.
OnFirst = Callable[[], None] | None


class AsyncBenchClient(Protocol):
    """One library, wrapped for the drivers (async)."""

    measures_bytes: bool
    version: str

    async def open(self, base_url: str) -> None:
        """Create the library's client for the server at ``base_url``."""

    async def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> StreamResult:
        """Request a stream of ``chunks`` events and read it to the end."""

    async def complete(self) -> int:
        """Send one non-streamed request; return the characters of the answer (or bytes)."""

    async def close(self) -> None:
        """Close the library's client."""


class SyncBenchClient(Protocol):
    """One library, wrapped for the drivers (sync)."""

    measures_bytes: bool
    version: str

    def open(self, base_url: str) -> None:
        """Create the library's client for the server at ``base_url``."""

    def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> StreamResult:
        """Request a stream of ``chunks`` events and read it to the end."""

    def complete(self) -> int:
        """Send one non-streamed request; return the characters of the answer (or bytes)."""

    def close(self) -> None:
        """Close the library's client."""


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line every client module takes."""
    parser = argparse.ArgumentParser(description="Run one benchmark scenario with one client.")
    parser.add_argument(
        "--scenario", required=True, choices=["stream", "sequential", "concurrent", "ttft"]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--concurrent-chunks", type=int, default=200)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--ttft-chunks", type=int, default=20)
    parser.add_argument("--gap-ms", type=float, default=3.0)
    parser.add_argument("--mem-gap-ms", type=float, default=1500.0, help="0 skips the phase")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed samples of stream, sequential and concurrent (median)",
    )
    opts = parser.parse_args(argv)
    if opts.repeat < 1:
        parser.error("--repeat must be at least 1")
    return opts


def current_rss() -> int:
    """Resident memory of this process now, in bytes (Linux; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss()


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class _Check:
    """Expected results, so a client that drops or garbles data fails loudly."""

    def __init__(self, measures_bytes: bool) -> None:
        self.measures_bytes = measures_bytes

    def stream(self, result: StreamResult, chunks: int) -> None:
        updates, size, _ = result
        if self.measures_bytes:
            expected = stream_body_size(chunks)
            if size != expected:
                raise SystemExit(f"stream body: {size} bytes, expected {expected}")
            return
        text = len(expected_text(chunks))
        if updates != chunks or size != text:
            raise SystemExit(
                f"stream: {updates} text deltas / {size} characters, expected {chunks} / {text}"
            )

    def complete(self, size: int) -> None:
        expected = completion_body_size() if self.measures_bytes else len(NONSTREAM_TEXT)
        if size != expected:
            raise SystemExit(f"response: {size}, expected {expected}")


class _OpenCounter:
    """Counts streams that received their first text delta; samples memory once all
    ``target`` are open (or when :meth:`deadline` fires first)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.opened = 0
        self.sample: tuple[int, int] | None = None  # (rss, streams open)
        self._lock = threading.Lock()

    def on_first(self) -> None:
        with self._lock:
            self.opened += 1
            if self.opened == self.target and self.sample is None:
                self.sample = (current_rss(), self.opened)

    def deadline(self) -> None:
        with self._lock:
            if self.sample is None:
                self.sample = (current_rss(), self.opened)


class _Samples:
    """Wall and CPU time of the timed parts of one process; the result reports their medians."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._t0 = self._c0 = 0.0

    def start(self) -> None:
        """Collect garbage (untimed), then start the clocks."""
        gc.collect()
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        """Stop the clocks and keep the sample."""
        wall, cpu = time.perf_counter() - self._t0, time.process_time() - self._c0
        self.wall.append(wall)
        self.cpu.append(cpu)

    def fields(self, repeated: bool) -> dict[str, Any]:
        """``seconds`` and ``cpu_seconds`` (medians), and the samples when there were repeats."""
        out: dict[str, Any] = {
            "seconds": statistics.median(self.wall),
            "cpu_seconds": statistics.median(self.cpu),
        }
        if repeated:
            out["repeat"] = len(self.wall)
            out["samples_seconds"] = self.wall
            out["samples_cpu_seconds"] = self.cpu
        return out


def _result(
    opts: argparse.Namespace, samples: _Samples, ops: int, extra: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": opts.scenario}
    out.update(samples.fields(opts.scenario in REPEATED))
    out.update({"ops": ops, "peak_rss": peak_rss()})
    out.update(extra)
    return out


def _memory(base: int, counter: _OpenCounter) -> dict[str, Any]:
    rss, opened = counter.sample or (base, 0)
    per_stream = (rss - base) / opened if opened else None
    return {"mem_streams_open": opened, "mem_per_stream": per_stream}


async def _run_async(client: AsyncBenchClient, opts: argparse.Namespace) -> dict[str, Any]:
    check = _Check(client.measures_bytes)
    await client.open(f"http://{opts.host}:{opts.port}")
    try:
        scenario = opts.scenario
        if scenario == "sequential":
            check.complete(await client.complete())
        else:
            check.stream(await client.stream(WARMUP_CHUNKS, None, None), WARMUP_CHUNKS)
        extra: dict[str, Any] = {}
        if scenario == "concurrent" and opts.mem_gap_ms > 0:
            extra = await _memory_async(client, opts, check)
        timer = _Samples()
        if scenario == "stream":
            for _ in range(opts.repeat):
                timer.start()
                result = await client.stream(opts.chunks, None, None)
                timer.stop()
                check.stream(result, opts.chunks)
            ops = opts.chunks
        elif scenario == "sequential":
            for _ in range(opts.repeat):
                timer.start()
                sizes = [await client.complete() for _ in range(opts.requests)]
                timer.stop()
                for size in sizes:
                    check.complete(size)
            ops = opts.requests
        elif scenario == "concurrent":
            m = opts.concurrent_chunks
            for _ in range(opts.repeat):
                timer.start()
                results = await asyncio.gather(
                    *(client.stream(m, None, None) for _ in range(opts.concurrency))
                )
                timer.stop()
                for result in results:
                    check.stream(result, m)
            ops = opts.concurrency * m
        else:
            ttfts: list[float] = []
            headers = {"x-bench-gap-ms": f"{opts.gap_ms:g}"}
            timer.start()
            for _ in range(opts.samples):
                start = time.perf_counter()
                result = await client.stream(opts.ttft_chunks, headers, None)
                check.stream(result, opts.ttft_chunks)
                ttfts.append(result[2] - start)
            timer.stop()
            ops = opts.samples
            extra = {"ttft": statistics.median(ttfts), "ttft_min": min(ttfts)}
        return _result(opts, timer, ops, extra)
    finally:
        await client.close()


async def _memory_async(
    client: AsyncBenchClient, opts: argparse.Namespace, check: _Check
) -> dict[str, Any]:
    gc.collect()
    base = current_rss()
    counter = _OpenCounter(opts.concurrency)
    headers = {"x-bench-gap-ms": f"{opts.mem_gap_ms:g}"}
    loop = asyncio.get_running_loop()
    timer = loop.call_later(opts.mem_gap_ms * 0.8 / 1000.0, counter.deadline)
    m = opts.concurrent_chunks
    try:
        results = await asyncio.gather(
            *(client.stream(m, headers, counter.on_first) for _ in range(opts.concurrency))
        )
    finally:
        timer.cancel()
    for result in results:
        check.stream(result, m)
    return _memory(base, counter)


def _sync_stream(
    client: SyncBenchClient, opts: argparse.Namespace, check: _Check, timer: _Samples
) -> int:
    """Time ``--repeat`` single long streams; the number of chunks per run."""
    for _ in range(opts.repeat):
        timer.start()
        result = client.stream(opts.chunks, None, None)
        timer.stop()
        check.stream(result, opts.chunks)
    return int(opts.chunks)


def _sync_sequential(
    client: SyncBenchClient, opts: argparse.Namespace, check: _Check, timer: _Samples
) -> int:
    """Time ``--repeat`` runs of sequential non-streamed requests; requests per run."""
    for _ in range(opts.repeat):
        timer.start()
        sizes = [client.complete() for _ in range(opts.requests)]
        timer.stop()
        for size in sizes:
            check.complete(size)
    return int(opts.requests)


def _sync_concurrent(
    client: SyncBenchClient,
    opts: argparse.Namespace,
    check: _Check,
    timer: _Samples,
    pool: ThreadPoolExecutor,
) -> int:
    """Time ``--repeat`` rounds of concurrent streams from a thread pool; chunks per round."""
    m = opts.concurrent_chunks
    with pool:
        for _ in range(opts.repeat):
            timer.start()
            futures = [pool.submit(client.stream, m, None, None) for _ in range(opts.concurrency)]
            results = [f.result() for f in futures]
            timer.stop()
            for result in results:
                check.stream(result, m)
    return int(opts.concurrency * m)


def _sync_ttft(
    client: SyncBenchClient, opts: argparse.Namespace, check: _Check, timer: _Samples
) -> tuple[int, dict[str, Any]]:
    """Time to first token over ``--samples`` streams; the count and the median/minimum."""
    ttfts: list[float] = []
    headers = {"x-bench-gap-ms": f"{opts.gap_ms:g}"}
    timer.start()
    for _ in range(opts.samples):
        start = time.perf_counter()
        result = client.stream(opts.ttft_chunks, headers, None)
        check.stream(result, opts.ttft_chunks)
        ttfts.append(result[2] - start)
    timer.stop()
    return int(opts.samples), {"ttft": statistics.median(ttfts), "ttft_min": min(ttfts)}


def _run_sync(client: SyncBenchClient, opts: argparse.Namespace) -> dict[str, Any]:
    check = _Check(client.measures_bytes)
    client.open(f"http://{opts.host}:{opts.port}")
    try:
        scenario = opts.scenario
        if scenario == "sequential":
            check.complete(client.complete())
        else:
            check.stream(client.stream(WARMUP_CHUNKS, None, None), WARMUP_CHUNKS)
        extra: dict[str, Any] = {}
        timer = _Samples()
        if scenario == "concurrent":
            pool = ThreadPoolExecutor(max_workers=opts.concurrency)
            # Start the threads before timing: a server process would have its pool ready.
            list(pool.map(lambda _: None, range(opts.concurrency * 4)))
            if opts.mem_gap_ms > 0:
                extra = _memory_sync(client, opts, check, pool)
            ops = _sync_concurrent(client, opts, check, timer, pool)
        elif scenario == "stream":
            ops = _sync_stream(client, opts, check, timer)
        elif scenario == "sequential":
            ops = _sync_sequential(client, opts, check, timer)
        else:
            ops, extra = _sync_ttft(client, opts, check, timer)
        return _result(opts, timer, ops, extra)
    finally:
        client.close()


def _memory_sync(
    client: SyncBenchClient, opts: argparse.Namespace, check: _Check, pool: ThreadPoolExecutor
) -> dict[str, Any]:
    gc.collect()
    base = current_rss()
    counter = _OpenCounter(opts.concurrency)
    headers = {"x-bench-gap-ms": f"{opts.mem_gap_ms:g}"}
    timer = threading.Timer(opts.mem_gap_ms * 0.8 / 1000.0, counter.deadline)
    timer.start()
    m = opts.concurrent_chunks
    try:
        futures = [
            pool.submit(client.stream, m, headers, counter.on_first)
            for _ in range(opts.concurrency)
        ]
        results = [f.result() for f in futures]
    finally:
        timer.cancel()
    for result in results:
        check.stream(result, m)
    return _memory(base, counter)


def _emit(name: str, version: str, result: dict[str, Any]) -> None:
    result = {"client": name, "version": version, **result}
    print(json.dumps(result), flush=True)


def main_async(
    name: str, factory: Callable[[], AsyncBenchClient], argv: list[str] | None = None
) -> None:
    """Run the scenario the command line names with an async client; print the JSON line."""
    opts = parse_options(argv)
    client = factory()
    result = asyncio.run(_run_async(client, opts))
    _emit(name, client.version, result)


def main_sync(
    name: str, factory: Callable[[], SyncBenchClient], argv: list[str] | None = None
) -> None:
    """Run the scenario the command line names with a sync client; print the JSON line."""
    opts = parse_options(argv)
    client = factory()
    result = _run_sync(client, opts)
    _emit(name, client.version, result)
