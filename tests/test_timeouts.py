"""Timeouts: connect, time to the response head, silence between events, and the optional total.

Every deadline is a fraction of a second here; each test checks the error class from the
project's tree, that nothing is left checked out of the connection pool, and (where it
matters) that a healthy stream is never cut.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, cast

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from _fault_server import (
    Exchange,
    FaultServer,
    _chunked,
    chunk_event,
    completion,
    sse,
    stall,
)
from _loopback import serve_in_thread
from aiohttp import web

import inference
from inference import (
    ConnectTimeoutError,
    IdleTimeoutError,
    InferenceTimeoutError,
    ReadTimeoutError,
    RequestValidationError,
    RetryPolicy,
    ServiceRequestError,
    Timeout,
    TotalTimeoutError,
)
from inference._config import DEFAULT_TIMEOUT
from inference.aio import ChatCompletionsClient
from inference.models import UserMessage

HI = [UserMessage("hi")]


async def wait_until_server_sees_close(server: FaultServer) -> None:
    """Wait (at most 2 s) until the server has no open connection left."""
    for _ in range(200):
        if not server.open_connections:
            break
        await anyio.sleep(0.01)
    assert server.open_connections == 0


# -- the Timeout object --------------------------------------------------------------------------


def test_timeout_defaults() -> None:
    """Defaults: 10 s connect, 600 s to the head, 120 s idle, and no total limit."""
    assert Timeout() == Timeout(connect=10.0, read=600.0, idle=120.0, total=None)
    assert DEFAULT_TIMEOUT.total is None


def test_timeout_coerce() -> None:
    """A number sets connect, read and idle; None keeps the default; an instance is kept."""
    default = Timeout(total=50.0)
    assert Timeout.coerce(None, default) is default
    assert Timeout.coerce(3, default) == Timeout(connect=3, read=3, idle=3, total=50.0)
    mine = Timeout(idle=1.0)
    assert Timeout.coerce(mine, default) is mine
    for bad in (True, "5", [1]):
        with pytest.raises(RequestValidationError):
            Timeout.coerce(cast(Any, bad), default)


@pytest.mark.parametrize("field", ["connect", "read", "idle", "total"])
@pytest.mark.parametrize("value", [0, -1.0, "10"])
def test_timeout_rejects_non_positive(field: str, value: object) -> None:
    """Each field takes a positive number of seconds or None; the message names the field."""
    with pytest.raises(RequestValidationError, match=field):
        Timeout(**cast(Any, {field: value}))


@pytest.mark.anyio
async def test_default_session_has_no_total_timeout() -> None:
    """The session the client creates has no overall timeout (aiohttp's 300 s is off)."""
    async with ChatCompletionsClient("http://127.0.0.1:9/v1", model="m") as client:
        session = client._transport._get_session()
        assert session.timeout.total is None
        assert session.timeout.sock_read is None


# -- the head of the response ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_timeout_before_the_head() -> None:
    """A server that never answers gives ReadTimeoutError; the connection is dropped."""
    async with (
        FaultServer(default=stall()) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(read=0.2), retry=0
        ) as client,
    ):
        with pytest.raises(ReadTimeoutError, match=r"Timeout\.read") as info:
            await client.complete(messages=HI)
        assert info.value.attempts == 1
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_read_timeout_is_retried_and_counted() -> None:
    """A read timeout counts as a failed attempt and is retried; attempts are reported."""
    async with (
        FaultServer(default=stall()) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(read=0.15), retry=0
        ) as client,
    ):
        with pytest.raises(ReadTimeoutError) as info:
            await client.complete(messages=HI, retry=RetryPolicy(max_retries=1, backoff=0.01))
        assert len(server.attempts) == 2
        assert client._transport.pool_stats()[0] == 0
    assert info.value.attempts == 2


@pytest.mark.anyio
async def test_body_that_stops_arriving_times_out() -> None:
    """A non-streamed body that stops half way raises a timeout, not a hang."""

    async def half_body(ex: Exchange) -> bool:
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            b'{"id": "x", "choices": ['
        )
        await ex.wait_for_disconnect()
        return False

    async with (
        FaultServer(default=half_body) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(idle=0.2), retry=0
        ) as client,
    ):
        with pytest.raises(InferenceTimeoutError):
            await client.complete(messages=HI)
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


def _full_backlog_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose accept queue is full, so new connections cannot complete."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    return listener, fillers


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A loopback port where TCP connection set-up never completes."""
    listener, fillers = _full_backlog_listener()
    try:
        yield listener.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.anyio
async def test_connect_timeout() -> None:
    """No TCP connection within Timeout.connect: ConnectTimeoutError (a ServiceRequestError)."""
    with unanswered_port() as port:
        await anyio.sleep(0.05)
        async with ChatCompletionsClient(
            f"http://127.0.0.1:{port}/v1", model="m", timeout=Timeout(connect=0.2), retry=0
        ) as client:
            with pytest.raises(ConnectTimeoutError, match=r"Timeout\.connect") as info:
                await client.complete(messages=HI)
            assert client._transport.pool_stats()[0] == 0
    assert isinstance(info.value, ServiceRequestError)
    assert isinstance(info.value, TimeoutError)


# -- streams: silence between events ---------------------------------------------------------------


@pytest.mark.anyio
async def test_stall_mid_stream_raises_idle_timeout_and_releases() -> None:
    """A stream silent for longer than Timeout.idle raises IdleTimeoutError with the partial."""
    async with (
        FaultServer(sse(chunk_event("par"), chunk_event("tial"), then="stall")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", timeout=Timeout(idle=0.2)) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(IdleTimeoutError, match=r"Timeout\.idle") as info:
            async for _ in stream:
                pass
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)
        assert len(server.attempts) == 1
    assert info.value.attempts == 1
    assert stream.partial_completion().choices[0].message.content == "partial"


@pytest.mark.anyio
async def test_keepalive_comments_do_not_reset_the_idle_timer() -> None:
    """A server sending only ': keep-alive' comments is stalled: IdleTimeoutError."""
    async with (
        FaultServer(sse(chunk_event("a"), then="keepalive", keepalive_every=0.03)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", timeout=Timeout(idle=0.25)) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(IdleTimeoutError):
            async with stream:
                async for _ in stream:
                    pass
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_stall_before_the_first_event() -> None:
    """Head sent, then silence: the idle timeout fires from complete() itself."""
    async with (
        FaultServer(default=sse(then="stall")) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(idle=0.2), retry=0
        ) as client,
    ):
        with pytest.raises(IdleTimeoutError):
            await client.complete(messages=HI, stream=True)
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_healthy_stream_outlives_the_idle_timeout() -> None:
    """Events keep coming faster than Timeout.idle: a stream lasting several idles completes."""
    events = [chunk_event(str(n)) for n in range(12)]
    async with (
        FaultServer(sse(*events, gap=0.1)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", timeout=Timeout(idle=0.5)) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            final = await stream.until_done()
        assert final.choices[0].message.content == "".join(str(n) for n in range(12))
        assert client._transport.pool_stats() == (0, 1)


@pytest.mark.anyio
async def test_session_total_timeout_does_not_cut_a_long_stream() -> None:
    """Even a caller's session with a short total timeout does not cut a flowing stream."""
    events = [chunk_event("x") for _ in range(10)]
    async with (
        FaultServer(sse(*events, gap=0.05)) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.15)) as session,
        ChatCompletionsClient(server.endpoint(), model="m", session=session) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            final = await stream.until_done()
        assert final.choices[0].message.content == "x" * 10


@pytest.mark.anyio
async def test_total_timeout_cuts_a_slow_stream() -> None:
    """Timeout.total, when set, bounds the whole call, stream included."""
    events = [chunk_event("x") for _ in range(40)]
    async with (
        FaultServer(sse(*events, gap=0.05)) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(idle=5.0, total=0.4)
        ) as client,
    ):
        received = 0
        with pytest.raises(TotalTimeoutError):
            stream = await client.complete(messages=HI, stream=True)
            async with stream:
                async for _ in stream:
                    received += 1
        assert received < 40
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_total_timeout_bounds_retries() -> None:
    """Retries stop when Timeout.total runs out: TotalTimeoutError, not another attempt."""
    async with (
        FaultServer(default=stall()) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(read=5.0, total=0.3), retry=5
        ) as client,
    ):
        with pytest.raises(TotalTimeoutError):
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0


# -- per-call overrides ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_per_call_timeout_overrides_the_client() -> None:
    """timeout= on a call replaces the client's deadlines for that call only."""
    async with (
        FaultServer(sse(chunk_event("a"), then="stall"), stall()) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(idle=30.0, read=30.0), retry=0
        ) as client,
    ):
        stream = await client.complete(messages=HI, stream=True, timeout=Timeout(idle=0.2))
        with pytest.raises(IdleTimeoutError):
            async for _ in stream:
                pass
        with pytest.raises(ReadTimeoutError):
            await client.complete(messages=HI, timeout=0.2)
        assert client._transport.pool_stats()[0] == 0
        server.plan(completion("still fine"))
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "still fine"


# -- a response that keeps trickling, a stream that never waits ------------------------------


async def _trickling_json(ex: Exchange) -> bool:
    """A 200 JSON head, then one space of chunked body every 0.05 s until the client leaves."""
    await ex.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with suppress(ConnectionError):
        while not ex.reader.at_eof():
            await ex.send(b"1\r\n \r\n")
            await anyio.sleep(0.05)
    return False


@pytest.mark.anyio
async def test_read_timeout_bounds_a_trickling_body() -> None:
    """A non-streamed body that never ends but is never silent for Timeout.idle is cut by
    Timeout.read (head and body together), without Timeout.total; it is not retried."""
    async with (
        FaultServer(default=_trickling_json) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(connect=2, read=0.5, idle=0.5), retry=3
        ) as client,
    ):
        with pytest.raises(ReadTimeoutError, match=r"Timeout\.read") as info:
            with anyio.fail_after(10):  # the bug this guards against is a hang
                await client.complete(messages=HI)
        assert info.value.attempts == 1
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


async def _flood(ex: Exchange) -> bool:
    """An event stream sending events as fast as the client takes them, until it leaves."""
    await ex.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    block = _chunked(chunk_event("x") * 200)
    with suppress(ConnectionError):
        while not ex.reader.at_eof():
            await ex.send(block)
    return False


@pytest.mark.anyio
async def test_total_timeout_cuts_a_fast_stream_promptly() -> None:
    """Timeout.total ends a stream whose events arrive faster than they are consumed (its
    reads never wait) soon after the deadline, not whenever a read happens to wait."""
    async with (
        FaultServer(default=_flood) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", timeout=Timeout(idle=5.0, total=1.0)
        ) as client,
    ):
        received = 0
        started = anyio.current_time()
        with pytest.raises(TotalTimeoutError) as info:
            with anyio.fail_after(10):
                stream = await client.complete(messages=HI, stream=True)
                async with stream:
                    async for _ in stream:
                        received += 1
                        await anyio.lowlevel.checkpoint()  # own work between updates
        took = anyio.current_time() - started
        assert "longer than Timeout.total (1 s)" in str(info.value)  # the limit, and what to do:
        assert "raise Timeout.total" in str(info.value)
        assert received > 0
        assert took < 3.0, f"TotalTimeoutError came {took:.1f} s after the call began"
        assert client._transport.pool_stats()[0] == 0
        await wait_until_server_sees_close(server)


_FLOOD_BLOCK = (
    b'data: {"id":"f","object":"chat.completion.chunk","created":1736389076,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
) * 200


async def _flood_handler(request: web.Request) -> web.StreamResponse:
    """An aiohttp event stream writing events as fast as it can, forever (until the client
    leaves)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    with suppress(ConnectionError):
        while True:
            await response.write(_FLOOD_BLOCK)
            await asyncio.sleep(0)  # let the server's loop see the client leave
    return response


def test_total_timeout_cuts_a_fast_stream_promptly_sync() -> None:
    """The sync API: Timeout.total ends a stream whose events never stop arriving (the pump
    on the client's loop never waits for a read) soon after the deadline. Without the bound,
    the loop below would run on: it gives up after WATCHDOG seconds and the test fails."""
    total, watchdog = 0.5, 20.0
    received = 0
    with (
        serve_in_thread(_flood_handler) as url,
        inference.ChatCompletionsClient(
            f"{url}/v1", model="m", timeout=Timeout(idle=5.0, total=total), retry=0
        ) as client,
    ):
        started = time.monotonic()
        with pytest.raises(TotalTimeoutError), client.complete(messages=HI, stream=True) as stream:
            for _ in stream:
                received += 1
                if time.monotonic() - started > watchdog:
                    break
        took = time.monotonic() - started
        assert received > 0
        # Generous for a loaded machine: the deadline is 0.5 s, the bound ten times that.
        assert took < 5.0, f"TotalTimeoutError came {took:.1f} s after the call began"
        assert client._async._transport.pool_stats()[0] == 0


_COMPLETION = (
    b'{"id":"1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"finish_reason":"stop","message":{"role":"assistant","content":"fine"}}]}'
)


@asynccontextmanager
async def _slow_head_server(kind: str) -> AsyncIterator[str]:
    """A raw socket server on 127.0.0.1 that reads the request, then: ``trickle``, sends a
    response head one byte every 0.1 s, never finishing it; ``interim``, sends ``100
    Continue`` every 0.1 s and never a final head; ``one-interim``, one ``100 Continue`` and,
    a second later, a whole response. Its connections are closed on exit."""
    writers: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        if kind == "one-interim":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(1)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(_COMPLETION), _COMPLETION)
            )
            return
        writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: " if kind == "trickle" else b"")
        for _ in range(600):
            writer.write(b"a" if kind == "trickle" else b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(0.1)

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # the handlers see their connections gone


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["trickle", "interim"])
@pytest.mark.parametrize("stream", [False, True])
async def test_timeout_read_bounds_a_head_that_never_completes(kind: str, stream: bool) -> None:
    """A head trickled a byte at a time (each byte put off aiohttp's read timer) or endless
    ``100 Continue`` heads (the first one stopped the timer): the call lasted until
    Timeout.total, forever by default. Timeout.read now bounds the wait for the final head."""
    timeout = Timeout(connect=5, read=0.5, idle=5)
    async with (
        _slow_head_server(kind) as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", timeout=timeout) as client,
    ):
        began = time.monotonic()
        with pytest.raises(inference.exceptions.ReadTimeoutError) as info:
            await asyncio.wait_for(client.complete(messages=[UserMessage("hi")], stream=stream), 10)
        assert time.monotonic() - began < 3
        assert client._transport.pool_stats() == (0, 0)
    message = str(info.value)
    assert f"the response head from {origin} did not complete within 0.5 s" in message
    assert "(Timeout.read; not retried" in message


@pytest.mark.anyio
async def test_one_interim_head_then_the_answer_within_timeout_read() -> None:
    """``100 Continue``, then the final response within Timeout.read: the answer, as before."""
    async with (
        _slow_head_server("one-interim") as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", timeout=3) as client,
    ):
        answer = await client.complete(messages=[UserMessage("hi")])
    assert answer.choices[0].message.content == "fine"


def test_timeout_read_bounds_a_trickled_head_sync() -> None:
    """The sync client raises the same ReadTimeoutError in bounded time."""

    async def scenario() -> tuple[BaseException | None, float]:
        async with _slow_head_server("trickle") as origin:
            with inference.ChatCompletionsClient(
                f"{origin}/v1", model="m", timeout=Timeout(read=0.5), retry=0
            ) as client:
                began = time.monotonic()
                try:
                    await asyncio.wait_for(
                        asyncio.to_thread(client.complete, messages=[UserMessage("hi")]), 10
                    )
                except inference.exceptions.ReadTimeoutError as exc:
                    return exc, time.monotonic() - began
        return None, 0.0

    error, took = asyncio.run(scenario())
    assert isinstance(error, inference.exceptions.ReadTimeoutError), error
    assert took < 3
    assert "did not complete within 0.5 s (Timeout.read" in str(error)
