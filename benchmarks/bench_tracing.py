"""What OpenTelemetry costs a call: without the API, with the API but no provider, with the SDK.

Three states of the same process, runs interleaved (none, api, sdk, none, ...):

* ``none``: as if ``opentelemetry-api`` were not installed (the library's look-up says so);
* ``api``: ``opentelemetry-api`` importable, no tracer or meter provider set (the default for
  an application that installs the extra but configures nothing);
* ``sdk``: the SDK's ``TracerProvider`` (spans made and dropped: no exporter, so the export
  path is not what is timed) and ``MeterProvider`` with an in-memory reader.

Measured with the async client against a pre-rendered server in a separate process
(``bench_sync.py --serve``): ``--requests`` sequential non-streamed requests
(microseconds per request) and one stream of ``--chunks`` updates (microseconds per update).
A third figure times the hook alone, in each state: ``complete()`` replaced by a coroutine
that returns a ready answer, bare and traced (nanoseconds of CPU per call). Times are the
client process's CPU time (steadier than wall time on a busy machine).

Usage: ``python benchmarks/bench_tracing.py [--requests N] [--chunks N] [--repeat R]
[--quick]``. ``--quick`` uses tiny sizes and one run: it only shows that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util._once import Once

from inference import _tracing
from inference._endpoint import resolve_endpoint
from inference.aio import ChatCompletionsClient
from inference.models import (
    ChatChoice,
    ChatCompletions,
    ChatResponseMessage,
    CompletionsUsage,
    UserMessage,
)

STATES = ("none", "api", "sdk")
SERVER = Path(__file__).with_name("bench_sync.py")
MESSAGES = [UserMessage("What does tracing cost?")]


def set_state(state: str) -> None:
    """Put the process in ``state`` (see the module docstring)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    _tracing._api = False if state == "none" else None
    _tracing._cache = None
    if state == "sdk":
        trace.set_tracer_provider(TracerProvider())
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


async def requests(endpoint: str, count: int) -> float:
    """Seconds for ``count`` sequential non-streamed requests (after one warm-up)."""
    async with ChatCompletionsClient(endpoint, "key", model="bench-model") as client:
        await client.complete(messages=MESSAGES)
        start = time.process_time()
        for _ in range(count):
            await client.complete(messages=MESSAGES)
        return time.process_time() - start


async def one_stream(endpoint: str) -> tuple[float, int]:
    """Seconds for one stream read to its end, and its number of updates."""
    async with ChatCompletionsClient(endpoint, "key", model="bench-model") as client:
        await client.complete(messages=MESSAGES)  # warm the connection
        start = time.process_time()
        updates = 0
        async with await client.complete(messages=MESSAGES, stream=True) as stream:
            async for _ in stream:
                updates += 1
        return time.process_time() - start, updates


async def hook_alone(calls: int) -> tuple[float, float]:
    """CPU seconds for ``calls`` awaits of a bare ``complete()`` stand-in (it returns a ready
    answer, no I/O) and of the same one traced: the hook's own cost in the current state."""
    answer = ChatCompletions(
        id="c1",
        model="bench-model",
        choices=[ChatChoice(message=ChatResponseMessage(content="hi"), finish_reason="stop")],
        usage=CompletionsUsage(prompt_tokens=5, completion_tokens=1, total_tokens=6),
    )

    class Client:
        endpoint = resolve_endpoint("http://127.0.0.1:9/v1")

        async def complete(self, **kwargs: Any) -> ChatCompletions:
            return answer

    bare = Client().complete
    traced = _tracing.traced_chat(Client.complete).__get__(Client())
    timings: dict[Any, list[float]] = {bare: [], traced: []}
    for _ in range(5):  # alternate, keep the best of five
        for func in (bare, traced):
            start = time.process_time()
            for _ in range(calls):
                await func(messages=MESSAGES)
            timings[func].append(time.process_time() - start)
    return min(timings[bare]), min(timings[traced])


def timed(run: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(run())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print medians per state."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.chunks, args.repeat = 20, 50, 1
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--serve", "--chunks", str(args.chunks)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        results: dict[str, dict[str, list[float]]] = {s: {"req": [], "upd": []} for s in STATES}
        for state in STATES:  # warm-up, not timed
            set_state(state)
            timed(lambda: requests(endpoint, 5))
        for _ in range(args.repeat):
            for state in STATES:
                set_state(state)
                seconds = timed(lambda: requests(endpoint, args.requests))
                results[state]["req"].append(seconds / args.requests * 1e6)
                seconds, updates = timed(lambda: one_stream(endpoint))
                results[state]["upd"].append(seconds / updates * 1e6)
        hook_calls = 20_000 if not args.quick else 200
        hook: dict[str, tuple[float, float]] = {}
        for state in STATES:
            set_state(state)
            hook[state] = timed(lambda: hook_alone(hook_calls))
    finally:
        server.terminate()
        server.wait()
    print(
        f"Python {sys.version.split()[0]}; {args.requests} requests and a {args.chunks}-update "
        f"stream per run, {args.repeat} runs per state (interleaved), medians"
    )
    print("client CPU time (the server runs in its own process)")
    print(f"{'state':6} {'us/request':>11} {'us/update':>10} {'hook: bare':>11} {'traced':>9}")
    for state in STATES:
        req = statistics.median(results[state]["req"])
        upd = statistics.median(results[state]["upd"])
        bare, traced = (t / hook_calls * 1e9 for t in hook[state])
        print(f"{state:6} {req:11.1f} {upd:10.2f} {bare:8.0f} ns {traced:6.0f} ns")


if __name__ == "__main__":
    main()
