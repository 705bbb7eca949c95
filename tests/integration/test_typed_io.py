"""Structured output into a class and the tool-running loop, against the real server.

llama-cpp-python's server takes a schema in JSON mode (``{"type": "json_object", "schema":
...}``) and refuses ``json_schema``: the class goes in that spelling, which the client also
turns into the class's schema and parses into the class. Its grammar holds the model to the
schema, so even a tiny model answers with JSON that fits.
"""

from __future__ import annotations

import enum

import attrs
import pytest

from inference import ChatCompletionsClient, ToolRoundsExceededError
from inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from inference.models import (
    ChatCompletionsNamedToolChoice,
    ChatCompletionsNamedToolChoiceFunction,
    ChatResponseMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
)


class Temperature(enum.Enum):
    """Hot or cold."""

    HOT = "hot"
    COLD = "cold"


@attrs.define
class Verdict:
    """Whether a thing is hot or cold."""

    thing: str
    temperature: Temperature


SUN = [UserMessage("Is the sun hot or cold? Answer in JSON.")]
#: Enough room for the small Verdict object (the grammar ends it after its last field).
VERDICT_TOKENS = 48


def test_structured_output_into_a_class(sync_client: ChatCompletionsClient) -> None:
    """The answer is parsed into a Verdict: a string and a member of the enum."""
    response = sync_client.complete(
        messages=SUN,
        response_format={"type": "json_object", "schema": Verdict},
        max_tokens=VERDICT_TOKENS,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    verdict = choice.message.parsed
    assert isinstance(verdict, Verdict)
    assert verdict.thing
    assert isinstance(verdict.temperature, Temperature)


@pytest.mark.anyio
async def test_structured_output_streamed(client: AsyncChatCompletionsClient) -> None:
    """A streamed answer's final completion holds the parsed Verdict too."""
    stream = await client.complete(
        messages=SUN,
        response_format={"type": "json_object", "schema": Verdict},
        max_tokens=VERDICT_TOKENS,
        stream=True,
    )
    async with stream:
        final = await stream.until_done()
    assert isinstance(final.choices[0].message.parsed, Verdict)


calls: list[str] = []


def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city name.
    """
    calls.append(city)
    return f"Sunny, 22 degrees Celsius in {city}."


CALL_WEATHER = ChatCompletionsNamedToolChoice(
    function=ChatCompletionsNamedToolChoiceFunction(name="get_weather")
)


@pytest.mark.anyio
async def test_tool_loop_round_trip(client: AsyncChatCompletionsClient) -> None:
    """run_tools sends the derived tool, runs the function the model calls (arguments
    checked), and sends the result back, which the server takes. A tiny model under
    tool_choice auto tends to call the tool again rather than answer: then max_rounds stops
    the loop, and the conversation so far continues with tool_choice none to an answer."""
    question = [
        SystemMessage("You are a helpful assistant. Use the tools you are given."),
        UserMessage("What is the weather in Paris?"),
    ]
    calls.clear()
    try:
        result = await client.run_tools(
            messages=question, tools=[get_weather], tool_choice=CALL_WEATHER, max_rounds=1
        )
        messages = result.messages
    except ToolRoundsExceededError as exc:
        messages = exc.messages
    assistant, tool_result, after = messages[2:5]
    assert isinstance(assistant, ChatResponseMessage)
    assert assistant.tool_calls and assistant.tool_calls[0].function.name == "get_weather"
    assert "Paris" in calls[0]
    assert isinstance(tool_result, ToolMessage)
    assert tool_result.tool_call_id == assistant.tool_calls[0].id
    assert tool_result.content == f"Sunny, 22 degrees Celsius in {calls[0]}."
    assert isinstance(after, ChatResponseMessage)  # the server answered the tool result
    answer = await client.complete(messages=messages[:4], tools=[get_weather], tool_choice="none")
    assert answer.choices[0].message.content
