"""The tool-running loop: Python functions as tools, run for the model until it answers.

``run_tools`` derives each tool's definition from the function's name, docstring and type
hints, calls the model, runs the calls it asks for (at the same time; sync functions in
worker threads, after checking the arguments against the signature), sends the results
back, and returns the final answer with the whole conversation. ``stream_tools`` runs the
same loop and yields the events as they happen: tool calls, tool results, text.
"""

import asyncio
import enum
import os

from azure.core.credentials import AzureKeyCredential

from inference import TextDeltaEvent, ToolCallEvent, ToolResultEvent, ToolRunDoneEvent
from inference.aio import ChatCompletionsClient
from inference.models import SystemMessage, UserMessage


class Unit(enum.Enum):
    """A temperature unit."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


async def get_weather(city: str, unit: Unit = Unit.CELSIUS) -> dict[str, object]:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. Lisbon.
        unit: The temperature unit.
    """
    degrees = 21 if unit is Unit.CELSIUS else 70
    return {"city": city, "sky": "sunny", "temperature": degrees, "unit": unit.value}


def get_local_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: The city's name.
    """
    return f"It is 14:05 in {city}."


QUESTION = [
    SystemMessage("You are a helpful assistant. Use the tools you are given."),
    UserMessage(
        "What is the weather in Lisbon, and the time there? Use get_weather and get_local_time."
    ),
]


async def main() -> None:
    """Run the loop once for the answer, then once more streamed."""
    async with ChatCompletionsClient(
        endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
        credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
        model="mistral-large-2407",
    ) as client:
        result = await client.run_tools(messages=QUESTION, tools=[get_weather, get_local_time])
        for message in result.messages:
            calls = getattr(message, "tool_calls", None) or []
            for call in calls:
                print(f"Call: {call.function.name}({call.function.arguments})")
            if message.role == "tool":
                print(f"Result: {message.content}")
        print(f"Answer after {result.rounds} round(s): {result.content}")

        print("Streamed:")
        async for event in client.stream_tools(
            messages=QUESTION, tools=[get_weather, get_local_time]
        ):
            if isinstance(event, ToolCallEvent):
                print(f"  [calling {event.call.function.name}]")
            elif isinstance(event, ToolResultEvent):
                print(f"  [{event.call.function.name} returned {event.content}]")
            elif isinstance(event, TextDeltaEvent):
                print(event.text, end="", flush=True)
            elif isinstance(event, ToolRunDoneEvent):
                print()


if __name__ == "__main__":
    asyncio.run(main())
