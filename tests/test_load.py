"""Load: hundreds of concurrent streams on one async client, and the sync client from 32 threads.

Answers are short and checked word for word against the emulator's deterministic model;
memory is checked to stay bounded (per open stream, and across rounds: no growth), and every
connection is back in the pool at the end. ``benchmarks/bench_memory.py`` reports the
per-stream figure precisely.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import aiohttp
import anyio
import pytest

import inference
from inference.aio import AsyncChatCompletionsStream, ChatCompletionsClient
from inference.models import UserMessage
from inference.testing import Emulator
from inference.testing import _model as emulator_model

STREAMS = 500
THREADS = 32
CALLS_PER_THREAD = 4


def question(number: int) -> str:
    """The prompt of request ``number`` (each answer quotes it, so answers differ)."""
    return f"q{number}"


def expected_answer(number: int) -> str:
    """What the emulator answers to :func:`question` ``(number)``."""
    body = {"messages": [{"role": "user", "content": question(number)}]}
    content = emulator_model.complete(body).choices[0].content
    assert content is not None
    return content


def rss_bytes() -> int | None:
    """The resident set size of this process (None where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakRss:
    """Samples RSS in the background (every 20 ms) and keeps the highest value."""

    def __init__(self) -> None:
        self.start = rss_bytes()
        self.peak = self.start

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            value = rss_bytes()
            if value is not None and self.peak is not None:
                self.peak = max(self.peak, value)
            await anyio.sleep(0.02)

    @property
    def growth(self) -> int:
        """Peak RSS minus RSS at the start (0 where RSS cannot be read)."""
        if self.start is None or self.peak is None:
            return 0
        return self.peak - self.start


@contextmanager
def traced_heap() -> Iterator[None]:
    """Trace Python allocations inside the block (unless something already traces them).

    The library's DEBUG and INFO records are switched off meanwhile: the test's log capture
    keeps every record, which would look like growth.
    """
    logger = logging.getLogger("inference")
    level = logger.level
    logger.setLevel(logging.WARNING)
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    try:
        yield
    finally:
        if not already:
            tracemalloc.stop()
        logger.setLevel(level)


def heap_now() -> int:
    """Traced Python heap after a full collection."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.anyio
async def test_500_concurrent_streams_complete_correctly(emulator: Emulator) -> None:
    """One async client, 500 concurrent streams: every answer exact, pool empty after."""
    results: dict[int, str] = {}
    sampler = PeakRss()
    async with ChatCompletionsClient(emulator.endpoint(), "key", model="m") as client:

        async def one(number: int) -> None:
            stream = await client.complete(messages=[UserMessage(question(number))], stream=True)
            async with stream:
                final = await stream.until_done()
            results[number] = final.choices[0].message.content or ""

        with anyio.fail_after(50):
            async with anyio.create_task_group() as group:
                group.start_soon(sampler.run)
                async with anyio.create_task_group() as streams:
                    for number in range(STREAMS):
                        streams.start_soon(one, number)
                group.cancel_scope.cancel()
        assert client._transport.pool_stats()[0] == 0
    assert len(results) == STREAMS
    for number in range(STREAMS):
        assert results[number] == expected_answer(number)
    assert len(emulator.requests) == STREAMS
    assert emulator.active_streams == 0
    # Client and emulator share this process: a generous bound that still catches any
    # per-stream buffering of whole bodies.
    assert sampler.growth < 150 * 2**20


STREAM_SECONDS = 4.0
QUEUED_STREAMS = 400


def stream_headers(number: int) -> dict[str, str]:
    """Emulator headers that spread the answer to :func:`question` ``(number)`` over about
    :data:`STREAM_SECONDS` (one delay per token)."""
    body = {"messages": [{"role": "user", "content": question(number)}]}
    tokens = emulator_model.complete(body).completion_tokens
    return {"x-emulator-token-delay": f"{STREAM_SECONDS / max(tokens, 1):.6f}"}


@pytest.mark.anyio
async def test_400_concurrent_4_second_streams_queue_for_the_pool(emulator: Emulator) -> None:
    """Default settings (100 connections, Timeout.connect 10 s) and 400 concurrent streams of
    4 s each: the ones beyond the pool wait for a connection, longer than Timeout.connect,
    and every stream completes with its exact answer."""
    results: dict[int, str] = {}
    async with ChatCompletionsClient(emulator.endpoint(), "key", model="m") as client:

        async def one(number: int) -> None:
            stream = await client.complete(
                messages=[UserMessage(question(number))],
                stream=True,
                headers=stream_headers(number),
            )
            async with stream:
                final = await stream.until_done()
            results[number] = final.choices[0].message.content or ""

        with anyio.fail_after(50):
            async with anyio.create_task_group() as group:
                for number in range(QUEUED_STREAMS):
                    group.start_soon(one, number)
        assert client._transport.pool_stats() == (0, 100)
    assert len(results) == QUEUED_STREAMS
    for number in range(QUEUED_STREAMS):
        assert results[number] == expected_answer(number)


@pytest.mark.anyio
async def test_500_streams_held_open_at_once(emulator: Emulator) -> None:
    """500 streams open at the same time (own session without a pool limit): bounded memory."""
    opened: list[AsyncChatCompletionsStream] = []
    all_open = anyio.Event()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ChatCompletionsClient(emulator.endpoint(), model="m", session=session) as client,
    ):
        await client.complete(messages=[UserMessage("warm up")])
        before = rss_bytes()

        async def one(number: int) -> None:
            stream = await client.complete(
                messages=[UserMessage(question(number))],
                stream=True,
                headers={"x-emulator-stall-after": "2"},
            )
            await stream.__anext__()
            opened.append(stream)
            if len(opened) == STREAMS:
                all_open.set()

        with anyio.fail_after(50):
            async with anyio.create_task_group() as group:
                for number in range(STREAMS):
                    group.start_soon(one, number)
                await all_open.wait()
        await anyio.sleep(0.1)
        during = rss_bytes()
        assert client._transport.pool_stats()[0] == STREAMS
        assert emulator.active_streams == STREAMS
        for stream in opened:
            assert stream.finished is False
        for stream in opened:
            await stream.aclose()
        assert client._transport.pool_stats()[0] == 0
        for _ in range(250):
            if not emulator.active_streams:
                break
            await anyio.sleep(0.02)
        assert emulator.active_streams == 0
    if before is not None and during is not None:
        # Client and server both in this process; the client alone is ~25 KiB per stream.
        assert (during - before) / STREAMS < 256 * 1024


@pytest.mark.anyio
async def test_async_client_memory_does_not_grow_across_rounds(emulator: Emulator) -> None:
    """Rounds of 60 concurrent streams and calls leave the Python heap where it was."""
    async with ChatCompletionsClient(emulator.endpoint(), model="m") as client:

        async def one(number: int) -> None:
            if number % 2:
                stream = await client.complete(
                    messages=[UserMessage(question(number))], stream=True
                )
                async with stream:
                    await stream.until_done()
            else:
                await client.complete(messages=[UserMessage(question(number))])

        async def round_of(count: int) -> None:
            async with anyio.create_task_group() as group:
                for number in range(count):
                    group.start_soon(one, number)
            emulator.requests.clear()

        await round_of(60)
        with traced_heap():
            # The first traced round replaces objects allocated before tracing began (pooled
            # connections' parsers, caches): measure from the end of it.
            await round_of(60)
            first = heap_now()
            for _ in range(2):
                await round_of(60)
            last = heap_now()
        assert client._transport.pool_stats()[0] == 0
    assert last - first < 256 * 1024


def test_sync_client_from_32_threads() -> None:
    """The sync client shared by 32 threads: every answer exact, memory flat, nothing left."""
    threads_before = threading.active_count()
    with Emulator().run_in_thread() as emulator:
        client = inference.ChatCompletionsClient(emulator.endpoint(), "key", model="m")
        try:

            def work(worker: int) -> list[tuple[int, str]]:
                answers = []
                for step in range(CALLS_PER_THREAD):
                    number = worker * 100 + step
                    messages = [UserMessage(question(number))]
                    if step % 2:
                        with client.complete(messages=messages, stream=True) as stream:
                            text = "".join(
                                update.choices[0].delta.content or ""
                                for update in stream
                                if update.choices
                            )
                    else:
                        result = client.complete(messages=messages)
                        text = result.choices[0].message.content or ""
                    answers.append((number, text))
                return answers

            def run_round() -> list[tuple[int, str]]:
                with ThreadPoolExecutor(THREADS) as pool:
                    batches = list(pool.map(work, range(THREADS)))
                return [answer for batch in batches for answer in batch]

            answers = run_round()
            emulator.requests.clear()
            with traced_heap():
                # Measured from the end of a first traced round (see the async test above).
                run_round()
                emulator.requests.clear()
                start = heap_now()
                run_round()
                emulator.requests.clear()
                grown = heap_now() - start
            in_use = client._async._transport.pool_stats()[0]
        finally:
            client.close()
    assert len(answers) == THREADS * CALLS_PER_THREAD
    for number, text in answers:
        assert text == expected_answer(number)
    assert in_use == 0
    assert grown < 256 * 1024
    assert threading.active_count() <= threads_before
