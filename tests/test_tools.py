"""Tools from Python functions and the tool-running loop: derived definitions (golden
schemas), argument checking, the loop against the emulator and a scripted server (several
tools, concurrent tools, tool errors, bad arguments, max rounds), streamed and not, async
and sync."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import operator
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal, TypedDict

import anyio
import attrs
import orjson
import pydantic
import pytest
from _fault_server import FaultServer, chat_body, error, raw, sse

import inference
from inference import (
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    ToolRunDoneEvent,
    ToolRunResult,
    tool,
)
from inference.aio import ChatCompletionsClient
from inference.exceptions import (
    InferenceError,
    RequestValidationError,
    StructuredOutputError,
    ToolCallError,
    ToolRoundsExceededError,
)
from inference.models import AssistantMessage, ChatResponseMessage, ToolMessage, UserMessage
from inference.testing import Emulator


class Unit(enum.Enum):
    """Temperature units."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@attrs.define
class Place:
    """A place on earth."""

    city: str
    country: str


@dataclasses.dataclass
class Window:
    """A span of days."""

    days: int


class Options(TypedDict):
    detail: bool


class Filter(pydantic.BaseModel):
    min_temp: float | None


def get_weather(
    place: Place,
    window: Window,
    options: Options,
    only: Filter,
    unit: Unit = Unit.CELSIUS,
    mode: Literal["brief", "full"] = "brief",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Get the weather forecast for a place.

    Uses the forecast service.

    Args:
        place: Where to look.
        window: How many days ahead.
        options: Output options.
        only: Which readings to keep.
        unit: The temperature unit.
        mode: How much to say.
        tags: Labels for the request.
    """
    return {"city": place.city, "days": window.days, "unit": unit.value, "mode": mode}


def test_function_definition_golden() -> None:
    """Name, summary and body as description, parameter schemas from the hints (attrs,
    dataclass, TypedDict, pydantic, enum, Literal, list, Optional), descriptions from Args,
    parameters with defaults optional; described references wrapped for strict mode."""
    assert tool(get_weather).definition == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather forecast for a place.\n\nUses the forecast service.",
            "parameters": {
                "type": "object",
                "properties": {
                    "place": {
                        "anyOf": [{"$ref": "#/$defs/Place"}],
                        "description": "Where to look.",
                    },
                    "window": {
                        "anyOf": [{"$ref": "#/$defs/Window"}],
                        "description": "How many days ahead.",
                    },
                    "options": {
                        "anyOf": [{"$ref": "#/$defs/Options"}],
                        "description": "Output options.",
                    },
                    "only": {
                        "anyOf": [{"$ref": "#/$defs/Filter"}],
                        "description": "Which readings to keep.",
                    },
                    "unit": {
                        "type": "string",
                        "enum": ["celsius", "fahrenheit"],
                        "description": "The temperature unit.",
                    },
                    "mode": {
                        "type": "string",
                        "enum": ["brief", "full"],
                        "description": "How much to say.",
                    },
                    "tags": {
                        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                        "description": "Labels for the request.",
                    },
                },
                "required": ["place", "window", "options", "only"],
                "additionalProperties": False,
                "$defs": {
                    "Place": {
                        "type": "object",
                        "description": "A place on earth.",
                        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                        "required": ["city", "country"],
                        "additionalProperties": False,
                    },
                    "Window": {
                        "type": "object",
                        "description": "A span of days.",
                        "properties": {"days": {"type": "integer"}},
                        "required": ["days"],
                        "additionalProperties": False,
                    },
                    "Options": {
                        "type": "object",
                        "properties": {"detail": {"type": "boolean"}},
                        "required": ["detail"],
                        "additionalProperties": False,
                    },
                    "Filter": {
                        "type": "object",
                        "properties": {
                            "min_temp": {"anyOf": [{"type": "number"}, {"type": "null"}]}
                        },
                        "required": ["min_temp"],
                        "additionalProperties": False,
                    },
                },
            },
        },
    }


async def local_time(city: str, *, twelve_hour: bool = False) -> str:
    """The local time in a city.

    :param city: The city's name.
    :param twelve_hour: Use a 12-hour clock.
    """
    return f"10:00 in {city}"


def test_async_function_and_rest_docstring() -> None:
    """An async function with a reST docstring; name and description can be overridden."""
    definition = tool(local_time).definition["function"]
    assert definition == {
        "name": "local_time",
        "description": "The local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city's name."},
                "twelve_hour": {"type": "boolean", "description": "Use a 12-hour clock."},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    renamed = tool(local_time, name="clock", description="Tells the time.")
    assert renamed.name == "clock"
    assert renamed.definition["function"]["description"] == "Tells the time."


def no_hint(city) -> str:  # type: ignore[no-untyped-def]
    """No hint."""
    return str(city)


def star_args(*cities: str) -> str:
    """Star args."""
    return ",".join(cities)


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (no_hint, "has no type hint"),
        (star_args, "named parameters only"),
        (lambda city: city, "use a def, not a lambda"),
        ("not a function", "takes a function"),
    ],
    ids=["no_hint", "star_args", "lambda", "string"],
)
def test_functions_that_cannot_be_tools(function: Any, words: str) -> None:
    """Missing hints, *args, lambdas and non-functions are refused with what to do."""
    with pytest.raises(RequestValidationError, match=words):
        tool(function)


class Forecaster:
    """Forecasts for the cities of one service."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self, city: str, days: int = 1) -> str:
        """The forecast for a city.

        Args:
            city: The city's name.
            days: How many days ahead.
        """
        return f"{self.service}: {city} sunny for {days} day(s)"


class Quiet:
    """A forecaster whose __call__ has no docstring."""

    async def __call__(self, city: str) -> str:
        return f"quiet {city}"


def forecast(city: str, service: str, days: int = 1) -> str:
    """The forecast for a city.

    Args:
        city: The city's name.
        service: Which service to ask.
        days: How many days ahead.
    """
    return f"{service}: {city} sunny for {days} day(s)"


def test_callable_objects_and_partials_are_tools() -> None:
    """A callable object is named after its class and described by its __call__ (its class
    docstring when __call__ has none); a functools.partial after the function it calls, its
    bound keywords left out of the parameters. Both were refused as if they were lambdas."""
    described = {
        "city": {"type": "string", "description": "The city's name."},
        "days": {"type": "integer", "description": "How many days ahead."},
    }
    obj = tool(Forecaster("met"))
    assert obj.definition["function"] == {
        "name": "Forecaster",
        "description": "The forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": described,
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    assert list(obj.parameters) == ["city", "days"]
    quiet = tool(Quiet()).definition["function"]
    assert quiet["name"] == "Quiet"
    assert quiet["description"] == "A forecaster whose __call__ has no docstring."
    bound = tool(functools.partial(forecast, service="met"))
    assert bound.definition["function"] == {
        "name": "forecast",
        "description": "The forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": described,
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    assert list(bound.parameters) == ["city", "days"]
    nested = tool(functools.partial(functools.partial(Forecaster("met")), days=2))
    assert nested.name == "Forecaster"
    assert list(nested.parameters) == ["city"]


def test_a_callable_without_a_name_is_refused_naming_what_was_given() -> None:
    """A callable object whose class has no Python __call__ (operator.itemgetter) has no
    name to give the tool: the error names it and says to pass name=."""
    with pytest.raises(RequestValidationError, match="itemgetter object") as info:
        tool(operator.itemgetter("city"))
    assert "inference.tool(func, name=...)" in str(info.value)
    assert "lambda" not in str(info.value)


@pytest.mark.anyio
async def test_callable_objects_and_partials_run_in_the_loop() -> None:
    """The loop calls a callable object and a partial with the model's arguments (the
    partial with its bound keywords); a bound keyword the model sends is refused as
    unknown."""
    script = _tool_call_body(
        ("Forecaster", '{"city": "Oslo", "days": 2}'),
        ("forecast", '{"city": "Rome"}'),
        ("Quiet", '{"city": "Nice"}'),
        ("forecast", '{"city": "Rome", "service": "other"}'),
    )
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(
            messages=[UserMessage("Oslo and Rome")],
            tools=[Forecaster("met"), functools.partial(forecast, service="yr"), Quiet()],
        )
    assert [m.content for m in result.messages[2:6]] == [
        "met: Oslo sunny for 2 day(s)",
        "yr: Rome sunny for 1 day(s)",
        "quiet Nice",
        "Error: invalid arguments for forecast: parameters unknown ['service']; "
        "forecast takes ['city', 'days']",
    ]
    assert len(server.attempts) == 2


class _Releaser:
    """An async callable object that lets a waiting sync tool go."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    async def __call__(self, city: str) -> str:
        """Releases the waiting tool.

        Args:
            city: The city's name.
        """
        self.release.set()
        return f"released {city}"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["callable-object", "partial"])
async def test_async_callable_objects_and_partials_run_on_the_loop(kind: str) -> None:
    """An async __call__ (or a functools.partial of such an object) is awaited on the
    loop like a coroutine function. It was run through a worker thread first, so with every
    thread taken (here the one the limiter allows, held by a sync tool waiting for it) it
    could not start: the sync tool waited its whole timeout."""
    release = threading.Event()

    def waiter(city: str) -> str:
        """Waits to be released.

        Args:
            city: The city's name.
        """
        return "released in time" if release.wait(5) else "not released"

    releaser: Any = _Releaser(release)
    if kind == "partial":
        releaser = tool(functools.partial(_Releaser(release)), name="releaser")
    script = _tool_call_body(
        ("waiter", '{"city": "Oslo"}'),
        ("releaser" if kind == "partial" else "_Releaser", '{"city": "Rome"}'),
    )
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 1
    try:
        async with (
            FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
            ChatCompletionsClient(server.endpoint(), "key") as client,
        ):
            begun = time.monotonic()
            result = await client.run_tools(
                messages=[UserMessage("Oslo and Rome")], tools=[waiter, releaser]
            )
            waited = time.monotonic() - begun
    finally:
        limiter.total_tokens = tokens
    assert [m.content for m in result.messages[2:4]] == ["released in time", "released Rome"]
    assert waited < 4


def größe(city: str) -> str:
    """A name Python takes and services do not."""
    return city


@pytest.mark.parametrize(
    ("function", "name"),
    [(no_hint, "has space"), (größe, None), (no_hint, "x" * 65), (no_hint, "a.b")],
    ids=["space", "non_ascii", "too_long", "dot"],
)
def test_tool_names_services_refuse_are_refused(function: Any, name: str | None) -> None:
    """Services take 1 to 64 ASCII letters, digits, underscores and hyphens as a tool name;
    other names are refused before sending, saying how to give another."""
    with pytest.raises(RequestValidationError, match="1 to 64 ASCII letters") as info:
        tool(function, name=name)
    assert "inference.tool(func, name=...)" in str(info.value)


def test_the_longest_tool_name_services_take_is_taken() -> None:
    """64 characters with hyphens and digits is a valid name."""
    assert tool(größe, name="a-1_" * 16).name == "a-1_" * 16


@pytest.mark.anyio
async def test_complete_sends_function_definitions(emulator: Emulator) -> None:
    """tools=[function] in complete() sends the derived definition beside a dict tool."""
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        await client.complete(messages=[UserMessage("Hi")], tools=[local_time, other])
    sent = emulator.requests[-1].json["tools"]
    assert sent == [tool(local_time).definition, other]


def test_two_tools_with_one_name_are_refused() -> None:
    """Two functions under one name cannot be told apart by the model."""
    with pytest.raises(RequestValidationError, match="two tools are named 'local_time'"):
        inference._tools.tools_for_request([local_time, tool(get_weather, name="local_time")])


# -- the loop against the emulator ------------------------------------------------------------

calls: list[str] = []


def weather(city: str) -> dict[str, Any]:
    """The weather in a city.

    Args:
        city: The city.
    """
    calls.append(f"weather {city}")
    return {"city": city, "sky": "sunny"}


async def population(city: str) -> int:
    """How many people live in a city.

    Args:
        city: The city.
    """
    calls.append(f"population {city}")
    return 2_100_000


BOTH = [UserMessage("Use weather and population for Paris")]


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    """Each test starts with an empty call log."""
    calls.clear()


def check_both(result: ToolRunResult) -> None:
    """The run called both tools once and answered from both results."""
    assert sorted(calls) == ["population Paris", "weather Paris"]
    assert result.rounds == 1
    kinds = [type(m).__name__ for m in result.messages]
    assert kinds == [
        "UserMessage",
        "ChatResponseMessage",
        "ToolMessage",
        "ToolMessage",
        "ChatResponseMessage",
    ]
    assistant = result.messages[1]
    assert [c.function.name for c in assistant.tool_calls] == ["weather", "population"]
    answers = result.messages[2:4]
    assert [a.tool_call_id for a in answers] == [c.id for c in assistant.tool_calls]
    assert orjson.loads(answers[0].content) == {"city": "Paris", "sky": "sunny"}
    assert answers[1].content == "2100000"
    assert result.content == (
        "According to weather: city: Paris; sky: sunny. According to population: 2100000."
    )
    assert result.messages[-1] is result.completion.choices[0].message


@pytest.mark.anyio
async def test_run_tools_with_several_tools(emulator: Emulator) -> None:
    """A sync and an async tool requested together both run; their results go back in the
    order of the calls and the model answers from them."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.run_tools(messages=BOTH, tools=[weather, population], model="m")
    check_both(result)
    first, second = (r.json for r in emulator.requests)
    assert first["model"] == second["model"] == "m"
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool"]
    assert [UserMessage("Use weather and population for Paris")] == BOTH  # not changed


def test_sync_run_tools_with_several_tools() -> None:
    """The sync client runs the same loop (sync tools in worker threads, async tools on the
    client's loop)."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        check_both(client.run_tools(messages=BOTH, tools=[weather, population]))


@pytest.mark.anyio
async def test_tools_run_concurrently(emulator: Emulator) -> None:
    """Two sync tools wait for each other at a barrier, two async tools for each other's
    events: run one after the other they would fail (or hang)."""
    barrier = threading.Barrier(2, timeout=10)
    first, second = anyio.Event(), anyio.Event()

    def left(city: str) -> str:
        """Left."""
        barrier.wait()
        return "left"

    def right(city: str) -> str:
        """Right."""
        barrier.wait()
        return "right"

    async def up(city: str) -> str:
        """Up."""
        first.set()
        await second.wait()
        return "up"

    async def down(city: str) -> str:
        """Down."""
        second.set()
        await first.wait()
        return "down"

    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with anyio.fail_after(20):
            threads = await client.run_tools(
                messages=[UserMessage("left right")], tools=[left, right], raise_tool_errors=True
            )
            tasks = await client.run_tools(messages=[UserMessage("up down")], tools=[up, down])
    assert [m.content for m in threads.messages[2:4]] == ["left", "right"]
    assert [m.content for m in tasks.messages[2:4]] == ["up", "down"]


def broken(city: str) -> str:
    """Always fails.

    Args:
        city: The city.
    """
    raise ValueError(f"no data for {city}")


@pytest.mark.anyio
async def test_a_tool_error_goes_back_to_the_model(emulator: Emulator) -> None:
    """A tool that raises: its error is the tool message, the other tool's result is kept,
    and the model answers; nothing is raised."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.run_tools(
            messages=[UserMessage("Use broken and weather for Paris")], tools=[broken, weather]
        )
    failed, fine = result.messages[2:4]
    assert failed.content == "Error: broken raised ValueError: no data for Paris"
    assert orjson.loads(fine.content)["sky"] == "sunny"
    assert "no data for Paris" in (result.content or "")


@pytest.mark.anyio
async def test_raise_tool_errors_raises_after_the_round(emulator: Emulator) -> None:
    """raise_tool_errors=True raises ToolCallError with the tool's exception as its cause,
    once the round's calls have finished (the other tool ran)."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(ToolCallError, match="broken raised ValueError") as info:
            await client.run_tools(
                messages=[UserMessage("Use broken and weather for Paris")],
                tools=[broken, weather],
                raise_tool_errors=True,
            )
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.call.function.name == "broken"
    assert calls == ["weather Paris"]
    assert len(emulator.requests) == 1
    assert isinstance(info.value.messages[-1], ToolMessage)


def _tool_call_body(*calls_: tuple[str, str]) -> bytes:
    body = chat_body()
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls_)
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    return orjson.dumps(body)


@pytest.mark.anyio
async def test_bad_arguments_go_back_to_the_model() -> None:
    """Arguments that are not JSON, of the wrong type, unknown or missing, and a tool that
    does not exist, each go back as an error message; the function is never called, and
    raise_tool_errors does not raise for them."""
    script = _tool_call_body(
        ("weather", "{not json"),
        ("weather", '{"city": 5}'),
        ("weather", '{"town": "Paris"}'),
        ("weather", "[]"),
        ("forecast", '{"city": "Paris"}'),
    )
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Sorry.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(
            messages=BOTH, tools=[weather], raise_tool_errors=True, max_rounds=1
        )
    assert calls == []
    contents = [m.content for m in result.messages[2:7]]
    assert contents[0].startswith("Error: invalid arguments for weather: the arguments are not")
    assert contents[1].startswith("Error: invalid arguments for weather: parameter 'city':")
    assert "expected str" in contents[1]
    assert contents[2] == (
        "Error: invalid arguments for weather: parameters unknown ['town'] and missing "
        "['city']; weather takes ['city']"
    )
    assert "must be a JSON object" in contents[3]
    assert contents[4] == "Error: there is no tool named 'forecast'; the tools are ['weather']"
    sent = orjson.loads(server.attempts[1].body)["messages"]
    assert [m["content"] for m in sent[2:7]] == contents
    assert result.content == "Sorry."


@pytest.mark.anyio
async def test_arguments_become_the_hinted_classes(emulator: Emulator) -> None:
    """The model's JSON is turned into the parameter types (attrs, dataclass, TypedDict,
    pydantic, enum) before the call."""
    seen: list[Any] = []

    def record(**kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return get_weather(**kwargs)

    wrapped = tool(get_weather)
    runnable = inference.Tool(record, wrapped.definition, wrapped.parameters)
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.run_tools(
            messages=[UserMessage("Weather for Paris in France, 3 days")], tools=[runnable]
        )
    (kwargs,) = seen
    assert kwargs["place"] == Place("Paris", "France")
    assert kwargs["window"] == Window(3)
    assert kwargs["options"] == {"detail": True}
    assert isinstance(kwargs["only"], Filter)
    assert orjson.loads(result.messages[2].content)["days"] == 3


@pytest.mark.anyio
async def test_max_rounds(emulator: Emulator) -> None:
    """A model that keeps calling tools (tool_choice required, not reset) stops the loop
    after max_rounds rounds with ToolRoundsExceededError holding the conversation."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(ToolRoundsExceededError, match="max_rounds=2") as info:
            await client.run_tools(
                messages=[UserMessage("Paris")],
                tools=[weather],
                tool_choice="required",
                reset_tool_choice=False,
                max_rounds=2,
            )
        with pytest.raises(ToolRoundsExceededError, match="max_rounds=0"):
            await client.run_tools(messages=[UserMessage("Paris")], tools=[weather], max_rounds=0)
    assert calls == ["weather Paris", "weather Paris"]
    assert len(emulator.requests) == 4
    error = info.value
    assert [type(m).__name__ for m in error.messages] == [
        "UserMessage",
        *["ChatResponseMessage", "ToolMessage"] * 2,
        "ChatResponseMessage",
    ]
    assert error.completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_rounds": -1}, "max_rounds must be a whole number"),
        ({"stream": True}, "use stream_tools"),
        ({"tools": [{"type": "function", "function": {"name": "x"}}]}, "at least one Python"),
    ],
)
async def test_run_tools_argument_errors(
    emulator: Emulator, kwargs: dict[str, Any], words: str
) -> None:
    """Bad loop arguments are refused before any request."""
    params: dict[str, Any] = {"messages": BOTH, "tools": [weather], **kwargs}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError, match=words):
            await client.run_tools(**params)
    assert emulator.requests == []


LOOP_MISSPELT: list[tuple[dict[str, Any], str]] = [
    (
        {"messages": BOTH, "tools": [weather], "max_round": 3},
        "() got an unknown parameter max_round=3; did you mean max_rounds=?",
    ),
    ({"messages": BOTH, "tools": [weather], "raise_tool_error": True}, "mean raise_tool_errors=?"),
    ({"messages": BOTH, "tools": [weather], "Reset_Tool_Choice": 0}, "mean reset_tool_choice=?"),
    ({"messages": BOTH, "tools": [weather], "temprature": 0.1}, "did you mean temperature=?"),
    ({"message": BOTH, "tools": [weather]}, "unknown parameter message=[UserMessage("),
    ({"message": BOTH, "tools": [weather]}, "did you mean messages=?"),
    ({"Messages": BOTH, "tools": [weather]}, "did you mean messages=?"),
    ({"messages": BOTH, "tool": [weather]}, "did you mean tools=?"),
    ({"messages": BOTH}, "() needs tools=[a_function]"),
    ({"tools": [weather]}, '() needs messages=[UserMessage("Hello")]'),
    ({"messages": BOTH, "tools": [weather], "body": {}}, "() takes messages= and keyword"),
]


@pytest.mark.parametrize("method", ["run_tools", "stream_tools"])
@pytest.mark.parametrize(("kwargs", "needle"), LOOP_MISSPELT)
@pytest.mark.anyio
async def test_a_misspelt_loop_keyword_names_the_loop_and_the_one_meant(
    emulator: Emulator, method: str, kwargs: dict[str, Any], needle: str
) -> None:
    """run_tools(max_round=3) was refused as "complete() got an unknown parameter max_round=3;
    did you mean max_tokens=?", raise_tool_error= got no suggestion and message=[...] raised
    a bare TypeError: the error now names the method called and takes its own keywords into
    account. Nothing is sent."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError) as info:
            if method == "run_tools":
                await client.run_tools(**kwargs)
            else:
                async for _event in client.stream_tools(**kwargs):
                    pass
    assert str(info.value).startswith(f"{method}()")
    assert needle in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize("method", ["run_tools", "stream_tools"])
@pytest.mark.parametrize(("kwargs", "needle"), LOOP_MISSPELT)
def test_a_misspelt_sync_loop_keyword_names_the_loop_and_the_one_meant(
    method: str, kwargs: dict[str, Any], needle: str
) -> None:
    """The sync client says the same, before any connection (nothing listens on the
    endpoint's port: a request would fail with another error)."""
    with (
        inference.ChatCompletionsClient("http://127.0.0.1:9/v1", "key", retry=0) as client,
        pytest.raises(RequestValidationError) as info,
    ):
        if method == "run_tools":
            client.run_tools(**kwargs)
        else:
            list(client.stream_tools(**kwargs))
    assert str(info.value).startswith(f"{method}()")
    assert needle in str(info.value)


@pytest.mark.anyio
async def test_stream_and_positional_arguments_to_the_loop_are_explained(
    emulator: Emulator,
) -> None:
    """stream= on stream_tools() says it streams already (it was told to use stream_tools());
    positional arguments say the loop takes keywords (it was Python's TypeError)."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError, match=r"^stream_tools\(\) streams already"):
            async for _event in client.stream_tools(messages=BOTH, tools=[weather], stream=True):
                pass
        with pytest.raises(
            RequestValidationError,
            match=r"^run_tools\(\) takes its arguments by name, got 2 positional arguments; "
            r"e\.g\. run_tools\(messages=\.\.\., tools=\.\.\.\)",
        ):
            await client.run_tools(BOTH, [weather])  # type: ignore[misc]
    assert emulator.requests == []


NOT_A_LIST = [
    (
        weather,
        r"tools must be a list of tools .*got function .*; put it in a list: tools=\[weather\]",
    ),
    ({"weather": weather}, "tools must be a list of tools .*got dict"),
    ("weather", "tools must be a list of tools .*got str 'weather'"),
    (iter([weather]), "tools must be a list of tools .*got list_iterator"),
]


@pytest.mark.parametrize(("tools", "words"), NOT_A_LIST)
@pytest.mark.anyio
async def test_tools_must_be_a_list_in_every_method(
    emulator: Emulator, tools: Any, words: str
) -> None:
    """run_tools(tools=func) and stream_tools(tools=func) raised a raw TypeError ('function'
    object is not iterable); they get complete()'s RequestValidationError, from the one check
    the three share. Nothing is sent."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError, match=words):
            await client.run_tools(messages=BOTH, tools=tools)
        with pytest.raises(RequestValidationError, match=words):
            async for _event in client.stream_tools(messages=BOTH, tools=tools):
                pass
        with pytest.raises(RequestValidationError, match=words):
            await client.complete(messages=BOTH, tools=tools)
    assert emulator.requests == []


@pytest.mark.parametrize(("tools", "words"), NOT_A_LIST[:2])
def test_tools_must_be_a_list_in_every_sync_method(tools: Any, words: str) -> None:
    """The same with the sync client."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        with pytest.raises(RequestValidationError, match=words):
            client.run_tools(messages=BOTH, tools=tools)
        with pytest.raises(RequestValidationError, match=words):
            list(client.stream_tools(messages=BOTH, tools=tools))
        with pytest.raises(RequestValidationError, match=words):
            client.complete(messages=BOTH, tools=tools)
        assert emu.requests == []


@attrs.define
class Report:
    """A weather report."""

    city: str
    summary: str


@pytest.mark.anyio
async def test_run_tools_with_a_response_class(emulator: Emulator) -> None:
    """response_format=Class applies to the final answer: the result's parsed is a Report."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.run_tools(
            messages=[UserMessage("Weather in Paris?")], tools=[weather], response_format=Report
        )
    assert isinstance(result.parsed, Report)
    assert result.messages[1].parsed is None  # the tool-call turn is not parsed


# -- streamed ---------------------------------------------------------------------------------


def check_events(events: list[Any]) -> None:
    """Call events, then result events, then the answer's text, then the done event."""
    kinds = [type(e).__name__ for e in events]
    assert kinds[:4] == ["ToolCallEvent", "ToolCallEvent", "ToolResultEvent", "ToolResultEvent"]
    assert set(kinds[4:-1]) == {"TextDeltaEvent"}
    assert kinds[-1] == "ToolRunDoneEvent"
    done = events[-1]
    assert isinstance(done, ToolRunDoneEvent)
    text = "".join(e.text for e in events if isinstance(e, TextDeltaEvent))
    assert text == done.result.content
    assert all(e.round == 1 for e in events if isinstance(e, TextDeltaEvent))
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.call for r in results] == [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert all(r.error is None and r.round == 0 for r in results)
    check_both(done.result)


@pytest.mark.anyio
async def test_stream_tools(emulator: Emulator) -> None:
    """stream_tools yields tool events and the final answer's text as it streams."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        events = [e async for e in client.stream_tools(messages=BOTH, tools=[weather, population])]
    check_events(events)
    assert all(r.json.get("stream") is True for r in emulator.requests)


def test_sync_stream_tools_and_early_stop() -> None:
    """The sync stream_tools yields the same events; stopping early releases everything
    (the client still works, no stream is left open on the emulator)."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        check_events(list(client.stream_tools(messages=BOTH, tools=[weather, population])))
        events = client.stream_tools(messages=BOTH, tools=[weather, population])
        for event in events:
            if isinstance(event, TextDeltaEvent):
                break
        events.close()  # type: ignore[attr-defined]
        for _ in range(500):  # the emulator notices the closed connection soon after
            if emu.active_streams == 0:
                break
            time.sleep(0.01)
        assert emu.active_streams == 0
        assert client.complete(messages=[UserMessage("Hello")]).choices[0].message.content


def test_sync_stream_tools_raises_the_loop_error() -> None:
    """An error in the loop reaches the sync iterator as itself."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        events = client.stream_tools(messages=[UserMessage("Paris")], tools=[weather], max_rounds=0)
        with pytest.raises(ToolRoundsExceededError, match="max_rounds=0") as info:
            list(events)
        assert info.value.completion.choices[0].finish_reason == "tool_calls"
        assert client.complete(messages=[UserMessage("Hello")]).choices[0].message.content


# -- the emulator's tool calls ------------------------------------------------------------------


@pytest.mark.anyio
async def test_emulator_calls_every_named_tool_and_obeys_required(emulator: Emulator) -> None:
    """The emulator calls each offered tool the user names (parallel calls); the first tool
    when none is named; and calls again after tool results when tool_choice is required."""
    defs = [tool(weather).definition, tool(population).definition]
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        named = await client.complete(messages=BOTH, tools=defs)
        unnamed = await client.complete(messages=[UserMessage("Paris?")], tools=defs)
        call = named.choices[0].message.tool_calls[0]
        after = [
            UserMessage("Paris?"),
            AssistantMessage(tool_calls=[call]),
            ToolMessage("sunny", tool_call_id=call.id),
        ]
        auto = await client.complete(messages=after, tools=defs)
        required = await client.complete(messages=after, tools=defs, tool_choice="required")
    assert [c.function.name for c in named.choices[0].message.tool_calls] == [
        "weather",
        "population",
    ]
    assert [c.function.name for c in unnamed.choices[0].message.tool_calls] == ["weather"]
    assert auto.choices[0].message.content == "According to weather: sunny."
    again = required.choices[0].message.tool_calls
    assert again and again[0].id != call.id
    assert isinstance(required.choices[0].message, ChatResponseMessage)


@pytest.mark.anyio
async def test_a_forced_tool_choice_is_reset_after_the_first_round(emulator: Emulator) -> None:
    """tool_choice required (or named) forces the first call, then becomes auto so that the
    model can answer; the caller's own parameters are left as they were."""
    params: dict[str, Any] = {"tool_choice": "required"}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.run_tools(messages=[UserMessage("Paris")], tools=[weather], **params)
    assert result.rounds == 1
    assert result.content == "According to weather: city: Paris; sky: sunny."
    assert [r.json["tool_choice"] for r in emulator.requests] == ["required", "auto"]
    assert params == {"tool_choice": "required"}


def test_readme_typed_io_snippets_run(tmp_path: Path) -> None:
    """The README's structured-output and tool snippets run as written against the emulator
    (in a subprocess, the way a user runs them)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("## Structured output and tools")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"^```python\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2
    with Emulator().run_in_thread() as emu:
        env = dict(
            os.environ, AZURE_INFERENCE_ENDPOINT=emu.endpoint(), AZURE_INFERENCE_CREDENTIAL="k"
        )
        outputs = []
        for number, block in enumerate(blocks):
            script = tmp_path / f"snippet{number}.py"
            script.write_text(block, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, str(script)],
                env=env,
                capture_output=True,
                text=True,
                timeout=50,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
    assert outputs[0] == "The Falcon 5 Mood.HAPPY\n"
    lines = outputs[1].splitlines()
    assert lines[0] == "According to get_weather: city: Oslo; days: 1; sky: sunny."
    assert lines[1] == "4 messages, after 1 round(s) of tools"
    assert lines[2].startswith("ToolCallEvent(")
    assert lines[-1].startswith("ToolRunDoneEvent(")


@pytest.mark.anyio
async def test_async_stream_tools_stopped_early(emulator: Emulator) -> None:
    """Leaving stream_tools in the middle of the answer (closing the iterator) closes the
    model's stream; the client goes on working."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        async with contextlib.aclosing(
            client.stream_tools(messages=BOTH, tools=[weather, population])
        ) as events:
            async for event in events:
                if isinstance(event, TextDeltaEvent):
                    break
        for _ in range(500):  # the emulator notices the closed connection soon after
            if emulator.active_streams == 0:
                break
            await anyio.sleep(0.01)
        assert emulator.active_streams == 0
        answer = await client.complete(messages=[UserMessage("Hello")])
    assert answer.choices[0].message.content


def _stuck_tool(release: threading.Event, started: threading.Event) -> Any:
    def stuck(city: str) -> str:
        """Waits until released."""
        started.set()
        release.wait(30)
        return "late"

    return stuck


@pytest.mark.anyio
async def test_cancelling_the_loop_does_not_wait_for_a_stuck_sync_tool() -> None:
    """A sync tool that does not return (in its worker thread) does not hold up the
    cancellation of run_tools: a timeout around it fires on time."""
    release, started = threading.Event(), threading.Event()
    stuck = _stuck_tool(release, started)
    script = _tool_call_body(("stuck", '{"city": "Oslo"}'))
    try:
        async with (
            FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
            ChatCompletionsClient(server.endpoint(), "key") as client,
        ):
            begun = time.monotonic()
            with anyio.move_on_after(0.5) as scope:
                await client.run_tools(messages=[UserMessage("Oslo")], tools=[stuck])
            waited = time.monotonic() - begun
        assert started.is_set() and scope.cancelled_caught
        assert waited < 5, f"the cancellation waited {waited:.1f} s for the tool"
    finally:
        release.set()


def test_closing_sync_stream_tools_does_not_wait_for_a_stuck_tool() -> None:
    """Closing the sync stream_tools iterator while a sync tool is stuck returns at once and
    leaves the client usable."""
    release, started = threading.Event(), threading.Event()
    stuck = _stuck_tool(release, started)
    try:
        with (
            Emulator().run_in_thread() as emu,
            inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
        ):
            events = client.stream_tools(messages=[UserMessage("stuck in Oslo")], tools=[stuck])
            for event in events:
                if isinstance(event, ToolCallEvent):
                    break
            assert started.wait(10)
            begun = time.monotonic()
            events.close()  # type: ignore[attr-defined]
            waited = time.monotonic() - begun
            assert waited < 2, f"close() waited {waited:.1f} s for the tool"
            assert client.complete(messages=[UserMessage("Hello")]).choices[0].message.content
    finally:
        release.set()


def _with_ids(body: bytes, *ids: Any) -> bytes:
    data = orjson.loads(body)
    for call, id_ in zip(data["choices"][0]["message"]["tool_calls"], ids, strict=True):
        call["id"] = id_
    return orjson.dumps(data)


@pytest.mark.anyio
async def test_tool_calls_without_ids_get_ids_their_results_answer() -> None:
    """Some servers send tool calls with a null or empty id: the loop gives each one an id
    (call_<round>_<n>) and the tool messages answer them; it raised RequestValidationError
    (ToolMessage needs tool_call_id=) after running the tools."""
    script = _with_ids(
        _tool_call_body(("weather", '{"city": "Oslo"}'), ("weather", '{"city": "Rome"}')),
        None,
        "",
    )
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(messages=[UserMessage("Weather?")], tools=[weather])
    assert result.content == "Done."
    sent = orjson.loads(server.attempts[1].body)["messages"]
    ids = ["call_0_0", "call_0_1"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ids
    assert [(m["role"], m["tool_call_id"]) for m in sent[2:4]] == [("tool", i) for i in ids]


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_without_choices_is_a_clear_error(stream: bool) -> None:
    """An answer with no choices cannot continue the conversation: an InferenceError says
    so (it was an IndexError)."""
    body = chat_body()
    body["choices"] = []
    usage_only = (
        b'data: {"id": "chatcmpl-empty", "object": "chat.completion.chunk", "created": 1, '
        b'"model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0, '
        b'"total_tokens": 3}}\n\n'
    )
    action = sse(usage_only) if stream else raw(200, orjson.dumps(body))
    async with (
        FaultServer(action) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(InferenceError, match="round 0 of the tool loop has no choices"):
            if stream:
                async for _ in client.stream_tools(messages=BOTH, tools=[weather]):
                    pass
            else:
                await client.run_tools(messages=BOTH, tools=[weather])


def nan_weather(city: str) -> dict[str, float]:
    """A forecast whose temperature is NaN."""
    return {"temperature": float("nan")}


class _Opaque:
    pass


def opaque_weather(city: str) -> object:
    """A forecast JSON has no form for."""
    return _Opaque()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("function", "words"),
    [
        (nan_weather, "result['temperature'] is nan, which JSON cannot carry"),
        (opaque_weather, "result is _Opaque, which is not JSON-serializable"),
    ],
)
async def test_a_result_json_cannot_carry_is_an_error_message(function: Any, words: str) -> None:
    """A return value JSON cannot carry goes back as an error saying what the tool returned
    (a NaN was sent as null; an object was reported as 'raised ParseFailure'), and
    raise_tool_errors raises it as a ToolCallError."""
    name = function.__name__
    script = _tool_call_body((name, '{"city": "Oslo"}'))
    done = raw(200, orjson.dumps(chat_body("Done.")))
    async with (
        FaultServer(raw(200, script), done, raw(200, script)) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(messages=[UserMessage("Oslo")], tools=[function])
        with pytest.raises(ToolCallError) as info:
            await client.run_tools(
                messages=[UserMessage("Oslo")], tools=[function], raise_tool_errors=True
            )
    content = result.messages[2].content
    assert content.startswith(f"Error: {name} returned a value that cannot be sent to the model: ")
    assert words in content
    assert "raised" not in content
    assert orjson.loads(server.attempts[1].body)["messages"][2]["content"] == content
    assert str(info.value) == f"tool {content.removeprefix('Error: ')}"


def double(n: int) -> str:
    """Doubles a whole number of any size."""
    return str(n * 2)


@pytest.mark.anyio
async def test_tool_arguments_beyond_64_bits_are_read_exactly() -> None:
    """A whole-number argument beyond 64 bits was read as a float and refused ("expected
    int, got float"): the tool gets it exactly."""
    script = _tool_call_body(("double", f'{{"n": {2**70}}}'))
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(messages=[UserMessage("Double it")], tools=[double])
    assert result.messages[2].content == str(2**71)


def flood(city: str) -> str:
    """Raises with a message of 5 MB (a whole file or response body in it)."""
    raise ValueError("x" * 5_000_000)


def just_fits(city: str) -> str:
    """Raises with a message exactly as long as the limit."""
    raise ValueError("y" * inference._tools.MAX_TOOL_ERROR_CHARS)


@pytest.mark.anyio
async def test_a_huge_tool_error_is_cut_in_the_tool_message() -> None:
    """A tool's 5 MB exception message was sent whole to the model; the tool message carries
    its first MAX_TOOL_ERROR_CHARS characters and says how many were cut, a message of
    exactly that length is sent whole, and the exception (and ToolCallError) keep it all."""
    limit = inference._tools.MAX_TOOL_ERROR_CHARS
    assert limit == 4_000
    script = _tool_call_body(("flood", '{"city": "Oslo"}'), ("just_fits", '{"city": "Oslo"}'))
    done = raw(200, orjson.dumps(chat_body("Done.")))
    async with (
        FaultServer(raw(200, script), done, raw(200, script)) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(messages=[UserMessage("Oslo")], tools=[flood, just_fits])
        with pytest.raises(ToolCallError) as info:
            await client.run_tools(
                messages=[UserMessage("Oslo")], tools=[flood, just_fits], raise_tool_errors=True
            )
    cut, whole = (m.content for m in result.messages[2:4])
    prefix = "Error: flood raised ValueError: "
    assert cut == f"{prefix}{'x' * limit} [... {5_000_000 - limit:,} more characters cut]"
    assert whole == f"Error: just_fits raised ValueError: {'y' * limit}"
    sent = orjson.loads(server.attempts[1].body)["messages"]
    assert [m["content"] for m in sent[2:4]] == [cut, whole]
    assert len(server.attempts[1].body) < 20_000
    assert str(info.value) == "tool flood raised ValueError: " + "x" * 5_000_000
    assert str(info.value.__cause__) == "x" * 5_000_000


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def unprintable(city: str) -> str:
    """Raises an exception whose message cannot be read."""
    raise _Unprintable


@attrs.define
class _Pair:
    left: int
    right: int


def half_built(city: str) -> _Pair:
    """Returns an attrs instance missing an attribute (unstructuring it fails)."""
    pair = _Pair(1, 2)
    del pair.right
    return pair


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("function", "content"),
    [
        (unprintable, "Error: unprintable raised _Unprintable: (its message could not be read: "),
        (half_built, "Error: half_built returned a value that cannot be sent to the model: "),
    ],
)
async def test_a_tool_failing_in_odd_ways_is_still_an_error_message(
    function: Any, content: str
) -> None:
    """An exception whose str() raises, and a value whose unstructuring raises something
    other than TypeError, go back to the model as errors (they escaped run_tools as an
    ExceptionGroup of the task group running the calls)."""
    name = function.__name__
    script = _tool_call_body((name, '{"city": "Oslo"}'))
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.run_tools(messages=[UserMessage("Oslo")], tools=[function])
    assert result.content == "Done."
    assert result.messages[2].content.startswith(content)


@pytest.mark.anyio
async def test_several_answers_per_call_are_refused(emulator: Emulator) -> None:
    """The loop continues one conversation with the first choice: n=2 (in the call or as
    the client's default) had every other answer dropped; it is refused before sending,
    and n=1 in the call overrides the client's default."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError, match=r"n=2 would have every answer but"):
            await client.run_tools(messages=[UserMessage("Paris")], tools=[weather], n=2)
        with pytest.raises(RequestValidationError, match=r"n=2 would have every answer but"):
            async for _ in client.stream_tools(
                messages=[UserMessage("Paris")], tools=[weather], n=2
            ):
                pass
    async with ChatCompletionsClient(emulator.endpoint(), "key", n=3) as client:
        with pytest.raises(RequestValidationError, match=r"the client's n=3 would have"):
            await client.run_tools(messages=[UserMessage("Paris")], tools=[weather])
        assert emulator.requests == []
        result = await client.run_tools(messages=[UserMessage("Paris")], tools=[weather], n=1)
    assert result.rounds == 1
    assert all(r.json["n"] == 1 for r in emulator.requests)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("client_options", "call_options", "words"),
    [
        ({}, {"model_extras": {"n": 2}}, "n=2 in model_extras would have"),
        ({}, {"extra_body": {"n": 2}}, "n=2 in extra_body would have"),
        ({"model_extras": {"n": 3}}, {}, "n=3 in the client's model_extras would have"),
    ],
    ids=["model_extras", "extra_body", "client-model_extras"],
)
@pytest.mark.parametrize("method", ["run_tools", "stream_tools"])
async def test_several_answers_asked_for_through_extras_are_refused(
    emulator: Emulator,
    method: str,
    client_options: dict[str, Any],
    call_options: dict[str, Any],
    words: str,
) -> None:
    """n given in model_extras (the call's or the client's) or extra_body, which send it as
    the named n= does, is refused the same way: it was sent, and every answer but the first
    was dropped without a word."""
    messages = [UserMessage("Paris")]
    async with ChatCompletionsClient(emulator.endpoint(), "key", **client_options) as client:
        with pytest.raises(RequestValidationError, match=re.escape(words)):
            if method == "run_tools":
                await client.run_tools(messages=messages, tools=[weather], **call_options)
            else:
                async for _ in client.stream_tools(
                    messages=messages, tools=[weather], **call_options
                ):
                    pass
    assert emulator.requests == []


@pytest.mark.anyio
async def test_an_error_after_tools_ran_carries_the_conversation() -> None:
    """A model call that fails after a round of tools (here HTTP 400) raises with
    .messages: the conversation so far, tool results included, so the caller can continue
    without running the tools again (they were lost with the error)."""
    calls.clear()
    script = _tool_call_body(("weather", '{"city": "Oslo"}'))
    refused, sunny = error(400, message="too long"), raw(200, orjson.dumps(chat_body("Sunny.")))
    async with (
        FaultServer(raw(200, script), refused, sunny) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(inference.HttpResponseError) as info:
            await client.run_tools(messages=[UserMessage("Oslo?")], tools=[weather])
        history = info.value.messages
        assert [_role(m) for m in history] == ["user", "assistant", "tool"]
        assert calls == ["weather Oslo"]
        result = await client.run_tools(messages=history, tools=[weather])
    assert result.content == "Sunny."
    assert calls == ["weather Oslo"]  # the tool did not run again
    assert len(server.attempts) == 3


@pytest.mark.anyio
async def test_an_answer_without_choices_after_tools_ran_carries_the_conversation() -> None:
    """The answer after a round of tools has no choices: the InferenceError saying so
    carries .messages, like the other errors of a model call in the loop (it had None, so
    the tool results were lost)."""
    calls.clear()
    script = _tool_call_body(("weather", '{"city": "Oslo"}'))
    empty = chat_body()
    empty["choices"] = []
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(empty))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(InferenceError, match="round 1 of the tool loop has no choices") as info:
            await client.run_tools(messages=[UserMessage("Oslo?")], tools=[weather])
    assert info.value.messages is not None
    assert [_role(m) for m in info.value.messages] == ["user", "assistant", "tool"]
    assert calls == ["weather Oslo"]


def _role(message: Any) -> str:
    role = message["role"] if isinstance(message, dict) else message.role
    return str(getattr(role, "value", role))


@pytest.mark.anyio
async def test_a_final_answer_that_does_not_fit_carries_the_conversation() -> None:
    """StructuredOutputError from the final answer of run_tools(response_format=Class)
    carries .messages (up to the answer), like any error of a model call in the loop."""
    script = _tool_call_body(("weather", '{"city": "Oslo"}'))
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("not json")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(StructuredOutputError) as info:
            await client.run_tools(
                messages=[UserMessage("Oslo?")], tools=[weather], response_format=Report
            )
    assert [_role(m) for m in info.value.messages] == ["user", "assistant", "tool"]
    assert info.value.text == "not json"


@pytest.mark.anyio
async def test_a_repeated_tool_call_id_gets_an_id_of_its_own() -> None:
    """Two calls of one answer with the same id: the second gets call_<round>_<n> (not an id
    the answer uses already), so each tool message answers exactly one call (both answered
    'a', which of them each result belonged to was ambiguous)."""
    script = _with_ids(
        _tool_call_body(
            ("weather", '{"city": "Oslo"}'),
            ("weather", '{"city": "Rome"}'),
            ("weather", '{"city": "Lima"}'),
        ),
        "a",
        "a",
        "call_0_1",
    )
    async with (
        FaultServer(raw(200, script), raw(200, orjson.dumps(chat_body("Done.")))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        await client.run_tools(messages=[UserMessage("Weather?")], tools=[weather])
    sent = orjson.loads(server.attempts[1].body)["messages"]
    ids = [c["id"] for c in sent[1]["tool_calls"]]
    assert ids == ["a", "call_0_1_", "call_0_1"]
    assert [m["tool_call_id"] for m in sent[2:5]] == ids
    assert [orjson.loads(m["content"])["city"] for m in sent[2:5]] == ["Oslo", "Rome", "Lima"]


def quits(city: str) -> str:
    """Ends the program, as a command-line tool's helper might."""
    raise SystemExit(3)


async def quits_async(city: str) -> str:
    """The same, as a coroutine."""
    raise SystemExit(4)


@pytest.mark.parametrize("loop", ["run_tools", "stream_tools"])
@pytest.mark.parametrize(("tool", "code"), [(quits, 3), (quits_async, 4)], ids=["sync", "async"])
def test_a_tool_calling_sys_exit_ends_the_sync_call_not_the_client(
    loop: str, tool: Any, code: int
) -> None:
    """A tool's sys.exit() escaped from a task of its own: asyncio raised it out of the sync
    client's loop thread, the call said "the client is closed" and the process hung at exit.
    It is raised in the calling thread, as from a plain call, and the client goes on."""
    messages = [UserMessage(f"Use {tool.__name__} and weather for Paris")]
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        with pytest.raises(SystemExit) as info:
            if loop == "run_tools":
                client.run_tools(messages=messages, tools=[tool, weather])
            else:
                for _ in client.stream_tools(messages=messages, tools=[tool, weather]):
                    pass
        assert info.value.code == code
        assert client.complete(messages=[UserMessage("Hi")]).choices[0].message.content


@pytest.mark.anyio
async def test_a_tool_calling_sys_exit_raises_it_unwrapped(emulator: Emulator) -> None:
    """In the async API the tool's SystemExit comes out of run_tools() as it was raised (not
    in an exception group), as from a plain call."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(SystemExit) as info:
            await client.run_tools(
                messages=[UserMessage("Use quits for Paris")], tools=[quits, weather]
            )
    assert info.value.code == 3
