"""get_model_info() asks ``/info`` once per client and keeps the answer (sync and async, chat
and embeddings), against a loopback aiohttp server that counts the requests it gets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _loopback import serve, serve_in_thread
from aiohttp import web

import inference
from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.exceptions import ServiceError

INFO = {"model_name": "counted", "model_type": "chat-completion", "model_provider_name": "tests"}


class InfoServer:
    """Answers ``/info`` with :data:`INFO`, after ``failures`` answers of HTTP 500; keeps the
    path and the ``x-deployment`` header of every request."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.seen: list[tuple[str, str | None]] = []

    async def __call__(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("x-deployment")))
        if self.failures:
            self.failures -= 1
            return web.json_response({"error": {"code": "busy", "message": "x"}}, status=500)
        return web.json_response(INFO)


@pytest.mark.parametrize("client_class", [ChatCompletionsClient, EmbeddingsClient])
@pytest.mark.anyio
async def test_the_first_answer_is_kept(client_class: Any) -> None:
    """Three calls, one request; every call returns the same ModelInfo."""
    server = InfoServer()
    async with serve(server) as url, client_class(f"{url}/models", "key") as client:
        answers = [await client.get_model_info() for _ in range(3)]
    assert server.seen == [("/models/info", None)]
    assert answers[0].model_name == "counted"
    assert answers[1] is answers[0] and answers[2] is answers[0]


@pytest.mark.anyio
async def test_each_client_asks_once_and_other_headers_ask_for_themselves() -> None:
    """A new client asks again; a call whose headers differ (a header may pick another
    deployment) asks once for those headers, in any letter case of their names."""
    server = InfoServer()
    async with serve(server) as url:
        for _ in range(2):
            async with ChatCompletionsClient(f"{url}/models", "key") as client:
                await client.get_model_info()
                await client.get_model_info(headers={"x-deployment": "blue"})
                await client.get_model_info(headers={"X-Deployment": "blue"})
                await client.get_model_info()
    assert server.seen == [("/models/info", None), ("/models/info", "blue")] * 2


@pytest.mark.anyio
async def test_a_failure_is_not_kept() -> None:
    """An error is raised and forgotten: the next call asks again, and its answer is kept."""
    server = InfoServer(failures=1)
    async with (
        serve(server) as url,
        ChatCompletionsClient(f"{url}/models", "key", retry=0) as client,
    ):
        with pytest.raises(ServiceError):
            await client.get_model_info()
        first = await client.get_model_info()
        assert await client.get_model_info() is first
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "client_class", [inference.ChatCompletionsClient, inference.EmbeddingsClient]
)
def test_the_first_answer_is_kept_sync(client_class: Any) -> None:
    """The sync clients keep it too (they run the async clients' code)."""
    server = InfoServer()
    with serve_in_thread(server) as url, client_class(f"{url}/models", "key") as client:
        answers = [client.get_model_info() for _ in range(3)]
    assert server.seen == [("/models/info", None)]
    assert answers[2] is answers[0]


class _TypedInfoServer(InfoServer):
    """:class:`InfoServer` reporting ``model_type``."""

    def __init__(self, model_type: str) -> None:
        super().__init__()
        self.model_type = model_type

    async def __call__(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("x-deployment")))
        return web.json_response({**INFO, "model_type": self.model_type})


@pytest.mark.parametrize(
    ("model_type", "client_class"),
    [("chat-completion", ChatCompletionsClient), ("embeddings", EmbeddingsClient)],
)
@pytest.mark.anyio
async def test_load_client_hands_its_answer_to_the_client(
    model_type: str, client_class: Any
) -> None:
    """The client load_client() returns answers get_model_info() with what load_client read:
    one request to /info in all."""
    server = _TypedInfoServer(model_type)
    async with serve(server) as url:
        client = await inference.aio.load_client(f"{url}/models", "key")
        async with client:
            assert isinstance(client, client_class)
            info = await client.get_model_info()
    assert info.model_type == model_type
    assert server.seen == [("/models/info", None)]


@pytest.mark.parametrize(
    ("model_type", "client_class"),
    [
        ("chat-completion", inference.ChatCompletionsClient),
        ("embeddings", inference.EmbeddingsClient),
    ],
)
def test_load_client_hands_its_answer_to_the_client_sync(
    model_type: str, client_class: Any
) -> None:
    """The same with the sync load_client()."""
    server = _TypedInfoServer(model_type)
    with (
        serve_in_thread(server) as url,
        inference.load_client(f"{url}/models", "key") as client,
    ):
        assert isinstance(client, client_class)
        info = client.get_model_info()
    assert info.model_type == model_type
    assert server.seen == [("/models/info", None)]


class _SlowInfoServer(InfoServer):
    """:class:`InfoServer` that answers after ``delay`` seconds."""

    def __init__(self, failures: int = 0, delay: float = 0.2) -> None:
        super().__init__(failures)
        self.delay = delay

    async def __call__(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return await super().__call__(request)


@pytest.mark.anyio
async def test_concurrent_first_calls_share_one_request() -> None:
    """Ten calls at once, before any answer is kept: one request, one ModelInfo for all."""
    server = _SlowInfoServer()
    async with serve(server) as url, ChatCompletionsClient(f"{url}/models", "key") as client:
        answers = await asyncio.gather(*(client.get_model_info() for _ in range(10)))
    assert server.seen == [("/models/info", None)]
    assert all(answer is answers[0] for answer in answers)


@pytest.mark.anyio
async def test_concurrent_first_calls_share_the_error_and_the_next_call_asks_again() -> None:
    """The shared request fails: every waiting call raises its error; a later call asks."""
    server = _SlowInfoServer(failures=1)
    async with (
        serve(server) as url,
        ChatCompletionsClient(f"{url}/models", "key", retry=0) as client,
    ):
        results = await asyncio.gather(
            *(client.get_model_info() for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, ServiceError) for result in results)
        info = await client.get_model_info()
    assert info.model_name == "counted"
    assert len(server.seen) == 2


@pytest.mark.anyio
async def test_a_waiting_call_asks_itself_when_the_asking_call_is_cancelled() -> None:
    """The call that sent the request is cancelled: a call waiting on it sends its own."""
    server = _SlowInfoServer(delay=0.3)
    async with serve(server) as url, ChatCompletionsClient(f"{url}/models", "key") as client:
        first = asyncio.ensure_future(client.get_model_info())
        await asyncio.sleep(0.05)  # the first call's request is under way
        second = asyncio.ensure_future(client.get_model_info())
        await asyncio.sleep(0.05)
        first.cancel()
        info = await asyncio.wait_for(second, 10)
        with pytest.raises(asyncio.CancelledError):
            await first
    assert info.model_name == "counted"
    assert len(server.seen) == 2


@pytest.mark.anyio
async def test_a_waiting_call_cancelled_with_the_asking_call_stays_cancelled() -> None:
    """Both calls cancelled (the asking one first, as gather and timeouts do): the waiting one
    raises CancelledError instead of asking again; one request in all."""
    server = _SlowInfoServer(delay=0.5)
    async with serve(server) as url, ChatCompletionsClient(f"{url}/models", "key") as client:
        first = asyncio.ensure_future(client.get_model_info())
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(client.get_model_info())
        await asyncio.sleep(0.05)
        first.cancel()
        second.cancel()
        for call in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await call
        await asyncio.sleep(0.6)  # a request sent by a call that should have stopped arrives
    assert len(server.seen) == 1
