"""Embeddings: the request body, base64 decoding, the async and sync clients against the
emulator on every endpoint kind, and the chat client's retries, errors and lifecycle."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson
import pytest
from _fault_server import FaultServer, error, raw
from _loopback import serve_in_thread
from aiohttp import web

import inference
from inference import (
    ClientAuthenticationError,
    HttpResponseError,
    InferenceError,
    RequestValidationError,
    ResourceNotFoundError,
    ResponseDecodeError,
    RetryPolicy,
)
from inference._embeddings import decode_base64_vector, embeddings_body, loads_embeddings
from inference._serialization import DecodeFailure
from inference.aio import EmbeddingsClient
from inference.models import EmbeddingEncodingFormat, EmbeddingInputType, EmbeddingsResult
from inference.testing import ENDPOINT_KINDS, Emulator, EmulatorOptions
from inference.testing._embeddings import DEFAULT_DIMENSIONS, vector

FAST = RetryPolicy(max_retries=2, backoff=0.01, max_backoff=0.02)
PATHS = {
    "azure_ai_models": "/models/embeddings",
    "azure_ai_serverless": "/embeddings",
    "azure_openai_deployment": "/openai/deployments/emulator-1/embeddings",
    "azure_openai_v1": "/openai/v1/embeddings",
    "github_models": "/inference/embeddings",
    "openai_compatible": "/v1/embeddings",
}


def embeddings_json(vectors: list[object], model: str = "m") -> bytes:
    """An embeddings response body holding ``vectors`` as given."""
    return orjson.dumps(
        {
            "object": "list",
            "model": model,
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }
    )


# -- protocol: body and decoding ----------------------------------------------------------------


def test_body_has_the_named_parameters_and_extras() -> None:
    """Set parameters go in under their wire names (enums as values); extras at the root and
    the pass-through flag only when there are extras."""
    body, pass_through = embeddings_body(
        {
            "input": ["a", "b"],
            "dimensions": 8,
            "encoding_format": EmbeddingEncodingFormat.BASE64,
            "input_type": EmbeddingInputType.QUERY,
            "model": "m",
        },
        {},
    )
    assert body == {
        "input": ["a", "b"],
        "dimensions": 8,
        "encoding_format": "base64",
        "input_type": "query",
        "model": "m",
    }
    assert pass_through is False
    body, pass_through = embeddings_body({"input": "one"}, {"user": "u1"})
    assert body == {"input": ["one"], "user": "u1"}
    assert pass_through is True


@pytest.mark.parametrize(
    ("params", "extras", "needle"),
    [
        ({"input": []}, {}, "empty input list"),
        ({"input": None}, {}, "needs input=[...]"),
        ({"input": b"bytes"}, {}, "needs input=[...]"),
        ({"input": ["ok", 3]}, {}, "input[1] is int"),
        ({"input": ["x"], "dimensions": 0}, {}, "dimensions must be a positive int"),
        ({"input": ["x"], "dimensions": True}, {}, "dimensions must be a positive int"),
        ({"input": ["x"], "encoding_format": 3}, {}, "encoding_format must be one of"),
        ({"input": ["x"], "input_type": ""}, {}, "input_type must be one of"),
        (
            {"input": ["x"], "encoding_format": "yaml"},
            {},
            "encoding_format must be one of 'base64', 'binary', 'float', 'int8', 'ubinary', "
            "'uint8', got 'yaml' (letter case does not matter)",
        ),
        (
            {"input": ["x"], "input_type": "bogus"},
            {},
            "input_type must be one of 'text', 'query', 'document', got 'bogus' (letter case "
            "does not matter)",
        ),
        ({"input": ["x"], "model": 5}, {}, "model must be a str"),
        ({"input": ["x"]}, {"dimensions": 3}, "collide with named parameters of embed()"),
        ({"input": ["x"]}, {"w": [math.nan]}, "model_extras['w'][0] is nan"),
    ],
)
def test_bad_arguments_are_refused_with_the_fix(
    params: dict[str, object], extras: dict[str, object], needle: str
) -> None:
    """Each bad argument gets a RequestValidationError that names it."""
    with pytest.raises(RequestValidationError) as info:
        embeddings_body(params, extras)
    assert needle in str(info.value)


def test_base64_vectors_decode_to_float32_values() -> None:
    """A base64 embedding is read as little-endian float32 values."""
    values = [0.5, -1.25, 3.0, 1e-3]
    text = base64.b64encode(struct.pack("<4f", *values)).decode()
    decoded = decode_base64_vector(text)
    assert decoded == list(struct.unpack("<4f", struct.pack("<4f", *values)))
    result = loads_embeddings(embeddings_json([text, [1, 2]]))
    assert result.data[0].embedding == decoded
    assert result.data[1].embedding == [1, 2]
    assert result.usage is not None and result.usage.prompt_tokens == 2


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (embeddings_json(["not base64!"]), "not base64"),
        (embeddings_json([base64.b64encode(b"12345").decode()]), "whole number of float32"),
        (b'{"object": "list"}', "no 'data' list"),
        (b"[1, 2]", "not an object"),
        (b"<html>", "not valid JSON"),
        (b'{"data": "\xff"}', "not valid UTF-8: byte 0xff at position 10 (invalid start byte)"),
        (embeddings_json([[[1.0], [2.0]]]), "data[0].embedding holds list values"),
        (embeddings_json([[0.5, "0.25"]]), "data[0].embedding holds str values"),
        (embeddings_json([[0.5], [0.25, True]]), "data[1].embedding[1] is true, not a number"),
        (embeddings_json([[False, 0.5]]), "data[0].embedding[0] is false, not a number"),
        (embeddings_json([[0.5], {"x": 1}]), "data[1].embedding is not a list of numbers"),
        (
            embeddings_json([base64.b64encode(struct.pack("<3f", 0.5, math.nan, 1.0)).decode()]),
            "data[0].embedding[1] is nan, not a finite number",
        ),
        (
            embeddings_json([[1.0], base64.b64encode(struct.pack("<2f", 1.0, -math.inf)).decode()]),
            "data[1].embedding[1] is -inf",
        ),
        (
            b'{"object": "list", "data": [{"embedding": [1.0], "index": 0},'
            b' {"embedding": [2.0], "index": 0}]}',
            "data[1] repeats index 0",
        ),
        (b'{"object": "list", "data": [[1.0]]}', "data[0] is not an embedding object"),
        (
            b'{"object": "list", "data": [{"embedding": [1.0], "index": [0]}]}',
            "data[0].index is [0], not a whole number",
        ),
    ],
)
def test_malformed_answers_are_decode_failures(body: bytes, needle: str) -> None:
    """Bad base64, a ragged byte count, a missing data list, non-JSON, vectors that are not
    flat lists of finite numbers (true and false included) and a repeated index:
    DecodeFailure naming the place."""
    with pytest.raises(DecodeFailure) as info:
        loads_embeddings(body)
    assert needle in str(info.value)


def test_unknown_fields_are_kept() -> None:
    """Fields the library does not know stay reachable, as on chat responses."""
    data = orjson.loads(embeddings_json([[0.1]]))
    data["data"][0]["score"] = 7
    data["service_tier"] = "default"
    result = loads_embeddings(orjson.dumps(data))
    assert result["service_tier"] == "default"
    assert result.data[0]["score"] == 7


# -- the emulator's model -------------------------------------------------------------------------


def test_emulator_vectors_are_deterministic_unit_vectors() -> None:
    """The same text gives the same vector; other texts differ; lengths are 1; a shorter
    vector is the renormalized start of the longer one."""
    a, b = vector("hello"), vector("hello")
    assert a == b and a != vector("hello!")
    assert len(a) == DEFAULT_DIMENSIONS
    assert math.isclose(math.fsum(v * v for v in a), 1.0, rel_tol=1e-5)
    long, short = vector("text", 300), vector("text", 4)
    scale = math.sqrt(math.fsum(v * v for v in long[:4]))
    assert short == pytest.approx([v / scale for v in long[:4]], rel=1e-5)


# -- the async client against the emulator ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
async def test_embed_on_every_endpoint_kind(emulator: Emulator, kind: str) -> None:
    """Each kind's embeddings path is used and the emulator's vectors come back in order."""
    async with EmbeddingsClient(emulator.endpoint(kind), "key") as client:
        result = await client.embed(input=["first text", "second text"])
    assert isinstance(result, EmbeddingsResult)
    assert emulator.requests[-1].path == PATHS[kind]
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding == vector("first text")
    assert result.data[1].embedding == vector("second text")
    assert result.usage is not None and result.usage.total_tokens == 4


@pytest.mark.anyio
async def test_dimensions_base64_and_defaults(emulator: Emulator) -> None:
    """``dimensions`` sets the length; a base64 answer decodes to the float answer exactly;
    client defaults are sent unless a call overrides them."""
    async with EmbeddingsClient(
        emulator.endpoint(), "key", model="embed-small", dimensions=16, input_type="document"
    ) as client:
        floats = await client.embed(input=["vector me"])
        packed = await client.embed(input=["vector me"], encoding_format="base64", dimensions=16)
        shorter = await client.embed(input="vector me", dimensions=5, input_type="query")
    assert len(floats.data[0].embedding) == 16
    assert floats.model == "embed-small"
    assert emulator.requests[1].json["encoding_format"] == "base64"
    assert packed.data[0].embedding == floats.data[0].embedding
    assert shorter.data[0].embedding == vector("vector me", 5)
    assert emulator.requests[0].json == {
        "input": ["vector me"],
        "model": "embed-small",
        "dimensions": 16,
        "input_type": "document",
    }
    assert emulator.requests[2].json["input_type"] == "query"


@pytest.mark.anyio
async def test_encoding_format_and_input_type_in_any_letter_case(emulator: Emulator) -> None:
    """``"BASE64"``, ``"Query"`` (as a call's values and as client defaults) are accepted and
    sent in the spelling services expect (lower case); a base64 answer is still decoded."""
    async with EmbeddingsClient(
        emulator.endpoint(), "key", dimensions=8, input_type="DOCUMENT"
    ) as client:
        packed = await client.embed(input=["x"], encoding_format="BASE64", input_type="Query")
        plain = await client.embed(input=["x"], encoding_format="Float")
    assert emulator.requests[0].json["encoding_format"] == "base64"
    assert emulator.requests[0].json["input_type"] == "query"
    assert emulator.requests[1].json["encoding_format"] == "float"
    assert emulator.requests[1].json["input_type"] == "document"
    assert packed.data[0].embedding == plain.data[0].embedding == vector("x", 8)


def test_encoding_format_and_input_type_in_any_letter_case_sync() -> None:
    """The sync client sends the same canonical spellings."""
    with Emulator(model_type="embeddings").run_in_thread() as emu:
        with inference.EmbeddingsClient(emu.endpoint(), "key", encoding_format="UInt8") as client:
            result = client.embed(input=["x"], input_type="TEXT", dimensions=4)
        assert emu.requests[0].json["encoding_format"] == "uint8"
        assert emu.requests[0].json["input_type"] == "text"
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in result.data[0].embedding)


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["int8", "uint8", "binary", "ubinary"])
async def test_integer_formats_come_back_as_integers(emulator: Emulator, fmt: str) -> None:
    """Quantized formats arrive as whole numbers in their ranges (binary: a bit per value)."""
    async with EmbeddingsClient(emulator.endpoint(), None) as client:
        result = await client.embed(input=["q"], encoding_format=fmt, dimensions=12)
    values = result.data[0].embedding
    assert all(isinstance(v, int) for v in values)
    low, high = {"int8": (-128, 127), "uint8": (0, 255), "binary": (-128, 127)}.get(fmt, (0, 255))
    assert all(low <= v <= high for v in values)
    assert len(values) == (2 if "binary" in fmt else 12)


@pytest.mark.anyio
async def test_model_extras_pass_through(emulator: Emulator) -> None:
    """Extras go at the body root with ``extra-parameters: pass-through``; without the header
    an Azure AI endpoint refuses them (what the header is for)."""
    async with EmbeddingsClient(emulator.endpoint(), "key", model_extras={"user": "u"}) as client:
        await client.embed(input=["x"], model_extras={"truncate": "END"})
    request = emulator.requests[-1]
    assert request.json == {"input": ["x"], "user": "u", "truncate": "END"}
    assert request.headers["extra-parameters"] == "pass-through"
    async with EmbeddingsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(HttpResponseError) as info:
            await client.embed(
                input=["x"], model_extras={"truncate": "END"}, headers={"extra-parameters": "no"}
            )
    assert info.value.status_code == 400
    assert "extra_parameters_not_allowed" in str(info.value)
    async with EmbeddingsClient(emulator.endpoint(), "key") as client:
        await client.embed(input=["x"])
    assert "extra-parameters" not in emulator.requests[-1].headers


@pytest.mark.anyio
async def test_service_validation_errors_map_to_http_errors() -> None:
    """The service's 400 (an empty string here) is an HttpResponseError with its code."""
    async with Emulator() as emu, EmbeddingsClient(emu.endpoint(), "key") as client:
        with pytest.raises(HttpResponseError) as info:
            await client.embed(input=[""])
    assert info.value.status_code == 400
    assert "input[0]" in str(info.value)


@pytest.mark.anyio
async def test_keys_are_checked_like_chat() -> None:
    """The key goes in the kind's header; a wrong key is a ClientAuthenticationError."""
    async with Emulator(EmulatorOptions(key="secret")) as emu:
        async with EmbeddingsClient(emu.endpoint("azure_openai_v1"), "secret") as client:
            await client.embed(input=["ok"])
        assert emu.requests[-1].headers["api-key"] == "secret"
        async with EmbeddingsClient(emu.endpoint(), "wrong") as client:
            with pytest.raises(ClientAuthenticationError):
                await client.embed(input=["no"])


@pytest.mark.anyio
async def test_transient_errors_are_retried() -> None:
    """A 503 and a 429 are retried with the chat client's policy; then the answer parses."""
    async with (
        FaultServer(error(503), error(429), default=raw(200, embeddings_json([[0.5]]))) as server,
        EmbeddingsClient(server.endpoint(), "key", retry=FAST) as client,
    ):
        result = await client.embed(input=["x"])
        assert result.data[0].embedding == [0.5]
        assert len(server.attempts) == 3
        assert server.attempts[-1].target == "/v1/embeddings"
        assert server.attempts[-1].headers["authorization"] == "Bearer key"


def _indexed(*indexes: int) -> bytes:
    """An embeddings body with one vector per index, ``[index, 0.5]``."""
    data = orjson.loads(embeddings_json([[float(i), 0.5] for i in indexes]))
    for item, index in zip(data["data"], indexes, strict=True):
        item["index"] = index
    return orjson.dumps(data)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (_indexed(0), "the answer holds 1 embedding(s) for 2 input texts"),
        (_indexed(0, 1, 2), "the answer holds 3 embedding(s) for 2 input texts"),
        (_indexed(0, 5), "data[1].index is 5, but there are 2 input texts (indexes 0 to 1)"),
    ],
)
async def test_an_answer_that_does_not_match_the_input_is_a_decode_error(
    body: bytes, needle: str
) -> None:
    """Fewer or more embeddings than texts, or an index past the last text, cannot be
    matched to the input: ResponseDecodeError (they were returned as they came)."""
    async with (
        FaultServer(default=raw(200, body)) as server,
        EmbeddingsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.embed(input=["first", "second"])
    assert needle in str(info.value)


@pytest.mark.anyio
async def test_embeddings_sent_out_of_order_come_back_in_input_order() -> None:
    """data[i] is the vector of input[i], as embed() says, whatever order the service sent
    them in (each keeps its index)."""
    async with (
        FaultServer(default=raw(200, _indexed(2, 0, 1))) as server,
        EmbeddingsClient(server.endpoint(), "key") as client,
    ):
        result = await client.embed(input=["a", "b", "c"])
    assert [item.index for item in result.data] == [0, 1, 2]
    assert [item.embedding[0] for item in result.data] == [0.0, 1.0, 2.0]


def test_sync_embed_checks_the_count_too() -> None:
    """The sync client runs the same check (a real aiohttp server in a thread)."""

    async def one_vector(request: web.Request) -> web.Response:
        return web.Response(body=_indexed(0), content_type="application/json")

    with serve_in_thread(one_vector) as url, inference.EmbeddingsClient(url + "/v1", "k") as client:
        with pytest.raises(ResponseDecodeError, match=r"1 embedding\(s\) for 3 input texts"):
            client.embed(input=["a", "b", "c"])
        assert len(client.embed(input=["a"]).data) == 1


@pytest.mark.anyio
async def test_a_body_that_is_not_embeddings_is_a_decode_error() -> None:
    """A 200 with an HTML page is a ResponseDecodeError naming embeddings, with the body."""
    async with (
        FaultServer(default=raw(200, b"<html>hi</html>", content_type="text/html")) as server,
        EmbeddingsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(ResponseDecodeError) as info:
            await client.embed(input=["x"])
    assert "not the expected embeddings JSON" in str(info.value)
    assert info.value.response.text() == "<html>hi</html>"


@pytest.mark.anyio
async def test_get_model_info_and_lifecycle(emulator: Emulator) -> None:
    """get_model_info reads /info where the kind has it and refuses where not; close is
    idempotent and a closed client says so."""
    client = EmbeddingsClient(emulator.endpoint("azure_ai_models"), "key")
    info = await client.get_model_info()
    assert info.model_name == emulator.model
    assert emulator.requests[-1].path == "/models/info"
    assert "EmbeddingsClient azure_ai_models" in repr(client)
    assert client.endpoint.embeddings_url.endswith("/models/embeddings")
    await client.close()
    await client.close()
    with pytest.raises(InferenceError, match="closed"):
        await client.embed(input=["late"])
    async with EmbeddingsClient(emulator.endpoint("openai_compatible"), "key") as other:
        with pytest.raises(ResourceNotFoundError):
            await other.get_model_info()


def test_bad_defaults_fail_in_the_constructor() -> None:
    """Client defaults are checked when the client is built, not at the first call."""
    with pytest.raises(RequestValidationError, match="dimensions"):
        EmbeddingsClient("http://127.0.0.1:9/v1", dimensions=-1)
    with pytest.raises(RequestValidationError, match="collide"):
        EmbeddingsClient("http://127.0.0.1:9/v1", model_extras={"input": ["x"]})


BAD_KEYWORDS = [
    ({"dimension": 5}, "embed() got an unknown parameter dimension=5; did you mean dimensions=?"),
    ({"inputs": ["x"]}, "did you mean input=?"),
    ({"Input": ["x"]}, "embed() got an unknown parameter Input=['x']; did you mean input=?"),
    ({"dimensons": 5}, "unknown parameter dimensons=5; did you mean dimensions=?"),
    ({"encodingFormat": "float"}, "did you mean encoding_format=?"),
    ({"input_types": "query"}, "did you mean input_type=?"),
    ({"header": {}}, "did you mean headers=?"),
    ({"nothing": 1}, 'embed() needs input=["some text"]'),
    ({"encoding_format": "yaml"}, "encoding_format must be one of 'base64'"),
    ({"input_type": "bogus"}, "input_type must be one of 'text', 'query', 'document'"),
]


def embed_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``input=["x"]`` with ``kwargs`` (which may replace ``input`` by a misspelling, or
    leave it out: ``nothing``)."""
    if "nothing" in kwargs:
        return {}  # no input at all
    return {**({} if {"inputs", "Input"} & set(kwargs) else {"input": ["x"]}), **kwargs}


@pytest.mark.parametrize(("kwargs", "needle"), BAD_KEYWORDS)
@pytest.mark.anyio
async def test_bad_embed_keywords_raise_before_sending(
    emulator: Emulator, kwargs: dict[str, Any], needle: str
) -> None:
    """An unknown keyword (with the closest name suggested) or an unknown encoding or input
    type raises RequestValidationError; nothing is sent."""
    async with EmbeddingsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError) as info:
            await client.embed(**embed_arguments(kwargs))
    assert needle in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize(("kwargs", "needle"), BAD_KEYWORDS)
def test_bad_sync_embed_keywords_raise_before_sending(kwargs: dict[str, Any], needle: str) -> None:
    """The sync client raises the same errors, before any connection (nothing listens on
    the endpoint's port: a request would fail with another error)."""
    with (
        inference.EmbeddingsClient("http://127.0.0.1:9", "key", retry=0) as client,
        pytest.raises(RequestValidationError) as info,
    ):
        client.embed(**embed_arguments(kwargs))
    assert needle in str(info.value)


# -- the sync client -------------------------------------------------------------------------------


def test_sync_client_runs_the_same_code() -> None:
    """The sync twin embeds through its portal; errors and model info as the async one."""
    with Emulator(model_type="embeddings").run_in_thread() as emu:
        with inference.EmbeddingsClient(emu.endpoint(), "key", dimensions=8) as client:
            result = client.embed(input=["sync"], encoding_format="base64")
            assert result.data[0].embedding == vector("sync", 8)
            assert client.get_model_info().model_type == "embeddings"
            with pytest.raises(HttpResponseError):
                client.embed(input=[""])
            assert repr(client).startswith("<sync EmbeddingsClient")
        with pytest.raises(InferenceError, match="closed"):
            client.embed(input=["late"])


@pytest.mark.anyio
async def test_embeddings_client_takes_enforce_https() -> None:
    """A key over plain http to a LAN host is refused by default, allowed with the keyword."""
    endpoint = "http://10.0.0.5:8000/v1"
    with pytest.raises(RequestValidationError, match="enforce_https=False"):
        EmbeddingsClient(endpoint, "secret")
    with pytest.raises(RequestValidationError, match="enforce_https=False"):
        inference.EmbeddingsClient(endpoint, "secret")
    async with EmbeddingsClient(endpoint, "secret", enforce_https=False) as client:
        assert client.endpoint.base_url == endpoint
    with inference.EmbeddingsClient(endpoint, "secret", enforce_https=False) as sync_client:
        assert sync_client.endpoint.base_url == endpoint


@pytest.mark.anyio
async def test_embeddings_client_takes_the_pool_and_body_limits() -> None:
    """max_connections and max_response_bytes reach the embeddings client's connection: a
    response over the limit raises ResponseTooLargeError naming it; bad values are refused."""
    from inference import ResponseTooLargeError
    from inference.aio import EmbeddingsClient
    from inference.testing import Emulator

    async with (
        Emulator() as emu,
        EmbeddingsClient(
            emu.endpoint("azure_ai_models"), max_connections=3, max_response_bytes=64
        ) as client,
    ):
        assert client._connection._transport._limit == 3
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes"):
            await client.embed(input=["a long enough input to need more than 64 bytes"])
    with pytest.raises(RequestValidationError, match="max_connections"):
        EmbeddingsClient("http://127.0.0.1:1/v1", max_connections=0)
