"""Edge cases at the library's seams: secrets in messages, odd server input, bad arguments."""

from __future__ import annotations

import asyncio
import json
import math
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from inference import RetryPolicy, Timeout
from inference._config import requested_delay
from inference._serialization import loads_completions, loads_update
from inference.aio import ChatCompletionsClient
from inference.exceptions import (
    HttpResponseError,
    InferenceError,
    RateLimitError,
    RequestValidationError,
    ResponseDecodeError,
    TotalTimeoutError,
)
from inference.models import UserMessage
from inference.testing import Emulator

QUESTION = [UserMessage("How many languages are in the world?")]
ANSWER = (
    b'{"id":"a","object":"chat.completion","created":1736389076,"model":"m",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},'
    b'"finish_reason":"stop"}]}'
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A loopback server answering every path with ``handler``; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://x.openai.azure.com/openai/v1?api-key=SUPERSECRET",
        "https://user:SUPERSECRET@example.com/v1",
        "https://example.com/v1?sig=SUPERSECRET#frag",
    ],
)
def test_refused_endpoint_messages_hide_query_values_and_user_info(endpoint: str) -> None:
    """A refused endpoint is named in the error without the secret pasted into it."""
    with pytest.raises(RequestValidationError) as info:
        ChatCompletionsClient(endpoint, "key")
    assert "SUPERSECRET" not in str(info.value)
    assert "endpoint" in str(info.value)


def test_requested_delay_ignores_values_that_are_not_finite() -> None:
    """NaN or infinite Retry-After values ask for no particular wait."""
    assert requested_delay({"retry-after-ms": "NaN"}, 0.0) is None
    assert requested_delay({"retry-after": "inf"}, 0.0) is None
    assert requested_delay({"retry-after": "3600"}, 0.0) == 3600.0
    assert RetryPolicy(max_retry_after=5).should_retry(1, FakeAnswer(503, {"retry-after": "inf"}))
    assert not RetryPolicy(max_retry_after=5).should_retry(
        1, FakeAnswer(503, {"retry-after": "3600"})
    )


class FakeAnswer:
    """An error response as RetryPolicy sees it."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


@pytest.mark.anyio
async def test_a_nan_retry_after_falls_back_to_backoff() -> None:
    """A 429 with ``retry-after-ms: NaN`` is retried with backoff, never a raw ValueError."""
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response(
                {"error": {"code": "429", "message": "slow down"}},
                status=429,
                headers={"retry-after-ms": "NaN"},
            )
        return web.Response(body=ANSWER, content_type="application/json")

    async with serve(handler) as url:
        policy = RetryPolicy(backoff=0.01, max_backoff=0.02)
        async with ChatCompletionsClient(url, retry=policy) as client:
            response = await client.complete(messages=QUESTION)
    assert response.choices[0].message.content == "Hi"
    assert calls == 2


@pytest.mark.anyio
async def test_rate_limit_error_reports_the_wait_the_service_asked_for() -> None:
    """``retry_after`` is the service's own number, not the client's cap."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"code": "429", "message": "quota"}},
            status=429,
            headers={"Retry-After": "3600"},
        )

    async with serve(handler) as url, ChatCompletionsClient(url, retry=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.complete(messages=QUESTION)
    assert info.value.retry_after == 3600.0


@pytest.mark.anyio
async def test_a_retry_after_too_large_for_a_number_is_raised_at_once() -> None:
    """A Retry-After of 5,000 digits asks for longer than any limit: one request, the error
    raised at once, its message saying why it was not retried."""
    requests = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.json_response(
            {"error": {"code": "429", "message": "quota"}},
            status=429,
            headers={"Retry-After": "9" * 5000},
        )

    async with serve(handler) as url, ChatCompletionsClient(url, retry=3) as client:
        with pytest.raises(RateLimitError) as info:
            await client.complete(messages=QUESTION)
    assert requests == 1
    assert info.value.retry_after == math.inf
    assert "the server asked to wait an endless wait" not in str(info.value)
    assert "(not retried: the server asked for an endless wait, longer than" in str(info.value)


@pytest.mark.parametrize(
    "headers", [{"x-a": "b\r\nX-Injected: 1"}, {"bad:name": "v"}, {"x-a": "b\nc"}]
)
@pytest.mark.anyio
async def test_header_injection_is_refused_before_sending(
    emulator: Emulator, headers: dict[str, str]
) -> None:
    """Header names or values with line breaks raise RequestValidationError; nothing is sent."""
    with pytest.raises(RequestValidationError):
        ChatCompletionsClient(emulator.endpoint(), headers=headers)
    async with ChatCompletionsClient(emulator.endpoint()) as client:
        with pytest.raises(RequestValidationError, match="header"):
            await client.complete(messages=QUESTION, headers=headers)
    assert emulator.requests == []


def test_a_client_used_on_a_second_event_loop_says_so() -> None:
    """Reusing an async client across ``asyncio.run`` calls raises a clear InferenceError."""

    async def main() -> None:
        async with Emulator() as emu:
            client = ChatCompletionsClient(emu.endpoint())
            await client.complete(messages=QUESTION)

            async def elsewhere() -> str:
                try:
                    await client.complete(messages=QUESTION)
                except InferenceError as exc:
                    return str(exc)
                return "no error"

            other = await asyncio.to_thread(asyncio.run, elsewhere())
            await client.close()
        assert "event loop" in other

    asyncio.run(main())


@pytest.mark.parametrize(
    "event",
    [
        b'{"choices":[{"index":[0],"delta":{"content":"x"}}]}',
        b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":"1"}]}}]}',
    ],
)
@pytest.mark.anyio
async def test_a_malformed_index_in_a_stream_is_a_decode_error(event: bytes) -> None:
    """A non-integer choice or tool-call index gives ResponseDecodeError, not a TypeError."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
        await response.write(b"data: " + event + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async with serve(handler) as url, ChatCompletionsClient(url) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        with pytest.raises(ResponseDecodeError):
            async for _ in stream:
                pass
        assert isinstance(ResponseDecodeError("x"), HttpResponseError)


@pytest.mark.anyio
async def test_named_events_of_other_kinds_are_skipped() -> None:
    """``event: ping`` blocks are not chat chunks: the stream skips them and goes on."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: ping\ndata: ping\n\n")
        await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
        await response.write(b"event: ping\ndata: {}\n\n")
        await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n')
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async with serve(handler) as url, ChatCompletionsClient(url) as client:
        stream = await client.complete(messages=QUESTION, stream=True)
        texts = [u.choices[0].delta.content async for u in stream]
    assert texts == ["a", "b"]
    assert stream.get_final_completion().choices[0].message.content == "ab"


def test_created_in_milliseconds_or_out_of_range_does_not_lose_the_answer() -> None:
    """A millisecond timestamp is read as such; an impossible one leaves ``created`` None."""
    ms = loads_update(b'{"created":1736389076000,"choices":[]}')
    assert ms.created is not None and ms.created.year == 2025
    huge = loads_update(b'{"created":1e30,"choices":[{"index":0,"delta":{"content":"x"}}]}')
    assert huge.created is None
    assert huge.choices[0].delta.content == "x"


@pytest.mark.parametrize("created", [10**19, -(10**15), "not a date", True])
@pytest.mark.anyio
async def test_a_created_that_is_no_date_is_kept_as_sent(created: object) -> None:
    """A ``created`` outside datetime's range (or not a time at all) leaves ``created`` None
    and keeps the value, as sent, in ``extra``: ``to_dict()``/``to_json()`` write it back, for
    a non-streamed answer, each streamed update and the stream's final completion."""
    created_json = json.dumps(created)
    body = ANSWER.replace(b"1736389076", created_json.encode())
    chunk = (
        '{"id":"s","object":"chat.completion.chunk","created":%s,"model":"m",'
        '"choices":[{"index":0,"delta":{"content":"%s"}}]}'
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        if not (await request.json()).get("stream"):
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for text in ("a", "b", "c"):  # repeated chunks take the parser's fast path
            await response.write(b"data: " + (chunk % (created_json, text)).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    async with serve(handler) as url, ChatCompletionsClient(url) as client:
        answer = await client.complete(messages=QUESTION)
        stream = await client.complete(messages=QUESTION, stream=True)
        updates = [u async for u in stream]
    final = stream.get_final_completion()
    assert answer.choices[0].message.content == "Hi"
    assert final.choices[0].message.content == "abc"
    for model in (answer, *updates, final):
        assert model.created is None
        assert model.extra["created"] == created
        assert model.to_dict()["created"] == created
        assert json.loads(model.to_json())["created"] == created


def test_a_readable_created_is_not_repeated_in_extra() -> None:
    """A ``created`` read as a date stays out of ``extra`` and is written as Unix seconds."""
    answer = loads_completions(ANSWER)
    assert answer.created is not None and "created" not in answer.extra
    assert answer.to_dict()["created"] == 1736389076


def test_bad_policy_and_timeout_values_are_validation_errors() -> None:
    """RetryPolicy and Timeout refuse negative, non-numeric and non-finite values clearly."""
    for kwargs in ({"max_retries": -1}, {"max_retries": "3"}, {"backoff": math.nan}):
        with pytest.raises(RequestValidationError, match="RetryPolicy"):
            RetryPolicy(**kwargs)
    for value in (math.nan, math.inf, -1, 0):
        with pytest.raises(RequestValidationError, match="Timeout"):
            Timeout(read=value)


@pytest.mark.anyio
async def test_total_timeout_bounds_a_trickling_body() -> None:
    """A non-streamed body that trickles in forever is cut by Timeout.total."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(200):
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    async with serve(handler) as url, ChatCompletionsClient(url, retry=0) as client:
        with pytest.raises(TotalTimeoutError):
            await client.complete(messages=QUESTION, timeout=Timeout(total=0.5, idle=5))
        assert client._transport.pool_stats()[0] == 0


@pytest.mark.anyio
async def test_http_errors_pickle(emulator: Emulator) -> None:
    """An HTTP error (with its response and headers) survives pickling, e.g. across processes."""
    async with ChatCompletionsClient(emulator.endpoint(), retry=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.complete(messages=QUESTION, headers={"x-emulator-status": "429"})
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, RateLimitError)
    assert copy.status_code == 429
    assert copy.response is not None and info.value.response is not None
    assert copy.response.headers.get("Content-Type") == info.value.response.headers.get(
        "content-type"
    )
    assert str(copy) == str(info.value)


@pytest.mark.anyio
async def test_a_redirect_is_reported_not_followed() -> None:
    """A 302 raises HttpResponseError naming the target; the request is not sent there."""
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.Response(status=302, headers={"Location": "https://elsewhere.example/v1"})

    async with serve(handler) as url, ChatCompletionsClient(url, "key", retry=0) as client:
        with pytest.raises(HttpResponseError, match="redirected") as info:
            await client.complete(messages=QUESTION)
    assert info.value.status_code == 302
    assert "https://elsewhere.example/v1" in str(info.value)
    assert calls == ["/v1/chat/completions"]


@pytest.mark.anyio
async def test_a_key_echoed_in_an_error_body_stays_out_of_the_message() -> None:
    """A proxy that repeats the key in its 401 text does not put it into the exception."""

    async def handler(request: web.Request) -> web.Response:
        echoed = request.headers.get("Authorization", "")
        return web.json_response(
            {"error": {"code": "401", "message": f"invalid credentials: {echoed}"}}, status=401
        )

    async with serve(handler) as url, ChatCompletionsClient(url, "SUPERSECRETKEY") as client:
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=QUESTION)
    assert info.value.status_code == 401
    assert "SUPERSECRETKEY" not in str(info.value)
    assert "SUPERSECRETKEY" not in info.value.message
    assert "invalid credentials" in str(info.value)
