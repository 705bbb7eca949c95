"""Structured output into Python classes: schema derivation (golden schemas per class kind),
parsing, and ``complete(response_format=Class)`` against the emulator and a scripted server
(refusal, content filter, truncation, invalid answers), async and sync, streamed and not."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import re
import typing
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

import attrs
import orjson
import pydantic
import pytest
from _fault_server import FaultServer, chat_body, chunk_event, raw, sse

import inference
from inference import _parse, _schema
from inference.aio import ChatCompletionsClient
from inference.exceptions import (
    RefusalError,
    RequestValidationError,
    StructuredOutputError,
    TruncatedOutputError,
)
from inference.models import JsonSchemaFormat, UserMessage
from inference.testing import Emulator


class Role(enum.Enum):
    """A job."""

    ENGINEER = "engineer"
    POET = "poet"


# -- the same shape in the four class kinds ---------------------------------------------------


@attrs.define
class AttrsAddress:
    """A postal address."""

    street: str = attrs.field(metadata={"description": "Street and number"})
    city: str


@attrs.define
class AttrsPerson:
    """A person."""

    name: str
    age: int | None
    role: Role
    tags: list[str]
    status: Literal["active", "retired"]
    address: AttrsAddress


@dataclasses.dataclass
class DataAddress:
    """A postal address."""

    street: str = dataclasses.field(metadata={"description": "Street and number"})
    city: str = ""


@dataclasses.dataclass
class DataPerson:
    """A person."""

    name: str
    age: int | None
    role: Role
    tags: list[str]
    status: Literal["active", "retired"]
    address: DataAddress


class DictAddress(TypedDict):
    """A postal address."""

    street: Annotated[str, "Street and number"]
    city: str


class DictPerson(TypedDict):
    """A person."""

    name: str
    age: int | None
    role: Role
    tags: list[str]
    status: Literal["active", "retired"]
    address: DictAddress


class PydanticAddress(pydantic.BaseModel):
    """A postal address."""

    street: str = pydantic.Field(description="Street and number")
    city: str


class PydanticPerson(pydantic.BaseModel):
    """A person."""

    name: str
    age: int | None
    role: Role
    tags: list[str]
    status: Literal["active", "retired"]
    address: PydanticAddress


KINDS = {
    "attrs": (AttrsPerson, "AttrsAddress"),
    "dataclass": (DataPerson, "DataAddress"),
    "typeddict": (DictPerson, "DictAddress"),
    "pydantic": (PydanticPerson, "PydanticAddress"),
}


def golden(address: str) -> dict[str, Any]:
    """The strict schema every kind of Person must yield (the nested class named ``address``)."""
    return {
        "type": "object",
        "description": "A person.",
        "properties": {
            "name": {"type": "string"},
            "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "role": {"type": "string", "enum": ["engineer", "poet"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": ["active", "retired"]},
            "address": {"$ref": f"#/$defs/{address}"},
        },
        "required": ["name", "age", "role", "tags", "status", "address"],
        "additionalProperties": False,
        "$defs": {
            address: {
                "type": "object",
                "description": "A postal address.",
                "properties": {
                    "street": {"type": "string", "description": "Street and number"},
                    "city": {"type": "string"},
                },
                "required": ["street", "city"],
                "additionalProperties": False,
            }
        },
    }


ANSWER = {
    "name": "Ada",
    "age": None,
    "role": "poet",
    "tags": ["math"],
    "status": "retired",
    "address": {"street": "1 Main St", "city": "London"},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_golden_schema_per_class_kind(kind: str) -> None:
    """attrs classes, dataclasses, TypedDicts and pydantic models give the same strict schema:
    all fields required, no additional properties, Optional as a union with null, enums and
    literals as enum lists, nested classes in $defs, field descriptions kept."""
    cls, address = KINDS[kind]
    assert _schema.class_kind(cls) == kind
    assert _schema.object_schema(cls) == golden(address)


@pytest.mark.parametrize("kind", list(KINDS))
def test_json_schema_format_is_strict_and_named(kind: str) -> None:
    """The response format carries the class name, its docstring and strict=True."""
    cls, address = KINDS[kind]
    fmt = _schema.json_schema_format(cls)
    schema = golden(address)
    del schema["description"]
    assert fmt == JsonSchemaFormat(
        name=cls.__name__, schema=schema, description="A person.", strict=True
    )


@attrs.define
class Tree:
    """A node with children of its own kind."""

    label: str
    children: list[Tree]
    parent: Leaf | None


@attrs.define
class Leaf:
    when: datetime.date
    weight: float
    ok: bool
    ratio: int | float


def test_recursive_and_scalar_types() -> None:
    """A class holding itself refers to the root ('#'); dates, floats, bools and unions of
    scalars have their schemas; a class without docstring has no description."""
    schema = _schema.object_schema(Tree)
    assert schema["properties"]["children"] == {"type": "array", "items": {"$ref": "#"}}
    assert schema["properties"]["parent"] == {"anyOf": [{"$ref": "#/$defs/Leaf"}, {"type": "null"}]}
    assert schema["$defs"]["Leaf"] == {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date"},
            "weight": {"type": "number"},
            "ok": {"type": "boolean"},
            "ratio": {"anyOf": [{"type": "integer"}, {"type": "number"}]},
        },
        "required": ["when", "weight", "ok", "ratio"],
        "additionalProperties": False,
    }


@attrs.define
class HasDict:
    data: dict[str, int]


@attrs.define
class HasAny:
    data: Any


@attrs.define
class HasPair:
    pair: tuple[int, str]


@pytest.mark.parametrize(
    ("cls", "words"),
    [(HasDict, "HasDict.data"), (HasAny, "HasAny.data"), (HasPair, "HasPair.pair")],
)
def test_types_a_strict_schema_cannot_describe(cls: type, words: str) -> None:
    """dict, Any and fixed tuples are refused with the field's name and what to use."""
    with pytest.raises(RequestValidationError, match=words) as info:
        _schema.object_schema(cls)
    assert "list[...]" in str(info.value)


def test_a_plain_class_is_refused() -> None:
    """A class that is none of the four kinds is refused with the kinds to use."""

    class Plain:
        pass

    with pytest.raises(RequestValidationError, match="attrs class, a dataclass"):
        _schema.object_schema(Plain)


class NotAModel:
    """A plain class: not attrs, dataclass, TypedDict or pydantic."""


KINDS_NAMED = "an attrs class, a dataclass, a TypedDict or a pydantic model"


@pytest.mark.parametrize(
    ("given", "start"),
    [
        (NotAModel, "response_format=NotAModel is a class that is not an attrs class, a "),
        (5, "response_format is a int; use 'text', "),
        (
            inference.models.JsonSchemaFormat,
            "response_format=JsonSchemaFormat is a response-format ",
        ),
    ],
)
@pytest.mark.anyio
async def test_a_refused_response_format_names_the_classes_accepted(
    emulator: Emulator, given: Any, start: str
) -> None:
    """response_format=<a plain class> or =5 said "response_format is a type; use 'text', ..."
    without the classes it takes: the message names them (and the plain class). Nothing is
    sent."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=[UserMessage("Hi")], response_format=given)
    message = str(info.value)
    assert message.startswith(start)
    assert message.endswith(f"or a class to parse the answer into: {KINDS_NAMED}")
    assert emulator.requests == []


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_parse_into_each_kind(kind: str) -> None:
    """Valid JSON becomes an instance of the class, nested class and enum included."""
    cls, _ = KINDS[kind]
    person = _parse.parse_json(json.dumps(ANSWER), cls)
    if kind == "typeddict":
        assert person == {**ANSWER, "role": Role.POET}
        return
    assert isinstance(person, cls)
    assert person.role is Role.POET
    assert person.age is None
    assert person.address.city == "London"
    assert type(person.address).__name__.endswith("Address")


@pytest.mark.parametrize("kind", ["attrs", "dataclass", "typeddict"])
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"age": "forty"}, "age"),
        ({"role": "king"}, "role"),
        ({"status": "busy"}, "status"),
        ({"extra": 1}, "extra"),
        ({"address": "London"}, "address"),
    ],
)
def test_parse_refuses_what_does_not_fit(kind: str, change: dict[str, Any], words: str) -> None:
    """Wrong types, unknown enum or literal values, unknown keys and a string for an object
    raise ParseFailure naming the field (cattrs errors never escape)."""
    cls, _ = KINDS[kind]
    with pytest.raises(_parse.ParseFailure, match=words):
        _parse.parse_json(json.dumps({**ANSWER, **change}), cls)


def test_parse_refuses_bad_json_and_missing_fields() -> None:
    """Text that is not JSON, and a missing field, raise ParseFailure."""
    with pytest.raises(_parse.ParseFailure, match="not valid JSON"):
        _parse.parse_json('{"name": ', AttrsPerson)
    partial = {k: v for k, v in ANSWER.items() if k != "tags"}
    with pytest.raises(_parse.ParseFailure, match="tags"):
        _parse.parse_json(json.dumps(partial), AttrsPerson)
    with pytest.raises(_parse.ParseFailure, match="age"):
        _parse.parse_json(json.dumps({**ANSWER, "age": "x"}), PydanticPerson)


def test_parse_scalars_strictly() -> None:
    """A bool is not an int, an int is a float, dates come from ISO text."""
    leaf = _parse.parse_json('{"when": "2024-05-01", "weight": 3, "ok": true, "ratio": 2}', Leaf)
    assert leaf == Leaf(datetime.date(2024, 5, 1), 3.0, True, 2)
    assert type(leaf.weight) is float
    with pytest.raises(_parse.ParseFailure, match="weight"):
        _parse.parse_json('{"when": "2024-05-01", "weight": true, "ok": true, "ratio": 2}', Leaf)


# -- complete(response_format=Class) ----------------------------------------------------------

QUESTION = [UserMessage("Tell me about Ada Lovelace from London")]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(KINDS))
async def test_complete_sends_the_schema_and_parses(emulator: Emulator, kind: str) -> None:
    """The request carries the strict json_schema format; message.parsed holds an instance
    built from the emulator's schema-valid answer, and content keeps the raw JSON."""
    cls, address = KINDS[kind]
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=cls)
    sent = emulator.requests[-1].json["response_format"]
    schema = golden(address)
    description = schema.pop("description")
    assert sent == {
        "type": "json_schema",
        "json_schema": {
            "name": cls.__name__,
            "schema": schema,
            "description": description,
            "strict": True,
        },
    }
    message = result.choices[0].message
    parsed = message.parsed
    assert parsed is not None
    data = orjson.loads(message.content or "")
    if kind == "typeddict":
        assert parsed == {**data, "role": Role(data["role"])}
    else:
        assert isinstance(parsed, cls)
        assert parsed.name == data["name"] == "Ada Lovelace"


@pytest.mark.anyio
async def test_a_schema_dict_and_plain_text_leave_parsed_empty(emulator: Emulator) -> None:
    """A user-supplied schema keeps working as before, with nothing parsed; so does text."""
    fmt = JsonSchemaFormat(name="Thing", schema={"type": "object", "properties": {}})
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=fmt)
        plain = await client.complete(messages=QUESTION)
    assert emulator.requests[0].json["response_format"]["json_schema"]["name"] == "Thing"
    assert result.choices[0].message.parsed is None
    assert plain.choices[0].message.parsed is None
    assert "parsed" not in result.choices[0].message.as_dict()


@pytest.mark.anyio
async def test_a_format_class_without_parentheses_is_still_refused(emulator: Emulator) -> None:
    """Passing a library format class itself (not an instance) is an error, not a schema."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError, match="response_format"):
            await client.complete(messages=QUESTION, response_format=JsonSchemaFormat)
    assert emulator.requests == []


@pytest.mark.anyio
async def test_streamed_final_completion_is_parsed(emulator: Emulator) -> None:
    """A streamed answer's final completion carries message.parsed."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        stream = await client.complete(messages=QUESTION, response_format=AttrsPerson, stream=True)
        async with stream:
            final = await stream.until_done()
    parsed = final.choices[0].message.parsed
    assert isinstance(parsed, AttrsPerson)
    assert parsed.name == "Ada Lovelace"


def test_sync_complete_and_stream_are_parsed() -> None:
    """The sync client parses too, streamed and not."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "key") as client,
    ):
        result = client.complete(messages=QUESTION, response_format=DataPerson)
        with client.complete(messages=QUESTION, response_format=DataPerson, stream=True) as s:
            final = s.until_done()
    assert isinstance(result.choices[0].message.parsed, DataPerson)
    assert final.choices[0].message.parsed == result.choices[0].message.parsed


@pytest.mark.anyio
async def test_truncated_answer_raises_with_the_text(emulator: Emulator) -> None:
    """finish_reason length raises TruncatedOutputError holding the partial JSON."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(TruncatedOutputError, match="max_tokens") as info:
            await client.complete(messages=QUESTION, response_format=AttrsPerson, max_tokens=5)
        stream = await client.complete(
            messages=QUESTION, response_format=AttrsPerson, max_tokens=5, stream=True
        )
        async with stream:
            async for _ in stream:
                pass
            with pytest.raises(TruncatedOutputError) as streamed:
                stream.get_final_completion()
    error = info.value
    assert isinstance(error, StructuredOutputError)
    assert error.text is not None and error.text.startswith('{"name"')
    assert error.completion.choices[0].finish_reason == "length"
    assert error.output_type is AttrsPerson
    assert streamed.value.text == error.text


def _body_with(message: dict[str, Any], finish: str = "stop") -> bytes:
    body = chat_body()
    body["choices"][0]["message"] = {"role": "assistant", **message}
    body["choices"][0]["finish_reason"] = finish
    return orjson.dumps(body)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message", "finish", "words", "text", "refusal"),
    [
        (
            {"content": None, "refusal": "I cannot help with that."},
            "stop",
            "I cannot help with that",
            None,
            "I cannot help with that.",
        ),
        ({"content": '{"name": "A'}, "content_filter", "content filter", '{"name": "A', None),
    ],
    ids=["refusal", "content_filter"],
)
async def test_refused_answers_raise_refusal_error(
    message: dict[str, Any], finish: str, words: str, text: str | None, refusal: str | None
) -> None:
    """A message with a refusal, or an answer the content filter stopped, raises RefusalError
    carrying the model's reason and what was written."""
    async with (
        FaultServer(raw(200, _body_with(message, finish))) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(RefusalError, match=words) as info:
            await client.complete(messages=QUESTION, response_format=AttrsPerson)
    assert info.value.refusal == refusal
    assert info.value.text == text


@attrs.define
class Counts:
    """Whole numbers of any size, and a float."""

    big: int
    small: int
    ratio: float


@pytest.mark.anyio
async def test_whole_numbers_beyond_64_bits_are_read_exactly() -> None:
    """A whole number beyond 64 bits in a structured answer was read as a float (orjson's
    limit) and reported as "expected int, got float": it is read exactly (as are a tool's
    arguments); one past a float's range in a float field, or past Python's digit limit,
    is refused saying so."""
    big = 2**64 * 1000 + 7
    fits = json.dumps({"big": big, "small": -(2**70), "ratio": 12345678901234567890123})
    past_float = json.dumps({"big": 1, "small": 2, "ratio": 10**400})
    too_long = '{"big": 1' + "0" * 5000 + ', "small": 1, "ratio": 1.5}'
    async with (
        FaultServer(
            raw(200, _body_with({"content": fits})),
            raw(200, _body_with({"content": past_float})),
            raw(200, _body_with({"content": too_long})),
        ) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        result = await client.complete(messages=QUESTION, response_format=Counts)
        with pytest.raises(StructuredOutputError) as beyond_float:
            await client.complete(messages=QUESTION, response_format=Counts)
        with pytest.raises(StructuredOutputError) as beyond_digits:
            await client.complete(messages=QUESTION, response_format=Counts)
    assert result.choices[0].message.parsed == Counts(big, -(2**70), 1.2345678901234568e22)
    assert "got a whole number of 401 digits, beyond the range of a float" in str(
        beyond_float.value
    )
    assert "got float" not in str(beyond_float.value)
    assert "a whole number has more than 4,300 digits, Python's limit" in str(beyond_digits.value)
    assert "sys.set_int_max_str_digits()" in str(beyond_digits.value)


def test_json_text_is_still_checked_on_the_exact_path() -> None:
    """Text with a long run of digits is read by the exact parser, which refuses what
    orjson refuses: NaN, infinities, a float past its range, broken JSON."""
    long = "12345678901234567890123"
    assert _parse.load_json(f'[{long}, "{long}", 1.5]') == [int(long), long, 1.5]
    for text, words in [
        (f"[{long}, NaN]", "NaN is not a JSON value"),
        (f"[{long}, -Infinity]", "-Infinity is not a JSON value"),
        (f"[{long}, 1e999]", "the number 1e999 is beyond the range of a float"),
        (f"[{long},", "not valid JSON"),
    ]:
        with pytest.raises(_parse.ParseFailure, match=re.escape(words)):
            _parse.load_json(text)


@pytest.mark.anyio
async def test_answer_that_does_not_fit_raises() -> None:
    """JSON of the wrong shape raises StructuredOutputError naming the field, text kept;
    streamed, the same error comes from get_final_completion()."""
    wrong = json.dumps({**ANSWER, "age": "old"})
    async with (
        FaultServer(
            raw(200, _body_with({"content": wrong})),
            sse(chunk_event(wrong), chunk_event("", finish="stop")),
        ) as server,
        ChatCompletionsClient(server.endpoint(), "key") as client,
    ):
        with pytest.raises(StructuredOutputError, match="age") as info:
            await client.complete(messages=QUESTION, response_format=AttrsPerson)
        stream = await client.complete(messages=QUESTION, response_format=AttrsPerson, stream=True)
        async with stream:
            with pytest.raises(StructuredOutputError, match="age"):
                await stream.until_done()
    assert info.value.text == wrong
    assert type(info.value) is StructuredOutputError


@pytest.mark.anyio
async def test_a_tool_call_answer_is_not_parsed(emulator: Emulator) -> None:
    """When the model calls a tool instead of answering, nothing is parsed and nothing raises."""
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=AttrsPerson, tools=[tool])
    message = result.choices[0].message
    assert message.tool_calls
    assert message.parsed is None


def test_the_hint_types_are_resolved_for_typeddict() -> None:
    """TypedDict hints written as strings are resolved (the module uses postponed hints)."""
    assert typing.get_type_hints(DictPerson)["address"] is DictAddress
    assert _schema.object_schema(DictPerson)["properties"]["address"] == {
        "$ref": "#/$defs/DictAddress"
    }


class WithNotRequired(TypedDict):
    """A key the model may leave out."""

    name: str
    nickname: NotRequired[str]


class Partial(TypedDict, total=False):
    """Every key may be left out."""

    name: str


class PartialWithRequired(TypedDict, total=False):
    """total=False, every key marked Required (inside Annotated too)."""

    name: Required[str]
    age: Annotated[Required[int], "Years."]


@pytest.mark.parametrize(
    ("cls", "start", "fix"),
    [
        (WithNotRequired, "WithNotRequired.nickname is NotRequired[...], ", "drop NotRequired"),
        (
            Partial,
            "Partial.name may be left out (it is declared in a TypedDict with total=False), ",
            "drop total=False or write Required[...]",
        ),
    ],
)
@pytest.mark.anyio
async def test_a_typeddict_key_that_may_be_left_out_is_refused_saying_why(
    emulator: Emulator, cls: type, start: str, fix: str
) -> None:
    """A NotRequired key got "the type typing.NotRequired[str] cannot be described" (a
    total=False TypedDict was sent as if every key were required): strict schemas list every
    key as required, and the message says so and how to declare the key. Nothing is sent."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=QUESTION, response_format=cls)
    message = str(info.value)
    assert message.startswith(start)
    assert "lists every key as required" in message
    assert f"Make the key required ({fix})" in message
    assert "| None" in message
    assert "cannot be described" not in message
    assert emulator.requests == []


@pytest.mark.anyio
async def test_required_keys_of_a_total_false_typeddict_are_described(
    emulator: Emulator,
) -> None:
    """Required[...] (alone or inside Annotated) is a required key: described by its type
    (it was refused as a type that "cannot be described"), and the answer parsed."""
    assert _schema.object_schema(PartialWithRequired) == {
        "type": "object",
        "description": "total=False, every key marked Required (inside Annotated too).",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "description": "Years."},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=PartialWithRequired)
    parsed = result.choices[0].message.parsed
    assert set(parsed) == {"name", "age"}
    assert isinstance(parsed["name"], str)
    assert isinstance(parsed["age"], int)


@pytest.mark.anyio
async def test_emulator_answers_a_recursive_schema(emulator: Emulator) -> None:
    """The emulator resolves a '#' reference and ends the recursion with an empty list or
    null, so a class that holds itself gets a valid, finite answer."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=Tree)
    tree = result.choices[0].message.parsed
    assert isinstance(tree, Tree)
    depth = 0
    node = tree
    while node.children:
        node = node.children[0]
        depth += 1
    assert 1 <= depth <= 4
    assert isinstance(tree.parent, Leaf)


@pytest.mark.anyio
async def test_json_mode_with_a_class_schema(emulator: Emulator) -> None:
    """{"type": "json_object", "schema": Class} (JSON mode with a schema, the spelling
    llama-cpp-python's server takes) sends the class's schema there and parses into it."""
    fmt = {"type": "json_object", "schema": AttrsPerson}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=fmt)
    assert emulator.requests[-1].json["response_format"] == {
        "type": "json_object",
        "schema": golden("AttrsAddress"),
    }
    parsed = result.choices[0].message.parsed
    assert isinstance(parsed, AttrsPerson)
    assert parsed.name == "Ada Lovelace"
    assert fmt["schema"] is AttrsPerson  # the caller's dict is not changed


DOCUMENT = json.dumps(
    {
        "name": 'Zoë "Z" Ada\\n',
        "age": 36,
        "ratio": -12.5e-3,
        "ok": True,
        "gone": None,
        "tags": ["a", "b,c", []],
        "address": {"street": "1 Main St", "city": "Lon\u00e7don"},
    }
)


def _consistent(part: Any, whole: Any) -> bool:
    """True when ``part`` is what a prefix of ``whole``'s JSON can show of it."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and _consistent(v, whole[k]) for k, v in part.items()
        )
    if isinstance(part, list):
        return (
            isinstance(whole, list)
            and len(part) <= len(whole)
            and all(_consistent(p, w) for p, w in zip(part, whole, strict=False))
        )
    if isinstance(part, str):
        return isinstance(whole, str) and whole.startswith(part)
    if isinstance(part, bool) or part is None:
        return part is whole
    # A number is shown only once it is complete (a prefix "3" of 36 would be wrong).
    return part == whole and not isinstance(whole, bool)


def test_partial_json_of_every_prefix() -> None:
    """Every prefix of a document (escapes, unicode, numbers, literals, nesting) gives a value
    consistent with the whole, or None before it starts; the whole gives the document."""
    whole = json.loads(DOCUMENT)
    assert inference.partial_json(DOCUMENT) == whole
    assert inference.partial_json("") is None
    assert inference.partial_json(None) is None
    assert inference.partial_json("not json") is None
    assert inference.partial_json('{"name": "Ad') == {"name": "Ad"}
    assert inference.partial_json('{"name": "Ada", "ag') == {"name": "Ada"}
    assert inference.partial_json('{"ok": tr') == {}
    # A number at the end may go on ("3" of 36): left out until something follows it; digits
    # inside an open string are text.
    assert inference.partial_json('{"age": 3') == {}
    assert inference.partial_json('{"tags": [1, 2') == {"tags": [1]}
    assert inference.partial_json('{"r": -12.5e') == {}
    assert inference.partial_json('{"age": 36,') == {"age": 36}
    assert inference.partial_json('{"name": "Ada 12') == {"name": "Ada 12"}
    assert inference.partial_json('{"ok": true') == {"ok": True}
    for end in range(1, len(DOCUMENT)):
        part = inference.partial_json(DOCUMENT[:end])
        assert part is None or _consistent(part, whole), DOCUMENT[:end]


@pytest.mark.anyio
async def test_partial_objects_while_streaming(emulator: Emulator) -> None:
    """While a structured answer streams, partial_json of the text so far grows field by
    field into the final answer."""
    seen: list[Any] = []
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        stream = await client.complete(messages=QUESTION, response_format=AttrsPerson, stream=True)
        async with stream:
            async for _ in stream:
                text = stream.partial_completion().choices[0].message.content
                seen.append(inference.partial_json(text))
            final = stream.get_final_completion()
    whole = json.loads(final.choices[0].message.content or "")
    parts = [p for p in seen if p is not None]
    assert parts[-1] == whole
    assert len({json.dumps(p) for p in parts}) > 3  # it grew in steps
    assert all(_consistent(p, whole) for p in parts)


@pytest.mark.anyio
async def test_a_class_as_the_clients_default_format(emulator: Emulator) -> None:
    """response_format=Class on the client applies to every call (parsed, streamed or not);
    a call's own response_format replaces it, with nothing parsed for text."""
    async with ChatCompletionsClient(
        emulator.endpoint(), "key", response_format=AttrsPerson
    ) as client:
        result = await client.complete(messages=QUESTION)
        stream = await client.complete(messages=QUESTION, stream=True)
        async with stream:
            final = await stream.until_done()
        text = await client.complete(messages=QUESTION, response_format="text")
    assert isinstance(result.choices[0].message.parsed, AttrsPerson)
    assert final.choices[0].message.parsed == result.choices[0].message.parsed
    assert emulator.requests[0].json["response_format"]["json_schema"]["name"] == "AttrsPerson"
    assert emulator.requests[-1].json["response_format"] == {"type": "text"}
    assert text.choices[0].message.parsed is None
    assert text.choices[0].message.content and text.choices[0].message.content[0] != "{"


@dataclasses.dataclass
class Résumé:  # a class name services refuse as a format name
    """A CV."""

    name: str


@dataclasses.dataclass
class AClassWhoseNameIsLongerThanTheSixtyFourCharactersServicesTakeAsAName:
    """A thing with a long name."""

    name: str


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cls", "sent"),
    [
        (Résumé, "Resume"),
        (
            AClassWhoseNameIsLongerThanTheSixtyFourCharactersServicesTakeAsAName,
            "AClassWhoseNameIsLongerThanTheSixtyFourCharactersServicesTakeAsA",
        ),
    ],
)
async def test_a_class_name_services_refuse_is_sent_as_a_name_they_take(
    emulator: Emulator, cls: type, sent: str
) -> None:
    """json_schema.name must be 1-64 ASCII letters, digits, _ or - (OpenAI and Azure OpenAI
    answer 400 otherwise): a non-ASCII or long class name is sent in that form (it was sent
    as it is), and the answer still parses into the class."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        result = await client.complete(messages=QUESTION, response_format=cls)
    name = emulator.requests[0].json["response_format"]["json_schema"]["name"]
    assert name == sent and len(name) <= 64
    assert isinstance(result.choices[0].message.parsed, cls)


@pytest.mark.parametrize(
    ("name", "sent"), [("Ünïcødé_Thing", "Unic_de_Thing"), ("履歴", "response"), ("Ok-1", "Ok-1")]
)
def test_format_names_keep_what_services_take(name: str, sent: str) -> None:
    """Accents are dropped, other characters become _, a name with nothing left is
    'response'."""
    assert _schema.format_name(type(name, (), {})) == sent


@pytest.mark.anyio
async def test_a_class_or_model_inside_a_json_body_is_named_with_the_keyword_fix(
    emulator: Emulator,
) -> None:
    """complete(body) sends the body as given: a class as its response_format, or a message
    model inside it, is refused naming its place and the keyword call that takes it (it said
    "Type is not JSON serializable: type ... or this library's models")."""
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(inference.RequestValidationError) as typed:
            await client.complete(
                {"messages": [{"role": "user", "content": "Hi"}], "response_format": Tree}
            )
        with pytest.raises(inference.RequestValidationError) as model:
            await client.complete({"messages": [UserMessage("Hi")]})
        with pytest.raises(inference.RequestValidationError) as deep:
            await client.complete(
                {"messages": [{"role": "user", "content": "Hi"}], "x": [{"y": Tree}]}
            )
    assert str(typed.value).startswith(
        "body['response_format'] is the class Tree: a JSON body is sent as given, so it holds "
        "only JSON values; pass the request as keywords instead, response_format=Tree"
    )
    assert str(model.value).startswith("body['messages'][0] is a UserMessage: ")
    assert str(model.value).endswith("or its JSON form (.as_dict())")
    assert str(deep.value).startswith("body['x'][0]['y'] is the class Tree: ")
    assert "x=Tree" not in str(deep.value)
    assert emulator.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"a": {1: "one"}}, "body['a'] has the key 1, of type int: JSON object keys are text; "),
        ({"a": [{"b", "c"}]}, "body['a'][0] is a value of type set, which JSON cannot carry: "),
        ({"a": b"raw"}, "body['a'] is a value of type bytes, which JSON cannot carry: "),
    ],
    ids=["int-key", "set", "bytes"],
)
async def test_what_keywords_would_not_take_either_is_not_sent_to_keywords(
    emulator: Emulator, extra: dict[str, Any], words: str
) -> None:
    """A dict key that is not text, or a set or bytes, inside a JSON body: the error says
    what JSON cannot carry. It said "body['a'] key 1 is a int" and to pass the request as
    keywords, which refuse those values too."""
    body = {"messages": [{"role": "user", "content": "Hi"}], **extra}
    async with ChatCompletionsClient(emulator.endpoint(), "key") as client:
        with pytest.raises(inference.RequestValidationError) as info:
            await client.complete(body)
    assert str(info.value).startswith(words)
    assert "keywords" not in str(info.value)
    assert emulator.requests == []
