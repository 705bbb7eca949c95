"""OpenTelemetry: spans and metrics of chat and embeddings calls, checked with the SDK's
in-memory span exporter and metric reader (GenAI semantic conventions)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fault_server import FaultServer, completion
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

import inference
from inference import _tracing
from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.models import UserMessage
from inference.testing import Emulator, EmulatorOptions
from inference.tracing import AIInferenceInstrumentor

HI = [UserMessage("How many languages are in the world?")]


class Telemetry:
    """The in-memory exporter and reader the tests read spans and metrics from."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader(
            preferred_temporality={Histogram: AggregationTemporality.DELTA}
        )

    def finished(self) -> list[ReadableSpan]:
        """The spans ended so far."""
        return list(self.spans.get_finished_spans())

    def collect(self) -> dict[str, tuple[str, list[Any]]]:
        """Metric name -> (unit, histogram data points) recorded since the last collect."""
        data = self.reader.get_metrics_data()
        found: dict[str, tuple[str, list[Any]]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = (metric.unit or "", list(metric.data.data_points))
        return found


def _reset_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """SDK providers set globally for one test, then removed (as OpenTelemetry's own test
    helpers do), so other tests run without telemetry."""
    telemetry = Telemetry()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(telemetry.spans))
    meter_provider = MeterProvider(metric_readers=[telemetry.reader])
    _reset_globals()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    try:
        yield telemetry
    finally:
        _reset_globals()
        meter_provider.shutdown()
        tracer_provider.shutdown()
        AIInferenceInstrumentor().instrument(enable_content_recording=None)
        _tracing.STATE.content = None


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    """The one span of a call."""
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


@pytest.mark.anyio
async def test_a_chat_call_is_one_span_with_the_semantic_convention_attributes(
    otel: Telemetry,
) -> None:
    """Request, response, usage and server attributes; no message content by default."""
    async with (
        Emulator() as emu,
        ChatCompletionsClient(emu.endpoint(), "key", model="gpt-x", temperature=0.2) as client,
    ):
        result = await client.complete(messages=HI, max_tokens=5, top_p=0.9, stop="END")
        port = int(emu.url.rsplit(":", 1)[1])
    span = only(otel.finished())
    assert span.name == "chat gpt-x"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert result.usage is not None
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "azure.ai.inference",
        "gen_ai.system": "azure.ai.inference",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 5,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ("END",),
        "server.address": "127.0.0.1",
        "server.port": port,
        "gen_ai.response.id": result.id,
        "gen_ai.response.model": result.model,
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
    }
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.anyio
async def test_metrics_duration_and_token_usage(otel: Telemetry) -> None:
    """One duration point and one token point per token type, with the call's attributes."""
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key", model="m") as client:
        result = await client.complete(messages=HI)
    assert result.usage is not None
    found = otel.collect()
    unit, (duration,) = found["gen_ai.client.operation.duration"]
    assert unit == "s" and duration.count == 1 and duration.sum > 0
    assert duration.attributes["gen_ai.request.model"] == "m"
    assert duration.attributes["gen_ai.response.model"] == result.model
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert "error.type" not in duration.attributes
    unit, tokens = found["gen_ai.client.token.usage"]
    assert unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p.sum for p in tokens}
    usage = result.usage
    assert by_type == {"input": usage.prompt_tokens, "output": usage.completion_tokens}
    assert not found.get("gen_ai.client.operation.time_to_first_chunk", ("s", []))[1]


@pytest.mark.anyio
async def test_message_content_only_on_opt_in(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the environment variable set, input and output messages are recorded as JSON in
    the conventions' role/parts shape."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key") as client:
        result = await client.complete(messages=HI)
    attrs = only(otel.finished()).attributes or {}
    assert json.loads(str(attrs["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": HI[0].content}]}
    ]
    assert json.loads(str(attrs["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": result.choices[0].message.content}],
            "finish_reason": "stop",
        }
    ]


@pytest.mark.anyio
async def test_recording_content_never_fails_a_call(
    otel: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Message dicts are sent as given: parts of another shape than the API's (an image_url
    given as a bare string, tool calls that are not objects) are recorded as far as they can
    be; with content capture on they raised AttributeError out of complete()."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": "http://i/a.png"}]}]
    calls = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": ["call", {"function": "f"}]},
    ]
    async with (
        FaultServer(default=completion("Seen.")) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        await client.complete(messages=image)
        await client.complete(messages=calls)
    first, second = otel.finished()
    assert json.loads(str((first.attributes or {})["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "uri", "modality": "image", "uri": "http://i/a.png"}]}
    ]
    recorded = json.loads(str((second.attributes or {})["gen_ai.input.messages"]))
    assert recorded[1]["parts"] == [
        {"type": "text", "content": ""},
        {"type": "tool_call", "id": None, "name": None, "arguments": None},
        {"type": "tool_call", "id": None, "name": None, "arguments": None},
    ]


@pytest.mark.anyio
async def test_a_broken_success_answer_is_named_by_its_class() -> None:
    """error.type is the status code for an HTTP error, but a 200 whose body is broken is a
    ResponseDecodeError: error.type names that class (it said "200")."""
    assert _tracing._error_type(inference.ServiceError("x", _error_response(503))) == "503"
    broken = inference.ResponseDecodeError("not JSON", _error_response(200))
    assert _tracing._error_type(broken) == "inference.exceptions.ResponseDecodeError"


def _error_response(status: int) -> Any:
    from inference.exceptions import ErrorResponse

    return ErrorResponse(status, "OK" if status == 200 else "Error", {}, b"{}")


@pytest.mark.anyio
async def test_an_error_sets_error_type_and_status(otel: Telemetry) -> None:
    """An HTTP error ends the span with status ERROR and error.type = the status code, on
    the span and on the duration metric."""
    async with (
        Emulator(EmulatorOptions(status=429)) as emu,
        ChatCompletionsClient(emu.endpoint(), "key", model="m", retry=0) as client,
    ):
        with pytest.raises(inference.RateLimitError):
            await client.complete(messages=HI)
    span = only(otel.finished())
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "429"
    assert [e.name for e in span.events] == ["exception"]
    (point,) = otel.collect()["gen_ai.client.operation.duration"][1]
    assert point.attributes["error.type"] == "429"


@pytest.mark.anyio
async def test_a_stream_span_ends_with_the_stream(otel: Telemetry) -> None:
    """The span of a stream is open while it is read, ends at its end with the finish reason
    and usage, and carries the time to the first chunk (also as a metric)."""
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key", model="m") as client:
        stream = await client.complete(
            messages=HI, stream=True, stream_options={"include_usage": True}
        )
        assert type(stream).__name__ == "AsyncChatCompletionsStream"
        assert isinstance(stream, inference.aio.AsyncChatCompletionsStream)
        assert otel.finished() == []
        final = await stream.until_done()
    span = only(otel.finished())
    attrs = span.attributes or {}
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert final.usage is not None
    assert attrs["gen_ai.usage.output_tokens"] == final.usage.completion_tokens
    first = attrs["gen_ai.response.time_to_first_chunk"]
    assert isinstance(first, float) and first > 0
    assert span.end_time is not None and span.start_time is not None
    assert first <= (span.end_time - span.start_time) / 1e9
    (point,) = otel.collect()["gen_ai.client.operation.time_to_first_chunk"][1]
    assert point.count == 1


@pytest.mark.anyio
async def test_a_stream_closed_early_or_failing_ends_its_span(otel: Telemetry) -> None:
    """Closing after the first update ends the span without error; an error event in the
    stream ends it with error.type naming the exception class."""
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key") as client:
        async with await client.complete(messages=HI, stream=True) as stream:
            await stream.__anext__()
        closed = only(otel.finished())
        assert closed.status.status_code is StatusCode.UNSET
        otel.spans.clear()
        failing = await client.complete(
            messages=HI, stream=True, headers={"x-emulator-error-after": "2"}
        )
        with pytest.raises(inference.StreamServiceError):
            async for _ in failing:
                pass
    span = only(otel.finished())
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "inference.exceptions.StreamServiceError"


def test_sync_calls_and_streams_are_traced_under_the_callers_span(otel: Telemetry) -> None:
    """The sync API's calls run on its own loop thread, yet their spans are children of the
    caller's current span; a sync stream's span ends when the caller's loop over it ends."""
    tracer = trace.get_tracer("test")
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key", model="m") as client,
        tracer.start_as_current_span("parent") as parent,
    ):
        client.complete(messages=HI)
        stream = client.complete(messages=HI, stream=True)
        assert len(otel.finished()) == 1
        text = "".join(stream.text_deltas())
        assert text
    spans = otel.finished()
    assert [s.name for s in spans] == ["chat m", "chat m", "parent"]
    parent_id = parent.get_span_context().span_id
    assert all(s.parent is not None and s.parent.span_id == parent_id for s in spans[:2])
    assert (spans[1].attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)


def test_a_sync_stream_left_early_ends_its_span(otel: Telemetry) -> None:
    """Breaking out of a sync stream and closing it ends the span."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        with client.complete(messages=HI, stream=True) as stream:
            next(stream)
            assert otel.finished() == []
        assert len(otel.finished()) == 1


@pytest.mark.anyio
async def test_an_embeddings_call_is_one_span(otel: Telemetry) -> None:
    """``embeddings {model}`` with dimensions, encoding format and input tokens; the token
    metric has an input point only."""
    async with (
        Emulator() as emu,
        EmbeddingsClient(emu.endpoint("openai_compatible"), "key", model="e1") as client,
    ):
        result = await client.embed(input=["a b c"], dimensions=8, encoding_format="base64")
    span = only(otel.finished())
    attrs = span.attributes or {}
    assert span.name == "embeddings e1"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert attrs["gen_ai.request.encoding_formats"] == ("base64",)
    assert result.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in attrs
    tokens = otel.collect()["gen_ai.client.token.usage"][1]
    assert [p.attributes["gen_ai.token.type"] for p in tokens] == ["input"]


@pytest.mark.anyio
async def test_instrumentor_switches_tracing_and_content(otel: Telemetry) -> None:
    """uninstrument() stops spans; instrument(enable_content_recording=True) restarts them
    with content, without the environment variable."""
    instrumentor = AIInferenceInstrumentor()
    assert instrumentor.is_instrumented()
    assert not instrumentor.is_content_recording_enabled()
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key") as client:
        instrumentor.uninstrument()
        instrumentor.uninstrument()
        assert not instrumentor.is_instrumented()
        await client.complete(messages=HI)
        assert otel.finished() == []
        instrumentor.instrument(enable_content_recording=True)
        assert instrumentor.is_content_recording_enabled()
        await client.complete(messages=HI)
    assert "gen_ai.input.messages" in (only(otel.finished()).attributes or {})


def test_instrument_reads_the_azure_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """instrument() without an argument takes content recording from azure's variable."""
    monkeypatch.setenv("AZURE_TRACING_GEN_AI_CONTENT_RECORDING_ENABLED", "true")
    instrumentor = AIInferenceInstrumentor()
    try:
        instrumentor.instrument()
        assert instrumentor.is_content_recording_enabled()
    finally:
        _tracing.STATE.content = None


@pytest.mark.anyio
async def test_nothing_is_recorded_without_a_provider_or_the_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No provider set: the fast path (no telemetry object). Without opentelemetry-api (as
    when it is not installed): the same, and calls work."""
    assert _tracing.current() is None
    monkeypatch.setattr(_tracing, "_api", False)
    assert _tracing.current() is None
    async with Emulator() as emu, ChatCompletionsClient(emu.endpoint(), "key") as client:
        stream = await client.complete(messages=HI, stream=True)
        assert type(stream) is inference.aio.AsyncChatCompletionsStream
        await stream.until_done()


def test_the_tracing_benchmark_runs() -> None:
    """``benchmarks/bench_tracing.py --quick`` runs and reports the three states (no timing
    is looked at)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_tracing.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines()[3:]]
    assert rows == ["none", "api", "sdk"]
