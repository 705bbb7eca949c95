"""Parity of the sync and async public APIs (house rule 1: every async class has a sync twin).

Each public class of :mod:`inference.aio` has a twin in :mod:`inference` (``AsyncX`` -> ``X``,
same name otherwise) with the same public methods, properties and instance attributes, the
same parameters (names, kinds, defaults, annotations), the matching return types and the
same docstrings. The documented naming differences are mapped explicitly below; anything
else that one side has and the other lacks fails the test.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import inference
import inference.aio
from inference import _sync
from inference._options import option_names, unpacked_options
from inference.models import UserMessage
from inference.testing import Emulator

#: Async name -> sync name, for the names that differ by design.
NAME_MAP = {
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}
#: The protocol methods that belong to the public surface (async side; sync via NAME_MAP).
PROTOCOL = frozenset(NAME_MAP) - {"aclose"}
#: Words in annotations and docstrings that differ by design, async -> sync.
TYPE_MAP = (
    ("AsyncChatCompletionsStream", "ChatCompletionsStream"),
    ("AsyncIterator", "Iterator"),
)
#: Docstrings that say more on the sync side (the sync client's close also stops its loop).
DOC_DIFFERS = frozenset({("ChatCompletionsClient", "close"), ("EmbeddingsClient", "close")})
#: Classes the user never constructs (made by ``complete(stream=True)``): no constructor parity.
NOT_CONSTRUCTED = frozenset({"AsyncChatCompletionsStream"})


def sync_name(async_name: str) -> str:
    """The sync twin's name of an async class or member."""
    if async_name in NAME_MAP:
        return NAME_MAP[async_name]
    return async_name.removeprefix("Async")


def sync_text(text: str) -> str:
    """An async annotation rewritten with the sync type names."""
    for old, new in TYPE_MAP:
        text = text.replace(old, new)
    return text


def members(cls: type, *, sync: bool) -> dict[str, Any]:
    """The public surface of ``cls``: public names plus the iteration / context protocol."""
    protocol = {NAME_MAP[n] for n in PROTOCOL} if sync else PROTOCOL
    return {
        name: inspect.getattr_static(cls, name)
        for name in dir(cls)
        if not name.startswith("_") or name in protocol
    }


def describe(
    signature: inspect.Signature, *, rename: tuple[str, str] | None = None
) -> list[tuple[str, ...]]:
    """Parameters and return annotation as comparable tuples; on the async side (``rename``
    given: async class name, sync class name) the type names are mapped to the sync ones."""

    def fix(annotation: object) -> str:
        text = str(annotation)
        if rename is not None:
            text = sync_text(text.replace(*rename))
        return text

    rows: list[tuple[str, ...]] = [
        (p.name, str(p.kind), repr(p.default), fix(p.annotation))
        for p in signature.parameters.values()
    ]
    rows.append(("return", fix(signature.return_annotation)))
    return rows


def constructor(cls: type) -> list[tuple[str, ...]]:
    """The constructor's parameters (as :func:`describe` gives them), and each keyword of its
    ``**options: Unpack[...]`` with its declared type: the TypedDict the annotation names is
    looked up, so a twin whose options differ is told apart even under the same name."""
    init = vars(cls).get("__init__", object.__init__)
    rows = describe(inspect.signature(init))
    declared = None if init is object.__init__ else unpacked_options(init)
    if declared is not None:
        hints = declared.__annotations__  # the declared text (ForwardRef), not evaluated
        rows += [
            ("option", name, getattr(hints[name], "__forward_arg__", str(hints[name])))
            for name in sorted(option_names(declared))
        ]
    return rows


def doc_words(doc: str | None, *, sync: bool) -> list[str]:
    """A docstring's words, with the async side's wording mapped to the sync one."""
    text = doc or ""
    if not sync:
        text = text.replace("an :class:`Async", "a :class:`Async")  # "an Async..." -> "a ..."
        text = sync_text(text)
        for old, new in (("async with", "with"), ("async for", "for"), ("await ", "")):
            text = text.replace(old, new)
        text = text.replace("aclose()", "close()").replace(":meth:`aclose`", ":meth:`close`")
    return text.split()


def function_of(member: Any) -> Callable[..., Any] | None:
    """The function behind a method, a property's getter, or None for plain attributes."""
    if isinstance(member, property):
        return member.fget
    if isinstance(member, staticmethod | classmethod):
        return typing.cast(Callable[..., Any], member.__func__)
    return member if inspect.isfunction(member) else None


def member_differences(
    name: str, a_member: Any, s_member: Any, rename: tuple[str, str], sync_cls: type
) -> list[str]:
    """Every way one async member and its sync twin differ (kind, signature, overloads, doc)."""
    where = f"{sync_cls.__name__}.{name}"
    problems: list[str] = []
    if isinstance(a_member, property) != isinstance(s_member, property):
        problems.append(f"{where}: a property on one side only")
    a_func, s_func = function_of(a_member), function_of(s_member)
    if (a_func is None) != (s_func is None):
        return [*problems, f"{where}: a method on one side only"]
    if a_func is None or s_func is None:
        return problems
    a_sig = describe(inspect.signature(a_func), rename=rename)
    s_sig = describe(inspect.signature(s_func))
    if a_sig != s_sig:
        problems.append(f"{where}: signature {s_sig} differs from async {a_sig}")
    a_over = [describe(inspect.signature(f), rename=rename) for f in typing.get_overloads(a_func)]
    s_over = [describe(inspect.signature(f)) for f in typing.get_overloads(s_func)]
    if a_over != s_over:
        problems.append(f"{where}: overloads differ")
    if name.startswith("_"):
        return problems
    if not (a_func.__doc__ and s_func.__doc__):
        problems.append(f"{where}: a docstring is missing")
    elif (sync_cls.__name__, name) not in DOC_DIFFERS and doc_words(
        a_func.__doc__, sync=False
    ) != doc_words(s_func.__doc__, sync=True):
        problems.append(f"{where}: the docstring differs from the async one")
    return problems


def surface_differences(async_cls: type, sync_cls: type) -> list[str]:
    """Every way the two classes' public surfaces differ; empty when they are twins."""
    problems: list[str] = []
    rename = (async_cls.__name__, sync_cls.__name__)
    async_members = members(async_cls, sync=False)
    sync_members = members(sync_cls, sync=True)
    expected = {sync_name(name): name for name in async_members}
    for name in sorted(set(expected) - set(sync_members)):
        problems.append(f"{sync_cls.__name__} lacks {name} (async {expected[name]})")
    for name in sorted(set(sync_members) - set(expected)):
        problems.append(f"{async_cls.__name__} lacks the twin of {sync_cls.__name__}.{name}")
    for name in sorted(set(expected) & set(sync_members)):
        problems += member_differences(
            name, async_members[expected[name]], sync_members[name], rename, sync_cls
        )
    if async_cls.__name__ not in NOT_CONSTRUCTED:
        a_init, s_init = constructor(async_cls), constructor(sync_cls)
        if a_init != s_init:
            problems.append(f"{sync_cls.__name__}.__init__ differs from the async constructor")
    if not (async_cls.__doc__ and sync_cls.__doc__):
        problems.append(f"{sync_cls.__name__}: a class docstring is missing")
    return problems


def public_classes(module: Any) -> dict[str, type]:
    """The classes a module exports."""
    return {n: getattr(module, n) for n in module.__all__ if inspect.isclass(getattr(module, n))}


def twins() -> Iterator[tuple[type, type]]:
    """(async class, sync class) for every public async class."""
    sync_classes = public_classes(inference)
    for name, cls in public_classes(inference.aio).items():
        yield cls, sync_classes[sync_name(name)]


def test_every_async_class_has_a_sync_twin() -> None:
    """Each class of inference.aio has its twin in inference, and each sync-facade class in
    inference._sync has an async original."""
    sync_classes = public_classes(inference)
    missing = [n for n in public_classes(inference.aio) if sync_name(n) not in sync_classes]
    assert missing == []
    originals = {sync_name(n) for n in public_classes(inference.aio)}
    assert set(_sync.__all__) <= originals
    assert set(_sync.__all__) <= set(inference.__all__)


@pytest.mark.parametrize(("async_cls", "sync_cls"), list(twins()), ids=lambda c: c.__name__)
def test_twins_have_the_same_surface(async_cls: type, sync_cls: type) -> None:
    """Methods, properties, parameters, defaults, return types and docstrings match."""
    assert surface_differences(async_cls, sync_cls) == []


def test_the_surface_has_the_documented_members() -> None:
    """The names the issue lists are on both sides (guards against an empty comparison)."""
    client = members(inference.ChatCompletionsClient, sync=True)
    assert {"complete", "get_model_info", "close", "__enter__", "__exit__", "endpoint"} <= set(
        client
    )
    embeddings = members(inference.EmbeddingsClient, sync=True)
    assert {"embed", "get_model_info", "close", "__enter__", "__exit__", "endpoint"} <= set(
        embeddings
    )
    assert inference.aio.EmbeddingsClient in dict(twins())
    stream = members(inference.ChatCompletionsStream, sync=True)
    assert {
        "get_final_completion",
        "partial_completion",
        "until_done",
        "text_deltas",
        "close",
        "finished",
        "__iter__",
        "__next__",
        "__enter__",
        "__exit__",
    } <= set(stream)
    assert {"aclose", "__aiter__", "__anext__", "__aenter__", "__aexit__"} <= set(
        members(inference.aio.AsyncChatCompletionsStream, sync=False)
    )


def test_complete_return_types_are_the_sync_ones() -> None:
    """The sync complete() overloads return ChatCompletions and the sync stream type."""
    returns = [
        str(inspect.signature(f).return_annotation)
        for f in typing.get_overloads(inference.ChatCompletionsClient.complete)
    ]
    assert returns == [
        "ChatCompletions",
        "ChatCompletionsStream",
        "ChatCompletions | ChatCompletionsStream",
    ]


def test_stream_instances_have_the_same_attributes() -> None:
    """Live stream objects of both kinds expose the same public instance attributes
    (request_id, response_headers) with the same kinds of values."""

    async def async_side(endpoint: str) -> dict[str, Any]:
        async with inference.aio.ChatCompletionsClient(endpoint, "key") as client:
            stream = await client.complete(messages=[UserMessage("attrs")], stream=True)
            async with stream:
                return {k: v for k, v in vars(stream).items() if not k.startswith("_")}

    with Emulator().run_in_thread() as emulator:
        endpoint = emulator.endpoint()
        async_attrs = asyncio.run(async_side(endpoint))
        with (
            inference.ChatCompletionsClient(endpoint, "key") as client,
            client.complete(messages=[UserMessage("attrs")], stream=True) as stream,
        ):
            sync_attrs = {k: v for k, v in vars(stream).items() if not k.startswith("_")}
    assert set(sync_attrs) == set(async_attrs) == {"request_id", "response_headers"}
    for name, value in async_attrs.items():
        assert type(sync_attrs[name]) is type(value), name


class _AsyncThing:
    """An async class for the self-test."""

    async def fetch(self, x: int = 1) -> int:
        """Fetch."""
        return x

    async def aclose(self) -> None:
        """Close."""

    async def __aenter__(self) -> _AsyncThing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Thing:
    """Its sync twin, one default off and a method short."""

    def fetch(self, x: int = 2) -> int:
        """Fetch."""
        return x

    def __enter__(self) -> _Thing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def extra(self) -> None:
        """Only here."""


def test_the_comparison_catches_differences() -> None:
    """The checker reports a missing twin method, an extra one and a changed default."""
    problems = surface_differences(_AsyncThing, _Thing)
    text = "\n".join(problems)
    assert "_Thing lacks close (async aclose)" in text
    assert "lacks the twin of _Thing.extra" in text
    assert "_Thing.fetch: signature" in text
    assert len(problems) == 3, problems


def test_a_member_gained_on_one_side_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a method to the async stream, or a property to the sync client, breaks parity."""

    async def rewind(self: Any, steps: int = 1) -> None:
        """Go back."""

    monkeypatch.setattr(inference.aio.AsyncChatCompletionsStream, "rewind", rewind, raising=False)
    problems = surface_differences(
        inference.aio.AsyncChatCompletionsStream, inference.ChatCompletionsStream
    )
    assert problems == ["ChatCompletionsStream lacks rewind (async rewind)"]
    monkeypatch.undo()

    monkeypatch.setattr(
        inference.ChatCompletionsClient, "loop", property(lambda self: None), raising=False
    )
    problems = surface_differences(
        inference.aio.ChatCompletionsClient, inference.ChatCompletionsClient
    )
    assert problems == ["ChatCompletionsClient lacks the twin of ChatCompletionsClient.loop"]


def test_the_constructors_options_are_compared_key_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The constructors take ``**options: Unpack[...]``: parity looks inside the TypedDict, so
    a sync client whose options differ (under the same TypedDict name) is reported."""
    rows = constructor(inference.ChatCompletionsClient)
    assert ("option", "max_connections", "int") in rows
    assert ("option", "temperature", "float | None") in rows
    assert ("option", "max_stream_bytes", "int | None") in rows
    assert not any(
        r[:2] == ("option", "temperature") for r in constructor(inference.EmbeddingsClient)
    )

    class ChatClientOptions(_sync.ChatClientOptions, total=False):  # one more key
        colour: str

    monkeypatch.setattr(_sync, "ChatClientOptions", ChatClientOptions)
    problems = surface_differences(
        inference.aio.ChatCompletionsClient, inference.ChatCompletionsClient
    )
    assert problems == ["ChatCompletionsClient.__init__ differs from the async constructor"]
