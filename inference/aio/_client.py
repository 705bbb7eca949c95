"""The async chat-completions client: the one implementation of request building, retries,
timeouts and status-to-exception mapping. The sync client runs this same code."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload
from urllib.parse import urlencode

import anyio
from azure.core.credentials import AzureKeyCredential

from .._auth import Authenticator, Credential
from .._config import DEFAULT_RETRY, DEFAULT_TIMEOUT, RetryPolicy, Timeout, requested_delay
from .._endpoint import UNSET, Endpoint, EndpointKind, is_secure_for_credentials, resolve_endpoint
from .._errors import error_from_response
from .._params import (
    CompleteParams,
    MessageInput,
    RequestDefaults,
    RequestParams,
    client_headers,
    prepare_call,
)
from .._params import checked_headers as _checked_headers
from .._parse import attach_parsed
from .._serialization import DecodeFailure, loads_completions, loads_model_info
from .._streamparser import is_event_stream
from .._tools import (
    DEFAULT_MAX_ROUNDS,
    ToolRunEvent,
    ToolRunResult,
    run_tool_events,
    run_tools,
)
from ..exceptions import (
    ClientAuthenticationError,
    ErrorResponse,
    HttpResponseError,
    InferenceError,
    InferenceTimeoutError,
    RequestValidationError,
    ResourceNotFoundError,
    ResponseDecodeError,
    ServiceRequestError,
    ServiceResponseError,
    StreamInterruptedError,
    TotalTimeoutError,
)
from ..models import ChatCompletions, ModelInfo
from ._stream import AsyncChatCompletionsStream
from ._transport import USER_AGENT, Response, Transport, is_retryable

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ChatCompletionsClient"]

_log = logging.getLogger("inference")

# The library's own generator, seeded from the system: an application that seeds ``random``
# (for reproducible runs) neither fixes the request ids nor has its sequence consumed by them.
# A forked child reseeds it, so parent and child do not send the same ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_random_bits = _ids.getrandbits
# The version (4) and variant (RFC 9562) bits of a random UUID, and the bits they replace.
_UUID4_CLEAR = 0xF000 << 64 | 0xC000 << 48
_UUID4_SET = 0x4000 << 64 | 0x8000 << 48


def _request_id() -> str:
    """A random (version 4) UUID for ``x-ms-client-request-id``.

    It only has to be unique, not secret: a generator of the library's own makes one in a
    third of the time of ``uuid.uuid4()``, without a system call.
    """
    h = "%032x" % ((_random_bits(128) & ~_UUID4_CLEAR) | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECRET_HEADERS = frozenset(
    {
        "api-key",
        "authorization",
        "cookie",
        "set-cookie",
        "ocp-apim-subscription-key",
        "proxy-authorization",
        "x-api-key",
    }
)


def redact_headers(
    headers: Mapping[str, str], secret_names: frozenset[str] = _SECRET_HEADERS
) -> dict[str, str]:
    """A copy of ``headers`` with credentials replaced by ``***`` (for logs).

    ``secret_names`` (lower case) are the headers to hide; the defaults always are.
    """
    names = secret_names | _SECRET_HEADERS
    return {k: ("***" if k.lower() in names else v) for k, v in headers.items()}


class ChatCompletionsClient:
    """Async client for chat completions.

    ``endpoint``: the URL of an Azure AI model inference endpoint (``https://<resource>.services.
    ai.azure.com/models``), a serverless endpoint, an Azure OpenAI deployment (``.../openai/
    deployments/<name>``) or v1 (``.../openai/v1``) URL, GitHub Models, or any
    OpenAI-compatible server (``http://localhost:8000/v1``). The kind is detected from the URL;
    ``endpoint_kind=``, ``api_version=``, ``key_header=`` and ``token_scope=`` override it.

    ``credential``: an ``AzureKeyCredential``, a key string, an azure-identity credential
    (sync or async, e.g. ``DefaultAzureCredential()``), or None for servers without auth.

    Default request parameters (``model``, ``temperature``, ``max_tokens``, ...) given here
    apply to every :meth:`complete` call that does not set them. ``headers`` are sent with
    every request. ``timeout`` (:class:`inference.Timeout` or seconds) and ``retry``
    (:class:`inference.RetryPolicy` or a number of retries) set the defaults for every call.
    ``session``: your own ``aiohttp.ClientSession`` (then you close it; TLS settings are yours).
    ``trust_env``: let the session read proxy settings and ``.netrc`` from the environment.
    ``log_request_body``: log request bodies at DEBUG (off: prompts can be sensitive).
    ``logging_enable``: log each request and response at DEBUG on the ``inference`` logger,
    bodies and headers included, keys and tokens redacted (azure-core's name).
    ``user_agent``: your application's name and version (``"myapp/1.2"``), sent before the
    library's own in the ``User-Agent`` header.
    ``enforce_https``: refuse to send a key or token over plain ``http://`` to a host that is
    not a loopback address (the default); ``False`` allows it, for a server on a network you
    trust (vLLM or Ollama on your LAN): anyone on the path can read the key.
    ``response_hook``: called with the status and headers of every response head received
    (each attempt, retries included), e.g. to read ``x-ratelimit-*`` headers; it runs on the
    client's event loop, must not block, and what it raises ends the call.

    Use it as ``async with ChatCompletionsClient(...) as client:`` or call :meth:`close`.
    """

    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        *,
        model_extras: Mapping[str, Any] | None = None,
        api_version: Any = UNSET,
        endpoint_kind: EndpointKind | str | None = None,
        key_header: str | Sequence[str] | None = None,
        token_scope: str | None = None,
        credential_scopes: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
        session: aiohttp.ClientSession | None = None,
        trust_env: bool = False,
        log_request_body: bool = False,
        enforce_https: bool = True,
        response_hook: Callable[[int, Mapping[str, str]], None] | None = None,
        user_agent: str | None = None,
        logging_enable: bool = False,
        **defaults: Unpack[RequestParams],
    ) -> None:
        if credential_scopes is not None and token_scope is None:
            scopes = list(credential_scopes)
            if len(scopes) != 1:
                raise RequestValidationError("credential_scopes takes exactly one scope")
            token_scope = scopes[0]
        self._endpoint: Endpoint = resolve_endpoint(
            endpoint,
            kind=endpoint_kind,
            api_version=api_version,
            key_header=key_header,
            token_scope=token_scope,
        )
        if (
            enforce_https
            and credential is not None
            and not is_secure_for_credentials(self._endpoint.chat_completions_url)
        ):
            raise RequestValidationError(
                f"refusing to send a key or token over plain http to {self._endpoint.base_url}: "
                "use an https:// endpoint, or pass enforce_https=False to allow plain http on "
                "a network you trust (without it, plain http is allowed only for loopback "
                "addresses such as 127.0.0.1 or localhost)"
            )
        self._token_auth = credential is not None and not isinstance(
            credential, str | AzureKeyCredential
        )
        self._auth = Authenticator(
            credential,
            key_headers=self._endpoint.key_headers,
            token_scope=self._endpoint.token_scope,
        )
        self._request_defaults = RequestDefaults(defaults, model_extras)
        self._headers = client_headers(headers, user_agent, USER_AGENT)
        self._timeout = Timeout.coerce(timeout, DEFAULT_TIMEOUT)
        self._retry = RetryPolicy.coerce(retry, DEFAULT_RETRY)
        self._transport = Transport(session, trust_env=trust_env)
        self._log_body = log_request_body or logging_enable
        self._log_http = logging_enable
        self._response_hook = response_hook
        # Every header that can carry the credential, including a custom key_header=.
        self._secret_headers = _SECRET_HEADERS | frozenset(
            name.lower() for name in self._endpoint.key_headers
        )
        self._closed = False

    # -- properties --------------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """The resolved endpoint: kind, URLs, api-version, key headers and token scope."""
        return self._endpoint

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._endpoint.kind.value} {self._endpoint.base_url} "
            f"auth={self._auth!r}>"
        )

    # -- the API -----------------------------------------------------------------------------

    @overload
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[False] | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions: ...

    @overload
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[True],
        **params: Unpack[CompleteParams],
    ) -> AsyncChatCompletionsStream: ...

    @overload
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: bool | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions | AsyncChatCompletionsStream: ...

    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: bool | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions | AsyncChatCompletionsStream:
        """Send a chat-completions request.

        ``messages``: the conversation (message models, a response's message, or dicts such
        as ``{"role": "user", "content": "..."}``).
        ``stream=True`` returns an :class:`AsyncChatCompletionsStream` of updates once the
        first event has arrived; otherwise the whole :class:`~inference.models.ChatCompletions`.
        The request parameters (:class:`~inference.RequestParams`: ``model``,
        ``temperature``, ``top_p``, ``max_tokens``, ``max_completion_tokens``, ``stop``,
        penalties, ``seed``, ``n``, ``user``, ``response_format``, ``tools``,
        ``tool_choice``) override the client's defaults and are checked before anything is
        sent. ``stream_options={"include_usage": True}`` asks for a final usage update.
        ``model_extras`` go at the body root with the header ``extra-parameters:
        pass-through``; ``extra_body`` is merged at the body root as given (a key set twice
        raises). ``body`` (positional) sends a complete JSON body as given instead.
        ``headers`` (or ``extra_headers``), ``extra_query``, ``timeout`` and ``retry`` apply
        to this call only.
        A class as ``response_format`` (attrs, dataclass, TypedDict or pydantic model) asks
        for JSON of its strict schema and sets ``message.parsed`` to an instance of it.
        """
        call = prepare_call(
            body, messages, stream, params, self._request_defaults, self._endpoint.query()
        )
        call_timeout = Timeout.coerce(call.timeout, self._timeout)
        call_retry = RetryPolicy.coerce(call.retry, self._retry)
        url = self._endpoint.chat_completions_url
        if call.query:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(call.query)}"
        if call.streaming:
            streamed = await self._stream(call.payload, call.headers, call_timeout, call_retry, url)
            streamed._output_type = call.output_type
            return streamed
        response, data, attempts = await self._fetch(
            "POST", url, call.payload, call.headers, call_timeout, call_retry
        )
        if self._log_http:
            _log.debug("response body=%s", self._auth.redact(data.decode("utf-8", "replace")))
        try:
            completion = loads_completions(data)
        except DecodeFailure as exc:
            raise self._decode_error(response, data, exc, attempts) from exc
        if call.output_type is None:
            return completion
        return attach_parsed(completion, call.output_type)

    async def get_model_info(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ModelInfo:
        """What ``/info`` says about the model behind the endpoint (Azure AI endpoints).

        Endpoint kinds without ``/info`` (Azure OpenAI v1, GitHub Models, OpenAI-compatible
        servers) raise :class:`~inference.exceptions.ResourceNotFoundError` without a request.
        """
        url = self._endpoint.info_url
        if url is None:
            raise ResourceNotFoundError(
                f"this endpoint kind ({self._endpoint.kind.value}) has no /info route; "
                "the model name is what you pass as model="
            )
        response, data, attempts = await self._fetch(
            "GET",
            url,
            None,
            _checked_headers(headers, "headers"),
            Timeout.coerce(timeout, self._timeout),
            RetryPolicy.coerce(retry, self._retry),
        )
        try:
            return loads_model_info(data)
        except DecodeFailure as exc:
            raise self._decode_error(response, data, exc, attempts) from exc

    async def run_tools(
        self,
        *,
        messages: Sequence[Any],
        tools: Sequence[Any],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Any,
    ) -> ToolRunResult:
        """Let the model use Python functions as tools until it answers; the result holds
        the final completion and the whole conversation.

        ``tools``: plain or async functions with type hints and a docstring (or
        :func:`inference.tool` objects), beside tool definitions if you like. Each round the
        model is called with ``messages`` and every call it asks for is run, all at the same
        time (sync functions in worker threads), after its arguments are checked against the
        function's signature; the assistant turn and the tool results are appended, and the
        model is asked again, until it answers without tool calls.

        A tool that raises, or arguments that do not fit, go back to the model as an
        ``Error: ...`` tool message; ``raise_tool_errors=True`` raises
        :class:`~inference.exceptions.ToolCallError` when a tool raises instead. More than
        ``max_rounds`` rounds of tool calls raise
        :class:`~inference.exceptions.ToolRoundsExceededError`. A ``tool_choice`` that forces a
        call (``"required"`` or a named tool) applies until tools have run once, then becomes
        ``"auto"`` so the model can answer; ``reset_tool_choice=False`` keeps it. Other keyword
        parameters (``model``, ``temperature``, ``tool_choice``, ``response_format``, ...) go
        to every :meth:`complete` call.
        """
        return await run_tools(
            self,
            messages=messages,
            tools=tools,
            max_rounds=max_rounds,
            raise_tool_errors=raise_tool_errors,
            reset_tool_choice=reset_tool_choice,
            params=params,
        )

    def stream_tools(
        self,
        *,
        messages: Sequence[Any],
        tools: Sequence[Any],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Any,
    ) -> AsyncIterator[ToolRunEvent]:
        """The same loop as :meth:`run_tools`, streamed: an iterator of events as they happen.

        :class:`~inference.TextDeltaEvent` for each piece of text, :class:`~inference.
        ToolCallEvent` when the model asks for a call, :class:`~inference.ToolResultEvent` when
        it has run (``error`` set if it failed), and last :class:`~inference.ToolRunDoneEvent`
        with the :class:`~inference.ToolRunResult`. Parameters as for :meth:`run_tools`.
        """
        return run_tool_events(
            self,
            messages=messages,
            tools=tools,
            max_rounds=max_rounds,
            raise_tool_errors=raise_tool_errors,
            reset_tool_choice=reset_tool_choice,
            params=params,
            stream=True,
        )

    async def close(self) -> None:
        """Close the connection pool (not a session you passed in). Idempotent."""
        self._closed = True
        await self._transport.aclose()
        await self._auth.aclose()

    async def __aenter__(self) -> ChatCompletionsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- internals ---------------------------------------------------------------------------

    async def _send_json(
        self,
        url: str,
        payload: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: Timeout | float | None,
        retry: RetryPolicy | int | None,
    ) -> tuple[Response, bytes, int]:
        """POST ``payload`` (GET when None) to ``url`` through this client's endpoint,
        credential, headers, timeouts and retries; returns (response, body, attempts).

        The request path other clients share (:class:`inference.aio.EmbeddingsClient`):
        per-call ``headers``, ``timeout`` and ``retry`` as :meth:`complete` takes them.
        """
        return await self._fetch(
            "GET" if payload is None else "POST",
            url,
            payload,
            _checked_headers(headers, "headers"),
            Timeout.coerce(timeout, self._timeout),
            RetryPolicy.coerce(retry, self._retry),
        )

    def _scrub(self, error: HttpResponseError) -> None:
        """Some servers and proxies echo the key they got in their error text: never let it
        into the exception's message."""
        text = str(error)
        clean = self._auth.redact(text)
        if clean != text:
            error._text = clean
            error.args = (clean,)
            error.message = self._auth.redact(error.message)

    async def _stream(
        self,
        payload: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
        url: str,
    ) -> AsyncChatCompletionsStream:
        deadline = None if timeout.total is None else anyio.current_time() + timeout.total
        attempts = 0
        while True:
            # One retry budget for the whole call: attempts cut before their first event
            # count against it too.
            response, attempts, request_id = await self._send_with_retries(
                "POST", url, payload, headers, timeout, retry, deadline=deadline, prior=attempts
            )
            content_type = response.headers.get("content-type", "")
            if not is_event_stream(content_type):
                data = await self._read_body(response, timeout)
                raise self._decode_error(
                    response,
                    data,
                    DecodeFailure(
                        f"a streamed request got content-type {content_type!r} instead of "
                        "text/event-stream"
                    ),
                    attempts,
                )
            response.set_body_timeout(None)  # the stream keeps its own idle clock
            stream = AsyncChatCompletionsStream(
                response,
                idle_timeout=timeout.idle,
                deadline=deadline,
                request_id=request_id,
                redact=self._auth.redact,
            )
            try:
                await stream._prime()
            except StreamInterruptedError as exc:
                # Nothing reached the caller yet: a cut before the first event can be retried.
                if stream._parser.count == 0 and attempts <= retry.max_retries:
                    delay = retry.backoff_delay(attempts - 1)
                    _log.info(
                        "retrying POST %s in %.2f s (the stream was cut before its first "
                        "event, attempt %d: %s)",
                        url,
                        delay,
                        attempts,
                        exc,
                    )
                    await anyio.sleep(delay)
                    continue
                if attempts > 1:
                    exc.args = (f"{exc.args[0]} (after {attempts} attempts)",)
                raise
            return stream

    async def _fetch(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        headers: Mapping[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
    ) -> tuple[Response, bytes, int]:
        """Send and read the whole body: (response, body, attempts).

        A body cut off by the connection is retried like a request that got no response
        (the same retry budget); the last failure raises ServiceResponseError.
        """
        deadline = None if timeout.total is None else anyio.current_time() + timeout.total
        attempts = 0
        while True:
            response, attempts, _ = await self._send_with_retries(
                method, url, payload, headers, timeout, retry, deadline=deadline, prior=attempts
            )
            try:
                return (
                    response,
                    await self._read_body(response, timeout, deadline, attempts),
                    attempts,
                )
            except ServiceResponseError as exc:
                delay = retry.backoff_delay(attempts - 1)
                out_of_time = deadline is not None and anyio.current_time() + delay >= deadline
                if attempts > retry.max_retries or out_of_time:
                    exc.attempts = attempts
                    if attempts > 1:
                        exc.args = (f"{exc.args[0]} (after {attempts} attempts)",)
                    raise
                _log.info(
                    "retrying %s %s in %.2f s (attempt %d: %s)", method, url, delay, attempts, exc
                )
                await anyio.sleep(delay)

    async def _send_with_retries(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        extra_headers: Mapping[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
        *,
        deadline: float | None = None,
        prior: int = 0,
    ) -> tuple[Response, int, str]:
        """Send until a success status, retrying what is safe to retry.

        ``prior`` attempts of the same call were already made (they count against the
        retry budget and in the reported number of attempts).

        Returns the response (head received), the number of attempts and the request id.
        """
        if self._closed:
            raise InferenceError("the client is closed; create a new client")
        if deadline is None and timeout.total is not None:
            deadline = anyio.current_time() + timeout.total
        request_id = _request_id()
        headers = {
            "Accept": "application/json"
            if method == "GET"
            else "application/json, text/event-stream",
            "x-ms-client-request-id": request_id,
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self._headers)
        headers.update(extra_headers)
        params = self._endpoint.query() or None
        attempt = prior
        refreshed_token = False
        while True:
            attempt += 1
            await self._auth.apply(headers)
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s %s attempt %d headers=%s%s",
                    method,
                    url,
                    attempt,
                    redact_headers(headers, self._secret_headers),
                    f" body={payload.decode('utf-8', 'replace')}"
                    if self._log_body and payload
                    else "",
                )
            remaining_read = timeout.read
            if deadline is not None:
                left = deadline - anyio.current_time()
                if left <= 0:
                    raise TotalTimeoutError(
                        f"the call took longer than Timeout.total ({timeout.total} s)",
                        attempts=attempt - 1 or 1,
                    )
                remaining_read = left if remaining_read is None else min(left, remaining_read)
            try:
                response = await self._transport.send(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    body=payload,
                    connect_timeout=timeout.connect,
                    read_timeout=remaining_read,
                )
            except (ServiceRequestError, InferenceTimeoutError) as exc:
                if deadline is not None and anyio.current_time() >= deadline - 1e-3:
                    raise TotalTimeoutError(
                        f"the call took longer than Timeout.total ({timeout.total} s)",
                        attempts=attempt,
                    ) from exc
                if attempt <= retry.max_retries and is_retryable(exc):
                    delay = retry.backoff_delay(attempt - 1)
                    _log.info(
                        "retrying %s %s in %.2f s (attempt %d failed: %s)",
                        method,
                        url,
                        delay,
                        attempt,
                        exc,
                    )
                    await anyio.sleep(delay)
                    continue
                exc.attempts = attempt
                if attempt > 1:
                    exc.args = (f"{exc.args[0]} (after {attempt} attempts)",)
                raise
            status = response.status
            if self._response_hook is not None:
                try:
                    self._response_hook(status, response.headers)
                except BaseException:
                    response.close()
                    raise
            rid = (
                response.headers.get("x-request-id")
                or response.headers.get("apim-request-id")
                or request_id
            )
            _log.debug(
                "%s %s -> %d %s%s",
                method,
                url,
                status,
                response.reason,
                f" headers={redact_headers(response.headers, self._secret_headers)}"
                if self._log_http
                else "",
            )
            if status < 300:
                return response, attempt, rid
            if status < 400:
                location = response.headers.get("location", "")
                body = await self._read_body(response, timeout)
                raise HttpResponseError(
                    f"HTTP {status} {response.reason}: the server redirected the request"
                    + (f" to {location.split('?')[0]}" if location else "")
                    + "; use the final URL as the endpoint (redirects are not followed, so a "
                    "key is never sent to another address)",
                    ErrorResponse(status, response.reason, response.headers, body),
                    attempts=attempt,
                )
            # Error status: read the (small) body for the message, then decide.
            try:
                body = await self._read_body(response, timeout)
            except InferenceError:
                body = b""
            requested = requested_delay(response.headers, time.time())
            server_wait = None if requested is None else min(requested, retry.max_retry_after)
            error = error_from_response(
                status,
                response.reason,
                response.headers,
                body,
                attempts=attempt,
                retry_after=requested,
            )
            self._scrub(error)
            if (
                isinstance(error, ClientAuthenticationError)
                and status == 401
                and self._token_auth
                and not refreshed_token
            ):
                refreshed_token = True
                current: dict[str, str] = {}
                await self._auth.apply(current)
                if current.get("authorization") == headers.get("authorization"):
                    # The refused token is still the cached one: throw it away. When another
                    # request has already replaced it, the new token is used as it is, so a
                    # burst of 401s costs one token request, not one each.
                    self._auth.invalidate()
                _log.info("retrying %s %s with a fresh token after HTTP 401", method, url)
                continue
            if status in retry.statuses and attempt <= retry.max_retries:
                delay = server_wait if server_wait is not None else retry.backoff_delay(attempt - 1)
                if deadline is not None and anyio.current_time() + delay >= deadline:
                    raise error
                _log.info(
                    "retrying %s %s in %.2f s (HTTP %d %s, attempt %d)",
                    method,
                    url,
                    delay,
                    status,
                    response.reason,
                    attempt,
                )
                await anyio.sleep(delay)
                continue
            raise error

    @staticmethod
    async def _read_body(
        response: Response,
        timeout: Timeout,
        deadline: float | None = None,
        attempts: int = 1,
    ) -> bytes:
        # A body that keeps arriving is read to its end however long it takes; only a
        # silence longer than Timeout.idle (or read, when idle is None) ends it, or the
        # call's Timeout.total (``deadline``).
        limit = timeout.idle if timeout.idle is not None else timeout.read
        response.set_body_timeout(limit)
        try:
            if deadline is None:
                return await response.read()
            try:
                with anyio.fail_after(max(deadline - anyio.current_time(), 0.0)):
                    return await response.read()
            except TimeoutError as exc:
                if isinstance(exc, TotalTimeoutError):
                    raise
                if anyio.current_time() < deadline:
                    raise  # the body timeout, handled below
                response.close()
                raise TotalTimeoutError(
                    f"the call took longer than Timeout.total ({timeout.total} s)",
                    attempts=attempts,
                ) from None
        except TimeoutError as exc:
            if isinstance(exc, TotalTimeoutError):
                raise
            response.close()
            from ..exceptions import ReadTimeoutError

            raise ReadTimeoutError(
                f"the response body stopped arriving: nothing for {limit} s"
            ) from None
        finally:
            response.release()

    @staticmethod
    def _decode_error(
        response: Response, data: bytes, exc: Exception, attempts: int
    ) -> HttpResponseError:
        content_type = response.headers.get("content-type", "")
        return ResponseDecodeError(
            f"HTTP {response.status} but the body is not the expected chat-completions JSON "
            f"(content-type {content_type or 'missing'}): {exc}",
            ErrorResponse(response.status, response.reason, response.headers, data),
            attempts=attempts,
        )
