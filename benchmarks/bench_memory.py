"""Memory per open stream: what one more concurrent ``complete(..., stream=True)`` costs.

The emulator (:mod:`inference.testing`) runs in its own process, so none of its memory is
counted. Each stream asks it (header ``x-emulator-stall-after``) to send the role chunk and a
few content chunks and then hold the stream open, silent, until the client leaves: the
streams are caught mid-way, as in a service carrying many slow generations. The client opens
``--streams`` of them at once on one async client, reads the first update of each, waits for
the pending bytes to land, and measures:

* Python heap growth (``tracemalloc``): objects this library, aiohttp and asyncio allocate;
* resident set size growth (RSS, Linux ``/proc/self/statm``): the heap plus socket buffers,
  allocator slack and everything else the process pays for.

Both are divided by the number of open streams. The streams are then closed and the heap
measured again: what stays is a leak (it should be close to zero). RSS, on the other hand,
rarely falls back after closing: the allocator keeps freed pages for reuse.

The client uses its own ``aiohttp`` session with no connection limit (the default pool holds
100 connections), so every stream really is open on its own connection at the same time.

Usage: ``python benchmarks/bench_memory.py [--streams N] [--stall-after K] [--quick]``.
``--quick`` opens 20 streams: it only shows that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from inference.aio import AsyncChatCompletionsStream, ChatCompletionsClient
from inference.models import UserMessage

_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from inference.testing import Emulator

    async def main():
        async with Emulator() as emulator:
            print(emulator.endpoint("azure_ai_models"), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
    """
)


def rss_bytes() -> int | None:
    """The process's resident set size in bytes (None where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """Start the emulator in a child process; return it and the endpoint URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert process.stdout is not None
    endpoint = process.stdout.readline().strip()
    if not endpoint.startswith("http"):
        process.kill()
        raise SystemExit("the emulator did not start")
    return process, endpoint


async def open_streams(
    client: ChatCompletionsClient, count: int, stall_after: int
) -> list[AsyncChatCompletionsStream]:
    """Open ``count`` streams at once and read the first update of each."""

    async def one(number: int) -> AsyncChatCompletionsStream:
        stream = await client.complete(
            messages=[UserMessage(f"Tell me about open stream number {number}.")],
            stream=True,
            headers={"x-emulator-stall-after": str(stall_after)},
        )
        await stream.__anext__()
        return stream

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def close_all(streams: list[AsyncChatCompletionsStream]) -> None:
    """Close every stream (releasing its connection)."""
    for stream in streams:
        await stream.aclose()


async def settle() -> None:
    """Let pending bytes land and garbage go."""
    await asyncio.sleep(0.3)
    gc.collect()


async def measure(
    endpoint: str, count: int, stall_after: int, probe: Callable[[], int | None]
) -> tuple[int | None, int | None]:
    """Open ``count`` streams; return (growth while open, growth left after closing them)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        ChatCompletionsClient(endpoint, "bench-key", model="m", session=session) as client,
    ):
        # Warm-up: imports, the session, the converter and a few pooled connections.
        await close_all(await open_streams(client, 5, stall_after))
        await settle()
        before = probe()
        streams = await open_streams(client, count, stall_after)
        await settle()
        during = probe()
        await close_all(streams)
        del streams
        await settle()
        after = probe()
    if before is None or during is None or after is None:
        return None, None
    return during - before, after - before


def heap_bytes() -> int:
    """The current size of the Python heap traced by tracemalloc."""
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    """Parse the arguments, run both measurements and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500, help="streams held open at once")
    parser.add_argument(
        "--stall-after", type=int, default=3, help="content chunks sent before the stall"
    )
    parser.add_argument("--quick", action="store_true", help="20 streams: a smoke run")
    args = parser.parse_args()
    count = 20 if args.quick else args.streams

    process, endpoint = start_emulator()
    try:
        rss_open, rss_left = asyncio.run(measure(endpoint, count, args.stall_after, rss_bytes))
        tracemalloc.start()
        heap_open, heap_left = asyncio.run(measure(endpoint, count, args.stall_after, heap_bytes))
        tracemalloc.stop()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)

    print(f"{count} streams held open at once (each stalled after {args.stall_after} chunks)")
    assert heap_open is not None and heap_left is not None
    print(
        f"  Python heap (tracemalloc): {heap_open / count / 1024:8.1f} KiB per open stream "
        f"({heap_open / 2**20:.1f} MiB in all); left after closing: {heap_left / 1024:.1f} KiB"
    )
    if rss_open is None or rss_left is None:
        print("  RSS: not available on this platform (/proc/self/statm missing)")
    else:
        print(
            f"  RSS:                       {rss_open / count / 1024:8.1f} KiB per open stream "
            f"({rss_open / 2**20:.1f} MiB in all); left after closing: {rss_left / 1024:.1f} KiB"
        )


if __name__ == "__main__":
    main()
