"""OpenTelemetry spans and metrics for chat and embeddings calls (GenAI semantic conventions).

Nothing here runs unless the ``opentelemetry-api`` package is installed and the application
has set a tracer or meter provider: then each call is one ``CLIENT`` span, ``chat {model}``
or ``embeddings {model}``, and two histograms (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``), as the GenAI semantic conventions describe them; a streamed
call adds ``gen_ai.client.operation.time_to_first_chunk``. Without them, a call costs one
check of a module attribute (see ``benchmarks/bench_tracing.py``).

The hooks are one decorator on ``complete()`` and on ``embed()`` of the async clients, and one
function applied to the sync stream. A streamed call's span ends when its stream ends, fails
or is closed: the stream object the caller gets is the same one, its class switched to a
subclass that reports those three moments (so the sync API, which drives the async stream's
internals, keeps working). Message content is recorded only on opt-in
(:data:`CAPTURE_ENV` set to ``true``, or :class:`inference.tracing.AIInferenceInstrumentor`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from ._tracing_content import input_messages, output_messages
from ._version import __version__
from .models import ChatCompletions, EmbeddingsResult

__all__ = [
    "AZURE_CAPTURE_ENV",
    "CAPTURE_ENV",
    "STATE",
    "traced_chat",
    "traced_embed",
    "traced_sync_stream",
]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
S = TypeVar("S")

#: The environment variable that turns message-content capture on (``true``).
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: The Azure AI Inference SDK's variable for the same, read by ``instrument()``.
AZURE_CAPTURE_ENV = "AZURE_TRACING_GEN_AI_CONTENT_RECORDING_ENABLED"
_SCOPE = "inference"
_SCHEMA = "https://opentelemetry.io/schemas/1.37.0"
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48]
_DURATION_BUCKETS += [40.96, 81.92]
_TOKEN_BUCKETS = [float(4**i) for i in range(14)]  # 1, 4, 16, ... 67108864
# Provider names (gen_ai.provider.name) by endpoint kind: the API each kind speaks.
_PROVIDERS = {
    "azure_ai_models": "azure.ai.inference",
    "azure_ai_serverless": "azure.ai.inference",
    "github_models": "azure.ai.inference",
    "azure_openai_deployment": "azure.ai.openai",
    "azure_openai_v1": "azure.ai.openai",
    "openai_compatible": "openai",
}
# complete() parameters recorded as gen_ai.request.* (numbers only).
_CHAT_NUMBERS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
)


class _State:
    """What :class:`inference.tracing.AIInferenceInstrumentor` switches."""

    __slots__ = ("content", "enabled")

    def __init__(self) -> None:
        self.enabled = True
        self.content: bool | None = None  # None: CAPTURE_ENV decides, call by call


STATE = _State()


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


def capture_content() -> bool:
    """Whether message content goes into spans now."""
    content = STATE.content
    return _true(os.environ.get(CAPTURE_ENV)) if content is None else content


# -- providers ----------------------------------------------------------------------------------


class _Telemetry:
    """The tracer and instruments of one (tracer provider, meter provider) pair."""

    def __init__(self, api: Any, tracer_provider: Any, meter_provider: Any) -> None:
        self.api = api
        self.tracer = (
            tracer_provider.get_tracer(_SCOPE, __version__, schema_url=_SCHEMA)
            if _is_set(api, tracer_provider)
            else None
        )
        self.meter = (
            meter_provider.get_meter(_SCOPE, __version__, schema_url=_SCHEMA)
            if _is_set(api, meter_provider)
            else None
        )
        if self.meter is not None:
            self.duration = self.meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )
            self.tokens = self.meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            )
            self.first_chunk = self.meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time to receive the first chunk of a streamed response",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )

    @property
    def active(self) -> bool:
        return self.tracer is not None or self.meter is not None


def _is_set(api: Any, provider: Any) -> bool:
    """False for the API's stand-ins (nothing configured, or explicitly no-op)."""
    trace, metrics = api
    if isinstance(
        provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider | metrics.NoOpMeterProvider
    ):
        return False
    return type(provider).__name__ != "_ProxyMeterProvider"


_api: Any = None  # (trace, metrics) modules once looked up; False without opentelemetry-api
_cache: tuple[Any, Any, _Telemetry] | None = None


def _load_api() -> Any:
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return False
    return (trace, metrics)


def current() -> _Telemetry | None:
    """The telemetry to record a call with, or None (the fast path: nothing to do)."""
    global _api, _cache
    api = _api
    if api is None:
        api = _api = _load_api()
    if api is False or not STATE.enabled:
        return None
    trace, metrics = api
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    cache = _cache
    if cache is None or cache[0] is not tracer_provider or cache[1] is not meter_provider:
        telemetry = _Telemetry(api, tracer_provider, meter_provider)
        cache = _cache = (tracer_provider, meter_provider, telemetry)
    telemetry = cache[2]
    return telemetry if telemetry.active else None


# -- one call -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _server(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port


def _error_type(exc: BaseException) -> str:
    """The HTTP status of an error answer, else the exception's class (an answer with a
    success status but a broken body is named by its class, not by "200")."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return str(status)
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


class _Call:
    """One traced operation: its span (when spans are recorded) and its metric attributes."""

    __slots__ = ("common", "ended", "span", "start", "telemetry")

    def __init__(
        self,
        telemetry: _Telemetry,
        operation: str,
        model: str | None,
        endpoint: Any,
        attributes: dict[str, Any],
    ) -> None:
        self.telemetry = telemetry
        self.start = time.perf_counter()
        self.ended = False
        host, port = _server(endpoint.base_url)
        provider = _PROVIDERS.get(str(endpoint.kind.value), "openai")
        common: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "server.address": host,
            "server.port": port,
        }
        if model:
            common["gen_ai.request.model"] = model
        self.common = common
        self.span: Any = None
        if telemetry.tracer is not None:
            self.span = telemetry.tracer.start_span(
                f"{operation} {model}" if model else operation,
                kind=telemetry.api[0].SpanKind.CLIENT,
                attributes={**common, **attributes},
            )

    def use(self) -> Any:
        """The span as the current one while the request runs (a no-op without spans)."""
        trace = self.telemetry.api[0]
        span = self.span if self.span is not None else trace.INVALID_SPAN
        return trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        )

    def set(self, name: str, value: Any) -> None:
        if self.span is not None:
            self.span.set_attribute(name, value)

    def first_chunk(self) -> None:
        """The first chunk of a stream has arrived (``complete()`` returns then)."""
        elapsed = time.perf_counter() - self.start
        self.set("gen_ai.response.time_to_first_chunk", elapsed)
        telemetry = self.telemetry
        if telemetry.meter is not None:
            telemetry.first_chunk.record(elapsed, self.common)

    def end(
        self,
        response: Mapping[str, Any],
        usage: tuple[int | None, int | None],
        error: BaseException | None,
    ) -> None:
        """Record the outcome (once): response attributes, usage, error; end the span."""
        if self.ended:
            return
        self.ended = True
        elapsed = time.perf_counter() - self.start
        common = dict(self.common)
        if response.get("gen_ai.response.model"):
            common["gen_ai.response.model"] = response["gen_ai.response.model"]
        if error is not None:
            common["error.type"] = _error_type(error)
        span = self.span
        if span is not None:
            span.set_attributes({k: v for k, v in response.items() if v is not None})
            for name, count in zip(("input", "output"), usage, strict=True):
                if count is not None:
                    span.set_attribute(f"gen_ai.usage.{name}_tokens", count)
            if error is not None:
                trace = self.telemetry.api[0]
                span.set_attribute("error.type", common["error.type"])
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:500]))
            span.end()
        self._record(elapsed, common, usage)

    def _record(
        self, elapsed: float, common: dict[str, Any], usage: tuple[int | None, int | None]
    ) -> None:
        telemetry = self.telemetry
        if telemetry.meter is None:
            return
        telemetry.duration.record(elapsed, common)
        for name, count in zip(("input", "output"), usage, strict=True):
            if count is not None:
                telemetry.tokens.record(count, {**common, "gen_ai.token.type": name})


# -- chat ---------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _chat_request(client: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters in effect: a raw body as given, else defaults and arguments."""
    body = args[0] if args else kwargs.get("body")
    if isinstance(body, Mapping):
        return dict(body)
    # The client's defaults, as the body carries them (wire names and values).
    request = dict(getattr(getattr(client, "_request_defaults", None), "wire", None) or {})
    request.update((k, v) for k, v in kwargs.items() if v is not None)
    extras = request.get("model_extras")
    if isinstance(extras, Mapping):
        for key, value in extras.items():
            request.setdefault(key, value)
    return request


def _chat_attributes(request: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, attribute in _CHAT_NUMBERS:
        value = request.get(name)
        if _number(value):
            attributes[attribute] = value
    stop = request.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    n = request.get("n")
    if _number(n) and n != 1:
        attributes["gen_ai.request.choice.count"] = n
    response_format = request.get("response_format")
    if response_format is not None:
        text = response_format if isinstance(response_format, str) else ""
        attributes["gen_ai.output.type"] = "text" if text == "text" else "json"
    return attributes


def _chat_response(completion: ChatCompletions) -> tuple[dict[str, Any], tuple[Any, Any]]:
    response = {
        "gen_ai.response.id": completion.id or None,
        "gen_ai.response.model": completion.model or None,
        "gen_ai.response.finish_reasons": [
            str(choice.finish_reason) for choice in completion.choices if choice.finish_reason
        ]
        or None,
    }
    usage = completion.usage
    if usage is None:
        return response, (None, None)
    return response, (usage.prompt_tokens, usage.completion_tokens)


def _end_chat(call: _Call, completion: ChatCompletions | None, error: BaseException | None) -> None:
    if completion is None:
        call.end({}, (None, None), error)
        return
    response, usage = _chat_response(completion)
    if call.span is not None and capture_content():
        call.set("gen_ai.output.messages", output_messages(completion))
    call.end(response, usage, error)


def traced_chat(complete: F) -> F:
    """Trace ``complete()`` of the async chat client: one span per call (ended with the
    stream for ``stream=True``), and the metrics."""

    @functools.wraps(complete)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        telemetry = current()
        if telemetry is None:
            return await complete(self, *args, **kwargs)
        request = _chat_request(self, args, kwargs)
        model = request.get("model")
        call = _Call(
            telemetry,
            "chat",
            model if isinstance(model, str) else None,
            self.endpoint,
            _chat_attributes(request),
        )
        if call.span is not None and capture_content():
            call.set("gen_ai.input.messages", input_messages(request))
        try:
            with call.use():
                result = await complete(self, *args, **kwargs)
        except BaseException as exc:
            _end_chat(call, None, exc)
            raise
        if isinstance(result, ChatCompletions):
            _end_chat(call, result, None)
            return result
        call.first_chunk()
        return _watch(result, call, _async_hooks)

    return cast(F, traced)


# -- streams ------------------------------------------------------------------------------------


def _finish_stream(stream: Any, error: BaseException | None) -> None:
    call: _Call | None = stream._trace
    if call is None:
        return
    stream._trace = None
    completion = None
    with suppress(Exception):
        completion = stream.partial_completion()
    _end_chat(call, completion, error)


def _ended_by(stream: Any, exc: BaseException) -> None:
    """The stream's iteration stopped with ``exc``: its end, or the failure that ended it."""
    _finish_stream(stream, None if isinstance(exc, StopIteration | StopAsyncIteration) else exc)


def _finalizer(finalize: Callable[[Any], None]) -> Callable[[Any], None]:
    """A ``__del__`` that ends the span of a stream dropped without being closed."""

    def __del__(self: Any) -> None:
        with suppress(Exception):
            _finish_stream(self, None)
        finalize(self)

    return __del__


def _async_hooks(base: type) -> dict[str, Any]:
    """Methods for a subclass of the async stream class ``base``: the span ends with it."""
    next_update, close = base.__anext__, base.aclose  # type: ignore[attr-defined]
    finalize = _finalizer(base.__del__)  # type: ignore[attr-defined]

    async def __anext__(self: Any) -> Any:
        try:
            return await next_update(self)
        except BaseException as exc:
            _ended_by(self, exc)
            raise

    async def aclose(self: Any) -> None:
        try:
            await close(self)
        finally:
            _finish_stream(self, None)

    return {"__anext__": __anext__, "aclose": aclose, "__del__": finalize}


def _sync_hooks(base: type) -> dict[str, Any]:
    """Methods for a subclass of the sync stream class ``base``: the span ends with it."""
    next_update, close = base.__next__, base.close  # type: ignore[attr-defined]
    finalize = _finalizer(base.__del__)  # type: ignore[attr-defined]

    def __next__(self: Any) -> Any:
        try:
            return next_update(self)
        except BaseException as exc:
            _ended_by(self, exc)
            raise

    def close_(self: Any) -> None:
        try:
            close(self)
        finally:
            _finish_stream(self, None)

    return {"__next__": __next__, "close": close_, "__del__": finalize}


@functools.cache
def _traced_class(cls: type, hooks: Callable[[type], dict[str, Any]]) -> type:
    """A subclass of ``cls`` with ``hooks``, under the same name (what users see is the
    same); its instances have the same layout, so a stream's class can be switched to it."""
    methods = hooks(cls)
    for method in methods.values():
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
    traced = type(cls.__name__, (cls,), {"__module__": cls.__module__, **methods})
    traced.__qualname__ = cls.__qualname__
    traced.__doc__ = cls.__doc__
    return traced


def _watch(stream: S, call: _Call, hooks: Callable[[type], dict[str, Any]]) -> S:
    stream._trace = call  # type: ignore[attr-defined]
    cls: type = type(stream)
    stream.__class__ = _traced_class(cls, hooks)
    return stream


def traced_sync_stream(stream: S, inner: Any) -> S:
    """Hand the sync ``stream`` the span of the async stream it drives (``inner``), when that
    has one: the sync stream, which the caller iterates, ends it."""
    call = getattr(inner, "_trace", None)
    if call is None:
        return stream
    inner._trace = None
    return _watch(stream, call, _sync_hooks)


# -- embeddings ---------------------------------------------------------------------------------


def traced_embed(embed: F) -> F:
    """Trace ``embed()`` of the async embeddings client: one span per call, and the metrics."""

    @functools.wraps(embed)
    async def traced(self: Any, **kwargs: Any) -> Any:
        telemetry = current()
        if telemetry is None:
            return await embed(self, **kwargs)
        request = {k: v for k, v in getattr(self, "_defaults", {}).items() if v is not None}
        request.update((k, v) for k, v in kwargs.items() if v is not None)
        attributes: dict[str, Any] = {}
        if _number(request.get("dimensions")):
            attributes["gen_ai.embeddings.dimension.count"] = request["dimensions"]
        if request.get("encoding_format") is not None:
            attributes["gen_ai.request.encoding_formats"] = [str(request["encoding_format"])]
        model = request.get("model")
        call = _Call(
            telemetry,
            "embeddings",
            model if isinstance(model, str) else None,
            self.endpoint,
            attributes,
        )
        try:
            with call.use():
                result = await embed(self, **kwargs)
        except BaseException as exc:
            call.end({}, (None, None), exc)
            raise
        if isinstance(result, EmbeddingsResult):
            usage = result.usage
            call.end(
                {
                    "gen_ai.response.model": result.model or None,
                    "gen_ai.response.id": result.id or None,
                },
                (usage.prompt_tokens if usage is not None else None, None),
                None,
            )
        return result

    return cast(F, traced)
