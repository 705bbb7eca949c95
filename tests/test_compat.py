"""The aiohttp internals that ``inference.aio._compat`` reaches for, checked against the
installed aiohttp.

Each test fails loudly (naming what is gone) when an aiohttp release renames or removes
something the library relies on, before any subtler test would misbehave.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from pathlib import Path

import aiohttp
import pytest
from _fault_server import Exchange, FaultServer, chunk_event, completion, sse
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from inference.aio import _compat

ROOT = Path(__file__).resolve().parent.parent


def test_installed_aiohttp_is_in_the_supported_range() -> None:
    """pyproject.toml pins aiohttp to a range, and the installed version lies in it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [spec] = [d for d in project["project"]["dependencies"] if d.startswith("aiohttp")]
    specifier = SpecifierSet(spec.removeprefix("aiohttp"))
    assert any(s.operator == "<" for s in specifier), f"no upper bound in {spec!r}"
    assert Version(aiohttp.__version__) in specifier, (aiohttp.__version__, spec)


@pytest.mark.anyio
async def test_response_handler_has_what_the_watched_protocol_overrides() -> None:
    """aiohttp's connection protocol still has the two methods the subclass extends, and the
    connector still builds protocols with ``_factory`` and counts them in ``_acquired`` and
    ``_conns``."""
    names = ("set_response_params", "data_received", "read_timeout", "start_timeout", "_loop")
    for name in (*names, "feed_data", "exception", "_reschedule_timeout", "_drop_timeout"):
        assert hasattr(ResponseHandler, name), f"aiohttp ResponseHandler has no {name}"
    for name in ("_payload", "_read_timeout_handle"):  # set by its __init__
        assert name in inspect.getsource(ResponseHandler.__init__), f"no {name} in aiohttp"
    assert "read_timeout" in inspect.signature(ResponseHandler.set_response_params).parameters
    connector = aiohttp.TCPConnector()
    try:
        for name in ("_factory", "_acquired", "_conns"):
            assert hasattr(connector, name), f"aiohttp TCPConnector has no {name}"
        assert connector._factory().__class__ is ResponseHandler
    finally:
        await connector.close()


@pytest.mark.anyio
async def test_the_watched_connector_and_pool_stats_work_on_a_real_exchange() -> None:
    """A request through the watched connector: the protocol is ours, it saw the response,
    reads are bounded on the transport, and the pool counts the connection as idle after."""
    async with FaultServer(default=completion()) as server:
        connector = _compat.watched_connector(4, None)
        async with aiohttp.ClientSession(connector=connector) as session:
            _compat.begin_request()
            response = await session.post(server.url + "/v1/chat/completions", data=b"{}")
            protocol = response._protocol
            assert isinstance(protocol, ResponseHandler)
            assert type(protocol).__name__ == "_WatchedHandler"
            assert protocol.started
            sent_at = _compat.request_sent_at()
            assert sent_at is not None and 0 < sent_at <= asyncio.get_running_loop().time()
            assert _compat.response_started(RuntimeError("after the head"))
            transport = protocol.transport
            assert transport is not None
            assert transport.max_size > 1024  # type: ignore[attr-defined]
            _compat.bound_reads(response, 1024)
            assert transport.max_size == 1024  # type: ignore[attr-defined]
            await response.read()
            response.release()
            assert _compat.pool_stats(session) == (0, 1)
            _compat.begin_request()
            assert not _compat.response_started(OSError("before anything"))


@pytest.mark.anyio
async def test_read_timeout_of_a_response_being_read() -> None:
    """set_read_timeout reaches the protocol of a response whose body is still arriving, and
    the pool counts its connection as in use."""
    async with FaultServer(default=sse(chunk_event("a"), then="stall")) as server:
        connector = _compat.watched_connector(4, None)
        async with aiohttp.ClientSession(connector=connector) as session:
            response = await session.post(server.url + "/v1/chat/completions", data=b"{}")
            _compat.set_read_timeout(response, 5.0)
            assert response.connection is not None
            assert response.connection.protocol is not None
            assert response.connection.protocol.read_timeout == 5.0
            assert _compat.pool_stats(session) == (1, 0)
            response.close()
            assert _compat.pool_stats(session) == (0, 0)


def broken_body(payload: bytes) -> object:
    """A chunked 200 whose body arrives, after the head, as ``payload``."""

    async def action(ex: Exchange) -> bool:
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await asyncio.sleep(0.05)
        await ex.send(payload)
        await asyncio.sleep(0.05)
        ex.abort()
        return False

    return action


@pytest.mark.anyio
async def test_a_cut_body_is_told_apart() -> None:
    """aiohttp still says "not completed" for a body the connection cut: is_cut sees a cut."""
    payload = b'20\r\n{"id": '  # a chunk cut short by a reset: the connection was lost
    async with (
        FaultServer(default=broken_body(payload)) as server,  # type: ignore[arg-type]
        aiohttp.ClientSession() as session,
    ):
        response = await session.post(server.url + "/v1", data=b"{}")
        with pytest.raises(aiohttp.ClientPayloadError) as info:
            await response.read()
    assert _compat.is_cut(info.value), repr(info.value)
    assert str(info.value).startswith(_compat._NOT_COMPLETED)
    assert not _compat.is_cut(HttpProcessingError(message="garbage"))


@pytest.mark.anyio
async def test_undecodable_gzip_is_a_content_encoding_error() -> None:
    """Compressed data that does not decompress is reported with ContentEncodingError as the
    cause, which is_cut reads as broken, not cut."""

    async def bad_gzip(ex: Exchange) -> bool:
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello"
        )
        return True

    async with FaultServer(default=bad_gzip) as server, aiohttp.ClientSession() as session:
        response = await session.post(server.url + "/v1", data=b"{}")
        with pytest.raises(aiohttp.ClientPayloadError) as info:
            await response.read()
    assert isinstance(info.value.__cause__, ContentEncodingError)
    assert not _compat.is_cut(info.value)


def test_compat_is_the_only_module_with_private_aiohttp_access() -> None:
    """No other module of the library names an aiohttp private attribute."""
    private = re.compile(r"\._(protocol|ssl_protocol|acquired|conns|factory)\b|\bmax_size\b")
    for path in (ROOT / "inference").rglob("*.py"):
        if path.name == "_compat.py":
            continue
        found = private.findall(path.read_text())
        assert not found, f"{path.relative_to(ROOT)} reaches into aiohttp: {found}"


@pytest.mark.anyio
async def test_close_connections_now_closes_a_pooled_connection() -> None:
    """``BaseConnector._close`` still exists, closes the pool's connections without awaiting
    and marks the connector closed (what a client dropped without close() relies on)."""
    assert callable(getattr(aiohttp.BaseConnector, "_close", None)), "no BaseConnector._close"
    async with FaultServer(default=completion()) as server:
        connector = aiohttp.TCPConnector()
        async with (
            aiohttp.ClientSession(connector=connector, connector_owner=False) as session,
            session.post(server.endpoint() + "/chat/completions", data=b"{}") as response,
        ):
            await response.read()
        [[(protocol, _)]] = list(connector._conns.values())
        _compat.close_connections_now(connector)
        assert connector.closed
        for _ in range(3):
            await asyncio.sleep(0)  # the transport's close callbacks run
        assert protocol.transport is None
