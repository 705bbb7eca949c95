"""Sending one batch request and turning the outcome into an OpenAI batch output line.

A :class:`Sender` owns the clients (one per request kind, made on first use with a response
hook that feeds the :class:`~inference.batch.RateLimiter`) and dispatches each request by its
``url`` kind. HTTP 429 answers are not retried by the
client: the runner sends the request again when its pace allows, up to the retry policy's
``max_retries`` times. Other errors split in two:

- errors of one request (HTTP 4xx/5xx once retries are spent, timeouts, bodies the service
  refused) become a result line, as in OpenAI's batch output;
- errors that every request would meet (the key or token refused, no credential, the endpoint
  unreachable) stop the run without writing a line, so a rerun after the fix sends them.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from .._config import RetryPolicy
from .._embeddings import split_body
from ..aio import ChatCompletionsClient, EmbeddingsClient
from ..exceptions import (
    ClientAuthenticationError,
    CredentialError,
    HttpResponseError,
    InferenceError,
    InferenceTimeoutError,
    RequestValidationError,
    ResponseDecodeError,
    ServiceRequestError,
    ServiceResponseError,
)
from ._estimate import estimate_tokens
from ._input import BatchRequest
from ._limits import RateLimiter, Ticket

__all__ = ["FATAL_ERRORS", "Outcome", "PacedSender", "Sender", "available_kinds"]

#: Errors that stop a run: every other request would fail the same way.
FATAL_ERRORS: Final = (ClientAuthenticationError, CredentialError, ServiceRequestError)

# A batch body is sent as written: keys the Azure AI Model Inference API does not define are
# passed to the model there too (other services ignore this header).
_PASS_THROUGH: Final = {"extra-parameters": "pass-through"}
_REQUEST_ID_HEADERS: Final = ("x-request-id", "apim-request-id", "x-ms-request-id")


def available_kinds() -> frozenset[str]:
    """The request kinds this installation can send."""
    return frozenset(_CLIENTS)


@attrs.define
class _Exchange:
    """What the response hook saw for the request being sent in this task."""

    ticket: Ticket | None = None
    status: int | None = None
    headers: Mapping[str, str] = attrs.Factory(dict)


_current: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar(
    "inference_batch_exchange", default=None
)


@attrs.frozen
class Outcome:
    """A result line to write, and the tokens the answer used (None: not reported).

    ``throttled``: the answer was HTTP 429; the request may be sent again once the pace
    allows (the record holds the 429 in case it is not).
    """

    record: dict[str, Any]
    tokens: int | None
    completion_tokens: int | None = None
    throttled: bool = False


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, InferenceTimeoutError):
        return "timeout"
    if isinstance(exc, ServiceResponseError):
        return "connection_error"
    if isinstance(exc, RequestValidationError):
        return "invalid_request"
    if isinstance(exc, ResponseDecodeError):
        return "invalid_response"
    return "request_failed"


def _error_body(exc: HttpResponseError) -> Any:
    if exc.response is not None and exc.response.body:
        try:
            return exc.response.json()
        except ValueError:
            return {"error": {"message": exc.response.text()}}
    return {"error": {"code": exc.code, "message": exc.message or str(exc)}}


def _line(custom_id: str, response: dict[str, Any] | None, error: Any = None) -> dict[str, Any]:
    return {
        "id": f"batch_req_{secrets.token_hex(16)}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }


class Sender:
    """Sends batch requests to one endpoint; use as an async context manager."""

    def __init__(
        self,
        endpoint: str,
        credential: Any,
        limiter: RateLimiter,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._credential = credential
        self._limiter = limiter
        self._options = dict(client_options or {})
        # The runner reads every response head itself (for the pace); yours is called after.
        self._user_hook = self._options.pop("response_hook", None)
        if self._user_hook is not None and not callable(self._user_hook):
            raise RequestValidationError(
                f"client_options['response_hook'] must be a function (status, headers), got "
                f"{type(self._user_hook).__name__}"
            )
        policy = RetryPolicy.coerce(self._options.get("retry"), RetryPolicy())
        #: How many times a request refused with HTTP 429 is sent again (the client's policy).
        self.max_retries = policy.max_retries
        # 429s are retried here, through the pace, not by the client on its own.
        self._options["retry"] = attrs.evolve(policy, statuses=policy.statuses - {429})
        self._clients: dict[str, Any] = {}
        self._senders: dict[str, Callable[[Any, BatchRequest, dict[str, str]], Any]] = {
            "chat": _complete,
            "embeddings": _embed,
        }

    def _hook(self, status: int, headers: Mapping[str, str]) -> None:
        exchange = _current.get()
        if exchange is not None:
            exchange.status = status
            exchange.headers = headers
        self._limiter.observe(status, headers, exchange.ticket if exchange else None)
        if self._user_hook is not None:
            self._user_hook(status, headers)

    def _client(self, kind: str) -> Any:
        client = self._clients.get(kind)
        if client is None:
            try:
                client = _CLIENTS[kind](
                    self._endpoint, self._credential, response_hook=self._hook, **self._options
                )
            except RequestValidationError as exc:
                raise RequestValidationError(f"client_options: {exc}") from None
            self._clients[kind] = client
        return client

    async def prepare(self, kinds: Iterable[str]) -> None:
        """Build the clients for ``kinds`` now, so that options they refuse (a misspelt
        keyword, a wrong type) stop the run before anything is sent, instead of failing
        every request the same way."""
        for kind in sorted(set(kinds)):
            self._client(kind)

    async def send(self, request: BatchRequest, ticket: Ticket | None) -> Outcome:
        """Send ``request``; the result line for it. Raises only :data:`FATAL_ERRORS`."""
        exchange = _Exchange(ticket=ticket)
        token = _current.set(exchange)
        client_request_id = secrets.token_hex(16)
        headers = {"x-ms-client-request-id": client_request_id}
        try:
            body, usage = await self._senders[request.kind](
                self._client(request.kind), request, headers
            )
        except FATAL_ERRORS:
            raise
        except HttpResponseError as exc:
            if isinstance(exc, ResponseDecodeError) or (exc.status_code or 500) < 400:
                # Not an error answer of the service: a success status whose body is not the
                # API's JSON (a proxy's HTML page, a body of another kind), or a redirect.
                error = {"code": _error_code(exc), "message": str(exc)}
                return Outcome(_line(request.custom_id, None, error), None)
            response = {
                "status_code": exc.status_code or 500,
                "request_id": exc.request_id or client_request_id,
                "body": _error_body(exc),
            }
            return Outcome(
                _line(request.custom_id, response), None, throttled=exc.status_code == 429
            )
        except InferenceError as exc:
            error = {"code": _error_code(exc), "message": str(exc)}
            return Outcome(_line(request.custom_id, None, error), None)
        finally:
            _current.reset(token)
        request_id = next(
            (exchange.headers[h] for h in _REQUEST_ID_HEADERS if exchange.headers.get(h)),
            client_request_id,
        )
        response = {
            "status_code": exchange.status or 200,
            "request_id": request_id,
            "body": body,
        }
        total = usage.get("total_tokens") if usage else None
        completion = usage.get("completion_tokens") if usage else None
        return Outcome(_line(request.custom_id, response), total, completion)

    async def aclose(self) -> None:
        """Close the clients."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class PacedSender:
    """Sends requests when the pace allows: one :class:`RateLimiter` ticket per attempt, token
    charges settled with the answers' usage, a 429 sent again (up to the retry policy's
    ``max_retries``) once the pause it caused is over."""

    def __init__(self, sender: Sender, limiter: RateLimiter) -> None:
        self.sender = sender
        self.limiter = limiter
        self._completion_seen = 0
        self._completion_count = 0

    def _estimate(self, request: BatchRequest) -> int:
        # Answers without max_tokens are guessed at the average answer seen so far.
        count = self._completion_count
        return estimate_tokens(
            request.kind, request.body, self._completion_seen // count if count else 0
        )

    async def send(self, request: BatchRequest) -> Outcome:
        """The result of ``request``. Raises only :data:`FATAL_ERRORS`."""
        throttled = 0
        while True:
            ticket = await self.limiter.acquire(self._estimate(request))
            outcome = await self.sender.send(request, ticket)
            # A refused request used no tokens.
            self.limiter.settle(ticket, 0 if outcome.throttled else outcome.tokens)
            if outcome.completion_tokens is not None:
                self._completion_seen += outcome.completion_tokens
                self._completion_count += 1
            if not outcome.throttled or throttled >= self.sender.max_retries:
                return outcome
            throttled += 1


def _usage(body: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = body.get("usage")
    return usage if isinstance(usage, dict) else None


async def _complete(
    client: ChatCompletionsClient, request: BatchRequest, headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    result = await client.complete(request.body, headers={**headers, **_PASS_THROUGH})
    body = result.as_dict()
    return body, _usage(body)


async def _embed(
    client: EmbeddingsClient, request: BatchRequest, headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    named, extras = split_body(request.body)  # embed()'s named parameters, the rest extras
    result = await client.embed(**named, model_extras=extras or None, headers=headers)
    body = result.as_dict()
    return body, _usage(body)


# The request kinds and their clients.
_CLIENTS: Final[Mapping[str, Callable[..., Any]]] = {
    "chat": ChatCompletionsClient,
    "embeddings": EmbeddingsClient,
}
