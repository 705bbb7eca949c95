"""Everything the transport needs from aiohttp beyond its public API, in one place.

aiohttp does not offer these, so they reach into its internals; ``tests/test_compat.py``
checks each one against the installed aiohttp, and ``pyproject.toml`` pins the range of
versions they were checked with. Nothing else in the library touches a private name of aiohttp.

* :func:`bound_reads`: the transport's ``max_size`` (and its TLS protocol's), to read at most
  64 KiB at a time (see :mod:`inference.aio._transport`).
* :func:`set_read_timeout`: re-arm the socket-read timer of a response's connection.
* :func:`pool_stats`: connections in use and idle (``TCPConnector._acquired``, ``_conns``).
* :func:`watched_connector` and :func:`response_started`: whether any byte of a response
  arrived before a request failed (a connection protocol that notes it, installed as the
  connector's ``_factory``), so that a POST the server has answered, however brokenly, is
  not sent again.
* :func:`request_sent_at`: when the current request was handed to its connection (the same
  protocol notes it), so that ``Timeout.read`` counts neither the wait for a pool slot nor the
  connection set-up.
* :func:`close_connections_now`: the synchronous part of ``BaseConnector.close()``
  (``_close``), for a finalizer that cannot await.
* The watched protocol also keeps ``Timeout.read`` for the whole wait for the final response
  head (``_reschedule_timeout``, ``_drop_timeout``, ``feed_data``: aiohttp puts its timer off
  at every packet and stops it at an interim ``1xx`` head), and passes a parse error after
  the head on to the body being read (``_payload``), which aiohttp left waiting.
* :func:`is_cut`: whether a body error means the connection was lost (retried) rather than
  that the bytes that arrived were broken (not retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError

__all__ = [
    "begin_request",
    "bound_reads",
    "close_connections_now",
    "is_cut",
    "pool_stats",
    "request_sent_at",
    "response_started",
    "set_read_timeout",
    "watched_connector",
]


class _WatchedHandler(ResponseHandler):
    """aiohttp's connection protocol, noting whether the current response has begun."""

    # True once a byte of the current response arrived (reset for each request).
    started = False
    # The loop's time when the current request was about to be sent.
    sent_at = 0.0

    # True from the sending of a request until its final (not 1xx) response head has arrived.
    # Meanwhile arriving bytes do not put off the socket-read timer: Timeout.read bounds the
    # head however slowly it trickles, and however many interim (1xx) responses come first.
    awaiting_head = False
    # True from the parsing of an interim (1xx) head until the timer is next dropped.
    _interim = False

    def set_response_params(self, **kwargs: Any) -> None:
        """Called by aiohttp once per request, before it is sent."""
        self.started = False
        self.awaiting_head = True
        self.sent_at = self._loop.time()
        _current.set(self)
        super().set_response_params(**kwargs)

    def data_received(self, data: bytes) -> None:
        """Bytes from the server: the response has begun.

        Bytes that do not parse after a response head (a broken chunked encoding) make
        aiohttp close the connection and fail the protocol, but the body being read was left
        waiting until a timeout: it gets the same error here.
        """
        self.started = True
        failed = self.exception()
        _data_received(self, data)
        error = self.exception()
        payload = self._payload
        if error is not None and error is not failed and payload and not payload.is_eof():
            payload.set_exception(error, error.__cause__ or error)

    def feed_data(self, data: Any, size: int = 0) -> None:
        """A response head (with its body's reader) was parsed."""
        code = getattr(data[0], "code", 0)
        interim = 100 <= code < 200 and code != 101
        self.awaiting_head = self._interim = interim
        super().feed_data(data, size)

    def _reschedule_timeout(self) -> None:
        # aiohttp calls it for every arriving packet; the head's clock is not reset by them.
        if not self.awaiting_head:
            super()._reschedule_timeout()

    def _drop_timeout(self) -> None:
        # aiohttp stops the timer once a response head arrived, an interim one included; after
        # an interim one the final head is still awaited, on the same clock.
        if self._interim:
            self._interim = False
            return
        super()._drop_timeout()

    def start_timeout(self) -> None:
        """Start the socket-read timer (the request was sent whole, or the body's bound was
        set anew)."""
        super()._reschedule_timeout()


_data_received = ResponseHandler.data_received

# The connection protocol of the request being sent by the current task.
_current: ContextVar[_WatchedHandler | None] = ContextVar("inference_protocol", default=None)


def watched_connector(limit: int, ssl_context: ssl.SSLContext | None) -> aiohttp.TCPConnector:
    """A connector of at most ``limit`` connections whose protocol notes response bytes."""
    connector = aiohttp.TCPConnector(
        limit=limit, ssl=ssl_context if ssl_context is not None else True
    )
    loop = asyncio.get_running_loop()
    connector._factory = functools.partial(_WatchedHandler, loop=loop)  # type: ignore[assignment]
    return connector


def begin_request() -> None:
    """Forget the previous request of this task (call before sending a new one)."""
    _current.set(None)


def request_sent_at() -> float | None:
    """The loop's time when the current request of this task was handed to its connection
    (None for a caller's own session, whose connections are not watched)."""
    protocol = _current.get()
    return None if protocol is None else protocol.sent_at


def response_started(exc: BaseException) -> bool:
    """Whether any byte of a response arrived before ``exc`` ended the current request.

    Exact for connections of :func:`watched_connector`; for a caller's own session, known
    from the error alone (a response head that could not be parsed).
    """
    protocol = _current.get()
    if protocol is not None and protocol.started:
        return True
    if isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        return True
    return isinstance(exc, aiohttp.ServerDisconnectedError) and not isinstance(
        exc.message, str | None
    )


def bound_reads(response: aiohttp.ClientResponse, size: int) -> None:
    """Make the connection of ``response`` read at most ``size`` bytes at a time (a no-op
    for transports without asyncio's ``max_size``, such as uvloop's).

    A small response may be complete on arrival, its connection already back in the pool
    (``response.connection`` is None then): the protocol still knows the transport. A TLS
    connection reads decrypted bytes through its SSL protocol, which has a ``max_size`` of
    its own: that one is bounded too.
    """
    transport = getattr(getattr(response, "_protocol", None), "transport", None)
    if transport is None:
        return
    for target in (transport, getattr(transport, "_ssl_protocol", None)):
        # A transport of another shape (a test double, say) is left as it is.
        with contextlib.suppress(AttributeError, TypeError):
            if getattr(target, "max_size", 0) > size:
                target.max_size = size  # type: ignore[union-attr]


def set_read_timeout(response: aiohttp.ClientResponse, seconds: float | None) -> None:
    """Bound each wait for more bytes of ``response`` by ``seconds`` (None: no bound), with
    aiohttp's socket-read timer (which every arriving packet resets)."""
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is not None:
        protocol.read_timeout = seconds
        protocol.start_timeout()  # re-arm the timer with the new bound


def pool_stats(session: aiohttp.ClientSession | None) -> tuple[int, int]:
    """``(in_use, idle)`` connection counts of the session's pool."""
    if session is None or session.closed:
        return (0, 0)
    connector: Any = session.connector
    in_use = len(getattr(connector, "_acquired", ()))
    idle = sum(len(v) for v in getattr(connector, "_conns", {}).values())
    return (in_use, idle)


def close_connections_now(connector: aiohttp.BaseConnector) -> None:
    """Close every connection of ``connector`` and mark it closed, without awaiting (on its
    loop's thread; on a closed loop it only marks it closed)."""
    connector._close()


# aiohttp's words for a body that ended early because the connection did (client_proto.py).
_NOT_COMPLETED = "Response payload is not completed"


def is_cut(exc: BaseException) -> bool:
    """Whether a body error means the connection was lost before the body's end (another
    attempt may succeed), rather than that bytes arrived broken (a bad chunk size, compressed
    data that does not decompress: the server's answer itself is broken)."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        if isinstance(exc.__cause__, ContentEncodingError):
            return False
        return str(exc).startswith(_NOT_COMPLETED) or not isinstance(
            exc.__cause__, HttpProcessingError
        )
    return not isinstance(exc, HttpProcessingError)
