"""load_client(): /info decides between the chat and the embeddings client (async and sync)."""

from __future__ import annotations

import inspect

import pytest

import inference
import inference.aio
from inference import RequestValidationError, ResourceNotFoundError
from inference._load_client import client_kind
from inference.models import ModelInfo
from inference.testing import Emulator
from inference.testing._embeddings import vector


@pytest.mark.anyio
async def test_an_embeddings_model_gets_the_embeddings_client() -> None:
    """/info saying "embeddings" gives an EmbeddingsClient built with the given kwargs."""
    async with Emulator(model_type="embeddings") as emu:
        client = await inference.aio.load_client(emu.endpoint(), "key", dimensions=4, retry=0)
        async with client:
            assert isinstance(client, inference.aio.EmbeddingsClient)
            result = await client.embed(input=["loaded"])
        assert result.data[0].embedding == vector("loaded", 4)
        assert [r.path for r in emu.requests] == ["/models/info", "/models/embeddings"]


@pytest.mark.anyio
async def test_a_chat_model_gets_the_chat_client() -> None:
    """/info saying "chat-completion" gives a ChatCompletionsClient with its defaults."""
    async with Emulator() as emu:
        client = await inference.aio.load_client(emu.endpoint(), "key", model="m1", top_p=0.5)
        async with client:
            assert isinstance(client, inference.aio.ChatCompletionsClient)
            await client.complete(messages=[{"role": "user", "content": "hi"}])
        assert emu.requests[-1].json["model"] == "m1"
        assert emu.requests[-1].json["top_p"] == 0.5


@pytest.mark.parametrize(
    ("model_type", "kind"),
    [
        ("chat-completion", "chat"),
        ("chat_completion", "chat"),
        ("Chat Completions", "chat"),
        ("completion", "chat"),
        ("text_generation", "chat"),
        ("embeddings", "embeddings"),
        ("text-embedding", "embeddings"),
    ],
)
def test_model_types_as_services_spell_them(model_type: str, kind: str) -> None:
    """The spellings services report map to the client that serves them."""
    assert client_kind(ModelInfo(model_name="x", model_type=model_type)) == kind


@pytest.mark.parametrize(
    ("model_type", "needle"),
    [("image_embeddings", "chat completions and text embeddings only"), ("", "no model_type")],
)
def test_other_model_types_are_refused(model_type: str, needle: str) -> None:
    """An image-embeddings model, or none named, is a clear error."""
    with pytest.raises(RequestValidationError) as info:
        client_kind(ModelInfo(model_name="x", model_type=model_type))
    assert needle in str(info.value)


@pytest.mark.anyio
async def test_an_endpoint_without_info_says_what_to_do() -> None:
    """Kinds without /info raise ResourceNotFoundError with a note naming the clients."""
    async with Emulator() as emu:
        with pytest.raises(ResourceNotFoundError) as info:
            await inference.aio.load_client(emu.endpoint("openai_compatible"), "key")
    assert any("construct ChatCompletionsClient" in note for note in info.value.__notes__)


@pytest.mark.anyio
async def test_bad_keywords_are_refused() -> None:
    """A keyword neither client takes is refused before any request; a chat-only one for an
    embeddings model is refused after /info, naming the keyword."""
    async with Emulator(model_type="embeddings") as emu:
        with pytest.raises(RequestValidationError, match="neither"):
            await inference.aio.load_client(emu.endpoint(), "key", temprature=0.1)
        assert emu.requests == []
        with pytest.raises(RequestValidationError, match="temperature="):
            await inference.aio.load_client(emu.endpoint(), "key", temperature=0.1)


MISSPELT_LOAD: list[tuple[tuple[str, ...], dict[str, object], str]] = [
    (("http://127.0.0.1:9",), {"credentail": "k"}, "neither ChatCompletionsClient nor"),
    (("http://127.0.0.1:9",), {"credentail": "k"}, "takes; did you mean credential=?"),
    (("http://127.0.0.1:9",), {"temprature": 0.1}, "did you mean temperature=?"),
    (("http://127.0.0.1:9",), {"dimension": 3}, "did you mean dimensions=?"),
    ((), {"endpont": "http://127.0.0.1:9"}, "load_client() got an unknown parameter endpont="),
    ((), {"endpont": "http://127.0.0.1:9"}, "; did you mean endpoint=?"),
    ((), {}, "load_client() needs the endpoint URL as its first argument"),
]


@pytest.mark.parametrize(("args", "kwargs", "needle"), MISSPELT_LOAD)
@pytest.mark.anyio
async def test_a_misspelt_load_client_keyword_names_the_one_meant(
    args: tuple[str, ...], kwargs: dict[str, object], needle: str
) -> None:
    """A misspelt keyword is refused before any request (nothing listens on the port) with
    the keyword meant, the endpoint and credential included; a missing or misspelt endpoint
    raised Python's bare TypeError."""
    with pytest.raises(RequestValidationError) as info:
        await inference.aio.load_client(*args, **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


@pytest.mark.parametrize(("args", "kwargs", "needle"), MISSPELT_LOAD)
def test_a_misspelt_sync_load_client_keyword_names_the_one_meant(
    args: tuple[str, ...], kwargs: dict[str, object], needle: str
) -> None:
    """The sync twin says the same."""
    with pytest.raises(RequestValidationError) as info:
        inference.load_client(*args, **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_sync_load_client() -> None:
    """The sync twin returns the sync clients."""
    with Emulator(model_type="embeddings").run_in_thread() as emu:
        with inference.load_client(emu.endpoint(), "key") as client:
            assert isinstance(client, inference.EmbeddingsClient)
            assert client.embed(input=["s"]).data[0].embedding == vector("s")
        emu.model_type = "chat-completion"
        with inference.load_client(emu.endpoint(), "key") as chat:
            assert isinstance(chat, inference.ChatCompletionsClient)


def test_sync_and_async_load_client_are_twins() -> None:
    """Same parameters and docstring; the return annotations name each side's clients."""
    sync_sig = inspect.signature(inference.load_client)
    async_sig = inspect.signature(inference.aio.load_client)
    assert sync_sig == async_sig
    assert inference.load_client.__doc__ == inference.aio.load_client.__doc__
    assert inspect.iscoroutinefunction(inference.aio.load_client)
