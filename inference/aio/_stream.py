"""The async stream returned by ``await client.complete(..., stream=True)``.

A thin driver of :class:`inference._streamparser.StreamParser`, which decides everything about
the stream (its end, its errors, what counts as activity, the assembled answer): the stream
reads the body, feeds the bytes to the parser, hands out the updates it returns, keeps the
idle and total deadlines, and releases the connection (at ``[DONE]``, or by closing it on an
error, a break or :meth:`~AsyncChatCompletionsStream.aclose`). The sync API drives the same
object from its event loop (see :mod:`inference._sync`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from .._accumulate import text_delta
from .._parse import attach_parsed
from .._streamparser import Handoff, StreamParser, StreamState
from ..exceptions import (
    IdleTimeoutError,
    InferenceError,
    StreamError,
    TotalTimeoutError,
)
from ..models import ChatCompletions, StreamingChatCompletionsUpdate

if TYPE_CHECKING:
    from ._transport import Response

__all__ = ["AsyncChatCompletionsStream"]

_OPEN = StreamState.OPEN
_DONE = StreamState.DONE


class AsyncChatCompletionsStream:
    """An async iterator of :class:`~inference.models.StreamingChatCompletionsUpdate`.

    Use it as ``async with stream:`` (or call :meth:`aclose`) so the connection is released
    even when you stop early. The connection goes back to the pool as soon as
    ``data: [DONE]`` arrives; breaking out, an error, or :meth:`aclose` closes it.

    After the stream ended, :meth:`get_final_completion` returns the assembled
    :class:`~inference.models.ChatCompletions`; :meth:`text_deltas` iterates only the text.

    Errors while iterating: :class:`~inference.exceptions.StreamServiceError` (the service
    sent an error event), :class:`~inference.exceptions.StreamInterruptedError` (the body ended
    before ``[DONE]``), :class:`~inference.exceptions.IdleTimeoutError` (no event within
    ``Timeout.idle``), :class:`~inference.exceptions.ResponseTooLargeError` (the body grew
    past the client's ``max_stream_bytes``). Each carries ``partial``: what was received so
    far, assembled. The updates that arrived before an error are yielded first; the error is
    raised after them.
    """

    # The class given as response_format: the final completion's message.parsed is one.
    _output_type: Any = None

    def __init__(
        self,
        response: Response,
        *,
        idle_timeout: float | None,
        deadline: float | None,
        total: float | None = None,
        max_event_size: int | None = None,
        request_id: str | None = None,
        redact: Callable[[str], str] | None = None,
        max_stream_bytes: int | None = None,
        server: str = "the server",
    ) -> None:
        self._response = response
        # Events are parsed when the caller asks for them, one at a time, so only one update
        # is alive at a time however much one read delivered (flat memory, no GC work).
        self._parser = StreamParser(
            max_event_size=max_event_size,
            request_id=request_id,
            redact=redact,
            max_stream_bytes=max_stream_bytes,
            server=server,
        )
        self._next = self._parser.next_update
        self._idle = idle_timeout
        self._deadline = deadline
        self._total = total  # Timeout.total, seconds (for the error's text)
        self._last_event = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._reading = False
        self._expired: str | None = None
        self.request_id = request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = response.headers
        """The response headers (case-insensitive mapping)."""

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncChatCompletionsStream:
        return self

    async def __anext__(self) -> StreamingChatCompletionsUpdate:
        parser = self._parser
        try:
            events = parser._events
            if events:
                # What StreamParser.next_update does with its first queued event, written
                # out: one call less per chunk on the hot path (the parser still decides).
                item = events.popleft()
                update = parser._chunk(item) if type(item) is bytes else None
                if update is None:
                    update = parser._slow(item)
                if update is not None:
                    return update
            update = self._next()
            while update is None:
                if self._parser.state is not _OPEN:
                    raise StopAsyncIteration
                await self._read()
                update = self._next()
        except InferenceError:
            self._close()  # the parser raised what ended the stream
            raise
        return update

    async def _prime(self) -> None:
        """Read and parse the first update (or reach the end): errors before any event reached
        the caller surface from ``complete()``, where they can still be retried."""
        parser = self._parser
        try:
            while not parser.prime() and parser.state is _OPEN:
                await self._read()
        except InferenceError:
            self._close()
            raise

    async def _next_events(self, limit: int = 4096) -> Handoff:
        """For the sync API's pump: read until events are queued or the stream ends, and take
        them (at most ``limit``; the last batch carries the end, see
        :meth:`StreamParser.take_events`). Errors are in the batch, not raised."""
        parser = self._parser
        while not parser.pending and parser.state is _OPEN:
            await self._read()
        return parser.take_events(limit)

    async def _read(self) -> None:
        """One read from the network, fed to the parser (an error of the read too); the
        connection is released at ``[DONE]`` and closed when the stream ends otherwise."""
        parser = self._parser
        if self._watchdog is None:
            self._arm_watchdog()
        deadline = self._deadline
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            # A fast stream's reads return without waiting, so the watchdog (which only acts
            # on a read that waits) may not get its turn: the total deadline is checked here.
            self._expired = "total"
            parser.fail(_total_error(self._total))
            self._close()
            return
        self._reading = True
        try:
            chunk = await self._response.read_chunk()
            if self._expired is not None:  # the watchdog closed the response
                self._raise_if_expired()
        except InferenceError as exc:
            self._reading = False
            parser.fail(self._expired_error() or exc)
            self._close()
            return
        except BaseException:
            self._reading = False
            parser.close()
            self._close()
            raise
        self._reading = False
        if chunk:
            if parser.feed(chunk):
                self._last_event = asyncio.get_running_loop().time()
        else:
            parser.feed_eof()
        state = parser.state
        if state is _DONE:
            self._disarm_watchdog()
            await self._finish()
        elif state is not _OPEN:
            self._close()

    # The idle and total deadlines are kept by one timer per stream, armed while a read waits
    # and re-armed only when it fires early (a deadline that moved on), instead of a timeout
    # scope around every network read: the per-read cost is one clock read (two with
    # Timeout.total, checked before each read). The timer runs on the loop's clock.

    def _due(self) -> tuple[float | None, bool]:
        idle = None if self._idle is None else self._last_event + self._idle
        deadline = self._deadline
        if deadline is not None and (idle is None or deadline <= idle):
            return deadline, True
        return idle, False

    def _arm_watchdog(self) -> None:
        if not self._last_event:  # the first read: the idle clock starts
            self._last_event = asyncio.get_running_loop().time()
        due, _ = self._due()
        if due is not None:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_at(due, _watchdog_fired, weakref.ref(self), loop)

    def _on_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        if not self._reading or self._parser.state is not _OPEN:
            return  # not waiting for the network now: the next read re-arms it
        due, total = self._due()
        if due is None:
            return
        if loop.time() < due:
            self._watchdog = loop.call_at(due, _watchdog_fired, weakref.ref(self), loop)
            return
        self._expired = "total" if total else "idle"
        self._response.close()  # wakes the waiting read

    def _disarm_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()

    def _raise_if_expired(self) -> None:
        error = self._expired_error()
        if error is not None:
            raise error

    def _expired_error(self) -> InferenceError | None:
        expired = self._expired
        if expired is None:
            return None
        if expired == "total":
            return _total_error(self._total)
        return IdleTimeoutError(
            f"the stream sent no event for {self._idle} s (Timeout.idle); the connection was closed"
        )

    def _close(self) -> None:
        self._disarm_watchdog()
        self._response.close()

    async def _finish(self) -> None:
        # Read the few bytes that end the body so the keep-alive connection is reused.
        response = self._response
        if response.closed:
            return
        if response.at_eof:  # the usual case: the body's end came with [DONE]
            response.release()
            return
        try:
            with anyio.move_on_after(1.0):
                await response.drain()
        finally:
            response.close()  # no-op when drain released it

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        self._parser.close()
        self._close()

    # ``await stream.close()`` works too, as the async client's ``close()`` is spelt.
    async def close(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        await self.aclose()

    async def __aenter__(self) -> AsyncChatCompletionsStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Safety net: a stream dropped without aclose() (a bare ``break``) frees its connection.
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None:
            watchdog.cancel()
        response = getattr(self, "_response", None)
        if response is not None and not response.closed:
            response.close()

    # -- results ---------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self._parser.state is _DONE

    def get_final_completion(self) -> ChatCompletions:
        """The whole answer assembled from the updates, as a non-streamed call returns it.

        Raises :class:`~inference.exceptions.StreamError` if the stream has not finished:
        iterate it to the end first, or use ``await stream.until_done()``.
        """
        if not self._parser.complete:
            raise StreamError(
                "the stream has not finished: iterate it to the end first, or call "
                "'await stream.until_done()'; partial_completion() gives what arrived so far"
            )
        return self._final(self._parser)

    def _final(self, parser: StreamParser) -> ChatCompletions:
        """The final completion assembled by ``parser`` (this stream's, or the output side the
        sync API split off), with the parsed output when a class was asked for."""
        completion = parser.partial()
        if self._output_type is not None:
            attach_parsed(completion, self._output_type)
        return completion

    def partial_completion(self) -> ChatCompletions:
        """What has arrived so far, assembled (also works after an error or an early stop)."""
        return self._parser.partial()

    async def until_done(self) -> ChatCompletions:
        """Read the rest of the stream and return the assembled completion."""
        async for _ in self:
            pass
        return self.get_final_completion()

    def text_deltas(self) -> AsyncIterator[str]:
        """Iterate only the non-empty text deltas of the first choice (for UI code)."""
        return _TextDeltas(self)


def _total_error(total: float | None) -> TotalTimeoutError:
    limit = f" ({total:g} s)" if total is not None else ""
    return TotalTimeoutError(
        f"the call took longer than Timeout.total{limit}: the stream was closed before its "
        "end; raise Timeout.total (or set it to None) for longer answers",
        attempts=1,
    )


def _watchdog_fired(
    ref: weakref.ReferenceType[AsyncChatCompletionsStream], loop: asyncio.AbstractEventLoop
) -> None:
    # The timer holds the stream weakly: a stream dropped mid-way is still collected at once.
    stream = ref()
    if stream is not None:
        stream._on_watchdog(loop)


class _TextDeltas:
    __slots__ = ("_stream",)

    def __init__(self, stream: AsyncChatCompletionsStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _TextDeltas:
        return self

    async def __anext__(self) -> str:
        stream = self._stream
        while True:
            text = text_delta(await stream.__anext__())
            if text:
                return text
