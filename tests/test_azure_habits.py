"""Habits of azure-ai-inference code: HttpResponseError.error, user_agent=, logging_enable=,
and AzureKeyCredential("") with the caller's own key header."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ODataV4Format

import inference
from inference._errors import error_from_response
from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.exceptions import HttpResponseError, RequestValidationError, StreamServiceError
from inference.models import UserMessage
from inference.testing import Emulator, EmulatorOptions

QUESTION = [UserMessage("Hi")]
KEY = "s3cret-key-value"


def error_for(body: Any, status: int = 400) -> HttpResponseError:
    """The exception the client raises for an error response with ``body``."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return error_from_response(status, "Bad Request", {"content-type": "application/json"}, raw)


# -- HttpResponseError.error ------------------------------------------------------------------


def test_error_carries_the_service_error_as_odata() -> None:
    """An OData-shaped error body gives error.code, .message, .target, .details, .innererror."""
    exc = error_for(
        {
            "error": {
                "code": "InvalidParameter",
                "message": "temperature is out of range",
                "target": "temperature",
                "details": [{"code": "Range", "message": "0 to 2"}],
                "innererror": {"code": "TemperatureTooHigh"},
            }
        }
    )
    assert isinstance(exc.error, ODataV4Format)
    assert (exc.error.code, exc.error.message) == (
        "InvalidParameter",
        "temperature is out of range",
    )
    assert exc.error.target == "temperature"
    assert [(d.code, d.message) for d in exc.error.details] == [("Range", "0 to 2")]
    assert exc.error.innererror == {"code": "TemperatureTooHigh"}


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"code": "Unauthorized", "message": "bad key"}, "Unauthorized", "bad key"),
        ({"error": {"code": 400, "message": "no"}}, "400", "no"),
        ({"detail": "Not Found"}, None, "Not Found"),
        (b"upstream exploded", None, "upstream exploded"),
    ],
)
def test_error_is_built_from_any_body_shape(body: Any, code: str | None, message: str) -> None:
    """Flat, numeric-code, detail-only and plain-text bodies all give an error object whose
    code and message are the exception's."""
    exc = error_for(body)
    assert exc.error is not None
    assert (exc.error.code, exc.error.message) == (code, message) == (exc.code, exc.message)


def test_error_is_none_without_code_or_message() -> None:
    """An empty error body leaves error None (as azure-core does when it cannot parse one)."""
    assert error_for(b"").error is None
    assert error_for({"error": {}}).error is None


def test_a_stream_error_event_carries_the_error_too() -> None:
    """A StreamServiceError (no HTTP response) has error from its code and message."""
    exc = StreamServiceError(code="server_error", service_message="model crashed")
    assert exc.error is not None
    assert (exc.error.code, exc.error.message) == ("server_error", "model crashed")


@pytest.mark.anyio
async def test_a_real_error_response_has_error(emulator: Emulator) -> None:
    """End to end: the emulator's 400 for an undeclared extra parameter comes back with
    error.code set, through the client."""
    async with ChatCompletionsClient(emulator.endpoint(), "k", retry=0) as client:
        with pytest.raises(HttpResponseError) as info:
            await client.complete({"messages": [{"role": "user", "content": "x"}], "top_k": 1})
    assert info.value.error is not None
    assert info.value.error.code == "extra_parameters_not_allowed"
    assert "top_k" in (info.value.error.message or "")


# -- user_agent= -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_user_agent_is_prefixed_to_the_library_agent(emulator: Emulator) -> None:
    """user_agent= goes before the library's own User-Agent, on chat and embeddings."""
    async with ChatCompletionsClient(emulator.endpoint(), "k", user_agent="myapp/1.2") as client:
        await client.complete(messages=QUESTION)
    agent = emulator.requests[-1].headers["User-Agent"]
    assert agent == f"myapp/1.2 aioinference/{inference.__version__}"
    async with EmbeddingsClient(emulator.endpoint(), "k", user_agent="myapp/1.2") as embeddings:
        await embeddings.embed(input=["a"])
    assert emulator.requests[-1].headers["User-Agent"] == agent
    async with ChatCompletionsClient(emulator.endpoint(), "k") as plain:
        await plain.complete(messages=QUESTION)
    assert emulator.requests[-1].headers["User-Agent"] == f"aioinference/{inference.__version__}"


def test_user_agent_in_the_sync_client() -> None:
    """The sync client takes user_agent= too."""
    with (
        Emulator().run_in_thread() as emu,
        inference.ChatCompletionsClient(emu.endpoint(), "k", user_agent="tool/3") as client,
    ):
        client.complete(messages=QUESTION)
        assert emu.requests[-1].headers["User-Agent"].startswith("tool/3 aioinference/")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_agent": "a\r\nX-Evil: 1"}, "user_agent must be one line"),
        ({"user_agent": 5}, "user_agent must be one line"),
        ({"user_agent": "a/1", "headers": {"user-agent": "b/2"}}, "pass one"),
    ],
)
def test_bad_user_agents_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """A user agent with a line break, not text, or set twice raises when the client is built."""
    with pytest.raises(RequestValidationError, match=message):
        ChatCompletionsClient("http://127.0.0.1:9/v1", **kwargs)


# -- logging_enable= ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_logging_enable_logs_requests_and_responses_without_secrets(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """logging_enable=True logs the request body and the response's headers and body at
    DEBUG; the key appears nowhere, its header shows ***."""
    caplog.set_level(logging.DEBUG, logger="inference")
    emulator.options.key = KEY
    async with ChatCompletionsClient(emulator.endpoint(), KEY, logging_enable=True) as client:
        await client.complete(messages=[UserMessage("logged question")])
    text = caplog.text
    assert "logged question" in text  # the request body
    assert "-> 200 OK headers=" in text  # the response head
    assert "response body=" in text and '"choices"' in text
    assert "'api-key': '***'" in text
    assert KEY not in text


@pytest.mark.anyio
async def test_without_logging_enable_bodies_are_not_logged(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """By default DEBUG shows request lines, not bodies (prompts can be sensitive)."""
    caplog.set_level(logging.DEBUG, logger="inference")
    async with ChatCompletionsClient(emulator.endpoint(), "k") as client:
        await client.complete(messages=[UserMessage("private question")])
    assert "-> 200 OK" in caplog.text
    assert "private question" not in caplog.text
    assert "response body=" not in caplog.text


# -- AzureKeyCredential("") with the caller's key header -------------------------------------


@pytest.mark.parametrize(
    ("client_headers", "call_headers"),
    [
        ({"api-key": KEY}, None),
        ({"Authorization": f"Bearer {KEY}"}, None),
        (None, {"API-KEY": KEY}),
    ],
)
@pytest.mark.anyio
async def test_an_empty_key_credential_with_an_explicit_key_header_works(
    client_headers: dict[str, str] | None, call_headers: dict[str, str] | None
) -> None:
    """AzureKeyCredential("") plus the caller's own api-key or Authorization header (on the
    client or on the call) sends the caller's header and succeeds."""
    async with (
        Emulator(EmulatorOptions(key=KEY)) as emu,
        ChatCompletionsClient(
            emu.endpoint(), AzureKeyCredential(""), headers=client_headers, retry=0
        ) as client,
    ):
        response = await client.complete(messages=QUESTION, headers=call_headers)
        sent = emu.requests[-1].headers
    assert response.choices[0].message.content
    assert KEY in (sent.get("api-key"), sent.get("authorization", "").removeprefix("Bearer "))


@pytest.mark.anyio
async def test_an_empty_key_without_a_header_is_refused(emulator: Emulator) -> None:
    """An empty key and no key header of the caller's: a clear error, nothing sent."""
    async with ChatCompletionsClient(emulator.endpoint(), AzureKeyCredential("")) as client:
        with pytest.raises(RequestValidationError, match=r"is empty.*headers=\{'api-key'"):
            await client.complete(messages=QUESTION)
    assert emulator.requests == []


@pytest.mark.anyio
async def test_a_set_key_still_wins_over_nothing(emulator: Emulator) -> None:
    """A credential whose key is set later (update) is used as before."""
    credential = AzureKeyCredential("")
    emulator.options.key = KEY
    async with ChatCompletionsClient(emulator.endpoint(), credential) as client:
        credential.update(KEY)
        await client.complete(messages=QUESTION)
    assert emulator.requests[-1].headers["api-key"] == KEY


# -- a key header of the caller's beside a credential that sets its own ----------------------


@pytest.mark.parametrize("name", ["api-key", "API-Key", "Authorization", "authorization"])
@pytest.mark.parametrize("credential", [KEY, AzureKeyCredential(KEY)], ids=["str", "azure-key"])
def test_a_client_key_header_beside_a_key_credential_is_refused(
    name: str, credential: str | AzureKeyCredential
) -> None:
    """The client's headers= with a key header and a credential that would replace it: a
    RequestValidationError naming the header and both ways out, when the client is built."""
    with pytest.raises(RequestValidationError) as info:
        ChatCompletionsClient("http://127.0.0.1:9", credential, headers={name: "mine"})
    message = str(info.value)
    assert f"headers= set the header {name!r}, which conflicts with the credential" in message
    assert "Pass the key as the credential" in message
    assert "AzureKeyCredential('')" in message


@pytest.mark.parametrize("where", ["headers", "extra_headers"])
@pytest.mark.parametrize("name", ["API-KEY", "Authorization"])
@pytest.mark.anyio
async def test_a_call_key_header_beside_a_key_credential_is_refused(
    emulator: Emulator, where: str, name: str
) -> None:
    """A call's headers= or extra_headers= with a key header beside a key credential raises
    before anything is sent (chat and embeddings)."""
    call_headers = {where: {name: "mine"}}
    async with ChatCompletionsClient(emulator.endpoint(), KEY, retry=0) as client:
        with pytest.raises(RequestValidationError, match="this call's headers set the header"):
            await client.complete(messages=QUESTION, **call_headers)
    async with EmbeddingsClient(emulator.endpoint(), KEY, retry=0) as embeddings:
        with pytest.raises(RequestValidationError, match="conflicts with the credential"):
            await embeddings.embed(input=["x"], headers={name: "mine"})
    assert emulator.requests == []


@pytest.mark.anyio
async def test_a_key_set_after_the_client_with_its_header_is_refused(emulator: Emulator) -> None:
    """AzureKeyCredential("") with the caller's header, then a key set on it: the next call
    raises instead of replacing the caller's header."""
    credential = AzureKeyCredential("")
    async with ChatCompletionsClient(
        emulator.endpoint(), credential, headers={"api-key": KEY}, retry=0
    ) as client:
        credential.update("another-key")
        with pytest.raises(RequestValidationError, match="client's headers= set the header"):
            await client.complete(messages=QUESTION)
    assert emulator.requests == []


class _TokenSource:
    """A token credential that is never asked (the client refuses its headers first)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Not reached in these tests."""
        raise AssertionError("no token should be requested")


def test_an_authorization_header_beside_a_token_credential_is_refused() -> None:
    """A token credential sets Authorization itself: the caller's own one is refused."""
    with pytest.raises(RequestValidationError, match="'authorization', which conflicts"):
        ChatCompletionsClient(
            "http://127.0.0.1:9",
            _TokenSource(),
            token_scope="https://example.test/.default",
            headers={"authorization": "Bearer mine"},
        )
