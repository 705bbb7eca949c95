"""Transport failures say in the library's words what happened and with which server.

Connection refused, a host name that does not resolve, a TLS handshake that breaks, and a
server that closes the connection before answering, in the middle of a body or of a stream:
each raises the documented exception from the project's tree, whose message names the
server (``scheme://host:port``) and the failure without aiohttp's class names or an
``[Errno N]`` prefix; the original exception stays chained as ``__cause__``. Every server
is a real aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
from typing import Any

import aiohttp
import orjson
import pytest
from _loopback import serve
from aiohttp import web

import inference
from inference import (
    InferenceError,
    ServiceRequestError,
    ServiceResponseError,
    StreamInterruptedError,
)
from inference.aio import ChatCompletionsClient
from inference.models import UserMessage

HI = [UserMessage("hi")]
# What a message must not carry: a class name, a module or a C source position, an errno.
FOREIGN = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception)\b|aiohttp|_ssl\.c|\[Errno|\[SSL")


def assert_our_words(error: InferenceError, origin: str, *phrases: str) -> None:
    """The message names ``origin`` and says ``phrases``, with nothing of the layers below;
    the lower layer's exception is chained."""
    message = str(error)
    assert origin in message, message
    for phrase in phrases:
        assert phrase in message, message
    assert not FOREIGN.search(message), message
    assert error.__cause__ is not None


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.anyio
async def test_connection_refused() -> None:
    """A closed port: ServiceRequestError saying the connection was refused, and by whom."""
    origin = f"http://127.0.0.1:{closed_port()}"
    async with ChatCompletionsClient(f"{origin}/v1", model="m", retry=0) as client:
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
    assert_our_words(info.value, origin, "cannot connect to", "the connection was refused")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


def test_connection_refused_sync() -> None:
    """The sync client raises the same words."""
    origin = f"http://127.0.0.1:{closed_port()}"
    client = inference.ChatCompletionsClient(f"{origin}/v1", model="m", retry=0)
    with client, pytest.raises(ServiceRequestError) as info:
        client.complete(messages=HI)
    assert_our_words(info.value, origin, "the connection was refused")


class _NoSuchHost(aiohttp.abc.AbstractResolver):
    """A resolver that knows no name (as a DNS server answering NXDOMAIN)."""

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> Any:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_host_name_that_does_not_resolve() -> None:
    """A DNS failure names the host that could not be resolved."""
    connector = aiohttp.TCPConnector(resolver=_NoSuchHost())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        ChatCompletionsClient(
            "http://no-such-host.example/v1", model="m", retry=0, session=session
        ) as client,
    ):
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
    assert_our_words(
        info.value,
        "http://no-such-host.example",
        "the host name no-such-host.example could not be resolved (DNS: Name or service not known)",
    )


@pytest.mark.anyio
async def test_a_tls_handshake_with_a_plain_http_server() -> None:
    """https:// to a server that speaks plain HTTP: the handshake broke, and the hint says
    to check that the server speaks https there."""

    async def plain(request: web.Request) -> web.Response:
        return web.json_response({})

    async with serve(plain) as url:
        origin = url.replace("http:", "https:")
        async with ChatCompletionsClient(f"{origin}/v1", "key", model="m", retry=0) as client:
            with pytest.raises(ServiceRequestError) as info:
                await client.complete(messages=HI)
    assert_our_words(
        info.value, origin, f"TLS with {origin} failed: the handshake broke", "speaks https"
    )
    assert isinstance(info.value.__cause__, aiohttp.ClientSSLError)


@pytest.mark.anyio
async def test_the_server_closes_the_connection_before_answering() -> None:
    """The request is read and the connection closed: no response arrived."""

    async def hang_up(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async with (
        serve(hang_up) as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", retry=0) as client,
    ):
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
    assert_our_words(
        info.value, origin, "failed before a response arrived: the server closed the connection"
    )
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)


async def _cut(request: web.Request, response: web.StreamResponse, data: bytes) -> None:
    await request.read()
    await response.prepare(request)
    await response.write(data)
    await asyncio.sleep(0.05)  # the bytes leave before the connection closes
    assert request.transport is not None
    request.transport.close()


@pytest.mark.anyio
async def test_the_server_closes_the_connection_in_the_middle_of_the_body() -> None:
    """A body shorter than its Content-Length: cut off, with how much had arrived."""

    async def cut_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "1000"}
        )
        await _cut(request, response, b'{"id": "a", "choi')
        return response

    async with (
        serve(cut_body) as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", retry=0) as client,
    ):
        with pytest.raises(ServiceResponseError) as info:
            await client.complete(messages=HI)
    assert_our_words(
        info.value,
        origin,
        "was cut off while its body was read: the server closed the connection before the "
        "whole body arrived (17 of the 1000 bytes its Content-Length announced)",
    )
    assert isinstance(info.value.__cause__, aiohttp.ClientPayloadError)


@pytest.mark.anyio
async def test_the_server_closes_the_connection_in_the_middle_of_a_stream() -> None:
    """A stream cut after its first event: StreamInterruptedError naming the server, the
    event that arrived kept in ``partial``."""

    async def cut_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await _cut(
            request, response, b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
        )
        return response

    async with (
        serve(cut_stream) as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", retry=0) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in stream:
                pass
    assert_our_words(
        info.value,
        origin,
        "broke in the middle of the stream: the server closed the connection before the end "
        "of the body",
    )
    assert info.value.partial.choices[0].message.content == "x"


@pytest.mark.anyio
async def test_a_large_request_body_is_sent_whole_without_a_warning() -> None:
    """A 3 MiB prompt: aiohttp warned (ResourceWarning, an error under this project's pytest
    settings and under ``-W error``) of raw bytes over 1 MiB; the body now goes as a stream,
    whole, and whole again on a retry."""
    from _fault_server import FaultServer, completion, error

    prompt = "word " * (3 * 1024 * 1024 // 5)
    async with (
        FaultServer(error(503), completion("done")) as server,
        ChatCompletionsClient(
            server.endpoint(), "k", retry=inference.RetryPolicy(max_retries=1, backoff=0)
        ) as client,
    ):
        answer = await client.complete(messages=[UserMessage(prompt)])
    assert answer.choices[0].message.content == "done"
    assert len(server.attempts) == 2
    for attempt in server.attempts:
        assert int(attempt.headers["content-length"]) == len(attempt.body) > 3_000_000
        assert orjson.loads(attempt.body)["messages"][0]["content"] == prompt
        assert attempt.headers["content-type"].startswith("application/json")


class _NeverReadsTheBody:
    """A raw socket server on 127.0.0.1 that takes a connection, reads nothing of the request
    (its head and body stay in the socket buffers) and never answers."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)

    async def __aenter__(self) -> str:
        # A small receive buffer, so a few MiB fill it whatever the system's defaults.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        for sock in self._server.sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.transport.abort()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def _open_sockets() -> int:
    """How many sockets this process has open."""
    return sum(
        os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


# 16 MiB: more than a loopback connection's socket buffers hold.
_HUGE_PROMPT = [UserMessage("x" * (16 * 1024 * 1024))]


@pytest.mark.anyio
async def test_a_server_that_never_reads_the_request_body() -> None:
    """The body's upload stalls; without a bound on each write the call waited forever
    (aiohttp starts its read timer only once the whole body is written). Timeout.read bounds
    each wait for the server to take more of it, and the client is usable afterwards."""
    timeout = inference.Timeout(connect=5, read=0.5, idle=0.5)
    server = _NeverReadsTheBody()
    async with (
        server as origin,
        ChatCompletionsClient(f"{origin}/v1", model="m", retry=1, timeout=timeout) as client,
    ):
        loop = asyncio.get_running_loop()
        sockets = _open_sockets()
        began = loop.time()
        with pytest.raises(inference.exceptions.ReadTimeoutError) as info:
            await asyncio.wait_for(client.complete(messages=_HUGE_PROMPT), 20)
        assert loop.time() - began < 10
        assert client._transport.pool_stats() == (0, 0)
        await asyncio.sleep(0.1)
        # The client's connections are gone, not left closing behind the unsent data (the
        # server's own ends are still open).
        assert _open_sockets() == sockets + server.connections == sockets + 2
    assert_our_words(
        info.value, origin, "stopped taking the request body", "within 0.5 s (Timeout.read)"
    )
    assert "(after 2 attempts)" in str(info.value)


def test_a_server_that_never_reads_the_request_body_sync() -> None:
    """The sync client raises the same error in bounded time."""

    async def scenario() -> tuple[str, BaseException | None]:
        async with _NeverReadsTheBody() as origin:
            client = inference.ChatCompletionsClient(
                f"{origin}/v1", model="m", retry=0, timeout=inference.Timeout(read=0.5)
            )
            with client:
                try:
                    await asyncio.wait_for(
                        asyncio.to_thread(client.complete, messages=_HUGE_PROMPT), 20
                    )
                except inference.exceptions.ReadTimeoutError as exc:
                    return origin, exc
        return origin, None

    origin, error = asyncio.run(scenario())
    assert isinstance(error, inference.exceptions.ReadTimeoutError), error
    assert_our_words(error, origin, "stopped taking the request body")


async def _broken_chunks_server(
    content_type: str, first: bytes, pause: float
) -> tuple[asyncio.Server, str]:
    """A raw socket server answering with a chunked body whose second chunk size is not hex
    (``zz``), sent ``pause`` seconds after the head and first chunk; it then holds the
    connection open."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length[1]) if length else 0)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(first), first)
        )
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(b"zz\r\nhello\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


_EVENT = (
    b'data: {"id":"1","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
)


@pytest.mark.anyio
@pytest.mark.parametrize("pause", [0.0, 0.3])
async def test_a_broken_chunked_body_fails_at_once(pause: float) -> None:
    """A chunk size that is not hex, in the packet of the head or later: aiohttp closed the
    connection but the body read waited until Timeout.read (600 s by default). Now it fails
    when the bytes arrive, saying the chunked encoding is broken, not retried."""
    server, origin = await _broken_chunks_server("application/json", b'{"id":', pause)
    async with server, ChatCompletionsClient(f"{origin}/v1", model="m", timeout=30) as client:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ServiceResponseError) as info:
            await asyncio.wait_for(client.complete(messages=HI), 10)
        assert loop.time() - began < 5
        assert client._transport.pool_stats() == (0, 0)
    assert_our_words(
        info.value,
        origin,
        "chunked transfer encoding is broken (Invalid character in chunk size: b'zz')",
    )
    assert "\n" not in str(info.value)
    assert info.value._transient is False


@pytest.mark.anyio
async def test_a_broken_chunked_stream_fails_at_once() -> None:
    """The same in the middle of a stream: StreamInterruptedError saying so, after the first
    event was delivered, instead of waiting for Timeout.idle."""
    server, origin = await _broken_chunks_server("text/event-stream", _EVENT, 0.3)
    async with server, ChatCompletionsClient(f"{origin}/v1", model="m", timeout=30) as client:
        stream = await client.complete(messages=HI, stream=True)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in stream:
                pass
        assert loop.time() - began < 5
    assert_our_words(
        info.value, origin, "the stream from", "its chunked transfer encoding is broken"
    )
    assert info.value.partial.choices[0].message.content == "x"


def test_a_broken_chunked_body_fails_at_once_sync() -> None:
    """The sync client raises the same error as soon as the bytes arrive."""

    async def scenario() -> tuple[str, BaseException | None, float]:
        server, origin = await _broken_chunks_server("application/json", b'{"id":', 0.3)
        async with server:
            with inference.ChatCompletionsClient(f"{origin}/v1", model="m", timeout=30) as client:
                began = asyncio.get_running_loop().time()
                try:
                    await asyncio.wait_for(asyncio.to_thread(client.complete, messages=HI), 10)
                except ServiceResponseError as exc:
                    return origin, exc, asyncio.get_running_loop().time() - began
        return origin, None, 0.0

    origin, error, took = asyncio.run(scenario())
    assert isinstance(error, ServiceResponseError), error
    assert took < 5
    assert_our_words(error, origin, "its chunked transfer encoding is broken")


@pytest.mark.parametrize(
    ("errno_value", "reason"),
    [(errno.EPIPE, " (broken pipe)"), (None, "")],
    ids=["broken-pipe", "no-errno"],
)
def test_a_body_write_that_fails_is_said_in_the_librarys_words(
    errno_value: int | None, reason: str
) -> None:
    """A server that closes the connection while a large body is sent: aiohttp's "Can not
    write request body for <url>" (which of the write and the read fails first is a race) is
    said as what happened, retried like the other failures before a response."""
    from inference.aio._transport import _send_error

    url = "http://127.0.0.1:9/v1/chat/completions"
    exc = aiohttp.ClientOSError(errno_value, f"Can not write request body for {url}")
    error = _send_error(exc, url, 10.0, 600.0)
    assert isinstance(error, inference.ServiceRequestError)
    assert str(error) == (
        "the request to http://127.0.0.1:9 failed before a response arrived: the connection "
        f"broke while the request body was being sent{reason}"
    )
    assert "Can not write" not in str(error)
