"""The exceptions raised by ``inference``: one tree, rooted at :class:`InferenceError`.

Nothing else escapes the library: aiohttp, json, orjson and cattrs errors are mapped to
this tree where they arise. The tree::

    InferenceError
    ├── RequestValidationError (also ValueError)   bad arguments, raised before anything is sent
    ├── CredentialError (also azure ClientAuthenticationError)
    │                                              the credential could not produce a token
    ├── ServiceRequestError (also azure ServiceRequestError)
    │   │                                          the request never got a response
    │   └── ConnectTimeoutError (also TimeoutError)
    ├── ServiceResponseError (also azure ServiceResponseError)
    │   │                                          the connection broke while a (non-streamed)
    │   │                                          response body was being read, or the
    │   │                                          response arrived broken
    │   └── ResponseTooLargeError                  a body over ``max_response_bytes``, or a
    │                                              stream over ``max_stream_bytes``
    ├── InferenceTimeoutError (also TimeoutError)  a response, or the next event, was too slow
    │   ├── ConnectTimeoutError
    │   ├── ReadTimeoutError                       no response head within ``Timeout.read``
    │   ├── IdleTimeoutError                       a stream was silent for ``Timeout.idle``
    │   └── TotalTimeoutError                      the optional ``Timeout.total`` ran out
    ├── HttpResponseError (also azure.core.exceptions.HttpResponseError)
    │   ├── ClientAuthenticationError  401 / 403 (also azure ClientAuthenticationError)
    │   ├── ResourceNotFoundError      404 (also azure ResourceNotFoundError)
    │   ├── RateLimitError             429
    │   ├── ContentFilterError         400, code content_filter: the prompt or answer was refused
    │   ├── ServiceError               5xx
    │   ├── ResponseDecodeError        a success status, but a body that is not the API's JSON
    │   └── StreamServiceError         the service sent an error event in the middle of a stream
    ├── StreamError
    │   ├── StreamInterruptedError     the body ended before ``data: [DONE]``
    │   └── SSEError (also ValueError) the event stream broke the decoder's limits
    ├── StructuredOutputError (also ValueError)
    │   │                              the answer does not fit the class given as
    │   │                              ``response_format`` (``text`` keeps the answer)
    │   ├── RefusalError               the model refused, or the content filter cut the answer
    │   └── TruncatedOutputError       the answer was cut at the token limit
    ├── ToolCallError                  a tool raised, and ``run_tools`` was told to raise
    └── ToolRoundsExceededError        the model still asked for tools after ``max_rounds``

Every :class:`HttpResponseError` carries ``status_code``, ``reason``, ``response`` (with
``.json()``, ``.text()`` and ``.headers``), the service's error ``code`` and ``message``, and
``request_id``. Because it subclasses :class:`azure.core.exceptions.HttpResponseError`,
``except HttpResponseError`` written for Azure SDKs keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from azure.core import exceptions as _azure

__all__ = [
    "ClientAuthenticationError",
    "ConnectTimeoutError",
    "ContentFilterError",
    "CredentialError",
    "ErrorResponse",
    "HttpResponseError",
    "IdleTimeoutError",
    "InferenceError",
    "InferenceTimeoutError",
    "RateLimitError",
    "ReadTimeoutError",
    "RefusalError",
    "RequestValidationError",
    "ResourceNotFoundError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "SSEError",
    "ServiceError",
    "ServiceRequestError",
    "ServiceResponseError",
    "StreamError",
    "StreamInterruptedError",
    "StreamServiceError",
    "StructuredOutputError",
    "ToolCallError",
    "ToolRoundsExceededError",
    "TotalTimeoutError",
    "TruncatedOutputError",
]

_REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "request-id", "x-ms-request-id")


class InferenceError(Exception):
    """Base class of every exception this library raises.

    An error raised while reading a stream carries ``partial``: everything received before
    it, assembled into a ``ChatCompletions`` (None for errors outside a stream). ``attempts``
    says how many attempts the call made (retries included), set where the error is raised.
    An error raised by a model call inside ``run_tools()`` / ``stream_tools()`` carries
    ``messages``: the conversation so far, the tool results included, to continue from
    without running the tools again (None elsewhere).
    """

    partial: Any = None
    attempts: int = 1
    messages: Any = None
    # False when another attempt would meet the same error (a refused certificate, a response
    # that arrived broken); None to let the exception's class decide (see RetryPolicy).
    _transient: bool | None = None


class RequestValidationError(InferenceError, ValueError):
    """An argument cannot be sent as given; raised before any request is made.

    The message names the argument and says how to fix it.
    """


class CredentialError(InferenceError, _azure.ClientAuthenticationError):
    """The credential failed to produce a key or token (the token source raised or timed out)."""

    def __init__(self, message: str) -> None:
        _azure.AzureError.__init__(self, message)
        self.status_code = None
        self.reason = None
        self.response = None
        self.error = None
        self.model = None


class ServiceRequestError(InferenceError, _azure.ServiceRequestError):
    """The request got no response: connection refused, reset, DNS failure, TLS failure, or
    the server closed the connection before answering. The message names the server
    (``scheme://host:port``) and what happened; the lower layer's exception is chained as
    ``__cause__``.

    ``attempts`` says how many attempts were made before giving up.
    """

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        _azure.AzureError.__init__(self, message)
        self.attempts = attempts


class ServiceResponseError(InferenceError, _azure.ServiceResponseError):
    """The response began but its body was cut off (connection reset, truncated body), or
    the response arrived broken (a head that cannot be parsed, a body that does not decode).

    Raised for non-streamed responses, and not retried: once a response has begun, the
    server may already have done (and billed) the work. A stream cut off raises
    :class:`StreamInterruptedError` instead, with the part received. The message names the
    server and what happened; the lower layer's exception is chained as ``__cause__``.
    ``attempts`` says how many attempts were made.
    """

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        _azure.AzureError.__init__(self, message)
        self.attempts = attempts


class ResponseTooLargeError(ServiceResponseError):
    """A response body is larger than the client's ``max_response_bytes``, or a stream's body
    than its ``max_stream_bytes`` (counted after decompression); its reading stopped at the
    limit and the connection was closed. Not retried. A stream's error carries ``partial``:
    what arrived before the limit, assembled. ``limit`` is the limit in bytes and ``option``
    the client option that sets it (``"max_response_bytes"`` or ``"max_stream_bytes"``)."""

    _transient = False
    limit: int | None = None
    option: str | None = None


class InferenceTimeoutError(InferenceError, TimeoutError):
    """A deadline from :class:`inference.Timeout` ran out. ``attempts`` counts the attempts."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class ConnectTimeoutError(ServiceRequestError, InferenceTimeoutError):
    """The connection (TCP and TLS) was not established within ``Timeout.connect``."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        ServiceRequestError.__init__(self, message, attempts=attempts)


class ReadTimeoutError(InferenceTimeoutError):
    """The response (status line and headers) did not start within ``Timeout.read``."""


class IdleTimeoutError(InferenceTimeoutError):
    """A streamed response sent no event for longer than ``Timeout.idle``.

    Keep-alive comments do not count as events: a server that only sends comments is stalled.
    """


class TotalTimeoutError(InferenceTimeoutError):
    """The whole call, stream included, took longer than ``Timeout.total``."""


class ErrorResponse:
    """The body and headers of an HTTP error response, as kept by :class:`HttpResponseError`.

    Offers the parts of a response that error handlers use: ``status_code``, ``reason``,
    ``headers``, ``body`` (bytes), ``text()`` and ``json()``.
    """

    __slots__ = ("body", "headers", "reason", "status_code")

    def __init__(
        self, status_code: int, reason: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers: Mapping[str, str] = headers
        self.body = body

    def text(self, encoding: str | None = None) -> str:
        """The body decoded as text (UTF-8 unless ``encoding`` says otherwise)."""
        return self.body.decode(encoding or "utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` if it is not JSON."""
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<ErrorResponse {self.status_code} {self.reason!r} ({len(self.body)} bytes)>"


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class HttpResponseError(InferenceError, _azure.HttpResponseError):
    """The service answered with an error status (or an unusable success body).

    Attributes: ``status_code``, ``reason``, ``response`` (:class:`ErrorResponse`; None for
    an error reported inside a stream or raised without a request),
    ``code`` and ``message`` (the service's error code and message, when it sent them),
    ``request_id`` (the server's request id, for support), ``attempts`` (how many attempts
    were made, retries included), ``retry_after`` (the wait in seconds the server asked for
    before a retry, from ``Retry-After`` or ``retry-after-ms``; None if it asked none), and
    ``error``: the service's error as azure-core's ``ODataV4Format`` (``error.code``,
    ``error.message``, ``error.details``, ...), as Azure SDKs give it; None when the service
    sent neither a code nor a message.
    """

    response: ErrorResponse | None  # type: ignore[assignment]
    retry_after: float | None = None

    def __init__(
        self,
        message: str | None = None,
        response: ErrorResponse | None = None,
        *,
        code: str | None = None,
        service_message: str | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.response = response
        self.status_code = response.status_code if response is not None else None
        self.reason = response.reason if response is not None else None
        self.code = code
        self.message = service_message if service_message is not None else (message or "")
        self.request_id = request_id or (
            _request_id(response.headers) if response is not None else None
        )
        self.attempts = attempts
        self.error = _service_error(response, code, service_message)
        self.model = None
        if message is None:
            message = _describe(self.status_code, self.reason, code, service_message)
        if self.request_id:
            message = f"{message} (request id: {self.request_id})"
        self._text = message
        service_text = self.message
        _azure.AzureError.__init__(self, message)  # sets .message to the full text
        self.message = service_text

    def __str__(self) -> str:
        return self._text

    def __reduce__(self) -> Any:
        return (Exception.__new__, (type(self),), self.__dict__)


def _service_error(
    response: ErrorResponse | None, code: str | None, message: str | None
) -> _azure.ODataV4Format | None:
    """The service's error as azure-core's ``ODataV4Format`` (``code``, ``message``, and
    ``target``, ``details``, ``innererror`` when the body has them); None without either."""
    inner: Any = None
    if response is not None and response.body:
        try:
            body = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            body = None
        inner = body.get("error") if isinstance(body, Mapping) else None
    source: dict[str, Any] = dict(inner) if isinstance(inner, Mapping) else {}
    if not (code or message):
        return None
    # The code and message as parsed (text, whatever type the service used for them).
    source.update(code=code, message=message)
    return _azure.ODataV4Format(source)


def _describe(status: int | None, reason: str | None, code: str | None, message: str | None) -> str:
    head = f"HTTP {status} {reason or ''}".rstrip() if status is not None else "Service error"
    if code and message:
        return f"{head}: ({code}) {message}"
    if message:
        return f"{head}: {message}"
    if code:
        return f"{head}: ({code})"
    return head


class ClientAuthenticationError(HttpResponseError, _azure.ClientAuthenticationError):
    """401 or 403: the key or token was refused, or lacks permission for this resource."""


class ResourceNotFoundError(HttpResponseError, _azure.ResourceNotFoundError):
    """404: wrong endpoint URL, deployment name, model name or API path."""


class RateLimitError(HttpResponseError):
    """429: throttled. ``retry_after`` holds the wait (seconds) the service asked for, if any."""


class ContentFilterError(HttpResponseError):
    """The service's content filter refused the request (HTTP 400, code ``content_filter``)."""


class ServiceError(HttpResponseError):
    """5xx: the service, or a proxy in front of it, failed."""


class ResponseDecodeError(HttpResponseError):
    """A success status, but the body is not the JSON the API promises (or an event is broken)."""


class StreamServiceError(HttpResponseError):
    """The service reported an error inside a stream (an ``error`` event or ``{"error": ...}``).

    ``partial`` holds what was received before the error, assembled into a ``ChatCompletions``.
    """

    partial: Any = None


class StreamError(InferenceError):
    """A streamed response could not be read to its end."""


class StreamInterruptedError(StreamError):
    """The stream ended (the connection closed) before ``data: [DONE]``.

    ``partial`` holds everything received before the cut, assembled into a ``ChatCompletions``
    (content so far, tool calls so far), so nothing is lost.
    """

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial: Any = partial


class SSEError(StreamError, ValueError):
    """The event stream broke a limit of :class:`inference.sse.SSEDecoder` (a line too long)."""


class StructuredOutputError(InferenceError, ValueError):
    """The answer cannot be turned into the class given as ``response_format``: it is not
    JSON, or its JSON does not fit the class.

    ``text`` is the model's answer as it came (None when there was none), ``completion`` the
    whole response, ``output_type`` the class asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str | None = None,
        completion: Any = None,
        output_type: Any = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.completion = completion
        self.output_type = output_type


class RefusalError(StructuredOutputError):
    """The model refused to answer (the message's ``refusal``), or the content filter cut the
    answer (finish reason ``content_filter``). ``refusal`` holds the model's explanation."""

    refusal: str | None = None


class TruncatedOutputError(StructuredOutputError):
    """The answer reached the token limit (finish reason ``length``) before its JSON was
    complete: raise ``max_tokens``, or ask for less. ``text`` holds the part received."""


class ToolCallError(InferenceError):
    """A tool raised while ``run_tools(..., raise_tool_errors=True)`` ran it.

    The tool's own exception is the ``__cause__``; ``call`` is the model's tool call and
    ``messages`` the conversation up to it.
    """

    def __init__(self, message: str, *, call: Any = None, messages: Any = None) -> None:
        super().__init__(message)
        self.call = call
        self.messages = messages


class ToolRoundsExceededError(InferenceError):
    """The model still asked for tools after ``max_rounds`` rounds of tool calls.

    ``messages`` is the whole conversation so far (tool results included) and ``completion``
    the last response, so the run can be continued or inspected.
    """

    def __init__(self, message: str, *, messages: Any = None, completion: Any = None) -> None:
        super().__init__(message)
        self.messages = messages
        self.completion = completion
