"""Throughput of :class:`inference.sse.SSEDecoder` on a chat-completion event stream.

Builds a stream of ``--chunks`` typical ``chat.completion.chunk`` events (one ``data: {...}``
line each, about 250 bytes, ending with ``data: [DONE]``), cuts it into ``--read-size`` byte
reads, and times decoding it, best and median of ``--repeat`` runs. It reports MB/s
(10**6 bytes per second) and events per second for LF line endings, CRLF line endings, LF
with the decoder's general line-by-line path forced, for comparison, and LF through
``feed_data`` (message data kept as bytes: what the client's streams use).

Usage: ``python benchmarks/bench_sse.py [--chunks N] [--read-size B] [--repeat R] [--quick]``.
``--quick`` uses a tiny stream and one run: it only shows that the harness works. On a busy
machine, trust the best figure more than the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sized
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.sse import SSEDecoder

WORDS = (
    " the", " model", " answer", " is", " streaming", " token", " by", " token", ",",
    " and", " each", " chunk", " carries", " a", " small", " delta", ".", " Über",
    " naïve", " café", " 東京", " 🙂",
)  # fmt: skip


def build_stream(n_events: int, line_ending: bytes) -> tuple[bytes, int]:
    """Return ``n_events`` chat-completion chunk events plus ``[DONE]``, and the event count."""
    parts = []
    for i in range(n_events):
        if i == 0:
            delta: dict[str, object] = {"role": "assistant", "content": ""}
        else:
            delta = {"content": WORDS[i % len(WORDS)]}
        body = {
            "id": "chatcmpl-9xK2mP4vQ7rT1sW8yZ3bC6dF0gH5",
            "object": "chat.completion.chunk",
            "created": 1718000000 + i // 50,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_d1a2b3c4e5",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        parts.append(b"data: " + payload + line_ending + line_ending)
    parts.append(b"data: [DONE]" + line_ending + line_ending)
    return b"".join(parts), n_events + 1


def run_once(reads: list[bytes], force_general: bool, raw: bool) -> tuple[float, int]:
    """Decode ``reads`` with a fresh decoder (``feed_data`` when ``raw``, else ``feed``);
    return (seconds, events)."""
    decoder = SSEDecoder()
    if force_general:
        decoder._fast_path = False
    feed: Callable[[bytes], Sized] = decoder.feed_data if raw else decoder.feed
    count = 0
    start = time.perf_counter()
    for chunk in reads:
        count += len(feed(chunk))
    count += len(decoder.close())
    return time.perf_counter() - start, count


def bench(
    label: str,
    stream: bytes,
    expected: int,
    args: argparse.Namespace,
    *,
    force: bool,
    raw: bool = False,
) -> None:
    """Time one configuration and print its line."""
    size = args.read_size
    reads = [stream[i : i + size] for i in range(0, len(stream), size)]
    times = []
    for _ in range(args.repeat):
        seconds, count = run_once(reads, force, raw)
        if count != expected:
            raise SystemExit(f"{label}: decoded {count} events, expected {expected}")
        times.append(seconds)
    best = min(times)
    median = statistics.median(times)
    print(
        f"{label:<26} {len(stream) / best / 1e6:8.1f} MB/s best {len(stream) / median / 1e6:8.1f}"
        f" MB/s median {expected / best / 1e3:9.1f} k events/s best"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=20_000, help="events in the stream")
    parser.add_argument("--read-size", type=int, default=4096, help="bytes per read")
    parser.add_argument("--repeat", type=int, default=7, help="runs per configuration")
    parser.add_argument("--quick", action="store_true", help="tiny stream, one run")
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks = min(args.chunks, 200)
        args.repeat = 1
    if args.chunks < 0 or args.read_size < 1 or args.repeat < 1:
        parser.error("--chunks must be >= 0, --read-size and --repeat >= 1")

    lf, expected = build_stream(args.chunks, b"\n")
    crlf, _ = build_stream(args.chunks, b"\r\n")
    print(
        f"Python {sys.version.split()[0]}; {expected} events, {len(lf)} bytes LF "
        f"({len(lf) / expected:.0f} B/event), {args.read_size}-byte reads, "
        f"{args.repeat} runs"
    )
    bench("LF", lf, expected, args, force=False)
    bench("CRLF", crlf, expected, args, force=False)
    bench("LF, general path", lf, expected, args, force=True)
    bench("LF, feed_data (bytes)", lf, expected, args, force=False, raw=True)


if __name__ == "__main__":
    main()
