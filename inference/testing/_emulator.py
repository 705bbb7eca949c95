"""A local chat-completions and embeddings server (aiohttp.web) that behaves like the real
services.

It serves every endpoint kind the client knows (Azure AI Model Inference ``/models`` and
serverless, Azure OpenAI deployment and ``/openai/v1`` URLs, GitHub Models, OpenAI-compatible
``/v1``), answers with the deterministic built-in model of :mod:`inference.testing._model`, and
reproduces the real wire shapes: response bodies, server-sent events, error bodies. Options
inject the awkward things real services do (slow tokens, CRLF line endings, keep-alive
comments, Azure content-filter annotations, errors and cuts in the middle of a stream, stalls,
error statuses with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final

import attrs
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from . import _embeddings, _model
from ._ratelimit import RateLimiter, Verdict

__all__ = [
    "ENDPOINT_KINDS",
    "MAX_REQUEST_BYTES",
    "Emulator",
    "EmulatorOptions",
    "RecordedRequest",
    "run",
]

#: The endpoint kinds the emulator serves, as accepted by :meth:`Emulator.endpoint`.
ENDPOINT_KINDS: Final = (
    "azure_ai_models",
    "azure_ai_serverless",
    "azure_openai_deployment",
    "azure_openai_v1",
    "github_models",
    "openai_compatible",
)

#: The largest request body the emulator reads by default, in bytes (64 MiB): room for the
#: largest image the command line attaches (20 MiB, a third more as base64) twice over.
#: A larger body is answered with HTTP 413 in the endpoint kind's error shape.
MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024

_OPTION_HEADER_PREFIX = "x-emulator-"
_ANNOTATION_EVERY = 10
_STALL_POLL_SECONDS = 0.05
_MODELS_CREATED = 1_700_000_000


@attrs.define
class EmulatorOptions:
    """How the emulator behaves; mutable at runtime through :attr:`Emulator.options`.

    Every field can also be set for one request with a header ``x-emulator-<field>`` (underscores
    written as dashes), e.g. ``x-emulator-token-delay: 0.01`` or ``x-emulator-status: 429``.
    Booleans accept ``true/false/1/0/yes/no/on/off``; optional fields accept ``none``.

    The stream faults (``error_after``, ``cut_after``, ``stall_after``) count content chunks
    (text tokens or tool-call fragments); when the answer is shorter than the count, the fault
    happens just before the finishing chunk. Without streaming, ``stall_after`` (any value)
    withholds the response until the client goes away, ``cut_after`` (any value) closes the
    connection without a response, and ``token_delay`` delays the response by one delay per
    completion token.
    """

    #: When set, requests must carry ``api-key: <key>`` or ``Authorization: Bearer <key>``.
    key: str | None = None
    #: Seconds to wait before each streamed content chunk.
    token_delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: Seconds the model "thinks" before its first token: a stream sends its head at once and
    #: its first event after this delay; a non-streamed answer is held back this long.
    first_token_delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: Use CRLF line endings in the event stream.
    crlf: bool = False
    #: Send a ``: keep-alive`` comment line before each event.
    keepalive_comments: bool = False
    #: Azure OpenAI style content-filter results: a first event with empty ``choices`` and
    #: ``prompt_filter_results``, annotation events (choices without ``delta``), and the filter
    #: results in non-streaming bodies.
    annotations: bool = False
    #: After this many content chunks, send an ``error`` event and end the stream.
    error_after: int | None = None
    #: After this many content chunks, close the connection abruptly (no ``[DONE]``, no end of
    #: the chunked body).
    cut_after: int | None = None
    #: Repeat the built-in text answer this many times.
    repeat: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: After this many content chunks, send nothing more until the client goes away.
    stall_after: int | None = None
    #: Answer every chat request with this HTTP error status and the endpoint kind's error body.
    status: int | None = None
    #: With ``status`` 429 or 503: send ``Retry-After`` (and ``retry-after-ms``) with this value.
    retry_after: float | None = None
    #: Admit at most this many chat and embeddings requests per minute; more get HTTP 429 with
    #: ``Retry-After``.
    #: Every answer carries ``x-ratelimit-{limit,remaining,reset}-requests`` headers.
    rate_limit_requests: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    #: Admit at most this many tokens (prompt plus completion) per minute, likewise, with
    #: ``x-ratelimit-*-tokens`` headers.
    rate_limit_tokens: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    #: The rate limits' burst: their buckets hold this many seconds' worth of the per-minute
    #: limit and refill continuously (see :mod:`inference.testing._ratelimit`).
    rate_limit_window: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0))


@attrs.define
class RecordedRequest:
    """One request the emulator received, as it arrived."""

    #: HTTP method, e.g. ``"POST"``.
    method: str
    #: The URL path, e.g. ``"/models/chat/completions"``.
    path: str
    #: Query parameters (first value of each), e.g. ``{"api-version": "2024-05-01-preview"}``.
    query: dict[str, str]
    #: Request headers; lookups are case-insensitive.
    headers: CIMultiDictProxy[str]
    #: The raw body (empty when the body was refused as larger than the emulator's limit).
    body: bytes
    #: The body parsed as JSON, or None when it is empty or not JSON.
    json: Any
    #: The endpoint kind the path belongs to (see :data:`ENDPOINT_KINDS`), None when unknown.
    kind: str | None
    #: Body keys the Azure AI Model Inference API does not define (chat requests only).
    extra_parameters: list[str] = attrs.Factory(list)


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    kind: str
    action: str


_ROUTES: Final = (
    _Route("POST", re.compile(r"/chat/completions"), "azure_ai_serverless", "chat"),
    _Route("GET", re.compile(r"/info"), "azure_ai_serverless", "info"),
    _Route("POST", re.compile(r"/models/chat/completions"), "azure_ai_models", "chat"),
    _Route("GET", re.compile(r"/models/info"), "azure_ai_models", "info"),
    _Route(
        "POST",
        re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/chat/completions"),
        "azure_openai_deployment",
        "chat",
    ),
    _Route(
        "GET",
        re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/info"),
        "azure_openai_deployment",
        "not_found",
    ),
    _Route("POST", re.compile(r"/openai/v1/chat/completions"), "azure_openai_v1", "chat"),
    _Route("GET", re.compile(r"/openai/v1/models"), "azure_openai_v1", "models"),
    _Route("POST", re.compile(r"/inference/chat/completions"), "github_models", "chat"),
    _Route("POST", re.compile(r"/v1/chat/completions"), "openai_compatible", "chat"),
    _Route("GET", re.compile(r"/v1/models"), "openai_compatible", "models"),
    _Route("POST", re.compile(r"/embeddings"), "azure_ai_serverless", "embeddings"),
    _Route("POST", re.compile(r"/models/embeddings"), "azure_ai_models", "embeddings"),
    _Route(
        "POST",
        re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/embeddings"),
        "azure_openai_deployment",
        "embeddings",
    ),
    _Route("POST", re.compile(r"/openai/v1/embeddings"), "azure_openai_v1", "embeddings"),
    _Route("POST", re.compile(r"/inference/embeddings"), "github_models", "embeddings"),
    _Route("POST", re.compile(r"/v1/embeddings"), "openai_compatible", "embeddings"),
)

_KIND_PREFIXES: Final = (
    ("/models/", "azure_ai_models"),
    ("/openai/deployments/", "azure_openai_deployment"),
    ("/openai/", "azure_openai_v1"),
    ("/inference/", "github_models"),
    ("/v1/", "openai_compatible"),
)

# Error body families: which shape a kind's errors take.
_FAMILY: Final = {
    "azure_ai_serverless": "serverless",
    "azure_ai_models": "azure",
    "github_models": "azure",
    "azure_openai_deployment": "aoai",
    "azure_openai_v1": "aoai",
    "openai_compatible": "openai",
}

# status -> (Azure code, OpenAI code, message)
_STATUS_ERRORS: Final = {
    400: ("BadRequest", "bad_request", "The request is invalid."),
    403: (
        "Forbidden",
        "forbidden",
        "The principal does not have permission to perform this action.",
    ),
    404: ("404", "not_found", "Resource not found"),
    408: ("Timeout", "timeout", "The request timed out."),
    409: ("Conflict", "conflict", "The request conflicts with the current state."),
    413: ("PayloadTooLarge", "payload_too_large", "The request body is too large."),
    422: ("UnprocessableEntity", "unprocessable_entity", "The request cannot be processed."),
    429: (
        "RateLimitReached",
        "rate_limit_exceeded",
        "Rate limit reached for the emulator. Please retry after {retry} seconds.",
    ),
    500: (
        "InternalServerError",
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("BadGateway", "bad_gateway", "The upstream model sent an invalid response."),
    503: (
        "ServiceUnavailable",
        "service_unavailable",
        "The service is temporarily unable to process your request. Please retry later.",
    ),
    504: ("GatewayTimeout", "timeout", "The upstream model did not answer in time."),
}

_SERVERLESS_AUTH_ERROR: Final = {
    "statusCode": 401,
    "message": "Auth token validation failed. Please provide a valid key or a valid AAD token",
}
_AZURE_AUTH_MESSAGE: Final = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_CONTENT_FILTER_MESSAGE: Final = (
    "The response was filtered due to the prompt triggering Microsoft's content management "
    "policy. Please modify your prompt and retry."
)
_AOAI_CONTENT_FILTER_MESSAGE: Final = (
    "The response was filtered due to the prompt triggering Azure OpenAI’s content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_SAFE: Final = {"filtered": False, "severity": "safe"}
_SAFE_RESULTS: Final = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_STREAM_ERROR: Final = {
    "code": "server_error",
    "message": "The server had an error while processing your request. Sorry about that!",
}
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})
_NONE_WORDS: Final = frozenset({"", "none", "null"})


class _OptionError(ValueError):
    pass


@attrs.frozen
class _Event:
    """One planned stream event: ``content`` ones count for the fault options."""

    role: str  # "meta", "content" or "finish"
    data: Mapping[str, Any]


class Emulator:
    """A chat-completions server on 127.0.0.1 for offline development and tests.

    Use it as an async context manager (or call :meth:`start` and :meth:`stop`)::

        async with Emulator() as emulator:
            url = emulator.endpoint("azure_ai_models")   # http://127.0.0.1:PORT/models

    From synchronous code, :meth:`run_in_thread` serves it on a background thread.
    Every request is kept in :attr:`requests`; :attr:`options` may be changed at any time.
    A request body over ``max_request_bytes`` (default :data:`MAX_REQUEST_BYTES`, 64 MiB) is
    answered with HTTP 413 in the endpoint kind's error shape.
    """

    def __init__(
        self,
        options: EmulatorOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "emulator-1",
        model_type: str = "chat-completion",
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int):
            raise TypeError(
                f"max_request_bytes must be a whole number of bytes, got {max_request_bytes!r}"
            )
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be 1 or more, got {max_request_bytes}")
        #: The behaviour options; mutable at runtime.
        self.options = options if options is not None else EmulatorOptions()
        #: Every request received, oldest first.
        self.requests: list[RecordedRequest] = []
        #: The model name in responses when the request names none.
        self.model = model
        #: The ``model_type`` that ``/info`` reports (``"embeddings"`` for an embeddings model).
        self.model_type = model_type
        #: The largest request body accepted, in bytes; larger ones get HTTP 413.
        self.max_request_bytes = max_request_bytes
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._active_streams = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rate_limiter = RateLimiter()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start listening (on a free port when ``port`` is 0); does nothing when started."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and end every request in progress; does nothing when stopped."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        """Start the emulator and return it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the emulator."""
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[Emulator]:
        """Serve on a private event loop in a background thread (for synchronous code).

        Yields the started emulator; stops it and joins the thread on exit.
        """
        ready = threading.Event()
        state: dict[str, Any] = {}

        async def serve() -> None:
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                state["error"] = exc
                ready.set()
                return
            ready.set()
            try:
                await stop.wait()
            finally:
                await self.stop()

        thread = threading.Thread(
            target=lambda: asyncio.run(serve()), name="inference-emulator", daemon=True
        )
        thread.start()
        ready.wait()
        if "error" in state:
            thread.join()
            raise state["error"]
        try:
            yield self
        finally:
            state["loop"].call_soon_threadsafe(state["stop"].set)
            thread.join()

    # ------------------------------------------------------------------ addresses, counters

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (no path). Needs a started emulator."""
        if self._url is None:
            raise RuntimeError("the emulator has not been started")
        return self._url

    def endpoint(self, kind: str = "azure_ai_models") -> str:
        """The endpoint URL a client would be given for ``kind`` (see :data:`ENDPOINT_KINDS`)."""
        url = self.url
        urls = {
            "azure_ai_models": f"{url}/models",
            "azure_ai_serverless": url,
            "azure_openai_deployment": f"{url}/openai/deployments/{self.model}",
            "azure_openai_v1": f"{url}/openai/v1",
            "github_models": f"{url}/inference",
            "openai_compatible": f"{url}/v1",
        }
        try:
            return urls[kind]
        except KeyError:
            raise ValueError(
                f"unknown endpoint kind {kind!r}; expected one of {', '.join(ENDPOINT_KINDS)}"
            ) from None

    @property
    def active_streams(self) -> int:
        """How many streaming responses are in progress."""
        return self._active_streams

    @property
    def open_connections(self) -> int:
        """How many client connections are open (busy or idle keep-alive)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    # ------------------------------------------------------------------ request handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await self._dispatch(request)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        route, match = _match_route(path)
        kind = route.kind if route is not None else _kind_for_path(path)
        too_large = False
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            body, too_large = b"", True
        parsed: Any = None
        if body:
            with contextlib.suppress(orjson.JSONDecodeError):
                parsed = orjson.loads(body)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            json=parsed,
            kind=route.kind if route is not None else None,
        )
        self.requests.append(record)
        if too_large:
            return _too_large(kind, self.max_request_bytes)
        try:
            options = self._request_options(request)
        except _OptionError as exc:
            return _error(kind, 400, "invalid_emulator_option", str(exc))
        if route is None or match is None:
            return _not_found(kind)
        if request.method != route.method:
            return _error(
                kind,
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path}; use {route.method}.",
                headers={"Allow": route.method},
            )
        if options.key is not None and not _authorized(request, options.key):
            return _auth_error(kind)
        if route.action == "info":
            return _json(
                {
                    "model_name": self.model,
                    "model_type": self.model_type,
                    "model_provider_name": "Emulator",
                },
                kind,
            )
        if route.action == "not_found":
            return _not_found(kind)
        if route.action == "models":
            return _json(
                {
                    "object": "list",
                    "data": [
                        {
                            "id": self.model,
                            "object": "model",
                            "created": _MODELS_CREATED,
                            "owned_by": "emulator",
                        }
                    ],
                },
                kind,
            )
        deployment = match.groupdict().get("deployment")
        if route.action == "embeddings":
            return self._embeddings(request, record, options, kind, deployment)
        return await self._chat(request, record, options, kind, deployment)

    def _embeddings(
        self,
        request: web.Request,
        record: RecordedRequest,
        options: EmulatorOptions,
        kind: str,
        deployment: str | None,
    ) -> web.Response:
        if options.status is not None and options.status >= 400:
            return _status_error(kind, options.status, options.retry_after)
        try:
            body = _embeddings.validate_embeddings_request(record.json)
        except _model.InvalidRequest as exc:
            return _invalid(kind, exc)
        record.extra_parameters = [
            k for k in body if k not in _embeddings.KNOWN_EMBEDDINGS_PARAMETERS
        ]
        refused = self._refused_extras(request, record, kind)
        if refused is not None:
            return refused
        model = deployment or body.get("model") or self.model
        answer = _embeddings.embeddings_response(body, str(model))
        verdict = self._admit(options, answer["usage"]["total_tokens"])
        if not verdict.admitted:
            return _rate_limited(kind, verdict)
        return _json(answer, kind, headers=verdict.headers)

    def _admit(self, options: EmulatorOptions, tokens: int) -> Verdict:
        """The rate limits' verdict on a request of ``tokens`` tokens (charged if admitted)."""
        return self._rate_limiter.admit(
            options.rate_limit_requests,
            options.rate_limit_tokens,
            options.rate_limit_window,
            tokens,
            time.monotonic(),
        )

    @staticmethod
    def _refused_extras(
        request: web.Request, record: RecordedRequest, kind: str
    ) -> web.Response | None:
        """The Azure AI kinds' 400 for unknown body keys without ``extra-parameters``."""
        if not record.extra_parameters or kind not in ("azure_ai_models", "azure_ai_serverless"):
            return None
        if request.headers.get("extra-parameters", "").strip().lower() == "pass-through":
            return None
        return _error(
            kind,
            400,
            "extra_parameters_not_allowed",
            f"Extra parameters {record.extra_parameters!r} are not allowed when "
            "extra-parameters is not set to 'pass-through'.",
            param=record.extra_parameters[0],
        )

    def _request_options(self, request: web.Request) -> EmulatorOptions:
        changes: dict[str, Any] = {}
        for field in attrs.fields(EmulatorOptions):
            header = _OPTION_HEADER_PREFIX + field.name.replace("_", "-")
            raw = request.headers.get(header)
            if raw is not None:
                type_name = getattr(field.type, "__name__", str(field.type))
                changes[field.name] = _parse_option(header, type_name, raw)
        if not changes:
            return self.options
        try:
            return attrs.evolve(self.options, **changes)
        except ValueError as exc:
            raise _OptionError(f"invalid emulator option header: {exc}") from None

    async def _chat(
        self,
        request: web.Request,
        record: RecordedRequest,
        options: EmulatorOptions,
        kind: str,
        deployment: str | None,
    ) -> web.StreamResponse:
        if options.status is not None and options.status >= 400:
            return _status_error(kind, options.status, options.retry_after)
        if record.json is None:
            return _invalid(
                kind,
                _model.InvalidRequest("The request body is not valid JSON.", code="invalid_json"),
            )
        try:
            body = _model.validate_request(record.json)
        except _model.InvalidRequest as exc:
            return _invalid(kind, exc)
        record.extra_parameters = _model.unknown_parameters(body)
        if record.extra_parameters and kind in ("azure_ai_models", "azure_ai_serverless"):
            policy = request.headers.get("extra-parameters", "error").strip().lower()
            if policy == "drop":
                body = {k: v for k, v in body.items() if k not in record.extra_parameters}
            elif policy != "pass-through":
                return _error(
                    kind,
                    400,
                    "extra_parameters_not_allowed",
                    f"Extra parameters {record.extra_parameters!r} are not allowed when "
                    "extra-parameters is not set or set to be 'error'. Set extra-parameters to "
                    "'pass-through' to pass them to the model, or to 'drop' to ignore them.",
                    param=record.extra_parameters[0],
                )
        try:
            completion = _model.complete(body, repeat=options.repeat)
        except _model.ContentFiltered:
            return _content_filter_error(kind)
        verdict = self._admit(options, completion.total_tokens)
        if not verdict.admitted:
            return _rate_limited(kind, verdict)
        model = deployment or body.get("model") or self.model
        answer = _Answer(
            completion=completion,
            id=f"chatcmpl-{secrets.token_hex(12)}",
            created=int(time.time()),
            model=str(model),
            kind=kind,
            annotations=options.annotations,
            headers=verdict.headers,
        )
        if body.get("stream"):
            stream_options = body.get("stream_options") or {}
            include_usage = bool(stream_options.get("include_usage"))
            return await self._stream(request, answer, options, include_usage)
        return await self._respond(request, answer, options)

    async def _respond(
        self, request: web.Request, answer: _Answer, options: EmulatorOptions
    ) -> web.StreamResponse:
        if options.stall_after is not None:
            await _wait_for_disconnect(request)
            return web.Response(status=204)
        if options.cut_after is not None:
            _cut(request)
            return web.Response(status=204)
        delay = (
            options.first_token_delay + options.token_delay * answer.completion.completion_tokens
        )
        if delay:
            await asyncio.sleep(delay)
        return _json(answer.body(), answer.kind, headers=answer.headers)

    async def _stream(
        self,
        request: web.Request,
        answer: _Answer,
        options: EmulatorOptions,
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **_request_id_headers(answer.kind),
                **answer.headers,
            },
        )
        eol = "\r\n" if options.crlf else "\n"
        keepalive = f": keep-alive{eol}{eol}".encode() if options.keepalive_comments else b""
        self._active_streams += 1
        try:
            await response.prepare(request)
            if options.first_token_delay:
                await asyncio.sleep(options.first_token_delay)
            sent = 0
            for event in answer.events(include_usage):
                if event.role != "meta":
                    if _reached(options.stall_after, sent):
                        await _wait_for_disconnect(request)
                        return response
                    if _reached(options.cut_after, sent):
                        _cut(request)
                        return response
                    if _reached(options.error_after, sent):
                        await response.write(_sse({"error": _STREAM_ERROR}, eol))
                        return response
                if event.role == "content" and options.token_delay:
                    await asyncio.sleep(options.token_delay)
                await response.write(keepalive + _sse(event.data, eol))
                if event.role == "content":
                    sent += 1
            await response.write(keepalive + f"data: [DONE]{eol}{eol}".encode())
        except ConnectionError:
            return response  # the client went away: nothing more to send
        finally:
            self._active_streams -= 1
        return response


# ---------------------------------------------------------------------- answer shapes


@attrs.frozen
class _Answer:
    """One completion plus what the wire shapes need: id, timestamp, model, kind."""

    completion: _model.Completion
    id: str
    created: int
    model: str
    kind: str
    annotations: bool
    headers: dict[str, str] = attrs.Factory(dict)

    def _tool_call_content(self) -> str | None:
        # The Azure AI services send "" next to tool calls; OpenAI-style services send null.
        return "" if _FAMILY[self.kind] in ("azure", "serverless") else None

    def usage(self) -> dict[str, int]:
        c = self.completion
        return {
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "total_tokens": c.total_tokens,
        }

    def body(self) -> dict[str, Any]:
        """The non-streaming ``chat.completion`` body."""
        choices = []
        for choice in self.completion.choices:
            message: dict[str, Any] = {"role": "assistant", "content": choice.content}
            if choice.tool_calls:
                message["content"] = self._tool_call_content()
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in choice.tool_calls
                ]
            entry: dict[str, Any] = {
                "index": choice.index,
                "message": message,
                "finish_reason": choice.finish_reason,
            }
            if self.annotations:
                entry["content_filter_results"] = _SAFE_RESULTS
            choices.append(entry)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
        }
        if self.annotations:
            body["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _SAFE_RESULTS}
            ]
        return body

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }

    def _delta(self, index: int, delta: dict[str, Any], finish: str | None = None) -> _Event:
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return _Event("finish" if finish else "content", self._chunk([choice]))

    def events(self, include_usage: bool) -> Iterator[_Event]:
        """The stream's events in order, without the final ``[DONE]``."""
        choices = self.completion.choices
        if self.annotations:
            yield _Event(
                "meta",
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": _SAFE_RESULTS}
                    ],
                    "choices": [],
                    "usage": None,
                },
            )
        for choice in choices:
            role = {"index": choice.index, "delta": {"role": "assistant", "content": ""}}
            yield _Event("meta", self._chunk([{**role, "finish_reason": None}]))
        offsets = [0] * len(choices)
        checked = [0] * len(choices)
        fragments = [_fragments(choice) for choice in choices]
        for position in range(max(len(f) for f in fragments)):
            for choice, pieces in zip(choices, fragments, strict=True):
                if position >= len(pieces):
                    continue
                delta, chars = pieces[position]
                yield self._delta(choice.index, delta)
                offsets[choice.index] += chars
                if self.annotations and (position + 1) % _ANNOTATION_EVERY == 0:
                    yield self._annotation(choice.index, checked[choice.index], offsets)
                    checked[choice.index] = offsets[choice.index]
        if self.annotations:
            for choice in choices:
                yield self._annotation(choice.index, checked[choice.index], offsets)
        azure = _FAMILY[self.kind] in ("azure", "serverless")
        for choice in choices:
            # The Azure AI services finish with an empty content delta and put the usage on
            # the finishing chunk; OpenAI-style services send an empty delta.
            last_delta: dict[str, Any] = {"content": ""} if azure else {}
            event = self._delta(choice.index, last_delta, choice.finish_reason)
            if azure and choice is choices[-1]:
                event = attrs.evolve(event, data={**event.data, "usage": self.usage()})
            yield event
        if include_usage:
            yield _Event("meta", self._chunk([], usage=self.usage()))

    def _annotation(self, index: int, start: int, offsets: list[int]) -> _Event:
        return _Event(
            "meta",
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [
                    {
                        "index": index,
                        "finish_reason": None,
                        "content_filter_results": _SAFE_RESULTS,
                        "content_filter_offsets": {
                            "check_offset": start,
                            "start_offset": start,
                            "end_offset": offsets[index],
                        },
                    }
                ],
                "usage": None,
            },
        )


def _fragments(choice: _model.Choice) -> list[tuple[dict[str, Any], int]]:
    """A choice's streamed deltas with the number of characters each carries."""
    if not choice.tool_calls:
        return [({"content": token}, len(token)) for token in choice.tokens]
    pieces: list[tuple[dict[str, Any], int]] = []
    for index, call in enumerate(choice.tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        pieces.append(({"tool_calls": [head]}, 0))
        for part in _model.tokenize(call.arguments):
            fragment = {"index": index, "function": {"arguments": part}}
            pieces.append(({"tool_calls": [fragment]}, len(part)))
    return pieces


# ---------------------------------------------------------------------- helpers


def _match_route(path: str) -> tuple[_Route | None, re.Match[str] | None]:
    for route in _ROUTES:
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route, match
    return None, None


def _kind_for_path(path: str) -> str:
    for prefix, kind in _KIND_PREFIXES:
        if path.startswith(prefix):
            return kind
    return "azure_ai_serverless"


def _parse_option(header: str, type_name: str, raw: str) -> Any:
    value = raw.strip()
    if "None" in type_name and value.lower() in _NONE_WORDS:
        return None
    try:
        if type_name.startswith("bool"):
            lowered = value.lower()
            if lowered in _TRUE_WORDS:
                return True
            if lowered in _FALSE_WORDS:
                return False
            raise ValueError(value)
        if type_name.startswith("int"):
            return int(value)
        if type_name.startswith("float"):
            return float(value)
    except ValueError:
        raise _OptionError(
            f"header {header!r} has the invalid value {raw!r} (expected {type_name})"
        ) from None
    return value


def _authorized(request: web.Request, key: str) -> bool:
    if request.headers.get("api-key") == key:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token.strip() == key


def _reached(limit: int | None, sent: int) -> bool:
    return limit is not None and sent >= limit


def _cut(request: web.Request) -> None:
    """Close the connection under the response: the client sees an unfinished body."""
    transport = request.transport
    if transport is not None:
        transport.close()


async def _wait_for_disconnect(request: web.Request) -> None:
    """Send nothing until the client closes the connection (or the emulator stops)."""
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(_STALL_POLL_SECONDS)


def _sse(data: Mapping[str, Any], eol: str) -> bytes:
    return b"data: " + orjson.dumps(data) + (eol + eol).encode()


def _request_id_headers(kind: str) -> dict[str, str]:
    request_id = str(uuid.uuid4())
    headers = {"x-request-id": request_id}
    if _FAMILY[kind] == "aoai":
        headers["apim-request-id"] = request_id
    return headers


def _json(
    body: Any, kind: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    all_headers = _request_id_headers(kind)
    if headers:
        all_headers.update(headers)
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers=all_headers,
    )


def _error(
    kind: str,
    status: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error body in the shape of ``kind``'s service."""
    family = _FAMILY[kind]
    error: dict[str, Any]
    if family == "openai" or (family == "aoai" and status == 400):
        error = {
            "message": message,
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": param,
            "code": code,
        }
    else:
        error = {"code": code, "message": message}
        if family != "aoai":
            error["status"] = status
        if param is not None:
            error["param"] = param
    all_headers = dict(headers or {})
    if family != "openai":
        all_headers["x-ms-error-code"] = code
    return _json({"error": error}, kind, status, all_headers)


def _invalid(kind: str, exc: _model.InvalidRequest) -> web.Response:
    return _error(kind, 400, exc.code, exc.message, param=exc.param)


def _not_found(kind: str) -> web.Response:
    return _json({"error": {"code": "404", "message": "Resource not found"}}, kind, 404)


def _auth_error(kind: str) -> web.Response:
    family = _FAMILY[kind]
    if family == "serverless":
        return _json(_SERVERLESS_AUTH_ERROR, kind, 401, {"x-ms-error-reason": "Invalid key."})
    if family == "openai":
        return _error(kind, 401, "invalid_api_key", "Incorrect API key provided.")
    return _json({"error": {"code": "401", "message": _AZURE_AUTH_MESSAGE}}, kind, 401)


def _status_error(kind: str, status: int, retry_after: float | None) -> web.Response:
    if status == 401:
        return _auth_error(kind)
    if status == 404:
        return _not_found(kind)
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    azure_code, openai_code, message = _STATUS_ERRORS.get(
        status, (phrase.replace(" ", ""), phrase.lower().replace(" ", "_"), phrase + ".")
    )
    headers: dict[str, str] = {}
    retry_text = "1"
    if retry_after is not None and status in (429, 503):
        retry_text = str(int(retry_after)) if retry_after == int(retry_after) else str(retry_after)
        headers["Retry-After"] = retry_text
        headers["retry-after-ms"] = str(round(retry_after * 1000))
    family = _FAMILY[kind]
    code = openai_code if family == "openai" else str(status) if family == "aoai" else azure_code
    return _error(kind, status, code, message.format(retry=retry_text), headers=headers)


def _too_large(kind: str, limit: int) -> web.Response:
    """HTTP 413 for a request body over ``limit`` bytes, saying the limit."""
    azure_code, openai_code, _ = _STATUS_ERRORS[413]
    family = _FAMILY[kind]
    code = openai_code if family == "openai" else "413" if family == "aoai" else azure_code
    message = (
        f"The request body is larger than the emulator's limit of {_size_text(limit)}. "
        "Send a smaller body (fewer or smaller images, a shorter prompt), or start the "
        "emulator with a larger limit: Emulator(max_request_bytes=...), or serve "
        "--max-request-mib N from the command line."
    )
    return _error(kind, 413, code, message)


def _size_text(size: int) -> str:
    """``64 MiB (67108864 bytes)``, or ``1000 bytes`` for a size that is no whole MiB."""
    mib = 1024 * 1024
    if size % mib == 0:
        return f"{size // mib} MiB ({size} bytes)"
    return "1 byte" if size == 1 else f"{size} bytes"


def _rate_limited(kind: str, verdict: Verdict) -> web.Response:
    family = _FAMILY[kind]
    code = "rate_limit_exceeded" if family == "openai" else "429"
    message = (
        "Requests to this model have exceeded the emulator's rate limit. "
        f"Please retry after {verdict.headers['Retry-After']} seconds."
    )
    return _error(kind, 429, code, message, headers=verdict.headers)


def _content_filter_error(kind: str) -> web.Response:
    error: dict[str, Any] = {
        "message": _CONTENT_FILTER_MESSAGE,
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
    }
    if _FAMILY[kind] == "aoai":
        error["message"] = _AOAI_CONTENT_FILTER_MESSAGE
        error["innererror"] = {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                **_SAFE_RESULTS,
                "violence": {"filtered": True, "severity": "medium"},
            },
        }
    return _json({"error": error}, kind, 400, {"x-ms-error-code": "content_filter"})


# ---------------------------------------------------------------------- command line


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    key: str | None = None,
    options: EmulatorOptions | None = None,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
) -> None:
    """Serve the emulator until Ctrl-C (for ``python -m inference serve``).

    Prints one line with the URL and example endpoints; ``key`` (when given) overrides
    ``options.key``. Serving on an address other than a loopback one (``0.0.0.0``, a LAN
    address, a host name) without a key prints a one-line warning on stderr first: anyone who
    can reach the machine could use the emulator.
    """
    opts = attrs.evolve(options) if options is not None else EmulatorOptions()
    if key is not None:
        opts.key = key
    if opts.key is None and not _is_loopback(host):
        print(
            f"warning: the emulator listens on {host or 'every address'} without a key, so "
            "anyone who can reach this machine can use it; pass --key KEY to require a key, "
            "or --host 127.0.0.1 to serve this machine only",
            file=sys.stderr,
            flush=True,
        )

    async def serve() -> None:
        emulator = Emulator(opts, host=host, port=port, max_request_bytes=max_request_bytes)
        async with emulator:
            print(
                f"inference emulator on {emulator.url} - endpoints: "
                f"{emulator.endpoint('azure_ai_models')} (Azure AI models), "
                f"{emulator.endpoint('azure_openai_deployment')} (Azure OpenAI), "
                f"{emulator.endpoint('openai_compatible')} (OpenAI-compatible)"
                f"{' - key required' if opts.key else ''}; Ctrl-C stops",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _is_loopback(host: str) -> bool:
    """Whether ``host`` only serves this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
