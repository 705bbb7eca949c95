"""Plain answers, streams, JSON mode and the tool round trip against the real server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _real import MAX_TOKENS

from inference import ChatCompletionsClient
from inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from inference.models import (
    ChatCompletionsFunctionToolDefinition,
    ChatCompletionsNamedToolChoice,
    ChatCompletionsNamedToolChoiceFunction,
    FunctionDefinition,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

WEATHER_TOOL = ChatCompletionsFunctionToolDefinition(
    function=FunctionDefinition(
        name="get_weather",
        description="The current weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    )
)
#: Makes the model call the tool (llama.cpp constrains the output with a grammar).
CALL_WEATHER = ChatCompletionsNamedToolChoice(
    function=ChatCompletionsNamedToolChoiceFunction(name="get_weather")
)
QUESTION = [
    SystemMessage("You are a helpful assistant. Use the tools you are given."),
    UserMessage("What is the weather in Paris?"),
]


def test_sync_complete(sync_client: ChatCompletionsClient) -> None:
    """A plain request gets text, a finish reason and usage that adds up."""
    response = sync_client.complete(messages=[UserMessage("Say hello.")])
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert response.usage is not None
    usage = response.usage
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_sync_stream(sync_client: ChatCompletionsClient) -> None:
    """A sync stream yields text pieces that make up the final completion's text."""
    pieces: list[str] = []
    with sync_client.complete(messages=[UserMessage("Count to five.")], stream=True) as stream:
        for update in stream:
            if update.choices and update.choices[0].delta.content:
                pieces.append(update.choices[0].delta.content)
        final = stream.get_final_completion()
    assert len(pieces) > 1
    assert final.choices[0].message.content == "".join(pieces)
    assert final.choices[0].finish_reason in ("stop", "length")


@pytest.mark.anyio
async def test_async_stream(client: AsyncChatCompletionsClient) -> None:
    """An async stream's text pieces make up the final completion's text.

    ``stream_options`` is sent as the README does; llama-cpp-python 0.3 ignores it (no usage
    chunk), which the stream must take in its stride.
    """
    stream = await client.complete(
        messages=[UserMessage("Name three colours.")],
        stream=True,
        stream_options={"include_usage": True},
    )
    async with stream:
        text = "".join([piece async for piece in stream.text_deltas()])
    final = stream.get_final_completion()
    assert text
    assert final.choices[0].message.content == text
    assert final.choices[0].finish_reason in ("stop", "length")


def test_json_mode(sync_client: ChatCompletionsClient) -> None:
    """JSON mode (``json_object``) gets a JSON object back."""
    response = sync_client.complete(
        messages=[
            SystemMessage("Answer with a JSON object."),
            UserMessage('Give the capital of France as {"capital": ...}.'),
        ],
        response_format="json_object",
        max_tokens=48,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(json.loads(choice.message.content or ""), dict)


def tool_answer(arguments: str) -> str:
    """What the weather tool returns for the model's arguments."""
    city = json.loads(arguments).get("city", "somewhere")
    return json.dumps({"city": city, "weather": "sunny", "celsius": 21})


def test_tool_round_trip_echoing_the_response_message(sync_client: ChatCompletionsClient) -> None:
    """The model calls the tool; its message, echoed as it came, and the answer get a reply."""
    messages: list[Any] = list(QUESTION)
    response = sync_client.complete(
        messages=messages, tools=[WEATHER_TOOL], tool_choice=CALL_WEATHER
    )
    message = response.choices[0].message
    assert message.tool_calls, message
    call = message.tool_calls[0]
    assert call.function.name == "get_weather"
    messages.append(response.choices[0].message)
    messages.append(ToolMessage(tool_answer(call.function.arguments), tool_call_id=call.id))
    final = sync_client.complete(messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content or final.choices[0].message.tool_calls


@pytest.mark.anyio
async def test_tool_round_trip_streamed(client: AsyncChatCompletionsClient) -> None:
    """A streamed tool call, accumulated and echoed back, gets a streamed reply."""
    messages: list[Any] = list(QUESTION)
    stream = await client.complete(
        messages=messages, tools=[WEATHER_TOOL], tool_choice=CALL_WEATHER, stream=True
    )
    async with stream:
        async for _ in stream:
            pass
    message = stream.get_final_completion().choices[0].message
    assert message.tool_calls, message
    call = message.tool_calls[0]
    messages.append(message)
    messages.append(ToolMessage(tool_answer(call.function.arguments), tool_call_id=call.id))
    reply = await client.complete(messages=messages, tools=[WEATHER_TOOL], stream=True)
    async with reply:
        text = "".join([piece async for piece in reply.text_deltas()])
    final = reply.get_final_completion().choices[0].message
    assert text or final.tool_calls


def test_tool_round_trip_with_dicts(sync_client: ChatCompletionsClient) -> None:
    """The same round trip written with OpenAI-style dicts and the message's ``as_dict()``."""
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant. Use the tools you are given."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    response = sync_client.complete(
        messages=messages, tools=[WEATHER_TOOL], tool_choice=CALL_WEATHER
    )
    message = response.choices[0].message
    assert message.tool_calls, message
    call = message.tool_calls[0]
    messages.append(message.as_dict())
    messages.append(
        {"role": "tool", "tool_call_id": call.id, "content": tool_answer(call.function.arguments)}
    )
    final = sync_client.complete(messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content or final.choices[0].message.tool_calls
