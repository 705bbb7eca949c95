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

It prints the median of each, and the sync/async ratio (time ratio: above 1 means the sync
API is slower). ``--profile`` also runs the sync side once under cProfile and prints the top
functions.

Usage: ``python benchmarks/bench_sync.py [--requests N] [--chunks N] [--repeat R] [--quick]
[--profile]``. ``--quick`` uses tiny sizes and one repeat: it only shows that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference import ChatCompletionsClient  # noqa: E402
from inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient  # noqa: E402
from inference.models import UserMessage  # noqa: E402

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


async def async_requests(endpoint: str, n: int) -> float:
    """Seconds for ``n`` sequential non-streamed requests on the async client."""
    async with AsyncChatCompletionsClient(endpoint, model="bench-model") as client:
        await client.complete(messages=MESSAGES)
        start = time.perf_counter()
        for _ in range(n):
            await client.complete(messages=MESSAGES)
        return time.perf_counter() - start


def sync_requests(endpoint: str, n: int) -> float:
    """Seconds for ``n`` sequential non-streamed requests on the sync client."""
    with ChatCompletionsClient(endpoint, model="bench-model") as client:
        client.complete(messages=MESSAGES)
        start = time.perf_counter()
        for _ in range(n):
            client.complete(messages=MESSAGES)
        return time.perf_counter() - start


async def async_stream(endpoint: str, chunks: int) -> float:
    """Seconds to read one stream of ``chunks`` updates with the async client."""
    async with AsyncChatCompletionsClient(endpoint, model="bench-model") as client:
        await client.complete(messages=MESSAGES)
        start = time.perf_counter()
        count = 0
        async with await client.complete(messages=MESSAGES, stream=True) as stream:
            async for _ in stream:
                count += 1
        elapsed = time.perf_counter() - start
    if count != chunks:
        raise SystemExit(f"async stream: {count} updates, expected {chunks}")
    return elapsed


def sync_stream(endpoint: str, chunks: int) -> float:
    """Seconds to read one stream of ``chunks`` updates with the sync client."""
    with ChatCompletionsClient(endpoint, model="bench-model") as client:
        client.complete(messages=MESSAGES)
        start = time.perf_counter()
        count = 0
        with client.complete(messages=MESSAGES, stream=True) as stream:
            for _ in stream:
                count += 1
        elapsed = time.perf_counter() - start
    if count != chunks:
        raise SystemExit(f"sync stream: {count} updates, expected {chunks}")
    return elapsed


def interleaved(
    repeat: int, run_async: object, run_sync: object
) -> tuple[list[float], list[float]]:
    """Run both sides ``repeat`` times, alternating which goes first."""
    assert callable(run_async) and callable(run_sync)
    async_times: list[float] = []
    sync_times: list[float] = []
    for i in range(repeat):
        order = [("a", run_async), ("s", run_sync)]
        if i % 2:
            order.reverse()
        for side, run in order:
            (async_times if side == "a" else sync_times).append(run())
    return async_times, sync_times


def profile_sync(endpoint: str, args: argparse.Namespace) -> None:
    """Run the sync side once under cProfile and print where the time goes."""
    for label, run in (
        ("non-streamed requests", lambda: sync_requests(endpoint, args.requests)),
        ("stream", lambda: sync_stream(endpoint, args.chunks)),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        print(f"\n--- cProfile of the sync {label} (calling thread only), top 15 by tottime")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


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
        a_times, s_times = interleaved(
            args.repeat,
            lambda: asyncio.run(async_requests(endpoint, args.requests)),
            lambda: sync_requests(endpoint, args.requests),
        )
        a_med, s_med = statistics.median(a_times), statistics.median(s_times)
        print(
            f"non-streamed  async {a_med / args.requests * 1e6:8.1f} us/request   "
            f"sync {s_med / args.requests * 1e6:8.1f} us/request   "
            f"sync/async {s_med / a_med:.2f}x   "
            f"(sync overhead {(s_med - a_med) / args.requests * 1e6:+.1f} us/request)"
        )
        a_times, s_times = interleaved(
            args.repeat,
            lambda: asyncio.run(async_stream(endpoint, args.chunks)),
            lambda: sync_stream(endpoint, args.chunks),
        )
        a_med, s_med = statistics.median(a_times), statistics.median(s_times)
        print(
            f"stream        async {args.chunks / a_med:10.0f} updates/s   "
            f"sync {args.chunks / s_med:10.0f} updates/s   "
            f"sync/async {s_med / a_med:.2f}x"
        )
        if args.profile:
            profile_sync(endpoint, args)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
