"""Security: secrets stay out of reprs, logs and errors; TLS is verified; keys never travel
over plain http except to loopback; request ids flow both ways; credential faults are clear.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import logging
import os
import random
import ssl
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import anyio
import pytest
from _fault_server import Exchange, FaultServer, completion, error, raw
from aiohttp import web
from azure.core.credentials import AccessToken, AzureKeyCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import inference
from inference import (
    ClientAuthenticationError,
    CredentialError,
    InferenceError,
    RequestValidationError,
    ResourceNotFoundError,
    RetryPolicy,
    ServiceError,
    ServiceRequestError,
    StreamServiceError,
)
from inference.aio import ChatCompletionsClient
from inference.aio._attempts import _request_id
from inference.models import UserMessage
from inference.testing import Emulator, EmulatorOptions

KEY = "sk-KEY-9f8e7d6c5b4a39281706"
WRONG_KEY = "sk-WRONG-0a1b2c3d4e5f60718293"
TOKEN = "eyJTOKEN.c2VjcmV0LXRva2VuLXBheWxvYWQ.sig-4242"
PROMPT = "my private prompt 5e1f"
HI = [UserMessage(PROMPT)]
FAST = RetryPolicy(max_retries=1, backoff=0.01, max_backoff=0.02)


def access_token(token: str, lifetime: float) -> AccessToken:
    """An AccessToken expiring ``lifetime`` seconds from now (fractions of a second kept)."""
    return AccessToken(token, cast(int, time.time() + lifetime))


class StaticToken:
    """An async token credential that always returns the same token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """The token, valid for an hour."""
        self.calls += 1
        return access_token(self.token, 3600)

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> StaticToken:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class MintingTokens:
    """An async token credential minting ``tok-N`` tokens, slowly, and remembering them.

    ``valid`` holds the tokens the (fake) identity service still honours; ``failure``, when
    set, is raised instead of minting.
    """

    def __init__(self, *, lifetime: float = 3600.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self.valid: dict[str, float] = {}
        self.failure: Exception | None = None

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Mint a new token (after ``delay`` seconds)."""
        self.calls += 1
        number = self.calls
        if self.delay:
            await anyio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        token = f"tok-{number}"
        expires = time.time() + self.lifetime
        self.valid[token] = expires
        return access_token(token, self.lifetime)

    def accepts(self, authorization: str) -> bool:
        """Whether ``authorization`` carries a minted token that has not expired."""
        token = authorization.removeprefix("Bearer ")
        expires = self.valid.get(token)
        return expires is not None and time.time() < expires

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> MintingTokens:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def texts_of(record: logging.LogRecord) -> list[str]:
    """Every piece of text a log record can produce."""
    texts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(record.exc_info[1])))
    return texts


def assert_no_secret(records: list[logging.LogRecord], *secrets: str) -> None:
    """None of ``secrets`` appears in any record's message, arguments or traceback."""
    for record in records:
        for text in texts_of(record):
            for secret in secrets:
                assert secret not in text, f"secret leaked in {record.name}: {text[:300]}"


def assert_exception_clean(exc: BaseException, *secrets: str) -> None:
    """None of ``secrets`` appears in the exception's str, repr, attributes or traceback."""
    texts = [
        str(exc),
        repr(exc),
        repr(vars(exc)),
        "".join(traceback.format_exception(exc)),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def debug_request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The DEBUG records of the ``inference`` logger describing an outgoing request."""
    return [
        r
        for r in caplog.records
        if r.name == "inference" and r.levelno == logging.DEBUG and "headers=" in r.getMessage()
    ]


# -- secrets in logs, reprs and errors ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("make_credential", [lambda: KEY, lambda: AzureKeyCredential(KEY)])
async def test_key_never_logged_or_shown(
    make_credential: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A full session with a key (success, stream, retries, 401) leaks it nowhere, DEBUG too."""
    caplog.set_level(logging.DEBUG)
    credential = make_credential()
    async with Emulator(EmulatorOptions(key=KEY)) as emu:
        async with ChatCompletionsClient(
            emu.endpoint("azure_ai_models"), credential, model="m", retry=FAST
        ) as client:
            await client.complete(messages=HI)
            stream = await client.complete(messages=HI, stream=True)
            async with stream:
                await stream.until_done()
            with pytest.raises(ServiceError) as service_error:
                await client.complete(messages=HI, headers={"x-emulator-status": "503"})
            assert repr(client).count("***") >= 1
            texts = [repr(client), str(client), repr(client._auth)]
            if isinstance(credential, AzureKeyCredential):
                texts.append(repr(credential))
            for text in texts:
                assert KEY not in text
        async with ChatCompletionsClient(
            emu.endpoint("azure_ai_models"), WRONG_KEY, model="m", retry=FAST
        ) as wrong:
            with pytest.raises(ClientAuthenticationError) as refused:
                await wrong.complete(messages=HI)
    # The key did reach the server, in the headers the endpoint kind uses.
    assert emu.requests[0].headers["api-key"] == KEY
    assert debug_request_records(caplog), "the requests were not logged at DEBUG"
    assert any("'api-key': '***'" in r.getMessage() for r in debug_request_records(caplog))
    assert_no_secret(caplog.records, KEY, WRONG_KEY)
    assert_exception_clean(service_error.value, KEY)
    assert_exception_clean(refused.value, KEY, WRONG_KEY)


@pytest.mark.anyio
async def test_token_never_logged_or_shown(caplog: pytest.LogCaptureFixture) -> None:
    """A full session with a token credential, 401 refresh included, leaks the token nowhere."""
    caplog.set_level(logging.DEBUG)
    credential = StaticToken(TOKEN)
    async with (
        Emulator(EmulatorOptions(key=TOKEN)) as emu,
        ChatCompletionsClient(
            emu.endpoint("azure_ai_models"), credential, model="m", retry=FAST
        ) as client,
    ):
        await client.complete(messages=HI)
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            await stream.until_done()
        emu.options.key = "something-else"
        with pytest.raises(ClientAuthenticationError) as refused:
            await client.complete(messages=HI)
        for text in (repr(client), repr(client._auth), repr(credential)):
            assert TOKEN not in text
    assert emu.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert credential.calls == 2  # the 401 threw the token away and fetched it again
    assert debug_request_records(caplog)
    assert any("'authorization': '***'" in r.getMessage() for r in debug_request_records(caplog))
    assert_no_secret(caplog.records, TOKEN)
    assert_exception_clean(refused.value, TOKEN)


@pytest.mark.anyio
async def test_custom_key_header_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """A key sent in a custom header (key_header=) is hidden in DEBUG logs as well."""
    caplog.set_level(logging.DEBUG)
    async with (
        FaultServer() as server,
        ChatCompletionsClient(
            server.endpoint(), KEY, model="m", key_header="x-my-gateway-key"
        ) as client,
    ):
        await client.complete(messages=HI)
    assert server.attempts[0].headers["x-my-gateway-key"] == KEY
    assert any("'x-my-gateway-key': '***'" in r.getMessage() for r in caplog.records)
    assert_no_secret(caplog.records, KEY)


@pytest.mark.anyio
async def test_secret_looking_user_headers_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """User headers that usually carry credentials are hidden in DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    secret_headers = {
        "Ocp-Apim-Subscription-Key": "apim-secret-1",
        "X-Api-Key": "xapi-secret-2",
        "Proxy-Authorization": "Basic proxy-secret-3",
        "Cookie": "session=cookie-secret-4",
    }
    async with (
        FaultServer() as server,
        ChatCompletionsClient(server.endpoint(), model="m", headers=secret_headers) as client,
    ):
        await client.complete(messages=HI)
    assert server.attempts[0].headers["x-api-key"] == "xapi-secret-2"
    assert debug_request_records(caplog)
    assert_no_secret(caplog.records, *(v.split()[-1] for v in secret_headers.values()))


def test_sync_client_repr_hides_the_key() -> None:
    """The sync client's repr shows the credential kind, never the key."""
    client = inference.ChatCompletionsClient("https://example.test/models", KEY, model="m")
    try:
        assert KEY not in repr(client)
        assert "***" in repr(client)
    finally:
        client.close()


@pytest.mark.anyio
async def test_request_body_not_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """Prompts stay out of the logs unless log_request_body=True; then they are logged."""
    caplog.set_level(logging.DEBUG)
    async with FaultServer() as server:
        async with ChatCompletionsClient(server.endpoint(), model="m") as client:
            await client.complete(messages=HI)
        assert debug_request_records(caplog)
        assert_no_secret(caplog.records, PROMPT)
        caplog.clear()
        async with ChatCompletionsClient(
            server.endpoint(), model="m", log_request_body=True
        ) as client:
            await client.complete(messages=HI)
        assert any(PROMPT in r.getMessage() for r in debug_request_records(caplog))


@pytest.mark.anyio
async def test_credential_error_hides_the_previous_token() -> None:
    """A token source failing with a message that contains a token: the token is redacted."""
    credential = MintingTokens(lifetime=0.2)
    async with (
        FaultServer() as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        await client.complete(messages=HI)
        credential.failure = RuntimeError("refresh refused; the old token tok-1 is revoked")
        await anyio.sleep(0.25)
        with pytest.raises(CredentialError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
    assert "tok-1" not in str(info.value)
    assert "RuntimeError" in str(info.value)
    assert "refresh refused" in str(info.value)


# -- plain http -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/models",
        "http://10.0.0.5:8000/v1",
        "http://localhost.example.com/v1",
        "http://127.0.0.1.nip.io/v1",
        "http://[::ffff:10.0.0.1]/v1",
    ],
)
@pytest.mark.parametrize(
    "credential",
    [KEY, AzureKeyCredential(KEY), StaticToken(TOKEN)],
    ids=["str", "AzureKeyCredential", "token"],
)
def test_credentials_refused_over_plain_http(url: str, credential: Any) -> None:
    """A key or token is never sent over plain http to a non-loopback host."""
    with pytest.raises(RequestValidationError, match="plain http") as info:
        ChatCompletionsClient(url, credential, model="m", token_scope="api://scope/.default")
    assert KEY not in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.8.9.10/v1",
        "http://localhost:1234/v1",
        "http://[::1]:8000/v1",
        "https://example.com/v1",
    ],
)
def test_credentials_allowed_over_https_and_loopback(url: str) -> None:
    """https anywhere, and plain http to loopback addresses, accept credentials."""
    client = ChatCompletionsClient(url, KEY, model="m")
    assert client.endpoint.base_url.startswith(url.split("/v1")[0])


def test_no_credential_over_plain_http_is_allowed() -> None:
    """Without a credential there is nothing to protect: any http URL is accepted."""
    client = ChatCompletionsClient("http://example.com/v1", model="m")
    assert client.endpoint.base_url == "http://example.com/v1"


# -- request ids ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_client_request_id_is_sent(emulator: Emulator) -> None:
    """Every request carries a fresh x-ms-client-request-id (a random, version 4 UUID in its
    canonical spelling); a caller's own wins."""
    async with ChatCompletionsClient(emulator.endpoint(), model="m") as client:
        await client.complete(messages=HI)
        await client.complete(messages=HI)
        await client.complete(messages=HI, headers={"x-ms-client-request-id": "my-trace-1"})
    ids = [r.headers["x-ms-client-request-id"] for r in emulator.requests]
    for sent in ids[:2]:
        parsed = uuid.UUID(sent)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == sent
    assert ids[0] != ids[1]
    assert ids[2] == "my-trace-1"


def test_request_ids_ignore_the_applications_random_seed() -> None:
    """Seeding ``random`` (as reproducible runs do) fixes neither the request ids nor lets
    them consume the application's random sequence; a forked child makes other ids."""
    random.seed(1234)
    first = _request_id()
    random.seed(1234)
    assert _request_id() != first
    random.seed(7)
    expected = random.random()
    random.seed(7)
    _request_id()
    assert random.random() == expected
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id and leave at once
        os.write(write, _request_id().encode())
        os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4
    assert child != _request_id()


@pytest.mark.anyio
async def test_errors_carry_the_server_request_id() -> None:
    """Error statuses carry the server's request id (x-request-id, or apim-request-id)."""
    async with (
        FaultServer(
            error(500, request_id="srv-rid-500"),
            raw(
                404,
                b"not here",
                content_type="text/plain",
                request_id="",
                headers={"apim-request-id": "apim-rid-404"},
            ),
        ) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=0) as client,
    ):
        with pytest.raises(ServiceError) as server_error:
            await client.complete(messages=HI)
        with pytest.raises(ResourceNotFoundError) as not_found:
            await client.complete(messages=HI)
    assert server_error.value.request_id == "srv-rid-500"
    assert "srv-rid-500" in str(server_error.value)
    assert not_found.value.request_id == "apim-rid-404"
    assert "apim-rid-404" in str(not_found.value)


@pytest.mark.anyio
async def test_stream_and_stream_errors_carry_the_server_request_id(emulator: Emulator) -> None:
    """A stream exposes the server's request id, and so does an error event inside it."""
    async with ChatCompletionsClient(emulator.endpoint(), model="m") as client:
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            await stream.until_done()
        assert stream.request_id == stream.response_headers["x-request-id"]
        broken = await client.complete(
            messages=HI, stream=True, headers={"x-emulator-error-after": "1"}
        )
        with pytest.raises(StreamServiceError) as info:
            async with broken:
                await broken.until_done()
    assert info.value.request_id is not None
    assert info.value.request_id == broken.response_headers["x-request-id"]


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    yield cert_path, key_path


@pytest.fixture
async def tls_endpoint(
    self_signed: tuple[Path, Path], anyio_backend: str
) -> AsyncIterator[tuple[str, list[str]]]:
    """An https chat-completions endpoint on 127.0.0.1 with the self-signed certificate.

    Yields the endpoint URL and the list of request paths it served.
    """
    cert_path, key_path = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    served: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        served.append(request.path)
        body = {
            "id": "tls",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "over tls"},
                    "finish_reason": "stop",
                }
            ],
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/v1", served
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_tls_certificate_is_verified_by_default(
    tls_endpoint: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """A self-signed certificate is refused: ServiceRequestError, not retried, key not sent."""
    caplog.set_level(logging.INFO, logger="inference")
    url, served = tls_endpoint
    async with ChatCompletionsClient(url, KEY, model="m", retry=3) as client:
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
        assert client._transport.pool_stats()[0] == 0
    message = str(info.value).lower()
    assert "certificate verify failed" in message
    assert (
        f"tls with {url.removesuffix('/v1')} failed: the server's certificate was refused"
        in message
    )
    assert "[ssl:" not in message and "_ssl.c" not in message
    assert info.value.attempts == 1
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    assert served == []
    assert isinstance(info.value, InferenceError)


@pytest.mark.anyio
async def test_own_session_decides_tls(
    tls_endpoint: tuple[str, list[str]], self_signed: tuple[Path, Path]
) -> None:
    """With the caller's own session, its TLS settings apply (ssl=False, or a trusted CA).

    The connection's decrypted reads are bounded to 64 KiB, as plain TCP reads are."""
    url, served = tls_endpoint
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session,
        ChatCompletionsClient(url, KEY, model="m", session=session) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "over tls"
    trusting = ssl.create_default_context(cafile=str(self_signed[0]))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as session,
        ChatCompletionsClient(url, KEY, model="m", session=session) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "over tls"
        connector: Any = session.connector
        [transport] = [p.transport for idle in connector._conns.values() for p, _ in idle]
        assert transport._ssl_protocol.max_size == 64 * 1024
    assert served == ["/v1/chat/completions"] * 2


# -- credential faults ----------------------------------------------------------------------------


def token_checking(credential: MintingTokens, *, stagger: float = 0.0) -> Any:
    """A fault-server action answering 200 for a valid token and 401 otherwise.

    ``stagger`` delays the n-th request by ``(n % 10) * stagger`` seconds, so answers to a
    burst of requests come back spread out.
    """
    counter = 0

    async def action(ex: Exchange) -> bool:
        nonlocal counter
        counter += 1
        if stagger:
            await anyio.sleep((counter % 10) * stagger)
        if credential.accepts(ex.attempt.headers.get("authorization", "")):
            return await completion()(ex)
        return await error(401, message="token expired or revoked")(ex)

    return action


@pytest.mark.anyio
@pytest.mark.parametrize("sync_source", [False, True])
async def test_failing_token_source_gives_credential_error(sync_source: bool) -> None:
    """A token source that raises: CredentialError naming the credential; nothing is sent."""

    class Broken:
        """Fails every time."""

        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            """Fail like an identity library does."""
            raise RuntimeError("identity endpoint unreachable")

    class AsyncBroken:
        """Fails every time (async)."""

        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            """Fail like an identity library does."""
            raise RuntimeError("identity endpoint unreachable")

        async def close(self) -> None:
            """Nothing to close."""

        async def __aenter__(self) -> AsyncBroken:
            return self

        async def __aexit__(self, *args: object) -> None:
            return None

    credential: Any = Broken() if sync_source else AsyncBroken()
    async with (
        FaultServer() as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        with pytest.raises(CredentialError, match="identity endpoint unreachable") as info:
            await client.complete(messages=HI)
        assert server.attempts == []
        assert client._transport.pool_stats()[0] == 0
    assert type(credential).__name__ in str(info.value)
    assert "cognitiveservices" in str(info.value)  # the scope asked for


@pytest.mark.anyio
async def test_slow_token_source_is_asked_once_by_concurrent_requests() -> None:
    """A slow token source and 40 concurrent first requests: exactly one token request."""
    credential = MintingTokens(delay=0.2)
    async with (
        FaultServer(default=token_checking(credential)) as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        async with anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(functools.partial(client.complete, messages=HI))
        assert credential.calls == 1
        assert len(server.attempts) == 40
        assert {a.headers["authorization"] for a in server.attempts} == {"Bearer tok-1"}


@pytest.mark.anyio
async def test_token_expiring_mid_run_is_refreshed_once() -> None:
    """A token that expires mid-run is renewed transparently, by one request for everyone."""
    credential = MintingTokens(lifetime=1.0, delay=0.05)
    async with (
        FaultServer(default=token_checking(credential)) as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        await client.complete(messages=HI)
        assert credential.calls == 1
        await anyio.sleep(0.6)  # past the refresh point (half its life), before expiry
        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(functools.partial(client.complete, messages=HI))
        assert credential.calls == 2
        await anyio.sleep(1.1)  # tok-2 has expired now
        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(functools.partial(client.complete, messages=HI))
        assert credential.calls == 3
    # Every request was answered 200: no expired token was ever sent.
    assert len(server.attempts) == 61


@pytest.mark.anyio
async def test_revoked_token_burst_of_401s_refreshes_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service revokes the token: a burst of 401s (arriving spread out) costs one refresh."""
    caplog.set_level(logging.INFO, logger="inference")
    credential = MintingTokens(delay=0.02)
    async with (
        FaultServer(default=token_checking(credential, stagger=0.02)) as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        await client.complete(messages=HI)
        credential.valid.clear()  # revoked
        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(functools.partial(client.complete, messages=HI))
        assert credential.calls == 2
        assert len(server.attempts) == 1 + 30 + 30
    refreshes = [r for r in caplog.records if "fresh token" in r.getMessage()]
    assert len(refreshes) == 30


@pytest.mark.anyio
async def test_failed_refresh_keeps_the_valid_token() -> None:
    """A token source failing while the current token is still valid does not fail calls."""
    credential = MintingTokens(lifetime=1.0)
    async with (
        FaultServer(default=token_checking(credential)) as server,
        ChatCompletionsClient(server.endpoint("/models"), credential, model="m") as client,
    ):
        await client.complete(messages=HI)
        credential.failure = RuntimeError("temporarily down")
        await anyio.sleep(0.55)  # refresh due, token still valid
        for _ in range(5):
            await client.complete(messages=HI)
        assert credential.calls == 2  # asked once, then not again on every request
        assert len(server.attempts) == 6
