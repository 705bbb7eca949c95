"""An async client that is never closed: one ResourceWarning in the project's words, naming
the client and saying how to close it, and its connections closed (instead of aiohttp's
"Unclosed client session" and "Unclosed connector").

The pytest settings turn any other ResourceWarning into an error, including one raised later
by a finalizer: a leftover transport or session would fail these tests.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.models import UserMessage
from inference.testing import Emulator

pytestmark = pytest.mark.anyio


def pooled_protocols(client: ChatCompletionsClient) -> list[Any]:
    """The connections (aiohttp protocols) the client's pool holds."""
    session = client._transport._session
    assert session is not None
    connector: Any = session.connector
    return [proto for conns in connector._conns.values() for proto, _ in conns]


async def test_unclosed_client_warns_once_and_closes_its_connections(emulator: Emulator) -> None:
    """Dropped after a request: one ResourceWarning that names the client and says to use
    ``async with`` or ``await client.close()``; the pooled connection is closed."""
    client = ChatCompletionsClient(emulator.endpoint(), "key", model="m")
    await client.complete(messages=[UserMessage("then forget me")])
    protocols = pooled_protocols(client)
    assert len(protocols) == 1 and protocols[0].transport is not None
    with pytest.warns(ResourceWarning) as seen:
        del client
        gc.collect()
    messages = [str(w.message) for w in seen]
    assert len(messages) == 1, messages
    assert messages[0].startswith("<ChatCompletionsClient ") and emulator.endpoint() in messages[0]
    assert "never closed" in messages[0]
    assert "async with ChatCompletionsClient(...)" in messages[0]
    assert "await client.close()" in messages[0]
    for _ in range(3):
        await asyncio.sleep(0)  # the loop runs the transport's close callbacks
    assert protocols[0].transport is None


async def test_unclosed_embeddings_client_is_named(emulator: Emulator) -> None:
    """The embeddings client's warning names the embeddings client, not the connection
    inside it."""
    client = EmbeddingsClient(emulator.endpoint(), "key", model="e")
    await client.embed(input=["hello"])
    with pytest.warns(ResourceWarning) as seen:
        del client
        gc.collect()
    messages = [str(w.message) for w in seen]
    assert len(messages) == 1, messages
    assert messages[0].startswith("<EmbeddingsClient ")
    assert "async with EmbeddingsClient(...)" in messages[0]


async def test_closed_or_unused_clients_do_not_warn(emulator: Emulator) -> None:
    """A closed client, and one that never sent a request (it holds no connection), are
    dropped without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unused = ChatCompletionsClient(emulator.endpoint(), "key", model="m")
        del unused
        async with ChatCompletionsClient(emulator.endpoint(), "key", model="m") as closed:
            await closed.complete(messages=[UserMessage("closed properly")])
        del closed
        gc.collect()
