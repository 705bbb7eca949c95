"""Values JSON cannot carry are refused by every path into a request, naming their place:
whole numbers too long to print, lists and dicts that hold themselves, nesting deeper than
the JSON encoder writes."""

from __future__ import annotations

import enum
import math
import numbers
import timeit
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import orjson
import pytest

import inference
from inference import _values
from inference import models as inference_models
from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.exceptions import RequestValidationError
from inference.testing import Emulator

HUGE = 10**5000  # Python refuses to print a whole number of more than 4300 digits
WIRE = [{"role": "user", "content": "Hi"}]


def nested(levels: int) -> Any:
    """``levels`` lists one inside another, the innermost holding 1."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def cycle() -> list[Any]:
    """A list that holds itself."""
    loop: list[Any] = []
    loop.append(loop)
    return loop


def client_for(emu: Emulator) -> ChatCompletionsClient:
    """An async client of the emulator, retries off."""
    return ChatCompletionsClient(emu.endpoint(), "test-key", retry=0)


CALLS: list[tuple[str, Callable[[Any], dict[str, Any]], str]] = [
    ("seed", lambda v: {"messages": WIRE, "seed": v}, "seed must fit in a signed 64-bit"),
    ("max_tokens", lambda v: {"messages": WIRE, "max_tokens": v}, "max_tokens must "),
    ("n", lambda v: {"messages": WIRE, "n": v}, "n must "),
    ("temperature", lambda v: {"messages": WIRE, "temperature": v}, "temperature is "),
    (
        "model_extras",
        lambda v: {"messages": WIRE, "model_extras": {"a": v}},
        r"model_extras['a'] is",
    ),
    ("extra_body", lambda v: {"messages": WIRE, "extra_body": {"a": [v]}}, "extra_body['a'][0] is"),
    (
        "messages",
        lambda v: {"messages": [{"role": "user", "content": "x", "w": {"k": v}}]},
        "messages[0]['w']['k'] is",
    ),
]


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize(("name", "call", "place"), CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.anyio
async def test_a_huge_whole_number_is_refused_naming_its_place(
    emulator: Emulator, name: str, call: Callable[[Any], dict[str, Any]], place: str, sign: int
) -> None:
    """A whole number of 5001 digits raised a raw ValueError (Python would not print it) or a
    message without its place; now a RequestValidationError names the place and the length."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(**call(sign * HUGE))
    message = str(info.value)
    assert place in message
    negative = "negative " if sign < 0 else ""
    assert f"a {negative}whole number of 5001 digits" in message
    assert len(message) < 400
    assert emulator.requests == []


@pytest.mark.anyio
async def test_a_huge_whole_number_in_a_body_is_refused(emulator: Emulator) -> None:
    """complete(body), sync and async, and the client's defaults: the same."""
    async with client_for(emulator) as client:
        with pytest.raises(
            RequestValidationError, match=r"body\['seed'\] is a whole number of 5001"
        ):
            await client.complete({"messages": WIRE, "seed": HUGE})
    with pytest.raises(RequestValidationError, match=r"model_extras\['a'\] is a whole number"):
        ChatCompletionsClient(emulator.endpoint(), "k", model_extras={"a": HUGE})
    with pytest.raises(
        RequestValidationError, match=r"seed must fit .* got a whole number of 5001"
    ):
        inference.ChatCompletionsClient(emulator.endpoint(), "k", seed=HUGE)
    with pytest.raises(RequestValidationError, match=r"stop\[0\] must be a str, got int a whole"):
        ChatCompletionsClient(emulator.endpoint(), "k", stop=[HUGE])
    with pytest.raises(RequestValidationError, match=r"unknown parameter x=a whole number of 5001"):
        async with client_for(emulator) as client:
            await client.complete(messages=WIRE, x=HUGE)  # type: ignore[call-arg]
    assert emulator.requests == []


@pytest.mark.anyio
async def test_embeddings_refuse_a_huge_whole_number_naming_it(emulator: Emulator) -> None:
    """embed(dimensions=...) named no place ("not JSON-serializable"); model_extras raised a
    raw ValueError."""
    async with EmbeddingsClient(emulator.endpoint(), "k", retry=0) as client:
        with pytest.raises(
            RequestValidationError,
            match=r"dimensions must be a positive int .* got a whole number of 5001",
        ):
            await client.embed(input=["x"], dimensions=HUGE)
        with pytest.raises(
            RequestValidationError, match=r"model_extras\['a'\] is a whole number of 5001"
        ):
            await client.embed(input=["x"], model_extras={"a": HUGE})
        with pytest.raises(
            RequestValidationError, match=r"encoding_format must be one of .* got a whole"
        ):
            await client.embed(input=["x"], encoding_format=HUGE)  # type: ignore[arg-type]
    assert emulator.requests == []


def test_whole_numbers_are_shown_in_full_up_to_40_digits() -> None:
    """Short enough to read: in full; longer: by their number of digits (exact)."""
    assert _values.show_int(10**40 - 1) == "9" * 40
    assert _values.show_int(10**40) == "a whole number of 41 digits"
    assert _values.show_int(-(10**4999)) == "a negative whole number of 5000 digits"
    assert _values.show_int(10**5000 - 1) == "a whole number of 5000 digits"
    assert _values.show([HUGE]) == "<a list too large to print>"


PLACES: list[tuple[str, Callable[[Any], dict[str, Any]], str]] = [
    ("body", lambda v: {"body": {"messages": WIRE, "r": v}}, "body['r']"),
    ("extra_body", lambda v: {"messages": WIRE, "extra_body": {"r": v}}, "extra_body['r']"),
    ("model_extras", lambda v: {"messages": WIRE, "model_extras": {"r": v}}, "model_extras['r']"),
    (
        "messages",
        lambda v: {"messages": [{"role": "user", "content": "x", "r": v}]},
        "messages[0]['r']",
    ),
]


@pytest.mark.parametrize(("name", "call", "place"), PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.anyio
async def test_a_cycle_is_refused_naming_it(
    emulator: Emulator, name: str, call: Callable[[Any], dict[str, Any]], place: str
) -> None:
    """A list holding itself raised RecursionError; now the message names the loop."""
    arguments = call(cycle())
    body = arguments.pop("body", None)
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(body, **arguments)
    assert str(info.value).startswith(f"{place} holds itself ({place}[0] is {place}): a cycle")
    assert emulator.requests == []


@pytest.mark.parametrize(("name", "call", "place"), PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.anyio
async def test_nesting_past_the_encoders_limit_is_refused(
    emulator: Emulator, name: str, call: Callable[[Any], dict[str, Any]], place: str
) -> None:
    """A list nested 100,000 deep raised RecursionError; now the message names the place and
    the encoder's limit of 254 levels."""
    arguments = call(nested(100_000))
    body = arguments.pop("body", None)
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(body, **arguments)
    message = str(info.value)
    assert message.startswith(f"{place}[0][0]")
    assert "it takes at most 254 levels of lists and dicts" in message
    assert emulator.requests == []


def test_the_limit_is_the_json_encoders() -> None:
    """orjson writes 254 levels and refuses 255: the limit the check uses."""
    assert _values.MAX_DEPTH == 254
    orjson.dumps(nested(254))
    with pytest.raises(orjson.JSONEncodeError, match="Recursion limit"):
        orjson.dumps(nested(255))


@pytest.mark.parametrize("where", ["body", "extra_body", "model_extras", "messages"])
@pytest.mark.anyio
async def test_the_deepest_body_the_encoder_writes_is_sent(emulator: Emulator, where: str) -> None:
    """Exactly 254 levels (the body's dict included) is sent; one more is refused."""
    # The body dict is level 1: a value at its root may hold 253 levels; in a message
    # (body, messages list, message dict) 251.
    room = 251 if where == "messages" else 253
    async with client_for(emulator) as client:
        for levels, fits in ((room, True), (room + 1, False)):
            value = nested(levels)
            if where == "body":
                call: dict[str, Any] = {
                    "body": {"messages": WIRE, "r": value},
                    "headers": {"extra-parameters": "pass-through"},
                }
            elif where == "messages":
                call = {"messages": [{"role": "user", "content": "x", "r": value}]}
            else:
                call = {"messages": WIRE, where: {"r": value}}
            body = call.pop("body", None)
            if fits:
                await client.complete(body, **call)
            else:
                with pytest.raises(RequestValidationError, match="at most 254 levels"):
                    await client.complete(body, **call)
    assert len(emulator.requests) == 1
    sent = emulator.requests[0].json
    found = sent["messages"][0]["r"] if where == "messages" else sent["r"]
    assert found == nested(room)


def test_the_sync_client_refuses_a_cycle_and_a_huge_number() -> None:
    """The sync API runs the same checks."""
    with Emulator().run_in_thread() as emulator:
        client = inference.ChatCompletionsClient(emulator.endpoint(), "test-key", retry=0)
        with client:
            with pytest.raises(RequestValidationError, match=r"body\['r'\] holds itself"):
                client.complete({"messages": WIRE, "r": cycle()})
            with pytest.raises(RequestValidationError, match="a whole number of 5001 digits"):
                client.complete(messages=WIRE, seed=HUGE)
        assert emulator.requests == []


def test_the_walk_stays_cheap_for_an_ordinary_body() -> None:
    """The check runs on every request: a typical body (a dozen messages, a few extras) is
    walked in well under a millisecond."""
    body = {
        "messages": [{"role": "user", "content": "hello " * 50}] * 12,
        "temperature": 0.5,
        "top_k": 40,
        "logit_bias": {"50256": -100.0},
        "tags": ["a", "b", {"c": [1, 2.5, None, True]}],
    }
    seconds = min(
        timeit.repeat(lambda: _values.check_json_value(body, "body"), number=200, repeat=3)
    )
    assert seconds / 200 < 1e-3


# -- subclasses of float and int, and other number types ---------------------------------------


class Float(float):
    """A float subclass, as numpy.float64 is."""


class Int(int):
    """An int subclass."""


class Level(enum.IntEnum):
    """An IntEnum: its members are ints."""

    LOW = 5


class Index:
    """An integer type that is no int subclass but has __index__, as numpy.int64 is."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class Real:
    """A number type registered as numbers.Real (not a float), as numpy.float32 is."""

    def __float__(self) -> float:
        return 0.25


numbers.Real.register(Real)


class NotFinite:
    """A registered numbers.Real whose value is NaN, as numpy.float32('nan') is."""

    def __float__(self) -> float:
        return math.nan


numbers.Real.register(NotFinite)


@pytest.mark.anyio
async def test_number_subclasses_are_accepted_and_sent_as_plain_numbers(
    emulator: Emulator,
) -> None:
    """temperature=Float(0.5) and max_tokens=Level.LOW were refused ("must be a number (int
    or float), got F 0.5"); they are accepted, and the JSON carries plain numbers. A float
    subclass in extra_body, which the JSON encoder refuses, is written as a plain float."""
    async with client_for(emulator) as client:
        await client.complete(
            messages=WIRE,
            temperature=Float(0.5),
            top_p=Real(),  # type: ignore[arg-type]
            frequency_penalty=Level.LOW,
            presence_penalty=Int(1),
            max_tokens=Level.LOW,
            seed=Index(-7),  # type: ignore[arg-type]
            n=Int(1),
            extra_body={"w": [Float(1.5), Index(3)]},
        )
    sent = emulator.requests[-1].body
    assert (
        b'"temperature":0.5,"top_p":0.25,"frequency_penalty":5,"presence_penalty":1,'
        b'"max_tokens":5,"seed":-7,"n":1,"w":[1.5,3]}' in sent
    )


@pytest.mark.anyio
async def test_client_defaults_and_embeddings_take_number_subclasses(emulator: Emulator) -> None:
    """The client's defaults and embed(dimensions=) get the same: sent as plain numbers."""
    async with ChatCompletionsClient(
        emulator.endpoint(), "k", retry=0, temperature=Float(0.5), max_tokens=Index(9)
    ) as client:  # type: ignore[arg-type]
        await client.complete(messages=WIRE)
    assert b'"temperature":0.5,"max_tokens":9' in emulator.requests[-1].body
    async with EmbeddingsClient(emulator.endpoint(), "k", retry=0) as embeddings:
        await embeddings.embed(input=["x"], dimensions=Index(4))  # type: ignore[arg-type]
    assert b'"dimensions":4' in emulator.requests[-1].body


BAD_NUMBERS = [
    ({"temperature": Float("nan")}, "temperature must be a finite number, got nan"),
    ({"max_tokens": Level.LOW, "n": Int(0)}, "n must be at least 1"),
    ({"max_tokens": Float(3.0)}, "max_tokens must be a whole number (int), got Float 3.0"),
    ({"presence_penalty": True}, "presence_penalty must be a number (int or float), got bool"),
    ({"seed": False}, "seed must be a whole number (int), got bool"),
    ({"extra_body": {"w": Float("inf")}}, "extra_body['w'] is inf, which JSON cannot carry"),
    ({"model_extras": {"w": NotFinite()}}, "the request holds a value that is not JSON"),
    ({"temperature": Fraction(10**400)}, "temperature must be a finite number, got inf"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_NUMBERS)
@pytest.mark.anyio
async def test_number_subclasses_get_the_same_checks(
    emulator: Emulator, kwargs: dict[str, Any], message: str
) -> None:
    """A subclass's value is checked like a plain number's; bool stays refused."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=WIRE, **kwargs)
    assert str(info.value).startswith(message)
    assert emulator.requests == []


RICHER = [
    (
        "tools",
        lambda v: {"tools": [{"type": "function", "function": {"name": "f", "parameters": v}}]},
        "tools[0]['function']['parameters']",
    ),
    ("tool_choice", lambda v: {"tool_choice": {"type": "function", "x": v}}, "tool_choice['x']"),
    (
        "response_format",
        lambda v: {"response_format": {"type": "json_object", "x": v}},
        "response_format['x']",
    ),
    (
        "stream_options",
        lambda v: {"stream": True, "stream_options": {"x": v}},
        "stream_options['x']",
    ),
]


@pytest.mark.parametrize(("name", "call", "place"), RICHER, ids=[r[0] for r in RICHER])
@pytest.mark.anyio
async def test_the_dicts_of_tools_and_formats_get_the_same_walk(
    emulator: Emulator, name: str, call: Callable[[Any], dict[str, Any]], place: str
) -> None:
    """A cycle in a tool, tool_choice, response_format or stream_options dict raised
    RecursionError, and a NaN in one was sent as null: both are refused naming the place."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=WIRE, **call(cycle()))
        assert str(info.value).startswith(f"{place} holds itself ({place}[0] is {place})")
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=WIRE, **call([float("nan")]))
        assert str(info.value).startswith(f"{place}[0] is nan, which JSON cannot carry")
    assert emulator.requests == []


LONE = "caf\udce9"  # b"caf\xe9" decoded with errors="surrogateescape"


@pytest.mark.parametrize(
    ("kwargs", "place"),
    [
        ({"messages": [inference_models.UserMessage(LONE)]}, "['messages'][0]['content']"),
        ({"messages": [{"role": "user", "content": LONE}]}, "['messages'][0]['content']"),
        ({"messages": WIRE, "user": LONE}, "['user']"),
        ({"messages": WIRE, "model_extras": {LONE: 1}}, "the key 'caf\\udce9' in"),
    ],
    ids=["model", "dict", "user", "extras-key"],
)
@pytest.mark.anyio
async def test_text_that_is_not_unicode_is_refused_naming_its_place(
    emulator: Emulator, kwargs: dict[str, Any], place: str
) -> None:
    """A lone surrogate (bytes that were not UTF-8, decoded with surrogateescape) said "not
    JSON-serializable ... Pass str" of a str; now the message names the place, the character
    and what to do."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(**kwargs)
    message = str(info.value)
    assert place in message
    assert "the lone surrogate '\\udce9' at character 3" in message
    assert "errors='replace'" in message
    assert "JSON-serializable" not in message
    assert emulator.requests == []


@pytest.mark.anyio
async def test_embeddings_refuse_text_that_is_not_unicode(emulator: Emulator) -> None:
    """The embeddings input goes through the same check."""
    async with EmbeddingsClient(emulator.endpoint(), "k", retry=0) as client:
        with pytest.raises(RequestValidationError, match=r"\['input'\]\[1\] holds text"):
            await client.embed(input=["fine", LONE])
    assert emulator.requests == []
