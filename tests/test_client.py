"""Tests of the async client's request building, auth, endpoints and lifecycle (emulator)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any, cast

import aiohttp
import pytest
from _recording_server import REFERENCE_DIR
from azure.core.credentials import AccessToken, AzureKeyCredential

from inference import ChatCompletionsClient as SyncChatCompletionsClient
from inference.aio import ChatCompletionsClient
from inference.aio._transport import Response
from inference.exceptions import (
    ClientAuthenticationError,
    InferenceError,
    RequestValidationError,
    ResourceNotFoundError,
)
from inference.models import (
    AssistantMessage,
    ChatCompletionsFunctionToolDefinition,
    ChatCompletionsNamedToolChoice,
    ChatCompletionsNamedToolChoiceFunction,
    ChatCompletionsResponseFormatJSON,
    ChatCompletionsResponseFormatText,
    ChatCompletionsToolChoicePreset,
    CompletionsFinishReason,
    FunctionDefinition,
    ImageContentItem,
    ImageUrl,
    JsonSchemaFormat,
    ModelInfo,
    SystemMessage,
    TextContentItem,
    ToolMessage,
    UserMessage,
)
from inference.testing import Emulator, EmulatorOptions

QUESTION = [
    SystemMessage("You are a helpful assistant."),
    UserMessage("How many languages are in the world?"),
]
QUESTION_WIRE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "How many languages are in the world?"},
]
FLIGHT_TOOL = ChatCompletionsFunctionToolDefinition(
    function=FunctionDefinition(
        name="get_flight_info",
        description="Returns information about the next flight between two cities.",
        parameters={
            "type": "object",
            "properties": {
                "origin_city": {"type": "string", "description": "Where the flight starts"},
                "destination_city": {"type": "string", "description": "The destination"},
            },
            "required": ["origin_city", "destination_city"],
        },
    )
)
FLIGHT_TOOL_WIRE = {
    "type": "function",
    "function": {
        "name": "get_flight_info",
        "description": "Returns information about the next flight between two cities.",
        "parameters": {
            "type": "object",
            "properties": {
                "origin_city": {"type": "string", "description": "Where the flight starts"},
                "destination_city": {"type": "string", "description": "The destination"},
            },
            "required": ["origin_city", "destination_city"],
        },
    },
}


def _spec_parameters() -> set[str]:
    """The body keys ChatCompletionsOptions defines in the service's OpenAPI spec."""
    spec = json.loads(
        (REFERENCE_DIR / "modelinference-2024-05-01-preview.openapi.json").read_text()
    )
    return set(spec["definitions"]["ChatCompletionsOptions"]["properties"])


SPEC_PARAMETERS = _spec_parameters()
KIND_KWARGS: dict[str, dict[str, Any]] = {
    "azure_ai_models": {},
    "azure_ai_serverless": {"endpoint_kind": "azure_ai_serverless"},
    "azure_openai_deployment": {},
    "azure_openai_v1": {},
    "github_models": {"endpoint_kind": "github_models"},
    "openai_compatible": {},
}


def nulls(value: Any, where: str = "body") -> Iterator[str]:
    """The paths of every None value inside JSON-like data."""
    if value is None:
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nulls(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nulls(item, f"{where}[{index}]")


def client_for(
    emu: Emulator, kind: str = "azure_ai_models", **kwargs: Any
) -> ChatCompletionsClient:
    """A client for one endpoint kind of the emulator, with retries off."""
    options = {**KIND_KWARGS[kind], "retry": 0, **kwargs}
    credential = options.pop("credential", "test-key")
    return ChatCompletionsClient(emu.endpoint(kind), credential, **options)


class FakeAsyncTokenCredential:
    """An async token credential (azure-identity shape) that counts its calls."""

    def __init__(self, token: str = "entra-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token valid for an hour."""
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


# -- parameters on the wire ----------------------------------------------------------------


@pytest.mark.anyio
async def test_every_named_parameter_reaches_the_wire(emulator: Emulator) -> None:
    """Every named parameter of complete() is sent under its spec name, with nothing else."""
    async with client_for(emulator) as client:
        result = await client.complete(
            messages=QUESTION,
            frequency_penalty=0.8,
            presence_penalty=0.1,
            temperature=0,
            top_p=1,
            max_tokens=2048,
            stop=["<|endoftext|>"],
            seed=42,
            response_format="text",
            tools=[FLIGHT_TOOL],
            tool_choice="none",
            model="mistral-large",
            n=2,
            user="user-1",
        )
    assert len(result.choices) == 2
    request = emulator.requests[-1]
    assert request.json == {
        "messages": QUESTION_WIRE,
        "frequency_penalty": 0.8,
        "presence_penalty": 0.1,
        "temperature": 0,
        "top_p": 1,
        "max_tokens": 2048,
        "stop": ["<|endoftext|>"],
        "seed": 42,
        "response_format": {"type": "text"},
        "tools": [FLIGHT_TOOL_WIRE],
        "tool_choice": "none",
        "model": "mistral-large",
        "n": 2,
        "user": "user-1",
    }
    # n and user are not parameters of the Azure AI Model Inference API: they need the
    # pass-through header or the service refuses the request.
    assert request.headers["extra-parameters"] == "pass-through"


@pytest.mark.anyio
async def test_spec_parameters_only_send_no_extra_parameters_header(emulator: Emulator) -> None:
    """A request with only spec-defined parameters does not ask for pass-through."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, temperature=0.5, max_tokens=10, seed=1)
    request = emulator.requests[-1]
    assert set(request.json) <= SPEC_PARAMETERS
    assert "extra-parameters" not in request.headers


@pytest.mark.anyio
async def test_stream_and_stream_options_reach_the_wire(emulator: Emulator) -> None:
    """stream=True sends "stream": true and stream_options as given; usage arrives."""
    async with client_for(emulator) as client:
        stream = await client.complete(
            messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            completion = await stream.until_done()
    assert emulator.requests[-1].json == {
        "messages": QUESTION_WIRE,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert completion.usage is not None and completion.usage.total_tokens > 0


@pytest.mark.anyio
async def test_stream_options_without_stream_raises_before_sending(emulator: Emulator) -> None:
    """stream_options without stream=True is refused before any request."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match="stream=True"):
            await client.complete(messages=QUESTION, stream_options={"include_usage": True})
    assert emulator.requests == []


@pytest.mark.anyio
async def test_stop_string_is_sent_as_a_list(emulator: Emulator) -> None:
    """A single stop string goes on the wire as a one-element list."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, stop="END")
    assert emulator.requests[-1].json["stop"] == ["END"]


@pytest.mark.parametrize(
    ("tool_choice", "wire"),
    [
        ("auto", "auto"),
        (ChatCompletionsToolChoicePreset.REQUIRED, "required"),
        (
            ChatCompletionsNamedToolChoice(
                function=ChatCompletionsNamedToolChoiceFunction(name="get_flight_info")
            ),
            {"type": "function", "function": {"name": "get_flight_info"}},
        ),
    ],
)
@pytest.mark.anyio
async def test_tool_choice_reaches_the_wire(
    emulator: Emulator, tool_choice: Any, wire: Any
) -> None:
    """Tool choices (presets and named) are sent in the spec's shape."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, tools=[FLIGHT_TOOL], tool_choice=tool_choice)
    assert emulator.requests[-1].json["tool_choice"] == wire


@pytest.mark.parametrize(
    ("response_format", "wire"),
    [
        ("text", {"type": "text"}),
        ("json_object", {"type": "json_object"}),
        (ChatCompletionsResponseFormatText(), {"type": "text"}),
        (ChatCompletionsResponseFormatJSON(), {"type": "json_object"}),
        ({"type": ChatCompletionsResponseFormatText()}, {"type": "text"}),
        ({"type": ChatCompletionsResponseFormatJSON()}, {"type": "json_object"}),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            JsonSchemaFormat(name="answer", schema={"type": "object"}, strict=True),
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
            },
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
        ),
    ],
)
@pytest.mark.anyio
async def test_response_format_reaches_the_wire(
    emulator: Emulator, response_format: Any, wire: dict[str, Any]
) -> None:
    """Every accepted response_format spelling is sent as its wire dict."""
    messages = [SystemMessage("Answer in JSON."), UserMessage("How many feet are in a mile?")]
    async with client_for(emulator) as client:
        await client.complete(messages=messages, response_format=response_format)
    assert emulator.requests[-1].json["response_format"] == wire


@pytest.mark.parametrize("response_format", ["xml", {"type": "yaml"}, 3, {"type": "json_schema"}])
@pytest.mark.anyio
async def test_unsupported_response_format_raises_before_sending(
    emulator: Emulator, response_format: Any
) -> None:
    """An unsupported response_format raises RequestValidationError and sends nothing."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match="response_format"):
            await client.complete(messages=QUESTION, response_format=response_format)
    with pytest.raises(RequestValidationError, match="response_format"):
        client_for(emulator, response_format=response_format)
    assert emulator.requests == []


# -- defaults and overrides ----------------------------------------------------------------


@pytest.mark.anyio
async def test_client_defaults_apply_and_calls_override(emulator: Emulator) -> None:
    """Constructor defaults go into every request; a call's own values win."""
    defaults: dict[str, Any] = {
        "model": "default-model",
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "temperature": 0.3,
        "top_p": 0.4,
        "max_tokens": 50,
        "response_format": "text",
        "stop": "STOP",
        "tools": [FLIGHT_TOOL],
        "tool_choice": "auto",
        "seed": 7,
    }
    async with client_for(emulator, **defaults) as client:
        await client.complete(messages=QUESTION)
        first = emulator.requests[-1].json
        await client.complete(messages=QUESTION, temperature=0.9, model="other", stop=["X"])
        second = emulator.requests[-1].json
    assert first == {
        "messages": QUESTION_WIRE,
        "model": "default-model",
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "temperature": 0.3,
        "top_p": 0.4,
        "max_tokens": 50,
        "response_format": {"type": "text"},
        "stop": ["STOP"],
        "tools": [FLIGHT_TOOL_WIRE],
        "tool_choice": "auto",
        "seed": 7,
    }
    assert second == {**first, "temperature": 0.9, "model": "other", "stop": ["X"]}


# -- model_extras ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_model_extras_go_to_the_body_root_with_pass_through(emulator: Emulator) -> None:
    """model_extras are merged at the body root and the pass-through header is sent."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, model_extras={"logprobs": True, "top_k": 5})
    request = emulator.requests[-1]
    assert request.json == {"messages": QUESTION_WIRE, "logprobs": True, "top_k": 5}
    assert request.headers["extra-parameters"] == "pass-through"
    assert request.extra_parameters == ["logprobs", "top_k"]


@pytest.mark.anyio
async def test_client_and_call_model_extras_merge(emulator: Emulator) -> None:
    """Client-level model_extras merge with per-call ones; the call wins on the same key."""
    async with client_for(emulator, model_extras={"top_k": 5, "safe_mode": True}) as client:
        await client.complete(messages=QUESTION)
        assert emulator.requests[-1].json == {
            "messages": QUESTION_WIRE,
            "top_k": 5,
            "safe_mode": True,
        }
        assert emulator.requests[-1].headers["extra-parameters"] == "pass-through"
        await client.complete(messages=QUESTION, model_extras={"top_k": 9, "logprobs": True})
    assert emulator.requests[-1].json == {
        "messages": QUESTION_WIRE,
        "top_k": 9,
        "safe_mode": True,
        "logprobs": True,
    }


@pytest.mark.parametrize("key", ["temperature", "messages", "stream", "tools", "seed", "model"])
@pytest.mark.anyio
async def test_model_extras_colliding_with_a_parameter_raise(emulator: Emulator, key: str) -> None:
    """A model_extras key that is a named parameter raises, per call and per client; no request."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=QUESTION, model_extras={key: 1})
    assert f"{key}=..." in str(info.value)
    with pytest.raises(RequestValidationError):
        client_for(emulator, model_extras={key: 1})
    assert emulator.requests == []


@pytest.mark.anyio
async def test_model_extras_may_carry_parameters_the_azure_sdk_does_not_name(
    emulator: Emulator,
) -> None:
    """``n`` in model_extras (as azure-ai-inference code writes it) passes through; giving it
    both by name and in model_extras raises before sending."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, model_extras={"n": 1})
        assert emulator.requests[-1].json == {"messages": QUESTION_WIRE, "n": 1}
        assert emulator.requests[-1].headers["extra-parameters"] == "pass-through"
        with pytest.raises(RequestValidationError, match="both as named parameters"):
            await client.complete(messages=QUESTION, n=2, model_extras={"n": 1})
    assert len(emulator.requests) == 1


# -- headers, api-version, auth ------------------------------------------------------------


@pytest.mark.anyio
async def test_client_and_call_headers(emulator: Emulator) -> None:
    """Client headers go with every request; call headers add to and override them."""
    async with client_for(emulator, headers={"x-client": "c", "x-both": "client"}) as client:
        await client.complete(messages=QUESTION)
        first = emulator.requests[-1].headers
        await client.complete(messages=QUESTION, headers={"x-call": "k", "x-both": "call"})
        second = emulator.requests[-1].headers
        await client.get_model_info(headers={"x-info": "i"})
        info = emulator.requests[-1].headers
    assert (first["x-client"], first["x-both"]) == ("c", "client")
    assert "x-call" not in first
    assert (second["x-client"], second["x-call"], second["x-both"]) == ("c", "k", "call")
    assert (info["x-client"], info["x-info"]) == ("c", "i")
    assert second["Content-Type"] == "application/json"
    assert second["x-ms-client-request-id"] != first["x-ms-client-request-id"]


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [
        ("azure_ai_models", "2024-05-01-preview"),
        ("azure_ai_serverless", "2024-05-01-preview"),
        ("azure_openai_deployment", "2024-10-21"),
        ("azure_openai_v1", None),
        ("github_models", None),
        ("openai_compatible", None),
    ],
)
@pytest.mark.anyio
async def test_api_version_per_endpoint_kind(
    emulator: Emulator, kind: str, api_version: str | None
) -> None:
    """Each endpoint kind sends its api-version query (or none) to its chat path."""
    async with client_for(emulator, kind) as client:
        result = await client.complete(messages=QUESTION)
    assert result.choices[0].message.content
    request = emulator.requests[-1]
    assert request.kind == kind
    assert request.query.get("api-version") == api_version
    if api_version is None:
        assert request.query == {}


@pytest.mark.anyio
async def test_api_version_override_and_none(emulator: Emulator) -> None:
    """api_version= replaces the kind's default; api_version=None sends none."""
    async with client_for(emulator, api_version="2025-04-01") as client:
        await client.complete(messages=QUESTION)
    assert emulator.requests[-1].query == {"api-version": "2025-04-01"}
    async with client_for(emulator, api_version=None) as client:
        await client.complete(messages=QUESTION)
    assert emulator.requests[-1].query == {}


@pytest.mark.parametrize(
    ("kind", "api_key", "bearer"),
    [
        ("azure_ai_models", True, True),
        ("azure_ai_serverless", True, True),
        ("azure_openai_deployment", True, False),
        ("azure_openai_v1", True, False),
        ("github_models", False, True),
        ("openai_compatible", False, True),
    ],
)
@pytest.mark.anyio
async def test_key_headers_per_endpoint_kind(
    emulator: Emulator, kind: str, api_key: bool, bearer: bool
) -> None:
    """A key goes in api-key and/or Authorization: Bearer, as each kind expects."""
    emulator.options.key = "secret"
    async with client_for(emulator, kind, credential=AzureKeyCredential("secret")) as client:
        await client.complete(messages=QUESTION)
    headers = emulator.requests[-1].headers
    assert (headers.get("api-key") == "secret") is api_key
    assert ("api-key" in headers) is api_key
    assert (headers.get("Authorization") == "Bearer secret") is bearer
    assert ("Authorization" in headers) is bearer


@pytest.mark.parametrize("kind", ["azure_ai_models", "azure_openai_deployment"])
@pytest.mark.anyio
async def test_token_credential_sends_bearer_only(emulator: Emulator, kind: str) -> None:
    """A token credential sends Authorization: Bearer <token> and no api-key."""
    credential = FakeAsyncTokenCredential("entra-token")
    async with client_for(emulator, kind, credential=credential) as client:
        await client.complete(messages=QUESTION)
        await client.complete(messages=QUESTION)
    headers = emulator.requests[-1].headers
    assert headers["Authorization"] == "Bearer entra-token"
    assert "api-key" not in headers
    assert credential.scopes == [("https://cognitiveservices.azure.com/.default",)]


@pytest.mark.anyio
async def test_no_credential_sends_no_auth_headers(emulator: Emulator) -> None:
    """Without a credential no auth header is sent (servers without auth)."""
    async with client_for(emulator, "openai_compatible", credential=None) as client:
        await client.complete(messages=QUESTION)
    headers = emulator.requests[-1].headers
    assert "Authorization" not in headers and "api-key" not in headers


@pytest.mark.anyio
async def test_azure_key_credential_update_takes_effect(emulator: Emulator) -> None:
    """credential.update(new_key) is used from the next call on."""
    credential = AzureKeyCredential("old-key")
    async with client_for(emulator, credential=credential) as client:
        await client.complete(messages=QUESTION)
        assert emulator.requests[-1].headers["api-key"] == "old-key"
        credential.update("new-key")
        emulator.options.key = "new-key"
        await client.complete(messages=QUESTION)
    assert emulator.requests[-1].headers["api-key"] == "new-key"
    assert emulator.requests[-1].headers["Authorization"] == "Bearer new-key"


@pytest.mark.anyio
async def test_wrong_key_is_refused_by_the_service(emulator: Emulator) -> None:
    """A key the emulator does not accept maps to ClientAuthenticationError."""
    emulator.options.key = "right"
    async with client_for(emulator, credential="wrong") as client:
        with pytest.raises(ClientAuthenticationError) as info:
            await client.complete(messages=QUESTION)
    assert info.value.status_code == 401


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://example.com/v1",
        "http://my-resource.services.ai.azure.com/models",
        "http://10.0.0.5/v1",
    ],
)
def test_key_over_plain_http_to_remote_host_is_refused(endpoint: str) -> None:
    """Keys are never sent over plain http to a non-loopback host: construction fails."""
    with pytest.raises(RequestValidationError, match="plain http"):
        ChatCompletionsClient(endpoint, "secret")
    with pytest.raises(RequestValidationError, match="plain http"):
        ChatCompletionsClient(endpoint, AzureKeyCredential("secret"))


@pytest.mark.parametrize(
    ("endpoint", "credential"),
    [
        ("http://example.com/v1", None),
        ("https://example.com/v1", "secret"),
        ("http://localhost:8000/v1", "secret"),
        ("http://127.0.0.1:8000/v1", "secret"),
        ("http://[::1]:8000/v1", "secret"),
    ],
)
def test_allowed_endpoint_and_credential_combinations(endpoint: str, credential: Any) -> None:
    """https, loopback http, and plain http without a credential are all accepted."""
    client = ChatCompletionsClient(endpoint, credential)
    assert client.endpoint.chat_completions_url.endswith("/v1/chat/completions")


@pytest.mark.parametrize("client_class", [ChatCompletionsClient, SyncChatCompletionsClient])
def test_plain_http_refusal_names_enforce_https(client_class: Any) -> None:
    """The refusal (the default, sync and async alike) says how to allow plain http."""
    with pytest.raises(RequestValidationError, match=r"pass enforce_https=False"):
        client_class("http://10.0.0.5:8000/v1", "secret")
    with pytest.raises(RequestValidationError, match="plain http"):
        client_class("http://10.0.0.5:8000/v1", "secret", enforce_https=True)


LAN_ENDPOINTS = ["http://10.0.0.5:8000/v1", "http://ollama.lan:11434/v1", "http://[fd00::5]/v1"]


@pytest.mark.parametrize("endpoint", LAN_ENDPOINTS)
def test_enforce_https_false_allows_a_key_over_plain_http(endpoint: str) -> None:
    """enforce_https=False accepts a key for a plain-http LAN host (checked without connecting)."""
    with SyncChatCompletionsClient(
        endpoint, AzureKeyCredential("secret"), enforce_https=False
    ) as client:
        assert client.endpoint.chat_completions_url == endpoint + "/chat/completions"


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", LAN_ENDPOINTS)
async def test_async_enforce_https_false_allows_a_key_over_plain_http(endpoint: str) -> None:
    """The async client takes enforce_https=False the same way (nothing is connected)."""
    async with ChatCompletionsClient(endpoint, "secret", enforce_https=False) as client:
        assert client.endpoint.chat_completions_url == endpoint + "/chat/completions"


class _LanResolver(aiohttp.abc.AbstractResolver):
    """Resolves one made-up LAN host name to 127.0.0.1 and refuses every other name."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[Any]:
        """127.0.0.1 for the LAN host; anything else is an error (no other address is used)."""
        self.asked.append(host)
        if host != self.host:
            raise OSError(f"no address for {host} in this test")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        """Nothing to release."""


@pytest.mark.anyio
async def test_enforce_https_false_sends_the_key_over_plain_http() -> None:
    """With enforce_https=False the key goes to a plain-http LAN name (mapped to 127.0.0.1)."""
    resolver = _LanResolver("llm.lan")
    async with (
        Emulator(EmulatorOptions(key="lan-key")) as emu,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as session,
    ):
        port = emu.url.rsplit(":", 1)[1]
        endpoint = f"http://llm.lan:{port}/v1"
        with pytest.raises(RequestValidationError, match="enforce_https=False"):
            ChatCompletionsClient(endpoint, "lan-key", session=session)
        async with ChatCompletionsClient(
            endpoint, "lan-key", session=session, enforce_https=False
        ) as client:
            response = await client.complete(messages=QUESTION)
    assert response.choices[0].message.content
    assert resolver.asked == ["llm.lan"]
    (request,) = emu.requests
    assert request.headers["Authorization"] == "Bearer lan-key"
    assert request.headers["Host"] == f"llm.lan:{port}"


# -- messages through the client -----------------------------------------------------------


@pytest.mark.anyio
async def test_tool_round_trip_sends_valid_assistant_message(emulator: Emulator) -> None:
    """The document's tool flow: the response message goes back as an assistant message."""
    messages: list[Any] = [
        SystemMessage("You help with travel."),
        UserMessage("When is the next flight from Miami to Seattle?"),
    ]
    async with client_for(emulator) as client:
        response = await client.complete(messages=messages, tools=[FLIGHT_TOOL], tool_choice="auto")
        choice = response.choices[0]
        assert choice.finish_reason == CompletionsFinishReason.TOOL_CALLS
        message = choice.message
        assert message.tool_calls is not None
        messages.append(message)
        for call in message.tool_calls:
            messages.append(ToolMessage('{"info": "no flights"}', tool_call_id=call.id))
        final = await client.complete(messages=messages, tools=[FLIGHT_TOOL])
    assert final.choices[0].message.content
    body = emulator.requests[-1].json
    assert list(nulls(body)) == []
    assistant = body["messages"][2]
    assert assistant["role"] == "assistant"
    assert set(assistant) <= {"role", "content", "tool_calls"}
    (call,) = assistant["tool_calls"]
    assert set(call) == {"id", "type", "function"}
    assert call["type"] == "function"
    assert call["id"] == message.tool_calls[0].id
    assert call["function"] == {
        "name": "get_flight_info",
        "arguments": message.tool_calls[0].function.arguments,
    }
    assert body["messages"][3] == {
        "role": "tool",
        "content": '{"info": "no flights"}',
        "tool_call_id": message.tool_calls[0].id,
    }


@pytest.mark.anyio
async def test_dict_messages_tools_and_content_items(emulator: Emulator) -> None:
    """Plain OpenAI dicts are accepted for messages, tools, and content items."""
    messages = [
        {"role": "system", "content": "You describe images."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "low"}},
            ],
        },
    ]
    async with client_for(emulator) as client:
        await client.complete(messages=messages, tools=[FLIGHT_TOOL_WIRE])
    body = emulator.requests[-1].json
    assert body == {"messages": messages, "tools": [FLIGHT_TOOL_WIRE]}


@pytest.mark.anyio
async def test_models_with_images_on_the_wire(emulator: Emulator) -> None:
    """The document's image request sends text and image_url items with no nulls."""
    async with client_for(emulator) as client:
        await client.complete(
            messages=[
                SystemMessage("You are a helpful assistant that can describe images."),
                UserMessage(
                    content=[
                        TextContentItem(text="Which conclusion can be extracted?"),
                        ImageContentItem(image=ImageUrl(url="data:image/jpeg;base64,AAAA")),
                    ]
                ),
            ],
            temperature=0,
            top_p=1,
            max_tokens=2048,
        )
    body = emulator.requests[-1].json
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Which conclusion can be extracted?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
    ]
    assert list(nulls(body)) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "robot", "content": "x"},
        {"role": "user"},
        {"role": "tool", "content": "x"},
        {"role": "assistant"},
        {"role": "user", "content": 42},
    ],
)
@pytest.mark.anyio
async def test_bad_dict_messages_raise_before_sending(emulator: Emulator, bad: Any) -> None:
    """Malformed dict messages raise RequestValidationError and nothing reaches the server."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match=r"messages\[1\]"):
            await client.complete(messages=[{"role": "user", "content": "hi"}, bad])
    assert emulator.requests == []


@pytest.mark.anyio
async def test_missing_or_empty_messages_raise_before_sending(emulator: Emulator) -> None:
    """complete() without messages, or with none, raises and sends nothing."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match="messages="):
            await client.complete()
        with pytest.raises(RequestValidationError, match="empty"):
            await client.complete(messages=[])
        with pytest.raises(RequestValidationError, match="JSON-serializable"):
            await client.complete(messages=QUESTION, model_extras={"x": object()})
    assert emulator.requests == []


@pytest.mark.anyio
async def test_raw_body_is_sent_as_given(emulator: Emulator) -> None:
    """A positional JSON body is sent unchanged; mixing it with keywords raises."""
    body = {"messages": QUESTION_WIRE, "temperature": 0.2}
    async with client_for(emulator) as client:
        await client.complete(body)
        assert emulator.requests[-1].json == body
        with pytest.raises(RequestValidationError, match="not both"):
            await client.complete(body, temperature=0.1)
        with pytest.raises(RequestValidationError, match="no 'messages'"):
            await client.complete({"temperature": 0.1})
    assert len(emulator.requests) == 1


# -- model info ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["azure_ai_models", "azure_ai_serverless"])
@pytest.mark.anyio
async def test_get_model_info(emulator: Emulator, kind: str) -> None:
    """get_model_info() GETs <endpoint>/info with the api-version and parses ModelInfo."""
    async with client_for(emulator, kind) as client:
        info = await client.get_model_info()
    assert isinstance(info, ModelInfo)
    assert info.model_name == emulator.model
    assert info.model_type == "chat-completion"
    request = emulator.requests[-1]
    assert request.method == "GET"
    assert request.path.endswith("/info")
    assert request.query == {"api-version": "2024-05-01-preview"}
    assert request.headers["api-key"] == "test-key"
    assert request.body == b""


@pytest.mark.anyio
async def test_get_model_info_on_azure_openai_deployment_is_not_found(emulator: Emulator) -> None:
    """An Azure OpenAI deployment answers /info with 404: ResourceNotFoundError."""
    async with client_for(emulator, "azure_openai_deployment") as client:
        with pytest.raises(ResourceNotFoundError) as info:
            await client.get_model_info()
    assert info.value.status_code == 404
    assert info.value.code == "404"
    assert "Resource not found" in str(info.value)
    assert emulator.requests[-1].path.endswith("/info")


@pytest.mark.parametrize("kind", ["azure_openai_v1", "openai_compatible", "github_models"])
@pytest.mark.anyio
async def test_get_model_info_without_info_route_raises_without_request(
    emulator: Emulator, kind: str
) -> None:
    """Kinds without /info raise ResourceNotFoundError without sending anything."""
    async with client_for(emulator, kind) as client:
        with pytest.raises(ResourceNotFoundError, match="no /info route"):
            await client.get_model_info()
    assert emulator.requests == []


# -- lifecycle -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_close_is_idempotent_and_closed_client_refuses(emulator: Emulator) -> None:
    """close() can be called twice; a closed client raises a clear error and sends nothing."""
    client = client_for(emulator)
    await client.complete(messages=QUESTION)
    await client.close()
    await client.close()
    with pytest.raises(InferenceError, match="closed"):
        await client.complete(messages=QUESTION)
    with pytest.raises(InferenceError, match="closed"):
        await client.get_model_info()
    async with client_for(emulator) as other:
        pass
    with pytest.raises(InferenceError, match="closed"):
        await other.complete(messages=QUESTION)
    assert len(emulator.requests) == 1


@pytest.mark.anyio
async def test_close_without_any_request(emulator: Emulator) -> None:
    """A client that never sent anything closes cleanly."""
    client = client_for(emulator)
    await client.close()
    await client.close()
    assert client._transport.pool_stats() == (0, 0)


@pytest.mark.anyio
async def test_own_session_is_used_and_not_closed(emulator: Emulator) -> None:
    """A caller's aiohttp session carries the requests and stays open after close()."""
    async with aiohttp.ClientSession(headers={"x-session": "mine"}) as session:
        client = client_for(emulator, session=session)
        result = await client.complete(messages=QUESTION)
        assert result.choices[0].message.content
        await client.close()
        assert not session.closed
        assert emulator.requests[-1].headers["x-session"] == "mine"
        async with session.get(emulator.endpoint("openai_compatible") + "/models") as response:
            assert response.status == 200
    assert session.closed


@pytest.mark.anyio
async def test_connection_is_released_after_each_call(emulator: Emulator) -> None:
    """After a call (success or error) no connection stays checked out of the pool."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION)
        assert client._transport.pool_stats()[0] == 0
        with pytest.raises(ClientAuthenticationError):
            await client.complete(messages=QUESTION, headers={"x-emulator-status": "403"})
        assert client._transport.pool_stats()[0] == 0
        stream = await client.complete(messages=QUESTION, stream=True)
        async with stream:
            async for _ in stream:
                pass
        assert client._transport.pool_stats()[0] == 0


def pooled_transports(client: ChatCompletionsClient) -> list[Any]:
    """The asyncio transports of the idle connections in the client's pool."""
    session = client._transport._session
    assert session is not None
    connector: Any = session.connector
    return [protocol.transport for idle in connector._conns.values() for protocol, _ in idle]


@pytest.mark.anyio
async def test_reads_are_bounded_and_large_bodies_arrive_whole(emulator: Emulator) -> None:
    """A connection reads at most 64 KiB at a time (asyncio's default is 256 KiB, allocated
    for every read); a body several times that size still arrives whole, streamed or not."""
    async with client_for(emulator) as client:
        short = await client.complete(messages=QUESTION)
        text = short.choices[0].message.content
        assert text
        [transport] = pooled_transports(client)
        assert transport.max_size == 64 * 1024
        repeat = {"x-emulator-repeat": "3000"}
        whole = await client.complete(messages=QUESTION, headers=repeat)
        expected = " ".join([text] * 3000)
        assert len(expected.encode()) > 4 * 64 * 1024
        assert whole.choices[0].message.content == expected
        stream = await client.complete(messages=QUESTION, headers=repeat, stream=True)
        async with stream:
            streamed = "".join([piece async for piece in stream.text_deltas()])
        assert streamed == expected
        assert all(t.max_size == 64 * 1024 for t in pooled_transports(client))


def test_the_read_bound_leaves_other_transports_alone() -> None:
    """A response whose transport has no usable ``max_size`` (another event loop's, a test
    double's) or no transport at all is taken as it is."""

    class Odd:
        max_size = "large"

    class Protocol:
        def __init__(self, transport: Any) -> None:
            self.transport = transport

    class Head:
        status = 200
        reason = "OK"

        def __init__(self, protocol: Any) -> None:
            self.headers = {"Content-Type": "application/json"}
            self._protocol = protocol

    for protocol in (Protocol(Odd()), Protocol(None), object(), None):
        response = Response(cast(Any, Head(protocol)), 0.0)
        assert (response.status, response.headers["content-type"]) == (200, "application/json")
    assert Odd.max_size == "large"


@pytest.mark.anyio
async def test_assistant_message_from_response_tool_calls_round_trip(emulator: Emulator) -> None:
    """AssistantMessage built from a response's tool_calls is sent without nulls."""
    async with client_for(emulator) as client:
        response = await client.complete(
            messages=[UserMessage("When is the next flight from Miami to Seattle?")],
            tools=[FLIGHT_TOOL],
        )
        calls = response.choices[0].message.tool_calls
        assert calls
        await client.complete(
            messages=[
                UserMessage("When is the next flight from Miami to Seattle?"),
                AssistantMessage(tool_calls=calls),
                ToolMessage("none today", tool_call_id=calls[0].id),
            ],
            tools=[FLIGHT_TOOL],
        )
    body = emulator.requests[-1].json
    assert list(nulls(body)) == []
    assert body["messages"][1]["tool_calls"][0]["id"] == calls[0].id


def test_the_client_knows_the_spec_parameters() -> None:
    """The client's list of parameters the Azure AI API defines (sent without the
    pass-through header) is exactly the spec's ChatCompletionsOptions."""
    from inference._params import SPEC_PARAMS as _SPEC_PARAMS

    assert set(_SPEC_PARAMS) == SPEC_PARAMETERS
