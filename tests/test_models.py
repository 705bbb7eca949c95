"""Tests of the data models and the converter: names, validation, wire shapes, round trips."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _recording_server import REFERENCE_DIR

import inference.models as models
from inference._serialization import (
    loads_completions,
    loads_model_info,
    loads_update,
    messages_to_wire,
    response_format_to_wire,
    tool_choice_to_wire,
    tools_to_wire,
    unstructure,
)
from inference.exceptions import RequestValidationError
from inference.models import (
    AssistantMessage,
    AudioContentFormat,
    AudioContentItem,
    ChatChoice,
    ChatCompletions,
    ChatCompletionsFunctionToolDefinition,
    ChatCompletionsNamedToolChoice,
    ChatCompletionsNamedToolChoiceFunction,
    ChatCompletionsResponseFormatJSON,
    ChatCompletionsResponseFormatJsonSchema,
    ChatCompletionsResponseFormatText,
    ChatCompletionsToolCall,
    ChatCompletionsToolChoicePreset,
    ChatCompletionsToolDefinition,
    ChatResponseMessage,
    ChatRole,
    CompletionsFinishReason,
    CompletionsUsage,
    DeveloperMessage,
    FunctionCall,
    FunctionDefinition,
    ImageContentItem,
    ImageDetailLevel,
    ImageUrl,
    InputAudio,
    JsonSchemaFormat,
    ModelInfo,
    ModelType,
    StreamingChatChoiceUpdate,
    StreamingChatCompletionsUpdate,
    StreamingChatResponseMessageUpdate,
    StreamingChatResponseToolCallUpdate,
    SystemMessage,
    TextContentItem,
    ToolMessage,
    UserMessage,
)

SPEC_PATH = REFERENCE_DIR / "modelinference-2024-05-01-preview.openapi.json"

# The chat names of azure.ai.inference.models (1.0.0b9) plus the older spellings the reference
# document uses; code written for that SDK imports them from inference.models instead.
SDK_CHAT_NAMES = [
    "AssistantMessage",
    "AudioContentFormat",
    "AudioContentItem",
    "ChatChoice",
    "ChatCompletions",
    "ChatCompletionsNamedToolChoice",
    "ChatCompletionsNamedToolChoiceFunction",
    "ChatCompletionsToolCall",
    "ChatCompletionsToolChoicePreset",
    "ChatCompletionsToolDefinition",
    "ChatRequestMessage",
    "ChatResponseMessage",
    "ChatRole",
    "CompletionsFinishReason",
    "CompletionsUsage",
    "ContentItem",
    "DeveloperMessage",
    "FunctionCall",
    "FunctionDefinition",
    "ImageContentItem",
    "ImageDetailLevel",
    "ImageUrl",
    "InputAudio",
    "JsonSchemaFormat",
    "ModelInfo",
    "ModelType",
    "StreamingChatChoiceUpdate",
    "StreamingChatCompletionsUpdate",
    "StreamingChatResponseMessageUpdate",
    "StreamingChatResponseToolCallUpdate",
    "SystemMessage",
    "TextContentItem",
    "ToolMessage",
    "UserMessage",
]
DOC_NAMES = [
    "ChatCompletionsFunctionToolDefinition",
    "ChatCompletionsResponseFormatJSON",
    "ChatCompletionsResponseFormatText",
]

WEATHER_TOOL = ChatCompletionsToolDefinition(
    function=FunctionDefinition(
        name="get_weather",
        description="Returns the weather in a city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
)


def nulls(value: Any, where: str = "body") -> Iterator[str]:
    """The paths of every None value inside JSON-like data."""
    if value is None:
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nulls(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nulls(item, f"{where}[{index}]")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The OpenAPI (swagger 2) definitions of the Azure AI Model Inference API."""
    if not SPEC_PATH.is_file():
        pytest.fail(f"the API spec is missing: expected {SPEC_PATH} (tests/data in the repository)")
    definitions: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))["definitions"]
    return definitions


def spec_props(spec: dict[str, Any], name: str) -> set[str]:
    """The property names of a spec definition, those of its ``allOf`` bases included."""
    definition = spec[name]
    props = set(definition.get("properties", {}))
    for base in definition.get("allOf", []):
        props |= spec_props(spec, base["$ref"].rsplit("/", 1)[1])
    return props


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SDK_CHAT_NAMES + DOC_NAMES)
def test_sdk_and_document_names_exist(name: str) -> None:
    """Every chat model name of azure-ai-inference 1.0.0b9 and of the reference document exists."""
    assert hasattr(models, name), f"inference.models has no {name}"
    assert name in models.__all__


def test_document_aliases_are_the_sdk_classes() -> None:
    """The older document spellings are the same classes as the current names."""
    assert ChatCompletionsFunctionToolDefinition is ChatCompletionsToolDefinition
    assert ChatCompletionsResponseFormatJSON().type == "json_object"
    assert ChatCompletionsResponseFormatText().type == "text"


def test_enums_compare_equal_to_wire_values() -> None:
    """Enums equal their wire strings; ChatRole formats as its upper-case name."""
    # Compared through list[str] so the check is the runtime == of str enums.
    as_strings: list[str] = [
        ChatRole.ASSISTANT,
        CompletionsFinishReason.STOPPED,
        CompletionsFinishReason.TOKEN_LIMIT_REACHED,
        CompletionsFinishReason.CONTENT_FILTERED,
        CompletionsFinishReason.TOOL_CALLS,
        AudioContentFormat.MP3,
        ModelType.CHAT_COMPLETION,
    ]
    assert as_strings == [
        "assistant",
        "stop",
        "length",
        "content_filter",
        "tool_calls",
        "mp3",
        "chat-completion",
    ]
    assert f"{ChatRole.ASSISTANT}" == "ASSISTANT"
    assert [d.value for d in ImageDetailLevel] == ["auto", "low", "high"]
    assert [p.value for p in ChatCompletionsToolChoicePreset] == ["auto", "none", "required"]


# -- request messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "role"),
    [
        (SystemMessage, "system"),
        (DeveloperMessage, "developer"),
        (UserMessage, "user"),
        (AssistantMessage, "assistant"),
    ],
)
def test_positional_and_keyword_content(cls: type[Any], role: str) -> None:
    """Messages take content positionally (as the document writes it) and by keyword."""
    assert cls("Hello") == cls(content="Hello")
    assert messages_to_wire([cls("Hello")]) == [{"role": role, "content": "Hello"}]


@pytest.mark.parametrize("cls", [SystemMessage, DeveloperMessage, UserMessage])
def test_text_messages_take_the_same_wire_form_as_the_converter(cls: type[Any]) -> None:
    """The shortcut for plain text messages writes exactly what the converter writes, and
    messages it does not cover (a name, content parts, content changed after creation,
    a subclass) still go through the converter."""

    class Sub(cls):  # type: ignore[misc,valid-type]
        pass

    changed = cls("before")
    changed.content = [TextContentItem(text="after")]
    messages = [
        cls("Hello"),
        cls("Hi", name="alice"),
        cls([TextContentItem(text="parts")]),
        changed,
        Sub("sub"),
    ]
    wire = messages_to_wire(messages)
    assert wire == [unstructure(msg) for msg in messages]
    assert [list(w) for w in wire] == [list(unstructure(msg)) for msg in messages]  # key order
    assert wire[3]["content"] == [{"type": "text", "text": "after"}]


def test_tool_message_positional_content() -> None:
    """ToolMessage takes its content positionally and tool_call_id by keyword."""
    wire = messages_to_wire([ToolMessage("62", tool_call_id="call_1")])
    assert wire == [{"role": "tool", "content": "62", "tool_call_id": "call_1"}]


def test_name_is_sent_only_when_set() -> None:
    """The optional name goes on the wire only when given."""
    wire = messages_to_wire([UserMessage("hi", name="alice"), UserMessage("hi")])
    assert wire == [
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "user", "content": "hi"},
    ]


@pytest.mark.parametrize(
    ("build", "fix"),
    [
        (lambda: UserMessage(None), 'UserMessage("...")'),  # type: ignore[arg-type]
        (lambda: SystemMessage(None), 'SystemMessage("...")'),  # type: ignore[arg-type]
        (lambda: DeveloperMessage(None), 'DeveloperMessage("...")'),  # type: ignore[arg-type]
        (lambda: UserMessage(b"bytes"), "str or a list of content items"),  # type: ignore[arg-type]
        (lambda: UserMessage(42), "str or a list of content items"),  # type: ignore[arg-type]
        (lambda: UserMessage({"role": "user", "content": "x"}), "str or a list"),  # type: ignore[arg-type]
        (lambda: ToolMessage("x"), "tool_call_id="),
        (lambda: ToolMessage("x", tool_call_id=""), "tool_call_id="),
        (lambda: AssistantMessage(), "content= or tool_calls="),
        (lambda: AssistantMessage(tool_calls=[]), "content= or tool_calls="),
        (lambda: AssistantMessage(["text"]), "takes a str"),  # type: ignore[arg-type]
        (lambda: TextContentItem(3), "takes a str"),  # type: ignore[arg-type]
        (lambda: ImageContentItem(), "image_url=ImageUrl(url=...)"),
        (lambda: ImageContentItem(image_url=42), "image_url=ImageUrl(url=...)"),  # type: ignore[arg-type]
        (lambda: ImageContentItem(image_url=ImageUrl("a"), image=ImageUrl("b")), "not both"),
        (lambda: FunctionDefinition(""), "non-empty name="),
    ],
)
def test_invalid_models_raise_with_the_fix(build: Any, fix: str) -> None:
    """Invalid arguments raise RequestValidationError whose message says what to write."""
    with pytest.raises(RequestValidationError) as info:
        build()
    assert fix in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "bad_item",
    [42, "plain text", None, b"bytes", UserMessage("nested")],
    ids=["int", "str", "None", "bytes", "message"],
)
def test_bad_content_items_raise(bad_item: Any) -> None:
    """A content list may hold only content items (or their dicts): anything else raises."""
    with pytest.raises(RequestValidationError) as info:
        UserMessage([TextContentItem("look"), bad_item])
    message = str(info.value)
    assert "TextContentItem" in message and "ImageContentItem" in message


@pytest.mark.parametrize(
    "bad_calls",
    ["call", [42], [{"id": "x"}], [{"function": {"name": "f", "arguments": "{}"}}]],
    ids=["str", "int-item", "no-function", "no-id"],
)
def test_assistant_message_rejects_malformed_tool_calls(bad_calls: Any) -> None:
    """AssistantMessage(tool_calls=...) must be tool calls; other values raise at once."""
    with pytest.raises(RequestValidationError) as info:
        AssistantMessage(tool_calls=bad_calls)
    assert "ChatCompletionsToolCall" in str(info.value)


def test_assistant_message_accepts_tool_call_dicts() -> None:
    """OpenAI-style tool-call dicts in AssistantMessage go on the wire like the models."""
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    from_dict = messages_to_wire([AssistantMessage(tool_calls=[call])])  # type: ignore[list-item]
    from_model = messages_to_wire(
        [
            AssistantMessage(
                tool_calls=[ChatCompletionsToolCall(id="c1", function=FunctionCall("f", "{}"))]
            )
        ]
    )
    assert from_dict == from_model == [{"role": "assistant", "content": "", "tool_calls": [call]}]


# -- content items -------------------------------------------------------------------------


def test_text_and_image_items_wire_shape(spec: dict[str, Any]) -> None:
    """Text and image items use the spec's field names and omit an unset detail."""
    wire = messages_to_wire(
        [
            UserMessage(
                [
                    TextContentItem(text="What's in this image?"),
                    ImageContentItem(image_url=ImageUrl(url="https://x/a.png")),
                    ImageContentItem(ImageUrl("https://x/b.png", ImageDetailLevel.LOW)),
                ]
            )
        ]
    )
    assert wire == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
                {"type": "image_url", "image_url": {"url": "https://x/b.png", "detail": "low"}},
            ],
        }
    ]
    content = wire[0]["content"]
    assert set(content[0]) <= spec_props(spec, "ChatMessageTextContentItem")
    assert set(content[2]) <= spec_props(spec, "ChatMessageImageContentItem")
    assert set(content[2]["image_url"]) <= spec_props(spec, "ChatMessageImageUrl")


def test_image_and_image_url_spellings_are_the_same() -> None:
    """ImageContentItem(image=...) (the document's spelling) equals image_url=...; a str works."""
    url = ImageUrl(url="https://x/a.png", detail=ImageDetailLevel.HIGH)
    by_image = ImageContentItem(image=url)
    by_image_url = ImageContentItem(image_url=url)
    assert by_image == by_image_url
    assert by_image.image_url is url
    assert unstructure(by_image) == unstructure(by_image_url)
    assert "image" not in unstructure(by_image)
    assert ImageContentItem(image="https://x/a.png").image_url == ImageUrl(url="https://x/a.png")


def test_image_url_load_builds_a_data_url(tmp_path: Path) -> None:
    """ImageUrl.load reads a file into a base64 data URL with the given format and detail."""
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    path = tmp_path / "picture.bin"
    path.write_bytes(data)
    image = ImageUrl.load(image_file=str(path), image_format="png", detail=ImageDetailLevel.HIGH)
    prefix = "data:image/png;base64,"
    assert image.url.startswith(prefix)
    assert base64.b64decode(image.url[len(prefix) :]) == data
    assert image.detail == "high"
    item = ImageContentItem(image=ImageUrl.load(image_file=path, image_format="jpeg"))
    assert unstructure(item)["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "detail" not in unstructure(item)["image_url"]


def test_image_url_load_guesses_the_format(tmp_path: Path) -> None:
    """Without image_format the format comes from the file name; an unknown one raises."""
    (tmp_path / "a.png").write_bytes(b"png")
    assert ImageUrl.load(image_file=tmp_path / "a.png").url.startswith("data:image/png;base64,")
    (tmp_path / "a.unknownext").write_bytes(b"?")
    with pytest.raises(RequestValidationError, match="image_format="):
        ImageUrl.load(image_file=tmp_path / "a.unknownext")


def test_audio_content_item_and_input_audio_load(tmp_path: Path) -> None:
    """InputAudio.load base64-encodes a file; the item goes on the wire as input_audio."""
    data = b"RIFF\x00\x00WAVEfmt "
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    audio = InputAudio.load(audio_file=str(path), audio_format=AudioContentFormat.WAV)
    assert base64.b64decode(audio.data) == data
    wire = messages_to_wire([UserMessage([AudioContentItem(input_audio=audio)])])
    assert wire[0]["content"] == [
        {"type": "input_audio", "input_audio": {"data": audio.data, "format": "wav"}}
    ]
    direct = AudioContentItem(input_audio=InputAudio(data="AAAA", format="mp3"))
    assert unstructure(direct) == {
        "type": "input_audio",
        "input_audio": {"data": "AAAA", "format": "mp3"},
    }


def test_content_item_dicts_are_accepted() -> None:
    """OpenAI-style content-item dicts work inside UserMessage and inside dict messages."""
    items: list[Any] = [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "u"}},
    ]
    expected = [{"role": "user", "content": items}]
    assert messages_to_wire([UserMessage(list(items))]) == expected
    assert messages_to_wire([{"role": "user", "content": list(items)}]) == expected
    mixed = messages_to_wire([{"role": "user", "content": [TextContentItem("hi")]}])
    assert mixed == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


# -- messages on the wire ------------------------------------------------------------------


def test_request_messages_use_spec_field_names(spec: dict[str, Any]) -> None:
    """Every request message's wire keys are properties of its spec definition."""
    call = ChatCompletionsToolCall(id="c1", function=FunctionCall(name="f", arguments="{}"))
    cases = [
        (SystemMessage("s"), "ChatRequestSystemMessage"),
        (UserMessage("u"), "ChatRequestUserMessage"),
        (AssistantMessage("a", tool_calls=[call]), "ChatRequestAssistantMessage"),
        (ToolMessage("t", tool_call_id="c1"), "ChatRequestToolMessage"),
    ]
    for message, definition in cases:
        (wire,) = messages_to_wire([message])
        assert set(wire) <= spec_props(spec, definition), (definition, wire)
    (assistant,) = messages_to_wire([cases[2][0]])
    assert set(assistant["tool_calls"][0]) == spec_props(spec, "ChatCompletionsToolCall")
    assert set(assistant["tool_calls"][0]["function"]) == spec_props(spec, "FunctionCall")


def test_plain_dict_messages_are_accepted() -> None:
    """OpenAI-style dict messages pass through, with None values dropped."""
    messages = [
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "u", "name": None},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "content": "r", "tool_call_id": "c1"},
    ]
    wire = messages_to_wire(messages)
    assert wire[2] == {"role": "user", "content": "u"}
    assert wire[3]["content"] == ""  # not null: see the next test
    assert wire[4] == {"role": "tool", "content": "r", "tool_call_id": "c1"}
    assert list(nulls(wire)) == []


@pytest.mark.parametrize(
    ("message", "fix"),
    [
        ({"role": "bot", "content": "x"}, "use one of system, developer, user, assistant, tool"),
        ({"content": "x"}, "use one of"),
        ({"role": "user"}, "add content="),
        ({"role": "user", "content": None}, "add content="),
        ({"role": "system"}, "add content="),
        ({"role": "tool", "content": "x"}, "needs tool_call_id"),
        ({"role": "assistant"}, "needs content or tool_calls"),
        ({"role": "user", "content": 42}, "content"),
        ({"role": "user", "content": [42]}, "content"),
        ({"role": "user", "content": {"text": "x"}}, "content"),
    ],
)
def test_bad_dict_messages_raise(message: dict[str, Any], fix: str) -> None:
    """Malformed dict messages raise RequestValidationError naming the message and the fix."""
    with pytest.raises(RequestValidationError) as info:
        messages_to_wire([{"role": "user", "content": "first"}, message])
    assert "messages[1]" in str(info.value)
    assert fix in str(info.value)


@pytest.mark.parametrize(
    ("messages", "fix"),
    [
        ([], "messages is empty"),
        ("Hello", "must be a list"),
        ({"role": "user", "content": "x"}, "must be a list"),
        ([42], "messages[0] is a int"),
        ([TextContentItem("x")], "messages[0] is a TextContentItem"),
    ],
)
def test_bad_message_lists_raise(messages: Any, fix: str) -> None:
    """The message list itself is checked: not empty, a list, only messages."""
    with pytest.raises(RequestValidationError) as info:
        messages_to_wire(messages)
    assert fix in str(info.value)


FUNCTION_CALL = {"name": "f", "arguments": "{}"}


def _response_message(**fields: Any) -> ChatResponseMessage:
    return (
        loads_completions(json.dumps({"id": "x", "choices": [{"index": 0, "message": fields}]}))
        .choices[0]
        .message
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"role": "assistant", "content": "Hi"}, {"role": "assistant", "content": "Hi"}),
        (
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}", "call_id": None},
                    }
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        ),
        (
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        ),
        ({"role": "assistant"}, {"role": "assistant", "content": ""}),
    ],
    ids=["text", "tool-calls-empty-content", "tool-calls-null-content", "both", "nothing"],
)
def test_response_message_goes_back_as_assistant_message(
    fields: dict[str, Any], expected: dict[str, Any], spec: dict[str, Any]
) -> None:
    """A response message appended to messages is sent back as a valid assistant message."""
    (wire,) = messages_to_wire([_response_message(**fields)])
    assert wire == expected
    assert set(wire) <= spec_props(spec, "ChatRequestAssistantMessage")
    assert list(nulls(wire)) == []


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            {"role": "assistant", "tool_calls": [{"id": "c1", "function": FUNCTION_CALL}]},
            id="dict-without-content",
        ),
        pytest.param(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "function": FUNCTION_CALL}],
            },
            id="dict-null-content",
        ),
        pytest.param(
            AssistantMessage(
                tool_calls=[ChatCompletionsToolCall(id="c1", function=FunctionCall("f", "{}"))]
            ),
            id="model",
        ),
        pytest.param(
            _response_message(
                role="assistant", tool_calls=[{"id": "c1", "function": FUNCTION_CALL}]
            ),
            id="response-message",
        ),
    ],
)
def test_tool_call_turn_is_sent_with_empty_content(message: Any) -> None:
    """An assistant turn with only tool calls goes out with ``"content": ""``, never null.

    llama.cpp's chat templates fail on a missing or null content; OpenAI, Azure, vLLM and
    Ollama all take an empty string.
    """
    (wire,) = messages_to_wire([message])
    assert wire["content"] == ""
    assert wire["tool_calls"][0]["function"] == FUNCTION_CALL
    assert list(nulls(wire)) == []


def test_assistant_message_from_response_tool_calls_has_no_nulls() -> None:
    """Tool calls taken from a response (with unknown null fields) are sent without nulls."""
    message = _response_message(
        role="assistant",
        content="",
        tool_calls=[
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "f", "arguments": "{}", "call_id": None},
            }
        ],
    )
    assert message.tool_calls is not None
    wire = messages_to_wire([AssistantMessage(tool_calls=message.tool_calls)])
    assert list(nulls(wire)) == []
    assert wire[0]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}


def test_full_conversation_has_no_nulls() -> None:
    """A conversation built from every model has no None anywhere on the wire."""
    call = ChatCompletionsToolCall(id="c1", function=FunctionCall(name="f", arguments="{}"))
    wire = messages_to_wire(
        [
            SystemMessage("s"),
            DeveloperMessage("d"),
            UserMessage([TextContentItem("t"), ImageContentItem(image=ImageUrl(url="u"))]),
            AssistantMessage(tool_calls=[call]),
            ToolMessage("r", tool_call_id="c1"),
            AssistantMessage("done"),
        ]
    )
    assert list(nulls(wire)) == []
    assert [m["role"] for m in wire] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


# -- tools and tool choice -----------------------------------------------------------------


def test_tools_wire_shape(spec: dict[str, Any]) -> None:
    """Tool definitions, bare function definitions and dicts become the spec's tool shape."""
    as_dict = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
    wire = tools_to_wire(
        [
            WEATHER_TOOL,
            FunctionDefinition(name="h"),
            as_dict,
            ChatCompletionsFunctionToolDefinition(function=FunctionDefinition("i", "desc")),
        ]
    )
    assert wire[0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Returns the weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    assert wire[1] == {"type": "function", "function": {"name": "h"}}
    assert wire[2] == as_dict
    assert wire[3] == {"type": "function", "function": {"name": "i", "description": "desc"}}
    for tool in wire:
        assert set(tool) == spec_props(spec, "ChatCompletionsToolDefinition")
        assert set(tool["function"]) <= spec_props(spec, "FunctionDefinition")
    strict = tools_to_wire([FunctionDefinition("s", strict=True)])
    assert strict == [{"type": "function", "function": {"name": "s", "strict": True}}]


@pytest.mark.parametrize(
    ("tools", "fix"),
    [
        (["get_weather"], "ChatCompletionsToolDefinition(function=FunctionDefinition(...))"),
        ([{"type": "function"}], "has no 'function'"),
        ([42], "OpenAI-style dict"),
    ],
)
def test_bad_tools_raise(tools: list[Any], fix: str) -> None:
    """Unusable tools raise RequestValidationError with the shape to write."""
    with pytest.raises(RequestValidationError) as info:
        tools_to_wire(tools)
    assert fix in str(info.value)


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (ChatCompletionsToolChoicePreset.REQUIRED, "required"),
        (
            ChatCompletionsNamedToolChoice(
                function=ChatCompletionsNamedToolChoiceFunction(name="get_weather")
            ),
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_wire(choice: Any, wire: Any) -> None:
    """Every tool_choice spelling becomes its wire value."""
    assert tool_choice_to_wire(choice) == wire


@pytest.mark.parametrize("choice", ["get_weather", 1, None, ["auto"]])
def test_bad_tool_choice_raises(choice: Any) -> None:
    """An unknown tool_choice raises RequestValidationError naming the accepted values."""
    with pytest.raises(RequestValidationError, match="'auto', 'none', 'required'"):
        tool_choice_to_wire(choice)


# -- response_format -----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
SCHEMA_WIRE = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": SCHEMA, "description": "An answer", "strict": True},
}


@pytest.mark.parametrize(
    ("given", "wire"),
    [
        ("text", {"type": "text"}),
        ("json_object", {"type": "json_object"}),
        (ChatCompletionsResponseFormatText(), {"type": "text"}),
        (ChatCompletionsResponseFormatJSON(), {"type": "json_object"}),
        ({"type": ChatCompletionsResponseFormatText()}, {"type": "text"}),
        ({"type": ChatCompletionsResponseFormatJSON()}, {"type": "json_object"}),
        ({"type": "text"}, {"type": "text"}),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            JsonSchemaFormat(name="answer", schema=SCHEMA, description="An answer", strict=True),
            SCHEMA_WIRE,
        ),
        (
            JsonSchemaFormat(name="n", schema={}),
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
        ),
        (
            {"type": "json_schema", "json_schema": JsonSchemaFormat(name="n", schema={})},
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
        ),
        (
            ChatCompletionsResponseFormatJsonSchema(
                json_schema=JsonSchemaFormat(
                    name="answer", schema=SCHEMA, description="An answer", strict=True
                )
            ),
            SCHEMA_WIRE,
        ),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v,
)
def test_response_format_spellings(given: Any, wire: dict[str, Any], spec: dict[str, Any]) -> None:
    """Every accepted response_format spelling produces the spec's wire dict."""
    result = response_format_to_wire(given)
    assert result == wire
    assert list(nulls(result)) == []
    if result["type"] == "json_schema":
        assert set(result) == {"type", "json_schema"}
        allowed = spec_props(spec, "ChatCompletionsResponseFormatJsonSchemaDefinition")
        assert set(result["json_schema"]) <= allowed


@pytest.mark.parametrize(
    ("given", "fix"),
    [
        ("xml", "is not supported"),
        ("json_schema", "JsonSchemaFormat(name=..., schema={...})"),
        ({"type": "xml"}, "is not supported"),
        ({"type": "json_schema"}, "'json_schema' object"),
        ({}, "is not supported"),
        (42, "use 'text', 'json_object'"),
        (ChatCompletionsResponseFormatJSON, "use 'text', 'json_object'"),
        ({"type": ChatCompletionsResponseFormatJSON(), "extra": 1}, "is not supported"),
    ],
    ids=["xml", "json_schema-str", "dict-xml", "dict-no-schema", "empty", "int", "class", "dict2"],
)
def test_unsupported_response_formats_raise(given: Any, fix: str) -> None:
    """Unsupported response_format values raise RequestValidationError listing what works."""
    with pytest.raises(RequestValidationError) as info:
        response_format_to_wire(given)
    assert fix in str(info.value)


# -- response models -----------------------------------------------------------------------

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1736389144,
    "model": "gpt-4o",
    "system_fingerprint": "fp_1",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "logprobs": None,
            "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
            "message": {
                "role": "assistant",
                "content": None,
                "reasoning_content": "thinking",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
        }
    ],
    "usage": {
        "completion_tokens": 5,
        "prompt_tokens": 7,
        "total_tokens": 12,
        "completion_tokens_details": {"reasoning_tokens": 2, "accepted_prediction_tokens": 0},
        "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 0},
    },
}


def test_chat_completions_structure() -> None:
    """A response body becomes typed models with enums, datetimes and nested usage."""
    result = loads_completions(json.dumps(COMPLETION))
    assert isinstance(result, ChatCompletions)
    choice = result.choices[0]
    assert isinstance(choice, ChatChoice)
    assert choice.finish_reason is CompletionsFinishReason.TOOL_CALLS
    assert isinstance(choice.message, ChatResponseMessage)
    assert choice.message.role is ChatRole.ASSISTANT
    assert choice.message.tool_calls == [
        ChatCompletionsToolCall(id="c1", type="function", function=FunctionCall("f", "{}"))
    ]
    assert result.created is not None and int(result.created.timestamp()) == 1736389144
    assert isinstance(result.usage, CompletionsUsage)
    assert result.usage.total_tokens == 12
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 2
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 1


def test_unknown_fields_are_kept_and_reachable() -> None:
    """Unknown response fields are reachable by item access and survive as_dict()."""
    result = loads_completions(json.dumps(COMPLETION))
    assert result["system_fingerprint"] == "fp_1"
    assert result["model"] == "gpt-4o"
    assert "prompt_filter_results" in result
    assert result.choices[0]["content_filter_results"]["hate"]["severity"] == "safe"
    assert result.choices[0].message.get("reasoning_content") == "thinking"
    assert result.choices[0].message.get("refusal", "absent") == "absent"
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details["accepted_prediction_tokens"] == 0
    with pytest.raises(KeyError, match="fields present"):
        result["no_such_field"]
    round_trip = result.as_dict()
    expected = json.loads(json.dumps(COMPLETION))
    del expected["choices"][0]["logprobs"]  # None values are omitted
    del expected["choices"][0]["message"]["content"]
    assert round_trip == expected


def test_unknown_enum_values_stay_strings() -> None:
    """A finish reason or role the library does not know is kept as the server's string."""
    body = {
        "id": "x",
        "choices": [{"index": 0, "finish_reason": "eos", "message": {"role": "bot"}}],
    }
    result = loads_completions(json.dumps(body))
    assert result.choices[0].finish_reason == "eos"
    assert result.choices[0].message.role == "bot"


def test_model_info_structure() -> None:
    """/info bodies become ModelInfo; model_type is an enum; extra fields are kept."""
    info = loads_model_info(
        b'{"model_name": "m", "model_type": "chat-completion", "model_provider_name": "P",'
        b' "served_model_name": "s"}'
    )
    assert isinstance(info, ModelInfo)
    assert info.model_type is ModelType.CHAT_COMPLETION
    assert (info.model_name, info.model_provider_name) == ("m", "P")
    assert info["served_model_name"] == "s"


def test_streaming_update_classes() -> None:
    """Stream chunks become update models; a choice without delta gets an empty delta."""
    update = loads_update(
        '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        '"delta":{"role":"assistant","content":"Hi","tool_calls":[{"index":0,"id":"t","type":'
        '"function","function":{"name":"f","arguments":"{"}}]},"finish_reason":null}]}'
    )
    assert isinstance(update, StreamingChatCompletionsUpdate)
    choice = update.choices[0]
    assert isinstance(choice, StreamingChatChoiceUpdate)
    assert isinstance(choice.delta, StreamingChatResponseMessageUpdate)
    assert choice.delta.content == "Hi"
    assert choice.delta.role == ChatRole.ASSISTANT
    assert choice.delta.tool_calls is not None
    call = choice.delta.tool_calls[0]
    assert isinstance(call, StreamingChatResponseToolCallUpdate)
    assert (call.index, call.id, call.function and call.function.name) == (0, "t", "f")
    annotation = loads_update(
        '{"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":null,'
        '"content_filter_results":{}}],"usage":null}'
    )
    assert annotation.choices[0].delta is not None
    assert annotation.choices[0].delta.content is None
    assert annotation.choices[0]["content_filter_results"] == {}
    empty = loads_update('{"id":"","choices":[],"prompt_filter_results":[]}')
    assert empty.choices == []
    assert empty["prompt_filter_results"] == []


def test_streaming_builder_sets_every_field_of_the_streaming_models() -> None:
    """The per-chunk builder allocates the update, choice and delta without ``__init__`` and
    assigns their fields itself: those must be exactly the models' fields, with no
    post-init logic, and what it builds must equal the objects built the normal way."""
    import attrs

    from inference.models import (
        NO_EXTRA,
        StreamingChatChoiceUpdate,
        StreamingChatCompletionsUpdate,
        StreamingChatResponseMessageUpdate,
    )

    expected_fields = {
        StreamingChatCompletionsUpdate: {
            "id", "created", "model", "choices", "usage", "object", "extra",
        },
        StreamingChatChoiceUpdate: {"index", "delta", "finish_reason", "logprobs", "extra"},
        StreamingChatResponseMessageUpdate: {"role", "content", "tool_calls", "extra"},
    }  # fmt: skip
    for cls, names in expected_fields.items():
        assert {f.name for f in attrs.fields(cls)} == names, (
            f"{cls.__name__} changed: update _serialization.update_from_owned_dict"
            " and _chunks.ChunkParser._repeat"
        )
        assert not hasattr(cls, "__attrs_post_init__")
        assert all(f.validator is None and f.converter is None for f in attrs.fields(cls))
    plain = loads_update(
        b'{"id":"c1","object":"chat.completion.chunk","created":0,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}'
    )
    assert plain == StreamingChatCompletionsUpdate(
        id="c1",
        created=plain.created,
        model="m",
        choices=[
            StreamingChatChoiceUpdate(
                index=0, delta=StreamingChatResponseMessageUpdate(content="Hi")
            )
        ],
    )
    assert plain.extra is NO_EXTRA
    assert plain.choices[0].extra is NO_EXTRA and plain.choices[0].delta.extra is NO_EXTRA
    extras = loads_update(
        b'{"id":"c2","system_fingerprint":"fp","choices":[{"index":1,'
        b'"delta":{"content":"a"},"content_filter_results":{}}]}'
    )
    assert extras.extra == {"system_fingerprint": "fp"}
    assert extras.choices[0].extra == {"content_filter_results": {}}
    assert extras.object == "chat.completion.chunk" and extras.usage is None
