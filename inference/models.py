"""The data models of ``inference``: messages, content items, tools, response formats, responses.

Plain attrs classes, no I/O and no (de)serialization code: that lives in one cattrs converter
in ``inference._serialization``. Names follow the Azure AI Inference SDK
(``azure.ai.inference.models``) so code written for it keeps working, including the older
spellings the Azure documentation uses (``ChatCompletionsFunctionToolDefinition``,
``ChatCompletionsResponseFormatJSON``).

Request models validate their arguments when they are built and raise
:class:`inference.exceptions.RequestValidationError` with a message that says what to fix.

Response models (:class:`ChatCompletions`, :class:`StreamingChatCompletionsUpdate` and their
parts) keep every field the service sent, including fields this library does not know
(Azure OpenAI's ``content_filter_results``, a reasoning model's ``reasoning_content``, ...):
they are in the ``extra`` mapping and reachable with ``item["name"]`` or ``item.get("name")``.
"""

from __future__ import annotations

import base64
import enum
import mimetypes
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from attrs import define, field

from .exceptions import RequestValidationError

__all__ = [
    "AssistantMessage",
    "AudioContentFormat",
    "AudioContentItem",
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
    "ChatRequestMessage",
    "ChatResponseMessage",
    "ChatRole",
    "CompletionsFinishReason",
    "CompletionsUsage",
    "CompletionsUsageDetails",
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
    "PromptUsageDetails",
    "StreamingChatChoiceUpdate",
    "StreamingChatCompletionsUpdate",
    "StreamingChatResponseMessageUpdate",
    "StreamingChatResponseToolCallUpdate",
    "StreamingFunctionCallUpdate",
    "SystemMessage",
    "TextContentItem",
    "ToolMessage",
    "UserMessage",
]


# --------------------------------------------------------------------------------------------
# Enumerations. All are ``str`` enums: they compare equal to their wire values.


class _StrEnum(enum.StrEnum):
    def __str__(self) -> str:
        return str(self.value)


class ChatRole(_StrEnum):
    """The author of a chat message. Formats as its upper-case name (``f"{role}"`` is
    ``ASSISTANT``) and compares equal to its wire value (``role == "assistant"``)."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


class CompletionsFinishReason(_StrEnum):
    """Why the model stopped generating. Unknown reasons from a server stay plain strings."""

    STOPPED = "stop"
    TOKEN_LIMIT_REACHED = "length"
    CONTENT_FILTERED = "content_filter"
    TOOL_CALLS = "tool_calls"


class ImageDetailLevel(_StrEnum):
    """How closely the model looks at an image."""

    AUTO = "auto"
    LOW = "low"
    HIGH = "high"


class AudioContentFormat(_StrEnum):
    """The encoding of audio input."""

    WAV = "wav"
    MP3 = "mp3"


class ChatCompletionsToolChoicePreset(_StrEnum):
    """How the model may use the offered tools: ``auto``, ``none`` or ``required``."""

    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"


class ModelType(_StrEnum):
    """The kind of model behind an endpoint, as reported by ``/info``."""

    EMBEDDINGS = "embeddings"
    CHAT_COMPLETION = "chat-completion"
    IMAGE_EMBEDDINGS = "image_embeddings"
    CHAT = "chat"
    TEXT_GENERATION = "text_generation"
    COMPLETION = "completion"


# --------------------------------------------------------------------------------------------
# Response base: unknown fields are kept in ``extra``.

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The (shared, read-only) ``extra`` of an object that has no unknown fields."""


class _Extensible:
    """Mixin for response models: item access to known and unknown (``extra``) fields."""

    __slots__ = ()
    extra: Mapping[str, Any]
    _wire_names: ClassVar[frozenset[str]] = frozenset()

    def __getitem__(self, name: str) -> Any:
        if name in self._wire_names:
            return getattr(self, name)
        try:
            return self.extra[name]
        except KeyError:
            raise KeyError(
                f"{type(self).__name__} has no field {name!r}; fields present: "
                f"{sorted(self._present())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            (name in self._wire_names and getattr(self, name) is not None) or name in self.extra
        )

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name`` (known or unknown), or ``default`` when absent."""
        try:
            value = self[name]
        except KeyError:
            return default
        return default if value is None else value

    def _present(self) -> Iterator[str]:
        for name in self._wire_names:
            if getattr(self, name) is not None:
                yield name
        yield from self.extra

    def as_dict(self) -> dict[str, Any]:
        """This object as JSON-ready data, in wire names, unknown fields included."""
        from ._serialization import unstructure

        result: dict[str, Any] = unstructure(self)
        return result


def _wire_names(cls: type) -> type:
    import attrs

    cls._wire_names = frozenset(  # type: ignore[attr-defined]
        a.name for a in attrs.fields(cls) if a.name != "extra"
    )
    return cls


# --------------------------------------------------------------------------------------------
# Content items


@define
class TextContentItem:
    """A text part of a user message."""

    text: str
    type: Literal["text"] = field(default="text", init=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise RequestValidationError(
                f"TextContentItem(text=...) takes a str, got {type(self.text).__name__}"
            )


@define
class ImageUrl:
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


@define
class ImageContentItem:
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


@define
class InputAudio:
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


@define
class AudioContentItem:
    """An audio part of a user message."""

    input_audio: InputAudio
    type: Literal["input_audio"] = field(default="input_audio", init=False)


ContentItem = TextContentItem | ImageContentItem | AudioContentItem
"""One part of a multi-part user message."""


# --------------------------------------------------------------------------------------------
# Tools


@define
class FunctionDefinition:
    """A function the model may call: its name, a description and a JSON schema of parameters."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RequestValidationError("FunctionDefinition needs a non-empty name=")


@define
class ChatCompletionsToolDefinition:
    """A tool offered to the model.

    ``ChatCompletionsToolDefinition(function=FunctionDefinition(name=..., parameters={...}))``
    """

    function: FunctionDefinition
    type: Literal["function"] = field(default="function", init=False)


ChatCompletionsFunctionToolDefinition = ChatCompletionsToolDefinition
"""Another name of :class:`ChatCompletionsToolDefinition` (used by the Azure documentation)."""


@define
class ChatCompletionsNamedToolChoiceFunction:
    """Names the function in a :class:`ChatCompletionsNamedToolChoice`."""

    name: str


@define
class ChatCompletionsNamedToolChoice:
    """Forces the model to call one named function."""

    function: ChatCompletionsNamedToolChoiceFunction
    type: Literal["function"] = field(default="function", init=False)


@_wire_names
@define
class FunctionCall(_Extensible):
    """The function a model asks to call, with its arguments as a JSON string."""

    name: str
    arguments: str
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class ChatCompletionsToolCall(_Extensible):
    """A tool call in a response (or in an assistant message you send back)."""

    id: str
    function: FunctionCall
    type: str = "function"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


# --------------------------------------------------------------------------------------------
# Response formats


@define
class ChatCompletionsResponseFormat:
    """Base of the response-format objects; ``type`` is the wire value."""

    type: str


@define
class ChatCompletionsResponseFormatText(ChatCompletionsResponseFormat):
    """Plain text output (the default)."""

    type: str = field(default="text", init=False)


@define
class ChatCompletionsResponseFormatJSON(ChatCompletionsResponseFormat):
    """JSON mode: the model outputs a valid JSON object (ask for JSON in the prompt too)."""

    type: str = field(default="json_object", init=False)


ChatCompletionsResponseFormatJsonObject = ChatCompletionsResponseFormatJSON
"""Another name of :class:`ChatCompletionsResponseFormatJSON`."""


@define
class JsonSchemaFormat:
    """Structured output: the model's JSON must follow ``schema``."""

    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


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


@define
class SystemMessage:
    """Instructions for the model: ``SystemMessage("You are a helpful assistant.")``."""

    content: str | list[ContentItem]
    name: str | None = field(default=None, kw_only=True)
    role: Literal["system"] = field(default="system", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("SystemMessage", self.content, allow_none=False, allow_parts=True)


@define
class DeveloperMessage:
    """Instructions for reasoning models that take a ``developer`` role instead of ``system``."""

    content: str | list[ContentItem]
    name: str | None = field(default=None, kw_only=True)
    role: Literal["developer"] = field(default="developer", init=False)

    def __attrs_post_init__(self) -> None:
        _check_text("DeveloperMessage", self.content, allow_none=False, allow_parts=True)


@define
class UserMessage:
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


@define
class AssistantMessage:
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


@define
class ToolMessage:
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


# --------------------------------------------------------------------------------------------
# Responses


@_wire_names
@define
class CompletionsUsageDetails(_Extensible):
    """Breakdown of completion tokens (audio, reasoning, ... as the service reports them)."""

    audio_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class PromptUsageDetails(_Extensible):
    """Breakdown of prompt tokens (audio, cached)."""

    audio_tokens: int | None = None
    cached_tokens: int | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class CompletionsUsage(_Extensible):
    """Token counts of a request."""

    completion_tokens: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens_details: CompletionsUsageDetails | None = None
    prompt_tokens_details: PromptUsageDetails | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class ChatResponseMessage(_Extensible):
    """The model's answer in a non-streamed response.

    It can be appended to the message list as it is: it goes back on the wire as an
    assistant message.
    """

    role: ChatRole | str = ChatRole.ASSISTANT
    content: str | None = None
    tool_calls: list[ChatCompletionsToolCall] | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class ChatChoice(_Extensible):
    """One answer of a non-streamed response."""

    index: int = 0
    message: ChatResponseMessage = field(factory=ChatResponseMessage)
    finish_reason: CompletionsFinishReason | str | None = None
    logprobs: Any = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class ChatCompletions(_Extensible):
    """A chat-completions response: ``choices[0].message.content``, ``usage``, ``model``."""

    id: str = ""
    created: datetime | None = None
    model: str = ""
    choices: list[ChatChoice] = field(factory=list)
    usage: CompletionsUsage | None = None
    object: str = "chat.completion"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class StreamingFunctionCallUpdate(_Extensible):
    """A fragment of a streamed function call: the name (first fragment) and argument text."""

    name: str | None = None
    arguments: str | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class StreamingChatResponseToolCallUpdate(_Extensible):
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together."""

    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: StreamingFunctionCallUpdate | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class StreamingChatResponseMessageUpdate(_Extensible):
    """The new part of the answer in one streamed update."""

    role: ChatRole | str | None = None
    content: str | None = None
    tool_calls: list[StreamingChatResponseToolCallUpdate] | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class StreamingChatChoiceUpdate(_Extensible):
    """One choice of a streamed update. ``delta`` is never None (it may be empty)."""

    index: int = 0
    delta: StreamingChatResponseMessageUpdate = field(factory=StreamingChatResponseMessageUpdate)
    finish_reason: CompletionsFinishReason | str | None = None
    logprobs: Any = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class StreamingChatCompletionsUpdate(_Extensible):
    """One event of a streamed response. ``choices`` may be empty (usage or filter results)."""

    id: str = ""
    created: datetime | None = None
    model: str = ""
    choices: list[StreamingChatChoiceUpdate] = field(factory=list)
    usage: CompletionsUsage | None = None
    object: str = "chat.completion.chunk"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@_wire_names
@define
class ModelInfo(_Extensible):
    """What ``/info`` says about the model behind an endpoint."""

    model_name: str = ""
    model_type: ModelType | str = ""
    model_provider_name: str = ""
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)
