"""The data models of ``inference``: messages, content items, tools, response formats, responses.

Plain attrs classes, no I/O and no (de)serialization code: that lives in one cattrs converter
(``inference._converter``, used by ``inference._serialization``). Names follow the Azure AI
Inference SDK (``azure.ai.inference.models``) so code written for it keeps working, including
the older spellings the Azure documentation uses (``ChatCompletionsFunctionToolDefinition``,
``ChatCompletionsResponseFormatJSON``). This module holds the request models; the response
models live in ``inference._responses`` and the enumerations in ``inference._model_base``
(embeddings: ``inference._embedding_models``), and all are public here.

Request models validate their arguments when they are built and raise
:class:`inference.exceptions.RequestValidationError` with a message that says what to fix.

Every model behaves as a read-only mapping of its wire fields, as the Azure SDK's models do
(``response["choices"][0]["message"]["content"]``, ``keys()``, ``get()``, ``as_dict()``),
and offers openai-python's ``to_dict()``, ``model_dump()`` and ``to_json()``.

Response models (:class:`ChatCompletions`, :class:`StreamingChatCompletionsUpdate` and their
parts) keep every field the service sent, including fields this library does not know
(Azure OpenAI's ``content_filter_results``, a reasoning model's ``reasoning_content``, ...):
they are in the ``extra`` mapping and reachable with ``item["name"]`` or ``item.get("name")``.
Fields some services send (``system_fingerprint``, ``service_tier``, ``message.refusal``) are
attributes too, None when absent.

Typed dictionaries (``UserMessageParam``, ``ToolParam``, ...) describe the plain-dict
spelling of messages and tools that ``complete()`` accepts beside these models.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Mapping
from typing import Any, Literal

from attrs import define, field

from ._dicts import (
    AssistantMessageParam,
    AudioContentPartParam,
    ChatMessageParam,
    ContentPartParam,
    DeveloperMessageParam,
    FunctionCallParam,
    FunctionDefinitionParam,
    ImageContentPartParam,
    ImageUrlParam,
    InputAudioParam,
    JsonSchemaParam,
    NamedToolChoiceFunctionParam,
    NamedToolChoiceParam,
    ResponseFormatParam,
    StreamOptionsParam,
    SystemMessageParam,
    TextContentPartParam,
    ToolCallParam,
    ToolMessageParam,
    ToolParam,
    UserMessageParam,
)
from ._embedding_models import (
    EmbeddingEncodingFormat,
    EmbeddingInputType,
    EmbeddingItem,
    EmbeddingsResult,
    EmbeddingsUsage,
)
from ._model_base import NO_EXTRA as NO_EXTRA
from ._model_base import (
    AudioContentFormat,
    ChatCompletionsToolChoicePreset,
    ChatRole,
    CompletionsFinishReason,
    ImageDetailLevel,
    ModelType,
    _WireMapping,
    wire_names,
)
from ._responses import (
    ChatChoice,
    ChatCompletions,
    ChatCompletionsToolCall,
    ChatResponseMessage,
    CompletionsUsage,
    CompletionsUsageDetails,
    FunctionCall,
    ModelInfo,
    PromptUsageDetails,
    StreamingChatChoiceUpdate,
    StreamingChatCompletionsUpdate,
    StreamingChatResponseMessageUpdate,
    StreamingChatResponseToolCallUpdate,
    StreamingFunctionCallUpdate,
)
from .exceptions import RequestValidationError

__all__ = [
    "AssistantMessage",
    "AssistantMessageParam",
    "AudioContentFormat",
    "AudioContentItem",
    "AudioContentPartParam",
    "ChatChoice",
    "ChatCompletions",
    "ChatCompletionsFunctionToolDefinition",
    "ChatCompletionsNamedToolChoice",
    "ChatCompletionsNamedToolChoiceFunction",
    "ChatCompletionsResponseFormat",
    "ChatCompletionsResponseFormatJSON",
    "ChatCompletionsResponseFormatJsonObject",
    "ChatCompletionsResponseFormatJsonSchema",
    "ChatCompletionsResponseFormatText",
    "ChatCompletionsToolCall",
    "ChatCompletionsToolChoicePreset",
    "ChatCompletionsToolDefinition",
    "ChatMessageParam",
    "ChatRequestMessage",
    "ChatResponseMessage",
    "ChatRole",
    "CompletionsFinishReason",
    "CompletionsUsage",
    "CompletionsUsageDetails",
    "ContentItem",
    "ContentPartParam",
    "DeveloperMessage",
    "DeveloperMessageParam",
    "EmbeddingEncodingFormat",
    "EmbeddingInputType",
    "EmbeddingItem",
    "EmbeddingsResult",
    "EmbeddingsUsage",
    "FunctionCall",
    "FunctionCallParam",
    "FunctionDefinition",
    "FunctionDefinitionParam",
    "ImageContentItem",
    "ImageContentPartParam",
    "ImageDetailLevel",
    "ImageUrl",
    "ImageUrlParam",
    "InputAudio",
    "InputAudioParam",
    "JsonSchemaFormat",
    "JsonSchemaParam",
    "ModelInfo",
    "ModelType",
    "NamedToolChoiceFunctionParam",
    "NamedToolChoiceParam",
    "PromptUsageDetails",
    "ResponseFormatParam",
    "StreamOptionsParam",
    "StreamingChatChoiceUpdate",
    "StreamingChatCompletionsUpdate",
    "StreamingChatResponseMessageUpdate",
    "StreamingChatResponseToolCallUpdate",
    "StreamingFunctionCallUpdate",
    "SystemMessage",
    "SystemMessageParam",
    "TextContentItem",
    "TextContentPartParam",
    "ToolCallParam",
    "ToolMessage",
    "ToolMessageParam",
    "ToolParam",
    "UserMessage",
    "UserMessageParam",
]


# --------------------------------------------------------------------------------------------
# Content items


@wire_names
@define
class TextContentItem(_WireMapping):
    """A text part of a user message."""

    text: str
    type: Literal["text"] = field(default="text", init=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise RequestValidationError(
                f"TextContentItem(text=...) takes a str, got {type(self.text).__name__}"
            )


@wire_names
@define
class ImageUrl(_WireMapping):
    """An image given by URL: ``https://...`` or a ``data:image/<format>;base64,...`` URL."""

    url: str
    detail: ImageDetailLevel | str | None = None

    @classmethod
    def load(
        cls,
        *,
        image_file: str | os.PathLike[str],
        image_format: str | None = None,
        detail: ImageDetailLevel | str | None = None,
    ) -> ImageUrl:
        """Read a local image file into a ``data:`` URL.

        ``image_format`` is the part after ``image/`` (``png``, ``jpeg``, ...); when omitted it
        is guessed from the file name.
        """
        path = os.fspath(image_file)
        if image_format is None:
            guessed, _ = mimetypes.guess_type(path)
            if not guessed or not guessed.startswith("image/"):
                raise RequestValidationError(
                    f"cannot tell the image format of {path!r}; pass image_format='png' "
                    "(or 'jpeg', 'gif', 'webp')"
                )
            image_format = guessed.removeprefix("image/")
        with open(path, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        return cls(url=f"data:image/{image_format};base64,{data}", detail=detail)


@wire_names
@define
class ImageContentItem(_WireMapping):
    """An image part of a user message: ``ImageContentItem(image_url=ImageUrl(...))``.

    ``image=`` is accepted as another spelling of ``image_url=``; a plain URL string works too.
    """

    image_url: ImageUrl = field(default=None)
    type: Literal["image_url"] = field(default="image_url", init=False)
    image: ImageUrl | str | None = field(default=None, kw_only=True, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        given = self.image_url if self.image_url is not None else self.image
        if self.image_url is not None and self.image is not None:
            raise RequestValidationError(
                "ImageContentItem takes image_url= or image=, not both (they mean the same)"
            )
        if isinstance(given, str):
            given = ImageUrl(url=given)
        if not isinstance(given, ImageUrl):
            raise RequestValidationError(
                "ImageContentItem needs image_url=ImageUrl(url=...) (or ImageUrl.load(image_file="
                f"..., image_format=...)); got {type(given).__name__}"
            )
        self.image_url = given
        self.image = None


@wire_names
@define
class InputAudio(_WireMapping):
    """Base64-encoded audio input with its format (``wav`` or ``mp3``)."""

    data: str
    format: AudioContentFormat | str

    @classmethod
    def load(
        cls, *, audio_file: str | os.PathLike[str], audio_format: AudioContentFormat | str
    ) -> InputAudio:
        """Read a local audio file and base64-encode it."""
        with open(os.fspath(audio_file), "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        return cls(data=data, format=audio_format)


@wire_names
@define
class AudioContentItem(_WireMapping):
    """An audio part of a user message."""

    input_audio: InputAudio
    type: Literal["input_audio"] = field(default="input_audio", init=False)


ContentItem = TextContentItem | ImageContentItem | AudioContentItem
"""One part of a multi-part user message."""


# --------------------------------------------------------------------------------------------
# Tools


@wire_names
@define
class FunctionDefinition(_WireMapping):
    """A function the model may call: its name, a description and a JSON schema of parameters."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RequestValidationError("FunctionDefinition needs a non-empty name=")


@wire_names
@define
class ChatCompletionsToolDefinition(_WireMapping):
    """A tool offered to the model.

    ``ChatCompletionsToolDefinition(function=FunctionDefinition(name=..., parameters={...}))``
    """

    function: FunctionDefinition
    type: Literal["function"] = field(default="function", init=False)


ChatCompletionsFunctionToolDefinition = ChatCompletionsToolDefinition
"""Another name of :class:`ChatCompletionsToolDefinition` (used by the Azure documentation)."""


@wire_names
@define
class ChatCompletionsNamedToolChoiceFunction(_WireMapping):
    """Names the function in a :class:`ChatCompletionsNamedToolChoice`."""

    name: str


@wire_names
@define
class ChatCompletionsNamedToolChoice(_WireMapping):
    """Forces the model to call one named function."""

    function: ChatCompletionsNamedToolChoiceFunction
    type: Literal["function"] = field(default="function", init=False)


# --------------------------------------------------------------------------------------------
# Response formats


@wire_names
@define
class ChatCompletionsResponseFormat(_WireMapping):
    """Base of the response-format objects; ``type`` is the wire value."""

    type: str


@wire_names
@define
class ChatCompletionsResponseFormatText(ChatCompletionsResponseFormat):
    """Plain text output (the default)."""

    type: str = field(default="text", init=False)


@wire_names
@define
class ChatCompletionsResponseFormatJSON(ChatCompletionsResponseFormat):
    """JSON mode: the model outputs a valid JSON object (ask for JSON in the prompt too)."""

    type: str = field(default="json_object", init=False)


ChatCompletionsResponseFormatJsonObject = ChatCompletionsResponseFormatJSON
"""Another name of :class:`ChatCompletionsResponseFormatJSON`."""


@wire_names
@define
class JsonSchemaFormat(_WireMapping):
    """Structured output: the model's JSON must follow ``schema``."""

    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


@wire_names
@define
class ChatCompletionsResponseFormatJsonSchema(ChatCompletionsResponseFormat):
    """Structured output as a response-format object wrapping a :class:`JsonSchemaFormat`."""

    json_schema: JsonSchemaFormat = field(kw_only=True)
    type: str = field(default="json_schema", init=False)


# --------------------------------------------------------------------------------------------
# Request messages


def _check_text(cls_name: str, content: object, *, allow_none: bool, allow_parts: bool) -> None:
    if content is None:
        if not allow_none:
            raise RequestValidationError(
                f'{cls_name} needs content: {cls_name}("...") or {cls_name}(content="...")'
            )
        return
    if isinstance(content, str):
        return
    if allow_parts and isinstance(content, list):
        for i, item in enumerate(content):
            if not isinstance(item, (TextContentItem, ImageContentItem, AudioContentItem, Mapping)):
                raise RequestValidationError(
                    f"{cls_name}(content=[...]): item {i} is a {type(item).__name__}; use "
                    "TextContentItem(text=...), ImageContentItem(image_url=ImageUrl(url=...)), "
                    "AudioContentItem(input_audio=InputAudio(...)) or a dict such as "
                    "{'type': 'text', 'text': '...'}"
                )
        return
    kinds = "a str or a list of content items" if allow_parts else "a str"
    raise RequestValidationError(
        f"{cls_name}(content=...) takes {kinds}, got {type(content).__name__}"
    )


@wire_names
@define
class SystemMessage(_WireMapping):
    """Instructions for the model: ``SystemMessage("You are a helpful assistant.")``."""

    content: str | list[ContentItem]
    name: str | None = field(default=None, kw_only=True)
    role: Literal["system"] = field(default="system", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("SystemMessage", self.content, allow_none=False, allow_parts=True)


@wire_names
@define
class DeveloperMessage(_WireMapping):
    """Instructions for reasoning models that take a ``developer`` role instead of ``system``."""

    content: str | list[ContentItem]
    name: str | None = field(default=None, kw_only=True)
    role: Literal["developer"] = field(default="developer", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("DeveloperMessage", self.content, allow_none=False, allow_parts=True)


@wire_names
@define
class UserMessage(_WireMapping):
    """A user's turn: text, or a list of content items (text, images, audio)."""

    content: str | list[ContentItem]
    name: str | None = field(default=None, kw_only=True)
    role: Literal["user"] = field(default="user", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("UserMessage", self.content, allow_none=False, allow_parts=True)


def _as_tool_calls(calls: object) -> list[ChatCompletionsToolCall]:
    """Tool calls for an AssistantMessage: the models, or OpenAI-style dicts turned into them."""
    usage = (
        "AssistantMessage(tool_calls=...) takes a list of ChatCompletionsToolCall(id=..., "
        "function=FunctionCall(name=..., arguments=...)) or of dicts such as {'id': ..., "
        "'type': 'function', 'function': {'name': ..., 'arguments': '...'}}"
    )
    if not isinstance(calls, list | tuple):
        raise RequestValidationError(f"{usage}; got a {type(calls).__name__}")
    result: list[ChatCompletionsToolCall] = []
    for i, call in enumerate(calls):
        if isinstance(call, ChatCompletionsToolCall):
            result.append(call)
            continue
        function = call.get("function") if isinstance(call, Mapping) else None
        if (
            not isinstance(call, Mapping)
            or not isinstance(call.get("id"), str)
            or not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments", ""), str)
        ):
            raise RequestValidationError(f"{usage}; tool_calls[{i}] is not one")
        result.append(
            ChatCompletionsToolCall(
                id=call["id"],
                function=FunctionCall(
                    name=function["name"], arguments=function.get("arguments", "")
                ),
                type=call.get("type") or "function",
            )
        )
    return result


@wire_names
@define
class AssistantMessage(_WireMapping):
    """An earlier answer of the model: content, tool calls, or both."""

    content: str | None = None
    tool_calls: list[ChatCompletionsToolCall] | None = field(default=None, kw_only=True)
    name: str | None = field(default=None, kw_only=True)
    role: Literal["assistant"] = field(default="assistant", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("AssistantMessage", self.content, allow_none=True, allow_parts=False)
        if self.tool_calls is not None:
            self.tool_calls = _as_tool_calls(self.tool_calls)
        if self.content is None and not self.tool_calls:
            raise RequestValidationError("AssistantMessage needs content= or tool_calls= (or both)")


@wire_names
@define
class ToolMessage(_WireMapping):
    """The result of a tool call: ``ToolMessage(content, tool_call_id=call.id)``."""

    content: str | None = None
    tool_call_id: str = field(default=None, kw_only=True)
    role: Literal["tool"] = field(default="tool", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("ToolMessage", self.content, allow_none=True, allow_parts=False)
        if not isinstance(self.tool_call_id, str) or not self.tool_call_id:
            raise RequestValidationError(
                "ToolMessage needs tool_call_id=: the id of the tool call it answers "
                "(tool_call.id from the assistant's tool_calls)"
            )


ChatRequestMessage = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
"""Any message you can send."""
