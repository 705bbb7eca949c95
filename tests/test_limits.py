"""The attempt loop at its edges, against a loopback server: responses that arrive broken are
not sent again, bodies are read with a cap (compressed ones too), the pool queues requests
beyond its size, ``Timeout.total`` bounds the wait for a token, and secrets stay out of the
messages of errors about undecodable bodies.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import zlib
from functools import cache
from typing import Any

import anyio
import orjson
import pytest
from _fault_server import Exchange, FaultServer, chat_body, completion, raw
from azure.core.credentials import AccessToken

from inference import (
    HttpResponseError,
    ReadTimeoutError,
    RequestValidationError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    ServiceResponseError,
    Timeout,
    TotalTimeoutError,
)
from inference.aio import ChatCompletionsClient
from inference.models import UserMessage

HI = [UserMessage("hi")]
RETRY = RetryPolicy(max_retries=3, backoff=0.0, max_backoff=0.0)
MiB = 2**20


def send(data: bytes, *, then_close: bool = True) -> Any:
    """An action writing ``data`` as the whole answer, then closing (or keeping) the line."""

    async def action(ex: Exchange) -> bool:
        await ex.send(data)
        if then_close:
            await asyncio.sleep(0.02)
            ex.abort()
        return not then_close

    return action


# -- a response that began to arrive is not sent again -----------------------------------------

BROKEN_HEADS = {
    "huge header line": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "unsupported content-encoding (br)": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "unsupported content-encoding (zstd)": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "garbage after the head": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-hex\r\nhello\r\n"
    ),
    "garbage after a complete response": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n"
    ),
    "a header line that is not one": b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    "half a head, then the connection closes": b"HTTP/1.1 200 OK\r\nContent-Le",
}


@pytest.mark.anyio
@pytest.mark.parametrize("head", BROKEN_HEADS.values(), ids=BROKEN_HEADS.keys())
async def test_a_post_that_got_a_broken_head_is_not_sent_again(head: bytes) -> None:
    """Bytes of a response arrived, then it proved broken: one attempt only, an error that
    says the response arrived broken (never "before a response arrived")."""
    async with (
        FaultServer(default=send(head)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=RETRY) as client,
    ):
        with pytest.raises(ServiceResponseError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
    assert info.value.attempts == 1
    assert "before a response arrived" not in str(info.value)
    assert "arrived broken" in str(info.value)


@pytest.mark.anyio
async def test_a_head_that_stops_half_way_is_not_sent_again() -> None:
    """Half a head, then silence: ReadTimeoutError saying the head did not complete; the
    request is not sent again (the server had begun to answer)."""

    async def half_head(ex: Exchange) -> bool:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
        await ex.wait_for_disconnect()
        return False

    async with (
        FaultServer(default=half_head) as server,
        ChatCompletionsClient(
            server.endpoint(), model="m", retry=RETRY, timeout=Timeout(read=0.3)
        ) as client,
    ):
        with pytest.raises(ReadTimeoutError, match="did not complete") as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
    assert info.value.attempts == 1


@pytest.mark.anyio
async def test_a_broken_compressed_body_is_not_sent_again() -> None:
    """A gzip body that does not decompress: ServiceResponseError, one attempt."""
    bad = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello"
    async with (
        FaultServer(default=send(bad, then_close=False)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=RETRY) as client,
    ):
        with pytest.raises(ServiceResponseError, match="arrived broken"):
            await client.complete(messages=HI)
        assert len(server.attempts) == 1


@pytest.mark.anyio
async def test_a_retried_status_is_still_sent_again() -> None:
    """The rule has one exception: a status the policy retries (503 here)."""
    async with (
        FaultServer(raw(503, b"{}")) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=RETRY) as client,
    ):
        assert (await client.complete(messages=HI)).choices[0].message.content == "Hello!"
        assert len(server.attempts) == 2


# -- bounded bodies -----------------------------------------------------------------------------


def rss_bytes() -> int:
    """The resident set size of this process."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * int(__import__("os").sysconf("SC_PAGE_SIZE"))


@cache
def gzip_bomb() -> bytes:
    """About 1 MiB of gzip that inflates to 1 GiB of JSON-looking text."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * MiB
    parts = [packer.compress(b'{"id": "x", "pad": "')]
    parts.extend(packer.compress(block) for _ in range(1024))
    parts.append(packer.compress(b'"}') + packer.flush())
    return b"".join(parts)


@pytest.mark.anyio
async def test_a_gzip_bomb_is_stopped_at_max_response_bytes() -> None:
    """1 MiB of gzip inflating to 1 GiB: ResponseTooLargeError naming the limit and how to
    raise it, after reading little more than the limit (memory growth far below 300 MiB)."""
    bomb = gzip_bomb()
    assert len(bomb) < 2 * MiB
    headers = {"Content-Encoding": "gzip"}
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes())
            await anyio.sleep(0.005)

    async with (
        FaultServer(default=raw(200, bomb, headers=headers)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=RETRY) as client,
    ):
        gc.collect()
        before = rss_bytes()
        async with anyio.create_task_group() as group:
            group.start_soon(sample)
            with pytest.raises(ResponseTooLargeError) as info:
                await client.complete(messages=HI)
            group.cancel_scope.cancel()
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
    assert peak - before < 100 * MiB
    message = str(info.value)
    assert "max_response_bytes" in message
    assert str(8 * MiB) in message
    assert isinstance(info.value, ServiceResponseError)


@pytest.mark.anyio
async def test_max_response_bytes_is_configurable() -> None:
    """A body over the client's max_response_bytes is refused (from its Content-Length, before
    it is read); the same body under the limit is read."""
    body = orjson.dumps(chat_body("x" * 5000))
    async with FaultServer(default=raw(200, body)) as server:
        async with ChatCompletionsClient(
            server.endpoint(), model="m", max_response_bytes=1000
        ) as client:
            with pytest.raises(ResponseTooLargeError, match=r"max_response_bytes \(1000 bytes"):
                await client.complete(messages=HI)
            assert client._transport.pool_stats()[0] == 0
        async with ChatCompletionsClient(
            server.endpoint(), model="m", max_response_bytes=len(body)
        ) as client:
            answer = await client.complete(messages=HI)
            assert answer.choices[0].message.content == "x" * 5000


@pytest.mark.anyio
async def test_a_chunked_body_over_the_limit_is_refused() -> None:
    """A body without Content-Length is counted as it arrives."""
    body = orjson.dumps(chat_body("y" * 50_000))

    async def chunked(ex: Exchange) -> bool:
        await ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for start in range(0, len(body), 4096):
            piece = body[start : start + 4096]
            await ex.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        await ex.send(b"0\r\n\r\n")
        return True

    async with (
        FaultServer(default=chunked) as server,
        ChatCompletionsClient(server.endpoint(), model="m", max_response_bytes=10_000) as client,
    ):
        with pytest.raises(ResponseTooLargeError):
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "100"])
def test_limits_are_validated(bad: object) -> None:
    """max_connections and max_response_bytes take a whole number >= 1."""
    for name in ("max_connections", "max_response_bytes"):
        with pytest.raises(RequestValidationError, match=name):
            ChatCompletionsClient("http://127.0.0.1:9/v1", **{name: bad})


@pytest.mark.anyio
async def test_a_huge_error_body_is_not_kept_whole() -> None:
    """A 400 whose body says it is 512 MiB: the error keeps its first 64 KiB only, and the
    rest is never read."""
    size = 512 * MiB
    sent = 0

    async def huge_error(ex: Exchange) -> bool:
        nonlocal sent
        await ex.send(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        block = b"e" * MiB
        try:
            while sent < size:
                await ex.send(block)
                sent += len(block)
        except ConnectionError:
            pass
        return False

    async with (
        FaultServer(default=huge_error) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=RETRY) as client,
    ):
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=HI)
        assert client._transport.pool_stats()[0] == 0
    response = info.value.response
    assert response is not None
    assert len(response.body) == 64 * 1024
    assert sent < size


# -- the pool -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_requests_beyond_max_connections_queue_for_a_slot() -> None:
    """max_connections=2 and 10 concurrent slow requests: all succeed, though waiting for a
    connection takes far longer than Timeout.connect (that wait is not charged to it)."""
    in_flight = 0
    most = 0

    async def slow(ex: Exchange) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.2)
        in_flight -= 1
        return await completion("slow")(ex)

    async with (
        FaultServer(default=slow) as server,
        ChatCompletionsClient(
            server.endpoint(),
            model="m",
            retry=0,
            max_connections=2,
            timeout=Timeout(connect=0.05, read=5.0),
        ) as client,
    ):
        results: list[str] = []

        async def one() -> None:
            answer = await client.complete(messages=HI)
            results.append(answer.choices[0].message.content or "")

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)
        assert results == ["slow"] * 10
        assert most == 2
        assert client._transport.pool_stats() == (0, 2)


@pytest.mark.anyio
async def test_the_wait_for_a_slot_counts_against_timeout_total() -> None:
    """With every connection busy, Timeout.total ends the wait for one."""

    async def hold(ex: Exchange) -> bool:
        await asyncio.sleep(1.0)
        return await completion()(ex)

    async with (
        FaultServer(default=hold) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=0, max_connections=1) as client,
    ):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: client.complete(messages=HI))
            await anyio.sleep(0.1)
            with pytest.raises(TotalTimeoutError, match="waiting for a connection"):
                await client.complete(messages=HI, timeout=Timeout(total=0.2))
        assert len(server.attempts) == 1


# -- Timeout.total covers the wait for a token ----------------------------------------------


class SlowTokens:
    """An async token credential that takes ``delay`` seconds for each token."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token, late."""
        self.calls += 1
        await anyio.sleep(self.delay)
        return AccessToken(f"tok-{self.calls}", int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> SlowTokens:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@pytest.mark.anyio
async def test_timeout_total_bounds_a_slow_token_source() -> None:
    """A token source that would take 30 s: Timeout.total (0.3 s) ends the wait with
    TotalTimeoutError saying it was waiting for a token; nothing was sent."""
    credential = SlowTokens(30.0)
    async with (
        FaultServer() as server,
        ChatCompletionsClient(
            server.endpoint("/models"), credential, model="m", timeout=Timeout(total=0.3)
        ) as client,
    ):
        with anyio.fail_after(10), pytest.raises(TotalTimeoutError, match="token") as info:
            await client.complete(messages=HI)
        assert server.attempts == []
        # The next call, with time enough, gets its token.
        credential.delay = 0.0
        answer = await client.complete(messages=HI)
        assert answer.choices[0].message.content == "Hello!"
    assert info.value.attempts == 1


class BlockingTokens:
    """A sync token credential whose token source blocks its thread until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token once released (at most 30 s)."""
        self.release.wait(30)
        return AccessToken("tok-sync", int(time.time()) + 3600)


@pytest.mark.anyio
async def test_timeout_total_bounds_a_blocked_sync_token_source() -> None:
    """A sync token source stuck in its thread: Timeout.total ends the call's wait."""
    credential = BlockingTokens()
    try:
        async with (
            FaultServer() as server,
            ChatCompletionsClient(
                server.endpoint("/models"), credential, model="m", timeout=Timeout(total=0.3)
            ) as client,
        ):
            with anyio.fail_after(10), pytest.raises(TotalTimeoutError, match="token"):
                await client.complete(messages=HI)
            assert server.attempts == []
    finally:
        credential.release.set()


# -- secrets in errors about undecodable bodies ---------------------------------------------------

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_the_key_is_scrubbed_from_undecodable_body_errors(stream: bool) -> None:
    """A 200 whose body is not the API's JSON but echoes the key: the message and repr of
    the error hide it; the raw body stays on ``exc.response``."""
    body = f"unexpected: your key was {SECRET}".encode()
    async with (
        FaultServer(default=raw(200, body, content_type="text/plain")) as server,
        ChatCompletionsClient(server.endpoint(), SECRET, model="m", retry=0) as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.complete(messages=HI, stream=stream)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert SECRET not in str(info.value.__cause__)
    if not stream:
        assert "***" in str(info.value)  # the message quotes the body, key hidden
    assert info.value.response is not None
    assert SECRET.encode() in info.value.response.body


@pytest.mark.anyio
async def test_the_key_is_scrubbed_from_a_broken_head_error() -> None:
    """A broken head that echoes the key (in a header line too long to parse)."""
    head = f"HTTP/1.1 200 OK\r\nX-Echo: {SECRET}".encode() + b"a" * 100_000 + b"\r\n\r\n"
    async with (
        FaultServer(default=send(head)) as server,
        ChatCompletionsClient(server.endpoint(), SECRET, model="m", retry=0) as client,
    ):
        with pytest.raises(ServiceResponseError) as info:
            await client.complete(messages=HI)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
