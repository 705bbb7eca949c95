"""The async stream returned by ``await client.complete(..., stream=True)``."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import anyio

from .._accumulate import ChatCompletionsAccumulator, text_delta
from .._chunks import ChunkParser
from .._errors import error_from_event
from .._parse import attach_parsed
from .._serialization import DecodeFailure, parse_event, update_from_owned_dict
from ..exceptions import (
    IdleTimeoutError,
    InferenceError,
    ResponseDecodeError,
    StreamInterruptedError,
    StreamServiceError,
    TotalTimeoutError,
)
from ..models import ChatCompletions, StreamingChatCompletionsUpdate
from ..sse import ServerSentEvent, SSEDecoder
from ._transport import Response

__all__ = ["AsyncChatCompletionsStream"]

_log = logging.getLogger("inference")

_OPEN, _DONE, _CLOSED = 0, 1, 2

# Returned by ``_parse`` for an event that carries no update (a named event such as "ping").
_SKIP = StreamingChatCompletionsUpdate(id="<not an update>")


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
    ``Timeout.idle``). Each carries ``partial``: what was received so far, assembled. The
    updates that arrived before an error are yielded first; the error is raised after them.
    """

    # The class given as response_format: the final completion's message.parsed is one.
    _output_type: Any = None

    def __init__(
        self,
        response: Response,
        *,
        idle_timeout: float | None,
        deadline: float | None,
        max_event_size: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self._response = response
        self._decoder = SSEDecoder(max_event_size) if max_event_size else SSEDecoder()
        # Events read from the network but not yet parsed: each is parsed when the caller asks
        # for it, so only one update is alive at a time however much one read delivered
        # (updates die young: no garbage-collector work, flat memory).
        # Message events are kept as their data bytes (``SSEDecoder.feed_data``): orjson
        # parses bytes as fast as text, so the text is never decoded on its own.
        self._events: deque[bytes | ServerSentEvent] = deque()
        # Updates parsed ahead of the caller (the first one, by ``_prime``).
        self._ready: deque[StreamingChatCompletionsUpdate] = deque()
        self._accumulator = ChatCompletionsAccumulator()
        self._chunks = ChunkParser(self._accumulator)
        self._idle = idle_timeout
        self._deadline = deadline
        self._state = _OPEN
        self._last_event = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._reading = False
        self._expired: str | None = None
        # An error met after events that are still queued: raised once they are taken.
        self._error: InferenceError | None = None
        # False when another thread parses the events (the sync API): that thread, not the
        # reading side, assembles what an error carries as ``partial``.
        self._partial_on_fail = True
        self.request_id = request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = response.headers
        """The response headers (case-insensitive mapping)."""

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncChatCompletionsStream:
        return self

    async def __anext__(self) -> StreamingChatCompletionsUpdate:
        if self._ready:
            return self._ready.popleft()
        events = self._events
        while True:
            if events:
                item = events.popleft()
                try:
                    # What _parse does, written out: one call less per chunk.
                    update = self._chunks.parse(item) if type(item) is bytes else None
                    if update is None:
                        update = self._parse_slowly(item)
                except InferenceError as exc:
                    self._parse_failed(exc)
                    raise
                if update is None:
                    await self._done_early()  # a [DONE] inside a batch
                elif update is not _SKIP:
                    return update
            else:
                self._raise_deferred()
                if self._state != _OPEN:
                    raise StopAsyncIteration
                await self._fill()

    def _raise_deferred(self) -> None:
        error = self._error
        if error is not None:
            self._error = None
            raise error

    async def _next_events(self, limit: int = 4096) -> list[bytes | ServerSentEvent]:
        """The events read and not parsed yet (at least one, at most ``limit``), or ``[]`` at
        the end. An error met while reading is raised after the events that came before it.

        Used by the sync API's pump task: the events go to the thread that consumes the
        updates, which parses them with :meth:`_parse` (touching only the accumulator, which
        nothing else touches then) and has the loop end the stream with :meth:`_done_early`
        or :meth:`_parse_failed` once the pump has stopped.
        """
        events = self._events
        if not events:
            self._raise_deferred()
            if self._state != _OPEN:
                return []
            await self._fill()
        if len(events) <= limit:
            batch = list(events)
            events.clear()
            return batch
        return [events.popleft() for _ in range(limit)]

    async def _prime(self) -> None:
        """Read and parse the first update (or reach the end): errors before any event reached
        the caller surface from ``complete()``, where they can still be retried."""
        events = self._events
        while not self._ready and (events or self._state == _OPEN):
            if not events:
                await self._fill()
                continue
            try:
                update = self._parse(events.popleft())
            except InferenceError as exc:
                self._parse_failed(exc)
                raise
            if update is None:
                await self._done_early()  # a [DONE] inside a batch
            elif update is not _SKIP:
                self._ready.append(update)
        if not self._ready and not events:
            self._raise_deferred()

    async def _fill(self) -> None:
        """Read from the network until at least one event is queued, or the body ends."""
        events = self._events
        response = self._response
        decoder = self._decoder
        clock = asyncio.get_running_loop().time  # the clock the watchdog's timer runs on
        try:
            if not self._last_event:
                self._last_event = clock()
            while not events and self._state == _OPEN:
                self._reading = True
                if self._watchdog is None:
                    self._arm_watchdog()
                try:
                    chunk = await response.read_chunk()
                except StreamInterruptedError:
                    self._raise_if_expired()
                    raise
                finally:
                    self._reading = False
                self._raise_if_expired()
                if chunk:
                    batch = decoder.feed_data(chunk)
                    if batch:
                        self._last_event = clock()
                        self._queue(batch)
                else:
                    self._queue([*decoder.close()])
                    if self._state == _OPEN:
                        self._end_without_done()
            if self._state == _DONE:
                self._disarm_watchdog()
                await self._finish()
        except InferenceError as exc:
            self._fail(exc)
            if events:  # deliver the events that arrived before the error first
                self._error = exc
                return
            raise
        except BaseException:
            self._state = _CLOSED
            self._disarm_watchdog()
            response.close()
            raise

    # The idle and total deadlines are kept by one timer per stream, armed while a read waits
    # and re-armed only when it fires early (a deadline that moved on), instead of a timeout
    # scope around every network read: the per-read cost is one clock read.

    def _due(self) -> tuple[float | None, bool]:
        idle = None if self._idle is None else self._last_event + self._idle
        deadline = self._deadline
        if deadline is not None and (idle is None or deadline <= idle):
            return deadline, True
        return idle, False

    def _arm_watchdog(self) -> None:
        due, _ = self._due()
        if due is not None:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_at(due, _watchdog_fired, weakref.ref(self), loop)

    def _on_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        if not self._reading or self._state != _OPEN:
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
        expired = self._expired
        if expired is None:
            return
        if expired == "total":
            raise TotalTimeoutError("the call took longer than Timeout.total", attempts=1)
        raise IdleTimeoutError(
            f"the stream sent no event for {self._idle} s (Timeout.idle); the connection was closed"
        )

    def _queue(self, batch: list[bytes | ServerSentEvent]) -> None:
        if not batch:
            return
        if batch[-1] == b"[DONE]":
            self._state = _DONE
            del batch[-1]
        elif b"[DONE]" in batch:
            # Events after a [DONE] that came in the same read: the stream ends at [DONE].
            del batch[batch.index(b"[DONE]") :]
            self._state = _DONE
        self._events.extend(batch)

    def _end_without_done(self) -> None:
        if self._events:
            # Parse what arrived first; the cut is reported after it.
            self._error = self._interrupted()
            self._state = _CLOSED
            self._response.close()
            return
        raise self._interrupted()

    def _interrupted(self) -> StreamInterruptedError:
        return StreamInterruptedError(
            "the stream ended before 'data: [DONE]': the connection was closed early "
            f"({self._accumulator.count} updates received; see .partial)"
        )

    def _fail(self, exc: InferenceError) -> None:
        self._state = _CLOSED
        self._disarm_watchdog()
        self._response.close()
        if exc.partial is None and self._partial_on_fail:
            exc.partial = self._accumulator.result()

    def _parse_failed(self, exc: InferenceError) -> None:
        """An event could not be parsed (``exc``, raised by :meth:`_parse`): the stream ends."""
        self._events.clear()
        self._fail(exc)

    async def _done_early(self) -> None:
        """:meth:`_parse` met a ``[DONE]`` inside a batch: the stream ends there."""
        self._state = _DONE
        self._events.clear()
        await self._finish()

    def _parse(self, item: bytes | ServerSentEvent) -> StreamingChatCompletionsUpdate | None:
        """The update of one event (``_SKIP`` for an event that carries none, None for a
        ``[DONE]`` inside a batch, which ends the stream). It changes nothing but the
        accumulator: the caller ends the stream on None (:meth:`_done_early`) or on an
        :class:`InferenceError` (:meth:`_parse_failed`)."""
        # Fast path, once per chunk: a message event holding a chunk object.
        if type(item) is bytes:
            update = self._chunks.parse(item)
            if update is not None:
                return update
        return self._parse_slowly(item)

    def _parse_slowly(self, item: bytes | ServerSentEvent) -> StreamingChatCompletionsUpdate | None:
        self._chunks.forget()  # the accumulator may get an update the chunk parser did not see
        if isinstance(item, bytes):
            # Decoded here, as ``SSEDecoder.feed`` would have: invalid UTF-8 becomes U+FFFD.
            event = ServerSentEvent("message", item.decode("utf-8", "replace"))
        else:
            event = item
        data = event.data
        if event.event == "error":
            self._raise_service_error(data)
        if event.event != "message":
            _log.debug("skipped a %r event of the stream", event.event)
            return _SKIP  # a named event of another kind: not a chunk
        if data == "[DONE]":
            return None
        try:
            obj = parse_event(data)
            if "error" in obj and not obj.get("choices"):
                self._raise_service_error(obj)
            update = update_from_owned_dict(obj)
        except DecodeFailure as exc:
            raise ResponseDecodeError(
                f"the stream sent an event that is not a chat-completions chunk: {exc}"
            ) from exc
        self._accumulator.add(update)
        return update

    def _raise_service_error(self, data: Any) -> None:
        if isinstance(data, str):
            try:
                data = parse_event(data)
            except DecodeFailure:
                data = {"error": {"message": data}}
        code, message = error_from_event(data)
        raise StreamServiceError(
            f"the service reported an error in the stream: ({code}) {message}"
            if code
            else f"the service reported an error in the stream: {message}",
            None,
            code=code,
            service_message=message,
            request_id=self.request_id,
        )

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
        self._disarm_watchdog()
        if self._state == _OPEN:
            self._state = _CLOSED
        self._response.close()

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
        return self._state == _DONE

    def get_final_completion(self) -> ChatCompletions:
        """The whole answer assembled from the updates, as a non-streamed call returns it.

        Raises :class:`~inference.exceptions.StreamError` if the stream has not finished:
        iterate it to the end first, or use ``await stream.until_done()``.
        """
        if self._state != _DONE or self._events or self._ready:
            from ..exceptions import StreamError

            raise StreamError(
                "the stream has not finished: iterate it to the end first, or call "
                "'await stream.until_done()'; partial_completion() gives what arrived so far"
            )
        completion = self._accumulator.result()
        if self._output_type is not None:
            attach_parsed(completion, self._output_type)
        return completion

    def partial_completion(self) -> ChatCompletions:
        """What has arrived so far, assembled (also works after an error or an early stop)."""
        return self._accumulator.result()

    async def until_done(self) -> ChatCompletions:
        """Read the rest of the stream and return the assembled completion."""
        async for _ in self:
            pass
        return self.get_final_completion()

    def text_deltas(self) -> AsyncIterator[str]:
        """Iterate only the non-empty text deltas of the first choice (for UI code)."""
        return _TextDeltas(self)


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
