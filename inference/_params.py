"""The parameters of ``complete()``, declared once, and the checked request they make.

:class:`RequestParams` declares every body parameter with its type; the sync and async
clients take it as ``**params: Unpack[...]`` (in ``complete()``, and as the client's
defaults), so a parameter is added here and nowhere else. Each parameter's check and wire
conversion follow from its declared type, read once at import: a number must be a finite
``int`` or ``float``, a whole number an ``int`` (never a bool), within its ``AtLeast`` bound,
a text a ``str``; subclasses and other number types (``numpy.float64``, ``IntEnum``,
``numpy.int64``) are sent as plain ``int`` or ``float``; a ``Wire`` marker names the
converter of the richer ones (``stop``, ``tools``, ``tool_choice``, ``response_format``,
``stream_options``).

Everything is checked before anything is sent; a bad value raises
:class:`~inference.exceptions.RequestValidationError` naming the argument and saying how to
fix it.

How the body is assembled (and what collides):

1. ``messages``, ``stream`` and the named parameters (a call's value overrides the client's
   default of the same name);
2. ``model_extras`` (the client's, updated by the call's): keys the API does not define, sent
   at the body root with the header ``extra-parameters: pass-through``. A key that is a named
   parameter of the Azure AI Inference SDK (``temperature``, ``tools``, ...) raises; so does a
   key already set by step 1;
3. ``extra_body``: any keys, merged at the body root as given (not checked: an escape hatch,
   as in openai-python). A key already set by step 1 or 2 raises: each value is given once.

``headers`` and ``extra_headers`` are this call's headers (the same name in both raises);
``extra_query`` adds query parameters (one the endpoint sets itself, ``api-version``, raises:
use ``api_version=`` on the client).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    TypeAlias,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from attrs import frozen

from . import models as m
from ._config import RetryPolicy, Timeout
from ._dicts import (
    ChatMessageParam,
    NamedToolChoiceParam,
    ResponseFormatParam,
    StreamOptionsParam,
    ToolParam,
)
from ._keywords import BODY_EXTRAS, EXTRAS, check_names
from ._parse import typed_response_format
from ._serialization import (
    dumps,
    messages_to_wire,
    response_format_to_wire,
    tool_choice_to_wire,
    tools_to_wire,
    unstructure,
)
from ._tools import Tool, tools_for_request
from ._values import (
    INT64_MAX,
    INT64_MIN,
    check_json_value,
    foreign_body_value,
    json_number_problem,
    plain_real,
    plain_whole,
    show,
)
from .exceptions import RequestValidationError

__all__ = [
    "CompleteParams",
    "MessageInput",
    "RequestParams",
    "ResponseFormatInput",
    "ToolChoiceInput",
    "ToolInput",
    "ToolLoopParams",
]

MessageInput: TypeAlias = m.ChatRequestMessage | m.ChatResponseMessage | ChatMessageParam
"""A message for ``messages=``: a message model, a response's message, or a dict."""
ToolInput: TypeAlias = (
    m.ChatCompletionsToolDefinition | m.FunctionDefinition | ToolParam | Tool | Callable[..., Any]
)
"""A tool for ``tools=``: a tool definition, a bare function definition, a dict, or a Python
function (its definition is derived from its type hints and docstring)."""
ToolChoiceInput: TypeAlias = (
    Literal["auto", "none", "required"]
    | m.ChatCompletionsToolChoicePreset
    | m.ChatCompletionsNamedToolChoice
    | NamedToolChoiceParam
)
"""``tool_choice=``: a preset, a named function, or its dict."""
ResponseFormatInput: TypeAlias = (
    Literal["text", "json_object"]
    | m.ChatCompletionsResponseFormat
    | m.JsonSchemaFormat
    | ResponseFormatParam
    | type
)
"""``response_format=``: a name, a response-format model, a JSON schema, a dict, or a class
(attrs, dataclass, TypedDict, pydantic) whose instance the answer is parsed into."""


# -- the markers a declaration may carry --------------------------------------------------


@frozen
class AtLeast:
    """A whole number's lower bound."""

    minimum: int


@frozen
class NonEmpty:
    """A text that may not be empty."""


@frozen
class Wire:
    """The converter from the caller's value to wire data (it checks the value too)."""

    convert: Callable[[str, Any], Any]


def _stop(name: str, value: Any) -> list[str]:
    if not isinstance(value, str | list | tuple):
        raise RequestValidationError(
            f"{name} must be a string or a list of strings, got {type(value).__name__} "
            f'{_show(value)}; pass {name}="..." or {name}=["...", "..."]'
        )
    items = [value] if isinstance(value, str) else value
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise RequestValidationError(
                f"{name}[{i}] must be a str, got {type(item).__name__} {_show(item)}; "
                f'pass {name}="..." or {name}=["...", "..."]'
            )
    return list(items)


def _tools(_name: str, value: Any) -> list[dict[str, Any]]:
    return tools_to_wire(tools_for_request(value)[0] or [])  # it checks value is a list


def _stream_options(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise RequestValidationError(
            f"{name} must be a dict such as {{'include_usage': True}}, got {type(value).__name__}"
        )
    check_json_value(value, name, depth=2)
    return unstructure(dict(value))


PositiveInt = Annotated[int, AtLeast(1)]
ModelName = Annotated[str, NonEmpty()]
Stop = Annotated[str | Sequence[str], Wire(_stop)]
Tools = Annotated[Sequence[ToolInput], Wire(_tools)]
ToolChoice = Annotated[ToolChoiceInput, Wire(lambda _name, v: tool_choice_to_wire(v))]
ResponseFormat = Annotated[ResponseFormatInput, Wire(lambda _name, v: response_format_to_wire(v))]
StreamOptions = Annotated[StreamOptionsParam, Wire(_stream_options)]


class _SamplingParams(TypedDict, total=False):
    model: ModelName | None
    frequency_penalty: float | None
    presence_penalty: float | None
    temperature: float | None
    top_p: float | None
    max_tokens: PositiveInt | None
    max_completion_tokens: PositiveInt | None
    response_format: ResponseFormat | None
    stop: Stop | None
    tool_choice: ToolChoice | None
    seed: int | None
    n: PositiveInt | None
    user: str | None


class RequestParams(_SamplingParams, total=False):
    """The request parameters ``complete()`` takes by name, and the client takes as defaults:
    ``model``, ``frequency_penalty``, ``presence_penalty``, ``temperature``, ``top_p``,
    ``max_tokens``, ``max_completion_tokens``, ``response_format``, ``stop``,
    ``tool_choice``, ``seed``, ``n``, ``user`` and ``tools``.

    None (or leaving one out) means "not set": it is not sent, and the server's default
    applies.
    """

    tools: Tools | None


class _CallOptions(TypedDict, total=False):
    stream_options: StreamOptions | None
    model_extras: Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, str] | None
    headers: Mapping[str, str] | None
    timeout: Timeout | float | None
    retry: RetryPolicy | int | None


class CompleteParams(RequestParams, _CallOptions, total=False):
    """Everything ``complete()`` takes by keyword besides ``messages`` and ``stream``: the
    request parameters, and the options of one call (``stream_options``, ``model_extras``,
    ``extra_body``, ``extra_headers``, ``extra_query``, ``headers``, ``timeout``,
    ``retry``; see the module docstring for how they combine)."""


class ToolLoopParams(_SamplingParams, _CallOptions, total=False):
    """What ``run_tools()`` and ``stream_tools()`` pass to every ``complete()`` call: the
    parameters of :class:`CompleteParams` but ``tools`` (a parameter of their own)."""


# -- checks derived from the declarations ----------------------------------------------------


_show = show


def _number(name: str, value: Any) -> float:
    number = plain_real(value)
    if number is None:
        raise RequestValidationError(
            f"{name} must be a number (int or float), got {type(value).__name__} "
            f"{_show(value)}; e.g. {name}=0.5"
        )
    problem = json_number_problem(number)
    if problem is not None:
        if isinstance(number, float):
            raise RequestValidationError(f"{name} must be a finite number, got {number!r}")
        raise RequestValidationError(f"{name} {problem}")
    return number


def _whole(minimum: int | None) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        whole = plain_whole(value)
        if whole is None:
            raise RequestValidationError(
                f"{name} must be a whole number (int), got {type(value).__name__} "
                f"{_show(value)}; e.g. {name}={max(minimum or 0, 1)}"
            )
        if minimum is not None and whole < minimum:
            raise RequestValidationError(f"{name} must be at least {minimum}, got {_show(whole)}")
        if not INT64_MIN <= whole <= INT64_MAX:
            raise RequestValidationError(
                f"{name} must fit in a signed 64-bit integer ({INT64_MIN} to {INT64_MAX}), "
                f"got {_show(whole)}"
            )
        return whole

    return check


def _text(non_empty: bool) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise RequestValidationError(
                f"{name} must be a str, got {type(value).__name__} {_show(value)}; "
                f'e.g. {name}="..."'
            )
        if non_empty and not value.strip():
            raise RequestValidationError(f"{name} must not be empty")
        return value

    return check


def _rule(name: str, hint: Any) -> Callable[[str, Any], Any]:
    """The check (and conversion) a declared type implies."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            hint = args[0]
    metadata: tuple[Any, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *rest = get_args(hint)
        metadata = tuple(rest)
    for mark in metadata:
        if isinstance(mark, Wire):
            return mark.convert
    bound = next((mark.minimum for mark in metadata if isinstance(mark, AtLeast)), None)
    rules: dict[Any, Callable[[str, Any], Any]] = {
        float: _number,
        int: _whole(bound),
        str: _text(any(isinstance(mark, NonEmpty) for mark in metadata)),
    }
    if hint not in rules:
        raise TypeError(f"no check for the declared type of {name}: {hint!r}")
    return rules[hint]


_HINTS = get_type_hints(CompleteParams, include_extras=True)
_OPTIONS = frozenset(
    {"model_extras", "extra_body", "extra_headers", "extra_query", "headers", "timeout", "retry"}
)
#: Body parameter name -> its check and conversion (the client defaults: RequestParams only).
RULES: dict[str, Callable[[str, Any], Any]] = {
    name: _rule(name, hint) for name, hint in _HINTS.items() if name not in _OPTIONS
}
DEFAULT_NAMES = frozenset(get_type_hints(RequestParams))
_KNOWN = frozenset(_HINTS)
#: The body keys the Azure AI Model Inference API defines (ChatCompletionsOptions in its spec).
SPEC_PARAMS = frozenset(
    {
        "messages",
        "frequency_penalty",
        "stream",
        "presence_penalty",
        "temperature",
        "top_p",
        "max_tokens",
        "response_format",
        "stop",
        "tools",
        "tool_choice",
        "seed",
        "model",
        "modalities",
    }
)
# Named parameters of complete() that the Azure AI Inference SDK also names: a model_extras key
# with one of these names is a mistake. The others (``n``, ``user``, ``stream_options``,
# ``max_completion_tokens``) are not named there, so code written for it passes them in
# model_extras: allowed unless also given by name.
_RESERVED = frozenset({"messages", "stream"} | (SPEC_PARAMS & set(RULES)))


# complete()'s own arguments besides the **params above: taken into account when suggesting
# the name a misspelt keyword meant (``mesages=`` -> ``messages=``).
_COMPLETE_ARGUMENTS = ("body", "messages", "stream")


def to_wire(params: Mapping[str, Any]) -> dict[str, Any]:
    """The set (not None) body parameters, checked and converted to wire data."""
    if not params:
        return {}
    return {name: RULES[name](name, v) for name, v in params.items() if v is not None}


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise RequestValidationError(
            f"{name} must be a dict with str keys, got {type(value).__name__} {_show(value)}"
        )
    return dict(value)


def check_json_numbers(value: Any, path: str, depth: int = 1) -> None:
    """Refuse what JSON cannot carry anywhere in ``value``, naming its place (``path``): see
    :func:`inference._values.check_json_value`."""
    check_json_value(value, path, depth)


def checked_extras(extras: Any, where: str = "model_extras") -> dict[str, Any]:
    """``model_extras`` as a dict, refusing the keys that are named parameters and
    numbers JSON cannot carry."""
    result = _mapping(where, extras)
    check_json_numbers(result, where)
    clash = sorted(k for k in result if k in _RESERVED)
    if clash:
        raise RequestValidationError(
            f"model_extras {clash} collide with named parameters of complete(); pass "
            f"{', '.join(f'{k}=...' for k in clash)} as the named parameter instead"
        )
    return result


_BAD_NAME = re.compile(r"[\r\n:]")
_BAD_VALUE = re.compile(r"[\r\n\0]")


def checked_headers(headers: Any, where: str) -> dict[str, str]:
    """A copy of extra request headers; names and values must be text without line breaks."""
    result: dict[str, str] = {}
    if headers is not None and not isinstance(headers, Mapping):
        raise RequestValidationError(
            f"{where} must be a dict of header names to values, got {type(headers).__name__}"
        )
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise RequestValidationError(
                f"{where}: header names and values must be str, got {name!r}: "
                f"{type(value).__name__}"
            )
        if _BAD_NAME.search(name) or not name.strip() or _BAD_VALUE.search(value):
            raise RequestValidationError(
                f"{where}: header {name!r} has a line break, NUL or colon where none may be; "
                "pass each header as one name and one single-line value"
            )
        result[name] = value
    return result


def check_client_options(
    key_header: Any, credential_scopes: Any, token_scope: Any, flags: Mapping[str, Any]
) -> Any:
    """Check a client's keywords that are not request parameters; returns the token scope
    (``credential_scopes``, azure-core's spelling, gives it when ``token_scope`` does not)."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise RequestValidationError(f"{name} must be True or False, got {_show(value)}")
    if key_header is not None and not isinstance(key_header, str):
        _stop("key_header", key_header)  # a str or a list of str, with the same messages
    if credential_scopes is None:
        return token_scope
    scopes = _stop("credential_scopes", credential_scopes)
    if len(scopes) != 1:
        raise RequestValidationError(
            f"credential_scopes takes exactly one scope, got {len(scopes)}; e.g. "
            "credential_scopes=['https://cognitiveservices.azure.com/.default']"
        )
    return token_scope if token_scope is not None else scopes[0]


def client_headers(headers: Any, user_agent: Any, library_agent: str) -> dict[str, str]:
    """A client's ``headers=``, with ``user_agent=`` (the caller's application) put before
    the library's own ``User-Agent``, as Azure SDKs do."""
    result = checked_headers(headers, "headers")
    if user_agent is None:
        return result
    if not isinstance(user_agent, str) or not user_agent.strip() or _BAD_VALUE.search(user_agent):
        raise RequestValidationError(
            f"user_agent must be one line of text such as 'myapp/1.2', got {_show(user_agent)}"
        )
    if any(name.lower() == "user-agent" for name in result):
        raise RequestValidationError(
            "user_agent= and headers={'User-Agent': ...} both set the User-Agent; pass one"
        )
    return {"User-Agent": f"{user_agent.strip()} {library_agent}", **result}


class RequestDefaults:
    """A client's default request parameters and ``model_extras``, checked once, so bad
    values fail when the client is built and not at the first call."""

    __slots__ = ("model_extras", "output_type", "wire")

    def __init__(self, params: Mapping[str, Any], model_extras: Any) -> None:
        check_names(params, DEFAULT_NAMES, "ChatCompletionsClient()", EXTRAS)
        params = dict(params)
        self.output_type: type | None = None
        if params.get("response_format") is not None:
            params["response_format"], self.output_type = typed_response_format(
                params["response_format"]
            )
        self.wire = to_wire(params)
        self.model_extras = checked_extras(model_extras)


class PreparedCall(NamedTuple):
    """A checked ``complete()`` call: the JSON body, this call's headers and query
    parameters, whether it streams, its timeout and retry (not yet merged with the
    client's), and the class to parse the answer into (``response_format=Class``)."""

    payload: bytes
    headers: dict[str, str]
    query: dict[str, str]
    streaming: bool
    timeout: Timeout | float | None
    retry: RetryPolicy | int | None
    output_type: type | None = None


def _check_stream(stream: Any) -> None:
    if stream is not None and not isinstance(stream, bool):
        raise RequestValidationError(
            f"stream must be True or False, got {type(stream).__name__} {_show(stream)}"
        )


def _raw_body(body: Any, stream: bool | None, named: Mapping[str, Any]) -> dict[str, Any]:
    if named:
        raise RequestValidationError(
            "complete() takes either a JSON body or keyword parameters, not both; got "
            f"{', '.join(sorted(named))} beside the body"
        )
    wire = _mapping("the request body", body)
    if "messages" not in wire:
        raise RequestValidationError("the request body has no 'messages'")
    check_json_numbers(wire, "body")
    if stream is not None:
        wire["stream"] = stream
    return wire


def _dumps_raw(wire: dict[str, Any]) -> bytes:
    """A JSON body's bytes; what it holds that is not JSON is named by its place."""
    try:
        return dumps(wire)
    except RequestValidationError:
        problem = foreign_body_value(wire)
        if problem is None:
            raise
    raise RequestValidationError(problem)


def _messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise RequestValidationError('complete() needs messages=[...], e.g. [UserMessage("Hello")]')
    if not isinstance(messages, list | tuple):
        raise RequestValidationError(
            'messages must be a list of messages, e.g. [UserMessage("Hello")]; '
            f"got a {type(messages).__name__}"
        )
    return messages_to_wire(messages)


def _built_body(
    messages: Any,
    stream: bool | None,
    named: Mapping[str, Any],
    defaults: RequestDefaults,
    model_extras: Any,
) -> dict[str, Any]:
    wire: dict[str, Any] = {"messages": _messages(messages)}
    wire.update(defaults.wire)
    wire.update(to_wire(named))
    if stream:
        wire["stream"] = True
    elif "stream_options" in wire:
        raise RequestValidationError("stream_options needs stream=True")
    extras = defaults.model_extras
    if model_extras is not None:
        extras = {**extras, **checked_extras(model_extras)}
    if extras:
        twice = sorted(k for k in extras if k in wire)
        if twice:
            raise RequestValidationError(
                f"{twice} given both as named parameters and in model_extras; pass each value once"
            )
        wire.update(unstructure(extras))
    return wire


def _add_extra_body(wire: dict[str, Any], extra_body: Any) -> set[str]:
    if extra_body is None:
        return set()
    extra = _mapping("extra_body", extra_body)
    check_json_numbers(extra, "extra_body")
    twice = sorted(k for k in extra if k in wire)
    if twice:
        raise RequestValidationError(
            f"extra_body {twice} already set by a named parameter, a client default or "
            "model_extras; pass each value once (extra_body adds keys, it does not replace them)"
        )
    wire.update(unstructure(extra))
    return set(extra)


def _call_headers(headers: Any, extra_headers: Any) -> dict[str, str]:
    if headers is None and extra_headers is None:
        return {}
    result = checked_headers(headers, "headers")
    extra = checked_headers(extra_headers, "extra_headers")
    twice = sorted({k.lower() for k in result} & {k.lower() for k in extra})
    if twice:
        raise RequestValidationError(
            f"headers {twice} given in both headers= and extra_headers=; pass each once"
        )
    return {**result, **extra}


def _query(extra_query: Any, endpoint_query: Mapping[str, str]) -> dict[str, str]:
    if extra_query is None:
        return {}
    query = _mapping("extra_query", extra_query)
    for name, value in query.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise RequestValidationError(
                f"extra_query[{name!r}] must be a str or a number, got {type(value).__name__}"
            )
        if name in endpoint_query:
            raise RequestValidationError(
                f"extra_query {name!r} is set by the client for this endpoint; "
                "use the client's api_version= (or its other settings) instead"
            )
    return {name: str(value) for name, value in query.items()}


def prepare_call(
    body: Any,
    messages: Any,
    stream: bool | None,
    params: Mapping[str, Any],
    defaults: RequestDefaults,
    endpoint_query: Mapping[str, str],
) -> PreparedCall:
    """Check a ``complete()`` call and build its body, headers and query; raises
    :class:`RequestValidationError` before anything is sent."""
    check_names(params, _KNOWN, "complete()", BODY_EXTRAS, _COMPLETE_ARGUMENTS)
    _check_stream(stream)
    named = {k: v for k, v in params.items() if k not in _OPTIONS and v is not None}
    output_type = defaults.output_type
    if "response_format" in named:
        named["response_format"], output_type = typed_response_format(named["response_format"])
    headers: dict[str, str] = {}
    if body is not None:
        beside = {"messages": messages, "model_extras": params.get("model_extras")}
        named.update({k: v for k, v in beside.items() if v is not None})
        wire = _raw_body(body, stream, named)
    else:
        wire = _built_body(messages, stream, named, defaults, params.get("model_extras"))
    added = _add_extra_body(wire, params.get("extra_body"))
    if not (wire.keys() if body is None else added) <= SPEC_PARAMS:
        # Keys the Azure AI Model Inference API does not define are refused there unless
        # passed through (a positional body is sent as given: only extra_body's count).
        headers["extra-parameters"] = "pass-through"
    headers.update(_call_headers(params.get("headers"), params.get("extra_headers")))
    return PreparedCall(
        payload=dumps(wire) if body is None else _dumps_raw(wire),
        headers=headers,
        query=_query(params.get("extra_query"), endpoint_query),
        streaming=bool(wire.get("stream")),
        timeout=params.get("timeout"),
        retry=params.get("retry"),
        output_type=output_type,
    )
