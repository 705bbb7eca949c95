"""Merge streamed updates into the :class:`~inference.models.ChatCompletions` a non-streamed
call would have returned. Protocol code: no I/O.

- Content is collected per choice as a list of parts and joined once at the end (appends are
  constant time; the text so far is never re-copied per chunk).
- Tool calls are merged by ``index``; a server that omits ``index`` (Mistral) is merged by
  ``id``, and a fragment with neither continues the last call of that choice. Indexes may arrive
  out of order or with gaps. ``id``, ``type`` and ``name`` are set once (servers that repeat
  them in every fragment do not get them concatenated); ``arguments`` are concatenated.
- ``finish_reason``, ``usage``, ``role`` and unknown fields (``extra``) are kept: the last
  value wins, except that an empty ``id``/``model`` (Azure OpenAI annotation events) never
  overwrites a real one.
- Content next to tool calls is ``""`` when the service streamed string content (Mistral sends
  ``""``, as in its non-streamed body) and None when it sent only ``null`` (OpenAI).
- ``content`` and tool-call ``arguments`` must be strings (or None): ``add`` refuses anything
  else with a ``TypeError`` naming the field, before merging any of the update, so ``result``
  never meets it. (The stream parser refuses such a chunk earlier, as a
  :class:`~inference.exceptions.ResponseDecodeError`.)
- A stream parser that recognises a chunk repeating the previous one but for its text merges it
  through :meth:`~ChatCompletionsAccumulator.text_appender` and
  :meth:`~ChatCompletionsAccumulator.merge_extras`, without building the update again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .models import (
    NO_EXTRA,
    ChatChoice,
    ChatCompletions,
    ChatCompletionsToolCall,
    ChatResponseMessage,
    ChatRole,
    CompletionsUsage,
    FunctionCall,
    StreamingChatCompletionsUpdate,
)

__all__ = ["ChatCompletionsAccumulator", "text_delta"]


def text_delta(update: StreamingChatCompletionsUpdate) -> str | None:
    """The non-empty text the first choice adds in ``update``, or None (what the streams'
    ``text_deltas()`` yield)."""
    for choice in update.choices:
        if choice.index == 0:
            return choice.delta.content or None
    return None


def _check_strings(choice: Any) -> None:
    """Refuse a choice whose text or tool-call arguments are not strings (they are joined)."""
    delta = choice.delta
    text = delta.content
    if text is not None and not isinstance(text, str):
        raise TypeError(
            f"choice {choice.index}: delta content must be a string or None, "
            f"got {type(text).__name__}"
        )
    for frag in delta.tool_calls or ():
        function = frag.function
        arguments = None if function is None else function.arguments
        if arguments is not None and not isinstance(arguments, str):
            raise TypeError(
                f"choice {choice.index}: tool call arguments must be a string or None, "
                f"got {type(arguments).__name__}"
            )


def _call_key(parts: _ChoiceParts, frag: Any) -> Any:
    """Which call of the choice a tool-call fragment continues: by index, else by id, else
    the last one."""
    if frag.index is not None:
        key: Any = frag.index
        if frag.id and frag.id not in parts.by_id:
            parts.by_id[frag.id] = key
    elif frag.id:
        key = parts.by_id.get(frag.id)
        if key is None:
            key = ("id", frag.id)
            parts.by_id[frag.id] = key
    else:
        key = parts.last_key if parts.last_key is not None else 0
    parts.last_key = key
    return key


def _add_tool_call(parts: _ChoiceParts, frag: Any) -> None:
    key = _call_key(parts, frag)
    call = parts.calls.get(key)
    if call is None:
        call = parts.calls[key] = _ToolCallParts()
    if frag.id and not call.id:
        call.id = frag.id
    if frag.type and not call.type:
        call.type = frag.type
    function = frag.function
    if function is not None:
        if function.name and not call.name:
            call.name = function.name
        if function.arguments:
            call.arguments.append(function.arguments)
    if frag.extra:
        call.extra.update(frag.extra)


def _add_message_extra(merged: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge a delta's unknown fields: strings (e.g. reasoning_content) are joined at the end;
    other values replace, except that None does not replace a value."""
    for key, value in extra.items():
        if isinstance(value, str):
            texts = merged.get(key)
            if isinstance(texts, _Text):
                texts.append(value)
            else:
                merged[key] = _Text([value])
        elif value is not None or key not in merged:
            merged[key] = value


class _Text(list[str]):
    """Text fragments of an unknown delta field, joined once at the end."""

    __slots__ = ()


class _ToolCallParts:
    __slots__ = ("arguments", "extra", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        self.extra: dict[str, Any] = {}


class _ChoiceParts:
    __slots__ = (
        "by_id",
        "calls",
        "content",
        "extra",
        "finish_reason",
        "last_key",
        "message_extra",
        "role",
        "text_seen",
    )

    def __init__(self) -> None:
        self.role: Any = None
        self.content: list[str] = []
        self.text_seen = False  # a content delta was a string (even ""), not null
        self.finish_reason: Any = None
        self.calls: dict[Any, _ToolCallParts] = {}
        self.by_id: dict[str, Any] = {}
        self.last_key: Any = None
        self.extra: dict[str, Any] = {}
        self.message_extra: dict[str, Any] = {}


class ChatCompletionsAccumulator:
    """Feed it every update with :meth:`add`; :meth:`result` gives the assembled completion.

    Usable on its own, e.g. for updates replayed from a log.
    """

    __slots__ = ("_choices", "_created", "_extra", "_id", "_model", "_usage", "count")

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self._id = ""
        self._model = ""
        self._created: Any = None
        self._usage: CompletionsUsage | None = None
        self._extra: dict[str, Any] = {}
        self.count = 0
        """How many updates were added."""

    def add(self, update: StreamingChatCompletionsUpdate) -> None:
        """Merge one update. A ``content`` or tool-call ``arguments`` that is not a string (nor
        None) raises ``TypeError`` and nothing of the update is merged."""
        choices = update.choices
        for choice in choices:
            delta = choice.delta
            text = delta.content
            if (text is not None and type(text) is not str) or delta.tool_calls:
                _check_strings(choice)
        self.count += 1
        value: Any = update.id
        if value:
            self._id = value
        value = update.model
        if value:
            self._model = value
        value = update.created
        if (
            value is not None
            and value is not self._created
            and (self._created is None or value.timestamp() != 0)
        ):
            self._created = value
        value = update.usage
        if value is not None:
            self._usage = value
        value = update.extra
        if value is not NO_EXTRA:
            self._extra.update(value)
        for choice in choices:
            self._add_choice(choice)

    def _add_choice(self, choice: Any) -> None:
        parts = self._choices.get(choice.index)
        if parts is None:
            parts = self._choices[choice.index] = _ChoiceParts()
        delta = choice.delta
        text = delta.content
        if text is not None:
            if text:
                parts.content.append(text)
            parts.text_seen = True
        if delta.role is not None:
            parts.role = delta.role
        if choice.finish_reason is not None:
            parts.finish_reason = choice.finish_reason
        if delta.tool_calls:
            for frag in delta.tool_calls:
                _add_tool_call(parts, frag)
        if choice.extra is not NO_EXTRA:
            parts.extra.update(choice.extra)
        if delta.extra is not NO_EXTRA and delta.extra:
            _add_message_extra(parts.message_extra, delta.extra)

    def text_appender(self, index: int) -> Callable[[str], None] | None:
        """For a stream parser: a function that merges, from its text alone, an update equal to
        the last one merged but for its ``content`` (a non-empty string) in choice ``index``.

        Such an update changes nothing but the text, so only the text is added (a non-empty
        string each call). These merges are not counted in :attr:`count`: the parser counts
        them. None if no update had choice ``index`` yet.
        """
        parts = self._choices.get(index)
        return None if parts is None else parts.content.append

    def merge_extras(
        self, index: int, extra: Mapping[str, Any], choice_extra: Mapping[str, Any]
    ) -> None:
        """Merge the unknown fields of an update, and of its choice ``index``, alone (the other
        fields merged already, through :meth:`text_appender`)."""
        if extra is not NO_EXTRA:
            self._extra.update(extra)
        if choice_extra is not NO_EXTRA:
            self._choices[index].extra.update(choice_extra)

    def result(self) -> ChatCompletions:
        """The completion assembled from everything added so far."""
        choices = []
        for index in sorted(self._choices):
            parts = self._choices[index]
            tool_calls = None
            if parts.calls:
                ordered = sorted(
                    parts.calls.items(),
                    key=lambda kv: (
                        isinstance(kv[0], tuple),
                        kv[0] if isinstance(kv[0], int) else 0,
                    ),
                )
                tool_calls = [
                    ChatCompletionsToolCall(
                        id=call.id or "",
                        type=call.type or "function",
                        function=FunctionCall(
                            name=call.name or "", arguments="".join(call.arguments)
                        ),
                        extra=dict(call.extra),
                    )
                    for _, call in ordered
                ]
            content: str | None = "".join(parts.content)
            if not content and tool_calls and not parts.text_seen:
                content = None  # only null content next to the calls, as OpenAI sends it
            choices.append(
                ChatChoice(
                    index=index,
                    message=ChatResponseMessage(
                        role=parts.role if parts.role is not None else ChatRole.ASSISTANT,
                        content=content,
                        tool_calls=tool_calls,
                        extra={
                            k: "".join(v) if isinstance(v, _Text) else v
                            for k, v in parts.message_extra.items()
                        },
                    ),
                    finish_reason=parts.finish_reason,
                    extra=dict(parts.extra),
                )
            )
        return ChatCompletions(
            id=self._id,
            created=self._created,
            model=self._model,
            choices=choices,
            usage=self._usage,
            object="chat.completion",
            extra=dict(self._extra),
        )
