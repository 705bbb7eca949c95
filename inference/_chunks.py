"""Turn the data of streamed chunk events into updates, merged into the stream's accumulator.

The common case is recognised without parsing the whole event. Within one stream, services
send chunk after chunk that differ only in their text: id, created, model, the fingerprint,
the index and ``finish_reason`` are the same bytes every time (see the recordings of Azure
AI, Azure OpenAI and Mistral streams). So after a chunk whose only text is its delta's
``content``, :class:`ChunkParser` keeps that event's bytes before and after the content
string (the prefix and the suffix). When the next event starts with the same prefix and
ends with the same suffix, and what lies between them is exactly one JSON string, then the
event *is* the previous one with another string in that place (JSON grammar: one string
token replaced by another), and only that string is parsed. The update is a fresh copy of
the previous one with the new text (built by
:func:`inference._serialization.one_choice_update`, as a fully parsed one is); the
accumulator only appends the text (through the function
:meth:`~inference._accumulate.ChatCompletionsAccumulator.text_appender` gives),
because merging the other fields again would change nothing (they equal what the previous
update merged). :attr:`ChunkParser.repeats` counts these updates, which the accumulator does
not.

A template is an event with one choice whose delta has a non-empty string ``content`` and
nothing else but a role; no usage, no logprobs; an id, model and object that are strings, a
role and a finish reason that are strings (or their enums) or null (the repeats share these
values, so they must not be mutable); extras nested at most 32 levels (each repeat gets its
own copy of them, and the accumulator then holds the newest copy, as after a full parse);
and exactly one ``"content"`` spelled in its bytes, with no ``\\u`` escape outside the
text, so that the string replaced is the delta's text and not a duplicate key or a key of
an extra. An empty text is not a template: it is a stream's first chunk (the role) or its
last (the finish reason), which the next chunks do not repeat. Anything else (another
shape, a second choice, tool calls, reasoning text, usage, an ``"error"`` key, invalid
JSON) takes the full path: ``orjson.loads`` of the whole event and the builder of
:mod:`inference._serialization`, and becomes the next template when it qualifies. This is
hand-written rather than a library feature because no JSON library offers "parse only what
changed"; the rules above keep it exact (the tests check it against the full path on
generated streams).
"""

from __future__ import annotations

from typing import Any

from orjson import loads as _loads

from ._accumulate import ChatCompletionsAccumulator
from ._serialization import one_choice_update as _build
from ._serialization import update_from_owned_dict
from .models import (
    NO_EXTRA,
    ChatRole,
    CompletionsFinishReason,
    StreamingChatCompletionsUpdate,
)

__all__ = ["ChunkParser"]

_KEY = b'"content"'
_KEY_STRING = b'"content":"'
_ESCAPE = b"\\u"
_SCALARS = (str, int, float, bool, type(None))
# The exact types of a role and of a finish reason that repeats may share (immutable).
_ROLE_TYPES = (str, ChatRole, type(None))
_REASON_TYPES = (str, CompletionsFinishReason, type(None))
_MAX_DEPTH = 32  # deeper extras are not copied per chunk: such events are parsed in full


def _copy_value(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_value(v) for v in value]
    return value


def _within(value: Any, depth: int) -> bool:
    """True if the dicts and lists in ``value`` nest at most ``depth`` levels deep."""
    if type(value) is dict:
        items: Any = value.values()
    elif type(value) is list:
        items = value
    else:
        return True
    return depth > 0 and all(_within(v, depth - 1) for v in items)


def _copier(extra: Any) -> Any:
    """How to give each repeated update its own copy of ``extra``: None (share NO_EXTRA),
    ``dict`` (flat values), :func:`_copy_value` (nested values, e.g. content filter results:
    copied all the way down), or False: nested deeper than ``_MAX_DEPTH``, no template."""
    if extra is NO_EXTRA:
        return None
    if all(type(v) in _SCALARS for v in extra.values()):
        return dict
    return _copy_value if _within(extra, _MAX_DEPTH) else False


def _closing_quote(data: bytes, start: int) -> int:
    """Offset of the quote that ends the JSON string whose text starts at ``start`` (-1: none)."""
    find = data.find
    pos = find(b'"', start)
    while pos >= 0:
        slashes = 0
        while data[pos - 1 - slashes] == 0x5C:  # backslash
            slashes += 1
        if not slashes % 2:
            return pos
        pos = find(b'"', pos + 1)
    return -1


class ChunkParser:
    """Parses the data bytes of message events into updates and adds them to ``accumulator``.

    :meth:`parse` returns None for anything that is not a plain chunk (``[DONE]``, invalid
    JSON, an error object, a shape the builder rejects): the caller handles those, and must
    call :meth:`forget` before it adds an update to the accumulator itself.
    """

    __slots__ = (
        "_append",
        "_choice_copy",
        "_choice_extra",
        "_created",
        "_finish_reason",
        "_id",
        "_index",
        "_model",
        "_nested",
        "_object",
        "_prefix",
        "_role",
        "_start",
        "_suffix",
        "_tail",
        "_top_copy",
        "_top_extra",
        "accumulator",
        "repeats",
    )

    def __init__(self, accumulator: ChatCompletionsAccumulator) -> None:
        self.accumulator = accumulator
        self._prefix: bytes | None = None  # None: no template
        self._suffix = b""
        self._start = 0
        self._tail = 0
        # The template's field values, kept apart from the update handed out (which its
        # receiver may change): id, created, model, object, extra; the choice's index,
        # finish_reason, extra; the delta's role.
        self._id = ""
        self._created: Any = None
        self._model = ""
        self._object = ""
        self._top_extra: Any = NO_EXTRA
        self._top_copy: Any = None
        self._index = 0
        self._finish_reason: Any = None
        self._choice_extra: Any = NO_EXTRA
        self._choice_copy: Any = None
        self._role: Any = None
        self._append: Any = None  # merges a repeat's text into the accumulator
        self._nested = False  # an extra holds dicts or lists (copied for each update)
        self.repeats = 0
        """How many events took the repeated-chunk path (merged without the accumulator's
        ``add``, so not in its ``count``)."""

    def forget(self) -> None:
        """Drop the template: the next event is parsed in full."""
        self._prefix = None

    def parse(self, data: bytes) -> StreamingChatCompletionsUpdate | None:
        """The update of one event's data, added to the accumulator; None if the event is not
        a plain chunk (nothing was added then)."""
        prefix = self._prefix
        if prefix is not None and data.startswith(prefix) and data.endswith(self._suffix):
            try:
                text = _loads(data[self._start : len(data) - self._tail])
            except ValueError:
                text = None
            if type(text) is str:
                # The template's values with another text, in fresh objects (each update owns
                # its ``extra`` mappings, as a fully parsed one does).
                self.repeats += 1
                copy = self._choice_copy
                choice_extra = NO_EXTRA if copy is None else copy(self._choice_extra)
                copy = self._top_copy
                update = _build(
                    self._id,
                    self._created,
                    self._model,
                    self._object,
                    None,
                    NO_EXTRA if copy is None else copy(self._top_extra),
                    self._index,
                    self._finish_reason,
                    None,
                    choice_extra,
                    self._role,
                    text,
                    None,
                    NO_EXTRA,
                )
                if text:
                    self._append(text)
                if self._nested:
                    self._merge_nested(update, update.choices[0])
                return update
        self._prefix = None
        if data == b"[DONE]":
            return None
        try:
            obj = _loads(data)
            if type(obj) is not dict or "error" in obj:
                return None
            built = update_from_owned_dict(obj)
        except ValueError:  # bad JSON or shape (DecodeFailure): the caller reports it
            return None
        self.accumulator.add(built)
        self._remember(data, built)
        return built

    def _merge_nested(self, update: Any, choice: Any) -> None:
        # The accumulator keeps the nested extra values of the last update merged, as after a
        # full parse: not the template's, which their receiver may have changed since.
        self.accumulator.merge_extras(
            choice.index,
            update.extra if self._top_copy is _copy_value else NO_EXTRA,
            choice.extra if self._choice_copy is _copy_value else NO_EXTRA,
        )

    def _remember(self, data: bytes, update: StreamingChatCompletionsUpdate) -> None:
        """Keep ``update`` (just added) as the template if only its content can change."""
        choices = update.choices
        if len(choices) != 1 or update.usage is not None:
            return
        choice = choices[0]
        delta = choice.delta
        if (
            # Text only; an empty text (a stream's first chunk, which carries the role, or
            # its last, which carries the finish reason) is not what the next chunks repeat.
            type(delta.content) is not str
            or not delta.content
            or delta.tool_calls is not None
            or delta.extra is not NO_EXTRA
            or choice.logprobs is not None
            # Values the repeats share with the template must be immutable.
            or type(update.id) is not str
            or type(update.model) is not str
            or type(update.object) is not str
            or type(delta.role) not in _ROLE_TYPES
            or type(choice.finish_reason) not in _REASON_TYPES
            # The one "content" key spelled in the event (only a \u escape could spell
            # another) is the key of the delta's text: that string is the one to replace.
            or data.count(_KEY) != 1
        ):
            return
        key = data.find(_KEY_STRING)
        if key < 0:
            return
        start = key + len(_KEY_STRING) - 1  # the opening quote
        end = _closing_quote(data, start + 1)
        if (
            end < 0
            or data.find(_ESCAPE, 0, start) >= 0
            or data.find(_ESCAPE, end) >= 0
            or _loads(data[start : end + 1]) != delta.content
        ):
            return
        append = self.accumulator.text_appender(choice.index)
        top_copy = _copier(update.extra)
        choice_copy = _copier(choice.extra)
        if append is None or top_copy is False or choice_copy is False:
            return
        self._id = update.id
        self._created = update.created
        self._model = update.model
        self._object = update.object
        self._top_copy = top_copy
        self._top_extra = NO_EXTRA if top_copy is None else top_copy(update.extra)
        self._index = choice.index
        self._finish_reason = choice.finish_reason
        self._choice_copy = choice_copy
        self._choice_extra = NO_EXTRA if choice_copy is None else choice_copy(choice.extra)
        self._role = delta.role
        self._append = append
        self._nested = _copy_value in (self._top_copy, self._choice_copy)
        self._start = start
        self._tail = len(data) - end - 1
        self._suffix = data[end:]
        self._prefix = data[: start + 1]
