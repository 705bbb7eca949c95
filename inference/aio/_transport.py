"""The HTTP transport: the only module that imports aiohttp.

Every aiohttp exception is mapped here to the project's tree (:mod:`inference.exceptions`);
none escapes. The session is created lazily on the running event loop (never in ``__init__``)
and does not read proxy settings or ``.netrc`` from the environment per request unless the
caller asks for it (``trust_env=True``).

Reads are bounded to 64 KiB (:func:`_bound_reads`). asyncio's transports read up to 256 KiB
at a time and allocate a buffer of that size for every read, whatever arrives, then shrink
it. That size is above glibc's mmap threshold: every read maps and unmaps memory, and on a
thread other than the main one (the sync API's loop thread) the fresh pages also fault in,
two page faults per read as measured. A 64 KiB buffer comes from the allocator's heap. A
body larger than that arrives in more reads; the response and its bytes do not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from .._version import __version__
from ..exceptions import (
    ConnectTimeoutError,
    InferenceError,
    ReadTimeoutError,
    ServiceRequestError,
    ServiceResponseError,
    StreamInterruptedError,
)

__all__ = ["USER_AGENT", "Response", "Transport", "is_retryable"]

USER_AGENT = f"aioinference/{__version__}"

# The most bytes one socket (or TLS) read asks for; see the module docstring.
_READ_SIZE = 64 * 1024

# What reading a body can raise. HttpProcessingError is not a ClientError: aiohttp's pure-Python
# parser raises it as is for a broken chunked encoding.
_BODY_ERRORS = (TimeoutError, aiohttp.ClientError, HttpProcessingError, OSError)


class Response:
    """A response whose head has arrived; the body is read with :meth:`read` or
    :meth:`read_chunk`. Always :meth:`release` or :meth:`close` it."""

    __slots__ = ("_done", "_resp", "headers", "reason", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        # A small response may be complete on arrival, its connection already back in the
        # pool (``resp.connection`` is None then): the protocol still knows the transport.
        _bound_reads(getattr(getattr(resp, "_protocol", None), "transport", None))
        self.status: int = resp.status
        self.reason: str = resp.reason or ""
        self.headers: Mapping[str, str] = _LowerHeaders(resp.headers)
        self._done = False

    def set_body_timeout(self, idle: float | None) -> None:
        """Bound each wait for more body bytes by ``idle`` seconds (None: no bound).

        The bound is aiohttp's socket-read timer, which every arriving packet resets: a body
        that keeps arriving is never cut. Streams pass None and keep their own clock, because
        for them only events count (keep-alive comments must not reset it).
        """
        connection = self._resp.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is not None:
            protocol.read_timeout = idle
            protocol.start_timeout()  # re-arm the timer with the new bound

    async def read(self) -> bytes:
        """The whole body. A body cut short (connection reset, truncated) raises
        :class:`ServiceResponseError`; a silence longer than the body timeout (see
        :meth:`set_body_timeout`) raises ``TimeoutError``.
        """
        try:
            return await self._resp.read()
        except TimeoutError:
            self.close()
            raise
        except _BODY_ERRORS as exc:
            self.close()
            raise ServiceResponseError(
                f"the connection failed while reading the response body: {_describe(exc)}"
            ) from exc

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` at the end of the body.

        A body that ends abnormally (connection reset, truncated chunked encoding) raises
        :class:`StreamInterruptedError`.
        """
        try:
            return await self._resp.content.readany()
        except _BODY_ERRORS as exc:
            self.close()
            raise StreamInterruptedError(
                f"the connection broke in the middle of the stream: {_describe(exc)}"
            ) from exc

    async def drain(self, limit: int = 65536) -> None:
        """Read what is left of the body (at most ``limit`` bytes) so the connection can be
        reused, then release it; close it instead if more than ``limit`` bytes remain."""
        content = self._resp.content
        seen = 0
        try:
            while not content.at_eof():
                chunk = await content.readany()
                if not chunk:
                    break
                seen += len(chunk)
                if seen > limit:
                    self.close()
                    return
        except _BODY_ERRORS:
            self.close()
            return
        self.release()

    def release(self) -> None:
        """Give the connection back to the pool (closed instead if the body was not read)."""
        if not self._done:
            self._done = True
            self._resp.release()

    def close(self) -> None:
        """Close the connection (it is not reused)."""
        if not self._done:
            self._done = True
            self._resp.close()

    @property
    def closed(self) -> bool:
        """True once released or closed."""
        return self._done

    @property
    def at_eof(self) -> bool:
        """True when the whole body has been received and read."""
        return self._resp.content.at_eof()


class _LowerHeaders(Mapping[str, str]):
    """Case-insensitive, read-only snapshot of response headers (plain data: picklable)."""

    __slots__ = ("_h",)

    def __init__(self, headers: Any) -> None:
        self._h: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            # A repeated header keeps all its values, comma-joined (RFC 9110, 5.3).
            self._h[key] = f"{self._h[key]}, {value}" if key in self._h else value

    def __getitem__(self, key: str) -> str:
        return self._h[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._h.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._h

    def __iter__(self) -> Any:
        return iter(self._h)

    def __len__(self) -> int:
        return len(self._h)

    def __repr__(self) -> str:
        return repr(self._h)


def _bound_reads(transport: asyncio.Transport | None) -> None:
    """Make ``transport`` read at most :data:`_READ_SIZE` bytes at a time (once per
    connection; a no-op for transports without asyncio's ``max_size``, such as uvloop's).

    A TLS connection reads decrypted bytes through its SSL protocol, which has a ``max_size``
    of its own: that one is bounded too.
    """
    if transport is None:
        return
    for target in (transport, getattr(transport, "_ssl_protocol", None)):
        # A transport of another shape (a test double, say) is left as it is.
        with contextlib.suppress(AttributeError, TypeError):
            if getattr(target, "max_size", 0) > _READ_SIZE:
                target.max_size = _READ_SIZE  # type: ignore[union-attr]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Transport:
    """Sends requests with one aiohttp session (the caller's, or one created on first use)."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        trust_env: bool = False,
        connection_limit: int = 100,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._trust_env = trust_env
        self._limit = connection_limit
        self._ssl = ssl_context
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise InferenceError("the client is closed; create a new client")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise InferenceError(
                    "this client was first used on another event loop (an earlier "
                    "asyncio.run()?) and its connections belong to that loop: create one "
                    "client per event loop, inside it"
                )
            self._loop = loop
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit, ssl=self._ssl if self._ssl is not None else True
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=self._trust_env,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                headers={"User-Agent": USER_AGENT},
            )
        return session

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        body: bytes | None,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> Response:
        """Send one request and wait for the response head.

        Raises :class:`ConnectTimeoutError`, :class:`ReadTimeoutError` or
        :class:`ServiceRequestError` (no response byte arrived: safe to retry).
        """
        session = self._get_session()
        # ``read`` is aiohttp's socket-read timer: nothing arrives for that long after the
        # request was sent -> timeout. The caller re-sets it for the body (set_body_timeout).
        timeout = self._timeouts.get((connect_timeout, read_timeout))
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=connect_timeout,
                sock_connect=connect_timeout,
                sock_read=read_timeout,
            )
            if len(self._timeouts) < 8:  # the client's usual settings; deadlines vary
                self._timeouts[(connect_timeout, read_timeout)] = timeout
        try:
            resp = await session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
            )
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise ConnectTimeoutError(
                    f"could not connect to {_origin(url)} within {connect_timeout} s "
                    "(Timeout.connect)"
                ) from exc
            raise ReadTimeoutError(
                f"{_origin(url)} sent no response within {read_timeout} s (Timeout.read)"
            ) from exc
        except aiohttp.ClientSSLError as exc:
            raise ServiceRequestError(
                f"TLS with {_origin(url)} failed (the certificate was checked and refused, or "
                f"the handshake broke): {exc.os_error or _describe(exc)}"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ServiceRequestError(
                f"cannot connect to {_origin(url)}: {exc.os_error or _describe(exc)}"
            ) from exc
        except (aiohttp.ClientError, HttpProcessingError, OSError, ValueError, RuntimeError) as exc:
            raise ServiceRequestError(
                f"the request to {_origin(url)} failed before a response arrived: {_describe(exc)}"
            ) from exc
        return Response(resp)

    def pool_stats(self) -> tuple[int, int]:
        """``(in_use, idle)`` connection counts of the pool (for tests and diagnostics)."""
        session = self._session
        if session is None or session.closed:
            return (0, 0)
        connector: Any = session.connector
        in_use = len(getattr(connector, "_acquired", ()))
        idle = sum(len(v) for v in getattr(connector, "_conns", {}).values())
        return (in_use, idle)

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()


def is_retryable(exc: BaseException) -> bool:
    """False for a failure that the same request would meet again (a TLS certificate or
    handshake failure); True for the other errors :meth:`Transport.send` raises."""
    return not isinstance(exc.__cause__, aiohttp.ClientSSLError)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
