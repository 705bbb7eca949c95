"""``max_stream_bytes``: a stream's body is read up to a limit, against an aiohttp server on
127.0.0.1 that floods a stream (async and sync clients). Past the limit the stream ends with
ResponseTooLargeError carrying what arrived, and the connection is closed (the server sees
the client go away before it could send the rest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from _fault_server import chunk_event
from aiohttp import web

import inference
from inference import ResponseTooLargeError, StreamError
from inference.aio import ChatCompletionsClient
from inference.models import UserMessage

HI = [UserMessage("hi")]
DONE = b"data: [DONE]\n\n"
LIMIT = 256 * 1024
PIECE = "x" * 999 + " "  # 1000 characters of text per event


class Flood:
    """What the server streams (``events`` events of ``PIECE``, then ``[DONE]``) and what
    happened: the bytes it wrote, whether it wrote them all or the client went away."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.sent = 0
        self.finished = False
        self.cut = False
        self.ended = asyncio.Event()

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """Stream the events; note how it ended."""
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        event = chunk_event(PIECE)
        try:
            for _ in range(self.events):
                await response.write(event)
                self.sent += len(event)
            await response.write(DONE)
            self.finished = True
        except ConnectionError:
            self.cut = True
        finally:
            self.ended.set()
        return response


@asynccontextmanager
async def flood_server(events: int) -> AsyncIterator[tuple[str, Flood]]:
    """An aiohttp server on 127.0.0.1 streaming ``events`` events; yields (endpoint, Flood)."""
    flood = Flood(events)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", flood.handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", flood
    finally:
        await runner.cleanup()


def text_of(completion: Any) -> str:
    """The first choice's content of an assembled completion ("" without choices)."""
    return (completion.choices[0].message.content or "") if completion.choices else ""


def check_limit_error(error: ResponseTooLargeError, endpoint: str, text: str, limit: int) -> None:
    """The error names the limit, the server and the option; partial holds what arrived
    (what the caller iterated), which is less than the limit."""
    message = str(error)
    assert f"max_stream_bytes ({limit} bytes" in message
    assert endpoint.removesuffix("/v1") in message
    assert "max_stream_bytes=...)" in message and "None: no limit" in message
    assert text_of(error.partial) == text
    assert 0 < len(text) < limit
    assert error.attempts == 1


async def ended_by_the_client(flood: Flood) -> None:
    """The server's handler ended because the client closed the connection."""
    with anyio.fail_after(10):
        await flood.ended.wait()
    assert flood.cut and not flood.finished
    assert flood.sent < flood.events * len(chunk_event(PIECE)) // 4  # far from all of it


# -- async -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_async_stream_over_the_limit_raises_and_closes_the_connection() -> None:
    """A 100 MB flood against a 256 KiB limit: the updates before the limit are yielded, then
    ResponseTooLargeError with them in partial; the connection is closed, not pooled."""
    async with (
        flood_server(100_000) as (endpoint, flood),
        ChatCompletionsClient(endpoint, model="m", max_stream_bytes=LIMIT) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        texts: list[str] = []
        with pytest.raises(ResponseTooLargeError) as info:
            async for update in stream:
                texts.append(update.choices[0].delta.content or "")
        check_limit_error(info.value, endpoint, "".join(texts), LIMIT)
        assert not stream.finished
        with pytest.raises(StreamError, match="has not finished"):
            stream.get_final_completion()
        assert text_of(stream.partial_completion()) == "".join(texts)
        await ended_by_the_client(flood)
        assert client._transport.pool_stats() == (0, 0)


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [LIMIT, None], ids=["under the limit", "no limit"])
async def test_an_async_stream_within_the_limit_is_read_whole(limit: int | None) -> None:
    """200 events (about 240 KB with their JSON, under 256 KiB) pass, and so does a
    1000-event stream (1.2 MB) with max_stream_bytes=None; the connection goes back to the
    pool."""
    events = 200 if limit else 1000
    async with (
        flood_server(events) as (endpoint, flood),
        ChatCompletionsClient(endpoint, model="m", max_stream_bytes=limit) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        final = await stream.until_done()
        assert text_of(final) == PIECE * events
        assert flood.finished
        if limit is not None:
            assert flood.sent + len(DONE) <= limit  # the test is near the limit, not far below
            assert flood.sent > limit * 0.8
        assert client._transport.pool_stats() == (0, 1)


@pytest.mark.anyio
async def test_a_limit_crossed_before_the_first_update_raises_from_complete() -> None:
    """A limit smaller than the first read: complete() itself raises (once, not retried)."""
    async with (
        flood_server(100_000) as (endpoint, flood),
        ChatCompletionsClient(endpoint, model="m", max_stream_bytes=10, retry=3) as client,
    ):
        with pytest.raises(ResponseTooLargeError, match=r"max_stream_bytes \(10 bytes") as info:
            await client.complete(messages=HI, stream=True)
        assert text_of(info.value.partial) == ""
        await ended_by_the_client(flood)
    assert info.value.attempts == 1


# -- sync --------------------------------------------------------------------------------------


def read_sync(endpoint: str, limit: int | None) -> tuple[str, BaseException | None, Any]:
    """Iterate a stream with the sync client (in a worker thread): (text, error, final)."""
    texts: list[str] = []
    with inference.ChatCompletionsClient(endpoint, model="m", max_stream_bytes=limit) as client:
        stream = client.complete(messages=HI, stream=True)
        try:
            for update in stream:
                texts.append(update.choices[0].delta.content or "")
        except ResponseTooLargeError as exc:
            return "".join(texts), exc, None
        return "".join(texts), None, stream.get_final_completion()


async def in_thread(function: Callable[[], Any]) -> Any:
    """Run a blocking function in a worker thread (the server stays on this loop)."""
    return await anyio.to_thread.run_sync(function)


@pytest.mark.anyio
async def test_a_sync_stream_over_the_limit_raises_and_closes_the_connection() -> None:
    """The sync client's stream (read by its pump on the client's loop, parsed in the caller's
    thread) ends the same way: ResponseTooLargeError with the text in partial, connection
    closed."""
    async with flood_server(100_000) as (endpoint, flood):
        text, error, _ = await in_thread(lambda: read_sync(endpoint, LIMIT))
        assert isinstance(error, ResponseTooLargeError)
        check_limit_error(error, endpoint, text, LIMIT)
        await ended_by_the_client(flood)


@pytest.mark.anyio
async def test_a_sync_stream_within_the_limit_is_read_whole() -> None:
    """Under the limit the sync stream is read to [DONE] and assembled."""
    async with flood_server(200) as (endpoint, flood):
        text, error, final = await in_thread(lambda: read_sync(endpoint, LIMIT))
    assert error is None
    assert text == text_of(final) == PIECE * 200
    assert flood.finished
