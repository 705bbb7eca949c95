"""The sync API (inference.ChatCompletionsClient / ChatCompletionsStream) against the emulator.

The emulator runs on a background thread; the sync client runs the async core on its own
portal thread. Connection release is proven with the client's pool counters and the emulator's
``active_streams`` (polled for a bounded time where the server side needs a moment), never
with sleeps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fault_server import DONE, FaultServer, chunk_event, sse
from anyio.from_thread import start_blocking_portal
from azure.core.credentials import AccessToken, AzureKeyCredential

import inference._chunks
from inference import (
    ChatCompletionsClient,
    ChatCompletionsStream,
    InferenceError,
    StreamError,
    StreamInterruptedError,
    StreamServiceError,
)
from inference._portal import Portal, _Call
from inference._streamparser import StreamParser
from inference._sync import _BATCHES_AHEAD, _EVENTS
from inference.aio import AsyncChatCompletionsStream
from inference.models import ChatCompletions, ModelInfo, StreamingChatCompletionsUpdate, UserMessage
from inference.sse import ServerSentEvent
from inference.testing import Emulator

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SLOW = {"x-emulator-token-delay": "0.05"}  # one token every 50 ms: the stream is still open
WAIT = 10.0  # upper bound for polling (seconds); the happy path takes milliseconds


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.005)
    return True


def in_use(client: ChatCompletionsClient) -> int:
    """Connections of the client's pool that are checked out."""
    return client._async._transport.pool_stats()[0]


def all_released(client: ChatCompletionsClient, emulator: Emulator) -> bool:
    """True when no connection is in use and the emulator streams nothing."""
    return in_use(client) == 0 and emulator.active_streams == 0


def quoted(prompt: str) -> str:
    """What the emulator's model says back for a prompt it has no canned answer for."""
    return f'You asked: "{prompt}"'


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator served from a background thread (overrides the async conftest fixture)."""
    with Emulator().run_in_thread() as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[ChatCompletionsClient]:
    """A sync client on the emulator, closed after the test."""
    with ChatCompletionsClient(emulator.endpoint(), "key", model="m") as c:
        yield c


# -- calls and results -------------------------------------------------------------------


def test_complete_returns_the_answer(client: ChatCompletionsClient) -> None:
    """A non-streamed call returns ChatCompletions with the model's answer."""
    result = client.complete(messages=[UserMessage("What is a portal?")])
    assert isinstance(result, ChatCompletions)
    assert quoted("What is a portal?") in (result.choices[0].message.content or "")
    assert result.usage is not None and result.usage.completion_tokens > 0


def test_stream_yields_updates_and_the_final_completion(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """A stream is an iterator of updates; get_final_completion() matches a plain call."""
    prompt = "Stream this please"
    plain = client.complete(messages=[UserMessage(prompt)]).choices[0].message.content
    stream = client.complete(messages=[UserMessage(prompt)], stream=True)
    assert isinstance(stream, ChatCompletionsStream)
    assert iter(stream) is stream
    assert stream.request_id and stream.response_headers["x-request-id"] == stream.request_id
    updates = list(stream)
    assert all(isinstance(u, StreamingChatCompletionsUpdate) for u in updates)
    text = "".join(c.delta.content or "" for u in updates for c in u.choices)
    assert text == plain
    assert stream.finished
    final = stream.get_final_completion()
    assert final.choices[0].message.content == plain
    assert final.choices[0].finish_reason == "stop"
    assert list(stream) == []  # exhausted
    assert client._async._transport.pool_stats() == (0, 1)  # back in the pool, kept alive
    assert wait_until(lambda: emulator.active_streams == 0)


def test_done_inside_a_batch_ends_the_stream_and_keeps_the_connection() -> None:
    """Events after a ``[DONE]`` that came in the same read are dropped; the connection is
    released for reuse."""
    late = chunk_event("after the end")
    server = FaultServer(sse(chunk_event("one "), chunk_event("two") + DONE + late, then="eof"))
    with start_blocking_portal() as portal:
        portal.call(server.start)
        try:
            with ChatCompletionsClient(server.endpoint(), "key", model="m") as client:
                with client.complete(messages=[UserMessage("x")], stream=True) as stream:
                    text = "".join(stream.text_deltas())
                    assert stream.finished
                assert text == "one two"
                assert client._async._transport.pool_stats() == (0, 1)  # kept alive, idle
                assert client.complete(messages=[UserMessage("again")]).choices
                assert len(server.attempts) == 2
        finally:
            portal.call(server.stop)


def test_text_deltas_and_until_done(client: ChatCompletionsClient) -> None:
    """text_deltas() yields only the text; until_done() reads the rest and assembles it."""
    with client.complete(messages=[UserMessage("Deltas")], stream=True) as stream:
        deltas = list(stream.text_deltas())
    assert deltas and all(isinstance(d, str) and d for d in deltas)
    assert quoted("Deltas") in "".join(deltas)
    with client.complete(messages=[UserMessage("Until done")], stream=True) as stream:
        first = next(stream)
        assert first.choices[0].delta.role == "assistant"
        final = stream.until_done()
    assert quoted("Until done") in (final.choices[0].message.content or "")


def test_partial_and_unfinished_final_completion(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """Mid-stream, partial_completion() has what arrived and get_final_completion() raises."""
    with client.complete(messages=[UserMessage("Slowly")], stream=True, headers=SLOW) as stream:
        seen = ""
        for update in stream:
            if update.choices:
                seen += update.choices[0].delta.content or ""
            if len(seen) > 10:
                break
        assert not stream.finished
        partial = stream.partial_completion().choices[0].message.content or ""
        assert partial.startswith(seen)
        with pytest.raises(StreamError, match="until_done"):
            stream.get_final_completion()
    assert wait_until(lambda: all_released(client, emulator))


def test_get_model_info(client: ChatCompletionsClient) -> None:
    """get_model_info() hops to the async client and returns its ModelInfo."""
    info = client.get_model_info()
    assert isinstance(info, ModelInfo)
    assert info.model_name == "emulator-1"


def test_errors_from_the_core_pass_through(client: ChatCompletionsClient) -> None:
    """Exceptions of the async core reach the sync caller unchanged."""
    with pytest.raises(InferenceError, match="messages="):
        client.complete()
    from inference import RateLimitError

    with pytest.raises(RateLimitError):
        client.complete(messages=[UserMessage("x")], headers={"x-emulator-status": "429"}, retry=0)


def test_error_event_in_stream_raises_with_partial_and_releases(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """A service error event mid-stream is raised by next() with .partial; nothing leaks."""
    stream = client.complete(
        messages=[UserMessage("Fail midway")],
        stream=True,
        headers={"x-emulator-error-after": "3"},
    )
    received = []
    with pytest.raises(StreamServiceError) as info:
        for update in stream:
            received.append(update)
    assert len(received) >= 3
    assert info.value.partial is not None
    assert quoted("Fail midway")[:10] in (info.value.partial.choices[0].message.content or "")
    assert list(stream) == []
    stream.close()
    assert wait_until(lambda: all_released(client, emulator))


def test_events_cross_in_batches_and_are_parsed_by_the_consumer(
    client: ChatCompletionsClient, emulator: Emulator, monkeypatch: Any
) -> None:
    """The events of a stream that has arrived cross in a hop or two (the pump's batches,
    taken together when they are ready) and are parsed in the thread that iterates."""
    sizes: list[int] = []  # events per batch of the pump (the end, in the last, not counted)
    handed: list[int] = []  # events read by complete(), parsed or not
    parsed_in: set[int] = set()
    next_events = AsyncChatCompletionsStream._next_events
    hand_over = StreamParser.hand_over
    loads = inference._chunks._loads

    async def spy_events(self: AsyncChatCompletionsStream, limit: int = 4096) -> list[Any]:
        batch = await next_events(self, limit)
        if batch:
            sizes.append(sum(isinstance(e, bytes | ServerSentEvent) for e in batch))
        return batch

    def spy_hand_over(self: StreamParser) -> StreamParser:
        other = hand_over(self)
        handed.append(other.pending)
        return other

    def spy_parse(data: bytes) -> Any:
        parsed_in.add(threading.get_ident())
        return loads(data)

    monkeypatch.setattr(AsyncChatCompletionsStream, "_next_events", spy_events)
    monkeypatch.setattr(StreamParser, "hand_over", spy_hand_over)
    hops = count_hops(client, monkeypatch)
    stream = client.complete(
        messages=[UserMessage("A long one")], stream=True, headers={"x-emulator-repeat": "40"}
    )
    monkeypatch.setattr(inference._chunks, "_loads", spy_parse)  # the chunks' JSON parser
    assert wait_until(lambda: emulator.active_streams == 0)  # the whole answer has arrived
    with stream:
        count = sum(1 for _ in stream)
    assert 500 < count < _EVENTS
    assert hops[0] == "_complete" and set(hops[1:]) == {"receive_ready"}, hops
    assert 1 < len(hops) <= 1 + len(sizes)  # complete(), then at most one hop per batch
    # The first update came with complete() (with the events of the same read); the rest in
    # a few batches, not one per token.
    assert handed[0] >= 1 and handed[0] + sum(sizes) == count and len(sizes) <= 8, sizes
    assert parsed_in == {threading.get_ident()}


def test_a_cut_stream_raises_after_the_updates_with_everything_in_partial(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """A connection cut while the consumer is behind the pump: the updates the pump handed
    over are yielded first, then StreamInterruptedError, whose partial holds all their text
    (assembled in the consuming thread, after the last of them)."""
    headers = {"x-emulator-repeat": "40", "x-emulator-cut-after": "300"}
    stream = client.complete(messages=[UserMessage("A long one")], stream=True, headers=headers)
    assert wait_until(lambda: emulator.active_streams == 0)  # the pump has met the cut
    updates: list[StreamingChatCompletionsUpdate] = []
    with pytest.raises(StreamInterruptedError) as info:
        for update in stream:
            updates.append(update)
    text = "".join(u.choices[0].delta.content or "" for u in updates if u.choices)
    assert text and info.value.partial.choices[0].message.content == text
    assert stream.partial_completion().choices[0].message.content == text
    assert wait_until(lambda: all_released(client, emulator))


def test_the_pump_reads_a_bounded_number_of_batches_ahead(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """A consumer that does not read: the pump stops after a few batches of events, so a long
    stream does not pile up in memory."""
    headers = {"x-emulator-repeat": "200", "x-emulator-token-delay": "0.0001"}
    with client.complete(messages=[UserMessage("Pile")], stream=True, headers=headers) as stream:
        receive = stream._pumped.receive
        assert wait_until(lambda: receive.statistics().current_buffer_used == _BATCHES_AHEAD)
        time.sleep(0.2)  # the pump would go on sending if nothing held it back
        assert receive.statistics().current_buffer_used == _BATCHES_AHEAD
        assert emulator.active_streams == 1  # the answer is still being sent
        assert next(stream).choices
    assert wait_until(lambda: all_released(client, emulator))


def count_hops(client: ChatCompletionsClient, monkeypatch: Any) -> list[str]:
    """Record the name of every function the client's portal runs on its loop for a caller."""
    hops: list[str] = []
    call = client._portal.call

    def spy(func: Callable[[], Any], *args: Any) -> Any:
        inner = func
        while isinstance(inner, functools.partial):
            inner = inner.func
        hops.append(inner.__name__)
        return call(func, *args)

    monkeypatch.setattr(client._portal, "call", spy)
    return hops


def test_one_hop_per_call(
    client: ChatCompletionsClient, emulator: Emulator, monkeypatch: Any
) -> None:
    """A non-streamed call is one hop; a short stream that has arrived costs one hop for
    complete() and a few for its updates, and its results and close() cost none."""
    client.complete(messages=[UserMessage("warm up")])
    hops = count_hops(client, monkeypatch)
    loop = client._portal._start()
    me = threading.get_ident()
    sent: list[object] = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def spy(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me:
            sent.append(callback)
        return call_soon_threadsafe(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", spy)
    client.complete(messages=[UserMessage("one hop")])
    assert hops == ["_complete"] and len(sent) == 1
    client.get_model_info()
    assert hops[1:] == ["get_model_info"] and len(sent) == 2
    del hops[:], sent[:]
    with client.complete(messages=[UserMessage("short")], stream=True) as stream:
        assert wait_until(lambda: emulator.active_streams == 0)  # the whole answer has arrived
        updates = list(stream)
        assert 1 < len(updates) < _EVENTS and stream.finished
        iterated = len(hops)
        assert stream.partial_completion().choices
        assert stream.get_final_completion().choices
    assert len(hops) == iterated  # the results and close() cost no hop
    # What complete() read with the first update, the rest, the end if it came on its own.
    assert hops[0] == "_complete" and set(hops[1:]) == {"receive_ready"} and len(hops) <= 4, hops
    assert len(sent) == len(hops)  # one message to the loop per hop, and nothing else


# -- the portal's life -------------------------------------------------------------------


def loop_threads() -> list[threading.Thread]:
    """The live event-loop threads of sync clients."""
    return [t for t in threading.enumerate() if t.name == "inference-loop"]


def test_one_portal_started_on_first_use_stopped_by_close(emulator: Emulator) -> None:
    """The loop thread starts on the first call, serves every call, and close() ends it."""
    before = set(loop_threads())
    client = ChatCompletionsClient(emulator.endpoint(), "key")
    assert not client._portal.started
    assert set(loop_threads()) == before  # constructing starts nothing
    client.complete(messages=[UserMessage("first")])
    thread = client._portal.thread
    assert thread is not None and thread.is_alive()
    assert set(loop_threads()) - before == {thread}
    for i in range(3):
        client.complete(messages=[UserMessage(f"call {i}")])
        with client.complete(messages=[UserMessage(f"stream {i}")], stream=True) as stream:
            stream.until_done()
        client.get_model_info()
        assert client._portal.thread is thread
    assert set(loop_threads()) - before == {thread}
    client.close()
    assert not thread.is_alive()
    client.close()  # idempotent
    with pytest.raises(InferenceError, match="closed"):
        client.complete(messages=[UserMessage("after close")])


def test_close_without_use_starts_no_loop(emulator: Emulator) -> None:
    """A client closed before any call never starts a thread and refuses later calls."""
    before = set(loop_threads())
    with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        pass
    assert set(loop_threads()) == before
    with pytest.raises(InferenceError, match="closed"):
        client.get_model_info()


def test_garbage_collected_client_stops_its_loop(emulator: Emulator) -> None:
    """Dropping an unclosed client stops its loop thread and closes its session."""
    client = ChatCompletionsClient(emulator.endpoint(), "key")
    client.complete(messages=[UserMessage("then forget me")])
    thread = client._portal.thread
    transport = client._async._transport
    assert thread is not None and thread.is_alive()
    del client
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert transport._session is None


def test_stream_keeps_its_client_alive(emulator: Emulator) -> None:
    """A stream from a client nobody references still works to the end."""
    stream = ChatCompletionsClient(emulator.endpoint(), "key").complete(
        messages=[UserMessage("orphan")], stream=True
    )
    gc.collect()
    assert quoted("orphan") in "".join(stream.text_deltas())
    client = stream._client
    del stream
    client.close()


# -- credentials ---------------------------------------------------------------------------


class FakeTokenCredential:
    """A synchronous azure-identity style credential (get_token) that counts its calls."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the token, valid for an hour."""
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeAsyncTokenCredential:
    """An asynchronous token credential."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the token, valid for an hour."""
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> FakeAsyncTokenCredential:
        """Return the credential."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Nothing to close."""


def test_sync_token_credential(emulator: Emulator) -> None:
    """A sync TokenCredential is asked once (cached) and sent as a bearer token."""
    emulator.options.key = "token-abc"
    credential = FakeTokenCredential("token-abc")
    with ChatCompletionsClient(
        emulator.endpoint(), credential, token_scope="https://example.test/.default"
    ) as client:
        client.complete(messages=[UserMessage("one")])
        with client.complete(messages=[UserMessage("two")], stream=True) as stream:
            stream.until_done()
    assert credential.scopes == [("https://example.test/.default",)]
    assert [r.headers["authorization"] for r in emulator.requests] == ["Bearer token-abc"] * 2


def test_async_token_credential(emulator: Emulator) -> None:
    """An async token credential is awaited on the client's loop."""
    emulator.options.key = "token-xyz"
    credential = FakeAsyncTokenCredential("token-xyz")
    with ChatCompletionsClient(
        emulator.endpoint(), credential, token_scope="https://example.test/.default"
    ) as client:
        client.complete(messages=[UserMessage("one")])
    assert credential.calls == 1
    assert emulator.requests[-1].headers["authorization"] == "Bearer token-xyz"


@pytest.mark.parametrize("kind", ["str", "AzureKeyCredential"])
def test_key_credentials(emulator: Emulator, kind: str) -> None:
    """String keys and AzureKeyCredential (updated between calls) are sent as api-key."""
    emulator.options.key = "k1"
    credential: Any = "k1" if kind == "str" else AzureKeyCredential("k1")
    with ChatCompletionsClient(emulator.endpoint(), credential) as client:
        client.complete(messages=[UserMessage("one")])
        assert emulator.requests[-1].headers["api-key"] == "k1"
        if kind == "AzureKeyCredential":
            credential.update("k2")
            emulator.options.key = "k2"
            client.complete(messages=[UserMessage("two")])
            assert emulator.requests[-1].headers["api-key"] == "k2"


# -- releasing stream connections ----------------------------------------------------------


def test_break_out_of_a_temporary_stream_releases(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """``for u in client.complete(..., stream=True): break`` frees the connection."""
    for _update in client.complete(messages=[UserMessage("break")], stream=True, headers=SLOW):
        break
    assert wait_until(lambda: all_released(client, emulator))


def test_break_inside_with_releases_on_exit(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """Leaving ``with stream:`` after a break has released the pool connection."""
    with client.complete(messages=[UserMessage("with")], stream=True, headers=SLOW) as stream:
        for _update in stream:
            break
        assert in_use(client) == 1
    assert in_use(client) == 0
    assert wait_until(lambda: emulator.active_streams == 0)
    stream.close()  # idempotent
    assert list(stream) == []


def test_exception_in_the_caller_releases(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """An exception raised while iterating (with or without ``with``) frees the connection."""
    stream = client.complete(messages=[UserMessage("oops")], stream=True, headers=SLOW)
    with pytest.raises(ZeroDivisionError), stream:
        for _update in stream:
            1 / 0  # noqa: B018
    assert in_use(client) == 0

    def consume() -> None:
        for _update in client.complete(messages=[UserMessage("oops")], stream=True, headers=SLOW):
            raise KeyError("caller bug")

    with pytest.raises(KeyError):
        consume()
    assert wait_until(lambda: all_released(client, emulator))


def test_garbage_collected_stream_releases(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """An unclosed stream that is garbage collected frees its connection."""
    stream = client.complete(messages=[UserMessage("dropped")], stream=True, headers=SLOW)
    next(stream)
    assert in_use(client) == 1
    inner = stream._pumped.stream
    del stream
    gc.collect()
    assert wait_until(lambda: all_released(client, emulator))
    assert wait_until(lambda: inner._response.closed)


def test_closing_the_client_ends_streams_of_other_threads(
    client: ChatCompletionsClient, emulator: Emulator
) -> None:
    """close() from one thread while another iterates: the reader gets an error, no hang."""
    stream = client.complete(messages=[UserMessage("cut short")], stream=True, headers=SLOW)
    next(stream)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            for _update in stream:
                pass
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    client.close()
    reader.join(WAIT)
    assert not reader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], InferenceError)
    assert "closed" in str(outcome[0])
    assert wait_until(lambda: emulator.active_streams == 0)


# -- threads and event loops ---------------------------------------------------------------


def test_one_client_shared_by_32_threads(client: ChatCompletionsClient, emulator: Emulator) -> None:
    """200 concurrent calls and streams from 32 threads: each gets its own answer."""
    run = uuid.uuid4().hex[:8]

    def task(i: int) -> tuple[str, str]:
        prompt = f"Question {i} of run {run}"
        if i % 2:
            result = client.complete(messages=[UserMessage(prompt)])
            return prompt, result.choices[0].message.content or ""
        with client.complete(messages=[UserMessage(prompt)], stream=True) as stream:
            text = "".join(stream.text_deltas())
            assert stream.get_final_completion().choices[0].message.content == text
        return prompt, text

    pool = concurrent.futures.ThreadPoolExecutor(32)
    futures = [pool.submit(task, i) for i in range(200)]
    _done, pending = concurrent.futures.wait(futures, timeout=50)
    pool.shutdown(wait=not pending, cancel_futures=True)
    assert not pending, "deadlock: calls did not finish"
    for future in futures:
        prompt, text = future.result()
        assert text.startswith(quoted(prompt)), (prompt, text)
    assert len(emulator.requests) == 200
    assert client._portal.thread is not None
    assert len([t for t in loop_threads() if t is client._portal.thread]) == 1
    assert wait_until(lambda: all_released(client, emulator))


def test_sync_api_inside_a_running_event_loop(client: ChatCompletionsClient) -> None:
    """Called from a coroutine (a notebook's loop), the sync API works and does not hang."""

    async def main() -> tuple[str, str]:
        asyncio.get_running_loop()  # a loop runs in this thread
        text = client.complete(messages=[UserMessage("from a coroutine")]).choices[0]
        with client.complete(messages=[UserMessage("streamed in a coroutine")], stream=True) as s:
            streamed = "".join(s.text_deltas())
        return text.message.content or "", streamed

    with concurrent.futures.ThreadPoolExecutor(1) as pool, pytest.warns(RuntimeWarning):
        text, streamed = pool.submit(asyncio.run, main()).result(timeout=30)
    assert quoted("from a coroutine") in text
    assert quoted("streamed in a coroutine") in streamed


def test_sync_api_inside_a_running_event_loop_warns_once(emulator: Emulator) -> None:
    """A sync call inside a running event loop warns once per client, with a RuntimeWarning
    that points to inference.aio; outside a loop it does not warn."""

    async def main(client: ChatCompletionsClient) -> None:
        for prompt in ("one", "two", "three"):
            client.complete(messages=[UserMessage(prompt)])

    with ChatCompletionsClient(emulator.endpoint(), "key", model="m") as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            client.complete(messages=[UserMessage("outside a loop: no warning")])
        expected = r"blocks that loop.*client of inference\.aio"
        with pytest.warns(RuntimeWarning, match=expected) as seen:
            asyncio.run(main(client))
    assert len(seen) == 1
    assert seen[0].filename == __file__  # it points at the sync call


def test_sync_api_on_its_own_loop_thread_fails_clearly(client: ChatCompletionsClient) -> None:
    """On the client's own loop thread a sync call raises (pointing to inference.aio)."""

    async def inner() -> Any:
        return client.complete(messages=[UserMessage("deadlock?")])

    with pytest.raises(InferenceError, match=r"inference\.aio"):
        client._portal.call(inner)
    assert client.complete(messages=[UserMessage("still fine")]).choices


def test_portal_call_cancels_on_interrupt_and_waits_for_clean_up() -> None:
    """An exception in the waiting thread cancels the job and waits for its clean-up."""
    cleaned: list[str] = []
    started = threading.Event()

    async def closer() -> None:
        cleaned.append("closer")

    portal = Portal(closer)

    async def slow() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append("cancelled")
        return "never"

    main = threading.get_ident()

    def interrupt() -> None:
        started.wait(WAIT)
        signal.pthread_kill(main, signal.SIGUSR1)

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, raise_interrupt)
    try:
        threading.Thread(target=interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            portal.call(slow)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert cleaned == ["cancelled"]  # the clean-up ran before call() returned
    assert portal.call(lambda: asyncio.sleep(0, "again")) == "again"
    portal.stop()
    assert cleaned == ["cancelled", "closer"]


def test_a_result_finished_as_the_caller_gave_up_is_discarded() -> None:
    """If the interrupt comes after the loop finished the job, its result is released."""
    discarded: list[str] = []

    async def closer() -> None:
        pass

    async def produce() -> str:
        return "a stream nobody will read"

    async def discard(result: str) -> None:
        await asyncio.sleep(0.01)
        discarded.append(result)

    portal = Portal(closer)
    loop = portal._start()
    job = _Call(produce, discard)
    loop.call_soon_threadsafe(loop.create_task, job.run(portal._calls))
    assert job.wait(WAIT) == "a stream nobody will read"  # the loop finished the job
    portal._abandon(job)  # what call() does when interrupted at that moment
    assert discarded == ["a stream nobody will read"]  # released before _abandon returned
    portal.stop()


def test_a_result_that_outlives_the_cancellation_is_discarded() -> None:
    """A job that still returns a result after its cancellation has it released, in a task of
    its own, before the interrupted caller goes on."""
    discarded: list[str] = []
    started = threading.Event()

    async def closer() -> None:
        pass

    async def stubborn() -> str:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # returns a result anyway
            await asyncio.sleep(30)
        return "made anyway"

    async def discard(result: str) -> None:
        await asyncio.sleep(0.01)  # a point where a cancellation would land
        discarded.append(result)

    portal = Portal(closer)
    loop = portal._start()
    job = _Call(stubborn, discard)
    loop.call_soon_threadsafe(loop.create_task, job.run(portal._calls))
    assert started.wait(WAIT)
    portal._abandon(job)  # what call() does when interrupted
    assert discarded == ["made anyway"]  # released before _abandon returned
    assert job.cancelled  # nobody will read it
    portal.stop()


def test_a_job_cancelled_before_it_started_cleans_up() -> None:
    """A job given up before its task ran never runs (it stays cancelled), and the
    portal stays usable."""
    ran: list[str] = []

    async def closer() -> None:
        pass

    async def never() -> str:
        ran.append("ran")
        return "never"

    portal = Portal(closer)
    job = _Call(never, None)

    async def hand_over_then_cancel() -> bool:
        task = asyncio.get_running_loop().create_task(job.run(portal._calls))
        assert job.cancel()  # the caller gives up: the task exists but has not run
        await task
        return job.cancelled and not job.settle("late", None)  # nothing settles it after

    assert portal.call(hand_over_then_cancel)
    assert ran == []
    assert portal.call(lambda: asyncio.sleep(0, "still usable")) == "still usable"
    portal.stop()


# -- Ctrl-C in a child process --------------------------------------------------------------


def test_ctrl_c_cancels_calls_and_streams() -> None:
    """SIGINT during a stream and during calls cancels them, frees the connection, and the
    client keeps working (the child checks and reports)."""
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(TESTS / "_sigint_child.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as proc:

        def drive() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.strip())
                if line.startswith("READY"):
                    proc.send_signal(signal.SIGINT)

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        try:
            proc.wait(timeout=50)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        driver.join(WAIT)
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    assert lines == [
        "READY stream",
        "OK stream in_use=0 active=0 usable=True",
        "READY call",
        "OK call in_use=0 active=0 usable=True",
        "READY stalled-stream",
        "OK stalled-stream in_use=0 active=0 usable=True",
        "READY thinking-stream",
        "OK thinking-stream in_use=0 active=0 usable=True",
        "DONE",
    ], stderr
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


# -- no warnings in any path ---------------------------------------------------------------

WARNINGS_SCRIPT = """
import gc, sys
from inference import ChatCompletionsClient
from inference.models import UserMessage

endpoint = sys.argv[1]
slow = {"x-emulator-token-delay": "0.05"}

# Normal use, then close (context managers).
with ChatCompletionsClient(endpoint, "key", model="m") as client:
    client.complete(messages=[UserMessage("one")])
    with client.complete(messages=[UserMessage("two")], stream=True) as stream:
        stream.until_done()
    client.get_model_info()

# A stream broken out of, the client closed.
client = ChatCompletionsClient(endpoint, "key")
for update in client.complete(messages=[UserMessage("three")], stream=True, headers=slow):
    break
client.close()

# A stream dropped mid-way and collected, the client dropped without close().
client = ChatCompletionsClient(endpoint, "key")
stream = client.complete(messages=[UserMessage("four")], stream=True, headers=slow)
next(stream)
del stream, client
gc.collect()

# Left for the interpreter exit: a client never closed, with a stream left open.
leftover = ChatCompletionsClient(endpoint, "key")
leftover.complete(messages=[UserMessage("five")])
open_stream = leftover.complete(messages=[UserMessage("six")], stream=True, headers=slow)
next(open_stream)
print("END", flush=True)
"""

_SLOW_CALLBACK = re.compile(r"Executing <.*> took [\d.]+ seconds$")


def test_no_warnings_in_any_path(emulator: Emulator, tmp_path: Path) -> None:
    """Normal use, no close, broken-out and unclosed streams: no warning under -W error and
    dev mode, and the exit safety net closes what was left open."""
    script = tmp_path / "sync_paths.py"
    script.write_text(WARNINGS_SCRIPT)
    env = {**os.environ, "PYTHONWARNINGS": "error", "PYTHONDEVMODE": "1"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script), emulator.endpoint()],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )
    # Dev mode makes asyncio log callbacks slower than 0.1 s; a busy machine can cause those.
    problems = [line for line in proc.stderr.splitlines() if not _SLOW_CALLBACK.match(line)]
    assert problems == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "END"
    assert len(emulator.requests) == 7
    assert wait_until(lambda: emulator.active_streams == 0)


def test_a_portal_left_running_does_not_hold_up_the_interpreter_exit() -> None:
    """A started portal that nobody stopped (still referenced at exit, so never collected)
    is stopped at exit while its thread can still run: the process ends."""
    script = (
        "from inference._portal import Portal\n"
        "async def closer():\n"
        "    print('closed', flush=True)\n"
        "async def answer():\n"
        "    return 42\n"
        "portal = Portal(closer)\n"
        "print(portal.call(answer), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "closed"]  # the closer ran on the way out


def test_a_call_cut_by_the_interpreter_exit_says_so() -> None:
    """A thread whose call is still running when the interpreter exits gets an error saying
    the exit closed the client (not that the user closed it)."""
    script = (
        "import asyncio, threading\n"
        "from inference import _portal\n"
        "async def closer():\n"
        "    pass\n"
        "async def forever():\n"
        "    await asyncio.Event().wait()\n"
        "portal = _portal.Portal(closer)\n"
        "started, errors = threading.Event(), []\n"
        "def work():\n"
        "    started.set()\n"
        "    try:\n"
        "        portal.call(forever)\n"
        "    except Exception as exc:\n"
        "        errors.append(str(exc))\n"
        "thread = threading.Thread(target=work, daemon=True)\n"
        "thread.start()\n"
        "started.wait(10)\n"
        "while not portal._calls:\n"  # the call runs on the loop
        "    threading.Event().wait(0.01)\n"
        "_portal._stop_at_exit()\n"  # what the exit hook does
        "thread.join(10)\n"
        "print(errors)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "closed because the interpreter is exiting" in done.stdout, done.stdout


def test_a_ctrl_c_inside_wait_after_the_result_came_does_not_hang() -> None:
    """Ctrl-C landing in wait() after it took the settled call's lock and before it let go:
    the interrupted caller's clean-up must not wait on that lock again (it hung forever);
    the result goes to discard."""
    discarded: list[str] = []

    async def closer() -> None:
        pass

    async def produce() -> str:
        return "made"

    async def discard(result: str) -> None:
        discarded.append(result)

    portal = Portal(closer)
    loop = portal._start()
    job = _Call(produce, discard)
    loop.call_soon_threadsafe(loop.create_task, job.run(portal._calls))
    assert job._done.acquire(timeout=WAIT)  # wait() took the lock; Ctrl-C lands here
    cleanup = threading.Thread(target=portal._abandon, args=(job,), daemon=True)
    cleanup.start()
    cleanup.join(WAIT)
    assert not cleanup.is_alive(), "the clean-up after Ctrl-C hung"
    assert discarded == ["made"]
    portal.stop()


def test_sys_exit_on_the_loop_is_raised_in_the_calling_thread() -> None:
    """Code of the user's that runs on the client's loop (a response hook) calling sys.exit():
    the call raises SystemExit in the calling thread, as a plain call would, and the loop goes
    on; it was taken for a cancellation ("the client is closed") and ended the loop thread."""
    exits = [True]

    def hook(status: int, headers: Any) -> None:
        if exits and exits.pop():
            sys.exit(5)

    with (
        Emulator().run_in_thread() as emu,
        ChatCompletionsClient(emu.endpoint(), "key", response_hook=hook) as client,
    ):
        with pytest.raises(SystemExit) as info:
            client.complete(messages=[UserMessage("Hi")])
        assert info.value.code == 5
        assert client.complete(messages=[UserMessage("Hi")]).choices[0].message.content
        assert client._portal.thread is not None and client._portal.thread.is_alive()
