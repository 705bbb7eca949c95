"""A sans-I/O decoder for ``text/event-stream`` bodies (server-sent events).

:class:`SSEDecoder` is fed the bytes of a response body as they arrive and returns the
:class:`ServerSentEvent` objects completed by each chunk. It does no I/O, never awaits and
never reads a clock, so the same object serves the async core, the sync facade and tests.

Why the project has its own decoder:

* Speed. It runs on every chunk of every streamed completion. The common shape of a chat
  stream (events that are one ``data: ...`` line, LF line endings) is decoded a whole chunk
  at a time with C-level ``bytes``/``str`` methods (``rfind``, ``decode``, ``split``) and
  one tuple per event; there is no per-line regular expression and no per-byte Python loop.
  A chunk whose line endings are all CRLF is first turned into LF with ``bytes.replace``
  and takes the same path. Any other shape takes a general path that walks complete lines
  with ``bytes.find`` and gives exactly the same events.
* Correctness. It follows the WHATWG HTML standard, "Interpreting an event stream", to the
  letter, including the parts several implementations get wrong: CR, LF and CRLF line
  endings (a CRLF split across two chunks is one line ending), comment lines, one leading
  byte order mark stripped only at the very start of the stream, ``id`` values containing
  NUL ignored, ``id`` persisting across events, ``retry`` accepted only when it is all
  ASCII digits, one space (not all whitespace) stripped after the colon, no event
  dispatched for an empty data buffer, and an unterminated event at end of input
  discarded. Invalid UTF-8 becomes U+FFFD, and a character split across chunks is decoded
  whole (lines are cut on the CR and LF bytes, which never occur inside a multi-byte
  UTF-8 sequence, and each line is decoded once it is complete).

Guarantees:

* Linear time in the bytes fed, whatever the chunking: the decoder keeps its scan state, so
  a byte is scanned and copied a bounded number of times, never once per later chunk (a
  4 MiB line fed 64 bytes at a time takes a fraction of a second, not minutes).
* Bounded memory: a line, or the data of one event, longer than ``max_buffer_size`` bytes
  raises :class:`~inference.exceptions.SSEError` instead of growing the buffer.
* :class:`~inference.exceptions.SSEError` is the only exception :meth:`SSEDecoder.feed` and
  :meth:`SSEDecoder.close` raise. Once it has been raised, or once the decoder is closed,
  every further :meth:`~SSEDecoder.feed` raises :class:`~inference.exceptions.SSEError` too.

One limit of the implementation rather than of the standard: a ``retry`` value too long for
Python to parse as an ``int`` (thousands of digits, see ``sys.get_int_max_str_digits``) is
ignored, like any other invalid ``retry``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any, Final, NamedTuple, cast

from inference.exceptions import RequestValidationError, SSEError

__all__ = ["DEFAULT_MAX_BUFFER_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_BUFFER_SIZE: Final = 16 * 1024 * 1024
"""The default limit (16 MiB) on one line, and on the data of one event, in bytes.

Chat-completion events are a few hundred bytes; even a large tool-call argument or a
base64 image in one event stays far below this. The limit exists so that a broken or
hostile server cannot make the client buffer without end.
"""

_BOM: Final = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    """One dispatched server-sent event. Immutable; compares equal by value.

    ``event`` is the event type (``"message"`` when the stream gave none), ``data`` the
    data lines joined with LF, ``id`` the stream's last event ID when the event was
    dispatched (it persists from earlier events, as the standard says), and ``retry`` the
    reconnection time in milliseconds given by a valid ``retry`` field in this event's
    block of lines, or ``None``. Being a named tuple, it also unpacks as
    ``event, data, id, retry``.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


# Building the tuple directly skips the Python-level ``__new__`` NamedTuple generates;
# about twice as fast, and it runs once per event.
_new_event = cast(
    "Callable[[type[ServerSentEvent], tuple[str, str, str, int | None]], ServerSentEvent]",
    tuple.__new__,
)


class SSEDecoder:
    """Turn the bytes of an event stream into :class:`ServerSentEvent` objects.

    Call :meth:`feed` with each chunk of the body, in order, and :meth:`close` at the end of
    the body. ``max_buffer_size`` bounds, in bytes, both the longest line and the data of one
    event; exceeding it raises :class:`~inference.exceptions.SSEError`. A value below 1
    raises :class:`~inference.exceptions.RequestValidationError`.

    :attr:`last_event_id` and :attr:`retry` hold the stream state a client needs to
    reconnect (the ``Last-Event-ID`` header value and the reconnection time).
    """

    __slots__ = (
        "_after_cr",
        "_at_start",
        "_block_retry",
        "_closed",
        "_closed_message",
        "_data",
        "_data_len",
        "_event",
        "_fast_path",
        "_head",
        "_id",
        "_last_event_id",
        "_max",
        "_partial",
        "_raw",
        "_retry",
    )

    def __init__(self, max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE) -> None:
        if (
            isinstance(max_buffer_size, bool)
            or not isinstance(max_buffer_size, int)
            or max_buffer_size < 1
        ):
            raise RequestValidationError(
                f"max_buffer_size must be a positive number of bytes, got {max_buffer_size!r}"
            )
        self._max = max_buffer_size
        # The incomplete line at the end of the input seen so far (never holds a line ending).
        self._partial: bytes | bytearray = b""
        # True while the stream's first bytes could still be a byte order mark.
        self._at_start = True
        self._head = b""
        # The previous chunk ended with CR: an LF starting the next chunk ends no line.
        self._after_cr = False
        # The standard's buffers: data lines, event type, last event ID.
        self._data: list[bytes] = []
        self._data_len = 0
        self._event = b""
        self._id = ""
        # The last event ID string (set at each dispatch) and the reconnection time.
        self._last_event_id = ""
        self._retry: int | None = None
        # A valid ``retry`` seen since the last dispatch, reported on the next event.
        self._block_retry: int | None = None
        self._closed = False
        self._closed_message = ""
        # False forces the general line-by-line path (tests compare the two paths).
        self._fast_path = True
        # Set per call: message events come out as their data bytes (``feed_data``).
        self._raw = False

    @property
    def max_buffer_size(self) -> int:
        """The limit, in bytes, on one line and on the data of one event."""
        return self._max

    @property
    def last_event_id(self) -> str:
        """The last event ID of the stream, as of the last dispatch (``""`` if none).

        This is the value a client sends as ``Last-Event-ID`` when it reconnects. An ``id``
        field takes effect when its event is dispatched, even one not delivered because its
        data was empty; an ``id`` in an event cut off by the end of input never does.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The latest reconnection time in milliseconds sent by the stream, or ``None``.

        A ``retry`` field takes effect as soon as its line is complete, whether or not its
        event is dispatched.
        """
        return self._retry

    @property
    def closed(self) -> bool:
        """Whether :meth:`feed` refuses data: :meth:`close` was called or SSEError raised."""
        return self._closed

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream; return the events it completed, in order.

        ``data`` may be any length, including empty; a ``bytearray`` or ``memoryview`` is
        accepted too. Raises :class:`~inference.exceptions.SSEError` if a line or an event's
        data grows past ``max_buffer_size``, or if the decoder is closed or failed earlier
        (a ``TypeError`` for an argument that is not bytes-like is a programming error).
        """
        self._raw = False
        return self._feed(data)

    def feed_data(self, data: bytes) -> list[bytes | ServerSentEvent]:
        """Like :meth:`feed`, but an event of the default type (``message``) comes as its data,
        still UTF-8 encoded (``bytes``); events of other types come as
        :class:`ServerSentEvent`.

        For consumers that hand the data to a parser taking bytes (a JSON parser): the text is
        neither decoded here nor encoded again there. The decoder's state (``last_event_id``,
        ``retry``) is kept exactly as by :meth:`feed`, and the two can be mixed.
        """
        self._raw = True
        return self._feed(data)

    def _feed(self, data: bytes) -> list[Any]:
        if self._closed:
            raise SSEError(self._closed_message)
        if type(data) is not bytes:
            data = bytes(memoryview(data))  # TypeError for what is not bytes-like
        if self._at_start:
            data = self._skip_bom(data)
        if not data:
            return []
        if self._after_cr or 13 in data:
            data = self._to_lf(data)
            if not data:
                return []
        out: list[Any] = []
        try:
            partial = self._partial
            if not self._fast_path or len(partial) > len(data):
                # A long incomplete line: look only at the new bytes.
                self._feed_lines(data, out)
            elif not partial:
                self._feed_blocks(data, out)
            elif type(partial) is bytes:
                self._feed_blocks(partial + data, out)
            else:
                self._feed_blocks(b"".join((partial, data)), out)
        except SSEError as exc:
            self._closed = True
            self._closed_message = f"the event stream already failed: {exc}"
            raise
        return out

    def _skip_bom(self, data: bytes) -> bytes:
        """The stream's first bytes without a leading byte order mark (``b""`` while the first
        bytes could still be the start of one: they are kept until more arrive)."""
        data = self._head + data
        if len(data) < 3 and _BOM.startswith(data):
            self._head = data
            return b""
        self._at_start = False
        self._head = b""
        return data[3:] if data[:3] == _BOM else data

    def _to_lf(self, data: bytes) -> bytes:
        """``data`` (not empty) with CRLF, then lone CR, line endings turned into LF: each is
        one line ending, and no CRLF can span two of them. A CR ending the chunk may pair with
        an LF starting the next one (dropped then)."""
        if self._after_cr:
            self._after_cr = False
            if data[0] == 10:
                data = data[1:]
        if 13 in data:
            self._after_cr = data[-1] == 13
            stripped = data.replace(b"\r", b"")
            if stripped.replace(b"\n", b"\r\n") == data:
                return stripped  # every line ending is CRLF (cheaper than the general case)
            return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return data

    def close(self) -> list[ServerSentEvent]:
        """Mark the end of the stream and return the events that completes.

        The standard discards an event left unterminated at the end of input, and a blank
        line dispatches its event as soon as it is read, so the list is always empty; it is
        returned so that callers can treat the end like any other chunk. Calling ``close``
        again is harmless; :meth:`feed` after ``close`` raises
        :class:`~inference.exceptions.SSEError`.
        """
        if not self._closed:
            self._closed = True
            self._closed_message = "SSEDecoder.feed() was called after close()"
        self._partial = b""
        self._head = b""
        self._data = []
        self._data_len = 0
        return []

    # -- decoding ---------------------------------------------------------------------------

    def _feed_blocks(self, buf: bytes, out: list[Any]) -> None:
        """Decode ``buf``, which starts at a line start and holds no CR."""
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            tail = buf
        else:
            # ``buf[:cut]`` followed by a line ending and a blank line: whole events.
            head = buf[:cut]
            tail = buf[cut + 2 :]
            if (
                head[:6] == b"data: "
                and len(head) <= self._max
                and not self._data
                and not self._event
                and self._block_retry is None
            ):
                # The usual case: every event is a single ``data: `` line.
                values = head.split(b"\n\ndata: ")
                # A line feed left in a value is inside an event (not a one-line event).
                # ``in`` runs memchr over the joined copy; ``bytes.count`` of one byte is a
                # plain loop, several times slower on a 4 KiB read.
                if b"\n" not in b"".join(values):
                    values[0] = values[0][6:]
                    if self._raw:
                        out += values
                    else:
                        # Each event decoded on its own: an ASCII event stays a compact
                        # string whatever the other events of the read hold.
                        try:
                            texts = list(map(bytes.decode, values))  # strict UTF-8
                        except UnicodeDecodeError:
                            texts = [v.decode("utf-8", "replace") for v in values]
                        out += map(
                            _new_event,
                            repeat(ServerSentEvent),
                            zip(repeat("message"), texts, repeat(self._id), repeat(None)),
                        )
                    self._last_event_id = self._id
                else:
                    self._feed_events(head, out)
            else:
                self._feed_events(head, out)
        newline = tail.rfind(b"\n")
        if newline >= 0:
            line_ = self._line
            for line in tail[:newline].split(b"\n"):
                line_(line, out)
            tail = tail[newline + 1 :]
        if len(tail) > self._max:
            raise self._line_error()
        self._partial = tail

    def _feed_events(self, head: bytes, out: list[Any]) -> None:
        """Decode ``head`` followed by a line ending and a blank line (no CR in it)."""
        maxsize = self._max
        line_ = self._line
        for block in head.split(b"\n\n"):
            if (
                block[:6] == b"data: "
                and len(block) <= maxsize
                and not self._data
                and not self._event
                and self._block_retry is None
                and block.find(b"\n") < 0
            ):
                event_id = self._id
                self._last_event_id = event_id
                if self._raw:
                    out.append(block[6:])
                else:
                    data = block[6:].decode("utf-8", "replace")
                    out.append(_new_event(ServerSentEvent, ("message", data, event_id, None)))
            else:
                for line in block.split(b"\n"):
                    line_(line, out)
                self._dispatch(out)

    def _feed_lines(self, data: bytes, out: list[Any]) -> None:
        """Decode ``data`` (no CR) one line at a time, continuing the incomplete line."""
        newline = data.find(b"\n")
        partial = self._partial
        if newline < 0:
            if len(partial) + len(data) > self._max:
                raise self._line_error()
            if type(partial) is bytes:
                self._partial = bytearray(partial)
            self._partial += data
            return
        if partial:
            line = b"".join((partial, data[:newline]))
            self._partial = b""
        else:
            line = data[:newline]
        self._line(line, out)
        start = newline + 1
        if self._fast_path:
            self._feed_blocks(data[start:], out)
            return
        find = data.find
        line_ = self._line
        while (newline := find(b"\n", start)) >= 0:
            line_(data[start:newline], out)
            start = newline + 1
        if len(data) - start > self._max:
            raise self._line_error()
        self._partial = data[start:]

    def _line(self, line: bytes, out: list[Any]) -> None:
        """Process one complete line, as the standard's field rules say."""
        if not line:
            self._dispatch(out)
            return
        if len(line) > self._max:
            raise self._line_error()
        colon = line.find(b":")
        if colon == 0:
            return  # a comment
        if colon < 0:
            name = line
            value = b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line.startswith(b" ", colon + 1) else line[colon + 1 :]
        if name == b"data":
            size = self._data_len + len(value) + 1
            if size > self._max:
                raise SSEError(
                    f"an event's data is larger than max_buffer_size={self._max} bytes; to "
                    "accept larger events, create the SSEDecoder with a larger max_buffer_size"
                )
            self._data_len = size
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if 0 not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            try:
                retry = int(value)
            except ValueError:  # more digits than Python agrees to parse: no sane delay
                return
            self._retry = retry
            self._block_retry = retry

    def _dispatch(self, out: list[Any]) -> None:
        """Dispatch the buffered event (a blank line was read)."""
        self._last_event_id = self._id
        if self._data:
            raw = b"\n".join(self._data)
            event = self._event.decode("utf-8", "replace") if self._event else "message"
            if self._raw and event == "message":
                out.append(raw)
            else:
                data = raw.decode("utf-8", "replace")
                out.append(_new_event(ServerSentEvent, (event, data, self._id, self._block_retry)))
            self._data = []
            self._data_len = 0
        self._event = b""
        self._block_retry = None

    def _line_error(self) -> SSEError:
        return SSEError(
            f"an event-stream line is longer than max_buffer_size={self._max} bytes; to accept "
            "longer lines, create the SSEDecoder with a larger max_buffer_size"
        )
