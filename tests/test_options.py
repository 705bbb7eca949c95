"""The client constructors' options: declared once (``inference._options``), taken by all four
constructors, checked by type checkers and at run time, documented, defaults unchanged."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from _spelled import spelled_in
from _typecheck import mypy_errors

import inference
import inference.aio
from inference._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_STREAM_BYTES,
    EMBEDDINGS_MAX_RESPONSE_BYTES,
)
from inference._options import (
    ChatClientOptions,
    ClientOptions,
    EmbeddingsClientOptions,
    option_names,
    unpacked_options,
)
from inference.exceptions import RequestValidationError
from inference.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:9/v1"
CONNECTION = option_names(ClientOptions)

CHAT = [inference.aio.ChatCompletionsClient, inference.ChatCompletionsClient]
EMBEDDINGS = [inference.aio.EmbeddingsClient, inference.EmbeddingsClient]
ALL = CHAT + EMBEDDINGS


def close(client: Any) -> None:
    """Close a client of either kind that made no request."""
    if isinstance(client, inference.aio.ChatCompletionsClient | inference.aio.EmbeddingsClient):
        client = client._connection if hasattr(client, "_connection") else client
        client._transport.abandon()
    else:
        client.close()


def chat_core(client: Any) -> inference.aio.ChatCompletionsClient:
    """The async chat client that does the work of any client."""
    core = getattr(client, "_async", client)
    return getattr(core, "_connection", core)  # type: ignore[no-any-return]


# -- declared once ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_constructor_takes_its_declared_options(cls: type) -> None:
    """Each constructor is (endpoint, credential, **options: Unpack[...]) with the TypedDict
    of its kind: the chat ones all the connection options, the request defaults,
    model_extras and max_stream_bytes; the embeddings ones the connection options and theirs."""
    declared = unpacked_options(cls.__init__)  # type: ignore[misc]
    assert declared is (ChatClientOptions if cls in CHAT else EmbeddingsClientOptions)
    names = option_names(declared)
    assert names >= CONNECTION >= {"max_connections", "max_response_bytes", "session", "retry"}
    if cls in CHAT:
        assert {"max_stream_bytes", "model_extras", "temperature", "tools"} <= names
    else:
        assert names - CONNECTION == {
            "model",
            "dimensions",
            "encoding_format",
            "input_type",
            "model_extras",
        }


def spelled_in_init(path: Path) -> set[str]:
    """The names a module's ``__init__`` methods spell out."""
    return spelled_in(path, ("__init__",))


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("inference/_sync.py", set()),
        ("inference/_embeddings_sync.py", set()),
        # Its own default (256 MiB) is the one option it sets.
        ("inference/aio/_embeddings.py", {"max_response_bytes"}),
    ],
)
def test_no_connection_option_is_spelled_out_again(module: str, allowed: set[str]) -> None:
    """The sync clients and the embeddings client pass their options on whole: none of the
    connection options is named in their constructors (each used to be, 4 times over)."""
    spelled = spelled_in_init(ROOT / module)
    assert sorted((CONNECTION & spelled) - allowed) == []
    # ... and the check can see one: the async chat client, which uses them, spells them.
    assert {"max_connections", "trust_env"} <= spelled_in_init(ROOT / "inference/aio/_client.py")


# -- defaults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_the_defaults_are_unchanged(cls: type) -> None:
    """Left out, the limits are the documented defaults: 100 connections, an 8 MiB body
    (256 MiB for embeddings) and a 64 MiB stream; set, they reach the client that reads."""
    client = cls(URL)
    try:
        core = chat_core(client)
        assert core._caller._max_body == (
            DEFAULT_MAX_RESPONSE_BYTES if cls in CHAT else EMBEDDINGS_MAX_RESPONSE_BYTES
        )
        assert core._transport._limit == DEFAULT_MAX_CONNECTIONS == 100
        assert core._caller._max_stream == DEFAULT_MAX_STREAM_BYTES == 64 * 2**20
        assert (DEFAULT_MAX_RESPONSE_BYTES, EMBEDDINGS_MAX_RESPONSE_BYTES) == (8 << 20, 256 << 20)
    finally:
        close(client)
    client = cls(URL, max_connections=3, max_response_bytes=1234)
    try:
        core = chat_core(client)
        assert (core._transport._limit, core._caller._max_body) == (3, 1234)
    finally:
        close(client)


def test_max_stream_bytes_may_be_none_but_not_zero() -> None:
    """None turns the stream limit off; 0, a negative number, a float or text is refused."""
    client = inference.ChatCompletionsClient(URL, max_stream_bytes=None)
    assert chat_core(client)._caller._max_stream is None
    client.close()
    for bad in (0, -1, 1.5, True, "64MB"):
        with pytest.raises(RequestValidationError, match=r"max_stream_bytes=.*or None for no"):
            inference.ChatCompletionsClient(URL, max_stream_bytes=bad)


# -- checked ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_conections": 5}, "unknown parameter max_conections=5; did you mean max_connections"),
        ({"trust_envs": True}, "did you mean trust_env=?"),
        ({"timout": 5}, "did you mean timeout=?"),
        ({"credentail": 5}, "unknown parameter credentail=<not shown>; did you mean credential=?"),
        ({"Credential": "k"}, "did you mean credential=?"),
        ({"credential_scope": ["s"]}, "did you mean credential_scopes=?"),
        ({"Max_Connections": 5}, "did you mean max_connections=?"),
        ({"apiVersion": "v"}, "did you mean api_version=?"),
    ],
)
def test_a_misspelt_option_is_refused_naming_the_closest(
    cls: type, kwargs: dict[str, Any], message: str
) -> None:
    """A misspelt option raises RequestValidationError (sync and async, chat and embeddings)
    naming the keyword and the option it resembles; before, the embeddings clients raised
    Python's bare TypeError."""
    with pytest.raises(RequestValidationError, match=re.escape(message)) as info:
        cls(URL, **kwargs)
    assert str(info.value).startswith(f"{cls.__name__}()")


SECRET = "sk-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((URL,), {"openai_api_key": SECRET}, "unknown parameter openai_api_key=<not shown> "),
        ((URL,), {"credentail": SECRET}, "credentail=<not shown>; did you mean credential=?"),
        ((URL,), {"auth_token": SECRET}, "() got an unknown parameter auth_token=<not shown> "),
        ((URL, SECRET), {"credential": SECRET}, "() got credential twice: by position and as "),
    ],
    ids=["openai_api_key", "misspelt-credential", "token", "credential-twice"],
)
def test_a_key_given_under_a_wrong_name_is_not_repeated_in_the_error(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    """A key passed under a keyword not taken (openai_api_key=), under a misspelt credential=
    or twice is refused without repeating it: the message, which may be logged, quoted the
    key in full."""
    with pytest.raises(RequestValidationError) as info:
        cls(*args, **kwargs)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    assert "0123456789" not in str(info.value)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((URL,), {"api_key": SECRET}, "() takes the key as its credential, the second argument"),
        ((URL,), {"ApiKey": SECRET}, "() takes the key as its credential, the second argument"),
        ((), {"base_url": URL, "api_key": SECRET}, "() takes the URL as its endpoint, the first"),
    ],
    ids=["api_key", "ApiKey", "base_url"],
)
def test_openai_python_constructor_names_say_where_the_value_goes(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    """OpenAI(base_url=..., api_key=...) spelt on these constructors: the error says to pass
    the key as the credential and the URL as the endpoint. It said a parameter this library
    does not name goes in model_extras, which would have sent the key in the request body."""
    with pytest.raises(RequestValidationError) as info:
        cls(*args, **kwargs)
    assert str(info.value).startswith(f"{cls.__name__}{message}")
    assert f"{cls.__name__}(endpoint, key)" in str(info.value)
    assert "model_extras" not in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": 2}, "() takes retry= (a number of retries, or a RetryPolicy)"),
        ({"default_headers": {"a": "b"}}, "() takes headers= for the headers of every request"),
        ({"default_query": {"a": "b"}}, "() takes the query in the endpoint URL"),
        ({"http_client": object()}, "() takes session= (an aiohttp.ClientSession you close)"),
        ({"organization": "org"}, "() has no organization=: send the OpenAI-Organization"),
        ({"project": "p"}, "() has no project=: send the OpenAI-Project header"),
    ],
    ids=[
        "max_retries",
        "default_headers",
        "default_query",
        "http_client",
        "organization",
        "project",
    ],
)
def test_openai_python_connection_options_name_this_librarys_own(
    cls: type, kwargs: dict[str, Any], message: str
) -> None:
    """openai-python's other constructor options name the option that does the same here;
    they were told to go in model_extras (the request body)."""
    with pytest.raises(RequestValidationError) as info:
        cls(URL, "key", **kwargs)
    assert str(info.value).startswith(f"{cls.__name__}{message}")
    assert "model_extras" not in str(info.value)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_a_misspelt_connection_option_is_not_sent_to_model_extras(cls: type) -> None:
    """trust_en= is a misspelt connection option: the error suggests trust_env= without the
    aside that unknown request parameters go in model_extras (which would send it in the
    body); a misspelt request parameter keeps the aside."""
    with pytest.raises(RequestValidationError) as info:
        cls(URL, "key", trust_en=True)
    assert "did you mean trust_env=?" in str(info.value)
    assert "model_extras" not in str(info.value)
    with pytest.raises(RequestValidationError) as info:
        inference.ChatCompletionsClient(URL, "key", temprature=0.2)  # type: ignore[call-arg]
    assert "did you mean temperature=? (a parameter this library does not name goes in" in str(
        info.value
    )


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (lambda response: None, "cannot take them (too many positional arguments)"),
        (lambda status, headers, extra: None, "cannot take them (missing a required argument"),
        (5, "response_hook must be a function taking (status, headers), got int"),
    ],
    ids=["one-argument", "three-arguments", "not-callable"],
)
def test_a_response_hook_of_the_wrong_shape_is_refused_at_once(
    cls: type, hook: Any, message: str
) -> None:
    """A hook that cannot take (status, headers) failed every call with a TypeError from
    inside the client; the constructor refuses it, saying how it is called."""
    with pytest.raises(RequestValidationError) as info:
        cls(URL, "key", response_hook=hook)
    assert message in str(info.value)
    client = cls(URL, "key", response_hook=lambda status, headers: None)
    closing = client.close()
    if inspect.iscoroutine(closing):  # the async clients' close()
        asyncio.run(closing)


@pytest.mark.anyio
async def test_a_key_given_to_complete_under_a_wrong_name_is_not_repeated(
    emulator: Emulator,
) -> None:
    """complete(api_key=...) is refused without quoting the key, and nothing is sent."""
    async with inference.aio.ChatCompletionsClient(emulator.endpoint(), "k") as client:
        with pytest.raises(RequestValidationError) as info:
            await client.complete(messages=[{"role": "user", "content": "Hi"}], api_key=SECRET)
    assert "complete() got an unknown parameter api_key=<not shown>" in str(info.value)
    assert SECRET not in str(info.value)
    assert emulator.requests == []


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize("name", ["endpoint", "credential"])
def test_an_argument_given_by_position_and_by_name_is_explained(cls: type, name: str) -> None:
    """endpoint or credential both by position and by name raised Python's bare TypeError
    ("got multiple values for argument"); the error names the constructor and the argument."""
    with pytest.raises(RequestValidationError) as info:
        cls(URL, "k", **{name: URL})
    assert str(info.value).startswith(f"{cls.__name__}() got {name} twice: by position and as ")
    assert str(info.value).endswith("; pass it once")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"endpont": URL}, "() got an unknown parameter endpont='http://127.0.0.1:9/v1'; did"),
        ((), {"endpont": URL}, "; did you mean endpoint=?"),
        ((), {"Endpoint": URL, "credential": "k"}, "; did you mean endpoint=?"),
        ((), {}, "() needs the endpoint URL as its first argument, e.g. "),
        ((URL, "k", 5), {}, "() takes endpoint and credential by position and the rest by name"),
    ],
)
def test_a_constructor_called_without_its_endpoint_says_so(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    """A misspelt or missing endpoint, or a third positional argument, raised Python's bare
    TypeError ("__init__() missing 1 required positional argument"); it is a
    RequestValidationError naming the constructor."""
    with pytest.raises(RequestValidationError) as info:
        cls(*args, **kwargs)
    assert str(info.value).startswith(f"{cls.__name__}()")
    assert message in str(info.value)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"header": {}}, "get_model_info() got an unknown parameter header={}; did you mean "),
        ((), {"Timeout": 5}, "; did you mean timeout=?"),
        ((), {"retries": 1}, "; did you mean retry=?"),
        (({},), {}, "get_model_info() takes its arguments by name, got 1 positional argument"),
    ],
)
@pytest.mark.anyio
async def test_a_misspelt_get_model_info_keyword_names_the_one_meant(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    """get_model_info(header={...}) raised Python's TypeError; it is a
    RequestValidationError naming the keyword meant, raised before anything is sent (nothing
    listens on the endpoint's port)."""
    client = cls("http://127.0.0.1:9", "k", retry=0)
    try:
        with pytest.raises(RequestValidationError) as info:
            result = client.get_model_info(*args, **kwargs)
            if inspect.isawaitable(result):
                await result
    finally:
        close(client)
    assert message in str(info.value)


@pytest.mark.parametrize("cls", EMBEDDINGS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_a_chat_option_given_to_an_embeddings_client_is_named(cls: type) -> None:
    """temperature=, top_p= or max_stream_bytes= on an embeddings client says they are chat
    options."""
    with pytest.raises(RequestValidationError, match="temperature=, top_p=: they are options"):
        cls(URL, temperature=0.5, top_p=0.5)
    with pytest.raises(RequestValidationError, match="temperature=: it is an option of Chat"):
        cls(URL, temperature=0.5)
    with pytest.raises(RequestValidationError, match="max_stream_bytes=: it is an option of"):
        cls(URL, max_stream_bytes=10)
    with pytest.raises(RequestValidationError, match="dimension=3; did you mean dimensions"):
        cls(URL, dimension=3)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"{c.__module__}.{c.__name__}")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_connections": 0}, "max_connections=0: use a whole number >= 1"),
        ({"max_response_bytes": "big"}, "max_response_bytes='big'"),
        ({"trust_env": 3}, "trust_env must be True or False"),
        ({"timeout": "slow"}, "timeout='slow'"),
        ({"retry": -1}, "retry=-1"),
        ({"user_agent": "a\nb"}, "user_agent must be one line"),
        ({"endpoint_kind": "nope"}, "nope"),
        ({"headers": {"X": 1}}, "header names and values must be str"),
    ],
)
def test_each_option_reaches_the_client_that_uses_it(
    cls: type, kwargs: dict[str, Any], message: str
) -> None:
    """A bad value of a connection option fails the same way through every constructor:
    each passes it on to the async chat client, which checks and uses it."""
    with pytest.raises(RequestValidationError, match=message):
        cls(URL, **kwargs)


def test_sync_embeddings_options_reach_the_wire() -> None:
    """user_agent=, headers= and the request defaults given to the sync embeddings client
    reach the request, through the async client and its connection."""
    with (
        Emulator(model_type="embeddings").run_in_thread() as emu,
        inference.EmbeddingsClient(
            emu.endpoint(),
            "key",
            user_agent="probe/1.0",
            headers={"x-probe": "1"},
            dimensions=3,
            retry=0,
        ) as client,
    ):
        assert len(client.embed(input=["a"]).data[0].embedding) == 3
        request = emu.requests[-1]
    assert request.headers["user-agent"].startswith("probe/1.0 ")
    assert request.headers["x-probe"] == "1"
    assert request.json["dimensions"] == 3


# -- documented and type-checked -------------------------------------------------------------


def test_every_option_is_documented() -> None:
    """Each option is named in its TypedDict's docstring (what help() shows) and in the class
    docstring of the async client that takes it; the classes point at their TypedDict."""
    for name in CONNECTION:
        assert f"``{name}``" in (ClientOptions.__doc__ or ""), name
        for cls in (inference.aio.ChatCompletionsClient, inference.aio.EmbeddingsClient):
            assert f"``{name}" in (cls.__doc__ or ""), (cls.__name__, name)
    for name in option_names(ChatClientOptions) - CONNECTION:
        assert name in typing.get_type_hints(inference.RequestParams) or f"``{name}``" in (
            ChatClientOptions.__doc__ or ""
        ), name
    for name in option_names(EmbeddingsClientOptions) - CONNECTION:
        assert f"``{name}``" in (EmbeddingsClientOptions.__doc__ or ""), name
    for cls in CHAT:
        assert "ChatClientOptions`" in (cls.__doc__ or "")
    for cls in EMBEDDINGS:
        assert "EmbeddingsClientOptions`" in (cls.__doc__ or "")
    assert "256 MiB" in (EmbeddingsClientOptions.__doc__ or "")
    assert "64 MiB" in (ChatClientOptions.__doc__ or "")


TYPED = """\
from inference import ChatCompletionsClient, EmbeddingsClient, RetryPolicy, Timeout
from inference.aio import ChatCompletionsClient as AsyncChat
from inference.aio import EmbeddingsClient as AsyncEmbeddings

ChatCompletionsClient("http://x", max_connections=5, timeout=Timeout(idle=5), retry=2)
ChatCompletionsClient("http://x", temperature=0.2, model_extras={"k": 1}, max_stream_bytes=None)
AsyncChat("http://x", "key", trust_env=True, retry=RetryPolicy(max_retries=1), max_tokens=5)
EmbeddingsClient("http://x", dimensions=3, max_response_bytes=10, user_agent="app/1")
AsyncEmbeddings("http://x", input_type="query", enforce_https=False)
ChatCompletionsClient("http://x", max_conections=5)  # error: misspelt
AsyncChat("http://x", trust_env="yes")  # error: wrong type
AsyncChat("http://x", max_connections="10")  # error: wrong type
AsyncChat("http://x", max_stream_bytes="64MB")  # error: wrong type
EmbeddingsClient("http://x", temperature=0.2)  # error: a chat option
AsyncEmbeddings("http://x", top_p=0.5)  # error: a chat option
AsyncEmbeddings("http://x", max_stream_bytes=5)  # error: a chat option
AsyncEmbeddings("http://x", dimension=5)  # error: misspelt
"""


def test_mypy_checks_the_options_in_user_code(tmp_path: Path) -> None:
    """mypy --strict accepts the options and rejects a misspelt one, a wrong type and a chat
    option given to an embeddings client, on every line marked, and on no other."""
    reported, expected, output = mypy_errors(TYPED, tmp_path)
    assert reported == expected, output
    assert 'Unexpected keyword argument "max_conections"' in output
