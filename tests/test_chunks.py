"""Tests of ChunkParser: streamed events into updates, with the repeated-chunk shortcut.

Every test compares the parser with the full path (``loads_update`` of each event and a
plain accumulator fed those updates): the shortcut must give the same updates and the same
assembled completion, for any stream. No I/O.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from inference._accumulate import ChatCompletionsAccumulator
from inference._chunks import ChunkParser
from inference._serialization import loads_update
from inference.models import StreamingChatCompletionsUpdate

ID = "chatcmpl-1"
FILTER = {"hate": {"filtered": False, "severity": "safe"}}


def event(content: Any = "", **over: Any) -> dict[str, Any]:
    """A chunk in the OpenAI / Azure shape with one choice."""
    choice: dict[str, Any] = {
        "index": 0,
        "delta": {"content": content},
        "logprobs": None,
        "finish_reason": None,
    }
    choice.update(over.pop("choice", {}))
    body: dict[str, Any] = {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": 1736389076,
        "model": "gpt-4o",
        "system_fingerprint": "fp_1",
        "choices": [choice],
    }
    body.update(over)
    return body


def encode(body: dict[str, Any], style: str = "orjson") -> bytes:
    """``body`` as a service might write it: compact UTF-8, ASCII escapes, or with spaces."""
    if style == "ascii":
        return json.dumps(body, separators=(",", ":")).encode()
    if style == "spaced":
        return json.dumps(body, ensure_ascii=False).encode()
    return orjson.dumps(body)


def full_path(
    events: list[bytes],
) -> tuple[list[StreamingChatCompletionsUpdate | None], ChatCompletionsAccumulator]:
    """What each event gives without the shortcut, and the accumulator fed those updates."""
    accumulator = ChatCompletionsAccumulator()
    updates: list[StreamingChatCompletionsUpdate | None] = []
    for data in events:
        try:
            update: StreamingChatCompletionsUpdate | None = loads_update(data)
        except ValueError:
            update = None
        if update is not None:
            accumulator.add(update)
        updates.append(update)
    return updates, accumulator


def through_parser(
    events: list[bytes],
) -> tuple[list[StreamingChatCompletionsUpdate | None], ChunkParser]:
    parser = ChunkParser(ChatCompletionsAccumulator())
    return [parser.parse(data) for data in events], parser


def assert_same(events: list[bytes]) -> ChunkParser:
    """The parser and the full path agree on every update (extras included) and the result."""
    expected, accumulator = full_path(events)
    got, parser = through_parser(events)
    assert len(got) == len(expected)
    for data, mine, theirs in zip(events, got, expected, strict=True):
        if mine is None:  # left to the stream: [DONE], bad JSON, error objects
            assert theirs is None or "error" in orjson.loads(data)
            continue
        assert theirs is not None
        assert mine.as_dict() == theirs.as_dict()
        assert mine == theirs
        assert mine.extra == theirs.extra
        for a, b in zip(mine.choices, theirs.choices, strict=True):
            assert a.extra == b.extra
            assert a.delta.extra == b.delta.extra
    # Every update is counted: by the accumulator's add(), or as a repeat merged by its text.
    assert parser.accumulator.count + parser.repeats == accumulator.count
    assert parser.accumulator.result().as_dict() == accumulator.result().as_dict()
    return parser


def test_a_plain_stream_parses_each_chunk_after_the_first_as_a_repeat() -> None:
    texts = ["Hel", "lo", ", ", "wörld", "", "!"]
    events = [orjson.dumps(event(t)) for t in texts]
    parser = assert_same(events)
    assert parser.repeats == len(texts) - 1
    assert parser.accumulator.result().choices[0].message.content == "Hello, wörld!"


def test_a_chunk_with_empty_text_is_not_a_template() -> None:
    """A stream's first chunk (the role, empty text) and a finish chunk with empty text are
    not what later chunks repeat: no template is built from them, even when one repeats."""
    role = orjson.dumps(event("", choice={"delta": {"role": "assistant", "content": ""}}))
    parser = assert_same([role, role])
    assert parser.repeats == 0
    texts = ["Hel", "lo", "!"]
    parser = assert_same([role] + [orjson.dumps(event(t)) for t in texts])
    assert parser.repeats == len(texts) - 1
    assert parser.accumulator.result().choices[0].message.content == "Hello!"
    assert parser.accumulator.result().choices[0].message.role == "assistant"


def test_chunks_that_all_carry_the_role_repeat() -> None:
    """Some services send the role (and a finish reason) with every chunk: known and unknown
    role values alike, those chunks repeat each other."""
    for role in ("assistant", "narrator"):
        texts = ["a", "b", "c"]
        events = [
            orjson.dumps(event(t, choice={"delta": {"role": role, "content": t}})) for t in texts
        ]
        parser = assert_same(events)
        assert parser.repeats == len(texts) - 1, role
        assert parser.accumulator.result().choices[0].message.role == role
    events = [orjson.dumps(event(t, choice={"finish_reason": "length"})) for t in "xyz"]
    assert assert_same(events).repeats == 2


def test_text_with_quotes_backslashes_and_escapes_is_read_exactly() -> None:
    texts = ['say "hi"', "back\\slash\\", '\\"', "tab\tnew\nline", "\u2028 é 🎉", '"content":"x"']
    for style in ("orjson", "ascii"):
        events = [encode(event("first"), style)] + [encode(event(t), style) for t in texts]
        parser = assert_same(events)
        assert parser.repeats == len(texts)
        assert parser.accumulator.result().choices[0].message.content == "first" + "".join(texts)


def test_a_change_outside_the_text_is_parsed_in_full() -> None:
    events = [
        orjson.dumps(event("a")),
        orjson.dumps(event("b", created=1736389077)),  # another second
        orjson.dumps(event("c", created=1736389077)),
        orjson.dumps(event("d", created=1736389077, choice={"finish_reason": "stop"})),
        orjson.dumps(event("e", id="other")),
    ]
    parser = assert_same(events)
    assert parser.repeats == 1  # only "c" repeats the event before it


def test_an_event_that_starts_and_ends_like_the_template_but_differs_inside() -> None:
    """The text between the prefix and the suffix must be one JSON string: here it is not,
    and the event (valid JSON, another shape) is parsed in full."""
    template = b'{"choices":[{"index":0,"delta":{"content":"a"}}],"z":"q"}'
    sneaky = (
        b'{"choices":[{"index":0,"delta":{"content":"a"}}],"w":"x",'
        b'"k":[{"index":0,"delta":{"content":"b"}}],"z":"q"}'
    )
    parser = assert_same([template, sneaky])
    assert parser.repeats == 0
    # The prefix's last quote and the suffix's first quote are the same byte here:
    overlap = b'{"choices":[{"index":0,"delta":{"content":"}}],"z":"q"}'
    parser = assert_same([template, overlap])
    assert parser.repeats == 0


def test_shapes_that_are_never_templates() -> None:
    """Tool calls, reasoning text, usage, logprobs, two choices, a second "content" key and
    spaced JSON are parsed in full every time (the result is still exact)."""
    call = {"index": 0, "id": "c", "type": "function", "function": {"arguments": "{"}}
    shapes = [
        event("x", choice={"delta": {"content": "x", "tool_calls": [call]}}),
        event("x", choice={"delta": {"content": "x", "reasoning_content": "r"}}),
        event("x", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
        event("x", choice={"logprobs": {"token_logprobs": [-0.1]}}),
        event("x", choices=[{"index": 0, "delta": {"content": "x"}}] * 2),
        event("x", choice={"note": {"content": "y"}}),
        event(None),
    ]
    for shape in shapes:
        parser = assert_same([orjson.dumps(shape)] * 3)
        assert parser.repeats == 0, shape
    parser = assert_same([encode(event("x"), "spaced")] * 3)
    assert parser.repeats == 0


def test_repeated_updates_own_their_extra_mappings() -> None:
    """Nested extra values (content filter results) are copied for each update: changing one
    update changes neither the next one nor the assembled completion."""
    events = [orjson.dumps(event(t, choice={"content_filter_results": FILTER})) for t in "abc"]
    parser = ChunkParser(ChatCompletionsAccumulator())
    first = parser.parse(events[0])
    second = parser.parse(events[1])
    assert first is not None and second is not None
    assert parser.repeats == 1
    second.choices[0].extra["content_filter_results"]["hate"]["filtered"] = True  # type: ignore[index]
    second.extra["system_fingerprint"] = "changed"  # type: ignore[index]
    second.id = "changed"
    third = parser.parse(events[2])
    assert third is not None and parser.repeats == 2
    assert third.id == ID
    assert third.choices[0]["content_filter_results"] == FILTER
    assert third["system_fingerprint"] == "fp_1"
    result = parser.accumulator.result()
    assert result.choices[0]["content_filter_results"] == FILTER
    assert result.choices[0].message.content == "abc"


def test_events_the_parser_does_not_take_reset_the_template() -> None:
    """[DONE], bad JSON and error objects return None; the next chunk is parsed in full
    (``forget`` does the same for updates the caller adds itself)."""
    parser = ChunkParser(ChatCompletionsAccumulator())
    chunk = orjson.dumps(event("a"))
    for other in (b"[DONE]", b"{not json", b'{"error":{"message":"no"}}'):
        assert parser.parse(chunk) is not None
        assert parser.parse(other) is None
        repeats = parser.repeats
        assert parser.parse(chunk) is not None
        assert parser.repeats == repeats  # parsed in full
    assert parser.parse(chunk) is not None
    repeats = parser.repeats
    parser.forget()
    assert parser.parse(chunk) is not None
    assert parser.repeats == repeats


def test_only_the_delta_content_key_is_a_template() -> None:
    """A second "content" key (a duplicate the parser overrides, one spelled with an escape or
    with a space before its colon, one in an extra) keeps the event from being a template:
    otherwise a later event changing that other string would be read as new text."""
    shapes = [
        '{"id":"x","choices":[{"index":0,"delta":{"content":"TEXT","content" :"a"}}]}',
        '{"id":"x","choices":[{"index":0,"delta":{"content":"TEXT","\\u0063ontent":"a"}}]}',
        '{"id":"x","choices":[{"index":0,"delta":{"content" :"a"},"note":{"content":"TEXT"}}]}',
        '{"x\\"content":"TEXT","choices":[{"index":0,"delta":{"\\u0063ontent":"a"}}]}',
        '{"choices":[{"index":0,"delta":{"\\u0063ontent":"a"}}],"note":{"content":"TEXT"}}',
    ]
    for shape in shapes:
        parser = assert_same([shape.replace("TEXT", text).encode() for text in ("a", "EVIL", "b")])
        assert parser.repeats == 0, shape


def test_the_accumulator_does_not_keep_the_template_nested_values() -> None:
    """After repeats, the accumulator holds the last update's nested extra values, as after
    full parses: changing the first update afterwards does not change the result."""
    events = [
        orjson.dumps(event(t, choice={"content_filter_results": FILTER}, x=[1])) for t in "abc"
    ]
    _, accumulator = full_path(events)
    got, parser = through_parser(events)
    assert parser.repeats == 2
    first = got[0]
    assert first is not None
    first.choices[0].extra["content_filter_results"]["hate"]["filtered"] = True  # type: ignore[index]
    first.extra["x"].append(2)  # type: ignore[index]
    assert parser.accumulator.result().as_dict() == accumulator.result().as_dict()


def test_mutable_id_model_or_object_values_are_not_shared() -> None:
    """A service that sends a list as id (or model, or object) gets every event parsed in
    full, so no two updates share it."""
    for field in ("id", "model", "object"):
        events = [orjson.dumps(event(t, **{field: ["v"]})) for t in "abc"]
        parser = assert_same(events)
        assert parser.repeats == 0, field


def test_deeply_nested_extras_are_parsed_in_full() -> None:
    """Extras nested deeper than the copy limit are not templates (and never overflow the
    stack); shallower nesting is."""
    deep = "[" * 600 + '"leaf"' + "]" * 600  # deeper than orjson.dumps writes
    events = [
        orjson.dumps(event(t, choice={"f": "DEEP"})).replace(b'"DEEP"', deep.encode())
        for t in "abc"
    ]
    parser = assert_same(events)
    assert parser.repeats == 0
    shallow: Any = "leaf"
    for _ in range(20):
        shallow = {"k": shallow}
    parser = assert_same([orjson.dumps(event(t, choice={"f": shallow})) for t in "abc"])
    assert parser.repeats == 2


_text = st.text(
    st.one_of(st.sampled_from('"\\/\n\t{}[],:é🎉\u2028'), st.characters(codec="utf-8")), max_size=8
)
_step = st.one_of(
    st.builds(lambda t: event(t), _text),
    st.builds(lambda t: event(t), _text),
    st.builds(lambda t: event(t, created=1736389077), _text),
    st.builds(lambda t: event(t, choice={"finish_reason": "length"}), _text),
    st.builds(lambda t: event(t, choice={"content_filter_results": FILTER}), _text),
    st.builds(lambda t: event(t, choice={"delta": {"role": "assistant", "content": t}}), _text),
    st.builds(lambda t: event(t, choice={"index": 1}), _text),
    st.builds(lambda t: event(t, choice={"delta": {"content": t, "reasoning_content": t}}), _text),
    st.builds(lambda t: event(t, extra_field=[t]), _text),
    st.just(event(None, choice={"delta": {}, "finish_reason": "stop"})),
    st.just({"id": ID, "choices": [], "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
)


@settings(max_examples=300)
@given(
    steps=st.lists(st.tuples(_step, st.sampled_from(["orjson", "ascii", "orjson"])), max_size=25)
)
def test_property_any_stream_gives_what_the_full_path_gives(
    steps: list[tuple[dict[str, Any], str]],
) -> None:
    assert_same([encode(body, style) for body, style in steps])
