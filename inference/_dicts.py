"""Typed dictionaries: the plain-dict spelling of messages, content parts, tools, tool choices
and response formats, as the OpenAI wire format writes them.

``complete()`` accepts them beside the attrs models of :mod:`inference.models` (where they are
public), so code that builds its messages as dicts is type-checked too::

    messages: list[ChatMessageParam] = [{"role": "user", "content": "Hello"}]

They are declarations only: at run time they are plain dicts, checked when a request is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Required, TypeAlias, TypedDict

__all__ = [
    "AssistantMessageParam",
    "AudioContentPartParam",
    "ChatMessageParam",
    "ContentPartParam",
    "DeveloperMessageParam",
    "FunctionCallParam",
    "FunctionDefinitionParam",
    "ImageContentPartParam",
    "ImageUrlParam",
    "InputAudioParam",
    "JsonSchemaParam",
    "NamedToolChoiceFunctionParam",
    "NamedToolChoiceParam",
    "ResponseFormatParam",
    "StreamOptionsParam",
    "SystemMessageParam",
    "TextContentPartParam",
    "ToolCallParam",
    "ToolMessageParam",
    "ToolParam",
    "UserMessageParam",
]


class TextContentPartParam(TypedDict):
    """``{"type": "text", "text": "..."}``."""

    type: Literal["text"]
    text: str


class ImageUrlParam(TypedDict, total=False):
    """``{"url": "https://..." or "data:image/png;base64,...", "detail": "auto"}``."""

    url: Required[str]
    detail: Literal["auto", "low", "high"]


class ImageContentPartParam(TypedDict):
    """``{"type": "image_url", "image_url": {"url": ...}}``."""

    type: Literal["image_url"]
    image_url: ImageUrlParam


class InputAudioParam(TypedDict):
    """``{"data": "<base64>", "format": "wav"}``."""

    data: str
    format: Literal["wav", "mp3"]


class AudioContentPartParam(TypedDict):
    """``{"type": "input_audio", "input_audio": {"data": ..., "format": ...}}``."""

    type: Literal["input_audio"]
    input_audio: InputAudioParam


ContentPartParam: TypeAlias = TextContentPartParam | ImageContentPartParam | AudioContentPartParam
"""One part of a multi-part message."""


class SystemMessageParam(TypedDict, total=False):
    """``{"role": "system", "content": "You are ..."}``."""

    role: Required[Literal["system"]]
    content: Required[str | Sequence[ContentPartParam]]
    name: str


class DeveloperMessageParam(TypedDict, total=False):
    """``{"role": "developer", "content": "..."}`` (reasoning models' instructions)."""

    role: Required[Literal["developer"]]
    content: Required[str | Sequence[ContentPartParam]]
    name: str


class UserMessageParam(TypedDict, total=False):
    """``{"role": "user", "content": "..." or [parts]}``."""

    role: Required[Literal["user"]]
    content: Required[str | Sequence[ContentPartParam]]
    name: str


class FunctionCallParam(TypedDict):
    """``{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}``."""

    name: str
    arguments: str


class ToolCallParam(TypedDict, total=False):
    """``{"id": "call_1", "type": "function", "function": {"name": ..., "arguments": ...}}``."""

    id: Required[str]
    type: Literal["function"]
    function: Required[FunctionCallParam]


class AssistantMessageParam(TypedDict, total=False):
    """``{"role": "assistant", "content": "...", "tool_calls": [...]}`` (content, tool calls
    or both)."""

    role: Required[Literal["assistant"]]
    content: str | None
    tool_calls: Sequence[ToolCallParam]
    name: str
    refusal: str | None


class ToolMessageParam(TypedDict):
    """``{"role": "tool", "tool_call_id": "call_1", "content": "..."}``."""

    role: Literal["tool"]
    content: str
    tool_call_id: str


ChatMessageParam: TypeAlias = (
    SystemMessageParam
    | DeveloperMessageParam
    | UserMessageParam
    | AssistantMessageParam
    | ToolMessageParam
)
"""Any message, as a dict."""


class FunctionDefinitionParam(TypedDict, total=False):
    """``{"name": ..., "description": ..., "parameters": {JSON schema}, "strict": True}``."""

    name: Required[str]
    description: str
    parameters: Mapping[str, object]
    strict: bool


class ToolParam(TypedDict):
    """``{"type": "function", "function": {"name": ..., "parameters": {...}}}``."""

    type: Literal["function"]
    function: FunctionDefinitionParam


class NamedToolChoiceFunctionParam(TypedDict):
    """``{"name": "get_weather"}``."""

    name: str


class NamedToolChoiceParam(TypedDict):
    """``{"type": "function", "function": {"name": ...}}``: call this function."""

    type: Literal["function"]
    function: NamedToolChoiceFunctionParam


class JsonSchemaParam(TypedDict, total=False):
    """``{"name": ..., "schema": {...}, "description": ..., "strict": True}``."""

    name: Required[str]
    schema: Required[Mapping[str, object]]
    description: str
    strict: bool


class _PlainFormatParam(TypedDict):
    type: Literal["text", "json_object"]


class _SchemaFormatParam(TypedDict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaParam


ResponseFormatParam: TypeAlias = _PlainFormatParam | _SchemaFormatParam
"""``{"type": "text"}``, ``{"type": "json_object"}`` or
``{"type": "json_schema", "json_schema": {...}}``."""


class StreamOptionsParam(TypedDict, total=False):
    """``{"include_usage": True}``: end a stream with an update that carries the usage."""

    include_usage: bool
