"""The one parser of a streamed chat completion: body bytes in, updates out. No I/O.

:class:`StreamParser` is a protocol object in the style of h11: it never reads a socket,
never awaits and never reads a clock. Its driver (:class:`inference.aio.AsyncChatCompletionsStream`,
and through it the sync :class:`inference.ChatCompletionsStream`) reads bytes, feeds them
here, takes the updates out and keeps the time. Everything a stream *decides* is decided here,
once:

* **End of stream.** ``data: [DONE]`` ends it (:attr:`StreamState.DONE`); events after a
  ``[DONE]`` in the same read are dropped. A body that ends before it is cut
  (:attr:`StreamState.CUT`): :class:`~inference.exceptions.StreamInterruptedError`.
* **Errors.** An ``event: error`` event, or a message event holding ``{"error": ...}`` and no
  choices, raises :class:`~inference.exceptions.StreamServiceError` (keys and tokens
  scrubbed with the ``redact`` function given); an event that is not a chat-completions chunk
  raises :class:`~inference.exceptions.ResponseDecodeError`. An error of the reading side (a
  timeout, a broken connection) is handed in with :meth:`StreamParser.fail`. Every error is
  raised once, by :meth:`~StreamParser.next_update`, after the updates that arrived before
  it, and carries ``partial``: those updates, assembled.
* **Size.** The bytes of the body are counted as they are fed: past ``max_stream_bytes``
  the stream ends with :class:`~inference.exceptions.ResponseTooLargeError` (the read that
  crossed the limit is not decoded), so a server that never stops cannot grow the client
  without bound.
* **Activity.** :meth:`~StreamParser.feed` says whether the bytes completed an event that
  counts for the idle timer: a chunk, an error event or ``[DONE]``. Comments (keep-alives)
  and named events of other kinds (``event: ping``) do not count: a server that sends only
  those is stalled.
* **Accumulation.** Each update is merged into a
  :class:`~inference._accumulate.ChatCompletionsAccumulator` as it is parsed:
  :meth:`~StreamParser.partial` assembles the answer, and :attr:`~StreamParser.complete` says
  whether it is the final one.

Structure. The parser has an input side and an output side, joined by a queue of events that
are decoded but not parsed yet. The input side (:meth:`~StreamParser.feed`,
:meth:`~StreamParser.feed_eof`, :meth:`~StreamParser.fail`) runs the SSE decoder
(:class:`inference.sse.SSEDecoder`; a message event comes out as its data bytes, never decoded
to text) and recognises the end. The output side (:meth:`~StreamParser.next_update`) parses
one event each time it is asked, so only one update is alive at a time however much one read
delivered. It hands each message event to :class:`inference._chunks.ChunkParser` (which
recognises a chunk that repeats the previous one but for its text, and parses the rest in
full); what that declines (named events, ``{"error": ...}``, broken events) takes the slow
path here, which names the problem.

The sync API reads on its event loop's thread and parses in the caller's thread. There the
stream's parser is split in two with :meth:`~StreamParser.hand_over`: the new parser takes the
output side (the queue, the accumulator, the end), the old one keeps decoding, and batches of
events cross from :meth:`~StreamParser.take_events` to :meth:`~StreamParser.put_events`, the
end of the stream (a :class:`StreamState` or an error) riding as the last item of the last
batch. Each half is touched by one thread only.

:class:`StreamState` replaces the flags and sentinels a stream would otherwise keep.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

from ._accumulate import ChatCompletionsAccumulator
from ._chunks import ChunkParser
from ._errors import error_from_event
from ._serialization import DecodeFailure, parse_event, update_from_owned_dict
from .exceptions import (
    InferenceError,
    ResponseDecodeError,
    ResponseTooLargeError,
    SSEError,
    StreamInterruptedError,
    StreamServiceError,
)
from .models import ChatCompletions, StreamingChatCompletionsUpdate
from .sse import ServerSentEvent, SSEDecoder

__all__ = ["StreamParser", "StreamState", "is_event_stream"]

_log = logging.getLogger("inference")

_DONE_EVENT = b"[DONE]"
_UNLIMITED = 2**63  # max_stream_bytes=None: more than any stream brings
_Update = StreamingChatCompletionsUpdate

# What waits in the queue: a message event's data (bytes), a named event, or an update parsed
# ahead by ``prime`` (returned first).
_Queued = bytes | ServerSentEvent | StreamingChatCompletionsUpdate
# What crosses between the halves of a split parser: events, and the end as the last item.
Handoff = list[Any]


class StreamState(enum.Enum):
    """Where a stream is, as far as its bytes go."""

    OPEN = "open"
    """More events may come: feed more bytes."""
    DONE = "done"
    """``data: [DONE]`` arrived: the body is complete (events before it may still be queued)."""
    CUT = "cut"
    """The body ended before ``[DONE]``: :class:`StreamInterruptedError` after the events."""
    FAILED = "failed"
    """An error ended the stream (raised after the events queued before it)."""
    CLOSED = "closed"
    """The consumer stopped the stream before its end."""


# The members as module constants: a global lookup is much cheaper than an enum attribute.
_OPEN = StreamState.OPEN
_DONE = StreamState.DONE
_CUT = StreamState.CUT
_FAILED = StreamState.FAILED
_CLOSED = StreamState.CLOSED


def is_event_stream(content_type: str | None) -> bool:
    """True if a ``Content-Type`` value is ``text/event-stream`` (media types are matched
    without regard to case, parameters such as ``charset`` ignored)."""
    if not content_type:
        return False
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def _counts_as_activity(batch: list[Any]) -> bool:
    """True if a batch of events holds a chunk (message data) or an error event."""
    return any(type(e) is bytes or e.event == "error" for e in batch)


class StreamParser:
    """Bytes of a ``text/event-stream`` chat-completions body in; updates out.

    ``max_event_size`` bounds one line and one event's data (bytes; the decoder's default
    when None). ``max_stream_bytes`` bounds the whole body (None: no limit); ``server`` names
    where it comes from in the error. ``request_id`` goes on :class:`StreamServiceError`.
    ``redact`` takes the keys and tokens out of text the service sent back before it goes into
    an error message.
    """

    __slots__ = (
        "_chunk",
        "_chunks",
        "_decoder",
        "_error",
        "_events",
        "_handed_end",
        "_left",
        "_limit",
        "_redact",
        "_server",
        "accumulator",
        "request_id",
        "state",
    )

    def __init__(
        self,
        *,
        max_event_size: int | None = None,
        request_id: str | None = None,
        redact: Callable[[str], str] | None = None,
        max_stream_bytes: int | None = None,
        server: str = "the server",
    ) -> None:
        self._decoder = SSEDecoder(max_event_size) if max_event_size else SSEDecoder()
        self._limit = max_stream_bytes
        # The bytes the body may still bring (one subtraction per read on the hot path).
        self._left = _UNLIMITED if max_stream_bytes is None else max_stream_bytes
        self._server = server
        self._events: deque[_Queued] = deque()
        self.accumulator = ChatCompletionsAccumulator()
        """Every update parsed so far, merged."""
        self._chunks = ChunkParser(self.accumulator)
        self._chunk = self._chunks.parse
        self.state = _OPEN
        """The stream's :class:`StreamState` (set by the input side; ``CLOSED`` by close())."""
        self._error: BaseException | None = None  # the error to raise after the queued events
        self._handed_end = False  # take_events() has passed the end on
        self.request_id = request_id
        self._redact = redact

    # -- input side ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Decode the next bytes of the body and queue the events they complete.

        Returns True if they completed an event that counts as activity for the idle timer (a
        chunk, an error event or ``[DONE]``). Bytes fed after the end are ignored. A line or
        event over ``max_event_size`` ends the stream with an
        :class:`~inference.exceptions.SSEError`, a body over ``max_stream_bytes`` with a
        :class:`~inference.exceptions.ResponseTooLargeError` (raised by :meth:`next_update`).
        """
        if self.state is not _OPEN:
            return False
        self._left -= len(data)
        if self._left < 0:
            self.fail(self._too_long())
            return False
        try:
            batch = self._decoder.feed_data(data)
        except SSEError as exc:
            self.fail(self._oversized(exc))
            return False
        if not batch:
            return False
        if batch[-1] == _DONE_EVENT:
            self.state = _DONE
            del batch[-1]
        elif _DONE_EVENT in batch:
            # Events after a [DONE] that came in the same read: the stream ends at [DONE].
            del batch[batch.index(_DONE_EVENT) :]
            self.state = _DONE
        if not batch:
            return True  # [DONE] alone
        self._events.extend(batch)
        return type(batch[0]) is bytes or _counts_as_activity(batch)

    def _oversized(self, exc: SSEError) -> SSEError:
        """The decoder's limit error, worded for a client user (who never made the decoder)."""
        limit = self._decoder.max_buffer_size
        error = SSEError(
            f"the service sent a stream event larger than the client's limit of {limit} bytes "
            f"({limit / (1024 * 1024):g} MiB), so the stream cannot be read; the server sent an "
            "oversized event, which no client setting accepts: report it to the service's "
            "operator, or send the request with stream=False"
        )
        error.__cause__ = exc
        return error

    def _too_long(self) -> ResponseTooLargeError:
        limit = self._limit
        size = f"{limit} bytes"
        if limit is not None and limit >= 1024 * 1024:
            size += f", {limit / (1024 * 1024):g} MiB"
        error = ResponseTooLargeError(
            f"the stream from {self._server} brought more than max_stream_bytes ({size}) and "
            "was closed; what arrived before is on "
            "the error's .partial. If answers this long are expected, raise the limit with "
            "ChatCompletionsClient(..., max_stream_bytes=...) (None: no limit)"
        )
        error.limit, error.option = limit, "max_stream_bytes"
        return error

    def feed_eof(self) -> None:
        """The body ended. Before ``[DONE]``, that is a cut (:attr:`_CUT`)."""
        self._decoder.close()
        if self.state is _OPEN:
            self.state = _CUT

    def fail(self, error: BaseException) -> None:
        """End an open stream with ``error`` (a timeout, a broken connection): it is raised by
        :meth:`next_update` after the events queued before it. Ignored once the stream ended."""
        if self.state is _OPEN:
            self.state = _FAILED
            self._error = error

    # -- output side --------------------------------------------------------------------------

    def next_update(self) -> StreamingChatCompletionsUpdate | None:
        """The next update, or None when none is ready: while :attr:`state` is ``OPEN``, feed
        more bytes; otherwise the stream has ended.

        Raises what ended the stream, once, after the updates before it (see the module's
        docstring), with ``partial`` set. The stream is over then (:attr:`state` is not
        ``OPEN``).
        """
        events = self._events
        while events:
            item = events.popleft()
            if type(item) is bytes:
                update = self._chunk(item)  # the fast path: a chunk, parsed and merged
                if update is not None:
                    return update
            update = self._slow(item)
            if update is not None:
                return update
        if self.state is not _OPEN:
            self._end()
        return None

    def prime(self) -> bool:
        """Parse the next queued event now, so that an error in it is raised here, and keep
        its update to be returned first by :meth:`next_update`. False if no update was queued.
        """
        update = self.next_update()
        if update is None:
            return False
        self._events.appendleft(update)
        return True

    @property
    def pending(self) -> int:
        """How many events are queued (decoded, not yet parsed and returned)."""
        return len(self._events)

    @property
    def complete(self) -> bool:
        """True once ``[DONE]`` arrived and every update before it was returned."""
        return self.state is _DONE and not self._events

    @property
    def count(self) -> int:
        """How many updates were parsed."""
        return self.accumulator.count + self._chunks.repeats

    def partial(self) -> ChatCompletions:
        """Everything parsed so far, assembled."""
        return self.accumulator.result()

    def close(self) -> None:
        """The consumer stops early: drop what is queued; :meth:`next_update` returns None.
        A stream whose ``[DONE]`` arrived and was taken whole stays ``DONE``."""
        if self.state is _OPEN or self._events:
            self.state = _CLOSED
        self._events.clear()
        self._error = None

    def _slow(self, item: _Queued) -> StreamingChatCompletionsUpdate | None:
        """The update of an event the chunk parser declined (None: it carries none)."""
        if type(item) is _Update:
            return item  # parsed ahead by prime()
        self._chunks.forget()  # the accumulator may get an update the chunk parser did not see
        try:
            return self._parse_event(item)
        except InferenceError as exc:
            self._raise(exc)

    def _parse_event(self, item: _Queued) -> StreamingChatCompletionsUpdate | None:
        if isinstance(item, bytes):
            # Decoded here, as ``SSEDecoder.feed`` would have: invalid UTF-8 becomes U+FFFD.
            event = ServerSentEvent("message", item.decode("utf-8", "replace"))
        else:
            assert isinstance(item, ServerSentEvent)
            event = item
        if event.event == "error":
            raise self._service_error(event.data)
        if event.event != "message":
            _log.debug("skipped a %r event of the stream", event.event)
            return None  # a named event of another kind (a ping): not a chunk
        try:
            obj = parse_event(event.data)
            if "error" in obj and not obj.get("choices"):
                raise self._service_error(obj)
            update = update_from_owned_dict(obj)
        except DecodeFailure as exc:
            text = self._scrubbed(str(exc))
            raise ResponseDecodeError(
                f"the stream sent an event that is not a chat-completions chunk: {text}"
            ) from exc
        self.accumulator.add(update)
        return update

    def _service_error(self, data: Any) -> StreamServiceError:
        if isinstance(data, str):
            try:
                data = parse_event(data)
            except DecodeFailure:
                data = {"error": {"message": data}}
        code, message = error_from_event(data)
        message = self._scrubbed(message)
        if code:
            code = self._scrubbed(code)
        return StreamServiceError(
            f"the service reported an error in the stream: ({code}) {message}"
            if code
            else f"the service reported an error in the stream: {message}",
            None,
            code=code,
            service_message=message,
            request_id=self.request_id,
        )

    def _scrubbed(self, text: str) -> str:
        redact = self._redact
        return text if redact is None else redact(text)

    def _end(self) -> None:
        """Nothing is queued and the stream has ended: raise its error, once."""
        if self.state is _CUT:
            self.state = _FAILED
            self._raise(
                StreamInterruptedError(
                    "the stream ended before 'data: [DONE]': the connection was closed early "
                    f"({self.count} updates received; see .partial)"
                )
            )
        error, self._error = self._error, None
        if error is not None:
            self._raise(error)

    def _raise(self, error: BaseException) -> NoReturn:
        """End the stream with ``error``: nothing more is returned; ``partial`` is set."""
        self._events.clear()
        self._error = None
        self.state = _FAILED
        if isinstance(error, InferenceError) and error.partial is None:
            error.partial = self.accumulator.result()
        raise error

    # -- two halves (the sync API) ------------------------------------------------------------

    def hand_over(self) -> StreamParser:
        """Split off the output side: the parser returned owns what is queued, the accumulator
        and the end; this one keeps decoding, and passes what it decodes on with
        :meth:`take_events` (to the new one's :meth:`put_events`)."""
        other = StreamParser.__new__(StreamParser)
        other._decoder = self._decoder  # never fed through ``other``
        other._events, self._events = self._events, deque()
        other.accumulator = self.accumulator
        other._chunks = self._chunks
        other._chunk = self._chunk
        other.state = self.state
        other._error, self._error = self._error, None
        other.request_id = self.request_id
        other._redact = self._redact
        other._limit, other._left, other._server = self._limit, self._left, self._server
        other._handed_end = False
        self.accumulator = ChatCompletionsAccumulator()
        self._chunks = ChunkParser(self.accumulator)
        self._chunk = self._chunks.parse
        return other

    def take_events(self, limit: int) -> Handoff:
        """Up to ``limit`` queued events, for :meth:`put_events` of the output side. The batch
        that empties the queue of an ended stream carries the end as its last item (the
        :class:`StreamState`, or the error); after that, the batches are empty."""
        events = self._events
        if len(events) <= limit:
            batch: Handoff = list(events)
            events.clear()
        else:
            batch = [events.popleft() for _ in range(limit)]
            return batch
        state = self.state
        if state is not _OPEN and not self._handed_end:
            self._handed_end = True
            error, self._error = self._error, None
            batch.append(state if error is None else error)
        return batch

    @staticmethod
    def ends(batch: Handoff) -> bool:
        """True if a batch from :meth:`take_events` carries the end of the stream."""
        return bool(batch) and (
            type(batch[-1]) is StreamState or isinstance(batch[-1], BaseException)
        )

    def put_events(self, batch: Handoff) -> None:
        """Queue a batch from :meth:`take_events` of the input side (its last item may be the
        end of the stream)."""
        if not batch or self.state is not _OPEN:
            return
        end = batch[-1]
        if type(end) is StreamState:
            self.state = end
            del batch[-1]
        elif isinstance(end, BaseException):
            self.state = _FAILED
            self._error = end
            del batch[-1]
        self._events.extend(batch)
