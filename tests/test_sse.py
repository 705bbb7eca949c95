"""Tests for inference.sse: the WHATWG event-stream rules, chunking independence and limits."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.exceptions import RequestValidationError, SSEError
from inference.sse import DEFAULT_MAX_BUFFER_SIZE, ServerSentEvent, SSEDecoder

E = ServerSentEvent
BOM = b"\xef\xbb\xbf"
PROPERTY_SETTINGS = settings(max_examples=200, derandomize=True, database=None, deadline=None)


# -- helpers ---------------------------------------------------------------------------------


class Outcome(NamedTuple):
    """What decoding a whole stream produced."""

    events: list[ServerSentEvent]
    last_event_id: str
    retry: int | None


def decode(
    chunks: Iterable[bytes],
    *,
    max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE,
    general: bool = False,
) -> Outcome:
    """Feed ``chunks`` to a fresh decoder, close it, and return what it produced."""
    decoder = SSEDecoder(max_buffer_size)
    if general:
        decoder._fast_path = False
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return Outcome(events, decoder.last_event_id, decoder.retry)


def decode_data(
    chunks: Iterable[bytes], *, general: bool = False
) -> tuple[list[tuple[str, str]], str, int | None]:
    """Like :func:`decode` through ``feed_data``: ((type, data) per event, last id, retry).

    Checks the item types on the way: a ``message`` event must come as its undecoded data
    bytes, every other event as a :class:`ServerSentEvent`.
    """
    decoder = SSEDecoder()
    if general:
        decoder._fast_path = False
    pairs: list[tuple[str, str]] = []
    for chunk in chunks:
        for item in decoder.feed_data(chunk):
            if isinstance(item, bytes):
                pairs.append(("message", item.decode("utf-8", "replace")))
            else:
                assert isinstance(item, ServerSentEvent)
                assert item.event != "message", item
                pairs.append((item.event, item.data))
    assert decoder.close() == []
    return pairs, decoder.last_event_id, decoder.retry


def data_outcome(outcome: Outcome) -> tuple[list[tuple[str, str]], str, int | None]:
    """What :func:`decode_data` should give for a stream that decodes to ``outcome``."""
    return [(e.event, e.data) for e in outcome.events], outcome.last_event_id, outcome.retry


def decode_until_error(
    chunks: Iterable[bytes], *, max_buffer_size: int, general: bool = False
) -> tuple[list[ServerSentEvent], bool]:
    """Like :func:`decode`, but stop at an SSEError: (events so far, whether it was raised)."""
    decoder = SSEDecoder(max_buffer_size)
    if general:
        decoder._fast_path = False
    events: list[ServerSentEvent] = []
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
    except SSEError:
        return events, True
    events += decoder.close()
    return events, False


def split_at(raw: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``raw`` at the given offsets (taken modulo ``len(raw) + 1``, in any order)."""
    points = sorted({c % (len(raw) + 1) for c in cuts})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def random_splits(raw: bytes, rng: random.Random) -> list[bytes]:
    """Cut ``raw`` at a few random offsets (empty pieces included now and then)."""
    return split_at(raw, [rng.randint(0, len(raw)) for _ in range(rng.randint(0, 12))])


def one_byte_chunks(raw: bytes) -> list[bytes]:
    """``raw`` one byte at a time."""
    return [raw[i : i + 1] for i in range(len(raw))]


_EOL = re.compile(r"\r\n|\r|\n")
_EOL_BYTES = re.compile(rb"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")


def reference_decode(raw: bytes) -> Outcome:
    """The standard's algorithm written out plainly over the whole decoded text (the oracle)."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _EOL.split(text)[:-1]  # the last piece has no line ending: pending, discarded
    events: list[ServerSentEvent] = []
    data = event_type = id_buffer = last_event_id = ""
    retry: int | None = None
    block_retry: int | None = None
    for line in lines:
        if not line:
            last_event_id = id_buffer
            if data:
                events.append(
                    E(event_type or "message", data.removesuffix("\n"), last_event_id, block_retry)
                )
            data = event_type = ""
            block_retry = None
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and _DIGITS.fullmatch(value):
            # A value beyond Python's int-parsing limit is ignored, as documented.
            with contextlib.suppress(ValueError):
                retry = block_retry = int(value)
    return Outcome(events, last_event_id, retry)


def reference_breaks_limit(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` has a line, or an event's data, longer than ``limit`` bytes."""
    if raw.startswith(BOM):
        raw = raw[3:]
    pieces = _EOL_BYTES.split(raw)
    if len(pieces[-1]) > limit:  # the incomplete last line
        return True
    size = 0
    for line in pieces[:-1]:
        if len(line) > limit:
            return True
        if not line:
            size = 0
            continue
        field, colon, value = line.partition(b":")
        if field == b"data":
            size += len(value) - value.startswith(b" ") + 1 if colon else 1
            if size > limit:
                return True
    return False


# -- the standard's rules, as a table -----------------------------------------------------------


class Vector(NamedTuple):
    """One stream and what decoding it must give."""

    name: str
    raw: bytes
    events: list[ServerSentEvent]
    last_event_id: str = ""
    retry: int | None = None


VECTORS = [
    Vector("empty stream", b"", []),
    Vector("comments only", b": hello\n:world\n\n:\n\n", []),
    Vector("data with space", b"data: hello\n\n", [E(data="hello")]),
    Vector("data without space", b"data:hello\n\n", [E(data="hello")]),
    Vector("only one space stripped", b"data:  two\n\n", [E(data=" two")]),
    Vector("tab is not stripped", b"data:\tx\n\n", [E(data="\tx")]),
    Vector("data empty value", b"data:\n\n", [E(data="")]),
    Vector("data without colon", b"data\n\n", [E(data="")]),
    Vector("multi-line data", b"data: a\ndata: b\ndata:\n\n", [E(data="a\nb\n")]),
    Vector("colons in value", b"data: a:b: c\n\n", [E(data="a:b: c")]),
    Vector("comment inside event", b"data: a\n: note\ndata: b\n\n", [E(data="a\nb")]),
    Vector("event type", b"event: add\ndata: x\n\n", [E("add", "x")]),
    Vector("event type last wins", b"event: a\nevent: b\ndata: x\n\n", [E("b", "x")]),
    Vector(
        "event type reset after dispatch",
        b"event: add\ndata: x\n\ndata: y\n\n",
        [E("add", "x"), E(data="y")],
    ),
    Vector("empty event type is message", b"event:\ndata: x\n\n", [E(data="x")]),
    Vector(
        "empty data buffer: no dispatch, event type reset",
        b"event: x\n\ndata: y\n\n",
        [E(data="y")],
    ),
    Vector(
        "id persists across events",
        b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        [E(data="a", id="1"), E(data="b", id="1"), E(data="c")],
        last_event_id="",
    ),
    Vector(
        "id containing NUL is ignored",
        b"id: 1\n\nid: 2\x003\ndata: x\n\n",
        [E(data="x", id="1")],
        last_event_id="1",
    ),
    Vector("id without data is committed", b"id: 5\n\n", [], last_event_id="5"),
    Vector(
        "id of an unterminated event is not committed",
        b"id: 3\ndata: a\n\nid: 4\ndata: b\n",
        [E(data="a", id="3")],
        last_event_id="3",
    ),
    Vector(
        "retry valid",
        b"retry: 1500\ndata: x\n\ndata: y\n\n",
        [E(data="x", retry=1500), E(data="y")],
        retry=1500,
    ),
    Vector("retry leading zeros", b"retry: 007\n\n", [], retry=7),
    Vector(
        "retry invalid values ignored",
        b"retry: 15a\ndata: x\n\nretry: -1\n\nretry: 1.5\n\nretry:\n\nretry\n\nretry:  7\n\n"
        b"retry: \xd9\xa3\n\n",
        [E(data="x")],
    ),
    Vector("retry invalid keeps earlier value", b"retry: 10\n\nretry: x\n\n", [], retry=10),
    Vector("retry applies without dispatch", b"retry: 20\n", [], retry=20),
    Vector("retry too long to parse is ignored", b"retry: " + b"9" * 5000 + b"\n\n", []),
    Vector("BOM stripped", BOM + b"data: x\n\n", [E(data="x")]),
    Vector(
        "second BOM not stripped",
        BOM + BOM + b"data: x\n\ndata: y\n\n",
        [E(data="y")],
    ),
    Vector(
        "BOM later in stream not stripped", b"data: a\n\n" + BOM + b"data: b\n\n", [E(data="a")]
    ),
    Vector("BOM inside a value kept", b"data: " + BOM + b"x\n\n", [E(data="\ufeffx")]),
    Vector("truncated BOM is not a BOM", b"\xef\xbbdata: x\n\n", []),
    Vector("CR line endings", b"data: a\rdata: b\r\r", [E(data="a\nb")]),
    Vector("CRLF line endings", b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")]),
    Vector(
        "mixed line endings",
        b"data: a\r\n\ndata: b\r\rdata: c\n\r\n",
        [E(data="a"), E(data="b"), E(data="c")],
    ),
    Vector("CR then CRLF", b"data: a\r\r\ndata: b\r\n\r\n", [E(data="a"), E(data="b")]),
    Vector("LF then CR", b"data: a\n\rdata: b\n\n", [E(data="a"), E(data="b")]),
    Vector("BOM with CRLF", BOM + b"event: e\r\ndata: x\r\n\r\n", [E("e", "x")]),
    Vector("unknown fields ignored", b"foo: bar\ndata: x\nData: y\nDATA\n\n", [E(data="x")]),
    Vector("space before colon is part of the name", b"data : x\n\n", []),
    Vector("fields without colon", b"event\ndata\n\n", [E(data="")]),
    Vector("unterminated event discarded", b"data: a\n\ndata: b\n", [E(data="a")]),
    Vector("unterminated line discarded", b"data: a\n\ndata: b", [E(data="a")]),
    Vector(
        "data then many blank lines", b"data: a\n\n\n\n\ndata: b\n\n", [E(data="a"), E(data="b")]
    ),
    Vector("leading blank lines", b"\n\n\r\ndata: x\n\n", [E(data="x")]),
    Vector(
        "UTF-8 multi-byte",
        "data: héllo 東京 🙂\nevent: é\n\n".encode(),
        [E("é", "héllo 東京 🙂")],
    ),
    Vector(
        "invalid UTF-8 becomes U+FFFD",
        b"data: a\xffb\xe2\x82\nevent: \xc3\nid: \xf0\x9f\x99\n\n",
        [E("\ufffd", "a\ufffdb\ufffd", "\ufffd")],
        last_event_id="\ufffd",
    ),
    Vector("NUL in data kept", b"data: a\x00b\n\n", [E(data="a\x00b")]),
    Vector(
        "chat completion chunks",
        b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n',
        [E(data='{"choices":[{"delta":{"content":"Hi"}}]}'), E(data="[DONE]")],
    ),
    Vector(
        "everything in one block",
        b": c\nretry: 3\nid: 9\nevent: delta\ndata: 1\ndata: 2\n\n",
        [E("delta", "1\n2", "9", 3)],
        last_event_id="9",
        retry=3,
    ),
]


def _splittings(raw: bytes) -> list[tuple[str, list[bytes]]]:
    """Every way a vector is fed: whole, one byte at a time, and 20 seeded random splits."""
    rng = random.Random(raw)
    ways = [("whole", [raw]), ("bytewise", one_byte_chunks(raw))]
    ways += [(f"random {i}", random_splits(raw, rng)) for i in range(20)]
    return ways


@pytest.mark.parametrize("general", [False, True], ids=["default", "general-path"])
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_vector(vector: Vector, general: bool) -> None:
    """Each table stream gives its events and final state, however it is split."""
    expected = Outcome(vector.events, vector.last_event_id, vector.retry)
    for how, chunks in _splittings(vector.raw):
        assert decode(chunks, general=general) == expected, how
        assert decode_data(chunks, general=general) == data_outcome(expected), how


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_vector_matches_reference(vector: Vector) -> None:
    """The oracle used by the property tests agrees with the table too."""
    assert reference_decode(vector.raw) == (vector.events, vector.last_event_id, vector.retry)


def test_vectors_cover_the_rules() -> None:
    """The table holds at least 25 cases."""
    assert len(VECTORS) >= 25


# -- chunk boundaries -------------------------------------------------------------------------


def test_crlf_split_across_feeds_is_one_line_ending() -> None:
    """A CR ending one feed and an LF starting the next end one line, not two."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [E(data="a\nb")]


def test_cr_at_end_of_feed_ends_line_at_once() -> None:
    """A blank line ended by CR dispatches without waiting to see whether LF follows."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [E(data="a")]
    assert decoder.feed(b"\ndata: b\n\n") == [E(data="b")]


def test_lf_after_cr_then_empty_feed() -> None:
    """An empty feed between a CR and its LF does not break the pair."""
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r") + decoder.feed(b"") + decoder.feed(b"\n")
    events += decoder.feed(b"\n")
    assert events == [E(data="a")]


def test_multibyte_character_split_across_feeds() -> None:
    """A character whose UTF-8 bytes arrive in different feeds is decoded whole."""
    raw = "data: 🙂€\n\n".encode()
    for cut in range(len(raw) + 1):
        decoder = SSEDecoder()
        events = decoder.feed(raw[:cut]) + decoder.feed(raw[cut:])
        assert events == [E(data="🙂€")], cut


def test_bom_split_across_feeds() -> None:
    """A leading BOM that arrives one byte at a time is still stripped, and only once."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in (b"\xef", b"", b"\xbb", b"\xbf", b"data: x\n\n", BOM, b"data: y\n\n"):
        events += decoder.feed(piece)
    assert events == [E(data="x")]


def test_events_returned_by_the_feed_that_completes_them() -> None:
    """Each feed returns exactly the events its bytes complete."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [E(data="a")]
    assert decoder.feed(b"\n") == [E(data="b")]
    assert decoder.feed(b"data: c\n\ndata: d\n\nda") == [E(data="c"), E(data="d")]
    assert decoder.feed(b"ta: e\n\n") == [E(data="e")]


def test_feed_and_feed_data_can_be_mixed() -> None:
    """The decoder state carries across the two methods: a line split between them, the
    event id, and the reconnection time."""
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nretry: 300\ndata: a") == []
    assert decoder.feed_data(b"b\n\nevent: ping\ndata: x\n\ndata: \xc3") == [
        b"ab",
        ServerSentEvent("ping", "x", "7", None),
    ]
    assert decoder.feed(b"\xa9\n\n") == [ServerSentEvent("message", "\u00e9", "7", None)]
    assert (decoder.last_event_id, decoder.retry) == ("7", 300)


def test_invalid_utf8_in_one_event_does_not_change_the_others() -> None:
    """In a read of single-line events (the fast path), invalid UTF-8 in one event becomes
    U+FFFD there only; the other events of the read decode as they are."""
    decoder = SSEDecoder()
    events = decoder.feed(b"data: caf\xc3\xa9\n\ndata: \xff!\n\ndata: \xf0\x9f\x99\x82\n\n")
    assert [e.data for e in events] == ["caf\u00e9", "\ufffd!", "\U0001f642"]


def test_feed_data_keeps_invalid_utf8_as_sent() -> None:
    """feed_data does not decode: bytes that are not UTF-8 reach the caller unchanged."""
    decoder = SSEDecoder()
    assert decoder.feed_data(b"data: \xff\xfe\n\ndata: ok\n\n") == [b"\xff\xfe", b"ok"]


def test_feed_accepts_bytes_like() -> None:
    """bytearray and memoryview chunks decode like bytes."""
    decoder = SSEDecoder()
    events = decoder.feed(bytearray(b"data: a\n"))  # type: ignore[arg-type]
    events += decoder.feed(memoryview(b"\ndata: b\n\n"))  # type: ignore[arg-type]
    assert events == [E(data="a"), E(data="b")]


# -- linear time and the buffer limit ---------------------------------------------------------


def test_long_line_in_small_chunks_is_linear() -> None:
    """A 4 MiB line fed 64 bytes at a time decodes correctly (only feasible if linear)."""
    payload = b"x" * (4 * 1024 * 1024)
    raw = b"data: " + payload + b"\r\n\r\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(0, len(raw), 64):
        events += decoder.feed(raw[i : i + 64])
    assert len(events) == 1
    assert events[0].data == payload.decode()


def test_many_data_lines_in_small_chunks_is_linear() -> None:
    """One event of 100,000 data lines fed 7 bytes at a time decodes correctly."""
    raw = b"data: ab\n" * 100_000 + b"\n"
    events: list[ServerSentEvent] = []
    decoder = SSEDecoder()
    for i in range(0, len(raw), 7):
        events += decoder.feed(raw[i : i + 7])
    assert events == [E(data="\n".join(["ab"] * 100_000))]


def test_many_events_one_byte_at_a_time() -> None:
    """Two thousand chat events fed one byte at a time give every event."""
    raw, expected = chat_stream(2000, random.Random(7))
    assert decode(one_byte_chunks(raw)).events == expected


def test_line_longer_than_limit_raises() -> None:
    """A complete line longer than max_buffer_size raises SSEError naming the limit."""
    decoder = SSEDecoder(max_buffer_size=100)
    with pytest.raises(SSEError, match=r"line is longer than max_buffer_size=100 bytes"):
        decoder.feed(b"data: " + b"x" * 200 + b"\n\n")


def test_incomplete_line_longer_than_limit_raises() -> None:
    """An unterminated line raises as soon as it outgrows the limit, before it ends."""
    decoder = SSEDecoder(max_buffer_size=100)
    assert decoder.feed(b"data: " + b"x" * 50) == []
    accepted = 0
    with pytest.raises(SSEError, match=r"max_buffer_size=100") as info:
        for _ in range(10):
            decoder.feed(b"x" * 10)
            accepted += 1
    assert accepted == 4  # 96 bytes pending were fine; the feed reaching 106 raised
    assert "larger max_buffer_size" in str(info.value)


def test_long_comment_line_raises() -> None:
    """The line limit applies to comments too: nothing is buffered without bound."""
    with pytest.raises(SSEError, match=r"max_buffer_size=10\b"):
        decode([b": " + b"c" * 11 + b"\n"], max_buffer_size=10)


def test_line_at_limit_is_accepted() -> None:
    """A line of exactly max_buffer_size bytes is fine."""
    line = b"data: " + b"y" * 94
    assert decode([line + b"\n\n"], max_buffer_size=100).events == [E(data="y" * 94)]
    assert decode(one_byte_chunks(line + b"\n\n"), max_buffer_size=100).events == [E(data="y" * 94)]


def test_event_data_larger_than_limit_raises() -> None:
    """Many short data lines whose total passes the limit raise SSEError about event data."""
    raw = b"data: 0123456789\n" * 20
    for chunks in ([raw], one_byte_chunks(raw)):
        with pytest.raises(SSEError, match=r"event's data is larger than max_buffer_size=100"):
            decode(chunks, max_buffer_size=100)


def test_limit_counts_per_event() -> None:
    """The data limit applies to each event, not to the whole stream."""
    raw = b"data: 0123456789\n\n" * 100
    assert len(decode([raw], max_buffer_size=20).events) == 100


def test_default_limit() -> None:
    """The default limit is 16 MiB and is reported by the decoder."""
    assert DEFAULT_MAX_BUFFER_SIZE == 16 * 1024 * 1024
    assert SSEDecoder().max_buffer_size == DEFAULT_MAX_BUFFER_SIZE


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_bad_limit_rejected(bad: object) -> None:
    """A limit that is not a positive int is refused when the decoder is made."""
    with pytest.raises(RequestValidationError, match="max_buffer_size"):
        SSEDecoder(bad)  # type: ignore[arg-type]


# -- lifecycle and the event type -------------------------------------------------------------


def test_close_returns_nothing_and_discards_pending() -> None:
    """close() ends the stream: the unterminated event is dropped, close is idempotent."""
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: a\n") == []
    assert not decoder.closed
    assert decoder.close() == []
    assert decoder.closed
    assert decoder.close() == []
    assert decoder.last_event_id == ""


def test_feed_after_close_raises() -> None:
    """feed() after close() raises SSEError."""
    decoder = SSEDecoder()
    decoder.close()
    with pytest.raises(SSEError, match=r"after close\(\)"):
        decoder.feed(b"data: x\n\n")


def test_feed_after_error_raises() -> None:
    """After an SSEError, every further feed raises SSEError too."""
    decoder = SSEDecoder(max_buffer_size=8)
    with pytest.raises(SSEError):
        decoder.feed(b"data: 123456789\n\n")
    assert decoder.closed
    with pytest.raises(SSEError, match="already failed"):
        decoder.feed(b"data: x\n\n")


def test_server_sent_event_value_type() -> None:
    """ServerSentEvent has the documented defaults, is immutable, and compares by value."""
    event = ServerSentEvent()
    assert event == ServerSentEvent("message", "", "", None)
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)
    assert ServerSentEvent(data="x", id="1") == ServerSentEvent("message", "x", "1")
    assert ServerSentEvent(data="x") != ServerSentEvent(data="y")
    with pytest.raises(AttributeError):
        event.data = "changed"  # type: ignore[misc]
    assert repr(ServerSentEvent(data="x", retry=5)) == (
        "ServerSentEvent(event='message', data='x', id='', retry=5)"
    )
    assert hash(ServerSentEvent(data="x")) == hash(ServerSentEvent(data="x"))


def test_decoded_events_are_server_sent_events() -> None:
    """Both decoding paths return real ServerSentEvent objects with working attributes."""
    for general in (False, True):
        events = decode([b"data: a\n\nevent: t\ndata: b\n\n"], general=general).events
        assert [type(e) for e in events] == [ServerSentEvent, ServerSentEvent]
        assert [(e.event, e.data) for e in events] == [("message", "a"), ("t", "b")]


# -- the fast path and the general path agree --------------------------------------------------


WORDS = [" Hello", " world", ",", " naïve", " 東京", " 🙂", "\\n", ' "quoted"', " data: x"]


def chat_chunk(i: int, rng: random.Random) -> str:
    """A realistic chat.completion.chunk JSON body."""
    return json.dumps(
        {
            "id": "chatcmpl-AbC123",
            "object": "chat.completion.chunk",
            "created": 1718000000 + i,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "delta": {"content": rng.choice(WORDS)}, "finish_reason": None}
            ],
        },
        ensure_ascii=rng.random() < 0.5,
        separators=(",", ":"),
    )


def chat_stream(n: int, rng: random.Random) -> tuple[bytes, list[ServerSentEvent]]:
    """``n`` single-line chat events and ``[DONE]``, with LF endings, and their events."""
    bodies = [chat_chunk(i, rng) for i in range(n)] + ["[DONE]"]
    raw = "".join(f"data: {body}\n\n" for body in bodies).encode()
    return raw, [E(data=body) for body in bodies]


Block = list[str]  # the lines of one event block, without line endings


def mixed_blocks(n: int, rng: random.Random) -> tuple[list[Block], list[ServerSentEvent]]:
    """Mostly chat events, with comments, event types, ids, retry and multi-line data mixed in."""
    blocks: list[Block] = []
    events: list[ServerSentEvent] = []
    last_id = ""
    for i in range(n):
        body = chat_chunk(i, rng)
        roll = rng.random()
        if roll < 0.75:
            blocks.append([f"data: {body}"])
            events.append(E(data=body, id=last_id))
        elif roll < 0.8:
            blocks.append([": keep-alive"])
        elif roll < 0.85:
            blocks.append(["event: response.delta", f"data:{body}"])
            events.append(E("response.delta", body, last_id))
        elif roll < 0.9:
            last_id = f"evt-{i}"
            blocks.append([f"id: {last_id}", "retry: 250", f"data: {body}", "data: tail"])
            events.append(E(data=f"{body}\ntail", id=last_id, retry=250))
        elif roll < 0.95:
            blocks.append(["", f"data: {body}", ": trailing comment"])
            events.append(E(data=body, id=last_id))
        else:
            text = "ünïcödé " * rng.randint(1, 40)
            blocks.append([f"data: {text}"])
            events.append(E(data=text, id=last_id))
    return blocks, events


def render(blocks: Sequence[Block], choose_ending: Callable[[], str]) -> bytes:
    """Render blocks, each line and each blank line ended by ``choose_ending()``.

    A blank line right after a CR must not be ended by a lone LF (CR LF would be one ending).
    """
    out: list[str] = []
    previous = ""
    for block in blocks:
        for line in [*block, ""]:
            ending = choose_ending()
            if not line and previous == "\r" and ending == "\n":
                ending = "\r\n"
            out.append(line + ending)
            previous = ending
    return "".join(out).encode()


def test_fast_and_general_paths_agree_on_a_large_stream() -> None:
    """A large mixed stream gives the same events through every path, ending and chunking."""
    rng = random.Random(2024)
    blocks, expected = mixed_blocks(1200, rng)
    streams = {
        "LF": render(blocks, lambda: "\n"),
        "CRLF": render(blocks, lambda: "\r\n"),
        "CR": render(blocks, lambda: "\r"),
        "mixed": render(blocks, lambda: rng.choice(["\n", "\r", "\r\n"])),
    }
    for name, raw in streams.items():
        assert reference_decode(raw).events == expected, name
        for size in (3, 64, 250, 4096, 65536, len(raw)):
            chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
            for general in (False, True):
                assert decode(chunks, general=general).events == expected, (name, size, general)
                pairs = decode_data(chunks, general=general)[0]
                assert pairs == [(e.event, e.data) for e in expected], (name, size, general)
        assert decode(random_splits(raw, rng)).events == expected, name


def test_chat_stream_same_with_lf_and_crlf() -> None:
    """The same chat events sent with LF and with CRLF endings decode identically."""
    rng = random.Random(5)
    lf, expected = chat_stream(1500, rng)
    crlf = lf.replace(b"\n", b"\r\n")
    for size in (4096, 1000, 333):
        for raw in (lf, crlf):
            chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
            assert decode(chunks).events == expected
            assert decode(chunks, general=True).events == expected


def test_single_line_events_skip_the_line_by_line_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of complete single-line ``data:`` events never goes line by line."""
    raw, expected = chat_stream(500, random.Random(1))

    def fail(*args: object) -> None:
        raise AssertionError("line-by-line path used")

    monkeypatch.setattr(SSEDecoder, "_line", fail)
    decoder = SSEDecoder()
    assert decoder.feed(raw) == expected
    assert decoder.feed(raw.replace(b"\n", b"\r\n")) == expected


def test_fast_path_keeps_event_id() -> None:
    """Events decoded on the fast path carry the persisted last event ID."""
    raw, expected = chat_stream(100, random.Random(3))
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 42\n\n") == []
    assert decoder.feed(raw) == [event._replace(id="42") for event in expected]
    assert decoder.last_event_id == "42"


# -- properties --------------------------------------------------------------------------------


line_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]))


class Spec(NamedTuple):
    """A generated event block: what the server meant to send."""

    event: str | None
    data: list[str]
    id: str | None
    retry: int | None
    comment: str | None


blocks_strategy = st.lists(
    st.builds(
        Spec,
        event=st.none() | line_text,
        data=st.lists(line_text, max_size=3),
        id=st.none() | line_text.filter(lambda s: "\0" not in s),
        retry=st.none() | st.integers(0, 10**12),
        comment=st.none() | line_text,
    ),
    max_size=8,
)


@PROPERTY_SETTINGS
@given(
    specs=blocks_strategy,
    endings=st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=5),
    bom=st.booleans(),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    general=st.booleans(),
)
def test_rendered_events_round_trip(
    specs: list[Spec], endings: list[str], bom: bool, cuts: list[int], general: bool
) -> None:
    """Any events, rendered with any line endings and split anywhere, decode to themselves."""
    blocks: list[Block] = []
    expected: list[ServerSentEvent] = []
    last_id = ""
    last_retry: int | None = None
    for spec in specs:
        lines = [] if spec.comment is None else [f":{spec.comment}"]
        if spec.event is not None:
            lines.append(f"event: {spec.event}")
        if spec.id is not None:
            lines.append(f"id: {spec.id}")
            last_id = spec.id
        if spec.retry is not None:
            lines.append(f"retry: {spec.retry}")
            last_retry = spec.retry
        lines += [f"data: {value}" for value in spec.data]
        blocks.append(lines)
        if spec.data:
            expected.append(E(spec.event or "message", "\n".join(spec.data), last_id, spec.retry))
    cycle = iter(endings * 10_000)
    raw = (BOM if bom else b"") + render(blocks, lambda: next(cycle))
    outcome = Outcome(expected, last_id, last_retry)
    assert decode([raw], general=general) == outcome
    assert decode(split_at(raw, cuts), general=general) == outcome


TOKENS = [
    b"data", b"event", b"id", b"retry", b"data: ", b":", b" ", b"\t", b"\n", b"\r", b"\r\n",
    b"\n\n", b"x", b"42", b"\x00", BOM, b"\xef", b"\xbb", b"\xe2\x82\xac", b"\xff", b"\x80",
    b"\xf0\x9f\x99\x82", b"message",
]  # fmt: skip

stream_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(TOKENS), max_size=80).map(b"".join),
)


@PROPERTY_SETTINGS
@given(raw=stream_bytes, cuts=st.lists(st.integers(0, 10**6), max_size=12), general=st.booleans())
def test_arbitrary_bytes_match_the_reference(raw: bytes, cuts: list[int], general: bool) -> None:
    """Arbitrary bytes, split anywhere, decode exactly as the plain reference algorithm says."""
    expected = reference_decode(raw)
    assert decode([raw], general=general) == expected
    assert decode(split_at(raw, cuts), general=general) == expected
    assert decode(one_byte_chunks(raw), general=general) == expected
    assert decode_data(split_at(raw, cuts), general=general) == data_outcome(expected)


@PROPERTY_SETTINGS
@given(
    raw=stream_bytes,
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    limit=st.integers(2, 40),
    general=st.booleans(),
)
def test_arbitrary_bytes_with_small_limit(
    raw: bytes, cuts: list[int], limit: int, general: bool
) -> None:
    """With a small limit, only SSEError is raised, and whether it is does not depend on splits.

    When it is not raised the events are the reference's; when it is, the events delivered
    before it are a prefix of the reference's.
    """
    unlimited = reference_decode(raw).events
    breaks = reference_breaks_limit(raw, limit)
    for chunks in ([raw], split_at(raw, cuts), one_byte_chunks(raw)):
        events, raised = decode_until_error(chunks, max_buffer_size=limit, general=general)
        assert raised == breaks
        if raised:
            assert events == unlimited[: len(events)]
        else:
            assert events == unlimited


# -- the benchmark harness ----------------------------------------------------------------------


def test_benchmark_quick_mode_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``benchmarks/bench_sse.py --quick`` runs and reports the four configurations."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sse.py"
    spec = importlib.util.spec_from_file_location("bench_sse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--read-size", "1000"])
    lines = capsys.readouterr().out.splitlines()
    assert "201 events" in lines[0]
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "LF",
        "CRLF",
        "LF, general path",
        "LF, feed_data (bytes)",
    ]
    assert all("MB/s best" in line and "events/s" in line for line in lines[1:])
