"""The response models: what the service answers, streamed or not, and ``/info``.

Public under :mod:`inference.models`. Each keeps the fields the service sent that this
library does not know in ``extra``, reachable by item access (see ``_model_base``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import define, field

from ._model_base import (
    NO_EXTRA,
    ChatRole,
    CompletionsFinishReason,
    ModelType,
    _Extensible,
    wire_names,
)

__all__ = [
    "ChatChoice",
    "ChatCompletions",
    "ChatCompletionsToolCall",
    "ChatResponseMessage",
    "CompletionsUsage",
    "CompletionsUsageDetails",
    "FunctionCall",
    "ModelInfo",
    "PromptUsageDetails",
    "StreamingChatChoiceUpdate",
    "StreamingChatCompletionsUpdate",
    "StreamingChatResponseMessageUpdate",
    "StreamingChatResponseToolCallUpdate",
    "StreamingFunctionCallUpdate",
]


class _ServedBy(_Extensible):
    """Response-level fields some services send, read from ``extra``."""

    __slots__ = ()

    @property
    def system_fingerprint(self) -> str | None:
        """The backend configuration the answer came from, when the service says (else None)."""
        return self._extra_text("system_fingerprint")

    @property
    def service_tier(self) -> str | None:
        """The service tier that processed the request, when the service says (else None)."""
        return self._extra_text("service_tier")


class _MaybeRefused(_Extensible):
    """Message-level fields some services send, read from ``extra``."""

    __slots__ = ()

    @property
    def refusal(self) -> str | None:
        """The model's refusal message, when it declined to answer (else None)."""
        return self._extra_text("refusal")


# --------------------------------------------------------------------------------------------
# Tool calls


@wire_names
@define
class FunctionCall(_Extensible):
    """The function a model asks to call, with its arguments as a JSON string."""

    name: str
    arguments: str
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class ChatCompletionsToolCall(_Extensible):
    """A tool call in a response (or in an assistant message you send back)."""

    id: str
    function: FunctionCall
    type: str = "function"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


# --------------------------------------------------------------------------------------------
# Responses


@wire_names
@define
class CompletionsUsageDetails(_Extensible):
    """Breakdown of completion tokens (audio, reasoning, ... as the service reports them)."""

    audio_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class PromptUsageDetails(_Extensible):
    """Breakdown of prompt tokens (audio, cached)."""

    audio_tokens: int | None = None
    cached_tokens: int | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class CompletionsUsage(_Extensible):
    """Token counts of a request."""

    completion_tokens: int = 0
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens_details: CompletionsUsageDetails | None = None
    prompt_tokens_details: PromptUsageDetails | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class ChatResponseMessage(_MaybeRefused):
    """The model's answer in a non-streamed response.

    ``parsed`` holds the answer as an instance of the class passed as ``response_format``.
    It can be appended to the message list as it is: it goes back on the wire as an
    assistant message.
    """

    role: ChatRole | str = ChatRole.ASSISTANT
    content: str | None = None
    tool_calls: list[ChatCompletionsToolCall] | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)
    parsed: Any = field(default=None, kw_only=True, repr=False, eq=False)
    """The answer as an instance of the class given as ``response_format`` (None otherwise).

    Not a wire field: the client sets it after checking and parsing ``content``."""


@wire_names
@define
class ChatChoice(_Extensible):
    """One answer of a non-streamed response."""

    index: int = 0
    message: ChatResponseMessage = field(factory=ChatResponseMessage)
    finish_reason: CompletionsFinishReason | str | None = None
    logprobs: Any = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class ChatCompletions(_ServedBy):
    """A chat-completions response: ``choices[0].message.content``, ``usage``, ``model``."""

    id: str = ""
    created: datetime | None = None
    model: str = ""
    choices: list[ChatChoice] = field(factory=list)
    usage: CompletionsUsage | None = None
    object: str = "chat.completion"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class StreamingFunctionCallUpdate(_Extensible):
    """A fragment of a streamed function call: the name (first fragment) and argument text."""

    name: str | None = None
    arguments: str | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class StreamingChatResponseToolCallUpdate(_Extensible):
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together."""

    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: StreamingFunctionCallUpdate | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class StreamingChatResponseMessageUpdate(_MaybeRefused):
    """The new part of the answer in one streamed update."""

    role: ChatRole | str | None = None
    content: str | None = None
    tool_calls: list[StreamingChatResponseToolCallUpdate] | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class StreamingChatChoiceUpdate(_Extensible):
    """One choice of a streamed update. ``delta`` is never None (it may be empty)."""

    index: int = 0
    delta: StreamingChatResponseMessageUpdate = field(factory=StreamingChatResponseMessageUpdate)
    finish_reason: CompletionsFinishReason | str | None = None
    logprobs: Any = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class StreamingChatCompletionsUpdate(_ServedBy):
    """One event of a streamed response. ``choices`` may be empty (usage or filter results)."""

    id: str = ""
    created: datetime | None = None
    model: str = ""
    choices: list[StreamingChatChoiceUpdate] = field(factory=list)
    usage: CompletionsUsage | None = None
    object: str = "chat.completion.chunk"
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)


@wire_names
@define
class ModelInfo(_Extensible):
    """What ``/info`` says about the model behind an endpoint."""

    model_name: str = ""
    model_type: ModelType | str = ""
    model_provider_name: str = ""
    extra: Mapping[str, Any] = field(default=NO_EXTRA, kw_only=True, repr=False)
