"""The async stream returned by ``await client.complete(..., stream=True)``."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import anyio

from .._accumulate import ChatCompletionsAccumulator
from .._errors import error_from_event
from .._serialization import DecodeFailure, parse_event, update_from_dict
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
        self._pending: deque[StreamingChatCompletionsUpdate] = deque()
        self._accumulator = ChatCompletionsAccumulator()
        self._idle = idle_timeout
        self._deadline = deadline
        self._state = _OPEN
        self._last_event = 0.0
        # An error read together with earlier updates: raised once those are delivered.
        self._error: InferenceError | None = None
        self.request_id = request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = response.headers
        """The response headers (case-insensitive mapping)."""

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncChatCompletionsStream:
        return self

    async def __anext__(self) -> StreamingChatCompletionsUpdate:
        pending = self._pending
        if pending:
            return pending.popleft()
        self._raise_deferred()
        if self._state == _OPEN:
            await self._fill()
            if pending:
                return pending.popleft()
        raise StopAsyncIteration

    def _raise_deferred(self) -> None:
        error = self._error
        if error is not None:
            self._error = None
            raise error

    async def _next_batch(self) -> list[StreamingChatCompletionsUpdate]:
        """Every update that is ready now (at least one), or ``[]`` at the end.

        Used by the sync API to move updates across threads in batches.
        """
        pending = self._pending
        if not pending:
            self._raise_deferred()
            if self._state == _OPEN:
                await self._fill()
        batch = list(pending)
        pending.clear()
        return batch

    async def _prime(self) -> None:
        """Read until the first update (or the end): errors before any event reached the
        caller surface from ``complete()``, where they can still be retried."""
        if not self._pending and self._state == _OPEN:
            await self._fill()

    async def _fill(self) -> None:
        pending = self._pending
        response = self._response
        decoder = self._decoder
        try:
            if not self._last_event:
                self._last_event = anyio.current_time()
            while not pending and self._state == _OPEN:
                limit, total_bound = self._wait_limit()
                try:
                    with anyio.fail_after(limit):
                        chunk = await response.read_chunk()
                except TimeoutError:
                    if total_bound:
                        raise TotalTimeoutError(
                            "the call took longer than Timeout.total", attempts=1
                        ) from None
                    raise IdleTimeoutError(
                        f"the stream sent no event for {self._idle} s (Timeout.idle); "
                        "the connection was closed"
                    ) from None
                if chunk:
                    events = decoder.feed(chunk)
                else:
                    events = decoder.close()
                    if events:
                        self._handle(events)
                    if self._state == _OPEN:
                        raise StreamInterruptedError(
                            "the stream ended before 'data: [DONE]': the connection was closed "
                            f"early ({self._accumulator.count} updates received; see .partial)"
                        )
                    break
                if events:
                    self._last_event = anyio.current_time()
                    self._handle(events)
        except InferenceError as exc:
            self._state = _CLOSED
            response.close()
            if getattr(exc, "partial", None) is None:
                exc.partial = self._accumulator.result()
            if pending:  # deliver the updates that arrived before the error first
                self._error = exc
                return
            raise
        except BaseException:
            self._state = _CLOSED
            response.close()
            raise
        if self._state == _DONE:
            await self._finish()

    def _wait_limit(self) -> tuple[float | None, bool]:
        idle = None if self._idle is None else self._last_event + self._idle
        deadline = self._deadline
        if deadline is not None and (idle is None or deadline < idle):
            return max(deadline - anyio.current_time(), 0.0), True
        if idle is None:
            return None, False
        return max(idle - anyio.current_time(), 0.0), False

    def _handle(self, events: list[ServerSentEvent]) -> None:
        pending = self._pending
        add = self._accumulator.add
        for event in events:
            data = event.data
            if data == "[DONE]":
                self._state = _DONE
                return
            if event.event == "error":
                self._raise_service_error(data)
            try:
                obj = parse_event(data)
                if "error" in obj and not obj.get("choices"):
                    self._raise_service_error(obj)
                update = update_from_dict(obj)
            except DecodeFailure as exc:
                raise ResponseDecodeError(
                    f"the stream sent an event that is not a chat-completions chunk: {exc}"
                ) from exc
            add(update)
            pending.append(update)

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
        try:
            with anyio.move_on_after(1.0):
                await self._response.drain()
        finally:
            self._response.close()  # no-op when drain released it

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop reading and release the connection. Idempotent."""
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
        if self._state != _DONE:
            from ..exceptions import StreamError

            raise StreamError(
                "the stream has not finished: iterate it to the end first, or call "
                "'await stream.until_done()'; partial_completion() gives what arrived so far"
            )
        return self._accumulator.result()

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


class _TextDeltas:
    __slots__ = ("_stream",)

    def __init__(self, stream: AsyncChatCompletionsStream) -> None:
        self._stream = stream

    def __aiter__(self) -> _TextDeltas:
        return self

    async def __anext__(self) -> str:
        stream = self._stream
        while True:
            update = await stream.__anext__()
            for choice in update.choices:
                if choice.index == 0:
                    text = choice.delta.content
                    if text:
                        return text
