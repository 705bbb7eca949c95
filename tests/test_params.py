"""complete()'s parameters: declared once for both APIs, checked before anything is sent,
and the openai-python per-call options (max_completion_tokens, extra_body, extra_headers,
extra_query)."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest
from _spelled import spelled_in
from _typecheck import mypy_errors

import inference
from inference import _keywords, _params
from inference.aio import ChatCompletionsClient
from inference.exceptions import RequestValidationError
from inference.models import JsonSchemaFormat, UserMessage
from inference.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [UserMessage("Hi")]
WIRE = [{"role": "user", "content": "Hi"}]


def client_for(emu: Emulator, **kwargs: Any) -> ChatCompletionsClient:
    """An async client of the emulator's Azure AI models endpoint, retries off."""
    return ChatCompletionsClient(emu.endpoint(), "test-key", retry=0, **kwargs)


# -- declared once ---------------------------------------------------------------------------


def spelled_parameters(path: Path) -> set[str]:
    """The parameter names the constructors and ``complete()`` methods of a module spell out."""
    return spelled_in(path, ("__init__", "complete"))


def test_no_request_parameter_is_spelled_out_in_the_clients() -> None:
    """The clients take the parameters as ``**params: Unpack[...]``: no parameter of
    CompleteParams is spelled out in the client modules (frequency_penalty used to be, 16
    times), except the settings the client also takes for itself."""
    names = set(typing.get_type_hints(inference.CompleteParams))
    assert {"frequency_penalty", "max_completion_tokens", "extra_body", "timeout"} <= names
    own = {"model_extras", "headers", "timeout", "retry"}  # the client's own settings too
    for path in (ROOT / "inference" / "aio" / "_client.py", ROOT / "inference" / "_sync.py"):
        assert sorted((names - own) & spelled_parameters(path)) == [], path.name


def test_every_body_parameter_has_a_check_derived_from_its_declaration() -> None:
    """Each declared body parameter gets its check from its type; a type with no known check
    is refused at import instead of being sent unchecked."""
    body = set(typing.get_type_hints(inference.CompleteParams)) - _params._OPTIONS
    assert set(_params.RULES) == body
    assert set(typing.get_type_hints(inference.RequestParams)) == _params.DEFAULT_NAMES
    with pytest.raises(TypeError, match="no check for the declared type of x"):
        _params._rule("x", dict[str, int] | None)


@pytest.mark.anyio
async def test_an_unknown_parameter_name_is_refused_with_a_suggestion(emulator: Emulator) -> None:
    """A misspelt keyword raises RequestValidationError naming it and the likely one."""
    async with client_for(emulator) as client:
        with pytest.raises(
            RequestValidationError, match=r"temprature=0.5; did you mean temperature"
        ):
            await client.complete(messages=QUESTION, temprature=0.5)  # type: ignore[call-overload]
    with pytest.raises(RequestValidationError, match="did you mean max_tokens"):
        ChatCompletionsClient(emulator.endpoint(), max_token=5)  # type: ignore[call-arg]
    assert emulator.requests == []


MISSPELT_COMPLETE: list[tuple[dict[str, Any], str]] = [
    ({"message": QUESTION}, "unknown parameter message=[UserMessage(content='Hi'"),
    ({"message": QUESTION}, "; did you mean messages=?"),
    ({"mesages": QUESTION}, "; did you mean messages=?"),
    ({"Messages": QUESTION}, "; did you mean messages=?"),
    ({"messages": QUESTION, "stram": True}, "unknown parameter stram=True; did you mean stream=?"),
    ({"messages": QUESTION, "Stream": True}, "; did you mean stream=?"),
    ({"messages": QUESTION, "maxTokens": 5}, "; did you mean max_tokens=?"),
    ({"messages": QUESTION, "top-p": 0.5}, "; did you mean top_p=?"),
    ({"messages": QUESTION, "tool_choise": "auto"}, "; did you mean tool_choice=?"),
    ({"messages": QUESTION, "temperatrue": 0.5}, "; did you mean temperature=?"),
    ({"messages": QUESTION, "extra_header": {}}, "; did you mean extra_headers=?"),
    ({"messages": QUESTION, "stream_option": {}}, "; did you mean stream_options=?"),
    ({"bodi": {"messages": WIRE}}, "; did you mean body=?"),
    ({"messages": QUESTION, "x": 1}, "unknown parameter x=1 (a parameter this library does not"),
]


@pytest.mark.anyio
async def test_the_body_may_be_given_by_name(emulator: Emulator) -> None:
    """complete(body={...}), as azure-ai-inference takes it, sends the body as
    complete({...}) does, sync and async (it was refused: the body was positional only)."""
    async with client_for(emulator) as client:
        answer = await client.complete(body={"messages": WIRE, "seed": 7})
    assert answer.choices[0].message.content
    assert emulator.requests[-1].json["seed"] == 7


def test_the_body_may_be_given_by_name_to_the_sync_client() -> None:
    """The same with the sync client."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        assert client.complete(body={"messages": WIRE, "seed": 8}).choices[0].message.content
        assert emu.requests[-1].json["seed"] == 8


@pytest.mark.parametrize(("kwargs", "needle"), MISSPELT_COMPLETE)
@pytest.mark.anyio
async def test_a_misspelt_keyword_of_complete_names_the_one_meant(
    emulator: Emulator, kwargs: dict[str, Any], needle: str
) -> None:
    """messages=, stream= and body= are keywords of complete() too: a misspelling of them
    (message=, Messages=, stram=) was refused with no suggestion. Case, '_'/'-', a trailing
    s and one letter wrong, missing, extra or swapped are recognised; nothing is sent."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(**kwargs)
    assert str(info.value).startswith("complete() ")
    assert needle in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize(("kwargs", "needle"), MISSPELT_COMPLETE)
def test_a_misspelt_keyword_of_sync_complete_names_the_one_meant(
    kwargs: dict[str, Any], needle: str
) -> None:
    """The sync client says the same, before any connection (nothing listens on the
    endpoint's port: a request would fail with another error)."""
    with (
        inference.ChatCompletionsClient("http://127.0.0.1:9/v1", "key", retry=0) as client,
        pytest.raises(RequestValidationError) as info,
    ):
        client.complete(**kwargs)
    assert str(info.value).startswith("complete() ")
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("name", "candidates", "meant"),
    [
        ("Messages", ["messages", "model"], "messages"),
        ("maxTokens", ["max_tokens", "max_completion_tokens"], "max_tokens"),
        ("message", ["messages", "model_extras"], "messages"),
        ("max_round", ["max_rounds", "max_tokens"], "max_rounds"),
        ("credentail", ["credential", "credential_scopes"], "credential"),
        ("stram", ["stream", "stop", "seed"], "stream"),
        ("temperatrue", ["temperature", "top_p"], "temperature"),
        ("sed", ["seed", "stop"], "seed"),
        ("seeds", ["seed", "stop"], "seed"),
        ("x", ["n", "seed"], None),
        ("nn", ["n"], None),
        ("colour", ["model", "tools"], None),
    ],
)
def test_the_name_meant_is_found(name: str, candidates: list[str], meant: str | None) -> None:
    """Letter case and '_'/'-', then a trailing s, then one letter wrong, missing, extra or
    swapped; a single letter is not taken for another, and nothing alike gives None."""
    assert _keywords.closest(name, candidates) == meant


def test_the_sync_client_takes_the_same_declared_parameters() -> None:
    """The sync client's complete() and constructor check the same declarations."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(
            emu.endpoint(), "k", retry=0, max_completion_tokens=7
        ) as client,
    ):
        with pytest.raises(RequestValidationError, match="temperature must be a number"):
            client.complete(messages=QUESTION, temperature="hot")  # type: ignore[call-overload]
        client.complete(messages=QUESTION, n=1)
        assert emu.requests[-1].json == {"messages": WIRE, "max_completion_tokens": 7, "n": 1}


# -- validation ------------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    ({"messages": "Hi"}, "messages must be a list"),
    ({"messages": {"role": "user", "content": "Hi"}}, "messages must be a list"),
    ({"messages": 5}, "messages must be a list"),
    ({"messages": (m for m in QUESTION)}, "messages must be a list"),
    ({"stop": 5}, "stop must be a string or a list of strings, got int 5"),
    ({"stop": b"x"}, "stop must be a string or a list of strings, got bytes"),
    ({"stop": ["a", 1]}, r"stop\[1\] must be a str"),
    ({"tools": 5}, "tools must be a list of tools"),
    ({"tools": "get_weather"}, "tools must be a list of tools"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"temperature": math.nan}, "temperature must be a finite number"),
    ({"top_p": math.inf}, "top_p must be a finite number"),
    ({"frequency_penalty": -math.inf}, "frequency_penalty must be a finite number"),
    ({"presence_penalty": True}, "presence_penalty must be a number"),
    ({"max_tokens": -1}, "max_tokens must be at least 1"),
    ({"max_tokens": 0}, "max_tokens must be at least 1"),
    ({"max_tokens": 10.0}, "max_tokens must be a whole number"),
    ({"max_tokens": "10"}, "max_tokens must be a whole number"),
    ({"max_completion_tokens": -5}, "max_completion_tokens must be at least 1"),
    ({"n": True}, "n must be a whole number"),
    ({"n": 0}, "n must be at least 1"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": 2**80}, r"seed must fit in a signed 64-bit integer \(-9223372036854775808 to "),
    ({"seed": -(2**63) - 1}, "seed must fit in a signed 64-bit integer"),
    ({"max_tokens": 2**63}, "max_tokens must fit in a signed 64-bit integer"),
    ({"extra_body": {"k": [2**64]}}, r"extra_body\['k'\]\[0\] is 18446744073709551616, beyond"),
    ({"model": 5}, "model must be a str"),
    ({"model": " "}, "model must not be empty"),
    ({"user": 5}, "user must be a str"),
    ({"stream": "yes"}, "stream must be True or False"),
    ({"stream": True, "stream_options": 5}, "stream_options must be a dict"),
    ({"tool_choice": 5}, "tool_choice is a int"),
    ({"response_format": 5}, "response_format is a int"),
    ({"model_extras": 5}, "model_extras must be a dict"),
    ({"extra_body": [1]}, "extra_body must be a dict"),
    ({"extra_query": 5}, "extra_query must be a dict"),
    ({"extra_query": {"x": None}}, r"extra_query\['x'\] must be a str or a number"),
    ({"extra_headers": 5}, "extra_headers must be a dict"),
    ({"extra_body": {"x": math.nan}}, r"extra_body\['x'\] is nan, which JSON cannot carry"),
    ({"extra_body": {"a": {"b": [1.0, math.inf]}}}, r"extra_body\['a'\]\['b'\]\[1\] is inf"),
    ({"model_extras": {"top_k": -math.inf}}, r"model_extras\['top_k'\] is -inf"),
    ({"model_extras": {"opts": ({"p": math.nan},)}}, r"model_extras\['opts'\]\[0\]\['p'\]"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[m for _, m in BAD])
@pytest.mark.anyio
async def test_bad_arguments_raise_before_sending(
    emulator: Emulator, kwargs: dict[str, Any], message: str
) -> None:
    """Each bad argument raises RequestValidationError naming it; nothing is sent."""
    arguments = {"messages": QUESTION, **kwargs}
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match=message):
            await client.complete(**arguments)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"max_tokens": -1}, "max_tokens must be at least 1"),
        ({"stop": 5}, "stop must be a string or a list of strings"),
        ({"model": 5}, "model must be a str"),
        ({"model_extras": {"top_k": math.nan}}, r"model_extras\['top_k'\] is nan"),
    ],
)
def test_bad_client_defaults_raise_when_the_client_is_built(
    kwargs: dict[str, Any], message: str
) -> None:
    """Client-level defaults get the same checks, at construction."""
    with pytest.raises(RequestValidationError, match=message):
        ChatCompletionsClient("http://127.0.0.1:9/v1", **kwargs)


@pytest.mark.anyio
async def test_good_values_of_every_kind_are_sent(emulator: Emulator) -> None:
    """Ints where floats go, negative seeds, a tuple of messages, a stop string, a
    JsonSchemaFormat: accepted and sent in wire form."""
    async with client_for(emulator, model="m") as client:
        await client.complete(
            messages=tuple(QUESTION),
            temperature=0,
            top_p=1,
            frequency_penalty=-0.5,
            seed=-3,
            stop="END",
            max_tokens=1,
            response_format=JsonSchemaFormat(name="s", schema={"type": "object"}),
        )
    assert emulator.requests[-1].json == {
        "messages": WIRE,
        "model": "m",
        "temperature": 0,
        "top_p": 1,
        "frequency_penalty": -0.5,
        "seed": -3,
        "stop": ["END"],
        "max_tokens": 1,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "object"}},
        },
    }


@pytest.mark.parametrize("seed", [2**63 - 1, -(2**63)])
@pytest.mark.anyio
async def test_the_64_bit_bounds_are_sent(emulator: Emulator, seed: int) -> None:
    """The largest and smallest signed 64-bit seeds, and an extra_body number up to the
    unsigned 64-bit limit, go out as given."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, seed=seed, extra_body={"big": 2**64 - 1})
    assert emulator.requests[-1].json["seed"] == seed
    assert emulator.requests[-1].json["big"] == 2**64 - 1


# -- openai-python habits ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_completion_tokens_is_sent_and_passed_through(emulator: Emulator) -> None:
    """max_completion_tokens goes in the body; the Azure AI API does not define it, so the
    pass-through header goes with it."""
    async with client_for(emulator) as client:
        await client.complete(messages=QUESTION, max_completion_tokens=50)
    request = emulator.requests[-1]
    assert request.json == {"messages": WIRE, "max_completion_tokens": 50}
    assert request.headers["extra-parameters"] == "pass-through"


@pytest.mark.anyio
async def test_extra_body_is_merged_at_the_body_root(emulator: Emulator) -> None:
    """extra_body keys go at the root as given (models turned into wire data), beside the
    named parameters and model_extras."""
    async with client_for(emulator, model_extras={"top_k": 5}) as client:
        await client.complete(
            messages=QUESTION,
            temperature=0.1,
            extra_body={"reasoning_effort": "low", "context": [UserMessage("x")]},
        )
    request = emulator.requests[-1]
    assert request.json == {
        "messages": WIRE,
        "temperature": 0.1,
        "top_k": 5,
        "reasoning_effort": "low",
        "context": [{"role": "user", "content": "x"}],
    }
    assert request.headers["extra-parameters"] == "pass-through"


@pytest.mark.parametrize(
    ("client_kwargs", "call_kwargs", "key"),
    [
        ({}, {"temperature": 0.2}, "temperature"),
        ({"temperature": 0.2}, {}, "temperature"),
        ({}, {"model_extras": {"top_k": 1}}, "top_k"),
        ({"model_extras": {"top_k": 1}}, {}, "top_k"),
        ({}, {}, "messages"),
        ({}, {"stream": True}, "stream"),
    ],
)
@pytest.mark.anyio
async def test_extra_body_may_not_set_a_key_twice(
    emulator: Emulator, client_kwargs: dict[str, Any], call_kwargs: dict[str, Any], key: str
) -> None:
    """A key of extra_body already set by a named parameter, a client default, model_extras
    or the client itself raises instead of silently replacing one of the two values."""
    async with client_for(emulator, **client_kwargs) as client:
        with pytest.raises(RequestValidationError, match=rf"extra_body \['{key}'\] already set"):
            await client.complete(messages=QUESTION, extra_body={key: 1}, **call_kwargs)
    assert emulator.requests == []


@pytest.mark.anyio
async def test_extra_body_with_a_raw_body(emulator: Emulator) -> None:
    """extra_body adds to a positional JSON body too, with the same collision rule."""
    async with client_for(emulator) as client:
        await client.complete({"messages": WIRE}, extra_body={"top_k": 2})
        assert emulator.requests[-1].json == {"messages": WIRE, "top_k": 2}
        with pytest.raises(RequestValidationError, match="already set"):
            await client.complete({"messages": WIRE}, extra_body={"messages": []})
        with pytest.raises(RequestValidationError, match="not both; got temperature"):
            await client.complete({"messages": WIRE}, temperature=0.5)
    assert len(emulator.requests) == 1


BAD_BODIES = [
    ({"messages": WIRE, "temperature": math.nan}, r"body\['temperature'\] is nan"),
    ({"messages": WIRE, "logit_bias": {"50256": -math.inf}}, r"body\['logit_bias'\]\['50256'\]"),
    (
        {"messages": [{"role": "user", "content": "Hi", "weight": math.inf}]},
        r"body\['messages'\]\[0\]\['weight'\] is inf, which JSON cannot carry",
    ),
    ({"messages": WIRE, "seed": 2**64}, r"body\['seed'\] is 18446744073709551616, beyond"),
    ({"messages": WIRE, "opts": (1, -(2**63) - 1)}, r"body\['opts'\]\[1\] is -9223372036854775809"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
@pytest.mark.anyio
async def test_a_positional_body_gets_the_json_number_check(
    emulator: Emulator, body: dict[str, Any], message: str
) -> None:
    """complete(body) refuses a NaN or infinite float, or a whole number JSON is not written
    with, anywhere in the body, naming its place, as extra_body and model_extras do; nothing
    is sent (NaN went out as null)."""
    async with client_for(emulator) as client:
        with pytest.raises(RequestValidationError, match=message):
            await client.complete(body)
    assert emulator.requests == []


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_a_positional_body_gets_the_json_number_check_sync(
    body: dict[str, Any], message: str
) -> None:
    """The same check on the sync client's complete(body)."""
    with Emulator().run_in_thread() as emulator:
        client = inference.ChatCompletionsClient(emulator.endpoint(), "test-key", retry=0)
        with client, pytest.raises(RequestValidationError, match=message):
            client.complete(body)
        assert emulator.requests == []


@pytest.mark.anyio
async def test_extra_headers_and_extra_query(emulator: Emulator) -> None:
    """extra_headers are sent like headers; extra_query adds query parameters beside the
    endpoint's api-version."""
    async with client_for(emulator) as client:
        await client.complete(
            messages=QUESTION,
            headers={"x-a": "1"},
            extra_headers={"x-b": "2"},
            extra_query={"trace": "on", "level": 3},
        )
        request = emulator.requests[-1]
        assert (request.headers["x-a"], request.headers["x-b"]) == ("1", "2")
        assert request.query["trace"] == "on"
        assert request.query["level"] == "3"
        assert "api-version" in request.query
        stream = await client.complete(messages=QUESTION, stream=True, extra_query={"s": "1"})
        async with stream:
            async for _ in stream:
                pass
        assert emulator.requests[-1].query["s"] == "1"
        with pytest.raises(RequestValidationError, match="in both headers= and extra_headers="):
            await client.complete(
                messages=QUESTION, headers={"X-A": "1"}, extra_headers={"x-a": "2"}
            )
        with pytest.raises(RequestValidationError, match="use the client's api_version="):
            await client.complete(messages=QUESTION, extra_query={"api-version": "2020-01-01"})
    assert len(emulator.requests) == 2


# -- typed message and tool dicts -------------------------------------------------------------

TYPED = """
from inference import ChatCompletionsClient
from inference.models import ChatMessageParam, ToolParam, UserMessage

def run(client: ChatCompletionsClient) -> None:
    messages: list[ChatMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    tools: list[ToolParam] = [{"type": "function", "function": {"name": "f"}}]
    client.complete(messages=[*messages, UserMessage("and?")], tools=tools, tool_choice="auto")
    client.complete(messages=[{"role": "user", "content": "x"}], max_completion_tokens=5)
    client.complete(messages=[{"role": "robot", "content": "x"}])  # error: role
    client.complete(messages=messages, temperature="hot")  # error: temperature
    client.complete(messages=messages, tool_choice="sometimes")  # error: tool_choice
    client.complete(messages=messages, temprature=0.5)  # error: unknown name
"""


def test_typed_dicts_type_check_messages_tools_and_parameters(tmp_path: Path) -> None:
    """mypy accepts the typed dict spelling of messages and tools beside the models, and
    rejects a wrong role, a wrong parameter type, a wrong tool choice and an unknown name;
    run_tools() and stream_tools() take the same declared parameters."""
    reported, expected, output = mypy_errors(TYPED, tmp_path)
    assert reported == expected, output


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_header": 5}, "key_header must be a string or a list of strings"),
        ({"key_header": ["x-key", 1]}, r"key_header\[1\] must be a str"),
        ({"credential_scopes": 5}, "credential_scopes must be a string or a list of strings"),
        ({"credential_scopes": ["a", "b"]}, "exactly one scope, got 2"),
        ({"logging_enable": "yes"}, "logging_enable must be True or False"),
        ({"log_request_body": 1}, "log_request_body must be True or False"),
        ({"trust_env": 3}, "trust_env must be True or False"),
        ({"enforce_https": "no"}, "enforce_https must be True or False"),
    ],
)
def test_client_options_are_checked_too(kwargs: dict[str, Any], message: str) -> None:
    """The client's own keywords get the same treatment: a RequestValidationError naming
    them (a number as key_header= was a TypeError, a string flag was taken as true)."""
    with pytest.raises(RequestValidationError, match=message):
        ChatCompletionsClient("http://127.0.0.1:9/v1", **kwargs)
    with pytest.raises(RequestValidationError, match=message):
        inference.EmbeddingsClient("http://127.0.0.1:9/v1", **kwargs)
