"""Overhead of the sync API (:class:`inference.ChatCompletionsClient`) over the async client.

A tiny aiohttp server runs in a separate process and answers from pre-rendered bodies, so
the client's timing is not disturbed by the server's work:

* a non-streamed ``chat.completion`` body (about 500 bytes);
* an event stream of ``--chunks`` ``chat.completion.chunk`` events plus ``data: [DONE]``,
  written in 16 KiB pieces.

Two measurements, each run with the async client (``inference.aio``) and with the sync client,
repeats interleaved (async, sync, then sync, async, ...):

* ``--requests`` sequential non-streamed requests on one client: microseconds per request;
* one stream of ``--chunks`` updates, iterated to the end: updates per second.

A third side, for the non-streamed requests only, drives the async client from the calling
thread with an event loop of its own (``loop.run_until_complete`` per request). The sync API
does not work that way (its loop runs on its own thread, anyio's portal); the line shows how
much of the sync overhead is the hand-off between threads rather than the code.

It prints the medians of wall time and of the process's CPU time (all threads; steadier on a
busy machine), and the sync/async ratios (time ratios: above 1 means the sync API is slower):
the ratio of the medians, and in brackets the median of the ratios of the runs paired in
time (each async run with the sync run next to it: a slow moment of the machine hits both).
It also counts, per request and per stream, the process's context switches (every hop
between threads costs some: the async client has about one per request) and the garbage
collections (parsed updates that stay alive in bulk cost collections).
``--profile`` also runs the sync side once under cProfile (the calling thread and the loop
thread separately) and prints the top functions.

Usage: ``python benchmarks/bench_sync.py [--requests N] [--chunks N] [--repeat R] [--quick]
[--profile]``. ``--quick`` uses tiny sizes and one repeat: it only shows that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference import ChatCompletionsClient
from inference._portal import Portal
from inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from inference.models import UserMessage

WORDS = (" the", " model", " answer", " is", " streaming", " token", " by", " one", ",", ".")
PIECE = 16 * 1024


def render_completion() -> bytes:
    """A typical non-streamed response body."""
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1718000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(WORDS * 6)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 60, "total_tokens": 69},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def render_stream(chunks: int) -> list[bytes]:
    """An event stream of ``chunks`` updates plus ``[DONE]``, cut into pieces."""
    events = []
    for i in range(chunks):
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": WORDS[i % 10]}
        finish = "stop" if i == chunks - 1 else None
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1718000000,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        events.append(b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    data = b"".join(events)
    return [data[i : i + PIECE] for i in range(0, len(data), PIECE)]


def serve(chunks: int) -> None:
    """Run the pre-rendered server (in its own process) and print its port on stdout."""
    from aiohttp import web

    completion = render_completion()
    pieces = render_stream(chunks)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if b'"stream":true' not in body.replace(b" ", b""):
            return web.Response(body=completion, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


MESSAGES = [UserMessage("How fast is the sync API?")]


_collections = [0]  # garbage collections so far (every generation)


def _count_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collections[0] += 1


gc.callbacks.append(_count_collection)


def _switches() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


class Clock:
    """Wall time, process CPU time (every thread), context switches and garbage collections
    since creation."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.switches = _switches()
        self.collections = _collections[0]

    def read(self) -> Sample:
        """(wall seconds, CPU seconds, context switches, garbage collections) since then."""
        return (
            time.perf_counter() - self.wall,
            time.process_time() - self.cpu,
            _switches() - self.switches,
            _collections[0] - self.collections,
        )


Sample = tuple[float, float, int, int]  # (wall s, CPU s, context switches, collections)


async def async_requests(endpoint: str, n: int) -> Sample:
    """Time ``n`` sequential non-streamed requests on the async client."""
    async with AsyncChatCompletionsClient(endpoint, model="bench-model") as client:
        await client.complete(messages=MESSAGES)
        clock = Clock()
        for _ in range(n):
            await client.complete(messages=MESSAGES)
        return clock.read()


def sync_requests(endpoint: str, n: int) -> Sample:
    """Time ``n`` sequential non-streamed requests on the sync client."""
    with ChatCompletionsClient(endpoint, model="bench-model") as client:
        client.complete(messages=MESSAGES)
        clock = Clock()
        for _ in range(n):
            client.complete(messages=MESSAGES)
        return clock.read()


def own_loop_requests(endpoint: str, n: int) -> Sample:
    """Time ``n`` sequential non-streamed requests on the async client driven from this
    thread by a loop of its own (``run_until_complete`` per request): not how the sync API
    works, but the same code with no hand-off to another thread, to show what the hop costs."""
    loop = asyncio.new_event_loop()
    try:
        client = AsyncChatCompletionsClient(endpoint, model="bench-model")
        try:
            loop.run_until_complete(client.complete(messages=MESSAGES))
            clock = Clock()
            for _ in range(n):
                loop.run_until_complete(client.complete(messages=MESSAGES))
            return clock.read()
        finally:
            loop.run_until_complete(client.close())
    finally:
        loop.close()


async def async_stream(endpoint: str, chunks: int) -> Sample:
    """Time reading one stream of ``chunks`` updates with the async client."""
    async with AsyncChatCompletionsClient(endpoint, model="bench-model") as client:
        await client.complete(messages=MESSAGES)
        clock = Clock()
        count = 0
        async with await client.complete(messages=MESSAGES, stream=True) as stream:
            async for _ in stream:
                count += 1
        elapsed = clock.read()
    if count != chunks:
        raise SystemExit(f"async stream: {count} updates, expected {chunks}")
    return elapsed


def sync_stream(endpoint: str, chunks: int) -> Sample:
    """Time reading one stream of ``chunks`` updates with the sync client."""
    with ChatCompletionsClient(endpoint, model="bench-model") as client:
        client.complete(messages=MESSAGES)
        clock = Clock()
        count = 0
        with client.complete(messages=MESSAGES, stream=True) as stream:
            for _ in stream:
                count += 1
        elapsed = clock.read()
    if count != chunks:
        raise SystemExit(f"sync stream: {count} updates, expected {chunks}")
    return elapsed


class Result:
    """The medians of both sides and of the paired sync/async ratios."""

    def __init__(self, runs_async: list[Sample], runs_sync: list[Sample]) -> None:
        def median(runs: list[Sample], field: int) -> float:
            return statistics.median(run[field] for run in runs)

        self.a_wall, self.a_cpu = median(runs_async, 0), median(runs_async, 1)
        self.s_wall, self.s_cpu = median(runs_sync, 0), median(runs_sync, 1)
        self.a_switches, self.s_switches = median(runs_async, 2), median(runs_sync, 2)
        self.a_collections, self.s_collections = median(runs_async, 3), median(runs_sync, 3)
        pairs = list(zip(runs_async, runs_sync, strict=True))
        self.paired_wall = statistics.median(s[0] / a[0] for a, s in pairs)
        self.paired_cpu = statistics.median(s[1] / a[1] for a, s in pairs)


def interleaved(
    repeat: int, run_async: Callable[[], Sample], run_sync: Callable[[], Sample]
) -> Result:
    """Run both sides ``repeat`` times, alternating which goes first; return the medians."""
    samples: dict[str, list[Sample]] = {"a": [], "s": []}
    for i in range(repeat):
        order = [("a", run_async), ("s", run_sync)]
        if i % 2:
            order.reverse()
        for side, run in order:
            samples[side].append(run())
    return Result(samples["a"], samples["s"])


def thread_round_trip(n: int) -> float:
    """Seconds per round trip of two threads waking each other through locks: the least
    any hand-off to another thread and back costs on this machine."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def other() -> None:
        for _ in range(n):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=other)
    thread.start()
    start = time.perf_counter()
    for _ in range(n):
        ping.release()
        pong.acquire()
    elapsed = time.perf_counter() - start
    thread.join()
    return elapsed / n


def portal_round_trip(n: int) -> float:
    """Seconds per sync call of a coroutine that does nothing: the sync API's hand-off to
    its event loop and back, with no request."""

    async def closer() -> None:
        pass

    async def nothing() -> None:
        pass

    portal = Portal(closer)
    try:
        portal.call(nothing)
        start = time.perf_counter()
        for _ in range(n):
            portal.call(nothing)
        return (time.perf_counter() - start) / n
    finally:
        portal.stop()


def profile_sync(endpoint: str, args: argparse.Namespace) -> None:
    """Run the sync side once under cProfile (calling thread and loop thread separately)."""

    def requests(client: ChatCompletionsClient) -> None:
        for _ in range(args.requests):
            client.complete(messages=MESSAGES)

    def stream(client: ChatCompletionsClient) -> None:
        with client.complete(messages=MESSAGES, stream=True) as updates:
            for _ in updates:
                pass

    runs: tuple[tuple[str, Callable[[ChatCompletionsClient], None]], ...] = (
        ("non-streamed requests", requests),
        ("stream", stream),
    )
    for label, run in runs:
        caller, loop = cProfile.Profile(), cProfile.Profile()
        with ChatCompletionsClient(endpoint, model="bench-model") as client:
            client.complete(messages=MESSAGES)

            async def switch(on: bool, profile: cProfile.Profile = loop) -> None:
                profile.enable() if on else profile.disable()

            client._portal.call(lambda: switch(True))
            caller.enable()
            run(client)
            caller.disable()
            client._portal.call(lambda: switch(False))
        for thread, profile in (("calling thread", caller), ("loop thread", loop)):
            print(f"\n--- cProfile of the sync {label}, {thread}: top 15 by tottime")
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, start the server process and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per run")
    parser.add_argument("--chunks", type=int, default=20_000, help="updates in the stream")
    parser.add_argument("--repeat", type=int, default=7, help="runs per side")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--profile", action="store_true", help="also profile the sync side")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = min(args.requests, 20)
        args.chunks = min(args.chunks, 200)
        args.repeat = 1
    if args.requests < 1 or args.chunks < 2 or args.repeat < 1:
        parser.error("--requests and --repeat must be >= 1, --chunks >= 2")
    if args.serve:
        serve(args.chunks)
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--chunks", str(args.chunks)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}/v1"
        print(
            f"Python {sys.version.split()[0]}; server in a separate process; "
            f"{args.requests} requests per run, {args.chunks}-update stream, "
            f"{args.repeat} runs per side (interleaved), medians"
        )
        r = interleaved(
            args.repeat,
            lambda: asyncio.run(async_requests(endpoint, args.requests)),
            lambda: sync_requests(endpoint, args.requests),
        )
        per = 1e6 / args.requests
        print(
            f"non-streamed  wall: async {r.a_wall * per:7.1f} us/request  sync "
            f"{r.s_wall * per:7.1f} us/request  sync/async {r.s_wall / r.a_wall:.2f}x "
            f"[{r.paired_wall:.2f}x]  (overhead {(r.s_wall - r.a_wall) * per:+.1f} us)\n"
            f"              CPU:  async {r.a_cpu * per:7.1f} us/request  sync "
            f"{r.s_cpu * per:7.1f} us/request  sync/async {r.s_cpu / r.a_cpu:.2f}x "
            f"[{r.paired_cpu:.2f}x]  (overhead {(r.s_cpu - r.a_cpu) * per:+.1f} us)\n"
            f"              context switches per request: async "
            f"{r.a_switches / args.requests:.1f}  sync {r.s_switches / args.requests:.1f}; "
            f"garbage collections per run: async {r.a_collections:.0f}  "
            f"sync {r.s_collections:.0f}"
        )
        r = interleaved(
            args.repeat,
            lambda: asyncio.run(async_requests(endpoint, args.requests)),
            lambda: own_loop_requests(endpoint, args.requests),
        )
        print(
            f"no hop        wall: async {r.a_wall * per:7.1f} us/request  loop in the calling "
            f"thread {r.s_wall * per:7.1f} us/request  {r.s_wall / r.a_wall:.2f}x "
            f"[{r.paired_wall:.2f}x]; context switches per request "
            f"{r.s_switches / args.requests:.1f}"
        )
        r = interleaved(
            args.repeat,
            lambda: asyncio.run(async_stream(endpoint, args.chunks)),
            lambda: sync_stream(endpoint, args.chunks),
        )
        n = args.chunks
        print(
            f"stream        wall: async {n / r.a_wall:9.0f} updates/s  sync "
            f"{n / r.s_wall:9.0f} updates/s  sync/async {r.s_wall / r.a_wall:.2f}x "
            f"[{r.paired_wall:.2f}x]\n"
            f"              CPU:  async {n / r.a_cpu:9.0f} updates/s  sync "
            f"{n / r.s_cpu:9.0f} updates/s  sync/async {r.s_cpu / r.a_cpu:.2f}x "
            f"[{r.paired_cpu:.2f}x]\n"
            f"              per stream: context switches async {r.a_switches:.0f}  sync "
            f"{r.s_switches:.0f}; garbage collections async {r.a_collections:.0f}  "
            f"sync {r.s_collections:.0f}"
        )
        n = 20 * args.requests
        floor = statistics.median(thread_round_trip(n) for _ in range(args.repeat))
        hop = statistics.median(portal_round_trip(n) for _ in range(args.repeat))
        print(
            f"hand-offs     two threads waking each other: {floor * 1e6:6.1f} us per round trip;"
            f"  a sync call doing nothing: {hop * 1e6:6.1f} us"
        )
        if args.profile:
            profile_sync(endpoint, args)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
