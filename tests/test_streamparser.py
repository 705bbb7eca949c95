"""Tests of StreamParser, the sans-I/O parser of a streamed chat completion (no I/O here).

Every body is fed whole, one byte at a time and at seeded random split points, and must give
the same updates, the same end and the same assembled answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from _fault_server import chunk_event

from inference import (
    ResponseDecodeError,
    ResponseTooLargeError,
    SSEError,
    StreamInterruptedError,
    StreamServiceError,
)
from inference._streamparser import StreamParser, StreamState, is_event_stream
from inference.exceptions import IdleTimeoutError, InferenceError
from inference.models import ChatCompletions, StreamingChatCompletionsUpdate

SECRET = "sk-this-is-the-secret-api-key-0123456789"


WORDS = ["Hello", " there", ", ", "wörld", "!", " How", " are", " you?"]
TEXT = "".join(WORDS)
BODY = (
    chunk_event("")
    + b": keep-alive\n\n"
    + b"".join(chunk_event(w) for w in WORDS)
    + b"event: ping\ndata: {}\n\n"
    + chunk_event("", finish="stop")
)
DONE = b"data: [DONE]\n\n"


def splits(raw: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """``raw`` whole, one byte at a time, and cut at 10 seeded random sets of offsets."""
    yield "whole", [raw]
    yield "bytes", [raw[i : i + 1] for i in range(len(raw))]
    rng = random.Random(len(raw))
    for n in range(10):
        cuts = sorted(rng.randrange(len(raw) + 1) for _ in range(rng.randrange(1, 8)))
        yield f"random {n}", [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def run(
    pieces: list[bytes], *, eof: bool = True, parser: StreamParser | None = None
) -> tuple[list[StreamingChatCompletionsUpdate], BaseException | None, StreamParser]:
    """Feed ``pieces`` (then the end of the body), taking updates as they become ready."""
    parser = parser or StreamParser()
    updates: list[StreamingChatCompletionsUpdate] = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (update := parser.next_update()) is not None:
                updates.append(update)
        if eof:
            parser.feed_eof()
        while (update := parser.next_update()) is not None:
            updates.append(update)
    except InferenceError as exc:
        return updates, exc, parser
    return updates, None, parser


def text_of(updates: list[StreamingChatCompletionsUpdate]) -> str:
    """The content deltas, joined."""
    return "".join(u.choices[0].delta.content or "" for u in updates if u.choices)


@pytest.mark.parametrize(("way", "pieces"), list(splits(BODY + DONE)))
def test_a_whole_stream_gives_the_same_updates_however_it_is_cut(
    way: str, pieces: list[bytes]
) -> None:
    """Comments and ping events are skipped; [DONE] ends the stream; the final answer is
    assembled, whatever the split of the bytes."""
    updates, error, parser = run(pieces)
    assert error is None, way
    assert len(updates) == len(WORDS) + 2
    assert text_of(updates) == TEXT
    assert parser.state is StreamState.DONE and parser.complete
    final = parser.partial()
    assert isinstance(final, ChatCompletions)
    assert final.choices[0].message.content == TEXT
    assert final.choices[0].finish_reason == "stop"
    assert parser.count == len(updates)
    assert parser.next_update() is None  # and stays ended


def test_events_after_done_are_dropped_and_later_bytes_ignored() -> None:
    """The stream ends at [DONE]: events behind it in the same read, and bytes fed later, give
    nothing."""
    parser = StreamParser()
    parser.feed(chunk_event("a") + DONE + chunk_event("after"))
    assert parser.state is StreamState.DONE
    assert parser.feed(chunk_event("later")) is False
    updates, error, _ = run([], parser=parser)
    assert error is None and text_of(updates) == "a"


@pytest.mark.parametrize(("way", "pieces"), list(splits(BODY)))
def test_a_body_that_ends_before_done_is_cut_after_its_updates(
    way: str, pieces: list[bytes]
) -> None:
    """Every update that arrived comes first; then StreamInterruptedError, once, with all
    of them in partial."""
    updates, error, parser = run(pieces)
    assert isinstance(error, StreamInterruptedError), way
    assert text_of(updates) == TEXT
    assert error.partial.choices[0].message.content == TEXT
    assert f"{len(updates)} updates received" in str(error)
    assert parser.state is StreamState.FAILED and not parser.complete
    assert parser.next_update() is None


@pytest.mark.parametrize(
    "event",
    [
        b'event: error\ndata: {"error": {"code": "overloaded", "message": "try later"}}\n\n',
        b'data: {"error": {"code": "overloaded", "message": "try later"}}\n\n',
    ],
)
def test_an_error_event_ends_the_stream_after_the_updates_before_it(event: bytes) -> None:
    """An error event (named, or an error object in a message event) raises StreamServiceError
    after the updates before it; what follows is not parsed."""
    body = chunk_event("one") + chunk_event(" two") + event + chunk_event("never") + DONE
    for way, pieces in splits(body):
        updates, error, parser = run(pieces)
        assert isinstance(error, StreamServiceError), way
        assert error.code == "overloaded" and error.message == "try later"
        assert text_of(updates) == "one two"
        assert error.partial.choices[0].message.content == "one two"
        assert parser.state is StreamState.FAILED and not parser.complete


def test_an_event_that_is_not_a_chunk_is_a_decode_error() -> None:
    """Data that is not JSON raises ResponseDecodeError naming the problem, after the
    updates before it."""
    updates, error, _ = run([chunk_event("ok") + b"data: {not json\n\n" + DONE])
    assert isinstance(error, ResponseDecodeError)
    assert "not a chat-completions chunk" in str(error)
    assert text_of(updates) == "ok" and error.partial.choices[0].message.content == "ok"


def raw_chunk(delta: dict[str, Any]) -> bytes:
    """One ``data:`` event whose delta is given as is (any JSON types)."""
    body = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
    return b"data: " + orjson.dumps(body) + b"\n\n"


NOT_TEXT = [
    (raw_chunk({"content": 5}), "content must be a string or null, got int 5"),
    (raw_chunk({"content": ["a", "b"]}), "content must be a string or null, got list"),
    (
        raw_chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {"index": 0, "id": "t", "function": {"name": "f", "arguments": {"a": 1}}}
                ],
            }
        ),
        "function.arguments must be a string or null, got dict",
    ),
]


@pytest.mark.parametrize(("event", "message"), NOT_TEXT)
def test_a_chunk_whose_text_is_not_a_string_is_a_decode_error(event: bytes, message: str) -> None:
    """Non-string content or tool-call arguments: ResponseDecodeError saying which field and
    what came, after the updates before it, whose answer stays whole in partial (never a bare
    TypeError when the answer is assembled)."""
    body = chunk_event("") + chunk_event("Hello") + event + chunk_event(" more") + DONE
    for way, pieces in splits(body):
        updates, error, parser = run(pieces)
        assert isinstance(error, ResponseDecodeError), way
        assert message in str(error)
        assert text_of(updates) == "Hello"
        assert error.partial.choices[0].message.content == "Hello"
        assert parser.partial().choices[0].message.content == "Hello"


def test_an_event_over_the_size_limit_fails_the_stream() -> None:
    """A line longer than max_event_size raises SSEError (after what came before it)."""
    parser = StreamParser(max_event_size=64)
    updates, error, _ = run([chunk_event("a")[:40], b"x" * 100], parser=parser)
    assert isinstance(error, SSEError) and updates == []


def test_a_reading_error_is_raised_after_the_queued_updates() -> None:
    """fail() (a timeout, a broken connection) is raised by next_update once the updates
    queued before it are taken, with them in partial; a later fail() changes nothing."""
    parser = StreamParser()
    parser.feed(chunk_event("one") + chunk_event(" two"))
    timeout = IdleTimeoutError("silent")
    parser.fail(timeout)
    parser.fail(IdleTimeoutError("again"))
    updates, error, _ = run([], eof=False, parser=parser)
    assert error is timeout and text_of(updates) == "one two"
    assert timeout.partial.choices[0].message.content == "one two"


@pytest.mark.parametrize(
    ("piece", "active"),
    [
        (chunk_event("a"), True),
        (b'event: error\ndata: {"error": "x"}\n\n', True),
        (DONE, True),
        (b": keep-alive\n\n", False),
        (b"event: ping\ndata: {}\n\n", False),
        (b"event: ping\ndata: {}\n\n" + chunk_event("a"), True),
        (b"event: ping\ndata: {}\n\nevent: ping\ndata: 1\n\n", False),
        (chunk_event("a")[:-1], False),  # an event not complete yet
    ],
)
def test_what_counts_as_activity_for_the_idle_timer(piece: bytes, active: bool) -> None:
    """Chunks, error events and [DONE] count as activity; comments and named events that carry
    no chat chunk (pings) do not, so a server sending only those is stalled."""
    assert StreamParser().feed(piece) is active


def test_service_errors_do_not_carry_keys_or_tokens() -> None:
    """An error event that echoes the key: the key is not in the message, repr, code or
    service message (redact is applied to what the service sent)."""
    event = {"error": {"code": f"bad-{SECRET}", "message": f"invalid key {SECRET} for this"}}
    body = b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
    redact: Callable[[str], str] = lambda text: text.replace(SECRET, "***")  # noqa: E731
    for data in (body, b"data: " + orjson.dumps(event) + b"\n\n"):
        _, error, _ = run([data], parser=StreamParser(redact=redact))
        assert isinstance(error, StreamServiceError)
        for text in (str(error), repr(error), error.message, error.code or ""):
            assert SECRET not in text and "***" in text


def test_decode_errors_do_not_carry_keys_or_tokens() -> None:
    """An event that is not a chunk and quotes the key: the error does not repeat it."""
    redact: Callable[[str], str] = lambda text: text.replace(SECRET, "***")  # noqa: E731
    _, error, _ = run([f"data: [{SECRET}\n\n".encode()], parser=StreamParser(redact=redact))
    assert isinstance(error, ResponseDecodeError)
    assert SECRET not in str(error) and SECRET not in repr(error)


def test_prime_parses_ahead_and_raises_early() -> None:
    """prime() parses the first event now (its error is raised by prime) and keeps its update
    for next_update."""
    parser = StreamParser()
    parser.feed(chunk_event("first") + chunk_event(" second"))
    assert parser.prime()
    assert parser.pending == 2 and parser.count == 1
    updates, _, _ = run([], eof=False, parser=parser)
    assert text_of(updates) == "first second"
    failing = StreamParser()
    failing.feed(b'event: error\ndata: {"error": "no"}\n\n')
    with pytest.raises(StreamServiceError):
        failing.prime()


@pytest.mark.parametrize(
    ("tail", "end"),
    [(DONE, StreamState.DONE), (b"", StreamInterruptedError), (b"fail", IdleTimeoutError)],
)
def test_a_parser_split_in_two_halves_gives_what_one_gives(tail: bytes, end: Any) -> None:
    """hand_over(): the input half keeps decoding, the output half parses the batches it is
    handed (small ones here) and ends as one parser would, with the accumulator (and what was
    parsed before the split) on its side."""
    body = BODY + (tail if tail != b"fail" else b"")
    for way, pieces in splits(body):
        reader = StreamParser()
        reader.feed(pieces[0])
        reader.prime()
        consumer = reader.hand_over()
        for piece in pieces[1:]:
            reader.feed(piece)
        if tail == b"fail":
            reader.fail(IdleTimeoutError("silent"))
        else:
            reader.feed_eof()
        while batch := reader.take_events(3):
            consumer.put_events(batch)
        assert reader.take_events(3) == []
        updates, error, _ = run([], eof=False, parser=consumer)
        assert text_of(updates) == TEXT, way
        if end is StreamState.DONE:
            assert error is None and consumer.complete
            assert consumer.partial().choices[0].message.content == TEXT
        else:
            assert isinstance(error, end), way
            assert error.partial.choices[0].message.content == TEXT


def test_close_stops_the_updates_and_keeps_a_finished_answer() -> None:
    """close() drops what is queued (state CLOSED); a stream taken whole to [DONE] stays DONE."""
    parser = StreamParser()
    parser.feed(chunk_event("a") + chunk_event("b"))
    parser.close()
    assert parser.next_update() is None and parser.state is StreamState.CLOSED
    assert not parser.complete
    done = StreamParser()
    run([chunk_event("a") + DONE], parser=done)
    done.close()
    assert done.state is StreamState.DONE and done.complete


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("Text/Event-Stream; charset=UTF-8", True),
        ("  TEXT/EVENT-STREAM  ", True),
        ("application/json", False),
        ("text/event-stream-ish", False),
        ("", False),
        (None, False),
    ],
)
def test_the_event_stream_media_type_is_matched_without_case(
    value: str | None, expected: bool
) -> None:
    """Media types are case-insensitive (RFC 9110); parameters do not matter."""
    assert is_event_stream(value) is expected


# -- max_stream_bytes --------------------------------------------------------------------------


@pytest.mark.parametrize(("way", "pieces"), list(splits(BODY + DONE)))
def test_a_stream_at_its_byte_limit_passes(way: str, pieces: list[bytes]) -> None:
    """A body of exactly max_stream_bytes is read whole, however it is cut."""
    parser = StreamParser(max_stream_bytes=len(BODY + DONE))
    updates, error, parser = run(pieces, parser=parser)
    assert error is None, way
    assert text_of(updates) == TEXT and parser.complete


@pytest.mark.parametrize(("way", "pieces"), list(splits(BODY + DONE)))
def test_a_stream_over_its_byte_limit_ends_with_response_too_large(
    way: str, pieces: list[bytes]
) -> None:
    """One byte over max_stream_bytes: the updates of the reads before the one that crossed
    the limit come first, then ResponseTooLargeError (raised once) naming the limit, the
    server and the option, with them in partial; the bytes fed later are ignored."""
    limit = len(BODY + DONE) - 1
    parser = StreamParser(max_stream_bytes=limit, server="http://127.0.0.1:1")
    updates, error, parser = run(pieces, parser=parser)
    assert isinstance(error, ResponseTooLargeError), way
    message = str(error)
    assert f"max_stream_bytes ({limit} bytes" in message
    assert "http://127.0.0.1:1" in message
    assert "ChatCompletionsClient(..., max_stream_bytes=...)" in message
    partial = error.partial
    assert (partial.choices[0].message.content if partial.choices else "") == text_of(updates)
    assert TEXT.startswith(text_of(updates))  # all of it, when only [DONE] was cut off
    assert parser.state is StreamState.FAILED
    assert parser.feed(chunk_event("later")) is False
    assert parser.next_update() is None


def test_the_byte_limit_counts_every_read_and_none_turns_it_off() -> None:
    """Keep-alive comments count as body bytes too (a server that sends only those is cut
    as well); None reads any amount."""
    comments = b": keep-alive\n\n" * 1000
    parser = StreamParser(max_stream_bytes=len(comments) - 1)
    assert parser.feed(comments[:-1]) is False and parser.state is StreamState.OPEN
    parser.feed(comments[-1:] + chunk_event("x"))
    with pytest.raises(ResponseTooLargeError):
        parser.next_update()
    unlimited = StreamParser(max_stream_bytes=None)
    updates, error, _ = run([comments * 100, BODY, DONE], parser=unlimited)
    assert error is None and text_of(updates) == TEXT


def test_the_output_side_of_a_split_parser_raises_the_limit_error() -> None:
    """The sync API splits the parser: the input side counts and ends the stream; the error
    crosses in the last batch and is raised by the output side with its partial."""
    reader = StreamParser(max_stream_bytes=len(chunk_event("a")) * 2)
    consumer = reader.hand_over()
    reader.feed(chunk_event("a"))
    reader.feed(chunk_event("b"))
    reader.feed(chunk_event("c"))
    consumer.put_events(reader.take_events(10))
    updates, error, _ = run([], eof=False, parser=consumer)
    assert text_of(updates) == "ab"
    assert isinstance(error, ResponseTooLargeError)
    assert error.partial.choices[0].message.content == "ab"
