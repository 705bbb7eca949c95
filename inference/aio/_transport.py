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
import errno
import io
import os
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import (
    ContentEncodingError,
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)
from yarl import URL

from .._config import DEFAULT_MAX_CONNECTIONS
from .._version import __version__
from ..exceptions import (
    ConnectTimeoutError,
    InferenceError,
    ReadTimeoutError,
    ResponseTooLargeError,
    ServiceRequestError,
    ServiceResponseError,
    StreamInterruptedError,
)
from ._compat import (
    begin_request,
    bound_reads,
    close_connections_now,
    is_cut,
    pool_stats,
    request_sent_at,
    response_started,
    set_read_timeout,
    watched_connector,
)

__all__ = ["USER_AGENT", "Response", "Transport"]

USER_AGENT = f"aioinference/{__version__}"

# The most bytes one socket (or TLS) read asks for; see the module docstring.
_READ_SIZE = 64 * 1024
# Request bodies larger than this go to aiohttp as a stream of pieces (_UploadBody), each
# write bounded by Timeout.read: a server that stops taking the body cannot hold the call
# forever (aiohttp's read timer starts only once the whole body is written). Smaller bodies
# go as raw bytes, in one write with the head.
_LARGE_BODY = 64 * 1024

# What reading a body can raise. HttpProcessingError is not a ClientError: aiohttp's pure-Python
# parser raises it as is for a broken chunked encoding.
_BODY_ERRORS = (TimeoutError, aiohttp.ClientError, HttpProcessingError, OSError)


class _UploadStalled(Exception):
    """A piece of the request body could not be written within the read timeout."""


class _UploadBody(aiohttp.BytesIOPayload):
    """A large request body, written in pieces; each waits at most ``stall`` seconds for the
    server to take it (None: no bound), else the request fails with :class:`_UploadStalled`."""

    def __init__(self, body: bytes, stall: float | None) -> None:
        super().__init__(io.BytesIO(body))
        self._body = body
        self._stall = stall

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Write the body (at most ``content_length`` bytes), each piece within the bound."""
        body = self._body
        end = len(body) if content_length is None else min(content_length, len(body))
        for start in range(0, end, _READ_SIZE):
            if start:
                await asyncio.sleep(0)  # let the loop breathe between pieces
            try:
                async with asyncio.timeout(self._stall):
                    await writer.write(body[start : min(start + _READ_SIZE, end)])
            except TimeoutError as exc:
                # Closed at once: a plain close would wait, forever, for the server to take
                # what is still buffered for it.
                transport = getattr(writer, "transport", None)
                if transport is not None:
                    transport.abort()
                raise _UploadStalled(start) from exc


class Response:
    """A response whose head has arrived; the body is read with :meth:`read` or
    :meth:`read_chunk`. Always :meth:`release` or :meth:`close` it."""

    __slots__ = ("_done", "_resp", "headers", "origin", "reason", "sent_at", "status")

    def __init__(
        self, resp: aiohttp.ClientResponse, sent_at: float, origin: str = "the server"
    ) -> None:
        self._resp = resp
        self.sent_at = sent_at
        """The loop's time when the request was sent (``Timeout.read`` counts from it)."""
        self.origin = origin
        """Scheme, host and port of the server that answered (for error messages)."""
        bound_reads(resp, _READ_SIZE)
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
        set_read_timeout(self._resp, idle)

    async def read(self, limit: int, *, truncate: bool = False) -> bytes:
        """The whole body, decompressed, if it is at most ``limit`` bytes.

        A longer body raises :class:`ResponseTooLargeError` as soon as the limit is passed
        (``truncate=True``: its first ``limit`` bytes are returned instead), and the
        connection is closed. A body cut short (connection reset, truncated) raises
        :class:`ServiceResponseError`, as does one that arrives broken (then it says so and
        is not retried); a silence longer than the body timeout (see
        :meth:`set_body_timeout`) raises ``TimeoutError``.
        """
        self._check_length(limit, truncate)
        content = self._resp.content
        parts: list[bytes] = []
        size = 0
        try:
            while chunk := await content.readany():
                size += len(chunk)
                if size > limit:
                    self.close()
                    if truncate:
                        parts.append(chunk[: len(chunk) - (size - limit)])
                        break
                    raise self._too_large(limit)
                parts.append(chunk)
        except TimeoutError:
            self.close()
            raise
        except _BODY_ERRORS as exc:
            self.close()
            raise _body_error(exc, self.origin) from exc
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _check_length(self, limit: int, truncate: bool) -> None:
        """Refuse at once a body whose declared (uncompressed) length is over ``limit``."""
        length = self.headers.get("content-length")
        if truncate or not length or "content-encoding" in self.headers:
            return
        if length.isdigit() and int(length) > limit:
            self.close()
            raise self._too_large(limit, f"it says it is {int(length)} bytes; ")

    def _too_large(self, limit: int, detail: str = "") -> ResponseTooLargeError:
        error = ResponseTooLargeError(
            f"the response body (HTTP {self.status}) is larger than max_response_bytes "
            f"({limit} bytes, decompressed); {detail}raise the limit with "
            "ChatCompletionsClient(..., max_response_bytes=...) if it is expected"
        )
        error.limit, error.option = limit, "max_response_bytes"
        return error

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` at the end of the body.

        A body that ends abnormally (connection reset, truncated chunked encoding) raises
        :class:`StreamInterruptedError`.
        """
        try:
            return await self._resp.content.readany()
        except _BODY_ERRORS as exc:
            self.close()
            broken = _broken_chunks(exc)
            raise StreamInterruptedError(
                f"the stream from {self.origin} arrived broken: {broken}"
                if broken
                else f"the connection to {self.origin} broke in the middle of the stream: "
                f"{_cut_reason(exc)}"
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


# -- what went wrong, in the project's words ---------------------------------------------------
# The messages say what happened and with which server; the aiohttp, ssl or OS exception stays
# chained as ``__cause__`` for whoever needs its details.

# "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" -> "wrong version number"
_SSL_NOISE = re.compile(r"^\[[A-Z0-9_]+: [A-Z0-9_]+\] |\s*\(_ssl\.c:\d+\)$")
# "[Errno 111] Connect call failed" -> "Connect call failed"
_ERRNO = re.compile(r"^\[Errno -?\d+\] ")
# "<ContentLengthError: 400, message='Not enough data ...'>" -> "Not enough data ..."
_WRAPPED = re.compile(r"<[A-Za-z]+: \d+, message=(['\"])(.*?)\1>")
# aiohttp's "(received 17 of 1000 bytes)" of a body shorter than its Content-Length.
_RECEIVED = re.compile(r"received (\d+) of (\d+) bytes")
# "ServerDisconnectedError: " and the like, in front of a lower layer's own words.
_CLASS_PREFIX = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception): ")
_DNS_ERRORS: tuple[type[BaseException], ...] = (
    socket.gaierror,
    *((aiohttp.ClientConnectorDNSError,) if hasattr(aiohttp, "ClientConnectorDNSError") else ()),
)


def _plain(exc: BaseException | None) -> str:
    """What ``exc`` says, without class names, errno prefixes or wrapped reprs."""
    if exc is None:
        return "no detail was given"
    if isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        text = str(exc.message)  # their str() repeats the status and the URL
    elif isinstance(exc, ssl.SSLError):
        text = _SSL_NOISE.sub("", str(exc.args[1] if len(exc.args) > 1 else exc))
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc)
    text = _CLASS_PREFIX.sub("", _WRAPPED.sub(r"\2", _ERRNO.sub("", text))).strip()
    # llhttp's messages show the offending bytes, and a caret under them, on lines of their own.
    text = " ".join(line for part in text.splitlines() if (line := part.strip()).strip("^"))
    if len(text) > 300:
        text = text[:300] + "..."
    return text or "no detail was given"


def _connect_reason(exc: aiohttp.ClientConnectorError, host: str) -> str:
    """Why a connection could not be set up."""
    os_error = exc.os_error
    if isinstance(exc, _DNS_ERRORS) or isinstance(os_error, socket.gaierror):
        return f"the host name {host} could not be resolved (DNS: {_plain(os_error)})"
    if isinstance(os_error, ConnectionRefusedError):
        return (
            "the connection was refused (nothing listens on that port, or a firewall "
            "turned the connection away)"
        )
    if isinstance(os_error, ConnectionResetError):
        return "the connection was reset while it was being set up"
    return _plain(os_error)


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    """Why TLS failed: the certificate was refused, or the handshake broke."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        detail = getattr(error, "verify_message", None) or _plain(error)
        return (
            f"the server's certificate was refused (certificate verify failed: {detail}); "
            "a private CA or self-signed certificate needs a session that trusts it (session=)"
        )
    return (
        f"the handshake broke ({_plain(exc.os_error)}); check that the server speaks https "
        "on that port"
    )


def _cut_reason(exc: BaseException) -> str:
    """Why a body stopped before its end (see :func:`is_cut`)."""
    cause = exc.__cause__ if isinstance(exc, aiohttp.ClientPayloadError) else exc
    if isinstance(cause, ContentLengthError):
        counts = _RECEIVED.search(str(cause.message))
        got = f"{counts[1]} of the {counts[2]}" if counts else "fewer than the"
        return (
            f"the server closed the connection before the whole body arrived ({got} bytes "
            "its Content-Length announced)"
        )
    if isinstance(cause, TransferEncodingError | aiohttp.ClientPayloadError):
        return "the server closed the connection before the end of the body"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
    ):
        return "the connection was reset"
    if isinstance(exc, aiohttp.ClientOSError) and "Can not write request body" in str(exc):
        # The server closed the connection while the body was being sent (a broken pipe).
        why = f" ({os.strerror(exc.errno).lower()})" if exc.errno else ""
        return f"the connection broke while the request body was being sent{why}"
    return _plain(exc)


def _body_error(exc: BaseException, origin: str) -> ServiceResponseError:
    """The project's error for a failure while a body was read (see :func:`is_cut`)."""
    if is_cut(exc):
        return ServiceResponseError(
            f"the response from {origin} was cut off while its body was read: {_cut_reason(exc)}"
        )
    cause = exc.__cause__ if isinstance(exc, aiohttp.ClientPayloadError) else exc
    if isinstance(cause, ContentEncodingError):
        detail = "its compressed data does not decompress as its Content-Encoding says"
    elif broken := _broken_chunks(exc):
        detail = broken
    else:
        detail = _plain(cause if isinstance(cause, HttpProcessingError) else exc)
    error = ServiceResponseError(
        f"the response body from {origin} arrived broken (not retried: the server answered): "
        f"{detail}"
    )
    error._transient = False
    return error


class Transport:
    """Sends requests with one aiohttp session (the caller's, or one created on first use).

    The session it creates keeps at most ``max_connections`` connections; more concurrent
    requests wait for a free one (a wait bounded by ``Timeout.total`` only: ``connect`` is
    the time to set up a connection once there is room for it).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        trust_env: bool = False,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._trust_env = trust_env
        self._limit = max_connections
        self._ssl = ssl_context
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()  # the process whose loop owns the session
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
            self._pid = os.getpid()
        session = self._session
        if session is None:
            session = self._session = aiohttp.ClientSession(
                connector=watched_connector(self._limit, self._ssl),
                trust_env=self._trust_env,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                headers={"User-Agent": USER_AGENT},
            )
        return session

    def _client_timeout(
        self, connect_timeout: float | None, read_timeout: float | None
    ) -> aiohttp.ClientTimeout:
        # ``sock_connect`` bounds TCP and TLS set-up; aiohttp's ``connect`` would also count
        # the wait for a free pool slot, so it is off. ``sock_read`` is aiohttp's socket-read
        # timer: nothing arrives for that long after the request was sent -> timeout. The
        # caller re-sets it for the body (set_body_timeout).
        timeout = self._timeouts.get((connect_timeout, read_timeout))
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout
            )
            if len(self._timeouts) < 8:  # the client's usual settings; deadlines vary
                self._timeouts[(connect_timeout, read_timeout)] = timeout
        return timeout

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

        The response's ``sent_at`` is when the request was handed to its connection (for a
        caller's own session, when this call began). Raises :class:`ConnectTimeoutError`,
        :class:`ReadTimeoutError` or :class:`ServiceRequestError` when no response byte
        arrived, and :class:`ServiceResponseError` (not to be retried) when a response began
        to arrive but its head was broken.
        """
        session = self._get_session()
        timeout = self._client_timeout(connect_timeout, read_timeout)
        begin_request()
        began = asyncio.get_running_loop().time()
        try:
            resp = await session.request(
                method,
                url,
                params=params,
                headers=headers,
                # A large body goes as a stream of pieces, each write bounded (aiohttp also
                # warns, ResourceWarning, of raw bytes over 1 MiB); a fresh one per attempt.
                data=(
                    body
                    if body is None or len(body) <= _LARGE_BODY
                    else _UploadBody(body, read_timeout)
                ),
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, HttpProcessingError, OSError, ValueError, RuntimeError) as exc:
            raise _send_error(exc, url, connect_timeout, read_timeout) from exc
        return Response(resp, request_sent_at() or began, _origin(url))

    def pool_stats(self) -> tuple[int, int]:
        """``(in_use, idle)`` connection counts of the pool (for tests and diagnostics)."""
        return pool_stats(self._session)

    def abandon(self) -> bool:
        """Close the connections of a session this transport created and nobody closed (from a
        finalizer, in any thread): True if there was one. In a forked child it touches
        nothing (and says False): the connections and the loop's registrations are the
        parent's."""
        session = self._session
        loop = self._loop
        if session is None or not self._owns_session or session.closed or loop is None:
            return False
        self._closed = True
        self._session = None
        if os.getpid() != self._pid:
            return False
        connector = session.connector
        session.detach()  # the session is closed; its connector is closed below
        if connector is not None:
            if loop.is_closed() or asyncio._get_running_loop() is loop:
                close_connections_now(connector)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(close_connections_now, connector)
        return True

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()


def _send_error(
    exc: BaseException, url: str, connect_timeout: float | None, read_timeout: float | None
) -> InferenceError:
    """The project's error for a request that got no usable response head."""
    origin = _origin(url)
    error: InferenceError
    if isinstance(exc.__cause__, _UploadStalled):
        return ReadTimeoutError(
            f"{origin} stopped taking the request body: no more of it could be sent within "
            f"{read_timeout} s (Timeout.read) after {exc.__cause__.args[0]} bytes"
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeoutError(
            f"could not connect to {origin} within {connect_timeout} s (Timeout.connect)"
        )
    started = response_started(exc)
    if isinstance(exc, TimeoutError):
        if not started:
            return ReadTimeoutError(
                f"{origin} sent no response within {read_timeout} s (Timeout.read)"
            )
        error = ReadTimeoutError(
            f"the response head from {origin} did not complete within {read_timeout} s "
            "(Timeout.read; not retried: the server had begun to answer)"
        )
    elif isinstance(exc, aiohttp.ClientSSLError):
        error = ServiceRequestError(f"TLS with {origin} failed: {_tls_reason(exc)}")
    elif isinstance(exc, aiohttp.ClientConnectorError):
        return ServiceRequestError(
            f"cannot connect to {origin}: {_connect_reason(exc, _host(url))}"
        )
    elif started:
        error = ServiceResponseError(
            f"the response from {origin} arrived broken (not retried: the server had begun "
            f"to answer): {_head_reason(exc)}"
        )
    else:
        return ServiceRequestError(
            f"the request to {origin} failed before a response arrived: {_cut_reason(exc)}"
        )
    error._transient = False
    return error


def _broken_chunks(exc: BaseException) -> str | None:
    """What is wrong if ``exc`` says a chunked transfer encoding is broken, else None."""
    cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
    if not isinstance(cause, HttpProcessingError):
        return None
    if isinstance(exc, aiohttp.ClientPayloadError) and is_cut(exc):
        return None  # the connection was lost within a chunk
    text = _plain(cause)
    if "chunk" in text.lower():
        return f"its chunked transfer encoding is broken ({text})"
    return None


def _head_reason(exc: BaseException) -> str:
    """Why a response head that had begun to arrive could not be read."""
    if broken := _broken_chunks(exc):  # parsed with the head, in the same packet
        return f"the head was followed by a body whose {broken.removeprefix('its ')}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before the response head was complete"
    if isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        return f"the response head could not be parsed ({_plain(exc)})"
    return _cut_reason(exc)


def _origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, without user information, path or query."""
    parsed = URL(url)
    if not parsed.absolute:
        return "the server"
    return str(parsed.origin())


def _host(url: str) -> str:
    return URL(url).host or "the server"
