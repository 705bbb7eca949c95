"""Fixtures for the opt-in suite that runs against a real OpenAI-compatible server.

This folder is left out of the default test run (``norecursedirs`` in ``pyproject.toml``);
run it with ``bash scripts/real-server-test.sh``, which starts a llama-cpp-python server (or
uses the one ``INFERENCE_REAL_BASE_URL`` names) and runs ``pytest tests/integration``.

``INFERENCE_REAL_BASE_URL``: the server's OpenAI-compatible base URL, for example
``http://127.0.0.1:8089/v1``. ``INFERENCE_REAL_MODEL``: the model name to send (optional;
llama.cpp serves its one model whatever the name). ``INFERENCE_REAL_KEY``: a key, when the
server wants one.

Small local models on one CPU thread are slow: every request here asks for a few tokens only
(``max_tokens``), greedily (``temperature=0``, a fixed ``seed``), so the answers repeat from
run to run on the same server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from _real import BASE_URL_ENV, KEY_ENV, MODEL_ENV, TEST_TIMEOUT, RealServer

from inference import ChatCompletionsClient
from inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test here a long timeout: a small model on one thread is slow."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.fixture(scope="session")
def real_server() -> RealServer:
    """The server named by ``INFERENCE_REAL_BASE_URL``; the run fails without it."""
    base_url = os.environ.get(BASE_URL_ENV, "").strip()
    if not base_url:
        pytest.fail(
            f"{BASE_URL_ENV} is not set: these tests need a real OpenAI-compatible server. "
            "Run `bash scripts/real-server-test.sh` (it starts one), or set "
            f"{BASE_URL_ENV}=http://127.0.0.1:PORT/v1",
            pytrace=False,
        )
    return RealServer(
        base_url=base_url.rstrip("/"),
        model=os.environ.get(MODEL_ENV) or None,
        key=os.environ.get(KEY_ENV) or None,
    )


@pytest.fixture
async def client(
    real_server: RealServer, anyio_backend: str
) -> AsyncIterator[AsyncChatCompletionsClient]:
    """An async client for the real server, with greedy short answers as defaults."""
    async with AsyncChatCompletionsClient(
        real_server.base_url, real_server.key, **real_server.client_kwargs()
    ) as async_client:
        yield async_client


@pytest.fixture
def sync_client(real_server: RealServer) -> Iterator[ChatCompletionsClient]:
    """A sync client for the real server, with greedy short answers as defaults."""
    with ChatCompletionsClient(
        real_server.base_url, real_server.key, **real_server.client_kwargs()
    ) as client:
        yield client
