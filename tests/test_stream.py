"""Tests of the async streaming path: ``await client.complete(..., stream=True)``.

Driven against the emulator, and against small aiohttp.web servers on 127.0.0.1 written here
for wire shapes the emulator does not produce (``event: error``, comment-only stalls, a body
that ends cleanly without ``[DONE]``, a slow end of body). The recorded real streams are
replayed in ``test_recordings.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from azure.core.credentials import AzureKeyCredential

from inference import (
    IdleTimeoutError,
    InferenceError,
    ResponseDecodeError,
    StreamError,
    StreamInterruptedError,
    StreamServiceError,
    Timeout,
)
from inference.aio import AsyncChatCompletionsStream, ChatCompletionsClient
from inference.models import (
    ChatCompletions,
    ChatCompletionsToolDefinition,
    ChatRole,
    CompletionsFinishReason,
    FunctionDefinition,
    StreamingChatCompletionsUpdate,
    StreamingChatResponseMessageUpdate,
    SystemMessage,
    UserMessage,
)
from inference.sse import ServerSentEvent, SSEDecoder
from inference.testing import Emulator
from inference.testing import _model as emulator_model

MODEL = "stream-test-model"
QUESTION = [
    SystemMessage("You are a helpful assistant."),
    UserMessage("How many languages are in the world?"),
]
HELLO = [UserMessage("hello")]
HELLO_TOKENS = emulator_model.tokenize("Hello! How can I help you today?")
FLIGHT_TOOL = ChatCompletionsToolDefinition(
    function=FunctionDefinition(
        name="get_flight_info",
        description="Returns information about the next flight between two cities.",
        parameters={
            "type": "object",
            "properties": {
                "origin_city": {
                    "type": "string",
                    "description": "The name of the city where the flight originates",
                },
                "destination_city": {
                    "type": "string",
                    "description": "The flight destination city",
                },
            },
            "required": ["origin_city", "destination_city"],
        },
    )
)
FLIGHT_QUESTION = [
    SystemMessage("You help travellers."),
    UserMessage("When is the next flight from Miami to Seattle?"),
]
ALL_KINDS = (
    "azure_ai_models",
    "azure_ai_serverless",
    "azure_openai_deployment",
    "azure_openai_v1",
    "github_models",
    "openai_compatible",
)


# -- helpers ------------------------------------------------------------------------------


@asynccontextmanager
async def open_client(endpoint: str, **kwargs: Any) -> AsyncIterator[ChatCompletionsClient]:
    """An async client for a loopback endpoint (no credential)."""
    async with ChatCompletionsClient(endpoint, model=MODEL, **kwargs) as client:
        yield client


async def wait_until(condition: Callable[[], bool], what: str, limit: float = 5.0) -> None:
    """Poll ``condition`` (bounded) until it holds; fail with ``what`` if it never does."""
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still not true after {limit} s: {what}")


def text_of(updates: list[StreamingChatCompletionsUpdate], index: int = 0) -> str:
    """The content deltas of one choice, joined."""
    return "".join(c.delta.content or "" for u in updates for c in u.choices if c.index == index)


async def collect(
    stream: AsyncChatCompletionsStream,
) -> tuple[list[StreamingChatCompletionsUpdate], BaseException | None]:
    """Every update the stream yields, and the exception that ended it (or None)."""
    updates: list[StreamingChatCompletionsUpdate] = []
    try:
        async for update in stream:
            updates.append(update)
    except InferenceError as exc:
        return updates, exc
    return updates, None


def sse(obj: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chunk(content: str | None = None, *, role: str | None = None, finish: str | None = None) -> Any:
    """An OpenAI-style chunk for the scripted servers."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1736389076,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OPENING = sse(chunk("", role="assistant")) + sse(chunk("One")) + sse(chunk(" two"))
DONE = b"data: [DONE]\n\n"

Handler = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


class ScriptServer:
    """A loopback server answering ``POST /<name>/chat/completions`` with scripted streams.

    Keeps every request's transport (strong references, so identities stay distinct) to
    count the TCP connections the client used, and ``events`` for handlers to report to tests.
    """

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.transports: list[object] = []
        self.events: list[str] = []
        self.content_types: dict[str, str] = {}  # handler name -> Content-Type, when not the usual
        self.url = ""
        self._runner: web.AppRunner | None = None

    def endpoint(self, name: str) -> str:
        """The endpoint URL that routes to handler ``name``."""
        return f"{self.url}/{name}"

    @property
    def connections(self) -> int:
        """How many distinct TCP connections the requests arrived on."""
        return len({id(t) for t in self.transports})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.transports.append(request.transport)
        name = request.match_info["name"]
        handler = self.handlers[name]
        content_type = self.content_types.get(name, "text/event-stream; charset=utf-8")
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            await handler(request, response)
        except (ConnectionError, asyncio.CancelledError):
            self.events.append("client gone")
            raise
        return response

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/{name}/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop listening and end the requests in progress."""
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def script_server(anyio_backend: str) -> AsyncIterator[ScriptServer]:
    """A started :class:`ScriptServer`."""
    server = ScriptServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def wait_for_disconnect(request: web.Request) -> None:
    """Send nothing more until the client closes the connection."""
    for _ in range(500):  # at most 10 s
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(0.02)


# -- the updates --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_updates_carry_id_created_model_choices_and_delta(emulator: Emulator) -> None:
    """Each update has the chunk's id, an aware `created`, the model and typed choices."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        updates, error = await collect(stream)
    assert error is None
    assert len(updates) > 10
    first = updates[0]
    assert first.id.startswith("chatcmpl-")
    assert {u.id for u in updates} == {first.id}
    assert isinstance(first.created, datetime)
    assert first.created.utcoffset() == timedelta(0)
    assert first.model == MODEL
    assert first.object == "chat.completion.chunk"
    assert first.choices[0].index == 0
    assert first.choices[0].delta.role == ChatRole.ASSISTANT
    assert first.choices[0].finish_reason is None
    assert all(u.choices[0].delta.role is None for u in updates[1:])
    assert updates[-1].choices[0].finish_reason == CompletionsFinishReason.STOPPED
    assert all(u.choices[0].finish_reason is None for u in updates[:-1])
    final = stream.get_final_completion()
    assert text_of(updates) == final.choices[0].message.content
    assert final.choices[0].message.content is not None
    assert final.choices[0].message.content.startswith("Linguists estimate")


@pytest.mark.anyio
async def test_tool_call_fragments_carry_index_id_type_name_arguments(emulator: Emulator) -> None:
    """Tool-call deltas: the first fragment has index, id, type and name; then arguments."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=FLIGHT_QUESTION, tools=[FLIGHT_TOOL], stream=True)
        updates, error = await collect(stream)
    assert error is None
    fragments = [frag for u in updates for c in u.choices for frag in (c.delta.tool_calls or ())]
    head, rest = fragments[0], fragments[1:]
    assert head.index == 0
    assert head.id is not None and head.id.startswith("call_")
    assert head.type == "function"
    assert head.function is not None and head.function.name == "get_flight_info"
    assert rest and all(f.index == 0 and f.id is None for f in rest)
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"origin_city": "Miami", "destination_city": "Seattle"}
    assert updates[-1].choices[0].finish_reason == CompletionsFinishReason.TOOL_CALLS


@pytest.mark.anyio
async def test_usage_on_the_updates_of_an_azure_stream(emulator: Emulator) -> None:
    """Azure AI services put the usage on the finishing chunk; it reaches the update."""
    async with open_client(emulator.endpoint("azure_ai_models")) as client:
        expected = await client.complete(messages=QUESTION)
        stream = await client.complete(messages=QUESTION, stream=True)
        updates, error = await collect(stream)
    assert error is None
    with_usage = [u for u in updates if u.usage is not None]
    assert with_usage == [updates[-1]]
    assert updates[-1].usage == expected.usage
    assert stream.get_final_completion().usage == expected.usage


@pytest.mark.anyio
async def test_unknown_fields_are_kept_in_extra(emulator: Emulator) -> None:
    """Unknown chunk fields (prompt_filter_results, content_filter_results) stay in `.extra`."""
    async with open_client(emulator.endpoint("azure_openai_deployment")) as client:
        stream = await client.complete(
            messages=HELLO, stream=True, headers={"x-emulator-annotations": "true"}
        )
        updates, error = await collect(stream)
    assert error is None
    first = updates[0]
    assert first.extra["prompt_filter_results"][0]["prompt_index"] == 0
    assert first["prompt_filter_results"] == first.extra["prompt_filter_results"]
    annotated = [u for u in updates if u.choices and "content_filter_results" in u.choices[0].extra]
    assert annotated
    assert annotated[0].choices[0]["content_filter_results"]["hate"]["filtered"] is False
    assert "content_filter_offsets" in annotated[0].choices[0].extra


# -- connection lifecycle -----------------------------------------------------------------


@pytest.mark.anyio
async def test_connection_returns_to_the_pool_at_done_and_is_reused(emulator: Emulator) -> None:
    """At [DONE] the connection is idle in the pool at once, and the next request reuses it."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        async for _ in stream:
            pass
        assert stream.finished
        assert client._transport.pool_stats() == (0, 1)
        assert emulator.open_connections == 1
        again = await client.complete(messages=QUESTION, stream=True)
        await again.until_done()
        assert client._transport.pool_stats() == (0, 1)
        await client.complete(messages=QUESTION)
        assert client._transport.pool_stats() == (0, 1)
        assert emulator.open_connections == 1
    assert len(emulator.requests) == 3


@pytest.mark.anyio
async def test_connection_reuse_counted_by_the_server(script_server: ScriptServer) -> None:
    """A server counting accepted connections sees three streams arrive on one connection."""

    async def plain(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + sse(chunk(finish="stop")) + DONE)

    script_server.handlers["plain"] = plain
    async with open_client(script_server.endpoint("plain")) as client:
        for _ in range(3):
            stream = await client.complete(messages=HELLO, stream=True)
            final = await stream.until_done()
            assert final.choices[0].message.content == "One two"
            assert client._transport.pool_stats() == (0, 1)
    assert len(script_server.transports) == 3
    assert script_server.connections == 1


@pytest.mark.anyio
async def test_end_of_body_arriving_after_done_is_read(script_server: ScriptServer) -> None:
    """The bytes ending the body may come after [DONE]: the stream reads them, then reuses."""

    async def slow_tail(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + DONE)
        await asyncio.sleep(0.2)
        await response.write_eof()

    script_server.handlers["slow_tail"] = slow_tail
    async with open_client(script_server.endpoint("slow_tail")) as client:
        for _ in range(2):
            stream = await client.complete(messages=HELLO, stream=True)
            await stream.until_done()
            assert client._transport.pool_stats() == (0, 1)
    assert script_server.connections == 1


@pytest.mark.anyio
async def test_body_that_never_ends_after_done_is_closed(script_server: ScriptServer) -> None:
    """A server that sends [DONE] but never ends the body: the stream finishes, conn closed."""

    async def hang(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + DONE)
        await wait_for_disconnect(request)

    script_server.handlers["hang"] = hang
    async with open_client(script_server.endpoint("hang")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        final = await stream.until_done()
        assert stream.finished
        assert final.choices[0].message.content == "One two"
        assert client._transport.pool_stats() == (0, 0)


@pytest.mark.anyio
async def test_async_with_releases_the_connection_on_break(emulator: Emulator) -> None:
    """Breaking out of `async with stream:` closes the connection; the server sees it go."""
    headers = {"x-emulator-token-delay": "0.01"}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True, headers=headers)
        async with stream as entered:
            assert entered is stream
            async for update in stream:
                if update.choices and update.choices[0].delta.content:
                    break
            assert emulator.active_streams == 1
            assert client._transport.pool_stats() == (1, 0)
        assert client._transport.pool_stats() == (0, 0)
        await wait_until(lambda: emulator.active_streams == 0, "the server saw the close")
        assert not stream.finished


@pytest.mark.parametrize("close", ["aclose", "close"])
@pytest.mark.anyio
async def test_aclose_is_idempotent_and_releases(emulator: Emulator, close: str) -> None:
    """aclose() (or its other name, close()) releases the connection and may be called again,
    also after the end."""
    headers = {"x-emulator-token-delay": "0.01"}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True, headers=headers)
        await stream.__anext__()
        await getattr(stream, close)()
        assert client._transport.pool_stats() == (0, 0)
        await getattr(stream, close)()
        await wait_until(lambda: emulator.active_streams == 0, "the server saw the close")
        done = await client.complete(messages=HELLO, stream=True)
        await done.until_done()
        await getattr(done, close)()
        await getattr(done, close)()
        assert client._transport.pool_stats() == (0, 1)
        assert done.get_final_completion().choices[0].message.content == "".join(HELLO_TOKENS)


@pytest.mark.anyio
async def test_bare_break_then_del_releases_the_connection(emulator: Emulator) -> None:
    """A bare `break` and dropping the stream (no aclose) frees the connection at once."""
    headers = {"x-emulator-token-delay": "0.01"}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True, headers=headers)
        async for _update in stream:
            break
        assert client._transport.pool_stats() == (1, 0)
        assert emulator.active_streams == 1
        del stream
        assert client._transport.pool_stats() == (0, 0)
        await wait_until(lambda: emulator.active_streams == 0, "the server saw the close")
        # The client keeps working after the dropped stream.
        final = await (await client.complete(messages=HELLO, stream=True)).until_done()
        assert final.choices[0].message.content == "".join(HELLO_TOKENS)


# -- Azure OpenAI content-filter annotations ----------------------------------------------


@pytest.mark.anyio
async def test_choices_without_delta_get_an_empty_delta(emulator: Emulator) -> None:
    """Annotation events (a choice without delta) give an empty delta, never None."""
    async with open_client(emulator.endpoint("azure_openai_deployment")) as client:
        expected = await client.complete(messages=QUESTION)
        stream = await client.complete(
            messages=QUESTION, stream=True, headers={"x-emulator-annotations": "true"}
        )
        updates, error = await collect(stream)
    assert error is None
    annotations = [u for u in updates if u.choices and "content_filter_results" in u.choices[0]]
    assert len(annotations) >= 2
    for update in annotations:
        delta = update.choices[0].delta
        assert isinstance(delta, StreamingChatResponseMessageUpdate)
        assert delta.content is None
        assert delta.role is None and delta.tool_calls is None
    # Every update's first choice can be read without a None check on delta.
    assert "".join(u.choices[0].delta.content or "" for u in updates if u.choices) == (
        expected.choices[0].message.content
    )
    final = stream.get_final_completion()
    assert final.choices[0].message.content == expected.choices[0].message.content
    assert final.id == updates[1].id != ""
    assert final.model == expected.model


@pytest.mark.anyio
async def test_updates_with_empty_choices_are_delivered(emulator: Emulator) -> None:
    """The prompt-filter event (no choices) is delivered, not dropped."""
    async with open_client(emulator.endpoint("azure_openai_deployment")) as client:
        stream = await client.complete(
            messages=HELLO, stream=True, headers={"x-emulator-annotations": "true"}
        )
        updates, error = await collect(stream)
    assert error is None
    assert updates[0].choices == []
    assert "prompt_filter_results" in updates[0]
    assert updates[1].choices[0].delta.role == ChatRole.ASSISTANT


# -- errors -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("delay", ["0", "0.005"])
async def test_error_event_in_the_stream(emulator: Emulator, delay: str) -> None:
    """A mid-stream `{"error": ...}` event raises StreamServiceError with code, message, partial.

    The updates that arrived before the error are delivered first, however the bytes were
    split into network reads (all at once, or one event per read).
    """
    headers = {"x-emulator-error-after": "3", "x-emulator-token-delay": delay}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=HELLO, stream=True, headers=headers)
        updates, error = await collect(stream)
        assert client._transport.pool_stats()[0] == 0
        await wait_until(lambda: emulator.active_streams == 0, "the server ended the stream")
    assert isinstance(error, StreamServiceError)
    assert error.code == "server_error"
    assert error.message == (
        "The server had an error while processing your request. Sorry about that!"
    )
    assert "server_error" in str(error)
    expected = "".join(HELLO_TOKENS[:3])
    assert len(updates) == 4
    assert text_of(updates) == expected
    assert isinstance(error.partial, ChatCompletions)
    assert error.partial.choices[0].message.content == expected
    assert stream.partial_completion().choices[0].message.content == expected
    assert not stream.finished
    with pytest.raises(StreamError):
        stream.get_final_completion()


@pytest.mark.anyio
async def test_sse_error_event_type(script_server: ScriptServer) -> None:
    """An `event: error` SSE event raises StreamServiceError with the service's code/message."""

    async def error_event(request: web.Request, response: web.StreamResponse) -> None:
        body = {"error": {"code": "too_many_requests", "message": "Slow down, please."}}
        await response.write(OPENING + b"event: error\ndata: " + orjson.dumps(body) + b"\n\n")

    script_server.handlers["error_event"] = error_event
    async with open_client(script_server.endpoint("error_event")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
        assert client._transport.pool_stats()[0] == 0
    assert isinstance(error, StreamServiceError)
    assert error.code == "too_many_requests"
    assert error.message == "Slow down, please."
    assert text_of(updates) == "One two"
    assert error.partial.choices[0].message.content == "One two"


@pytest.mark.anyio
async def test_an_error_event_that_echoes_the_key_does_not_leak_it(
    script_server: ScriptServer,
) -> None:
    """A service whose error event repeats the credential it got: the StreamServiceError's
    message, repr, code and service message hold no trace of the key."""
    secret = "sk-echoed-secret-key-0123456789abcdef"

    async def echo_key(request: web.Request, response: web.StreamResponse) -> None:
        sent = request.headers.get("api-key") or request.headers.get("authorization", "")
        assert secret in sent
        body = {"error": {"code": f"invalid:{sent}", "message": f"the key {sent!r} is revoked"}}
        await response.write(OPENING + b"event: error\ndata: " + orjson.dumps(body) + b"\n\n")

    script_server.handlers["echo_key"] = echo_key
    endpoint = script_server.endpoint("echo_key")
    async with ChatCompletionsClient(endpoint, AzureKeyCredential(secret), model=MODEL) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        _, error = await collect(stream)
    assert isinstance(error, StreamServiceError)
    assert "revoked" in str(error) and error.code is not None
    for text in (str(error), repr(error), error.message, error.code, repr(error.args)):
        assert secret not in text


@pytest.mark.anyio
async def test_a_chunk_with_non_string_content_then_a_cut(script_server: ScriptServer) -> None:
    """A chunk whose content is a number, then the connection ends: a ResponseDecodeError
    naming the field, with the answer before it in partial; the results still assemble
    (no TypeError) and the stream is not finished."""

    async def numeric(request: web.Request, response: web.StreamResponse) -> None:
        bad = chunk(" x")
        bad["choices"][0]["delta"]["content"] = 42
        await response.write(OPENING + sse(bad) + sse(chunk(" three")))

    script_server.handlers["numeric"] = numeric
    async with open_client(script_server.endpoint("numeric")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
    assert isinstance(error, ResponseDecodeError), error
    assert "content must be a string or null, got int 42" in str(error)
    assert text_of(updates) == "One two"
    assert error.partial.choices[0].message.content == "One two"
    assert stream.partial_completion().choices[0].message.content == "One two"
    with pytest.raises(StreamError):
        stream.get_final_completion()


@pytest.mark.anyio
async def test_sse_error_event_with_plain_text_data(script_server: ScriptServer) -> None:
    """An `event: error` whose data is not JSON still raises StreamServiceError with the text."""

    async def error_text(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + b"event: error\ndata: upstream model crashed\n\n")

    script_server.handlers["error_text"] = error_text
    async with open_client(script_server.endpoint("error_text")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        _, error = await collect(stream)
    assert isinstance(error, StreamServiceError)
    assert error.message == "upstream model crashed"
    assert error.partial.choices[0].message.content == "One two"


@pytest.mark.anyio
async def test_event_shapes_off_the_fast_path_give_the_same_updates(
    script_server: ScriptServer,
) -> None:
    """Events that are not one ``data:`` line of valid UTF-8 (invalid bytes, data split over
    two lines, no space after the colon, a named event between chunks) are decoded as the
    standard says: invalid UTF-8 becomes U+FFFD and a named event is skipped."""
    bad = sse(chunk("caf\u00e9")).replace("\u00e9".encode(), b"\xff")
    split = (
        b'data: {"id":"chatcmpl-scripted","choices":\n'
        b'data: [{"index":0,"delta":{"content":" x"}}]}\n\n'
    )
    no_space = b"data:" + orjson.dumps(chunk(" y")) + b"\n\n"

    async def shapes(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + bad + b"event: ping\ndata: {}\n\n" + split + no_space)
        await response.write(DONE)

    script_server.handlers["shapes"] = shapes
    async with open_client(script_server.endpoint("shapes")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
    assert error is None
    assert text_of(updates) == "One twocaf\ufffd x y"
    assert stream.get_final_completion().choices[0].message.content == "One twocaf\ufffd x y"


@pytest.mark.anyio
async def test_cut_connection_raises_stream_interrupted(emulator: Emulator) -> None:
    """A body cut before [DONE] raises StreamInterruptedError with the content so far."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(
            messages=HELLO, stream=True, headers={"x-emulator-cut-after": "3"}
        )
        updates, error = await collect(stream)
        assert client._transport.pool_stats() == (0, 0)
    assert isinstance(error, StreamInterruptedError)
    assert not isinstance(error, StreamServiceError)
    expected = "".join(HELLO_TOKENS[:3])
    assert text_of(updates) == expected
    assert error.partial.choices[0].message.content == expected
    assert not stream.finished
    with pytest.raises(StreamError):
        stream.get_final_completion()


@pytest.mark.anyio
async def test_clean_end_without_done_is_not_a_normal_end(script_server: ScriptServer) -> None:
    """A body that ends properly but without [DONE] raises StreamInterruptedError."""

    async def no_done(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING)
        await response.write_eof()

    script_server.handlers["no_done"] = no_done
    async with open_client(script_server.endpoint("no_done")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
        assert client._transport.pool_stats()[0] == 0
    assert isinstance(error, StreamInterruptedError)
    assert "DONE" in str(error)
    assert text_of(updates) == "One two"
    assert error.partial.choices[0].message.content == "One two"


@pytest.mark.anyio
async def test_unterminated_last_event_is_not_delivered(script_server: ScriptServer) -> None:
    """An event cut off by the end of the body (no blank line) is dropped, and it is an error."""

    async def half_event(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + b'data: {"choices": [')
        await response.write_eof()

    script_server.handlers["half_event"] = half_event
    async with open_client(script_server.endpoint("half_event")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
    assert isinstance(error, StreamInterruptedError)
    assert len(updates) == 3


# -- include_usage, CRLF, keep-alive comments ---------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai_compatible", "azure_openai_v1"])
async def test_include_usage_final_chunk(emulator: Emulator, kind: str) -> None:
    """With include_usage the last update has empty choices and the usage; the final matches."""
    async with open_client(emulator.endpoint(kind)) as client:
        expected = await client.complete(messages=QUESTION)
        stream = await client.complete(
            messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        updates, error = await collect(stream)
    assert error is None
    last = updates[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage == expected.usage
    assert all(u.usage is None for u in updates[:-1])
    final = stream.get_final_completion()
    assert final.usage == expected.usage
    assert final.choices[0].finish_reason == CompletionsFinishReason.STOPPED
    assert emulator.requests[-1].json["stream_options"] == {"include_usage": True}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [
        {"x-emulator-crlf": "true"},
        {"x-emulator-keepalive-comments": "true"},
        {"x-emulator-crlf": "true", "x-emulator-keepalive-comments": "true"},
    ],
)
async def test_crlf_and_keepalive_comments(emulator: Emulator, options: dict[str, str]) -> None:
    """CRLF line endings and keep-alive comment lines give the same updates as plain LF."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        plain, error = await collect(await client.complete(messages=QUESTION, stream=True))
        assert error is None
        stream = await client.complete(messages=QUESTION, stream=True, headers=options)
        updates, error = await collect(stream)
        assert client._transport.pool_stats() == (0, 1)
    assert error is None
    assert stream.finished
    assert len(updates) == len(plain)
    assert [u.choices for u in updates] == [u.choices for u in plain]
    assert text_of(updates) == text_of(plain)


# -- streamed and non-streamed answers agree ----------------------------------------------


def _request(case: str) -> dict[str, Any]:
    if case == "text":
        return {"messages": QUESTION}
    if case == "json":
        return {"messages": QUESTION, "response_format": "json_object"}
    if case == "tools":
        return {"messages": FLIGHT_QUESTION, "tools": [FLIGHT_TOOL]}
    if case == "n2":
        return {"messages": QUESTION, "n": 2}
    raise AssertionError(case)


async def _both(
    emulator: Emulator, kind: str, case: str
) -> tuple[ChatCompletions, ChatCompletions]:
    async with open_client(emulator.endpoint(kind)) as client:
        request = _request(case)
        expected = await client.complete(**request)
        stream = await client.complete(
            **request, stream=True, stream_options={"include_usage": True}
        )
        return expected, await stream.until_done()


N_KINDS = ("azure_openai_deployment", "azure_openai_v1", "github_models", "openai_compatible")
"""The kinds that accept ``n`` (the Azure AI Model Inference API does not define it)."""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "case"),
    [(kind, case) for kind in ALL_KINDS for case in ("text", "json")]
    + [(kind, "n2") for kind in N_KINDS],
)
async def test_final_completion_equals_non_streamed_answer(
    emulator: Emulator, kind: str, case: str
) -> None:
    """get_final_completion() equals the non-streamed answer: choices, usage, model."""
    expected, final = await _both(emulator, kind, case)
    assert final.choices == expected.choices
    assert final.usage == expected.usage
    assert final.model == expected.model
    assert final.id and final.id != expected.id
    if case == "json":
        assert json.loads(final.choices[0].message.content or "")["answer"]
    if case == "n2":
        assert [c.index for c in final.choices] == [0, 1]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["azure_ai_models", "azure_ai_serverless", "github_models"])
async def test_final_completion_equals_non_streamed_tool_calls(
    emulator: Emulator, kind: str
) -> None:
    """With tool calls, the streamed final completion equals the non-streamed one."""
    expected, final = await _both(emulator, kind, "tools")
    assert final.choices == expected.choices
    assert final.usage == expected.usage
    calls = final.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].function.name == "get_flight_info"
    assert final.choices[0].finish_reason == CompletionsFinishReason.TOOL_CALLS


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_streamed_tool_calls_match_the_non_streamed_ones(
    emulator: Emulator, kind: str
) -> None:
    """Every endpoint kind: the streamed tool calls and finish reason equal the non-streamed."""
    expected, final = await _both(emulator, kind, "tools")
    assert final.choices[0].message.tool_calls == expected.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == expected.choices[0].finish_reason
    assert not final.choices[0].message.content
    assert final.usage == expected.usage


# -- convenience API ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_text_deltas_yields_only_non_empty_text_of_choice_zero(emulator: Emulator) -> None:
    """text_deltas() gives choice 0's non-empty text only (n=2: choice 1 is left out)."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        expected = await client.complete(messages=QUESTION, n=2)
        stream = await client.complete(messages=QUESTION, n=2, stream=True)
        texts = [text async for text in stream.text_deltas()]
        assert stream.finished
        tool_stream = await client.complete(
            messages=FLIGHT_QUESTION, tools=[FLIGHT_TOOL], stream=True
        )
        tool_texts = [text async for text in tool_stream.text_deltas()]
    assert texts and all(isinstance(t, str) and t for t in texts)
    assert "".join(texts) == expected.choices[0].message.content
    answer = expected.choices[0].message.content or ""
    assert len(texts) == len(emulator_model.tokenize(answer))
    assert tool_texts == []
    assert tool_stream.get_final_completion().choices[0].message.tool_calls


@pytest.mark.anyio
async def test_until_done_returns_the_final_completion(emulator: Emulator) -> None:
    """until_done() reads the rest (after some updates were taken) and returns the final."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        await stream.__anext__()
        await stream.__anext__()
        final = await stream.until_done()
        assert stream.finished
        assert final == stream.get_final_completion()
        assert final.choices[0].message.content is not None
        assert final.choices[0].message.content.startswith("Linguists")
        assert [u async for u in stream] == []


@pytest.mark.anyio
async def test_partial_completion_midway_and_early_final_raises(emulator: Emulator) -> None:
    """partial_completion() holds what arrived; get_final_completion() early explains itself."""
    headers = {"x-emulator-token-delay": "0.01"}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        expected = await client.complete(messages=QUESTION)
        answer = expected.choices[0].message.content or ""
        stream = await client.complete(messages=QUESTION, stream=True, headers=headers)
        async with stream:
            seen = [await stream.__anext__() for _ in range(6)]
            partial = stream.partial_completion()
            # Everything that arrived: at least what was taken, and a beginning of the answer.
            text = partial.choices[0].message.content or ""
            assert text.startswith(text_of(seen))
            assert answer.startswith(text) and len(text) < len(answer)
            assert partial.choices[0].finish_reason is None
            with pytest.raises(StreamError) as info:
                stream.get_final_completion()
            message = str(info.value)
            assert "until_done" in message and "partial_completion" in message
            assert not stream.finished


# -- memory stays flat --------------------------------------------------------------------


class _RecordingDecoder:
    """Wraps the stream's decoder to record, per network read: its size, how many updates
    were still pending when it was read, and how many events it held."""

    def __init__(self, decoder: SSEDecoder, stream: AsyncChatCompletionsStream) -> None:
        self._decoder = decoder
        self._stream = stream
        self.reads: list[tuple[int, int, int]] = []

    def feed_data(self, data: bytes) -> list[bytes | ServerSentEvent]:
        pending = self._stream._parser.pending
        events = self._decoder.feed_data(data)
        self.reads.append((len(data), pending, len(events)))
        return events

    def close(self) -> list[ServerSentEvent]:
        return self._decoder.close()


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root`` through attributes, slots and containers."""
    stack, seen = [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | type(None)):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set):
            stack += list(obj)
        else:
            for cls in type(obj).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if hasattr(obj, name):
                        stack.append(getattr(obj, name))
            stack += list(getattr(obj, "__dict__", {}).values())


MAX_READ = 1024 * 1024
"""A generous bound on one network read: aiohttp pauses the socket once its buffer passes its
high-water mark (128 KiB), so a read returns that plus at most what a few socket reads held."""


@pytest.mark.anyio
async def test_long_stream_with_slow_consumer_has_bounded_read_ahead(emulator: Emulator) -> None:
    """A long stream read slowly: the stream reads only when no update is pending, one read
    holds a bounded number of bytes, and the accumulator keeps text parts, not updates."""
    headers = {"x-emulator-repeat": "350"}
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        expected = await client.complete(messages=QUESTION, headers=headers)
        stream = await client.complete(messages=QUESTION, stream=True, headers=headers)
        parser = stream._parser
        recorder = _RecordingDecoder(parser._decoder, stream)
        parser._decoder = cast(SSEDecoder, recorder)
        await asyncio.sleep(0.3)  # the server pushes all the buffers can hold meanwhile
        count = 0
        most_pending = 0
        content_deltas = 0
        async for update in stream:
            count += 1
            most_pending = max(most_pending, parser.pending)
            if update.choices and update.choices[0].delta.content:
                content_deltas += 1
            if not parser.pending:
                await asyncio.sleep(0.02)  # a slow consumer, before every network read
        final = stream.get_final_completion()
    total = sum(size for size, _, _ in recorder.reads)
    assert total > 3 * MAX_READ  # the stream is much longer than one read can hold
    assert count > 15_000
    assert all(pending == 0 for _, pending, _ in recorder.reads)
    assert max(size for size, _, _ in recorder.reads) <= MAX_READ
    assert most_pending < max(events for _, _, events in recorder.reads)
    assert final.choices[0].message.content == expected.choices[0].message.content
    # The accumulator keeps one text part per content delta, and no update object.
    kinds = {type(obj).__name__ for obj in _reachable(parser.accumulator)}
    assert "StreamingChatCompletionsUpdate" not in kinds
    assert "StreamingChatChoiceUpdate" not in kinds
    assert "StreamingChatResponseMessageUpdate" not in kinds
    parts = parser.accumulator._choices[0].content
    assert len(parts) == content_deltas
    assert all(type(part) is str for part in parts)
    assert parser.pending == 0


# -- idle timeout ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stalled_stream_raises_idle_timeout_and_releases(emulator: Emulator) -> None:
    """A stream that stalls raises IdleTimeoutError after Timeout.idle and frees the connection."""
    async with open_client(emulator.endpoint("openai_compatible")) as client:
        stream = await client.complete(
            messages=HELLO,
            stream=True,
            headers={"x-emulator-stall-after": "3"},
            timeout=Timeout(idle=0.3),
        )
        updates, error = await collect(stream)
        assert client._transport.pool_stats() == (0, 0)
        await wait_until(lambda: emulator.active_streams == 0, "the server saw the close")
    assert isinstance(error, IdleTimeoutError)
    assert isinstance(error, TimeoutError)
    assert text_of(updates) == "".join(HELLO_TOKENS[:3])
    partial = error.partial  # type: ignore[attr-defined]
    assert isinstance(partial, ChatCompletions)
    assert partial.choices[0].message.content == "".join(HELLO_TOKENS[:3])


@pytest.mark.anyio
@pytest.mark.parametrize(
    "keepalive",
    [b": ping\n\n", b"event: ping\ndata: {}\n\n"],
    ids=["comments", "named ping events"],
)
async def test_keepalives_do_not_reset_the_idle_timeout(
    script_server: ScriptServer, keepalive: bytes
) -> None:
    """A server sending only keep-alives after a few chunks (``: ping`` comments, or named
    ``event: ping`` events that carry no chat chunk) is stalled: IdleTimeoutError, with the
    chunks in partial, long before the keep-alives stop."""
    pings: list[int] = []

    async def pinging(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING)
        for _ in range(100):  # 5 s of keep-alives, then the body ends (cut, without [DONE])
            await asyncio.sleep(0.05)
            await response.write(keepalive)
            pings.append(1)

    script_server.handlers["pinging"] = pinging
    async with open_client(script_server.endpoint("pinging")) as client:
        stream = await client.complete(messages=HELLO, stream=True, timeout=Timeout(idle=0.3))
        updates, error = await collect(stream)
        assert client._transport.pool_stats() == (0, 0)
        await wait_until(
            lambda: "client gone" in script_server.events, "the server saw the client go"
        )
    assert isinstance(error, IdleTimeoutError), error
    assert 2 <= len(pings) < 100  # keep-alives kept flowing while the stream was judged idle
    assert text_of(updates) == "One two"
    assert error.partial.choices[0].message.content == "One two"  # type: ignore[attr-defined]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content_type", ["Text/Event-Stream; charset=UTF-8", "TEXT/EVENT-STREAM", "text/event-stream"]
)
async def test_the_stream_media_type_is_matched_without_case(
    script_server: ScriptServer, content_type: str
) -> None:
    """A stream served as ``Text/Event-Stream; charset=UTF-8`` (media types are
    case-insensitive) is read as a stream."""

    async def shouting(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(OPENING + DONE)

    script_server.handlers["shouting"] = shouting
    script_server.content_types["shouting"] = content_type
    async with open_client(script_server.endpoint("shouting")) as client:
        stream = await client.complete(messages=HELLO, stream=True)
        updates, error = await collect(stream)
    assert error is None
    assert text_of(updates) == "One two" and stream.finished


@pytest.mark.anyio
async def test_chunks_that_repeat_the_previous_shape_take_the_short_path(
    emulator: Emulator,
) -> None:
    """The stream parses a chunk that differs from the previous one only in its text by that
    text alone (``ChunkParser``, checked against full parses in test_chunks.py): after the
    first text chunk every one does, and the answer is assembled whole."""
    async with open_client(emulator.endpoint("azure_ai_models")) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        updates, error = await collect(stream)
    assert error is None
    parser = stream._parser._chunks
    text_updates = [u for u in updates if u.choices and u.choices[0].delta.content]
    assert len(text_updates) > 10
    assert parser.repeats >= len(text_updates) - 1
    final = stream.get_final_completion()
    assert final.choices[0].message.content == text_of(updates)
