"""Tests of ChatCompletionsAccumulator: streamed updates merged into one ChatCompletions.

Pure protocol tests: updates are parsed from wire JSON with ``loads_update`` (or built
directly), no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import inference
from inference import ChatCompletionsAccumulator
from inference._accumulate import ChatCompletionsAccumulator as _InternalAccumulator
from inference._serialization import loads_update
from inference.models import (
    ChatCompletions,
    ChatRole,
    CompletionsFinishReason,
    CompletionsUsage,
    StreamingChatChoiceUpdate,
    StreamingChatCompletionsUpdate,
    StreamingChatResponseMessageUpdate,
    StreamingChatResponseToolCallUpdate,
    StreamingFunctionCallUpdate,
)

CREATED = 1736389076
ID = "chatcmpl-abc"
MODEL = "gpt-4o"


def chunk(*choices: dict[str, Any], **top: Any) -> StreamingChatCompletionsUpdate:
    """A chunk as a service sends it (id, created, model filled in), parsed from JSON."""
    body: dict[str, Any] = {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": list(choices),
    }
    body.update(top)
    return loads_update(orjson.dumps(body))


def delta(index: int = 0, finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """One streamed choice with the given delta fields."""
    return {"index": index, "delta": fields, "finish_reason": finish_reason}


def tc(
    index: int | None = None,
    id: str | None = None,
    name: str | None = None,
    arguments: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    """One tool-call fragment; fields left None are not sent."""
    frag: dict[str, Any] = {}
    if index is not None:
        frag["index"] = index
    if id is not None:
        frag["id"] = id
    if type is not None:
        frag["type"] = type
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        frag["function"] = function
    return frag


def accumulate(updates: list[StreamingChatCompletionsUpdate]) -> ChatCompletions:
    """Feed every update to a fresh accumulator and return the result."""
    acc = ChatCompletionsAccumulator()
    for update in updates:
        acc.add(update)
    return acc.result()


def calls(result: ChatCompletions, choice: int = 0) -> list[tuple[str, str, str, str]]:
    """(id, type, name, arguments) of each tool call of one choice."""
    tool_calls = result.choices[choice].message.tool_calls
    assert tool_calls is not None
    return [(c.id, c.type, c.function.name, c.function.arguments) for c in tool_calls]


# -- export -------------------------------------------------------------------------------


def test_accumulator_is_exported_from_the_package() -> None:
    """`inference.ChatCompletionsAccumulator` is public and is the accumulator streams use."""
    assert "ChatCompletionsAccumulator" in inference.__all__
    assert inference.ChatCompletionsAccumulator is _InternalAccumulator


# -- content, role, finish reason, usage, top-level fields -----------------------------------


def test_content_is_concatenated_and_fields_are_kept() -> None:
    """Content deltas join in order; id, created, model, role, finish_reason and usage are kept."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content="")),
            chunk(delta(content="Hel")),
            chunk(delta(content="lo")),
            chunk(delta(content=", world")),
            chunk(
                delta(finish_reason="stop"),
                usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
            ),
        ]
    )
    assert result.id == ID
    assert result.model == MODEL
    assert result.created == datetime.fromtimestamp(CREATED, UTC)
    assert result.object == "chat.completion"
    assert len(result.choices) == 1
    choice = result.choices[0]
    assert choice.index == 0
    assert choice.message.role == ChatRole.ASSISTANT
    assert choice.message.content == "Hello, world"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == CompletionsFinishReason.STOPPED
    assert result.usage == CompletionsUsage(prompt_tokens=5, completion_tokens=4, total_tokens=9)


def test_updates_built_by_hand_with_non_string_text_are_refused_whole() -> None:
    """add() refuses an update whose content or tool-call arguments are not strings with a
    TypeError naming the field, before merging any of it: result() still assembles what came
    before (the stream parser refuses such chunks earlier, as ResponseDecodeError)."""
    acc = ChatCompletionsAccumulator()
    acc.add(chunk(delta(role="assistant", content="Hi")))
    bad_content = StreamingChatCompletionsUpdate(
        id="other",
        choices=[
            StreamingChatChoiceUpdate(delta=StreamingChatResponseMessageUpdate(content="ok")),
            StreamingChatChoiceUpdate(
                index=1,
                delta=StreamingChatResponseMessageUpdate(content=7),  # type: ignore[arg-type]
            ),
        ],
    )
    bad_arguments = StreamingChatCompletionsUpdate(
        choices=[
            StreamingChatChoiceUpdate(
                delta=StreamingChatResponseMessageUpdate(
                    tool_calls=[
                        StreamingChatResponseToolCallUpdate(
                            index=0,
                            function=StreamingFunctionCallUpdate(
                                name="f",
                                arguments={"a": 1},  # type: ignore[arg-type]
                            ),
                        )
                    ]
                )
            )
        ]
    )
    for update, field in ((bad_content, "content"), (bad_arguments, "arguments")):
        with pytest.raises(TypeError, match=f"{field} must be a string or None"):
            acc.add(update)
    result = acc.result()
    assert acc.count == 1 and result.id == ID
    assert [c.message.content for c in result.choices] == ["Hi"]


def test_empty_accumulator_gives_empty_completion() -> None:
    """With nothing added, the result has no choices, no usage and a zero count."""
    acc = ChatCompletionsAccumulator()
    result = acc.result()
    assert acc.count == 0
    assert result.choices == []
    assert result.usage is None
    assert result.id == ""


def test_count_counts_every_update_including_empty_choices() -> None:
    """`count` counts each update added, also those without choices."""
    acc = ChatCompletionsAccumulator()
    acc.add(chunk())
    acc.add(chunk(delta(content="a")))
    acc.add(StreamingChatCompletionsUpdate())
    assert acc.count == 3


def test_role_defaults_to_assistant_and_keeps_a_sent_role() -> None:
    """A stream that never sends a role gives `assistant`; a sent role is kept."""
    assert accumulate([chunk(delta(content="x"))]).choices[0].message.role == ChatRole.ASSISTANT
    result = accumulate([chunk(delta(role="tool")), chunk(delta(content="x"))])
    assert result.choices[0].message.role == "tool"


def test_unknown_finish_reason_stays_a_string() -> None:
    """A finish reason the library does not know is kept as the service's string."""
    result = accumulate([chunk(delta(content="x")), chunk(delta(finish_reason="end_turn"))])
    assert result.choices[0].finish_reason == "end_turn"


def test_usage_only_final_chunk_is_taken() -> None:
    """`include_usage` streams end with an empty-choices chunk carrying the usage."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content="Hi")),
            chunk(delta(finish_reason="stop")),
            chunk(usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}),
        ]
    )
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (3, 1)
    assert result.usage.total_tokens == 4
    assert result.choices[0].message.content == "Hi"
    assert result.choices[0].finish_reason == "stop"


def test_null_usage_does_not_erase_earlier_usage() -> None:
    """A later `"usage": null` (Azure OpenAI annotation events) keeps the usage seen before."""
    result = accumulate(
        [
            chunk(delta(content="x", finish_reason="stop"), usage={"total_tokens": 7}),
            chunk(usage=None),
        ]
    )
    assert result.usage is not None
    assert result.usage.total_tokens == 7


def test_multiple_choices_interleaved() -> None:
    """Deltas of n choices arriving interleaved are kept apart and ordered by index."""
    result = accumulate(
        [
            chunk(delta(1, role="assistant", content="")),
            chunk(delta(0, role="assistant", content="")),
            chunk(delta(1, content="B1 ")),
            chunk(delta(0, content="A1 ")),
            chunk(delta(0, content="A2"), delta(1, content="B2")),
            chunk(delta(1, finish_reason="length")),
            chunk(delta(0, finish_reason="stop")),
        ]
    )
    assert [c.index for c in result.choices] == [0, 1]
    assert result.choices[0].message.content == "A1 A2"
    assert result.choices[1].message.content == "B1 B2"
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[1].finish_reason == "length"


# -- tool calls ---------------------------------------------------------------------------


def test_tool_calls_merged_by_index_openai_style() -> None:
    """OpenAI style: the first fragment has id, type and name; later ones only arguments."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content=None)),
            chunk(delta(tool_calls=[tc(0, "call_a", "get_weather", "", "function")])),
            chunk(delta(tool_calls=[tc(0, arguments='{"ci')])),
            chunk(delta(tool_calls=[tc(0, arguments='ty": "Paris"}')])),
            chunk(delta(tool_calls=[tc(1, "call_b", "get_time", "", "function")])),
            chunk(delta(tool_calls=[tc(1, arguments="{}")])),
            chunk(delta(finish_reason="tool_calls")),
        ]
    )
    assert calls(result) == [
        ("call_a", "function", "get_weather", '{"city": "Paris"}'),
        ("call_b", "function", "get_time", "{}"),
    ]
    assert result.choices[0].finish_reason == CompletionsFinishReason.TOOL_CALLS
    assert result.choices[0].message.content is None


def test_tool_call_without_index_single_fragment_mistral_style() -> None:
    """Mistral: one fragment with id, name and the whole arguments, and no index."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content="")),
            chunk(
                delta(
                    finish_reason="tool_calls",
                    tool_calls=[tc(id="Sanitized", name="get_weather", arguments='{"city": "X"}')],
                ),
                usage={"completion_tokens": 23, "prompt_tokens": 100, "total_tokens": 123},
            ),
        ]
    )
    assert calls(result) == [("Sanitized", "function", "get_weather", '{"city": "X"}')]
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.usage is not None and result.usage.total_tokens == 123


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    """Without index, two calls with different ids stay two calls, in arrival order."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(id="a", name="f", arguments='{"x":1}')])),
            chunk(delta(tool_calls=[tc(id="b", name="g", arguments='{"y":2}')])),
        ]
    )
    assert calls(result) == [("a", "function", "f", '{"x":1}'), ("b", "function", "g", '{"y":2}')]


def test_fragments_without_id_or_index_continue_the_last_call() -> None:
    """Only the first fragment has an id; later ones have neither id nor index."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(id="call_1", name="lookup", arguments='{"q"')])),
            chunk(delta(tool_calls=[tc(arguments=': "cats')])),
            chunk(delta(tool_calls=[tc(arguments='"}')])),
            chunk(delta(tool_calls=[tc(id="call_2", name="count", arguments="{")])),
            chunk(delta(tool_calls=[tc(arguments="}")])),
        ]
    )
    assert calls(result) == [
        ("call_1", "function", "lookup", '{"q": "cats"}'),
        ("call_2", "function", "count", "{}"),
    ]


def test_fragment_with_only_an_id_continues_the_call_with_that_id() -> None:
    """A later fragment that repeats the id (and has no index) goes to the call with that id."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(id="a", name="f", arguments="[1")])),
            chunk(delta(tool_calls=[tc(id="b", name="g", arguments="[2")])),
            chunk(delta(tool_calls=[tc(id="a", arguments=",3]")])),
            chunk(delta(tool_calls=[tc(id="b", arguments=",4]")])),
        ]
    )
    assert calls(result) == [("a", "function", "f", "[1,3]"), ("b", "function", "g", "[2,4]")]


def test_tool_call_indexes_out_of_order_and_with_gaps() -> None:
    """Indexes 0, 2, 1 arriving in that order (and interleaved) come out sorted by index."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(0, "c0", "f0", "")])),
            chunk(delta(tool_calls=[tc(2, "c2", "f2", "")])),
            chunk(delta(tool_calls=[tc(1, "c1", "f1", "")])),
            chunk(delta(tool_calls=[tc(2, arguments="{2}")])),
            chunk(delta(tool_calls=[tc(0, arguments="{0}")])),
            chunk(delta(tool_calls=[tc(1, arguments="{1}")])),
        ]
    )
    assert calls(result) == [
        ("c0", "function", "f0", "{0}"),
        ("c1", "function", "f1", "{1}"),
        ("c2", "function", "f2", "{2}"),
    ]


def test_tool_call_index_gap_keeps_existing_calls_only() -> None:
    """Indexes 0 and 3 only: two calls, nothing invented for the gap."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(3, "c3", "f3", "b")])),
            chunk(delta(tool_calls=[tc(0, "c0", "f0", "a")])),
        ]
    )
    assert calls(result) == [("c0", "function", "f0", "a"), ("c3", "function", "f3", "b")]


def test_repeated_id_type_and_name_are_not_concatenated() -> None:
    """Servers that repeat id, type and name in every fragment: they are set once."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(0, "call_x", "search", '{"a"', "function")])),
            chunk(delta(tool_calls=[tc(0, "call_x", "search", ": 1", "function")])),
            chunk(delta(tool_calls=[tc(0, "call_x", "search", "}", "function")])),
        ]
    )
    assert calls(result) == [("call_x", "function", "search", '{"a": 1}')]


def test_several_tool_calls_in_one_delta() -> None:
    """One delta may carry fragments of several calls at once."""
    result = accumulate(
        [
            chunk(delta(tool_calls=[tc(0, "a", "f", "{"), tc(1, "b", "g", "[")])),
            chunk(delta(tool_calls=[tc(1, arguments="]"), tc(0, arguments="}")])),
        ]
    )
    assert calls(result) == [("a", "function", "f", "{}"), ("b", "function", "g", "[]")]


def test_tool_calls_of_different_choices_stay_apart() -> None:
    """n=2 with tool calls: each choice has its own calls with the same indexes."""
    result = accumulate(
        [
            chunk(delta(0, tool_calls=[tc(0, "a0", "f", '{"c": 0')])),
            chunk(delta(1, tool_calls=[tc(0, "a1", "f", '{"c": 1')])),
            chunk(delta(1, tool_calls=[tc(0, arguments="}")])),
            chunk(delta(0, tool_calls=[tc(0, arguments="}")])),
        ]
    )
    assert calls(result, 0) == [("a0", "function", "f", '{"c": 0}')]
    assert calls(result, 1) == [("a1", "function", "f", '{"c": 1}')]


def test_missing_type_defaults_to_function() -> None:
    """A call whose fragments never name a type is a `function` call."""
    result = accumulate([chunk(delta(tool_calls=[tc(0, "a", "f", "{}")]))])
    assert calls(result)[0][1] == "function"


def test_tool_call_content_is_empty_string_when_the_service_sent_one() -> None:
    """Mistral sends `content: ""` next to its tool calls (also in its non-streamed body)."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content="")),
            chunk(delta(tool_calls=[tc(id="a", name="f", arguments="{}")])),
            chunk(delta(content="", finish_reason="tool_calls")),
        ]
    )
    assert result.choices[0].message.content == ""
    assert result.choices[0].message.tool_calls is not None


def test_tool_call_content_is_none_when_the_service_sent_null() -> None:
    """OpenAI sends `content: null` next to tool calls: the message content is None."""
    result = accumulate(
        [
            chunk(delta(role="assistant", content=None, tool_calls=[tc(0, "a", "f", "")])),
            chunk(delta(tool_calls=[tc(0, arguments="{}")])),
            chunk(delta(finish_reason="tool_calls")),
        ]
    )
    assert result.choices[0].message.content is None


def test_text_and_tool_calls_together() -> None:
    """A message with both text and tool calls keeps both."""
    result = accumulate(
        [
            chunk(delta(content="Let me check. ")),
            chunk(delta(tool_calls=[tc(0, "a", "f", "{}")])),
        ]
    )
    assert result.choices[0].message.content == "Let me check. "
    assert calls(result) == [("a", "function", "f", "{}")]


def test_tool_call_extra_fields_are_kept() -> None:
    """Unknown tool-call fields (a vendor's extension) stay reachable on the merged call."""
    frag = tc(0, "a", "f", "{}")
    frag["vendor_hint"] = "fast"
    result = accumulate([chunk(delta(tool_calls=[frag]))])
    tool_calls = result.choices[0].message.tool_calls
    assert tool_calls is not None
    assert tool_calls[0]["vendor_hint"] == "fast"


# -- unknown fields, Azure OpenAI annotations -------------------------------------------------


def test_choice_level_content_filter_results_are_kept() -> None:
    """Azure OpenAI annotation events (choice without delta) keep content_filter_results."""
    results = {"hate": {"filtered": False, "severity": "safe"}}
    annotation = loads_update(
        orjson.dumps(
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": None,
                        "content_filter_results": results,
                        "content_filter_offsets": {"check_offset": 0, "end_offset": 5},
                    }
                ],
                "usage": None,
            }
        )
    )
    assert annotation.choices[0].delta == StreamingChatResponseMessageUpdate()
    result = accumulate([chunk(delta(role="assistant", content="Hello")), annotation])
    choice = result.choices[0]
    assert choice.message.content == "Hello"
    assert choice["content_filter_results"] == results
    assert choice.extra["content_filter_offsets"] == {"check_offset": 0, "end_offset": 5}


def test_prompt_filter_results_are_kept_at_the_top_level() -> None:
    """The first Azure OpenAI event (empty choices, prompt_filter_results) is kept in extra."""
    prompt_results = [{"prompt_index": 0, "content_filter_results": {}}]
    first = loads_update(
        orjson.dumps(
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "prompt_filter_results": prompt_results,
                "choices": [],
                "usage": None,
            }
        )
    )
    result = accumulate([first, chunk(delta(role="assistant", content="Hi"))])
    assert result["prompt_filter_results"] == prompt_results
    assert result.choices[0].message.content == "Hi"


def test_annotation_events_do_not_overwrite_id_model_or_created() -> None:
    """Empty id and model and created=0 (annotation events) never replace real values."""
    annotation = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [{"index": 0, "finish_reason": None, "content_filter_results": {}}],
    }
    first = {**annotation, "choices": [], "prompt_filter_results": []}
    updates = [
        loads_update(orjson.dumps(first)),
        chunk(delta(role="assistant", content="A")),
        loads_update(orjson.dumps(annotation)),
        chunk(delta(content="B")),
        loads_update(orjson.dumps(annotation)),
    ]
    result = accumulate(updates)
    assert result.id == ID
    assert result.model == MODEL
    assert result.created == datetime.fromtimestamp(CREATED, UTC)
    assert result.choices[0].message.content == "AB"


def test_finish_reason_from_an_annotation_event_is_kept() -> None:
    """A content_filter finish arriving on a delta-less annotation event is the final reason."""
    updates = [
        chunk(delta(role="assistant", content="Hey")),
        loads_update(
            orjson.dumps(
                {
                    "id": "",
                    "created": 0,
                    "model": "",
                    "choices": [{"index": 0, "finish_reason": "content_filter"}],
                }
            )
        ),
    ]
    result = accumulate(updates)
    assert result.choices[0].finish_reason == CompletionsFinishReason.CONTENT_FILTERED
    assert result.choices[0].message.content == "Hey"


def test_reasoning_content_deltas_are_concatenated_into_message_extra() -> None:
    """Delta-level `reasoning_content` text is joined into message.extra['reasoning_content']."""
    result = accumulate(
        [
            chunk(delta(role="assistant", reasoning_content="Think")),
            chunk(delta(reasoning_content="ing...")),
            chunk(delta(content="Answer")),
            chunk(delta(reasoning_content=None)),
        ]
    )
    message = result.choices[0].message
    assert message.extra["reasoning_content"] == "Thinking..."
    assert message["reasoning_content"] == "Thinking..."
    assert message.content == "Answer"


def test_non_text_unknown_delta_fields_keep_the_last_value() -> None:
    """An unknown delta field that is not text (e.g. an object) keeps its last value."""
    result = accumulate(
        [
            chunk(delta(content="a", audio={"id": "x1"})),
            chunk(delta(content="b", audio={"id": "x2"})),
        ]
    )
    assert result.choices[0].message.extra["audio"] == {"id": "x2"}


def test_top_level_unknown_fields_are_kept() -> None:
    """Unknown top-level fields of the chunks (system_fingerprint) reach the completion."""
    result = accumulate([chunk(delta(content="a"), system_fingerprint="fp_1")])
    assert result["system_fingerprint"] == "fp_1"


def test_result_can_be_taken_midway_and_accumulation_continues() -> None:
    """result() does not consume: taking it midway and again later gives both states."""
    acc = ChatCompletionsAccumulator()
    acc.add(chunk(delta(content="ab")))
    acc.add(chunk(delta(tool_calls=[tc(0, "x", "f", "{")])))
    first = acc.result()
    acc.add(chunk(delta(content="cd")))
    acc.add(chunk(delta(tool_calls=[tc(0, arguments="}")])))
    second = acc.result()
    assert first.choices[0].message.content == "ab"
    assert calls(first) == [("x", "function", "f", "{")]
    assert second.choices[0].message.content == "abcd"
    assert calls(second) == [("x", "function", "f", "{}")]


def test_updates_built_directly_are_accepted() -> None:
    """Updates made with the model classes (no JSON) accumulate the same way."""
    when = datetime(2025, 1, 9, tzinfo=UTC)
    updates = [
        StreamingChatCompletionsUpdate(
            id="x",
            created=when,
            model="m",
            choices=[
                StreamingChatChoiceUpdate(
                    index=0,
                    delta=StreamingChatResponseMessageUpdate(
                        role=ChatRole.ASSISTANT,
                        tool_calls=[
                            StreamingChatResponseToolCallUpdate(
                                index=0,
                                id="c",
                                type="function",
                                function=StreamingFunctionCallUpdate(name="f", arguments="{"),
                            )
                        ],
                    ),
                )
            ],
        ),
        StreamingChatCompletionsUpdate(
            choices=[
                StreamingChatChoiceUpdate(
                    index=0,
                    delta=StreamingChatResponseMessageUpdate(
                        tool_calls=[
                            StreamingChatResponseToolCallUpdate(
                                index=0, function=StreamingFunctionCallUpdate(arguments="}")
                            )
                        ]
                    ),
                    finish_reason=CompletionsFinishReason.TOOL_CALLS,
                )
            ],
        ),
    ]
    result = accumulate(updates)
    assert (result.id, result.model, result.created) == ("x", "m", when)
    assert calls(result) == [("c", "function", "f", "{}")]
    assert result.choices[0].finish_reason == "tool_calls"


def test_accumulator_keeps_parts_not_updates() -> None:
    """Memory: after many updates the accumulator holds text parts, not the update objects."""
    acc = ChatCompletionsAccumulator()
    for i in range(500):
        acc.add(chunk(delta(content=f"t{i} ")))
    seen: list[object] = []
    _walk(acc, seen, set())
    kinds = {type(obj).__name__ for obj in seen}
    assert not {"StreamingChatCompletionsUpdate", "StreamingChatChoiceUpdate"} & kinds
    assert not {"StreamingChatResponseMessageUpdate"} & kinds
    assert acc.result().choices[0].message.content == "".join(f"t{i} " for i in range(500))


def _walk(obj: object, seen: list[object], visited: set[int]) -> None:
    """Collect every object reachable from ``obj`` through slots, dicts, lists and tuples."""
    if id(obj) in visited or isinstance(obj, str | int | float | bytes | type(None)):
        return
    visited.add(id(obj))
    seen.append(obj)
    children: list[object] = []
    if isinstance(obj, dict):
        children += list(obj.keys()) + list(obj.values())
    elif isinstance(obj, list | tuple | set):
        children += list(obj)
    else:
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    children.append(getattr(obj, name))
        children += list(getattr(obj, "__dict__", {}).values())
    for child in children:
        _walk(child, seen, visited)


# -- properties ---------------------------------------------------------------------------


def _split(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at the given positions (sorted, duplicates give empty pieces)."""
    points = sorted(min(c, len(text)) for c in cuts)
    pieces = []
    start = 0
    for point in points:
        pieces.append(text[start:point])
        start = point
    pieces.append(text[start:])
    return pieces


@given(text=st.text(), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=30))
def test_property_content_split_anywhere_reassembles(text: str, cuts: list[int]) -> None:
    """Splitting a content string into arbitrary deltas and accumulating gives it back."""
    pieces = _split(text, cuts)
    updates = [chunk(delta(role="assistant", content=""))]
    updates += [chunk(delta(content=piece)) for piece in pieces]
    updates.append(chunk(delta(finish_reason="stop")))
    result = accumulate(updates)
    assert result.choices[0].message.content == text


@given(
    args=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=12),
    order=st.randoms(use_true_random=False),
)
def test_property_indexed_argument_fragments_reassemble(
    args: list[str], cuts: list[int], order: Any
) -> None:
    """Indexed argument fragments, split anywhere and interleaved across calls, reassemble."""
    queues = [
        [tc(i, f"call_{i}", f"fn_{i}", "", "function")]
        + [tc(i, arguments=p) for p in _split(a, cuts)]
        for i, a in enumerate(args)
    ]
    fragments = []
    while any(queues):
        # Keep each call's own fragments in order; interleave the calls at random.
        pick = order.choice([q for q in queues if q])
        fragments.append(pick.pop(0))
    result = accumulate([chunk(delta(tool_calls=[f])) for f in fragments])
    assert calls(result) == [(f"call_{i}", "function", f"fn_{i}", a) for i, a in enumerate(args)]


@given(
    args=st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=12),
)
def test_property_unindexed_argument_fragments_reassemble(args: list[str], cuts: list[int]) -> None:
    """Without indexes (first fragment has the id, later ones nothing) calls reassemble too."""
    updates = []
    for i, text in enumerate(args):
        pieces = _split(text, cuts)
        updates.append(
            chunk(delta(tool_calls=[tc(id=f"id{i}", name=f"fn{i}", arguments=pieces[0])]))
        )
        updates += [chunk(delta(tool_calls=[tc(arguments=p)])) for p in pieces[1:]]
    result = accumulate(updates)
    assert calls(result) == [(f"id{i}", "function", f"fn{i}", a) for i, a in enumerate(args)]


# -- the update builder's one-choice shortcut ---------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4))
_delta_dicts = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "content": st.one_of(st.none(), st.text(max_size=6)),
            "role": st.sampled_from(["assistant", "tool", "other", None]),
            "tool_calls": st.one_of(
                st.none(),
                st.lists(
                    st.fixed_dictionaries(
                        {"index": st.integers(0, 2)},
                        optional={"id": st.text(max_size=3), "type": st.just("function")},
                    ),
                    max_size=2,
                ),
            ),
            "reasoning_content": st.text(max_size=4),
        },
    ),
)
_choice_dicts = st.fixed_dictionaries(
    {},
    optional={
        "index": st.one_of(st.integers(0, 3), st.none(), st.just("1")),
        "delta": _delta_dicts,
        "finish_reason": st.sampled_from(["stop", "length", "tool_calls", "other", None]),
        "logprobs": _scalar,
        "content_filter_results": st.dictionaries(st.text(max_size=3), _scalar, max_size=2),
    },
)


def _built(body: dict[str, Any]) -> StreamingChatCompletionsUpdate | str:
    """The update for ``body``, or the name of the error building it raised."""
    try:
        return loads_update(orjson.dumps(body))
    except Exception as exc:  # compared across the two paths, whatever it is
        return type(exc).__name__


@given(choice=_choice_dicts)
def test_one_choice_shortcut_builds_what_the_general_path_builds(choice: dict[str, Any]) -> None:
    """An update with one choice (built by the inline shortcut) gets the same choice object,
    or the same error, as that choice gets next to a second one (the general path)."""
    other = {"index": 9, "delta": {"content": "x"}}
    alone = _built({"id": ID, "choices": [choice]})
    paired = _built({"id": ID, "choices": [choice, other]})
    if isinstance(alone, str) or isinstance(paired, str):
        assert alone == paired
        return
    assert alone.choices == paired.choices[:1]
    assert alone.choices[0].extra == paired.choices[0].extra
    assert alone.choices[0].delta.extra == paired.choices[0].delta.extra
