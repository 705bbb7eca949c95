"""The async chat-completions client: the one implementation of request building. Retries,
timeouts, limits and status-to-exception mapping live in its attempt loop
(:mod:`inference.aio._attempts`). The sync client runs this same code."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload
from urllib.parse import urlencode

from azure.core.credentials import AzureKeyCredential

from .._auth import Authenticator, Credential
from .._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_STREAM_BYTES,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    Timeout,
)
from .._endpoint import (
    UNSET,
    Endpoint,
    coerce_kind,
    is_secure_for_credentials,
    resolve_endpoint,
)
from .._keywords import BODY_EXTRAS, EXTRAS, checked_keywords
from .._options import ChatClientOptions, check_hook, check_limit, check_options
from .._params import (
    DEFAULT_NAMES,
    CompleteParams,
    MessageInput,
    RequestDefaults,
    ToolInput,
    ToolLoopParams,
    check_client_options,
    client_headers,
    prepare_call,
)
from .._params import checked_headers as _checked_headers
from .._parse import attach_parsed
from .._serialization import DecodeFailure, loads_completions, loads_model_info
from .._tools import (
    DEFAULT_MAX_ROUNDS,
    ToolRunEvent,
    ToolRunResult,
    run_tool_events,
    run_tools,
)
from .._tracing import traced_chat
from ..exceptions import (
    RequestValidationError,
    ResourceNotFoundError,
)
from ..models import ChatCompletions, ModelInfo
from ._attempts import Caller
from ._stream import AsyncChatCompletionsStream

if TYPE_CHECKING:
    from ._transport import Response

__all__ = ["ChatCompletionsClient"]

_log = logging.getLogger("inference")
# The most ``/info`` answers a client keeps (one per set of call headers).
_MODEL_INFOS_KEPT = 16


class ChatCompletionsClient:
    """Async client for chat completions.

    ``endpoint``: the URL of an Azure AI model inference endpoint (``https://<resource>.services.
    ai.azure.com/models``), a serverless endpoint, an Azure OpenAI deployment (``.../openai/
    deployments/<name>``) or v1 (``.../openai/v1``) URL, GitHub Models, or any
    OpenAI-compatible server (``http://localhost:8000/v1``). The kind is detected from the URL;
    ``endpoint_kind=``, ``api_version=``, ``key_header=`` and ``token_scope=`` (or
    ``credential_scopes=``, azure-core's spelling) override it.

    ``credential``: an ``AzureKeyCredential``, a key string, an azure-identity credential
    (sync or async, e.g. ``DefaultAzureCredential()``), or None for servers without auth.

    Default request parameters (``model``, ``temperature``, ``max_tokens``, ...) given here
    apply to every :meth:`complete` call that does not set them; ``model_extras`` are sent
    with every request, at the body root. ``headers`` are sent with
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
    ``max_connections``: connections kept open at most (default 100; more concurrent requests
    wait for a free one, a wait that counts against ``Timeout.total`` only; ignored with your
    own ``session``). ``max_response_bytes``: the largest non-streamed response body read,
    counted after decompression (default 8 MiB); a longer one raises
    :class:`~inference.exceptions.ResponseTooLargeError`. ``max_stream_bytes``: the most
    bytes one stream's body may bring, counted after decompression (default 64 MiB; None for
    no limit); a longer stream is closed with
    :class:`~inference.exceptions.ResponseTooLargeError`, what arrived on its ``partial``.

    These keywords are declared once, in :class:`~inference.ChatClientOptions` (the
    connection options of :class:`~inference.ClientOptions`, the request defaults of
    :class:`~inference.RequestParams`, ``model_extras`` and ``max_stream_bytes``): type
    checkers check them, and an unknown one raises
    :class:`~inference.exceptions.RequestValidationError` naming the closest one.

    Use it as ``async with ChatCompletionsClient(...) as client:`` or call :meth:`close`.
    """

    # The answers of ``/info`` (see :meth:`get_model_info`), by the call's own headers (one may
    # pick another deployment behind the endpoint); made on first use, kept for the client's life.
    _model_infos: dict[tuple[tuple[str, str], ...], ModelInfo] | None = None
    # The requests to /info under way, by the same key: concurrent first calls share one.
    _model_infos_asked: dict[tuple[tuple[str, str], ...], asyncio.Future[ModelInfo]] | None = None

    @checked_keywords(EXTRAS)
    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        **options: Unpack[ChatClientOptions],
    ) -> None:
        check_options(options, ChatClientOptions, "ChatCompletionsClient()")
        max_connections = options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        max_response_bytes = options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
        max_stream_bytes = options.get("max_stream_bytes", DEFAULT_MAX_STREAM_BYTES)
        check_limit("max_connections", max_connections)
        check_limit("max_response_bytes", max_response_bytes)
        check_limit("max_stream_bytes", max_stream_bytes, optional=True)
        trust_env = options.get("trust_env", False)
        log_request_body = options.get("log_request_body", False)
        enforce_https = options.get("enforce_https", True)
        logging_enable = options.get("logging_enable", False)
        key_header = options.get("key_header")
        token_scope = check_client_options(
            key_header,
            options.get("credential_scopes"),
            options.get("token_scope"),
            {
                "trust_env": trust_env,
                "log_request_body": log_request_body,
                "enforce_https": enforce_https,
                "logging_enable": logging_enable,
            },
        )
        kind = options.get("endpoint_kind")
        self._endpoint: Endpoint = resolve_endpoint(
            endpoint,
            kind=None if kind is None else coerce_kind(kind, "endpoint_kind"),
            api_version=options.get("api_version", UNSET),
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
        self._request_defaults = RequestDefaults(
            {k: v for k, v in options.items() if k in DEFAULT_NAMES}, options.get("model_extras")
        )
        from ._transport import USER_AGENT, Transport  # aiohttp comes with the first client

        user_agent = options.get("user_agent")
        self._headers = client_headers(options.get("headers"), user_agent, USER_AGENT)
        self._timeout = Timeout.coerce(options.get("timeout"), DEFAULT_TIMEOUT)
        self._retry = RetryPolicy.coerce(options.get("retry"), DEFAULT_RETRY)
        self._transport = Transport(
            options.get("session"), trust_env=trust_env, max_connections=max_connections
        )
        self._log_http = logging_enable
        self._caller = Caller(
            self._transport,
            self._auth,
            self._endpoint,
            self._headers,
            token_auth=self._token_auth,
            max_body=max_response_bytes,
            max_stream=max_stream_bytes,
            log_body=log_request_body or logging_enable,
            log_http=logging_enable,
            response_hook=check_hook(options.get("response_hook")),
        )
        # The attempt loop does the work of every call (see _attempts.py).
        self._stream = self._caller.stream
        self._fetch = self._caller.fetch
        self._decode_error = self._caller.decode_error
        self._public_name = "ChatCompletionsClient"  # the name a wrapping client goes by

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
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[False] | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions: ...

    @overload
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[True],
        **params: Unpack[CompleteParams],
    ) -> AsyncChatCompletionsStream: ...

    @overload
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: bool | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions | AsyncChatCompletionsStream: ...

    @traced_chat
    async def complete(
        self,
        body: Mapping[str, Any] | None = None,
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
        raises). ``body`` (the first argument, or ``body=``) sends a complete JSON body as
        given instead. ``headers`` (or ``extra_headers``), ``extra_query``, ``timeout`` and
        ``retry`` apply to this call only.
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

    @checked_keywords()
    async def get_model_info(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ModelInfo:
        """What ``/info`` says about the model behind the endpoint (Azure AI endpoints).

        The first answer is kept for the client's life (a call with other ``headers=`` asks
        once for itself; a failure is not kept), as azure-ai-inference does. Calls made while
        the first request is under way wait for its answer (or its error) instead of sending
        their own.

        Endpoint kinds without ``/info`` (Azure OpenAI v1, GitHub Models, OpenAI-compatible
        servers) raise :class:`~inference.exceptions.ResourceNotFoundError` without a request.
        """
        url = self._endpoint.info_url
        if url is None:
            raise ResourceNotFoundError(
                f"this endpoint kind ({self._endpoint.kind.value}) has no /info route; "
                "the model name is what you pass as model="
            )
        call_headers = _checked_headers(headers, "headers")
        key = tuple(sorted((name.lower(), value) for name, value in call_headers.items()))
        known = self._model_infos
        if known is not None and key in known:
            return known[key]
        asked = self._model_infos_asked
        if asked is None:
            asked = self._model_infos_asked = {}
        while (under_way := asked.get(key)) is not None:
            try:
                return await asyncio.shield(under_way)
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if not under_way.cancelled() or (me is not None and me.cancelling()):
                    raise  # this call was cancelled (perhaps with the one that asked)
                # Only the call that asked was cancelled: ask again (or wait for the next one).
        answer: asyncio.Future[ModelInfo] = asyncio.get_running_loop().create_future()
        asked[key] = answer
        try:
            info = await self._ask_model_info(url, call_headers, timeout, retry)
        except BaseException as exc:
            if isinstance(exc, Exception):
                answer.set_exception(exc)
                answer.exception()  # retrieved: no "never retrieved" log when nobody waits
            else:
                answer.cancel()
            raise
        finally:
            del asked[key]
        answer.set_result(info)
        if known is None:
            known = self._model_infos = {}
        if len(known) >= _MODEL_INFOS_KEPT:
            del known[next(iter(known))]  # the oldest
        known[key] = info
        return info

    async def _ask_model_info(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout: Timeout | float | None,
        retry: RetryPolicy | int | None,
    ) -> ModelInfo:
        response, data, attempts = await self._fetch(
            "GET",
            url,
            None,
            headers,
            Timeout.coerce(timeout, self._timeout),
            RetryPolicy.coerce(retry, self._retry),
        )
        try:
            return loads_model_info(data)
        except DecodeFailure as exc:
            raise self._decode_error(response, data, exc, attempts) from exc

    def _keep_model_info(self, info: ModelInfo) -> None:
        # load_client() hands over the answer it read: the client need not ask again.
        self._model_infos = {(): info}

    @checked_keywords(BODY_EXTRAS)
    async def run_tools(
        self,
        *,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolInput],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Unpack[ToolLoopParams],
    ) -> ToolRunResult:
        """Let the model use Python functions as tools until it answers; the result holds
        the final completion and the whole conversation.

        ``tools``: plain or async functions with type hints and a docstring (or
        :func:`inference.tool` objects), beside tool definitions if you like. Each round the
        model is called with ``messages`` and every call it asks for is run, all at the same
        time (sync functions in worker threads), after its arguments are checked against the
        function's signature; the assistant turn and the tool results are appended, and the
        model is asked again, until it answers without tool calls.

        A tool that raises or returns a value JSON cannot carry, or arguments that do not
        fit, go back to the model as an ``Error: ...`` tool message (an exception's message
        cut to its first 4,000 characters, saying how many more were cut);
        ``raise_tool_errors=True`` raises
        :class:`~inference.exceptions.ToolCallError` (the whole message, the tool's exception
        as its cause) when a tool raises or returns such a value instead. More than
        ``max_rounds`` rounds of tool calls raise
        :class:`~inference.exceptions.ToolRoundsExceededError`. A ``tool_choice`` that forces a
        call (``"required"`` or a named tool) applies until tools have run once, then becomes
        ``"auto"`` so the model can answer; ``reset_tool_choice=False`` keeps it. Other keyword
        parameters (``model``, ``temperature``, ``tool_choice``, ``response_format``, ...) go
        to every :meth:`complete` call; ``n`` other than 1 (here, in ``model_extras`` or
        ``extra_body``, or as the client's default) is refused, since the loop continues one
        answer. An error raised by a model call in
        the loop carries ``messages``: the conversation so far, tool results included.
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

    @checked_keywords(BODY_EXTRAS)
    def stream_tools(
        self,
        *,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolInput],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Unpack[ToolLoopParams],
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
        self._caller.close()
        await self._transport.aclose()
        await self._auth.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # Never closed: close the pool's connections and say so, once, in the project's
        # words (instead of aiohttp's "Unclosed client session" and "Unclosed connector").
        transport = getattr(self, "_transport", None)
        if transport is None or not transport.abandon():
            return
        name = repr(self).replace("ChatCompletionsClient", self._public_name, 1)
        _warn(
            f"{name} was never closed (its connections were closed now): use "
            f"'async with {self._public_name}(...) as client:' or 'await client.close()'",
            ResourceWarning,
            source=self,
        )

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
