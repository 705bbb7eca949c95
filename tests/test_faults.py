"""Fault injection: a loopback server breaks the exchange in every way networks and proxies do.

Each fault must end in the documented exception from the project's tree (never a raw aiohttp,
json, orjson or cattrs exception) or in the correct result, never in a hang, and must leave
no connection checked out of the pool. Cancellation (anyio cancel scopes, ``asyncio.timeout``,
task-group cancellation) must release the connection and leave the client usable.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import anyio
import cattrs
import orjson
import pytest
from _fault_server import (
    Exchange,
    FaultServer,
    chat_body,
    chunk_event,
    completion,
    error,
    raw,
    refused_url,
    reset,
    sse,
    stall,
    trickle,
)
from azure.core import exceptions as azure_exceptions
from azure.core.credentials import AccessToken

from inference import (
    HttpResponseError,
    IdleTimeoutError,
    InferenceError,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServiceError,
    ServiceRequestError,
    ServiceResponseError,
    SSEError,
    StreamInterruptedError,
    Timeout,
)
from inference.aio import ChatCompletionsClient
from inference.exceptions import ErrorResponse
from inference.models import UserMessage

HI = [UserMessage("hi")]
FAST = RetryPolicy(max_retries=1, backoff=0.01, max_backoff=0.02, max_retry_after=0.5)
# Short enough that no fault makes a test wait long; STALL for the tests that wait for it.
QUICK = Timeout(connect=2.0, read=2.0, idle=1.0)
STALL = Timeout(connect=2.0, read=2.0, idle=0.3)
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def assert_ours(exc: BaseException) -> None:
    """``exc`` belongs to the project's tree and is none of the libraries' own errors."""
    assert isinstance(exc, InferenceError), repr(exc)
    assert type(exc).__module__.startswith("inference"), type(exc)
    assert not isinstance(exc, aiohttp.ClientError | json.JSONDecodeError)
    assert not isinstance(exc, orjson.JSONDecodeError | cattrs.BaseValidationError)


def error_response(exc: HttpResponseError) -> ErrorResponse:
    """The response an HTTP error kept."""
    response = exc.response
    assert isinstance(response, ErrorResponse)
    return response


def assert_released(client: ChatCompletionsClient) -> None:
    """No connection of the client's pool is in use."""
    assert client._transport.pool_stats()[0] == 0


async def wait_until_server_sees_close(server: FaultServer) -> None:
    """Wait (at most 2 s) until the server holds no open connection."""
    for _ in range(200):
        if not server.open_connections:
            break
        await anyio.sleep(0.01)
    assert server.open_connections == 0


async def drain(client: ChatCompletionsClient) -> str:
    """Stream one answer to its end and return its text."""
    stream = await client.complete(messages=HI, stream=True)
    async with stream:
        final = await stream.until_done()
    return final.choices[0].message.content or ""


# -- connection-level faults ------------------------------------------------------------------


@pytest.mark.anyio
async def test_connection_refused() -> None:
    """Nothing listens: ServiceRequestError naming the address, after the retries."""
    async with ChatCompletionsClient(refused_url(), model="m", retry=FAST) as client:
        with pytest.raises(ServiceRequestError, match="cannot connect") as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert info.value.attempts == 2
        assert_released(client)


@pytest.mark.anyio
async def test_reset_before_the_response() -> None:
    """Every attempt is reset before a byte of response: ServiceRequestError, pool empty."""
    async with (
        FaultServer(default=reset()) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert info.value.attempts == 2
        assert len(server.attempts) == 2
        assert_released(client)


@pytest.mark.anyio
async def test_reset_mid_stream() -> None:
    """A reset after two events: StreamInterruptedError carrying the two events' text."""
    async with (
        FaultServer(sse(chunk_event("one "), chunk_event("two"), then="reset")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in stream:
                pass
        assert_ours(info.value)
        assert info.value.partial.choices[0].message.content == "one two"
        assert len(server.attempts) == 1
        assert_released(client)
        server.plan(default=sse(chunk_event("recovered")))
        assert await drain(client) == "recovered"


async def cut_body(ex: Exchange) -> bool:
    """A 200 head and half of a JSON body, then a reset."""
    await ex.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Content-Length: 400\r\n\r\n{"id": "chatcmpl-1", "choices": ['
    )
    await anyio.sleep(0.01)
    ex.abort()
    return False


@pytest.mark.anyio
async def test_reset_mid_body_of_a_plain_response_is_not_sent_again() -> None:
    """A non-streamed body cut half way raises ServiceResponseError (an azure-core
    ServiceResponseError) after one attempt: the server answered and may have billed the
    request, so it is not sent again. The connection is dropped; the next call works."""
    async with (
        FaultServer(cut_body, completion()) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        with pytest.raises(ServiceResponseError) as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert isinstance(info.value, azure_exceptions.ServiceResponseError)
        assert info.value.attempts == 1
        assert len(server.attempts) == 1
        assert_released(client)
        assert (await client.complete(messages=HI)).choices[0].message.content == "Hello!"
        assert len(server.attempts) == 2


@pytest.mark.anyio
async def test_stall_mid_stream() -> None:
    """A stream that stops sending raises IdleTimeoutError; both ends drop the connection."""
    async with (
        FaultServer(sse(chunk_event("so far"), then="stall")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=STALL) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(IdleTimeoutError) as info:
            async for _ in stream:
                pass
        assert_ours(info.value)
        assert stream.partial_completion().choices[0].message.content == "so far"
        assert_released(client)
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_body_ends_without_done() -> None:
    """A body that ends cleanly but without [DONE]: StreamInterruptedError with the partial."""
    async with (
        FaultServer(sse(chunk_event("a"), chunk_event("b"), then="eof")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(StreamInterruptedError, match=r"\[DONE\]") as info:
            async with stream:
                async for _ in stream:
                    pass
        assert_ours(info.value)
        assert info.value.partial.choices[0].message.content == "ab"
        assert len(server.attempts) == 1
        assert_released(client)


@pytest.mark.anyio
async def test_broken_chunked_encoding_mid_stream() -> None:
    """Garbage where a chunk size should be, after an event: an error from the tree, no hang.

    aiohttp's C parser stops delivering data (the idle timeout ends the wait); its pure-Python
    parser raises at once (StreamInterruptedError). Either way the text so far is kept.
    """

    async def bad_chunk(ex: Exchange) -> bool:
        event = chunk_event("ok")
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(event) + event + b"\r\n"
        )
        await anyio.sleep(0.05)
        await ex.send(b"zz-not-hex\r\nhello\r\n")
        await ex.wait_for_disconnect()
        return False

    async with (
        FaultServer(bad_chunk) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=STALL) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises((StreamInterruptedError, IdleTimeoutError)) as info:
            async for _ in stream:
                pass
        assert_ours(info.value)
        assert stream.partial_completion().choices[0].message.content == "ok"
        assert_released(client)
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_garbage_status_line() -> None:
    """Something that is not HTTP answers: ServiceResponseError, never aiohttp's; not retried
    (the request reached something that answered), and not said to have got no response."""

    async def garbage(ex: Exchange) -> bool:
        await ex.send(b"SPDY/9 what is this\r\n\r\n")
        return False

    async with (
        FaultServer(default=garbage) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ServiceResponseError) as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert len(server.attempts) == 1
        assert info.value.attempts == 1
        assert "before a response arrived" not in str(info.value)
        assert "SPDY/9" in str(info.value)
        assert_released(client)


@pytest.mark.anyio
async def test_server_closes_idle_keepalive_connection() -> None:
    """The server drops a pooled keep-alive connection: the next call still succeeds."""

    async def answer_then_close(ex: Exchange) -> bool:
        await completion("first")(ex)
        return False

    async with (
        FaultServer(answer_then_close, default=completion("second")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        assert (await client.complete(messages=HI)).choices[0].message.content == "first"
        await anyio.sleep(0.05)
        assert (await client.complete(messages=HI)).choices[0].message.content == "second"
        assert_released(client)


# -- bodies that are not what the API promises ------------------------------------------------


@pytest.mark.anyio
async def test_malformed_json_as_first_event() -> None:
    """A first event that is not JSON: ResponseDecodeError from complete(), not retried."""
    async with (
        FaultServer(default=sse(b"data: {not json\n\n")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        with pytest.raises(ResponseDecodeError, match="not valid JSON") as info:
            await client.complete(messages=HI, stream=True)
        assert_ours(info.value)
        assert len(server.attempts) == 1
        assert_released(client)


@pytest.mark.anyio
async def test_malformed_json_mid_stream() -> None:
    """A broken event after a good one: ResponseDecodeError while iterating; text kept."""
    async with (
        FaultServer(sse(chunk_event("good"), b'data: {"choices": [\n\n')) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(ResponseDecodeError) as info:
            async for _ in stream:
                pass
        assert_ours(info.value)
        assert stream.partial_completion().choices[0].message.content == "good"
        assert_released(client)


@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "list", "data": [{"embedding": [0.1], "index": 0}]}',  # an embeddings body
        b'{"status": "ok"}',  # a health check, a proxy's own answer
        b'{"id": "x", "choices": {"0": {}}}',  # choices that are no list
    ],
    ids=["embeddings-body", "health-check", "choices-not-a-list"],
)
@pytest.mark.anyio
async def test_a_success_body_that_is_no_chat_completion_is_a_decode_error(body: bytes) -> None:
    """A 200 whose JSON has no 'choices' list came back as an empty ChatCompletions (a batch
    run stored it as a success); it is a ResponseDecodeError naming the keys it had."""
    async with (
        FaultServer(default=raw(200, body)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        with pytest.raises(ResponseDecodeError, match="has no 'choices' list") as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert "check that the endpoint URL points at a chat-completions service" in str(info.value)
        assert len(server.attempts) == 1


@pytest.mark.anyio
async def test_event_of_the_wrong_shape() -> None:
    """Valid JSON of the wrong shape in a stream: ResponseDecodeError, not a cattrs error."""
    bad = b'data: {"choices": [{"index": "zero", "delta": 5}]}\n\n'
    async with (
        FaultServer(sse(bad)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.complete(messages=HI, stream=True)
        assert_ours(info.value)
        assert_released(client)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body", [b'{"choices": "nope"}', b"[]", b'"text"', b'{"choices": [{"message": "hi"}]}']
)
async def test_json_body_of_the_wrong_shape(body: bytes) -> None:
    """A 200 whose JSON is not a completion: ResponseDecodeError keeping the body."""
    async with (
        FaultServer(raw(200, body)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert info.value.status_code == 200
        assert error_response(info.value).body == body
        assert_released(client)


def tool_call_body(arguments: Any) -> dict[str, Any]:
    """A non-streamed body whose one tool call has ``arguments`` as given."""
    body = chat_body()
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
        ],
    }
    return body


def content_body(content: Any) -> dict[str, Any]:
    """A non-streamed body whose message content is ``content``."""
    body = chat_body()
    body["choices"][0]["message"]["content"] = content
    return body


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (content_body(5), "the message's content must be a string or null, got int 5"),
        (content_body(["a"]), "the message's content must be a string or null, got list"),
        (
            tool_call_body({"a": 1}),
            "a tool call's function.arguments must be a string or null, got dict",
        ),
        (tool_call_body(7), "a tool call's function.arguments must be a string or null, got int"),
    ],
)
async def test_non_text_content_or_arguments_in_a_plain_response(
    body: dict[str, Any], field: str
) -> None:
    """A non-streamed answer whose message content or tool-call arguments is not a string is
    refused with ResponseDecodeError naming the field, as a stream refuses it."""
    data = orjson.dumps(body)
    async with (
        FaultServer(raw(200, data)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ResponseDecodeError, match=re.escape(field)) as info:
            await client.complete(messages=HI)
        assert_ours(info.value)
        assert error_response(info.value).body == data
        assert len(server.attempts) == 1
        assert_released(client)


@pytest.mark.anyio
async def test_plain_response_with_null_content_and_string_arguments_is_fine() -> None:
    """Null content beside a tool call with string arguments still parses."""
    async with (
        FaultServer(raw(200, orjson.dumps(tool_call_body('{"a": 1}')))) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        answer = await client.complete(messages=HI)
        message = answer.choices[0].message
        assert message.content is None
        assert message.tool_calls is not None
        assert message.tool_calls[0].function.arguments == '{"a": 1}'


@pytest.mark.anyio
async def test_html_502_from_a_proxy() -> None:
    """A proxy's HTML 502 page: ServiceError (retried) with a readable message and the page."""
    async with (
        FaultServer(
            default=raw(502, HTML_502, content_type="text/html", request_id="proxy-rid")
        ) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ServiceError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 2
        assert_released(client)
    exc = info.value
    assert_ours(exc)
    assert exc.status_code == 502
    assert exc.attempts == 2
    assert exc.request_id == "proxy-rid"
    assert "text/html" in str(exc)
    assert "502 Bad Gateway" in str(exc)
    assert "<center>" not in str(exc)  # tags are stripped from the message
    assert "<html>" in error_response(exc).text()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_200_with_a_non_json_content_type(stream: bool) -> None:
    """A 200 with an HTML page (a captive portal, a misrouted URL): ResponseDecodeError."""
    page = b"<html><body>Please sign in to the Wi-Fi</body></html>"
    async with (
        FaultServer(default=raw(200, page, content_type="text/html")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST, timeout=QUICK) as client,
    ):
        with pytest.raises(ResponseDecodeError, match="text/html") as info:
            await client.complete(messages=HI, stream=stream)
        assert_ours(info.value)
        assert error_response(info.value).body == page
        assert len(server.attempts) == 1
        assert_released(client)


@pytest.mark.anyio
async def test_gigantic_single_event_hits_the_bounded_buffer() -> None:
    """One event larger than the decoder's limit: SSEError, the connection is dropped."""
    giant = b"data: " + b"x" * (17 * 1024 * 1024)
    async with (
        FaultServer(sse(giant, then="stall")) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", retry=FAST, timeout=Timeout(idle=5.0)
        ) as client,
    ):
        with pytest.raises(SSEError, match="client's limit of 16777216 bytes") as info:
            await client.complete(messages=HI, stream=True)
        assert_ours(info.value)
        # The advice is for a client user, who never creates the decoder.
        assert "oversized event" in str(info.value)
        assert "SSEDecoder" not in str(info.value)
        assert "max_buffer_size" not in str(info.value)
        assert len(server.attempts) == 1
        assert_released(client)
        await wait_until_server_sees_close(server)


@pytest.mark.anyio
async def test_429_storm_on_a_stream() -> None:
    """Throttled stream requests are retried after the requested wait, then stream fine."""
    storm = [error(429, headers={"retry-after-ms": "10"}) for _ in range(3)]
    policy = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.02, max_retry_after=0.5)
    async with (
        FaultServer(*storm, default=sse(chunk_event("through"))) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        assert await drain(client) == "through"
        assert len(server.attempts) == 4
        assert_released(client)
        server.plan(default=error(429, headers={"Retry-After": "0"}))
        with pytest.raises(RateLimitError) as info:
            await client.complete(messages=HI, stream=True)
        assert_ours(info.value)
        assert info.value.attempts == 4
        assert_released(client)


@pytest.mark.anyio
async def test_trickle_one_byte_at_a_time() -> None:
    """A server sending one byte at a time still gives the exact answer, streamed or not."""
    events = (chunk_event("Hel"), chunk_event("lo, "), chunk_event("world"))
    async with (
        FaultServer(trickle(completion("slow but sure"), delay=0.0)) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", retry=FAST, timeout=Timeout(idle=5.0)
        ) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "slow but sure"
        server.plan(trickle(sse(*events), delay=0.0))
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            texts = [u.choices[0].delta.content async for u in stream]
        assert texts == ["Hel", "lo, ", "world"]
        assert stream.get_final_completion().choices[0].message.content == "Hello, world"
        assert_released(client)


# -- cancellation -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancel_scope_around_complete() -> None:
    """An anyio cancel scope ending while complete() waits releases the connection."""
    async with (
        FaultServer(stall()) as server,
        ChatCompletionsClient(server.endpoint(), model="m") as client,
    ):
        with anyio.move_on_after(0.2) as scope:
            await client.complete(messages=HI)
        assert scope.cancelled_caught
        assert_released(client)
        await wait_until_server_sees_close(server)
        assert (await client.complete(messages=HI)).choices[0].message.content == "Hello!"


@pytest.mark.anyio
async def test_asyncio_timeout_while_iterating_a_stream() -> None:
    """asyncio.timeout cancelling the iteration of a stalled stream releases the connection."""
    async with (
        FaultServer(sse(chunk_event("a"), then="stall"), default=sse(chunk_event("b"))) as server,
        ChatCompletionsClient(server.endpoint(), model="m") as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                async for _ in stream:
                    pass
        assert_released(client)
        await wait_until_server_sees_close(server)
        assert await drain(client) == "b"


@pytest.mark.anyio
async def test_asyncio_timeout_while_awaiting_a_stream() -> None:
    """Cancelled while complete(stream=True) waits for the first event: connection released."""
    async with (
        FaultServer(sse(then="stall")) as server,
        ChatCompletionsClient(server.endpoint(), model="m") as client,
    ):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.complete(messages=HI, stream=True)
        assert_released(client)
        await wait_until_server_sees_close(server)
        server.plan(default=sse(chunk_event("next")))
        assert await drain(client) == "next"


@pytest.mark.anyio
async def test_task_group_cancellation_releases_every_stream() -> None:
    """Cancelling a task group with many open streams releases all of their connections."""
    count = 20
    async with (
        FaultServer(default=sse(chunk_event("x"), then="stall")) as server,
        ChatCompletionsClient(server.endpoint(), model="m") as client,
    ):
        opened = 0
        all_open = anyio.Event()

        async def consume() -> None:
            nonlocal opened
            stream = await client.complete(messages=HI, stream=True)
            opened += 1
            if opened == count:
                all_open.set()
            async for _ in stream:
                pass

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(consume)
            with anyio.fail_after(10):
                await all_open.wait()
            assert client._transport.pool_stats()[0] == count
            group.cancel_scope.cancel()
        assert_released(client)
        await wait_until_server_sees_close(server)
        server.plan(default=sse(chunk_event("alive")))
        assert await drain(client) == "alive"


@pytest.mark.anyio
async def test_cancel_during_a_slow_token_fetch_leaves_the_client_usable() -> None:
    """Cancelled while the token source is slow: no request is sent; later calls work."""

    class SlowOnce:
        """A token source whose first call hangs."""

        def __init__(self) -> None:
            self.calls = 0

        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            """Hang on the first call; answer at once afterwards."""
            self.calls += 1
            if self.calls == 1:
                await anyio.sleep(30)
            return AccessToken("token-after-cancel", int(time.time()) + 3600)

        async def close(self) -> None:
            """Nothing to close."""

        async def __aenter__(self) -> SlowOnce:
            return self

        async def __aexit__(self, *args: object) -> None:
            return None

    credential = SlowOnce()
    async with (
        FaultServer() as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        with anyio.move_on_after(0.2) as scope:
            await client.complete(messages=HI)
        assert scope.cancelled_caught
        assert server.attempts == []
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "Hello!"
        assert server.attempts[0].headers["authorization"] == "Bearer token-after-cancel"
        assert_released(client)


@pytest.mark.anyio
async def test_breaking_out_of_a_stream_releases_the_connection() -> None:
    """Leaving ``async with stream`` early (break) closes the connection at once."""
    async with (
        FaultServer(default=sse(*(chunk_event(str(n)) for n in range(50)), gap=0.01)) as server,
        ChatCompletionsClient(server.endpoint(), model="m") as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            async for _ in stream:
                break
        assert_released(client)
        await wait_until_server_sees_close(server)
