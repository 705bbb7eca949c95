"""Tests against recorded real traffic (tests/data/recordings in the repository).

Every recording must parse into the models; non-streamed bodies must round-trip; our requests
must match the recorded ones for the same call; every recorded response, replayed from a
loopback server, must come out of the client as the right text, tool calls, usage or error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from _recording_server import (
    Exchange,
    ReceivedRequest,
    ReplayServer,
    load_exchanges,
    load_sse_sample,
    recording_path,
    recordings_dir,
)
from azure.core.credentials import AccessToken

from inference._errors import error_from_response
from inference._serialization import loads_completions, loads_model_info, loads_update
from inference.aio import ChatCompletionsClient
from inference.exceptions import (
    ClientAuthenticationError,
    ContentFilterError,
    ErrorResponse,
    HttpResponseError,
    ResourceNotFoundError,
)
from inference.models import (
    ChatCompletions,
    ChatCompletionsToolDefinition,
    ChatRole,
    CompletionsFinishReason,
    FunctionDefinition,
    ImageContentItem,
    ImageDetailLevel,
    ImageUrl,
    JsonSchemaFormat,
    ModelInfo,
    ModelType,
    StreamingChatCompletionsUpdate,
    SystemMessage,
    TextContentItem,
    ToolMessage,
    UserMessage,
)

EXPECTED_FILES = {
    "aoai_stream_content_filter_DOC_EXAMPLES.sse",
    "chat_image_url_input_aoai_gpt-4o.json",
    "chat_json_schema_structured_output_aoai_gpt-4o.json",
    "chat_model_extras_pass_through_mistral.json",
    "chat_nonstream_aoai_gpt-4o_entra_id.json",
    "chat_stream_text_mistral-large-2411_EXCERPT.json",
    "chat_stream_tools_mistral-large-2411.json",
    "chat_tools_roundtrip_mistral-large-2411.json",
    "error_401_auth_failure_serverless.json",
    "error_content_filter_400_DOC_EXAMPLES.json",
    "info_200_serverless_and_404_aoai.json",
}
MISSING = "<recordings folder missing>"


def _listing() -> list[str]:
    try:
        return sorted(p.name for p in recordings_dir().iterdir() if p.is_file())
    except FileNotFoundError:
        return [MISSING]


RECORDING_FILES = _listing()


def strip_nulls(value: Any) -> Any:
    """JSON data without None values (the client never sends null; as_dict omits it)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def with_assistant_content(body: Any) -> Any:
    """The recorded body with ``"content": ""`` on assistant messages that have none.

    The recorded SDK left ``content`` out of an assistant message that carries only tool
    calls; this client sends an empty string there, which every server accepts (llama.cpp's
    chat templates fail without it). The service answered such calls with ``"content": ""``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    messages = [
        {"content": "", **message}
        if message.get("role") == "assistant" and "content" not in message
        else message
        for message in body["messages"]
    ]
    return {**body, "messages": messages}


def data_events(exchange: Exchange) -> list[dict[str, Any]]:
    """The JSON events of a streamed exchange, parsed independently of the library."""
    return [json.loads(e) for e in exchange.events if e != "[DONE]"]


def recorded_text(exchange: Exchange) -> str:
    """The first choice's text, joined from the recorded deltas."""
    return "".join(
        (event["choices"][0].get("delta") or {}).get("content") or ""
        for event in data_events(exchange)
        if event["choices"]
    )


class FakeAsyncTokenCredential:
    """An async Entra ID credential stand-in."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A fixed token valid for an hour."""
        return AccessToken("entra-token", int(time.time()) + 3600)


def client_for(
    server: ReplayServer, exchange: Exchange, credential: Any = "key"
) -> ChatCompletionsClient:
    """A client whose requests land on the recorded path with the recorded api-version."""
    options: dict[str, Any] = {"retry": 0, "api_version": exchange.query.get("api-version")}
    if "/openai/" not in exchange.path:
        options["endpoint_kind"] = "azure_ai_serverless"
    return ChatCompletionsClient(server.endpoint_for(exchange), credential, **options)


def assert_request_matches(received: ReceivedRequest, recorded: Exchange) -> None:
    """Method, path, query, body (nulls aside) and the meaningful headers match the recording."""
    assert (received.method, received.path) == (recorded.method, recorded.path)
    assert received.query == recorded.query
    if recorded.request_body is None:
        assert received.body == b""
    else:
        assert received.json == with_assistant_content(strip_nulls(recorded.request_body))
    headers = {k.lower(): v for k, v in recorded.request_headers.items()}
    if "content-type" in headers:
        assert received.headers["Content-Type"] == headers["content-type"]
    assert received.headers.get("extra-parameters") == headers.get("extra-parameters")
    assert ("api-key" in received.headers) == ("api-key" in headers)


def _exchanges(name: str) -> list[Exchange]:
    return load_exchanges(recording_path(name))


# -- the folder and every file -------------------------------------------------------------


def fail_missing_recordings() -> NoReturn:
    """Fail the running test with the message that says where the recordings belong."""
    try:
        folder = recordings_dir()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    pytest.fail(f"no recordings found in {folder}")


def test_recordings_folder_is_present_and_complete() -> None:
    """The recordings folder (tests/data/recordings) holds every known file."""
    try:
        folder = recordings_dir()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    names = {p.name for p in folder.iterdir()}
    assert names >= EXPECTED_FILES, f"missing recordings: {sorted(EXPECTED_FILES - names)}"


def _parse_exchange(exchange: Exchange) -> int:
    """Parse one exchange with the library; returns how many objects were built."""
    if exchange.status >= 400:
        exc = error_from_response(
            exchange.status, "", _ci(exchange.response_headers), exchange.body
        )
        assert isinstance(exc, HttpResponseError)
        assert exc.message
        return 1
    if exchange.streamed:
        events = exchange.events
        assert events[-1] == "[DONE]"
        updates = [loads_update(e) for e in events[:-1]]
        assert all(isinstance(u, StreamingChatCompletionsUpdate) for u in updates)
        return len(updates)
    if exchange.path.endswith("/info"):
        assert isinstance(loads_model_info(exchange.body), ModelInfo)
        return 1
    assert isinstance(loads_completions(exchange.body), ChatCompletions)
    return 1


def _ci(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _doc_examples(path: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(name, status, body) of each sample in a DOC_EXAMPLES file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for name, sample in data.items():
        if name.startswith("_"):
            continue
        body = {k: v for k, v in sample.items() if not k.startswith("_")}
        if "choices" in body:
            status = 200
        else:
            error = body.get("error", body)
            status = int(error.get("status") or body.get("status", 0))
        yield name, status, body


@pytest.mark.parametrize("name", RECORDING_FILES)
def test_every_recording_parses(name: str) -> None:
    """Every recording file parses into the library's models (or maps to an exception)."""
    if name == MISSING:
        fail_missing_recordings()
    path = recording_path(name)
    built = 0
    if name.endswith(".sse"):
        built += _parse_exchange(load_sse_sample(path))
    elif name.endswith(".json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "Entries" in data:
            for exchange in load_exchanges(path):
                built += _parse_exchange(exchange)
        else:
            for _, status, body in _doc_examples(path):
                raw = json.dumps(body).encode()
                built += _parse_exchange(
                    Exchange.make(status, body, {"Content-Type": "application/json"})
                    if status >= 400
                    else Exchange.make(200, raw, {"Content-Type": "application/json"})
                )
    else:
        pytest.fail(f"no parsing rule for recording {name}: add one to this test")
    assert built > 0


def _nonstreamed_bodies() -> list[tuple[str, Any]]:
    if RECORDING_FILES == [MISSING]:
        return [(MISSING, None)]
    bodies: list[tuple[str, Any]] = []
    for name in RECORDING_FILES:
        path = recording_path(name)
        if name.endswith(".json") and "Entries" in json.loads(path.read_text(encoding="utf-8")):
            for index, exchange in enumerate(load_exchanges(path)):
                if exchange.status == 200 and not exchange.streamed:
                    bodies.append((f"{name}#{index}", exchange))
        elif name.endswith("DOC_EXAMPLES.json"):
            for sample, status, body in _doc_examples(path):
                if status == 200:
                    bodies.append((f"{name}#{sample}", Exchange.make(200, body)))
    return bodies


NONSTREAMED = _nonstreamed_bodies()


@pytest.mark.parametrize("exchange", [b for _, b in NONSTREAMED], ids=[n for n, _ in NONSTREAMED])
def test_nonstreamed_bodies_round_trip(exchange: Exchange | None) -> None:
    """structure then as_dict() gives the recorded body back, unknown fields included."""
    if exchange is None:
        fail_missing_recordings()
    recorded = exchange.response_json
    assert isinstance(recorded, dict)
    parsed = (
        loads_model_info(exchange.body)
        if exchange.path.endswith("/info")
        else loads_completions(exchange.body)
    )
    assert parsed.as_dict() == strip_nulls(recorded)
    for key in recorded.keys() - {"id", "object", "created", "model", "choices", "usage"}:
        if recorded[key] is not None and not isinstance(parsed, ModelInfo):
            assert parsed[key] == recorded[key]


def test_unknown_azure_fields_are_reachable() -> None:
    """content_filter_results, prompt_filter_results and system_fingerprint are reachable."""
    (exchange,) = _exchanges("chat_nonstream_aoai_gpt-4o_entra_id.json")
    result = loads_completions(exchange.body)
    assert result["system_fingerprint"] == "fp_82ce25c0d4"
    filters = result["prompt_filter_results"][0]["content_filter_results"]
    assert filters["jailbreak"] == {"filtered": False, "detected": False}
    choice = result.choices[0]
    assert choice["content_filter_results"]["protected_material_text"]["detected"] is False
    assert "refusal" not in choice.message or choice.message["refusal"] is None
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details["accepted_prediction_tokens"] == 0


# -- replay: requests match, responses come out right --------------------------------------


@pytest.mark.anyio
async def test_nonstream_entra_id_aoai() -> None:
    """AOAI with a token: same request as recorded (Bearer, no api-key); text and usage."""
    (exchange,) = _exchanges("chat_nonstream_aoai_gpt-4o_entra_id.json")
    credential = FakeAsyncTokenCredential()
    async with (
        ReplayServer([exchange]) as server,
        client_for(server, exchange, credential) as client,
    ):
        result = await client.complete(
            messages=[
                SystemMessage(
                    "You are a helpful assistant answering questions regarding length units."
                ),
                UserMessage("How many feet are in a mile?"),
            ]
        )
    (received,) = server.requests
    assert_request_matches(received, exchange)
    assert received.headers["Authorization"] == "Bearer entra-token"
    recorded = exchange.response_json
    assert result.choices[0].message.content == "There are **5,280 feet** in a mile."
    assert result.choices[0].message.role is ChatRole.ASSISTANT
    assert result.choices[0].finish_reason is CompletionsFinishReason.STOPPED
    assert result.model == recorded["model"] == "gpt-4o-2024-11-20"
    assert result.usage is not None
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 12, 42)
    assert result["prompt_filter_results"] == recorded["prompt_filter_results"]
    assert server.problems == []


@pytest.mark.anyio
async def test_image_url_input() -> None:
    """An image_url request matches the recording (detail auto); the answer comes back."""
    (exchange,) = _exchanges("chat_image_url_input_aoai_gpt-4o.json")
    url = exchange.request_body["messages"][1]["content"][1]["image_url"]["url"]
    async with ReplayServer([exchange]) as server, client_for(server, exchange) as client:
        result = await client.complete(
            messages=[
                SystemMessage("You are an AI assistant that describes images in details."),
                UserMessage(
                    [
                        TextContentItem(text="What's in this image?"),
                        ImageContentItem(image_url=ImageUrl(url=url, detail=ImageDetailLevel.AUTO)),
                    ]
                ),
            ]
        )
    (received,) = server.requests
    assert_request_matches(received, exchange)
    assert received.headers["api-key"] == "key"
    recorded_message = exchange.response_json["choices"][0]["message"]["content"]
    content = result.choices[0].message.content
    assert content == recorded_message
    assert content is not None and content.startswith("This image shows three juggling balls")
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (237, 343)
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert result["prompt_filter_results"][1]["prompt_index"] == 1


@pytest.mark.anyio
async def test_json_schema_structured_output() -> None:
    """JsonSchemaFormat produces the recorded response_format; the JSON answer parses."""
    (exchange,) = _exchanges("chat_json_schema_structured_output_aoai_gpt-4o.json")
    recorded_schema = exchange.request_body["response_format"]["json_schema"]
    async with ReplayServer([exchange]) as server, client_for(server, exchange) as client:
        result = await client.complete(
            messages=[
                SystemMessage("You are a helpful assistant answering questions on US geography"),
                UserMessage("What's the distance between Seattle and Portland, as the crow flies?"),
            ],
            response_format=JsonSchemaFormat(
                name="Test_JSON_Schema",
                schema=recorded_schema["schema"],
                description="Describes a set of distances between locations",
                strict=True,
            ),
        )
    assert_request_matches(server.requests[0], exchange)
    content = result.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {
        "distances": [{"location1": "Seattle", "location2": "Portland", "distance": 146}]
    }


@pytest.mark.anyio
async def test_model_extras_pass_through_recording() -> None:
    """n=1 on a serverless endpoint is sent as recorded, with extra-parameters: pass-through."""
    (exchange,) = _exchanges("chat_model_extras_pass_through_mistral.json")
    async with ReplayServer([exchange]) as server, client_for(server, exchange) as client:
        result = await client.complete(messages=[UserMessage("How many feet are in a mile?")], n=1)
    assert_request_matches(server.requests[0], exchange)
    assert server.requests[0].headers["extra-parameters"] == "pass-through"
    assert (
        result.choices[0].message.content
        == (exchange.response_json["choices"][0]["message"]["content"])
    )
    assert result.choices[0].message.tool_calls is None
    assert result.usage is not None and result.usage.total_tokens == 43


WEATHER_TOOL_DESCRIPTION = (
    "A function that returns the forecasted maximum temperature IN a given city, a given few "
    "days from now, in Fahrenheit. It returns `unknown` if the forecast is not known."
)


@pytest.mark.anyio
async def test_tools_round_trip_recording() -> None:
    """The recorded tool round trip: both requests match, the tool call and answer come out."""
    first, second = _exchanges("chat_tools_roundtrip_mistral-large-2411.json")
    parameters = first.request_body["tools"][0]["function"]["parameters"]
    tool = ChatCompletionsToolDefinition(
        function=FunctionDefinition(
            name="get_max_temperature",
            description=WEATHER_TOOL_DESCRIPTION,
            parameters=parameters,
        )
    )
    messages: list[Any] = [
        SystemMessage("You are an assistant that helps users find weather information."),
        UserMessage("what's the maximum temperature in Seattle two days from now?"),
    ]
    async with ReplayServer([first, second]) as server, client_for(server, first) as client:
        response = await client.complete(messages=messages, tools=[tool])
        choice = response.choices[0]
        assert choice.finish_reason is CompletionsFinishReason.TOOL_CALLS
        calls = choice.message.tool_calls
        assert calls is not None and len(calls) == 1
        call = calls[0]
        assert (call.id, call.type) == ("Sanitized", "function")
        assert call.function.name == "get_max_temperature"
        assert json.loads(call.function.arguments) == {"city": "Seattle", "days": "2"}
        messages.append(choice.message)
        messages.append(ToolMessage("62", tool_call_id=call.id))
        final = await client.complete(messages=messages, tools=[tool])
    assert_request_matches(server.requests[0], first)
    assert_request_matches(server.requests[1], second)
    content = final.choices[0].message.content
    assert content == "The maximum temperature in Seattle two days from now is expected to be 62°F."
    assert final.usage is not None and final.usage.total_tokens == 251
    assert server.problems == []


@pytest.mark.anyio
async def test_stream_text_recording() -> None:
    """The recorded text stream: request matches; every update arrives; text and usage."""
    (exchange,) = _exchanges("chat_stream_text_mistral-large-2411_EXCERPT.json")
    expected_text = recorded_text(exchange)
    async with ReplayServer([exchange]) as server, client_for(server, exchange) as client:
        stream = await client.complete(
            messages=[
                SystemMessage("You are a helpful assistant."),
                UserMessage("Give me 3 good reasons why I should exercise every day."),
            ],
            stream=True,
        )
        pieces: list[str] = []
        count = 0
        async with stream:
            async for update in stream:
                count += 1
                if update.choices:
                    pieces.append(update.choices[0].delta.content or "")
        final = stream.get_final_completion()
        assert client._transport.pool_stats()[0] == 0
    assert_request_matches(server.requests[0], exchange)
    assert count == len(data_events(exchange))
    assert "".join(pieces) == expected_text
    assert expected_text.startswith("Absolutely,")
    assert final.choices[0].message.content == expected_text
    assert final.choices[0].finish_reason is CompletionsFinishReason.STOPPED
    assert final.id == "f1441eb6031c4ddbbd9bc58e88cc381c"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (24, 352)


@pytest.mark.anyio
async def test_stream_tools_recording() -> None:
    """The recorded streamed tool call (no index, Mistral) and the follow-up stream."""
    first, second = _exchanges("chat_stream_tools_mistral-large-2411.json")
    tool = ChatCompletionsToolDefinition(
        function=FunctionDefinition(
            name="get_weather",
            description="Returns description of the weather in the specified city",
            parameters=first.request_body["tools"][0]["function"]["parameters"],
        )
    )
    messages: list[Any] = [
        SystemMessage("You are a helpful AI assistant."),
        UserMessage("What is the weather in Seattle?"),
    ]
    async with ReplayServer([first, second]) as server, client_for(server, first) as client:
        stream = await client.complete(messages=messages, tools=[tool], stream=True)
        async with stream:
            completion = await stream.until_done()
        choice = completion.choices[0]
        assert choice.finish_reason is CompletionsFinishReason.TOOL_CALLS
        assert choice.message.tool_calls is not None
        (call,) = choice.message.tool_calls
        assert (call.id, call.type, call.function.name) == ("Sanitized", "function", "get_weather")
        assert json.loads(call.function.arguments) == {"city": "Seattle"}
        assert completion.usage is not None
        usage = completion.usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
            100,
            23,
            123,
        )
        messages.append(choice.message)
        messages.append(ToolMessage("Nice weather", tool_call_id=call.id))
        stream = await client.complete(messages=messages, tools=[tool], stream=True)
        async with stream:
            text = "".join([piece async for piece in stream.text_deltas()])
        final = stream.get_final_completion()
    assert_request_matches(server.requests[0], first)
    assert_request_matches(server.requests[1], second)
    assert text == recorded_text(second)
    assert text.startswith('[{"name": "get_weather"')
    assert final.usage is not None and final.usage.total_tokens == 169


@pytest.mark.anyio
async def test_aoai_content_filter_stream() -> None:
    """The AOAI filtered stream: the first (choice-less) update and annotations come through."""
    exchange = load_sse_sample(
        recording_path("aoai_stream_content_filter_DOC_EXAMPLES.sse"),
        request_path="/openai/deployments/gpt-35-turbo/chat/completions",
    )
    server = ReplayServer([exchange])
    async with (
        server,
        ChatCompletionsClient(
            server.url + "/openai/deployments/gpt-35-turbo", "key", retry=0
        ) as client,
    ):
        stream = await client.complete(messages=[UserMessage("Sing")], stream=True)
        async with stream:
            updates = [update async for update in stream]
        final = stream.get_final_completion()
    assert server.problems == []
    assert len(updates) == len(data_events(exchange)) == 7
    first = updates[0]
    assert first.choices == []
    assert first.id == ""
    assert first["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    texts = [u.choices[0].delta.content for u in updates[1:] if u.choices]
    assert texts[:4] == [None, "Hey", " Jude", ","]
    for annotation in updates[5:]:
        delta = annotation.choices[0].delta
        assert delta is not None
        assert (delta.content, delta.role, delta.tool_calls) == (None, None, None)
        assert "content_filter_results" in annotation.choices[0]
        assert annotation.choices[0]["content_filter_offsets"]["end_offset"] == 1056
    assert updates[-1].choices[0].finish_reason is CompletionsFinishReason.CONTENT_FILTERED
    assert updates[-1].choices[0]["content_filter_results"]["protected_material_text"] == {
        "detected": True,
        "filtered": True,
    }
    assert final.choices[0].message.content == "Hey Jude,"
    assert final.choices[0].finish_reason is CompletionsFinishReason.CONTENT_FILTERED
    assert final.id == "chatcmpl-8JCbt5d4luUIhYCI7YH4dQK7hnHx2"
    assert final.model == "gpt-35-turbo"
    assert "prompt_filter_results" in final


@pytest.mark.anyio
async def test_error_401_recording() -> None:
    """The recorded serverless 401 raises ClientAuthenticationError with the service message."""
    (exchange,) = _exchanges("error_401_auth_failure_serverless.json")
    async with ReplayServer([exchange]) as server, client_for(server, exchange) as client:
        with pytest.raises(ClientAuthenticationError) as info:
            await client.complete(messages=[UserMessage("How many feet are in a mile?")])
    assert_request_matches(server.requests[0], exchange)
    exc = info.value
    assert exc.status_code == 401
    assert "Auth token validation failed" in str(exc)
    response = exc.response
    assert isinstance(response, ErrorResponse)
    assert response.json() == exchange.response_json
    assert response.headers["x-ms-error-reason"] == "Invalid JWT."


@pytest.mark.parametrize(
    ("sample", "cls", "code"),
    [
        ("aoai_prompt_blocked_400__use-blocklists.md", ContentFilterError, "content_filter"),
        (
            "model_inference_prompt_blocked_400__mistral_how-to",
            ContentFilterError,
            "content_filter",
        ),
        ("model_inference_reference_2025-04-01__flat_shape", ContentFilterError, "content_filter"),
        (
            "model_inference_422_parameter_not_supported__same_page",
            HttpResponseError,
            "parameter_not_supported",
        ),
    ],
)
@pytest.mark.anyio
async def test_documented_error_bodies_replayed(
    sample: str, cls: type[HttpResponseError], code: str
) -> None:
    """Each documented error body, served with its status, raises the mapped exception."""
    samples = {
        name: (status, body)
        for name, status, body in _doc_examples(
            recording_path("error_content_filter_400_DOC_EXAMPLES.json")
        )
    }
    status, body = samples[sample]
    service_message = body.get("error", body)["message"]
    reply = Exchange.make(status, body)
    async with ReplayServer([reply]) as server, client_for(server, reply) as client:
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=[UserMessage("Hi")])
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.code == code
    assert service_message in str(info.value)


@pytest.mark.anyio
async def test_documented_filtered_completion_replayed() -> None:
    """The documented 200 with a filtered completion parses: no content, content_filter."""
    samples = {
        name: body
        for name, _, body in _doc_examples(
            recording_path("error_content_filter_400_DOC_EXAMPLES.json")
        )
    }
    body = samples["aoai_completion_filtered_200__use-blocklists.md"]
    reply = Exchange.make(200, body)
    async with ReplayServer([reply]) as server, client_for(server, reply) as client:
        result = await client.complete(messages=[UserMessage("Hi")])
    choice = result.choices[0]
    assert choice.finish_reason is CompletionsFinishReason.CONTENT_FILTERED
    assert choice.message.content is None
    assert choice.message.tool_calls is None
    assert choice["content_filter_results"]["custom_blocklists"][0]["id"] == "myBlocklistName"
    assert result.usage is not None and result.usage.total_tokens == 102


@pytest.mark.anyio
async def test_info_recordings() -> None:
    """/info on serverless parses into ModelInfo; on an AOAI deployment it is a 404."""
    serverless, aoai = _exchanges("info_200_serverless_and_404_aoai.json")
    async with ReplayServer([serverless, aoai]) as server:
        async with client_for(server, serverless) as client:
            info = await client.get_model_info()
        async with client_for(server, aoai) as client:
            with pytest.raises(ResourceNotFoundError) as not_found:
                await client.get_model_info()
    assert_request_matches(server.requests[0], serverless)
    assert_request_matches(server.requests[1], aoai)
    assert info.model_name == "mistral-large-2411"
    assert info.model_type is ModelType.CHAT_COMPLETION
    assert info.model_provider_name == "Mistral"
    assert info["served_model_name"] == "mistral-large-2411"
    exc = not_found.value
    assert exc.status_code == 404
    assert exc.code == "404"
    assert "Resource not found" in str(exc)
    assert exc.request_id == "5c62f405-7305-4cdf-83d4-c1cb0b7c42e1"
    assert server.problems == []


@pytest.mark.anyio
async def test_replay_server_reports_unexpected_requests() -> None:
    """The replay server answers 599 to a request the recording does not expect, and says so."""
    (exchange,) = _exchanges("chat_model_extras_pass_through_mistral.json")
    server = ReplayServer([exchange])
    async with server, ChatCompletionsClient(server.url + "/v1", None, retry=0) as client:
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=[UserMessage("Hi")])
        with pytest.raises(HttpResponseError):
            await client.complete(messages=[UserMessage("Hi")])
    assert info.value.status_code == 599
    assert server.problems == [
        "POST /v1/chat/completions: the recording expects POST /chat/completions",
        "POST /v1/chat/completions: no recorded response left",
    ]
    assert server.pending == 0
