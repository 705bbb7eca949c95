"""JSON into Python classes: structured answers, and tool arguments.

attrs classes, dataclasses and TypedDicts are built by one cattrs converter of their own
(strict: a string field takes only a string, unknown keys are refused), pydantic models by
pydantic. Everything raises :class:`ParseFailure` (a ``ValueError``) with a short reason,
which the callers turn into the project's errors. Protocol code: no I/O.
"""

from __future__ import annotations

import datetime
import enum
import json
import math
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from cattrs import Converter, transform_error
from cattrs.errors import BaseValidationError
from cattrs.strategies import configure_union_passthrough

from ._schema import class_kind, json_schema_format, object_schema
from ._values import check_json_value, show_int
from .exceptions import (
    RefusalError,
    RequestValidationError,
    StructuredOutputError,
    TruncatedOutputError,
)
from .models import ChatCompletions, CompletionsFinishReason

__all__ = [
    "ParseFailure",
    "attach_parsed",
    "load_json",
    "parse_json",
    "partial_json",
    "structure",
    "to_json_text",
    "typed_response_format",
]


class ParseFailure(ValueError):
    """JSON that does not fit the type asked for (the message says where and why)."""


def _strict(kind: type, *accepted: type) -> Callable[[Any, Any], Any]:
    allowed = accepted or (kind,)

    def hook(value: Any, _type: Any) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, allowed):
            raise ParseFailure(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        result: Any = value
        if kind is not float:
            return result
        try:
            return float(result)
        except OverflowError:  # a whole number past a float's range (JSON has no limit)
            raise ParseFailure(
                f"expected float, got {show_int(result)}, beyond the range of a float"
            ) from None

    return hook


def _iso(kind: type) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, str):
            raise ParseFailure(f"expected an ISO {kind.__name__} string, got {value!r}")
        return kind.fromisoformat(value)  # type: ignore[attr-defined]

    return hook


def _uuid(value: Any, _type: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ParseFailure(f"expected a UUID string, got {value!r}")
    return uuid.UUID(value)


def _pydantic_hook(cls: type) -> Callable[[Any, Any], Any]:
    return lambda value, _type: cls.model_validate(value)  # type: ignore[attr-defined]


def _build_converter() -> Converter:
    conv = Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(int, _strict(int))
    conv.register_structure_hook(float, _strict(float, int, float))
    conv.register_structure_hook(bool, _strict(bool))
    conv.register_structure_hook(datetime.datetime, _iso(datetime.datetime))
    conv.register_structure_hook(datetime.date, _iso(datetime.date))
    conv.register_structure_hook(uuid.UUID, _uuid)
    conv.register_structure_hook_factory(lambda t: class_kind(t) == "pydantic", _pydantic_hook)
    conv.register_unstructure_hook_factory(
        lambda t: class_kind(t) == "pydantic",
        lambda _cls: lambda obj: obj.model_dump(mode="json", by_alias=True),
    )
    conv.register_unstructure_hook(datetime.datetime, lambda d: d.isoformat())
    conv.register_unstructure_hook(datetime.date, lambda d: d.isoformat())
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_unstructure_hook(enum.Enum, lambda e: e.value)
    # Unions of JSON scalars (``int | str``, ``float | None`` ...) take the value as it is,
    # when its type is one of them.
    configure_union_passthrough(str | int | float | bool | None, conv)
    return conv


_converter = _build_converter()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseValidationError):
        return "; ".join(transform_error(exc, format_exception=_describe))
    return _describe(exc, None)


def _describe(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "a field is missing"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def structure(data: Any, tp: Any) -> Any:
    """``data`` (parsed JSON) as an instance of ``tp``; :class:`ParseFailure` if it does not fit."""
    try:
        return _converter.structure(data, tp)
    except ParseFailure:
        raise
    except Exception as exc:  # cattrs, pydantic, KeyError, TypeError, ValueError from a hook
        raise ParseFailure(_reason(exc)) from exc


# 19 digits or more: maybe beyond 64 bits, which orjson reads as a float (or refuses as
# "infinity" past a double's range). A match inside a string only costs the slower parse.
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a float")
    return value


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON value")


def load_json(text: str) -> Any:
    """JSON text as Python values, whole numbers exact at any size; :class:`ParseFailure`
    when it is not JSON.

    orjson reads a whole number beyond 64 bits as a float (so an ``int`` field reported
    "expected int, got float") and refuses one beyond a double's range as "infinity"; text
    holding a run of 19 digits is read by the standard library instead, which keeps such
    numbers exact (and, like orjson, refuses NaN, infinities and numbers past a float's
    range).
    """
    if not _LONG_DIGITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ParseFailure(f"not valid JSON ({exc})") from exc
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_constant)
    except ValueError as exc:  # json.JSONDecodeError is one
        reason = str(exc)
        if "integer string conversion" in reason:
            digits = sys.get_int_max_str_digits()
            reason = (
                f"a whole number has more than {digits:,} digits, Python's limit; "
                "sys.set_int_max_str_digits() raises it"
            )
        raise ParseFailure(f"not valid JSON ({reason})") from exc


def parse_json(text: str, tp: Any) -> Any:
    """JSON text as an instance of ``tp``; :class:`ParseFailure` otherwise."""
    return structure(load_json(text), tp)


def to_json_text(value: Any) -> str:
    """A tool's return value as message text: a str as it is, anything else as JSON.

    :class:`ParseFailure` for a value JSON cannot carry: an object it has no form for, a NaN
    or infinity, a whole number outside 64 bits, a list or dict holding itself (each named
    by its place in the value, which is called ``result``).
    """
    if isinstance(value, str):
        return value
    try:
        data = _converter.unstructure(value)
        check_json_value(data, "result")
        return orjson.dumps(data).decode()
    except RequestValidationError as exc:
        raise ParseFailure(str(exc)) from exc
    except Exception as exc:  # orjson's TypeError, or what unstructuring the value raised
        raise ParseFailure(
            f"result is {type(value).__name__}, which is not JSON-serializable "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _name(tp: Any) -> str:
    return getattr(tp, "__qualname__", repr(tp))


def attach_parsed(completion: ChatCompletions, tp: Any) -> ChatCompletions:
    """Set ``message.parsed`` of each choice to its answer as a ``tp``.

    A choice that only calls tools is left alone. A refusal, a content-filtered answer, a
    truncated answer or one that does not fit ``tp`` raises (see the exceptions).
    """
    for choice in completion.choices:
        message = choice.message
        refusal = message.refusal
        text = message.content
        if refusal or choice.finish_reason == CompletionsFinishReason.CONTENT_FILTERED:
            error = RefusalError(
                f"the model refused to answer as {_name(tp)}: {refusal}"
                if refusal
                else f"the content filter stopped the answer (as {_name(tp)}); see .text",
                text=text,
                completion=completion,
                output_type=tp,
            )
            error.refusal = refusal
            raise error
        if message.tool_calls:
            continue  # not the answer yet: the model wants tools run first
        if choice.finish_reason == CompletionsFinishReason.TOKEN_LIMIT_REACHED:
            raise TruncatedOutputError(
                f"the answer reached the token limit before its {_name(tp)} JSON was complete: "
                "raise max_tokens (the part received is in .text)",
                text=text,
                completion=completion,
                output_type=tp,
            )
        try:
            message.parsed = parse_json(text or "", tp)
        except ParseFailure as exc:
            raise StructuredOutputError(
                f"the answer is not a valid {_name(tp)}: {exc} (the answer is in .text)",
                text=text,
                completion=completion,
                output_type=tp,
            ) from exc
    return completion


def typed_response_format(response_format: Any) -> tuple[Any, Any]:
    """``(format to send, class to parse into)``: a class becomes its strict
    :class:`~inference.models.JsonSchemaFormat`; in ``{"type": "json_object", "schema":
    Class}`` (JSON mode with a schema, as llama-cpp-python's server takes it) the class
    becomes its schema; anything else is sent as it is (no class)."""
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        cls = response_format.get("schema")
        if isinstance(cls, type) and class_kind(cls) is not None:
            return {**response_format, "schema": object_schema(cls)}, cls
    if not isinstance(response_format, type) or class_kind(response_format) is None:
        return response_format, None
    if response_format.__module__ == "inference.models":
        return response_format, None  # a format class passed without ``()``: refused later
    return json_schema_format(response_format), response_format


def partial_json(text: str | None) -> Any:
    """The value of the beginning of a JSON document, as far as it has arrived: open strings,
    arrays and objects are closed, and an unfinished key, number or literal is left out
    (``'{"name": "Ad'`` gives ``{"name": "Ad"}``). None while no value has started, or when
    the text is not the beginning of a JSON document.

    For partial answers while a structured answer streams: pass it the text so far, e.g.
    ``stream.partial_completion().choices[0].message.content``.
    """
    if not text:
        return None
    import jiter

    text = _without_open_number(text)
    try:
        return jiter.from_json(text.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None


# A string of the document (closed, or open at the end of the text), and a number at its end.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*("|\\?$)', re.DOTALL)
_END_NUMBER = re.compile(r"(?<![\w.+-])(?:-?[0-9][-+0-9.eE]*|-)$")


def _without_open_number(text: str) -> str:
    """``text`` without the number it ends in, outside a string: more digits may follow
    (``'{"age": 3'`` may become ``'{"age": 36'``), so its value is not known yet."""
    if not _END_NUMBER.search(text):
        return text
    last = None
    for last in _STRING.finditer(text):  # noqa: B007 - only the last string matters
        pass
    if last is not None and last.end() == len(text) and not last.group(1):
        return text  # the number's characters are inside an open string
    return _END_NUMBER.sub("", text)
