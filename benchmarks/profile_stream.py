"""Where the time of one long stream goes, for this library's async client.

Usage::

    python benchmarks/profile_stream.py [--chunks 20000] [--repeat 5] [--top 25] [--quick]

It starts the benchmark server (its own process) and then:

1. Times each stage of the streaming path on its own, per chunk, median of ``--repeat``:
   reading the body with aiohttp (the raw floor), the SSE decoder (``inference.sse``), and
   the chunk parser (``inference._chunks.ChunkParser``: events to updates, accumulated; most
   events are parsed by their text alone); the end-to-end stream through
   ``inference.aio.ChatCompletionsClient``; what is left over is the cost of the stream
   object, the async iteration and the transport wrapper around the stages. For comparison
   it also times every event taken in full (``orjson.loads``, the update builder, the
   accumulator), as the parser does for the events that are not repeats.
2. Runs the end-to-end stream once under cProfile and prints the functions with the most
   time spent in themselves (tottime).

The stage functions are internal (``inference._chunks``, ``inference._serialization``,
``inference._accumulate``);
this script is a development tool and follows them when they change.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from azure.core.credentials import AzureKeyCredential  # noqa: E402

from benchmarks.run import Server  # noqa: E402
from inference._accumulate import ChatCompletionsAccumulator  # noqa: E402
from inference._chunks import ChunkParser  # noqa: E402
from inference._serialization import update_from_owned_dict  # noqa: E402
from inference.aio import ChatCompletionsClient  # noqa: E402
from inference.models import SystemMessage, UserMessage  # noqa: E402
from inference.sse import SSEDecoder  # noqa: E402

__all__ = ["main"]

MESSAGES = [SystemMessage("You are a helpful assistant."), UserMessage("Say a lot.")]


async def read_raw(port: int, chunks: int) -> tuple[float, list[bytes]]:
    """Read one stream's body with plain aiohttp; return (seconds, the reads as delivered)."""
    url = f"http://127.0.0.1:{port}/models/chat/completions"
    body = b'{"stream": true, "max_tokens": %d}' % chunks
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body) as resp:  # warm-up: connection and code
            await resp.read()
        reads: list[bytes] = []
        start = time.perf_counter()
        async with session.post(url, data=body) as resp:
            read = resp.content.readany
            while True:
                data = await read()
                if not data:
                    break
                reads.append(data)
        return time.perf_counter() - start, reads


async def stream_once(client: ChatCompletionsClient, chunks: int) -> float:
    """One stream read to the end through the library; return seconds."""
    start = time.perf_counter()
    stream = await client.complete(messages=MESSAGES, stream=True, max_tokens=chunks)
    count = 0
    async with stream:
        async for update in stream:
            if update.choices and update.choices[0].delta.content:
                count += 1
    seconds = time.perf_counter() - start
    if count != chunks:
        raise SystemExit(f"the stream had {count} text deltas, expected {chunks}")
    return seconds


async def end_to_end(port: int, chunks: int, repeat: int) -> list[float]:
    """Time ``repeat`` streams through the library's async client."""
    endpoint = f"http://127.0.0.1:{port}/models"
    async with ChatCompletionsClient(endpoint, AzureKeyCredential("k"), model="m") as client:
        await stream_once(client, 20)
        return [await stream_once(client, chunks) for _ in range(repeat)]


async def profile_end_to_end(port: int, chunks: int) -> pstats.Stats:
    """One stream through the library under cProfile."""
    endpoint = f"http://127.0.0.1:{port}/models"
    async with ChatCompletionsClient(endpoint, AzureKeyCredential("k"), model="m") as client:
        await stream_once(client, 20)
        profiler = cProfile.Profile()
        profiler.enable()
        await stream_once(client, chunks)
        profiler.disable()
    return pstats.Stats(profiler)


def _median_pass(run: Any, repeat: int) -> float:
    """Median seconds of ``repeat`` calls of ``run`` (a garbage collection before each)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(reads: list[bytes], repeat: int) -> dict[str, float]:
    """Seconds per stage for the whole body, each the median of ``repeat`` passes.

    Each stage runs over all the events in one pass, with one clock around the pass (a clock
    around each event would cost more than some of the stages), and objects living as long
    as in the stream: each update is dropped before the next one is made.
    """
    decoder_events: list[bytes] = []

    def decode() -> None:
        decoder = SSEDecoder()
        decoder_events.clear()
        for data in reads:
            decoder_events.extend(decoder.feed_data(data))  # type: ignore[arg-type]

    t_decode = _median_pass(decode, repeat)
    events = [e for e in decoder_events if e != b"[DONE]"]
    repeats = [0]

    def parse_chunks() -> None:
        parser = ChunkParser(ChatCompletionsAccumulator())
        parse = parser.parse
        for event in events:
            parse(event)
        parser.accumulator.result()
        repeats[0] = parser.repeats

    def loads_only() -> None:
        loads = orjson.loads
        for event in events:
            loads(event)

    def in_full() -> None:
        loads = orjson.loads
        add = ChatCompletionsAccumulator().add
        for event in events:
            add(update_from_owned_dict(loads(event)))

    return {
        "SSE decode": t_decode,
        "chunks": _median_pass(parse_chunks, repeat),
        "repeats": float(repeats[0]),
        "events": float(len(events)),
        "JSON parse": _median_pass(loads_only, repeat),
        "in full": _median_pass(in_full, repeat),
    }


def floor_parse(reads: list[bytes], repeat: int) -> float:
    """Seconds for the floor client's work on the same reads: split, strip, orjson.loads."""
    loads = orjson.loads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        rest = b""
        for data in reads:
            events = (rest + data).split(b"\n\n") if rest else data.split(b"\n\n")
            rest = events.pop()
            for event in events:
                payload = event[6:]
                if payload != b"[DONE]":
                    loads(payload)["choices"]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    """Run the stage timings and the profile; print both."""
    parser = argparse.ArgumentParser(description="Profile one long stream of this library.")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--quick", action="store_true", help="200 chunks, one repeat")
    parser.add_argument(
        "--write-readme", action="store_true", help="put the output into benchmarks/README.md"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks, args.repeat = 200, 1
    server = Server([args.chunks, 20], None)
    try:
        raw_times = []
        reads: list[bytes] = []
        for _ in range(args.repeat):
            seconds, reads = asyncio.run(read_raw(server.port, args.chunks))
            raw_times.append(seconds)
        t_read = statistics.median(raw_times)
        parts = stages(reads, args.repeat)
        t_floor = floor_parse(reads, args.repeat)
        t_e2e = statistics.median(asyncio.run(end_to_end(server.port, args.chunks, args.repeat)))
        stats = asyncio.run(profile_end_to_end(server.port, args.chunks))
    finally:
        server.stop()

    table, profile = render(args, reads, t_read, parts, t_floor, t_e2e, stats)
    print(table)
    print(profile)
    if args.write_readme:
        command = "python benchmarks/profile_stream.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        write_section(
            f"Command: `{command.strip()}`\n\n{table}\n```text\n{profile.rstrip()}\n```\n"
        )
        print("wrote benchmarks/README.md")


def write_section(text: str) -> None:
    """Put ``text`` between the profile markers of benchmarks/README.md."""
    readme = ROOT / "benchmarks" / "README.md"
    start, end = "<!-- profile:start -->", "<!-- profile:end -->"
    content = readme.read_text(encoding="utf-8") if readme.exists() else ""
    block = f"{start}\n{text}{end}"
    if start in content and end in content:
        before, rest = content.split(start, 1)
        content = before + block + rest.split(end, 1)[1]
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(content, encoding="utf-8")


def render(
    args: argparse.Namespace,
    reads: list[bytes],
    t_read: float,
    parts: dict[str, float],
    t_floor: float,
    t_e2e: float,
    stats: pstats.Stats,
) -> tuple[str, str]:
    """The stage table (Markdown) and the profile's top lines (text)."""
    out: list[str] = []
    emit = out.append
    n = args.chunks
    body = sum(len(r) for r in reads)
    emit(
        f"{n} chunks, {body} body bytes in {len(reads)} reads "
        f"({body / len(reads):,.0f} B/read), median of {args.repeat}\n"
    )
    emit("| stage | µs per chunk | share of end-to-end |")
    emit("|---|---:|---:|")
    rows = [
        ("read the body (raw aiohttp floor)", t_read),
        ("SSE decode (`SSEDecoder.feed_data`)", parts["SSE decode"]),
        (
            f"chunks to updates, accumulated (`ChunkParser.parse`: {parts['repeats']:,.0f} of "
            f"{parts['events']:,.0f} events by their text alone)",
            parts["chunks"],
        ),
    ]
    accounted = sum(t for _, t in rows)
    rows.append(("stream object, iteration, transport wrapper (rest)", t_e2e - accounted))
    for label, seconds in rows:
        emit(f"| {label} | {seconds / n * 1e6:.2f} | {seconds / t_e2e:.0%} |")
    emit(f"| **end to end** (`inference.aio`) | **{t_e2e / n * 1e6:.2f}** | 100% |")
    emit(
        f"| (for comparison: the floor's split + `orjson.loads`) | {t_floor / n * 1e6:.2f} "
        f"| {t_floor / t_e2e:.0%} |"
    )
    emit(
        "| (for comparison: every event in full: `orjson.loads` + `update_from_owned_dict` + "
        f"`add`) | {parts['in full'] / n * 1e6:.2f} | {parts['in full'] / t_e2e:.0%} |"
    )
    emit(
        f"| (of which `orjson.loads` of the whole event) | {parts['JSON parse'] / n * 1e6:.2f} "
        f"| {parts['JSON parse'] / t_e2e:.0%} |"
    )
    emit(
        "\nStages are timed apart from the stream, each as one pass over all the events "
        "(median of the passes);\na small negative rest means the wrapper costs less than "
        "the noise of the timings."
    )
    emit(f"\nend to end: {t_e2e:.3f} s, {t_e2e / t_read:.2f}x the raw floor ({t_read:.3f} s)")
    emit(
        f"SSE decoder alone: {body / parts['SSE decode'] / 1e6:.0f} MB/s "
        f"on the reads aiohttp delivered\n"
    )

    table = "\n".join(out) + "\n"
    out.clear()
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(args.top)
    lines = text.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    total = next((line.strip() for line in lines if "function calls" in line), "")
    emit(f"cProfile of one {n}-chunk stream ({total}), by tottime:\n")
    emit("\n".join(lines[start:]).rstrip())
    return table, "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
