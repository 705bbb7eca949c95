"""Tests for inference._auth: keys, token credentials, token caching and refresh, redaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
from _fault_server import FaultServer
from aiohttp import web
from azure.core.credentials import (
    AccessToken,
    AccessTokenInfo,
    AzureKeyCredential,
    AzureNamedKeyCredential,
    AzureSasCredential,
)
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

from inference import Timeout, TotalTimeoutError
from inference._auth import Authenticator, Credential
from inference.aio import ChatCompletionsClient
from inference.exceptions import CredentialError, RequestValidationError
from inference.models import UserMessage

SCOPE = "https://cognitiveservices.azure.com/.default"
RESOURCE = "https://cognitiveservices.azure.com"
START = 1_700_000_000.0


class Clock:
    """A settable clock in epoch seconds."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Script:
    """What a token-source double hands out: numbered tokens, or an error; counts the calls."""

    def __init__(
        self,
        clock: Clock,
        *,
        lifetime: float = 3600.0,
        refresh_in: float | None = None,
        prefix: str = "s3cr3t-token",
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.refresh_in = refresh_in
        self.prefix = prefix
        self.error: Exception | None = None
        self.calls = 0
        self.scopes: list[tuple[str, ...]] = []
        self.threads: list[int] = []
        self._count_lock = threading.Lock()

    def next_token(self, scopes: tuple[str, ...]) -> AccessTokenInfo:
        """Record one call and return the next token (or raise the configured error)."""
        with self._count_lock:
            self.calls += 1
            number = self.calls
            self.scopes.append(scopes)
            self.threads.append(threading.get_ident())
        if self.error is not None:
            raise self.error
        now = self.clock()
        refresh_on = None if self.refresh_in is None else int(now + self.refresh_in)
        return AccessTokenInfo(
            f"{self.prefix}-{number}", int(now + self.lifetime), refresh_on=refresh_on
        )

    def token(self, number: int) -> str:
        """The token string handed out by call ``number``."""
        return f"{self.prefix}-{number}"


class SyncSource:
    """A synchronous TokenCredential double (``get_token`` only), optionally slow or gated."""

    def __init__(
        self, script: Script, *, delay: float = 0.0, gate: threading.Event | None = None
    ) -> None:
        self.script = script
        self.delay = delay
        self.gate = gate
        self.closed = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the script's next token as an AccessToken."""
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay:
            time.sleep(self.delay)
        info = self.script.next_token(scopes)
        return AccessToken(info.token, info.expires_on)

    def close(self) -> None:
        """Count closes."""
        self.closed += 1


class SyncInfoSource(SyncSource):
    """A synchronous credential with both methods; ``get_token`` must not be used."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Fail the test if called: get_token_info is preferred."""
        raise AssertionError("get_token called although get_token_info exists")

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """Return the script's next token with its refresh_on."""
        return self.script.next_token(scopes)


class AsyncSource:
    """An asynchronous TokenCredential double, optionally slow or gated."""

    def __init__(
        self, script: Script, *, delay: float = 0.0, gate: anyio.Event | None = None
    ) -> None:
        self.script = script
        self.delay = delay
        self.gate = gate
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the script's next token as an AccessToken."""
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await anyio.sleep(self.delay)
        info = self.script.next_token(scopes)
        return AccessToken(info.token, info.expires_on)

    async def close(self) -> None:
        """Count closes."""
        self.closed += 1

    async def __aenter__(self) -> AsyncSource:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


class AsyncInfoSource(AsyncSource):
    """An asynchronous credential with both methods; ``get_token`` must not be used."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Fail the test if called: get_token_info is preferred."""
        raise AssertionError("get_token called although get_token_info exists")

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """Return the script's next token with its refresh_on."""
        if self.delay:
            await anyio.sleep(self.delay)
        return self.script.next_token(scopes)


def token_auth(
    source: Any, clock: Clock, *, margin: float = 300.0, timeout: float | None = 5.0
) -> Authenticator:
    """An Authenticator for a token-source double."""
    credential: Credential = source
    return Authenticator(
        credential,
        key_headers=("api-key",),
        token_scope=SCOPE,
        refresh_margin=margin,
        token_timeout=timeout,
        clock=clock,
    )


async def auth_header(auth: Authenticator) -> str:
    """Apply ``auth`` to empty headers and return the authorization header."""
    headers: dict[str, str] = {}
    await auth.apply(headers)
    assert list(headers) == ["authorization"]
    return headers["authorization"]


# -- keys and construction --------------------------------------------------------------

KEY_HEADER_CASES = [
    (("api-key",), {"api-key": "k-123"}),
    (("authorization",), {"authorization": "Bearer k-123"}),
    (("api-key", "authorization"), {"api-key": "k-123", "authorization": "Bearer k-123"}),
    (("x-api-key",), {"x-api-key": "k-123"}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("key_headers", "expected"), KEY_HEADER_CASES)
async def test_str_key_headers(key_headers: tuple[str, ...], expected: dict[str, str]) -> None:
    """A str key goes into every key header; authorization gets the Bearer prefix."""
    auth = Authenticator("k-123", key_headers=key_headers, token_scope=None)
    headers = {"content-type": "application/json"}
    await auth.apply(headers)
    assert headers == {"content-type": "application/json", **expected}
    assert auth.uses_credentials


@pytest.mark.anyio
@pytest.mark.parametrize(("key_headers", "expected"), KEY_HEADER_CASES)
async def test_azure_key_credential_headers(
    key_headers: tuple[str, ...], expected: dict[str, str]
) -> None:
    """An AzureKeyCredential fills the same headers as a str key."""
    auth = Authenticator(AzureKeyCredential("k-123"), key_headers=key_headers, token_scope=SCOPE)
    headers: dict[str, str] = {}
    await auth.apply(headers)
    assert headers == expected


@pytest.mark.anyio
async def test_azure_key_credential_update_takes_effect() -> None:
    """credential.update() changes the very next apply()."""
    credential = AzureKeyCredential("old-key")
    auth = Authenticator(credential, key_headers=("api-key", "authorization"), token_scope=None)
    first: dict[str, str] = {}
    await auth.apply(first)
    credential.update("new-key")
    second: dict[str, str] = {}
    await auth.apply(second)
    assert first == {"api-key": "old-key", "authorization": "Bearer old-key"}
    assert second == {"api-key": "new-key", "authorization": "Bearer new-key"}


@pytest.mark.anyio
async def test_none_adds_no_header() -> None:
    """No credential: no header, uses_credentials is False, close is harmless."""
    auth = Authenticator(None, key_headers=("api-key",), token_scope=None)
    headers = {"accept": "application/json"}
    await auth.apply(headers)
    assert headers == {"accept": "application/json"}
    assert not auth.uses_credentials
    auth.invalidate()
    await auth.aclose()
    await auth.aclose()


@pytest.mark.parametrize("key", ["", "abc\n", "ab\rc", "a\x00b"])
def test_bad_str_key_rejected_without_echo(key: str) -> None:
    """Empty keys and keys with control characters are refused; the message hides the key."""
    with pytest.raises(RequestValidationError) as info:
        Authenticator(key, key_headers=("api-key",), token_scope=None)
    if key:
        assert key not in str(info.value)


@pytest.mark.anyio
async def test_azure_key_with_newline_rejected_at_apply() -> None:
    """A key updated to contain a newline is refused when applied, without echoing it."""
    credential = AzureKeyCredential("fine")
    auth = Authenticator(credential, key_headers=("api-key",), token_scope=None)
    credential.update("key-with-newline-SECRET\n")
    with pytest.raises(RequestValidationError) as info:
        await auth.apply({})
    assert "SECRET" not in str(info.value)
    assert "newline" in str(info.value)


@pytest.mark.parametrize(
    "credential",
    [AzureSasCredential("sig"), AzureNamedKeyCredential("name", "key"), 42, b"bytes-key", object()],
)
def test_unsupported_credential_type(credential: Any) -> None:
    """An unsupported credential names its type and lists what is accepted."""
    with pytest.raises(RequestValidationError) as info:
        Authenticator(credential, key_headers=("api-key",), token_scope=SCOPE)
    message = str(info.value)
    assert type(credential).__name__ in message
    for accepted in ("str", "AzureKeyCredential", "TokenCredential", "AsyncTokenCredential"):
        assert accepted in message


def test_credential_class_instead_of_instance() -> None:
    """Passing a credential class (not an instance) says to call it."""
    with pytest.raises(RequestValidationError, match=r"DefaultAzureCredential\(\)"):
        Authenticator(
            DefaultAzureCredential,  # type: ignore[arg-type]
            key_headers=("api-key",),
            token_scope=SCOPE,
        )


@pytest.mark.parametrize("source_type", [SyncSource, AsyncSource])
def test_token_credential_needs_scope(source_type: Callable[[Script], Any]) -> None:
    """A token credential without token_scope is refused with a hint naming token_scope=."""
    with pytest.raises(RequestValidationError) as info:
        Authenticator(source_type(Script(Clock())), key_headers=("api-key",), token_scope=None)
    assert "token_scope=" in str(info.value)
    assert SCOPE in str(info.value)


@pytest.mark.parametrize("key_headers", [(), ("Api-Key",), ("",), ("api-key:",)])
def test_bad_key_headers_rejected(key_headers: tuple[str, ...]) -> None:
    """Key headers must be a non-empty tuple of lower-case header names."""
    with pytest.raises(RequestValidationError, match="key_headers"):
        Authenticator("k", key_headers=key_headers, token_scope=None)


@pytest.mark.parametrize(
    ("margin", "timeout"),
    [(-1.0, 1.0), (float("inf"), 1.0), (float("nan"), 1.0), ("300", 1.0), (1.0, 0.0), (1.0, -2.0)],
)
def test_bad_margin_or_timeout_rejected(margin: Any, timeout: float) -> None:
    """A negative/infinite refresh margin or a non-positive timeout is refused."""
    with pytest.raises(RequestValidationError):
        Authenticator(
            "k",
            key_headers=("api-key",),
            token_scope=None,
            refresh_margin=margin,
            token_timeout=timeout,
        )


@pytest.mark.anyio
async def test_constructed_in_thread_without_loop() -> None:
    """An Authenticator built in a thread with no event loop works on the loop later."""
    clock = Clock()
    script = Script(clock)
    built: list[Authenticator] = []
    thread = threading.Thread(target=lambda: built.append(token_auth(AsyncSource(script), clock)))
    thread.start()
    thread.join()
    assert await auth_header(built[0]) == f"Bearer {script.token(1)}"


# -- token caching and refresh ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("source_type", [SyncSource, AsyncSource])
async def test_token_cached_then_refreshed_at_margin(
    source_type: Callable[[Script], Any],
) -> None:
    """The token is reused until expires_on - margin, then fetched again."""
    clock = Clock()
    script = Script(clock, lifetime=3600)
    auth = token_auth(source_type(script), clock, margin=300)
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    assert script.calls == 1
    assert script.scopes == [(SCOPE,)]
    clock.now = START + 3600 - 301
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    assert script.calls == 1
    clock.now = START + 3600 - 299
    assert await auth_header(auth) == f"Bearer {script.token(2)}"
    assert script.calls == 2
    assert await auth_header(auth) == f"Bearer {script.token(2)}"
    assert script.calls == 2


@pytest.mark.anyio
@pytest.mark.parametrize("source_type", [SyncInfoSource, AsyncInfoSource])
async def test_get_token_info_preferred_and_refresh_on_respected(
    source_type: Callable[[Script], Any],
) -> None:
    """get_token_info is used when present, and its refresh_on decides the refresh time."""
    clock = Clock()
    script = Script(clock, lifetime=3600, refresh_in=600)
    auth = token_auth(source_type(script), clock, margin=300)
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    clock.now = START + 599
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    assert script.calls == 1
    clock.now = START + 600
    assert await auth_header(auth) == f"Bearer {script.token(2)}"
    assert script.calls == 2


@pytest.mark.anyio
async def test_short_lived_token_refreshed_halfway() -> None:
    """A token living less than the margin is reused for half its life, not refetched each time."""
    clock = Clock()
    script = Script(clock, lifetime=100)
    auth = token_auth(AsyncSource(script), clock, margin=300)
    await auth_header(auth)
    clock.now = START + 49
    await auth_header(auth)
    assert script.calls == 1
    clock.now = START + 51
    assert await auth_header(auth) == f"Bearer {script.token(2)}"


@pytest.mark.anyio
@pytest.mark.parametrize("source_type", [SyncSource, AsyncSource])
async def test_invalidate_forces_new_token(source_type: Callable[[Script], Any]) -> None:
    """invalidate() drops the cached token; the next apply fetches a fresh one."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(source_type(script), clock)
    assert await auth_header(auth) == f"Bearer {script.token(1)}"
    auth.invalidate()
    assert await auth_header(auth) == f"Bearer {script.token(2)}"
    assert await auth_header(auth) == f"Bearer {script.token(2)}"
    assert script.calls == 2


@pytest.mark.anyio
async def test_sync_credential_runs_in_worker_thread() -> None:
    """A sync credential is called in a worker thread, an async one on the loop's thread."""
    clock = Clock()
    sync_script = Script(clock)
    await auth_header(token_auth(SyncSource(sync_script), clock))
    async_script = Script(clock)
    await auth_header(token_auth(AsyncSource(async_script), clock))
    loop_thread = threading.get_ident()
    assert sync_script.threads and sync_script.threads[0] != loop_thread
    assert async_script.threads == [loop_thread]


class CoroutineReturningSource:
    """A credential whose get_token is a plain function returning a coroutine."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return a coroutine that produces the token."""
        return self._get(scopes)

    async def _get(self, scopes: tuple[str, ...]) -> AccessTokenInfo:
        return self.script.next_token(scopes)


@pytest.mark.anyio
async def test_plain_function_returning_coroutine_is_awaited() -> None:
    """A get_token that returns an awaitable from a plain def is awaited, not sent as text."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(CoroutineReturningSource(script), clock)
    assert await auth_header(auth) == f"Bearer {script.token(1)}"


@pytest.mark.anyio
@pytest.mark.parametrize("result", [None, "a-bare-string", AccessToken("", 0)])
async def test_unusable_token_result_is_credential_error(result: Any) -> None:
    """A token source returning something without a token string raises CredentialError."""

    class Odd:
        async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            return result

    auth = token_auth(Odd(), Clock())
    with pytest.raises(CredentialError, match=r"Odd\.get_token"):
        await auth.apply({})


# -- concurrency ------------------------------------------------------------------------


async def apply_concurrently(auth: Authenticator, count: int) -> list[str]:
    """Run ``count`` apply() calls at once; return the authorization header of each."""
    results: list[str] = []

    async def one() -> None:
        results.append(await auth_header(auth))

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)
    return results


@pytest.mark.anyio
async def test_stampede_async_source_fetches_once() -> None:
    """100 concurrent applies on an expired cache make exactly one async get_token call."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(AsyncSource(script, delay=0.05), clock)
    await auth_header(auth)
    clock.now = START + 3600
    results = await apply_concurrently(auth, 100)
    assert script.calls == 2
    assert results == [f"Bearer {script.token(2)}"] * 100


@pytest.mark.anyio
async def test_stampede_sync_source_fetches_once() -> None:
    """100 concurrent applies on an empty cache make exactly one sync get_token call."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(SyncSource(script, delay=0.05), clock)
    results = await apply_concurrently(auth, 100)
    assert script.calls == 1
    assert results == [f"Bearer {script.token(1)}"] * 100


@pytest.mark.anyio
async def test_refresh_in_margin_does_not_block_others() -> None:
    """While one task refreshes a still-valid token, other requests use the current token."""
    clock = Clock()
    script = Script(clock)
    gate = anyio.Event()
    source = AsyncSource(script)
    auth = token_auth(source, clock, margin=300)
    await auth_header(auth)
    clock.now = START + 3600 - 100  # inside the margin, not expired
    source.gate = gate
    async with anyio.create_task_group() as group:
        refreshed: list[str] = []

        async def refresher() -> None:
            refreshed.append(await auth_header(auth))

        group.start_soon(refresher)
        await anyio.wait_all_tasks_blocked()
        others = await apply_concurrently(auth, 20)
        assert others == [f"Bearer {script.token(1)}"] * 20
        gate.set()
    assert refreshed == [f"Bearer {script.token(2)}"]
    assert script.calls == 2


@pytest.mark.anyio
async def test_concurrent_waiters_share_a_failure() -> None:
    """Concurrent applies waiting on one failing fetch all fail, after a single call."""
    clock = Clock()
    script = Script(clock)
    script.error = RuntimeError("identity endpoint unreachable")
    auth = token_auth(AsyncSource(script, delay=0.05), clock)
    failures: list[CredentialError] = []

    async def one() -> None:
        try:
            await auth.apply({})
        except CredentialError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)
    assert script.calls == 1
    assert len(failures) == 10
    assert all("identity endpoint unreachable" in str(exc) for exc in failures)
    assert all(isinstance(exc.__cause__, RuntimeError) for exc in failures)


# -- failures and timeouts --------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("source_type", [SyncSource, AsyncSource])
async def test_failing_source_raises_credential_error(
    source_type: Callable[[Script], Any],
) -> None:
    """An expired token plus a failing source raise CredentialError naming both, no secret."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(source_type(script), clock)
    old = script.token(1)
    assert await auth_header(auth) == f"Bearer {old}"
    clock.now = START + 3600
    cause = RuntimeError(f"refused; last token was {old}")
    script.error = cause
    with pytest.raises(CredentialError) as info:
        await auth.apply({})
    message = str(info.value)
    assert source_type.__name__ in message
    assert "RuntimeError" in message
    assert "refused; last token was" in message
    assert SCOPE in message
    assert old not in message
    assert info.value.__cause__ is cause


@pytest.mark.anyio
async def test_failed_refresh_keeps_valid_token(caplog: pytest.LogCaptureFixture) -> None:
    """A refresh failing inside the margin keeps the old token, warns, and retries later."""
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    script = Script(clock)
    auth = token_auth(AsyncSource(script), clock, margin=300)
    old = script.token(1)
    await auth_header(auth)
    clock.now = START + 3600 - 200
    script.error = RuntimeError(f"service busy (had {old})")
    assert await auth_header(auth) == f"Bearer {old}"
    assert script.calls == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "service busy" in warnings[0].getMessage()
    assert old not in caplog.text
    # Not asked again on every request right after a failure...
    assert await auth_header(auth) == f"Bearer {old}"
    assert script.calls == 2
    # ...but again a little later, and a success replaces the token.
    script.error = None
    clock.now += 30
    assert await auth_header(auth) == f"Bearer {script.token(3)}"


@pytest.mark.anyio
async def test_failed_refresh_after_expiry_raises() -> None:
    """Once the old token has expired, a failed refresh raises instead of sending it."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(AsyncSource(script), clock, margin=300)
    await auth_header(auth)
    clock.now = START + 3600 - 200
    script.error = RuntimeError("down")
    await auth_header(auth)
    clock.now = START + 3601
    with pytest.raises(CredentialError, match="down"):
        await auth.apply({})


@pytest.mark.anyio
async def test_slow_async_source_times_out() -> None:
    """An async token source slower than token_timeout raises CredentialError (timed out)."""
    clock = Clock()
    script = Script(clock)
    auth = token_auth(AsyncSource(script, gate=anyio.Event()), clock, timeout=0.2)
    with pytest.raises(CredentialError, match="timed out") as info:
        await auth.apply({})
    assert "AsyncSource.get_token" in str(info.value)
    assert "0.2" in str(info.value)


@pytest.mark.anyio
async def test_slow_sync_source_times_out() -> None:
    """A sync token source hanging in its thread beyond token_timeout raises CredentialError."""
    clock = Clock()
    script = Script(clock)
    gate = threading.Event()
    auth = token_auth(SyncSource(script, gate=gate), clock, timeout=0.2)
    try:
        with pytest.raises(CredentialError, match="timed out"):
            await auth.apply({})
    finally:
        gate.set()
    # Once the source answers again, a later apply gets a token.
    assert (await auth_header(auth)).startswith("Bearer s3cr3t-token-")


# -- lifecycle, repr, logs --------------------------------------------------------------


@pytest.mark.anyio
async def test_aclose_only_closes_owned_credentials() -> None:
    """aclose() closes the credential only when owned, once, for async and sync credentials."""
    clock = Clock()
    borrowed = AsyncSource(Script(clock))
    auth = token_auth(borrowed, clock)
    await auth.aclose()
    assert borrowed.closed == 0

    owned = AsyncSource(Script(clock))
    auth = Authenticator(
        owned, key_headers=(), token_scope=SCOPE, owns_credential=True, clock=clock
    )
    await auth.aclose()
    await auth.aclose()
    assert owned.closed == 1

    owned_sync = SyncSource(Script(clock))
    auth = Authenticator(
        owned_sync, key_headers=(), token_scope=SCOPE, owns_credential=True, clock=clock
    )
    await auth.aclose()
    await auth.aclose()
    assert owned_sync.closed == 1


@pytest.mark.anyio
async def test_repr_never_shows_secrets() -> None:
    """repr shows the credential type and headers, never the key or the token."""
    key_auth = Authenticator(
        AzureKeyCredential("KEY-SECRET"), key_headers=("api-key", "authorization"), token_scope=None
    )
    assert repr(key_auth) == (
        "<Authenticator AzureKeyCredential key=*** headers=api-key,authorization>"
    )
    str_auth = Authenticator("STR-SECRET", key_headers=("api-key",), token_scope=None)
    assert "STR-SECRET" not in repr(str_auth)
    assert "str" in repr(str_auth)
    clock = Clock()
    script = Script(clock)
    token_authenticator = token_auth(AsyncSource(script), clock)
    await auth_header(token_authenticator)
    text = repr(token_authenticator)
    assert "AsyncSource" in text
    assert script.token(1) not in text
    assert "s3cr3t" not in text
    assert repr(Authenticator(None, key_headers=(), token_scope=None)) == (
        "<Authenticator no credential>"
    )


@pytest.mark.anyio
async def test_logs_never_contain_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG, no log record (message or traceback) holds a key or token."""
    caplog.set_level(logging.DEBUG)
    key = "KEY-s3cr3t-value"
    await Authenticator(key, key_headers=("api-key",), token_scope=None).apply({})
    clock = Clock()
    script = Script(clock)
    auth = token_auth(SyncSource(script), clock)
    await auth_header(auth)  # fetch
    clock.now = START + 3600 - 100
    script.error = RuntimeError(f"leaky error mentioning {script.token(1)}")
    await auth_header(auth)  # failed refresh, warning, old token kept
    clock.now = START + 3600
    with pytest.raises(CredentialError) as info:
        await auth.apply({})  # failed refresh, no valid token
    assert caplog.records, "expected some log records at DEBUG"
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in str(info.value)
    assert key not in repr(auth)


# -- real azure-identity credentials against a loopback token server --------------------


class TokenServer:
    """A loopback App Service managed-identity endpoint (GET /msi/token)."""

    def __init__(self, identity_header: str) -> None:
        self.identity_header = identity_header
        self.requests: list[dict[str, str]] = []
        self.issued: list[str] = []
        self.error: tuple[int, str] | None = None
        # When set, every token request waits for this event before it is answered.
        self.hold: anyio.Event | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _token(self, request: web.Request) -> web.Response:
        seen = dict(request.query)
        seen["x-identity-header"] = request.headers.get("X-IDENTITY-HEADER", "")
        self.requests.append(seen)
        if seen["x-identity-header"] != self.identity_header:
            return web.json_response({"statusCode": 401, "message": "bad header"}, status=401)
        if self.hold is not None:
            await self.hold.wait()
        if self.error is not None:
            status, message = self.error
            return web.json_response({"statusCode": status, "message": message}, status=status)
        token = f"mi-s3cr3t-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response(
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.query.get("resource", ""),
                "token_type": "Bearer",
                "client_id": "00000000-0000-0000-0000-000000000000",
            }
        )

    async def __aenter__(self) -> TokenServer:
        app = web.Application()
        app.router.add_get("/msi/token", self._token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/msi/token"
        return self

    async def __aexit__(self, *args: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


IDENTITY_SECRET = "identity-header-secret"

# Variables that would steer azure-identity to another credential or identity.
_FOREIGN_ENV = (
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)

DAC_EXCLUDES = {
    "exclude_environment_credential": True,
    "exclude_workload_identity_credential": True,
    "exclude_shared_token_cache_credential": True,
    "exclude_visual_studio_code_credential": True,
    "exclude_cli_credential": True,
    "exclude_powershell_credential": True,
    "exclude_developer_cli_credential": True,
}
SYNC_ONLY_DAC_EXCLUDES = {
    "exclude_interactive_browser_credential": True,
    "exclude_broker_credential": True,
}


@pytest.fixture
async def token_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TokenServer]:
    """A running token server, with the App Service managed-identity variables pointing at it."""
    async with TokenServer(IDENTITY_SECRET) as server:
        for name in _FOREIGN_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("IDENTITY_ENDPOINT", server.url)
        monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_SECRET)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        yield server


def check_server_saw_scope(server: TokenServer) -> None:
    """The token server was asked, with the App Service protocol, for our resource."""
    assert server.requests, "the token server was never called"
    for seen in server.requests:
        assert seen["resource"] == RESOURCE
        assert seen["api-version"] == "2019-08-01"
        assert seen["x-identity-header"] == IDENTITY_SECRET


@pytest.fixture
def sync_managed_identity(token_server: TokenServer) -> Iterator[ManagedIdentityCredential]:
    """A real sync ManagedIdentityCredential, built after the environment is set."""
    credential = ManagedIdentityCredential(retry_total=0)
    with credential:
        yield credential


@pytest.mark.anyio
async def test_real_sync_managed_identity(
    token_server: TokenServer, sync_managed_identity: ManagedIdentityCredential
) -> None:
    """azure.identity.ManagedIdentityCredential yields a Bearer token from the loopback server."""
    auth = Authenticator(sync_managed_identity, key_headers=("api-key",), token_scope=SCOPE)
    assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
    assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
    assert len(token_server.issued) == 1
    check_server_saw_scope(token_server)


@pytest.mark.anyio
async def test_timeout_total_bounds_a_real_credential_waiting_for_its_token_server(
    token_server: TokenServer,
) -> None:
    """azure.identity.aio.ManagedIdentityCredential whose token server does not answer: the
    call ends at Timeout.total with TotalTimeoutError (not after the 60 s token bound), and
    nothing is sent to the model endpoint."""
    token_server.hold = anyio.Event()
    try:
        async with (
            FaultServer() as server,
            AsyncManagedIdentityCredential(retry_total=0) as credential,
            ChatCompletionsClient(
                server.endpoint("/models"), credential, model="m", timeout=Timeout(total=0.5)
            ) as client,
        ):
            with anyio.fail_after(10), pytest.raises(TotalTimeoutError, match="token"):
                await client.complete(messages=[UserMessage("hi")])
            assert server.attempts == []
            assert len(token_server.requests) == 1
    finally:
        token_server.hold.set()


@pytest.mark.anyio
async def test_real_async_managed_identity(token_server: TokenServer) -> None:
    """azure.identity.aio.ManagedIdentityCredential yields a Bearer token from the server."""
    credential = AsyncManagedIdentityCredential(retry_total=0)
    auth = Authenticator(
        credential, key_headers=("api-key",), token_scope=SCOPE, owns_credential=True
    )
    try:
        assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
        assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
        assert len(token_server.issued) == 1
        check_server_saw_scope(token_server)
    finally:
        await auth.aclose()


@pytest.mark.anyio
async def test_real_async_credential_built_off_loop(token_server: TokenServer) -> None:
    """An aio credential built in a thread with no loop works once used on the loop."""
    built: list[AsyncManagedIdentityCredential] = []
    thread = threading.Thread(
        target=lambda: built.append(AsyncManagedIdentityCredential(retry_total=0))
    )
    thread.start()
    thread.join()
    async with built[0] as credential:
        auth = Authenticator(credential, key_headers=(), token_scope=SCOPE)
        assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"


@pytest.mark.anyio
async def test_real_sync_default_credential(token_server: TokenServer) -> None:
    """azure.identity.DefaultAzureCredential picks up the managed-identity environment."""
    with DefaultAzureCredential(retry_total=0, **DAC_EXCLUDES, **SYNC_ONLY_DAC_EXCLUDES) as dac:
        auth = Authenticator(dac, key_headers=("api-key",), token_scope=SCOPE)
        assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
    check_server_saw_scope(token_server)


@pytest.mark.anyio
async def test_real_async_default_credential(token_server: TokenServer) -> None:
    """azure.identity.aio.DefaultAzureCredential picks up the managed-identity environment."""
    async with AsyncDefaultAzureCredential(retry_total=0, **DAC_EXCLUDES) as dac:
        auth = Authenticator(dac, key_headers=("api-key",), token_scope=SCOPE)
        assert await auth_header(auth) == f"Bearer {token_server.issued[0]}"
    check_server_saw_scope(token_server)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_real_credential_failure_is_credential_error(
    token_server: TokenServer, mode: str
) -> None:
    """A token server error surfaces as CredentialError carrying the server's message."""
    token_server.error = (400, "no identity is assigned to this app")
    if mode == "sync":
        with ManagedIdentityCredential(retry_total=0) as credential:
            auth = Authenticator(credential, key_headers=(), token_scope=SCOPE)
            with pytest.raises(CredentialError) as info:
                await auth.apply({})
    else:
        async with AsyncManagedIdentityCredential(retry_total=0) as async_credential:
            auth = Authenticator(async_credential, key_headers=(), token_scope=SCOPE)
            with pytest.raises(CredentialError) as info:
                await auth.apply({})
    assert "ManagedIdentityCredential" in str(info.value)
    assert "no identity is assigned to this app" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_real_credential_logs_hide_token(
    token_server: TokenServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG, the issued token appears in no log record."""
    caplog.set_level(logging.DEBUG)
    if mode == "sync":
        with ManagedIdentityCredential(retry_total=0) as credential:
            auth = Authenticator(credential, key_headers=(), token_scope=SCOPE)
            await auth_header(auth)
    else:
        async with AsyncManagedIdentityCredential(retry_total=0) as async_credential:
            auth = Authenticator(async_credential, key_headers=(), token_scope=SCOPE)
            await auth_header(auth)
    assert token_server.issued
    assert caplog.records
    assert token_server.issued[0] not in caplog.text
    assert "s3cr3t" not in caplog.text
