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
