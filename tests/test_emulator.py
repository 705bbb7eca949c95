"""Tests of the local emulator (inference.testing), driven with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from inference._cli import MAX_IMAGE_BYTES, main
from inference.testing import ENDPOINT_KINDS, MAX_REQUEST_BYTES, Emulator, EmulatorOptions, run
from inference.testing import _model as model

pytest_plugins = ["inference.testing.pytest_plugin"]

FLIGHT_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_flight_info",
        "description": "Returns information about the next flight between two cities. This "
        "includes the name of the airline, flight number and the date and time of the next flight",
        "parameters": {
            "type": "object",
            "properties": {
                "origin_city": {
                    "type": "string",
                    "description": "The name of the city where the flight originates",
                },
                "destination_city": {
                    "type": "string",
                    "description": "The flight destination city",
                },
            },
            "required": ["origin_city", "destination_city"],
        },
    },
}
FLIGHT_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful assistant that help users to find information about "
        "traveling, how to get to places and the different transportations options.",
    },
    {"role": "user", "content": "When is the next flight from Miami to Seattle?"},
]
QUESTION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "How many languages are in the world?"},
]


@pytest.fixture(autouse=True)
def no_server_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test when aiohttp or asyncio logged a warning or error (noisy disconnects)."""
    caplog.set_level(logging.DEBUG)
    yield
    noisy = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.WARNING and r.name.split(".")[0] in ("aiohttp", "asyncio")
    ]
    assert noisy == []


@pytest.fixture
async def emulator(inference_emulator: Emulator) -> Emulator:
    """The plugin's ``inference_emulator`` fixture (so these tests exercise it), as ``emulator``."""
    return inference_emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as client:
        yield client


def chat_url(emulator: Emulator, kind: str = "azure_ai_models") -> str:
    """The chat-completions URL for an endpoint kind."""
    return emulator.endpoint(kind) + "/chat/completions"


def serve_until_ctrl_c(command: list[str]) -> tuple[str, int, str]:
    """Start an emulator process, read its first line, stop it with Ctrl-C (SIGINT); return
    that line, its exit code and what it wrote on stderr."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    return line, process.returncode, stderr


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """POST a JSON body; return status, parsed JSON body and the response."""
    async with session.post(url, data=orjson.dumps(body), headers=headers) as response:
        return response.status, await response.json(content_type=None), response


async def stream_raw(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> bytes:
    """POST a streaming request and return the whole raw body."""
    async with session.post(url, json={**body, "stream": True}, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return await response.read()


def sse_data(raw: bytes) -> list[str]:
    """The ``data`` payloads of an event stream, in order."""
    text = raw.decode().replace("\r\n", "\n")
    payloads = []
    for block in text.split("\n\n"):
        lines = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if lines:
            payloads.append("\n".join(lines))
    return payloads


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Wait (bounded) until ``predicate`` holds; return its final value."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


# ---------------------------------------------------------------------------- routes


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ENDPOINT_KINDS)
async def test_chat_route_for_each_kind(
    emulator: Emulator, session: aiohttp.ClientSession, kind: str
) -> None:
    """Every endpoint kind's chat route answers with a chat.completion body."""
    status, body, response = await post_json(
        session, chat_url(emulator, kind), {"messages": QUESTION}
    )
    assert status == 200
    assert response.headers["x-request-id"]
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == "emulator-1"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "7,000 languages" in choice["message"]["content"]
    assert "tool_calls" not in choice["message"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert emulator.requests[-1].kind == kind


@pytest.mark.anyio
async def test_model_name_from_request_and_deployment(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """The response names the request's model, or the deployment on Azure OpenAI paths."""
    _, body, _ = await post_json(
        session, chat_url(emulator), {"messages": QUESTION, "model": "mistral-large-2407"}
    )
    assert body["model"] == "mistral-large-2407"
    url = f"{emulator.url}/openai/deployments/gpt-4o-deployment/chat/completions"
    _, body, _ = await post_json(session, url, {"messages": QUESTION, "model": "other"})
    assert body["model"] == "gpt-4o-deployment"


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/info", "/models/info"])
async def test_info_routes(emulator: Emulator, session: aiohttp.ClientSession, path: str) -> None:
    """/info and /models/info return ModelInfo."""
    async with session.get(emulator.url + path, params={"api-version": "2024-05-01-preview"}) as r:
        assert r.status == 200
        assert await r.json() == {
            "model_name": "emulator-1",
            "model_type": "chat-completion",
            "model_provider_name": "Emulator",
        }
    assert emulator.requests[-1].query == {"api-version": "2024-05-01-preview"}


@pytest.mark.anyio
async def test_azure_openai_info_is_404(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Azure OpenAI deployments have no /info route, like the real service."""
    async with session.get(emulator.endpoint("azure_openai_deployment") + "/info") as r:
        assert r.status == 404
        assert await r.json() == {"error": {"code": "404", "message": "Resource not found"}}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai_compatible", "azure_openai_v1"])
async def test_models_list(emulator: Emulator, session: aiohttp.ClientSession, kind: str) -> None:
    """GET /v1/models returns the OpenAI list shape."""
    async with session.get(emulator.endpoint(kind) + "/models") as r:
        body = await r.json()
    assert r.status == 200
    assert body["object"] == "list"
    assert body["data"][0]["id"] == "emulator-1"
    assert body["data"][0]["object"] == "model"


@pytest.mark.anyio
async def test_unknown_path_and_wrong_method(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """Unknown paths answer 404 JSON; a known path with the wrong method answers 405 JSON."""
    async with session.post(emulator.url + "/nothing/here", json={}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "404"
    async with session.get(chat_url(emulator)) as r:
        assert r.status == 405
        assert r.headers["Allow"] == "POST"
        assert "POST" in (await r.json())["error"]["message"]


# ---------------------------------------------------------------------------- auth


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [{"api-key": "secret"}, {"Authorization": "Bearer secret"}],
    ids=["api-key", "bearer"],
)
async def test_auth_accepts_both_header_styles(
    emulator: Emulator, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """With a key set, either api-key or Authorization: Bearer is accepted."""
    emulator.options.key = "secret"
    status, _, _ = await post_json(session, chat_url(emulator), {"messages": QUESTION}, headers)
    assert status == 200


@pytest.mark.anyio
async def test_auth_optional_without_key(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """Without a key, requests without credentials are served."""
    status, _, _ = await post_json(session, chat_url(emulator), {"messages": QUESTION})
    assert status == 200


@pytest.mark.anyio
async def test_auth_failure_shapes(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """A missing or wrong key gives 401 in each service's own body shape."""
    emulator.options.key = "secret"
    body_in = {"messages": QUESTION}
    status, body, _ = await post_json(session, chat_url(emulator, "azure_ai_serverless"), body_in)
    assert status == 401
    assert body == {
        "statusCode": 401,
        "message": "Auth token validation failed. Please provide a valid key or a valid AAD token",
    }
    wrong = {"api-key": "wrong"}
    status, body, _ = await post_json(session, chat_url(emulator), body_in, wrong)
    assert status == 401
    assert body["error"]["code"] == "401"
    assert "Access denied" in body["error"]["message"]
    status, body, _ = await post_json(
        session,
        chat_url(emulator, "openai_compatible"),
        body_in,
        {"Authorization": "Bearer wrong"},
    )
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"
    async with session.get(emulator.url + "/info") as r:
        assert r.status == 401


# ---------------------------------------------------------------------------- errors


@pytest.mark.anyio
async def test_content_filter_error(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """The reference document's knife-skills prompt is refused with the content_filter 400."""
    messages = [
        {"role": "system", "content": "You are an AI assistant that helps people."},
        {
            "role": "user",
            "content": "Chopping tomatoes and cutting them into cubes or wedges are great ways "
            "to practice your knife skills.",
        },
    ]
    status, body, _ = await post_json(session, chat_url(emulator), {"messages": messages})
    assert status == 400
    assert body == {
        "error": {
            "message": "The response was filtered due to the prompt triggering Microsoft's "
            "content management policy. Please modify your prompt and retry.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    url = chat_url(emulator, "azure_openai_deployment")
    marker = [{"role": "user", "content": "[content-filter] anything"}]
    status, body, _ = await post_json(session, url, {"messages": marker})
    assert status == 400
    assert body["error"]["code"] == "content_filter"
    assert body["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        ({"temperature": 0}, "'messages' is a required property"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "'wizard'"),
        ({"messages": [{"role": "tool", "content": "62"}]}, "tool_call_id"),
        (
            {"messages": QUESTION, "response_format": {"type": "yaml"}},
            "response_format.type",
        ),
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
    ],
    ids=["json", "messages", "role", "unknown-role", "tool-call-id", "format", "max-tokens"],
)
async def test_validation_errors(
    emulator: Emulator, session: aiohttp.ClientSession, body: Any, expected: str
) -> None:
    """Malformed requests get 400 with a message naming the problem."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(chat_url(emulator), data=data) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert expected in error["message"]
    assert error["code"]


@pytest.mark.anyio
async def test_validation_error_shape_openai(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """On OpenAI-compatible paths the 400 body has message, type, param and code."""
    url = chat_url(emulator, "openai_compatible")
    status, body, _ = await post_json(session, url, {"messages": []})
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "messages"


@pytest.mark.anyio
async def test_extra_parameters(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Unknown body keys need extra-parameters: pass-through on Azure AI paths, and are recorded."""
    body = {"messages": QUESTION, "logprobs": True}
    status, error, _ = await post_json(session, chat_url(emulator), body)
    assert status == 400
    assert "logprobs" in error["error"]["message"]
    assert "pass-through" in error["error"]["message"]
    passthrough = {"extra-parameters": "pass-through"}
    status, _, _ = await post_json(session, chat_url(emulator), body, passthrough)
    assert status == 200
    assert emulator.requests[-1].extra_parameters == ["logprobs"]
    status, _, _ = await post_json(session, chat_url(emulator, "openai_compatible"), body)
    assert status == 200
    drop = {"extra-parameters": "drop"}
    status, _, _ = await post_json(session, chat_url(emulator, "azure_ai_serverless"), body, drop)
    assert status == 200
    assert emulator.requests[-1].extra_parameters == ["logprobs"]


@pytest.mark.anyio
async def test_status_option_with_retry_after(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """The status option answers with that error status, body shape and Retry-After."""
    emulator.options.status = 429
    emulator.options.retry_after = 2
    status, body, response = await post_json(session, chat_url(emulator), {"messages": QUESTION})
    assert status == 429
    assert response.headers["Retry-After"] == "2"
    assert response.headers["retry-after-ms"] == "2000"
    assert body["error"]["code"] == "RateLimitReached"
    url = chat_url(emulator, "azure_openai_deployment")
    status, body, _ = await post_json(session, url, {"messages": QUESTION})
    assert body["error"]["code"] == "429"
    emulator.options.status = None
    status, body, _ = await post_json(
        session, chat_url(emulator), {"messages": QUESTION}, {"x-emulator-status": "503"}
    )
    assert status == 503
    assert body["error"]["code"] == "ServiceUnavailable"


@pytest.mark.anyio
async def test_invalid_option_header(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """A malformed x-emulator-* header is a 400 naming the header."""
    status, body, _ = await post_json(
        session, chat_url(emulator), {"messages": QUESTION}, {"x-emulator-repeat": "many"}
    )
    assert status == 400
    assert "x-emulator-repeat" in body["error"]["message"]


# ---------------------------------------------------------------------------- tool conversations

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tool_call(call_id: str, name: str = "get_flight_info") -> dict[str, Any]:
    """One tool call as an assistant message carries it."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def asks(*call_ids: str) -> dict[str, Any]:
    """An assistant message that calls get_flight_info once per id."""
    return {"role": "assistant", "content": None, "tool_calls": [tool_call(i) for i in call_ids]}


def result(call_id: str, content: str = "No flights.") -> dict[str, Any]:
    """A tool message answering ``call_id``."""
    return {"role": "tool", "tool_call_id": call_id, "content": content}


USER = {"role": "user", "content": "When is the next flight from Miami to Seattle?"}
NAMED_NOPE = {"type": "function", "function": {"name": "nope"}}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "param", "expected"),
    [
        (
            {"messages": [USER, asks("call_1"), {"role": "user", "content": "And?"}]},
            "messages[1].tool_calls",
            ["'messages[1]'", "messages[2] (user)", "'call_1'", "Add one tool message"],
        ),
        (
            {"messages": [USER, asks("call_1")]},
            "messages[1].tool_calls",
            ["'messages[1]'", "the conversation ends", "'call_1'"],
        ),
        (
            {"messages": [USER, asks("call_1", "call_2"), result("call_2")]},
            "messages[1].tool_calls",
            ["'messages[1]'", "1 call ('call_1')"],
        ),
        (
            {"messages": [USER, asks("call_1"), asks("call_2"), result("call_2")]},
            "messages[1].tool_calls",
            ["'messages[1]'", "messages[2] (assistant)", "'call_1'"],
        ),
        (
            {"messages": [USER, result("call_1")]},
            "messages[1].tool_call_id",
            ["'messages[1]'", "'call_1'", "does not follow an assistant message with tool_calls"],
        ),
        (
            {"messages": [USER, asks("call_1"), result("call_1"), USER, result("call_1")]},
            "messages[4].tool_call_id",
            ["'messages[4]'", "does not follow an assistant message with tool_calls"],
        ),
        (
            {"messages": [USER, asks("call_1"), result("call_9")]},
            "messages[2].tool_call_id",
            ["'messages[2].tool_call_id' is 'call_9'", "messages[1]", "'call_1'"],
        ),
        (
            {
                "messages": [
                    USER,
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]},
                ],
            },
            "messages[1].tool_calls[0].id",
            ["'messages[1].tool_calls[0].id' is required"],
        ),
        (
            {"messages": [USER], "tools": [FLIGHT_TOOL], "tool_choice": NAMED_NOPE},
            "tool_choice.function.name",
            ["'nope'", "not among 'tools'", "'get_flight_info'"],
        ),
        (
            {"messages": [USER], "tool_choice": NAMED_NOPE},
            "tool_choice.function.name",
            ["'nope'", "declares no 'tools'"],
        ),
        (
            {"messages": [USER], "tool_choice": "required"},
            "tool_choice",
            ["'required'", "no 'tools'"],
        ),
        (
            {"messages": [USER], "tools": [], "tool_choice": "required"},
            "tool_choice",
            ["'required'", "no 'tools'"],
        ),
    ],
    ids=[
        "call-then-user",
        "call-at-end",
        "one-of-two-answered",
        "call-then-call",
        "tool-after-user",
        "tool-after-finished-turn",
        "tool-answers-unknown-id",
        "call-without-id",
        "named-choice-undeclared",
        "named-choice-no-tools",
        "required-no-tools",
        "required-empty-tools",
    ],
)
@pytest.mark.parametrize(
    "kind", ["azure_ai_models", "azure_openai_deployment", "openai_compatible"]
)
async def test_tool_conversation_rules(
    emulator: Emulator,
    session: aiohttp.ClientSession,
    kind: str,
    body: dict[str, Any],
    param: str,
    expected: list[str],
) -> None:
    """Conversations the real services refuse get HTTP 400 naming the message, id and fix."""
    status, answer, response = await post_json(session, chat_url(emulator, kind), body)
    assert status == 400, answer
    error = answer["error"]
    for text in expected:
        assert text in error["message"]
    assert error["param"] == param
    assert error["code"] == "invalid_value" or error["code"] == "missing_required_parameter"
    if kind == "azure_ai_models":
        assert error["status"] == 400
        assert response.headers["x-ms-error-code"] == error["code"]
    else:
        assert error["type"] == "invalid_request_error"


@pytest.mark.anyio
async def test_tool_conversations_the_services_accept(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """Answered calls (in any order, over several rounds) and a declared named tool pass."""
    messages = [
        USER,
        asks("call_1", "call_2"),
        result("call_2", "Nothing on Monday."),
        result("call_1", "No flights."),
        {"role": "assistant", "content": "There are no flights."},
        {"role": "user", "content": "And from Miami to Boston?"},
        asks("call_3"),
        result("call_3", "A flight at noon."),
    ]
    status, answer, _ = await post_json(
        session, chat_url(emulator), {"messages": messages, "tools": [FLIGHT_TOOL]}
    )
    assert status == 200, answer
    assert (
        answer["choices"][0]["message"]["content"]
        == "According to get_flight_info: A flight at noon."
    )
    body = {
        "messages": [USER],
        "tools": [FLIGHT_TOOL, WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    status, answer, _ = await post_json(session, chat_url(emulator), body)
    assert status == 200, answer
    assert answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    body = {"messages": [USER], "tools": [WEATHER_TOOL], "tool_choice": "required"}
    status, answer, _ = await post_json(session, chat_url(emulator), body)
    assert status == 200, answer
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


# ---------------------------------------------------------------------------- the model


@pytest.mark.anyio
async def test_flight_tool_call(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """The reference document's flight question yields the exact tool-call arguments."""
    body = {"messages": FLIGHT_MESSAGES, "tools": [FLIGHT_TOOL], "tool_choice": "auto"}
    status, answer, _ = await post_json(session, chat_url(emulator), body)
    assert status == 200
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_flight_info"
    arguments = json.loads(call["function"]["arguments"])
    assert arguments == {"origin_city": "Miami", "destination_city": "Seattle"}
    info = "There are no flights available from Miami to Seattle. You should take a train."
    follow_up = [
        *FLIGHT_MESSAGES,
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"info": info})},
    ]
    _, final, _ = await post_json(
        session, chat_url(emulator), {"messages": follow_up, "tools": [FLIGHT_TOOL]}
    )
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["choices"][0]["message"]["content"] == f"According to get_flight_info: {info}"


@pytest.mark.anyio
async def test_tool_choice_none_and_named(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """tool_choice none gives text; a named tool_choice picks that tool."""
    other = {"type": "function", "function": {"name": "other", "parameters": {}}}
    body: dict[str, Any] = {
        "messages": FLIGHT_MESSAGES,
        "tools": [other, FLIGHT_TOOL],
        "tool_choice": "none",
    }
    _, answer, _ = await post_json(session, chat_url(emulator), body)
    assert answer["choices"][0]["finish_reason"] == "stop"
    body["tool_choice"] = {"type": "function", "function": {"name": "get_flight_info"}}
    _, answer, _ = await post_json(session, chat_url(emulator, "openai_compatible"), body)
    message = answer["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["name"] == "get_flight_info"


@pytest.mark.anyio
async def test_json_mode(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """response_format json_object gives content that parses to {"answer": ...}."""
    body = {"messages": QUESTION, "response_format": {"type": "json_object"}}
    _, answer, _ = await post_json(session, chat_url(emulator), body)
    content = json.loads(answer["choices"][0]["message"]["content"])
    assert list(content) == ["answer"]
    assert "7,000" in content["answer"]


@pytest.mark.anyio
async def test_json_schema(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """response_format json_schema gives an object with the schema's required structure."""
    schema = {
        "type": "object",
        "properties": {
            "distances": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "location1": {"type": "string"},
                        "location2": {"type": "string"},
                        "distance": {"type": "integer"},
                    },
                    "required": ["location1", "location2", "distance"],
                },
            }
        },
        "required": ["distances"],
    }
    body = {
        "messages": [{"role": "user", "content": "How far is Seattle from Portland?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "d", "schema": schema}},
    }
    _, answer, _ = await post_json(session, chat_url(emulator), body)
    content = json.loads(answer["choices"][0]["message"]["content"])
    (item,) = content["distances"]
    assert item["location1"] == "Seattle"
    assert item["location2"] == "Portland"
    assert isinstance(item["distance"], int)


@pytest.mark.anyio
async def test_images_acknowledged(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Image items are acknowledged with count, media type and decoded size or the URL."""
    data_url = "data:image/jpeg;base64," + base64.b64encode(b"\xff" * 1234).decode()
    content = [
        {"type": "text", "text": "Which conclusion can be extracted from the following chart?"},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    body = {"messages": [{"role": "user", "content": content}]}
    _, answer, _ = await post_json(session, chat_url(emulator), body)
    text = answer["choices"][0]["message"]["content"]
    assert text.startswith(
        "I received 2 images (image/jpeg, 1234 bytes; https://example.com/a.png)."
    )
    assert "chart" in text


@pytest.mark.anyio
async def test_max_tokens_stop_and_n(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """max_tokens truncates with finish_reason length; stop cuts; n gives n choices."""
    body: dict[str, Any] = {"messages": QUESTION, "max_tokens": 3}
    _, answer, _ = await post_json(session, chat_url(emulator), body)
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["choices"][0]["message"]["content"] == "Linguists estimate that"
    assert answer["usage"]["completion_tokens"] == 3
    body = {"messages": QUESTION, "stop": ["7,000"], "n": 2}
    _, answer, _ = await post_json(session, chat_url(emulator, "openai_compatible"), body)
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert answer["choices"][1]["message"]["content"] == "Linguists estimate that about "
    assert answer["choices"][1]["finish_reason"] == "stop"


def test_fallback_answer_quotes_question() -> None:
    """An unknown question is answered by quoting it."""
    body = {"messages": [{"role": "user", "content": "Why is the sky blue?"}]}
    (choice,) = model.complete(body).choices
    assert choice.content is not None
    assert '"Why is the sky blue?"' in choice.content


def test_tokenize_round_trips() -> None:
    """Tokens keep their leading spaces and join back to the text."""
    text = "Hello world! It's 7,000 \n\n1. ok  two"
    tokens = model.tokenize(text)
    assert tokens[:3] == ["Hello", " world", "!"]
    assert "".join(tokens) == text


def test_repeat_option_lengthens_answer() -> None:
    """repeat repeats the text answer."""
    body = {"messages": QUESTION}
    once = model.complete(body).choices[0].tokens
    thrice = model.complete(body, repeat=3).choices[0].tokens
    assert len(thrice) > 3 * len(once) - 1


# ---------------------------------------------------------------------------- streaming


@pytest.mark.anyio
async def test_stream_event_sequence(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """A stream starts with the role, carries one token per chunk, finishes, then [DONE]."""
    url = chat_url(emulator, "openai_compatible")
    _, whole, _ = await post_json(session, url, {"messages": QUESTION})
    raw = await stream_raw(session, url, {"messages": QUESTION})
    payloads = sse_data(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in chunks[-1]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks[1:-1])
    assert text == whole["choices"][0]["message"]["content"]
    assert len(chunks) - 2 == whole["usage"]["completion_tokens"]


@pytest.mark.anyio
async def test_stream_usage_chunk(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """stream_options.include_usage adds a usage chunk with empty choices before [DONE]."""
    body = {"messages": QUESTION, "stream_options": {"include_usage": True}}
    raw = await stream_raw(session, chat_url(emulator, "openai_compatible"), body)
    payloads = sse_data(raw)
    usage_chunk = json.loads(payloads[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] > 0


@pytest.mark.anyio
async def test_stream_finish_chunk_for_azure(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """Azure AI paths finish with an empty content delta and the usage, like the real service."""
    raw = await stream_raw(session, chat_url(emulator), {"messages": QUESTION})
    finish = json.loads(sse_data(raw)[-2])
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["delta"] == {"content": ""}
    assert finish["usage"]["total_tokens"] > 0


@pytest.mark.anyio
async def test_stream_tool_call(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Tool calls stream OpenAI-style: a head fragment, then argument fragments."""
    body = {"messages": FLIGHT_MESSAGES, "tools": [FLIGHT_TOOL]}
    raw = await stream_raw(session, chat_url(emulator, "azure_openai_v1"), body)
    chunks = [json.loads(p) for p in sse_data(raw)[:-1]]
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert fragments[0] == {
        "index": 0,
        "id": fragments[0]["id"],
        "type": "function",
        "function": {"name": "get_flight_info", "arguments": ""},
    }
    assert all(set(f) == {"index", "function"} for f in fragments[1:])
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {"origin_city": "Miami", "destination_city": "Seattle"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.anyio
async def test_stream_n_choices_and_repeat_header(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """n choices stream interleaved by index; x-emulator-repeat lengthens the answer."""
    url = chat_url(emulator, "openai_compatible")
    headers = {"x-emulator-repeat": "2"}
    _, whole, _ = await post_json(session, url, {"messages": QUESTION}, headers)
    raw = await stream_raw(session, url, {"messages": QUESTION, "n": 2}, headers)
    chunks = [json.loads(p) for p in sse_data(raw)[:-1]]
    texts = ["", ""]
    finishes = []
    for chunk in chunks:
        (choice,) = chunk["choices"]
        texts[choice["index"]] += choice["delta"].get("content", "")
        if choice["finish_reason"]:
            finishes.append(choice["index"])
    content = whole["choices"][0]["message"]["content"]
    assert content.count("7,000") == 2
    assert texts == [content, content]
    assert finishes == [0, 1]


@pytest.mark.anyio
async def test_stream_crlf(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """The crlf option ends every line with CRLF."""
    emulator.options.crlf = True
    raw = await stream_raw(session, chat_url(emulator), {"messages": QUESTION})
    assert raw.endswith(b"data: [DONE]\r\n\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.count(b"\r\n\r\n") == len(sse_data(raw))


@pytest.mark.anyio
async def test_stream_keepalive_comments(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """The keepalive_comments option sends a comment line before every event."""
    headers = {"x-emulator-keepalive-comments": "true"}
    raw = await stream_raw(session, chat_url(emulator), {"messages": QUESTION}, headers)
    assert raw.startswith(b": keep-alive\n\ndata: ")
    assert raw.count(b": keep-alive\n\n") == len(sse_data(raw))


@pytest.mark.anyio
async def test_stream_annotations(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """The annotations option adds Azure OpenAI prompt-filter and annotation events."""
    emulator.options.annotations = True
    url = chat_url(emulator, "azure_openai_deployment")
    raw = await stream_raw(session, url, {"messages": QUESTION})
    chunks = [json.loads(p) for p in sse_data(raw)[:-1]]
    first = chunks[0]
    assert first["choices"] == []
    assert first["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    annotations = [c for c in chunks if c["choices"] and "delta" not in c["choices"][0]]
    assert annotations
    assert all("content_filter_results" in a["choices"][0] for a in annotations)
    ends = [a["choices"][0]["content_filter_offsets"]["end_offset"] for a in annotations]
    assert ends == sorted(ends)
    _, whole, _ = await post_json(session, url, {"messages": QUESTION})
    assert "prompt_filter_results" in whole
    assert "content_filter_results" in whole["choices"][0]


@pytest.mark.anyio
async def test_stream_error_after(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """error_after sends an error event after N content chunks and no [DONE]."""
    emulator.options.error_after = 2
    raw = await stream_raw(session, chat_url(emulator), {"messages": QUESTION})
    payloads = sse_data(raw)
    assert len(payloads) == 4  # role, two tokens, error
    error = json.loads(payloads[-1])
    assert error["error"]["code"] == "server_error"
    assert error["error"]["message"]


@pytest.mark.anyio
async def test_stream_cut_after(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """cut_after closes the connection mid-body: the client sees an incomplete payload."""
    emulator.options.cut_after = 3
    async with session.post(chat_url(emulator), json={"messages": QUESTION, "stream": True}) as r:
        assert r.status == 200
        received = b""
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in r.content.iter_any():
                received += piece
    assert b"[DONE]" not in received
    assert len(sse_data(received)) == 4  # role and three tokens
    assert await eventually(lambda: emulator.active_streams == 0)


@pytest.mark.anyio
async def test_stream_stall_after(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """stall_after stops sending: the client's read times out; the stream ends when it leaves."""
    emulator.options.stall_after = 1
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    body = {"messages": QUESTION, "stream": True}
    async with session.post(chat_url(emulator), json=body, timeout=timeout) as r:
        first = await r.content.readuntil(b"\n\n")
        assert b'"role":"assistant"' in first
        await r.content.readuntil(b"\n\n")
        assert emulator.active_streams == 1
        with pytest.raises(asyncio.TimeoutError):
            await r.content.readuntil(b"\n\n")
    assert await eventually(lambda: emulator.active_streams == 0)


@pytest.mark.anyio
async def test_first_token_delay(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """first_token_delay sends a stream's head at once and holds its first event back (and a
    whole non-streamed answer); a short delay then gives the normal answer."""
    held = {"x-emulator-first-token-delay": "30"}
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    body = {"messages": QUESTION, "stream": True}
    async with session.post(chat_url(emulator), json=body, headers=held, timeout=timeout) as r:
        assert r.status == 200
        assert r.content_type == "text/event-stream"
        with pytest.raises(asyncio.TimeoutError):
            await r.content.readuntil(b"\n\n")
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(
            chat_url(emulator), json={"messages": QUESTION}, headers=held, timeout=timeout
        ):
            pass
    short = {"x-emulator-first-token-delay": "0.01"}
    async with session.post(chat_url(emulator), json=body, headers=short) as r:
        events = sse_data(await r.read())
    assert events[-1] == "[DONE]"
    async with session.post(chat_url(emulator), json={"messages": QUESTION}, headers=short) as r:
        assert (await r.json())["choices"][0]["message"]["content"]
    assert await eventually(lambda: emulator.active_streams == 0)


@pytest.mark.anyio
async def test_client_disconnect_releases_stream(emulator: Emulator) -> None:
    """Closing the client mid-stream ends the handler: counters go back to 0."""
    emulator.options.token_delay = 0.01
    async with aiohttp.ClientSession() as client:
        body = {"messages": QUESTION, "stream": True}
        async with client.post(chat_url(emulator), json=body) as r:
            await r.content.readuntil(b"\n\n")
            assert emulator.active_streams == 1
            assert emulator.open_connections == 1
            r.close()
    assert await eventually(lambda: emulator.active_streams == 0)
    assert await eventually(lambda: emulator.open_connections == 0)


@pytest.mark.anyio
async def test_nonstream_stall_and_cut(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Without streaming, stall withholds the response and cut drops the connection."""
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    headers = {"x-emulator-stall-after": "0"}
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(
            chat_url(emulator), json={"messages": QUESTION}, headers=headers, timeout=timeout
        ):
            pass
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with session.post(
            chat_url(emulator), json={"messages": QUESTION}, headers={"x-emulator-cut-after": "0"}
        ):
            pass


@pytest.mark.anyio
async def test_stop_ends_stalled_stream(session: aiohttp.ClientSession) -> None:
    """stop() ends a stalled stream and is idempotent."""
    emulator = Emulator(EmulatorOptions(stall_after=0))
    await emulator.start()
    await emulator.start()
    body = {"messages": QUESTION, "stream": True}
    async with session.post(chat_url(emulator), json=body) as r:
        await r.content.readuntil(b"\n\n")
        assert emulator.active_streams == 1
        await emulator.stop()
        assert emulator.active_streams == 0
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    await emulator.stop()


# ---------------------------------------------------------------------------- request size


def png_of_size(size: int) -> bytes:
    """``size`` bytes that start like a PNG file (all the command line checks)."""
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + bytes(range(256)) * ((size - len(signature)) // 256 + 1)


async def post_large(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """POST a JSON body of any size (from a BytesIO, which aiohttp sends in chunks)."""
    async with session.post(url, data=io.BytesIO(orjson.dumps(body))) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.anyio
async def test_bodies_over_one_mib_are_answered(
    emulator: Emulator, session: aiohttp.ClientSession
) -> None:
    """A 2 MB prompt and a 1.5 MB image are answered (aiohttp alone refuses bodies over 1 MiB)."""
    prompt = "Why is the sky blue? " + "x" * 2_000_000
    status, answer = await post_large(
        session, chat_url(emulator), {"messages": [{"role": "user", "content": prompt}]}
    )
    assert status == 200, answer
    assert answer["usage"]["prompt_tokens"] > 1
    image = png_of_size(1_500_000)
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]
    status, answer = await post_large(
        session,
        chat_url(emulator, "openai_compatible"),
        {"messages": [{"role": "user", "content": content}]},
    )
    assert status == 200, answer
    text = answer["choices"][0]["message"]["content"]
    assert text.startswith(f"I received 1 image (image/png, {len(image)} bytes).")


def test_cli_image_at_its_size_limit_is_answered(
    inference_emulator_thread: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The largest image ``chat --image`` attaches reaches the emulator and is acknowledged."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no piped text joins the prompt
    image = png_of_size(MAX_IMAGE_BYTES)[:MAX_IMAGE_BYTES]
    path = tmp_path / "big.png"
    path.write_bytes(image)
    endpoint = inference_emulator_thread.endpoint()
    code = main(["chat", "What is this?", "--image", str(path), "--endpoint", endpoint])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith(f"I received 1 image (image/png, {MAX_IMAGE_BYTES} bytes).")
    body = inference_emulator_thread.requests[-1].body
    assert len(body) > MAX_IMAGE_BYTES * 4 // 3  # base64 makes the image a third larger
    assert 2 * len(body) <= MAX_REQUEST_BYTES  # the default limit holds two such images


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("azure_ai_models", "PayloadTooLarge"),
        ("azure_openai_deployment", "413"),
        ("openai_compatible", "payload_too_large"),
    ],
)
async def test_body_over_the_limit_is_a_413_that_says_the_limit(
    session: aiohttp.ClientSession, kind: str, code: str
) -> None:
    """A body of max_request_bytes is read; one byte more gets 413 in the kind's error shape."""
    async with Emulator(max_request_bytes=1000) as emulator:
        message = {"role": "user", "content": ""}
        padding = 1000 - len(orjson.dumps({"messages": [message]}))
        message["content"] = "x" * padding
        at_limit = orjson.dumps({"messages": [message]})
        assert len(at_limit) == 1000
        async with session.post(chat_url(emulator, kind), data=at_limit) as response:
            assert response.status == 200
        message["content"] += "x"
        status, answer, response = await post_json(
            session, chat_url(emulator, kind), {"messages": [message]}
        )
    assert status == 413
    assert response.headers["Content-Type"].startswith("application/json")
    error = answer["error"]
    assert error["code"] == code
    assert "limit of 1000 bytes" in error["message"]
    assert "max_request_bytes" in error["message"]
    if kind == "openai_compatible":
        assert error["type"] == "invalid_request_error"
    else:
        assert response.headers["x-ms-error-code"] == code
    assert emulator.requests[-1].body == b""
    assert emulator.requests[-1].path == urllib.parse.urlsplit(chat_url(emulator, kind)).path


def test_request_size_limit_default_and_invalid_values() -> None:
    """The default limit is 64 MiB and is said in the 413; a limit must be a positive int."""
    assert MAX_REQUEST_BYTES == 64 * 1024 * 1024
    assert Emulator().max_request_bytes == MAX_REQUEST_BYTES
    with pytest.raises(ValueError, match="max_request_bytes must be 1 or more"):
        Emulator(max_request_bytes=0)
    with pytest.raises(TypeError, match="whole number of bytes"):
        Emulator(max_request_bytes=1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- serving on a network


@pytest.mark.parametrize(
    ("host", "key", "warns"),
    [
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("", None, True),
        ("192.168.1.10", None, True),
        ("build-host.example", None, True),
        ("0.0.0.0", "secret", False),
        ("127.0.0.1", None, False),
        ("127.0.0.2", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_run_warns_when_serving_the_network_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host: str,
    key: str | None,
    warns: bool,
) -> None:
    """run() on a non-loopback address without a key prints one warning line on stderr.

    Nothing is bound: the emulator's start fails the way a taken port would.
    """

    async def refuse(self: Emulator) -> None:
        raise OSError("test: not binding")

    monkeypatch.setattr(Emulator, "start", refuse)
    with pytest.raises(OSError, match="not binding"):
        run(host=host, port=0, key=key)
    err = capsys.readouterr().err
    if warns:
        (line,) = err.splitlines()
        assert line.startswith("warning: the emulator listens on ")
        assert (host or "every address") in line
        assert "anyone who can reach this machine can use it" in line
        assert "--key" in line
    else:
        assert err == ""


def test_serve_command_warns_on_every_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m inference serve --host 0.0.0.0`` without --key warns before serving."""

    async def refuse(self: Emulator) -> None:
        raise OSError("test: not binding")

    monkeypatch.setattr(Emulator, "start", refuse)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) != 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("warning: the emulator listens on 0.0.0.0 without a key")
    assert "cannot serve on 0.0.0.0:0" in lines[1]


# ---------------------------------------------------------------------------- recording, lifecycle


@pytest.mark.anyio
async def test_requests_recorded(emulator: Emulator, session: aiohttp.ClientSession) -> None:
    """Each request is recorded with method, path, query, headers and JSON body."""
    body = {"messages": QUESTION, "temperature": 0}
    async with session.post(
        chat_url(emulator),
        params={"api-version": "2024-05-01-preview"},
        json=body,
        headers={"api-key": "k", "User-Agent": "tests"},
    ) as r:
        assert r.status == 200
    record = emulator.requests[-1]
    assert record.method == "POST"
    assert record.path == "/models/chat/completions"
    assert record.query == {"api-version": "2024-05-01-preview"}
    assert record.headers["API-KEY"] == "k"
    assert record.headers["user-agent"] == "tests"
    assert record.json == body
    assert json.loads(record.body) == body


def test_endpoint_urls_and_unstarted() -> None:
    """url needs a started emulator; endpoint rejects unknown kinds."""
    emulator = Emulator()
    with pytest.raises(RuntimeError):
        _ = emulator.url
    with Emulator(model="m").run_in_thread() as started:
        base = started.url
        assert base.startswith("http://127.0.0.1:")
        assert started.endpoint("azure_openai_deployment") == f"{base}/openai/deployments/m"
        assert started.endpoint("azure_ai_serverless") == base
        with pytest.raises(ValueError, match="unknown endpoint kind"):
            started.endpoint("nope")


def test_thread_fixture_serves_sync_code(inference_emulator_thread: Emulator) -> None:
    """The threaded fixture serves blocking clients (urllib here)."""
    request = urllib.request.Request(
        inference_emulator_thread.endpoint("openai_compatible") + "/chat/completions",
        data=orjson.dumps({"messages": QUESTION}),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    assert "7,000" in answer["choices"][0]["message"]["content"]
    inference_emulator_thread.options.status = 500
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 500
    caught.value.close()


def test_run_prints_url_and_stops_on_ctrl_c() -> None:
    """run() prints one line with the URL and exits cleanly on SIGINT."""
    code = "from inference.testing import run; run(port=0, key='k')"
    line, returncode, stderr = serve_until_ctrl_c([sys.executable, "-c", code])
    assert line.startswith("inference emulator on http://127.0.0.1:")
    assert "/openai/deployments/emulator-1" in line
    assert returncode == 0, stderr
    assert stderr == ""


def test_serve_on_loopback_without_key_gives_no_warning() -> None:
    """The default host (127.0.0.1) serves this machine only: no key needed, nothing on stderr."""
    command = [sys.executable, "-m", "inference", "serve", "--port", "0"]
    line, returncode, stderr = serve_until_ctrl_c(command)
    assert line.startswith("inference emulator on http://127.0.0.1:")
    assert "key required" not in line
    assert returncode == 0, stderr
    assert stderr == ""


def _function(name: str, parameter: str, kind: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {
                "type": "object",
                "properties": {parameter: {"type": kind}},
                "required": [parameter],
            },
        },
    }


WEATHER_TOOL = _function("get_weather", "city", "string")
CONVERT_TOOL = _function("convert_temperature", "celsius", "number")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("question", "tools", "called"),
    [
        ("Convert 20 celsius", [WEATHER_TOOL, CONVERT_TOOL], [("convert_temperature", 20)]),
        ("Weather in Oslo?", [CONVERT_TOOL, WEATHER_TOOL], [("get_weather", "Oslo")]),
        (
            "Weather in Oslo, and convert 20 celsius",
            [WEATHER_TOOL, CONVERT_TOOL],
            [("get_weather", "Oslo"), ("convert_temperature", 20)],
        ),
        ("What now?", [CONVERT_TOOL, WEATHER_TOOL], [("convert_temperature", 1)]),
    ],
    ids=["convert", "weather", "both", "neither-first-tool"],
)
async def test_the_tool_called_is_the_one_the_question_speaks_of(
    emulator: Emulator,
    session: aiohttp.ClientSession,
    question: str,
    tools: list[dict[str, Any]],
    called: list[tuple[str, Any]],
) -> None:
    """With two tools offered, the emulator called the first one whatever the question said,
    so a two-tool loop could not be tried offline; a tool is now chosen by the words of its
    name in the question (the first one when none is spoken of)."""
    status, body, _ = await post_json(
        session,
        chat_url(emulator),
        {"messages": [{"role": "user", "content": question}], "tools": tools},
    )
    assert status == 200, body
    calls = body["choices"][0]["message"]["tool_calls"]
    got = [
        (call["function"]["name"], next(iter(json.loads(call["function"]["arguments"]).values())))
        for call in calls
    ]
    assert got == called
