"""The client constructors' keyword options, declared once.

:class:`ClientOptions` declares the connection options every client takes (endpoint kind,
authentication, headers, timeouts, retries, the pool, logging, limits); the chat clients take
:class:`ChatClientOptions` (those, the request defaults of :class:`~inference.RequestParams`,
``model_extras`` and ``max_stream_bytes``) and the embeddings clients
:class:`EmbeddingsClientOptions`, as ``**options: Unpack[...]``. So an option is added here
(and used where it takes effect, in :class:`inference.aio.ChatCompletionsClient`), and every
constructor, sync and async, takes it: the sync clients and the embeddings clients pass their
options on whole. Type checkers (mypy, pyright) see each keyword with its type, so a misspelt
one is an error there; at run time :func:`check_options` refuses it, suggesting the closest
name.

The defaults are applied where the option takes effect; they are listed in the docstrings
below and in :mod:`inference._config`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    TypedDict,
    Unpack,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from ._keywords import EXTRAS, check_names
from ._params import RequestParams
from .exceptions import RequestValidationError

if TYPE_CHECKING:
    import aiohttp

    from ._config import RetryPolicy, Timeout
    from ._endpoint import EndpointKind
    from .models import EmbeddingEncodingFormat, EmbeddingInputType

__all__ = [
    "ChatClientOptions",
    "ClientOptions",
    "EmbeddingsClientOptions",
    "check_hook",
    "check_limit",
    "check_options",
    "option_names",
    "unpacked_options",
]


class ClientOptions(TypedDict, total=False):
    """The connection options of every client constructor (each optional; default in
    brackets).

    The endpoint: ``endpoint_kind`` (an :class:`~inference.EndpointKind` or its name
    [detected from the URL]), ``api_version`` (the ``api-version`` query parameter; None
    sends none [the one in the URL, else the kind's default]), ``key_header`` (the header,
    or headers, that carry a key [the kind's]), ``token_scope`` (the Entra ID scope of a
    token credential [the kind's]) and ``credential_scopes`` (azure-core's spelling of it:
    a list of one scope).

    Every request: ``headers`` (sent with each request), ``timeout``
    (:class:`~inference.Timeout` or seconds [``Timeout()``]), ``retry``
    (:class:`~inference.RetryPolicy` or a number of retries [``RetryPolicy()``]),
    ``user_agent`` (your application's name and version, sent before the library's own in
    ``User-Agent``), ``response_hook`` (called with the status and headers of every response
    head, retries included; it runs on the client's event loop, must not block, and what it
    raises ends the call).

    The connection: ``session`` (your own ``aiohttp.ClientSession``; you close it), ``trust_env``
    (proxy settings and ``.netrc`` from the environment [False]), ``enforce_https`` (refuse to
    send a key or token over plain ``http://`` to a host that is not a loopback address
    [True]), ``max_connections`` (connections kept open at most [100]; more concurrent
    requests wait for a free one; ignored with your own ``session``), ``max_response_bytes``
    (the largest non-streamed response body read, counted after decompression [8 MiB; 256 MiB
    for an embeddings client]; a longer one raises
    :class:`~inference.exceptions.ResponseTooLargeError`).

    Logging: ``log_request_body`` (request bodies at DEBUG [False]), ``logging_enable`` (each
    request and response at DEBUG on the ``inference`` logger, keys and tokens redacted
    [False]).
    """

    endpoint_kind: EndpointKind | str | None
    api_version: str | None
    key_header: str | Sequence[str] | None
    token_scope: str | None
    credential_scopes: Sequence[str] | None
    headers: Mapping[str, str] | None
    timeout: Timeout | float | None
    retry: RetryPolicy | int | None
    session: aiohttp.ClientSession | None
    trust_env: bool
    log_request_body: bool
    enforce_https: bool
    response_hook: Callable[[int, Mapping[str, str]], None] | None
    user_agent: str | None
    logging_enable: bool
    max_connections: int
    max_response_bytes: int


class _ChatOnly(TypedDict, total=False):
    model_extras: Mapping[str, Any] | None
    max_stream_bytes: int | None


class ChatClientOptions(ClientOptions, _ChatOnly, RequestParams, total=False):
    """What a chat client's constructor takes besides ``endpoint`` and ``credential``: the
    connection options of :class:`ClientOptions`; the default request parameters of
    :class:`~inference.RequestParams` (``model``, ``temperature``, ``max_tokens``, ...),
    used by every ``complete()`` call that does not set them; ``model_extras`` (sent at the
    body root of every request, with the header ``extra-parameters: pass-through``); and
    ``max_stream_bytes``, the most bytes one stream's body may bring (counted after
    decompression [64 MiB]; None for no limit): a longer stream raises
    :class:`~inference.exceptions.ResponseTooLargeError`, with what arrived as ``partial``.
    """


class EmbeddingsClientOptions(ClientOptions, total=False):
    """What an embeddings client's constructor takes besides ``endpoint`` and
    ``credential``: the connection options of :class:`ClientOptions` (``max_response_bytes``
    defaults to 256 MiB here: the vectors of a batch take far more room than a chat answer),
    and the default request parameters ``model``, ``dimensions``, ``encoding_format``,
    ``input_type`` and ``model_extras``, used by every ``embed()`` call that does not set
    them."""

    model: str | None
    dimensions: int | None
    encoding_format: EmbeddingEncodingFormat | str | None
    input_type: EmbeddingInputType | str | None
    model_extras: Mapping[str, Any] | None


def option_names(declared: type) -> frozenset[str]:
    """The keys of an options TypedDict (inherited ones included)."""
    keys: frozenset[str] = declared.__required_keys__ | declared.__optional_keys__  # type: ignore[attr-defined]
    return keys


def unpacked_options(function: Any) -> type | None:
    """The TypedDict of ``function``'s ``**kwargs: Unpack[...]`` (None without ``**kwargs``):
    what its keyword options are, as :func:`inference.load_client` and the sync/async parity
    check read them from a constructor."""
    hints = get_type_hints(function)
    for param in inspect.signature(function).parameters.values():
        if param.kind is not param.VAR_KEYWORD:
            continue
        hint = hints.get(param.name)
        if get_origin(hint) is Unpack:
            declared = get_args(hint)[0]
            if isinstance(declared, type) and is_typeddict(declared):
                return declared
        raise TypeError(f"cannot tell which keywords **{param.name}: {hint} takes")
    return None


# The constructors' named parameters, besides the options: taken into account when suggesting
# the name a misspelt option meant (``credentail=`` -> ``credential=``).
_CONSTRUCTOR_ARGUMENTS = ("endpoint", "credential")
_NAMES = {
    ChatClientOptions: option_names(ChatClientOptions),
    EmbeddingsClientOptions: option_names(EmbeddingsClientOptions),
}


def check_options(options: Mapping[str, Any], declared: type, where: str) -> None:
    """Refuse a keyword ``declared`` (an options TypedDict) has no key for, naming it and the
    closest name it does have (a misspelt option would otherwise be lost); an option of the
    other client is named as such."""
    names = _NAMES.get(declared)
    if names is None:
        names = option_names(declared)
    if options.keys() <= names:
        return
    for other, other_names in _NAMES.items():
        wrong = sorted(k for k in options if k not in names and k in other_names)
        if wrong:
            client = "ChatCompletionsClient" if other is ChatClientOptions else "EmbeddingsClient"
            raise RequestValidationError(
                f"{where} does not take {', '.join(f'{k}=' for k in wrong)}: "
                f"{'it is an option' if len(wrong) == 1 else 'they are options'} of "
                f"{client} only; leave {'it' if len(wrong) == 1 else 'them'} out"
            )
    settings = {*_CONSTRUCTOR_ARGUMENTS, *(names - option_names(RequestParams))}
    check_names(options, names, where, EXTRAS, _CONSTRUCTOR_ARGUMENTS, settings)


def check_hook(hook: Any) -> Any:
    """``response_hook``: None, or a callable that takes ``(status, headers)``; returned as
    given. A hook of another shape failed every call with a ``TypeError`` from inside the
    client; it is refused when the client is made."""
    if hook is None:
        return None
    if not callable(hook):
        raise RequestValidationError(
            f"response_hook must be a function taking (status, headers), got {type(hook).__name__}"
        )
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):  # a builtin without a signature: taken on trust
        return hook
    try:
        signature.bind(200, {})
    except TypeError as exc:
        raise RequestValidationError(
            f"response_hook is called with two arguments, the status (int) and the headers "
            f"(a mapping), but {getattr(hook, '__name__', type(hook).__name__)}{signature} "
            f"cannot take them ({exc}); e.g. def hook(status, headers): ..."
        ) from None
    return hook


def check_limit(name: str, value: object, *, optional: bool = False) -> None:
    """A size or count limit: a whole number >= 1 (or None for no limit, if ``optional``)."""
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestValidationError(
            f"{name}={value!r}: use a whole number >= 1"
            + (", or None for no limit" if optional else "")
        )
