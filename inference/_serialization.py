"""Wire JSON to models and back: response parsing, the streaming hot path, request building.

Uses the one cattrs converter of ``inference._converter`` (built once at import, never per
request) and adds the hand-written builders of streaming updates to it. Rules on the wire:
field names as in the API spec, no ``null`` values in requests (unset fields are omitted),
enums as their values. Responses keep unknown fields in ``extra``. Parsing uses orjson.
Protocol code: no I/O, no clocks.

Errors: everything this module raises is :class:`~inference.exceptions.RequestValidationError`
(bad arguments) or :class:`ValueError` subclasses the caller maps (``DecodeFailure``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from . import models as m
from ._converter import (
    DecodeFailure,
    brief,
    converter,
    structure,
    structure_created,
    unstructure,
)
from ._values import check_json_value, plain_real, text_problem
from .exceptions import RequestValidationError

__all__ = [
    "DecodeFailure",
    "converter",
    "dumps",
    "loads_completions",
    "loads_model_info",
    "loads_update",
    "messages_to_wire",
    "response_format_to_wire",
    "structure",
    "tool_choice_to_wire",
    "tools_to_wire",
    "unstructure",
]


def _plain_number(value: Any) -> Any:
    """orjson's ``default``: a number type it does not write itself (a float subclass such as
    ``numpy.float64``, numpy's integers and ``float32``) as a plain int or float."""
    number = plain_real(value)
    if number is None:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    if not math.isfinite(number):
        # JSON has no NaN or infinity (orjson would write null): refused, as for floats.
        raise TypeError(f"{type(value).__name__} {number!r} is not a finite number")
    return number


def dumps(body: Any) -> bytes:
    """Serialize wire data to JSON bytes."""
    try:
        return orjson.dumps(body, default=_plain_number)
    except TypeError as exc:
        problem = text_problem(body, "the request body") if "surrogates" in str(exc) else None
        if problem is not None:
            raise RequestValidationError(problem) from exc
        raise RequestValidationError(
            f"the request holds a value that is not JSON-serializable: {exc}. Pass str, int, "
            "float, bool, None, lists and dicts of them, or this library's models."
        ) from exc


def _loads(data: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        snippet = data[:120] if isinstance(data, str) else data[:120].decode("utf-8", "replace")
        reason = str(exc)
        if isinstance(data, bytes | bytearray | memoryview):
            try:
                bytes(data).decode("utf-8")
            except UnicodeDecodeError as bad:
                # orjson's own words for this ("surrogates not allowed") miss the point.
                reason = (
                    f"it is not valid UTF-8: byte 0x{bad.object[bad.start]:02x} at position "
                    f"{bad.start} ({bad.reason})"
                )
        raise DecodeFailure(f"{what} is not valid JSON ({reason}): {snippet!r}") from exc


def loads_completions(data: bytes | str) -> m.ChatCompletions:
    """Parse a non-streamed chat-completions body."""
    obj = _loads(data, "the response body")
    if not isinstance(obj, dict):
        raise DecodeFailure(f"the response body is JSON but not an object: {type(obj).__name__}")
    if not isinstance(obj.get("choices"), list):
        keys = ", ".join(repr(key) for key in list(obj)[:8]) or "none"
        raise DecodeFailure(
            "the response body has no 'choices' list, so it is not a chat completion (its "
            f"keys: {keys}); check that the endpoint URL points at a chat-completions service"
        )
    completion = structure(obj, m.ChatCompletions)
    # The text fields a stream refuses when they are not strings are refused here as well.
    for choice in completion.choices:
        message = choice.message
        content = message.content
        if content is not None and type(content) is not str:
            raise _not_text(f"choice {choice.index}: the message's content", content)
        for call in message.tool_calls or ():
            arguments = call.function.arguments
            if arguments is not None and type(arguments) is not str:
                raise _not_text(
                    f"choice {choice.index}: a tool call's function.arguments", arguments
                )
    return completion


def loads_model_info(data: bytes | str) -> m.ModelInfo:
    """Parse an ``/info`` body."""
    obj = _loads(data, "the response body")
    if not isinstance(obj, dict):
        raise DecodeFailure(f"the response body is JSON but not an object: {type(obj).__name__}")
    return structure(obj, m.ModelInfo)


# -- the streaming hot path -------------------------------------------------------------------
# One update is built per streamed chunk, so its three builders (update, choice, delta) are
# written out by hand and registered on the converter: cattrs' generated code for classes
# whose fields all have defaults collects keyword arguments in a dict per object and calls a
# hook per field, which costs about twice as much as direct construction. Same rules as the
# generated hooks: unknown keys go to ``extra``, enums are looked up, ``delta`` is never None.
# On the per-chunk path the three objects are allocated with ``object.__new__`` and their
# slots assigned directly, which skips a Python-level ``__init__`` call per object (about
# 0.5 µs per chunk in all). These classes have no validators, converters or post-init hooks;
# tests/test_models.py checks that their fields are exactly the ones set here.


def _index(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int:
        raise DecodeFailure(f"a choice index must be a whole number, got {value!r}")
    return value


_FINISH = {e.value: e for e in m.CompletionsFinishReason}
_ROLE = {e.value: e for e in m.ChatRole}
_Update = m.StreamingChatCompletionsUpdate
_new = object.__new__
_NO_EXTRA = m.NO_EXTRA
_Choice = m.StreamingChatChoiceUpdate
_Delta = m.StreamingChatResponseMessageUpdate
_tool_calls_hook = converter.get_structure_hook(list[m.StreamingChatResponseToolCallUpdate])
_usage_hook = converter.get_structure_hook(m.CompletionsUsage)


# The builders work on a dict they own: fields are popped as they are read and what is left
# over *is* the ``extra`` mapping (no second pass over the keys, no copy). The stream hands
# over each freshly parsed event; the converter's hooks copy first (see below).
_TOOL_CALLS_TYPE = list[m.StreamingChatResponseToolCallUpdate] | None


def _not_text(what: str, value: Any) -> DecodeFailure:
    """The failure for a text field of a chunk that is not a string (text is concatenated)."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return DecodeFailure(f"{what} must be a string or null, got {type(value).__name__} {shown}")


def _tool_calls(calls: Any) -> list[m.StreamingChatResponseToolCallUpdate] | None:
    """The tool-call fragments of a delta; their ``arguments`` must be strings (or null)."""
    built: list[m.StreamingChatResponseToolCallUpdate] | None = _tool_calls_hook(
        calls, _TOOL_CALLS_TYPE
    )
    for call in built or ():
        arguments = None if call.function is None else call.function.arguments
        if arguments is not None and type(arguments) is not str:
            raise _not_text("a tool call's function.arguments", arguments)
    return built


def _delta_rest(d: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The role, tool calls and unknown fields (``extra``) of a delta whose content was read."""
    role = d.pop("role", None)
    calls = d.pop("tool_calls", None)
    return (
        None if role is None else _ROLE.get(role, role),
        None if calls is None else _tool_calls(calls),
        d if d else _NO_EXTRA,
    )


def _owned_delta(o: Any) -> m.StreamingChatResponseMessageUpdate:
    if not o:
        return _Delta()
    content = o.pop("content", None)
    if content is not None and type(content) is not str:
        raise _not_text("a delta's content", content)
    if not o:  # a content-only delta: the common case
        return _Delta(None, content, None)
    role, calls, extra = _delta_rest(o)
    delta = _Delta(role, content, calls)
    delta.extra = extra
    return delta


def _owned_choice(o: Any) -> m.StreamingChatChoiceUpdate:
    pop = o.pop
    reason = pop("finish_reason", None)
    choice = _Choice(
        _index(pop("index", None)),
        _owned_delta(pop("delta", None)),
        _FINISH.get(reason, reason) if reason is not None else None,
        pop("logprobs", None),
    )
    if o:
        choice.extra = o
    return choice


def one_choice_update(
    id: str,
    created: Any,
    model: str,
    object: str,
    usage: m.CompletionsUsage | None,
    extra: Any,
    index: int,
    finish_reason: Any,
    logprobs: Any,
    choice_extra: Any,
    role: Any,
    content: str | None,
    tool_calls: list[m.StreamingChatResponseToolCallUpdate] | None,
    delta_extra: Any,
) -> m.StreamingChatCompletionsUpdate:
    """The one builder of the updates of a stream that have one choice (nearly all of them),
    used by the full parse below and by the repeated-chunk path of
    :class:`inference._chunks.ChunkParser`: the update, its choice and its delta from their
    field values, slots assigned directly (see above). Updates of other shapes are made by
    the models' constructors."""
    delta = _new(_Delta)
    delta.role = role
    delta.content = content
    delta.tool_calls = tool_calls
    delta.extra = delta_extra
    choice = _new(_Choice)
    choice.index = index
    choice.delta = delta
    choice.finish_reason = finish_reason
    choice.logprobs = logprobs
    choice.extra = choice_extra
    update = _new(_Update)
    update.id = id
    update.created = created
    update.model = model
    update.choices = [choice]
    update.usage = usage
    update.object = object
    update.extra = extra
    return update


def update_from_owned_dict(o: dict[str, Any]) -> m.StreamingChatCompletionsUpdate:
    """Build a streaming update from a dict the caller gives up (it is consumed: its known
    keys are removed and the rest becomes ``extra``). Raises :class:`DecodeFailure`."""
    try:
        pop = o.pop
        choices = pop("choices", None)
        usage = pop("usage", None)
        raw_created = pop("created", None)
        created = structure_created(raw_created)  # repeats are cached there
        if choices and len(choices) == 1:
            # One choice (the usual case): its fields read inline, no call per level.
            c = choices[0]
            cpop = c.pop
            index = cpop("index", 0)
            if type(index) is not int:
                index = _index(index)
            d = cpop("delta", None)
            role = calls = None
            delta_extra: Any = _NO_EXTRA
            if d:
                content = d.pop("content", None)
                if content is not None and type(content) is not str:
                    raise _not_text("a delta's content", content)
                if d:  # more than the text (the first chunk's role, tool calls)
                    role, calls, delta_extra = _delta_rest(d)
            else:
                content = None
            reason = cpop("finish_reason", None)
            update = one_choice_update(
                pop("id", None) or "",
                created,
                pop("model", None) or "",
                pop("object", "chat.completion.chunk"),
                None if usage is None else _usage_hook(usage, m.CompletionsUsage),
                _NO_EXTRA,
                index,
                _FINISH.get(reason, reason) if reason is not None else None,
                cpop("logprobs", None),
                c if c else _NO_EXTRA,
                role,
                content,
                calls,
                delta_extra,
            )
        else:
            update = _Update(
                pop("id", None) or "",
                created,
                pop("model", None) or "",
                [_owned_choice(c) for c in choices] if choices else [],
                None if usage is None else _usage_hook(usage, m.CompletionsUsage),
                pop("object", "chat.completion.chunk"),
            )
    except DecodeFailure:
        raise
    except Exception as exc:
        raise DecodeFailure(f"unexpected stream event shape: {brief(exc)}") from exc
    if created is None and raw_created is not None:
        o["created"] = raw_created  # unreadable as a date: kept as sent, in ``extra``
    update.extra = o if o else _NO_EXTRA
    return update


def _copied_delta(o: Any) -> dict[str, Any] | None:
    return dict(o) if o else None


def _copied_choice(o: Any) -> dict[str, Any]:
    copy = dict(o)
    if "delta" in copy:
        copy["delta"] = _copied_delta(copy["delta"])
    return copy


def _copied_update(o: Any) -> dict[str, Any]:
    copy = dict(o)
    choices = copy.get("choices")
    if choices:
        copy["choices"] = [_copied_choice(c) for c in choices]
    return copy


# The converter's hooks leave the caller's dict alone: they build from a copy of each level.
converter.register_structure_hook(
    m.StreamingChatResponseMessageUpdate, lambda o, _t: _owned_delta(_copied_delta(o))
)
converter.register_structure_hook(
    m.StreamingChatChoiceUpdate, lambda o, _t: _owned_choice(_copied_choice(o))
)
converter.register_structure_hook(
    m.StreamingChatCompletionsUpdate, lambda o, _t: update_from_owned_dict(_copied_update(o))
)


def parse_event(data: bytes | str) -> Any:
    """Parse one event's data as JSON (dict expected); :class:`DecodeFailure` otherwise."""
    obj = _loads(data, "a stream event")
    if not isinstance(obj, dict):
        raise DecodeFailure(f"a stream event is JSON but not an object: {str(data)[:120]!r}")
    return obj


def update_from_dict(obj: dict[str, Any]) -> m.StreamingChatCompletionsUpdate:
    """Build a streaming update from a parsed event object (left unchanged)."""
    try:
        copy = _copied_update(obj)
    except Exception as exc:
        raise DecodeFailure(f"unexpected stream event shape: {brief(exc)}") from exc
    return update_from_owned_dict(copy)


def loads_update(data: bytes | str) -> m.StreamingChatCompletionsUpdate:
    """Parse one streamed event's data into an update."""
    return update_from_owned_dict(parse_event(data))


# --------------------------------------------------------------------------------------------
# Request building: messages, tools, tool choice and response format to wire data.

_ROLES = ("system", "developer", "user", "assistant", "tool")
_MESSAGE_TYPES = (
    m.SystemMessage,
    m.DeveloperMessage,
    m.UserMessage,
    m.AssistantMessage,
    m.ToolMessage,
)


# Message classes whose wire form is ``{"content": ..., "role": ...}`` when the content is a
# string and no name is set.
_PLAIN_TEXT_TYPES = frozenset({m.SystemMessage, m.DeveloperMessage, m.UserMessage})

_CONTENT_PARTS = (m.TextContentItem, m.ImageContentItem, m.AudioContentItem, Mapping)


def _message_dict(i: int, msg: Mapping[str, Any]) -> dict[str, Any]:
    role = msg.get("role")
    if role not in _ROLES:
        raise RequestValidationError(
            f"messages[{i}] has role {role!r}; use one of {', '.join(_ROLES)} "
            "(or SystemMessage, UserMessage, AssistantMessage, ToolMessage, DeveloperMessage)"
        )
    content = msg.get("content")
    if role in ("system", "developer", "user") and content is None:
        raise RequestValidationError(f"messages[{i}] ({role}) has no content; add content=...")
    if role == "assistant" and content is None and not msg.get("tool_calls"):
        raise RequestValidationError(f"messages[{i}] (assistant) needs content or tool_calls")
    if role == "tool" and not msg.get("tool_call_id"):
        raise RequestValidationError(
            f"messages[{i}] (tool) needs tool_call_id: the id of the tool call it answers"
        )
    if not (
        content is None
        or isinstance(content, str)
        or (isinstance(content, list) and all(isinstance(c, _CONTENT_PARTS) for c in content))
    ):
        raise RequestValidationError(
            f"messages[{i}] ({role}) content must be a str or a list of content items "
            "(TextContentItem, ImageContentItem, AudioContentItem or dicts such as "
            f"{{'type': 'text', 'text': '...'}}), got {type(content).__name__}"
            + (" holding other values" if isinstance(content, list) else "")
        )
    result = {k: v for k, v in msg.items() if v is not None}
    if not all(type(v) is str for v in result.values()):  # text alone needs no walk
        check_json_value(result, f"messages[{i}]", depth=3)  # body, messages, this message
    return unstructure(result)  # type: ignore[no-any-return]


def _with_assistant_content(wire: dict[str, Any]) -> dict[str, Any]:
    """Give an assistant message that carries only tool calls ``"content": ""``.

    The wire form every server takes for an assistant turn with tool calls and no text:
    - OpenAI and Azure OpenAI: ``content`` may be left out when ``tool_calls`` is set, and an
      empty string is a valid content.
    - Azure AI Model Inference (Mistral and others behind it): answers a tool call with
      ``"content": ""`` itself, and takes it back unchanged.
    - vLLM: renders the model's chat template; several templates read ``message['content']``
      and do text operations on it, which an empty string passes and null may not.
    - Ollama: its OpenAI-compatible endpoint refused a null content ("invalid message content
      type: <nil>") in releases still in use; a string is always accepted.
    - llama.cpp (llama-cpp-python): its Jinja chat templates read ``message['content']`` and
      concatenate it, so a missing key fails ("'dict object' has no attribute 'content'") and
      null fails too.
    So neither omitting ``content`` nor sending null works everywhere; an empty string does.
    """
    if wire.get("role") == "assistant" and wire.get("content") is None:
        wire["content"] = ""
    return wire


def _response_message_to_wire(msg: m.ChatResponseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
    if msg.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in msg.tool_calls
        ]
    return out


def messages_to_wire(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """Turn the caller's messages (models, response messages or dicts) into wire dicts."""
    if isinstance(messages, str | bytes | Mapping):
        raise RequestValidationError(
            'messages must be a list of messages, e.g. [UserMessage("Hello")]; '
            f"got a {type(messages).__name__}"
        )
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        cls = type(msg)
        if cls in _PLAIN_TEXT_TYPES and type(msg.content) is str and msg.name is None:
            # The common text message, written directly (what the converter gives for it).
            out.append({"content": msg.content, "role": msg.role})
        elif isinstance(msg, _MESSAGE_TYPES):
            out.append(_with_assistant_content(unstructure(msg)))
        elif isinstance(msg, m.ChatResponseMessage):
            out.append(_response_message_to_wire(msg))
        elif isinstance(msg, Mapping):
            out.append(_with_assistant_content(_message_dict(i, msg)))
        else:
            raise RequestValidationError(
                f"messages[{i}] is a {type(msg).__name__}; use SystemMessage, UserMessage, "
                "AssistantMessage, ToolMessage, DeveloperMessage, a response's message, or a "
                "dict like {'role': 'user', 'content': '...'}"
            )
    if not out:
        raise RequestValidationError("messages is empty; pass at least one message")
    return out


def tools_to_wire(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """Tools as wire dicts: tool definitions, bare function definitions, or dicts."""
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if isinstance(tool, m.ChatCompletionsToolDefinition):
            out.append(unstructure(tool))
        elif isinstance(tool, m.FunctionDefinition):
            out.append({"type": "function", "function": unstructure(tool)})
        elif isinstance(tool, Mapping):
            if "function" not in tool:
                raise RequestValidationError(
                    f"tools[{i}] has no 'function'; write "
                    "{'type': 'function', 'function': {'name': ..., 'parameters': {...}}}"
                )
            check_json_value(tool, f"tools[{i}]", depth=3)  # the body, tools, this tool
            out.append(unstructure(dict(tool)))
        else:
            raise RequestValidationError(
                f"tools[{i}] is a {type(tool).__name__}; use ChatCompletionsToolDefinition("
                "function=FunctionDefinition(...)) or an OpenAI-style dict"
            )
    return out


def tool_choice_to_wire(choice: Any) -> Any:
    """``auto`` / ``none`` / ``required``, a named tool choice, or a dict."""
    if isinstance(choice, m.ChatCompletionsToolChoicePreset):
        return choice.value
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        raise RequestValidationError(
            f"tool_choice={choice!r} is not a preset; use 'auto', 'none', 'required' or "
            "ChatCompletionsNamedToolChoice(function=ChatCompletionsNamedToolChoiceFunction("
            f"name={choice!r}))"
        )
    if isinstance(choice, Mapping):
        check_json_value(choice, "tool_choice", depth=2)
        return unstructure(dict(choice))
    if isinstance(choice, m.ChatCompletionsNamedToolChoice):
        return unstructure(choice)
    raise RequestValidationError(
        f"tool_choice is a {type(choice).__name__}; use 'auto', 'none', 'required' or "
        "ChatCompletionsNamedToolChoice(...)"
    )


_RF_HELP = (
    "use 'text', 'json_object', JsonSchemaFormat(name=..., schema={...}), "
    "ChatCompletionsResponseFormatText(), ChatCompletionsResponseFormatJSON(), a dict such as "
    "{'type': 'json_object'}, or a class to parse the answer into: an attrs class, a "
    "dataclass, a TypedDict or a pydantic model"
)


def _response_format_refused(fmt: Any) -> RequestValidationError:
    if not isinstance(fmt, type):
        return RequestValidationError(f"response_format is a {type(fmt).__name__}; {_RF_HELP}")
    name = fmt.__qualname__
    if fmt.__module__ == "inference.models":
        return RequestValidationError(
            f"response_format={name} is a response-format class: pass an instance, "
            f"{name}(...); {_RF_HELP}"
        )
    return RequestValidationError(
        f"response_format={name} is a class that is not an attrs class, a dataclass, a "
        f"TypedDict or a pydantic model, so no schema can be made from it; {_RF_HELP}"
    )


def response_format_to_wire(fmt: Any) -> dict[str, Any]:
    """Every accepted spelling of ``response_format`` as its wire dict."""
    if isinstance(fmt, m.ChatCompletionsResponseFormat):
        return unstructure(fmt)  # type: ignore[no-any-return]
    if isinstance(fmt, m.JsonSchemaFormat):
        return {"type": "json_schema", "json_schema": unstructure(fmt)}
    if isinstance(fmt, str):
        if fmt in ("text", "json_object"):
            return {"type": fmt}
        if fmt == "json_schema":
            raise RequestValidationError(
                "response_format='json_schema' needs the schema: pass JsonSchemaFormat("
                "name=..., schema={...})"
            )
        raise RequestValidationError(f"response_format={fmt!r} is not supported; {_RF_HELP}")
    if isinstance(fmt, Mapping):
        check_json_value(fmt, "response_format", depth=2)
        inner = fmt.get("type")
        if (
            isinstance(inner, m.ChatCompletionsResponseFormat | m.JsonSchemaFormat)
            and len(fmt) == 1
        ):
            return response_format_to_wire(inner)
        if inner in ("text", "json_object"):
            return unstructure(dict(fmt))  # type: ignore[no-any-return]
        if inner == "json_schema":
            if not isinstance(fmt.get("json_schema"), Mapping | m.JsonSchemaFormat):
                raise RequestValidationError(
                    "response_format {'type': 'json_schema'} needs a 'json_schema' object with "
                    "'name' and 'schema'"
                )
            return unstructure(dict(fmt))  # type: ignore[no-any-return]
        raise RequestValidationError(f"response_format type {inner!r} is not supported; {_RF_HELP}")
    raise _response_format_refused(fmt)
