"""Retries: the policy's pure functions, and the client's retry loop against a faulty server.

Attempts are counted where they land (the loopback fault server); the final exception's
``attempts``, the INFO log records and the server-side gap between attempts are checked.
"""

from __future__ import annotations

import logging
import random
import time
from email.utils import formatdate
from typing import Any, cast

import anyio
import pytest
from _fault_server import (
    FaultServer,
    chunk_event,
    completion,
    error,
    refused_url,
    reset,
    sse,
)
from azure.core.credentials import AccessToken, AzureKeyCredential

from inference import (
    ClientAuthenticationError,
    ConnectTimeoutError,
    CredentialError,
    ErrorResponse,
    HttpResponseError,
    IdleTimeoutError,
    InferenceError,
    RateLimitError,
    ReadTimeoutError,
    RequestValidationError,
    ResourceNotFoundError,
    ResponseTooLargeError,
    RetryPolicy,
    ServiceError,
    ServiceRequestError,
    ServiceResponseError,
    StreamInterruptedError,
    TotalTimeoutError,
)
from inference._config import DEFAULT_RETRY, RETRY_STATUSES, requested_delay
from inference.aio import ChatCompletionsClient
from inference.models import UserMessage

FAST = RetryPolicy(max_retries=3, backoff=0.01, max_backoff=0.05, max_retry_after=1.0)
HI = [UserMessage("hi")]
NOW = 1_700_000_000.0


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The INFO records of the ``inference`` logger that announce a retry."""
    return [
        r
        for r in caplog.records
        if r.name == "inference" and r.levelno == logging.INFO and "retrying" in r.getMessage()
    ]


class CountingTokens:
    """An async token credential handing out ``tok-1``, ``tok-2``, ... (one per call)."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A new token valid for an hour."""
        self.calls += 1
        return AccessToken(f"tok-{self.calls}", int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> CountingTokens:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


# -- the policy's pure functions -------------------------------------------------------------


def test_backoff_delay_within_exponential_bounds() -> None:
    """backoff_delay(n) lies in [0, min(max_backoff, backoff * 2**n)] for every retry number."""
    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)
    rng = random.Random(1234)
    for retry in range(12):
        ceiling = min(8.0, 0.5 * 2**retry)
        for _ in range(50):
            delay = policy.backoff_delay(retry, rng)
            assert 0.0 <= delay <= ceiling


def test_backoff_delay_is_capped() -> None:
    """Late retries never wait longer than max_backoff, even for huge retry numbers."""
    policy = RetryPolicy(backoff=1.0, max_backoff=2.5)
    rng = random.Random(7)
    delays = [policy.backoff_delay(retry, rng) for retry in range(5, 2000, 7)]
    assert max(delays) <= 2.5
    assert max(delays) > 2.0  # the cap is reached, not just respected


def test_backoff_delay_has_full_jitter() -> None:
    """The wait is spread over the whole range from 0 to the ceiling (full jitter)."""
    policy = RetryPolicy(backoff=1.0, max_backoff=100.0)
    rng = random.Random(99)
    delays = [policy.backoff_delay(3, rng) for _ in range(500)]
    assert min(delays) < 0.8  # ceiling 8: some waits near zero
    assert max(delays) > 7.2  # and some near the ceiling
    assert 3.0 < sum(delays) / len(delays) < 5.0  # uniform: the mean is about half


def test_backoff_delay_is_reproducible_with_a_seed() -> None:
    """The same seeded generator gives the same sequence of waits."""
    policy = RetryPolicy()
    first = [policy.backoff_delay(n, random.Random(5)) for n in range(6)]
    second = [policy.backoff_delay(n, random.Random(5)) for n in range(6)]
    assert first == second


def test_backoff_delay_zero_backoff_means_no_wait() -> None:
    """backoff=0 retries at once."""
    assert RetryPolicy(backoff=0.0).backoff_delay(4, random.Random(1)) == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"retry-after": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"retry-after": "-5"}, 0.0),
        # The millisecond headers are more precise and win over Retry-After.
        ({"retry-after": "9", "retry-after-ms": "120"}, 0.12),
        ({"retry-after": "9", "x-ms-retry-after-ms": "80"}, 0.08),
        # A broken millisecond header falls back to the next one.
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
    ],
)
def test_requested_delay_header_forms(headers: dict[str, str], expected: float) -> None:
    """Retry-After (seconds and HTTP-date), retry-after-ms and x-ms-retry-after-ms are read."""
    assert requested_delay(headers, NOW) == pytest.approx(expected)


class Answer:
    """An error response as RetryPolicy sees it: a status and headers."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "9", "retry-after-ms": "120"}, 0.12),
    ],
)
def test_delay_is_the_wait_the_server_asked_for(headers: dict[str, str], expected: float) -> None:
    """delay() of an answer that asks for a wait is that wait, whatever the backoff."""
    policy = RetryPolicy(backoff=30.0, max_backoff=30.0, max_retry_after=60.0)
    assert policy.delay(1, Answer(503, headers)) == pytest.approx(expected)
    assert policy.should_retry(1, Answer(503, headers))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": ""},
        {"retry-after": "tomorrow-ish"},
        {"retry-after-ms": "x", "x-ms-retry-after-ms": "y"},
        {"retry-after": "nan"},
        {"retry-after": "Infinity"},
    ],
)
def test_delay_is_the_backoff_when_no_wait_is_asked(headers: dict[str, str]) -> None:
    """No usable header: None asked, and delay() is the policy's own jittered backoff."""
    assert requested_delay(headers, NOW) is None
    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)
    for attempt in range(1, 6):
        delay = policy.delay(attempt, Answer(503, headers), random.Random(attempt))
        assert delay == policy.backoff_delay(attempt - 1, random.Random(attempt))
        assert 0 <= delay <= min(8.0, 0.5 * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "3600"},
        {"retry-after-ms": "3600000"},
        {"x-ms-retry-after-ms": "3600000"},
        {"retry-after": formatdate(time.time() + 3600, usegmt=True)},
        {"retry-after": "9" * 5000},  # too large for a float: longer than any limit
        {"retry-after-ms": "1e400"},
    ],
)
def test_a_wait_longer_than_max_retry_after_is_not_retried(headers: dict[str, str]) -> None:
    """A server asking for longer than max_retry_after gets its error raised, not retried."""
    policy = RetryPolicy(max_retry_after=2.0)
    assert not policy.should_retry(1, Answer(503, headers))
    assert not policy.should_retry(1, Answer(429, headers))
    assert policy.should_retry(1, Answer(503, {"retry-after": "1"}))


def test_should_retry_statuses_and_budget() -> None:
    """Statuses of the policy are retried until the budget is spent; others never."""
    policy = RetryPolicy(max_retries=2)
    assert policy.should_retry(1, Answer(503))
    assert policy.should_retry(2, Answer(429))
    assert not policy.should_retry(3, Answer(503))
    assert not policy.should_retry(1, Answer(400))
    assert not policy.should_retry(1, Answer(401))
    assert RetryPolicy(statuses=frozenset({409})).should_retry(1, Answer(409))
    assert not RetryPolicy(max_retries=0).should_retry(1, Answer(503))


def test_should_retry_errors() -> None:
    """Failures before any response byte are retried; errors that say the server answered (a
    cut body or stream: it may have billed the request) or that the same request would fail
    again are not."""
    policy = RetryPolicy(max_retries=1)
    for transient in (
        ServiceRequestError("refused"),
        ConnectTimeoutError("slow connect"),
        ReadTimeoutError("no head"),
    ):
        assert policy.should_retry(1, transient), transient
        assert not policy.should_retry(2, transient), transient
    broken = ServiceResponseError("arrived broken")
    broken._transient = False
    for final in (
        broken,
        ServiceResponseError("cut"),
        StreamInterruptedError("cut before the first event"),
        ResponseTooLargeError("too large"),
        TotalTimeoutError("out of time"),
        IdleTimeoutError("silent stream"),
        CredentialError("no token"),
        RequestValidationError("bad"),
        InferenceError("other"),
    ):
        assert not policy.should_retry(1, final), final
    assert policy.should_retry(1, ServiceError("HTTP 503", ErrorResponse(503, "", {}, b"")))
    assert not policy.should_retry(1, HttpResponseError("x", ErrorResponse(400, "", {}, b"")))


def test_retry_policy_coerce() -> None:
    """retry= accepts a policy, a number of retries, or None (the client's default)."""
    policy = RetryPolicy(max_retries=5)
    assert RetryPolicy.coerce(policy, DEFAULT_RETRY) is policy
    assert RetryPolicy.coerce(None, policy) is policy
    assert RetryPolicy.coerce(0, DEFAULT_RETRY).max_retries == 0
    assert RetryPolicy.coerce(2, DEFAULT_RETRY).max_retries == 2
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(RequestValidationError):
            RetryPolicy.coerce(cast(Any, bad), DEFAULT_RETRY)


def test_default_retry_statuses() -> None:
    """The retried statuses are exactly 408, 429, 500, 502, 503 and 504."""
    assert frozenset({408, 429, 500, 502, 503, 504}) == RETRY_STATUSES
    assert RetryPolicy().statuses == RETRY_STATUSES


# -- the retry loop ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
async def test_transient_status_is_retried(status: int, caplog: pytest.LogCaptureFixture) -> None:
    """Each retryable status is retried until the server relents; every retry is logged."""
    caplog.set_level(logging.INFO, logger="inference")
    async with (
        FaultServer(error(status), error(status)) as server,
        ChatCompletionsClient(server.endpoint(), "key", model="m", retry=FAST) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "Hello!"
        assert len(server.attempts) == 3
        assert client._transport.pool_stats()[0] == 0
    records = retry_records(caplog)
    assert len(records) == 2
    assert all(f"HTTP {status}" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_exhausted_retries_report_attempts(caplog: pytest.LogCaptureFixture) -> None:
    """When the budget runs out the last error is raised, saying how many attempts were made."""
    caplog.set_level(logging.INFO, logger="inference")
    policy = RetryPolicy(max_retries=2, backoff=0.01, max_backoff=0.02)
    async with (
        FaultServer(default=error(503, message="overloaded", request_id="rid-503")) as server,
        ChatCompletionsClient(server.endpoint(), "key", model="m", retry=policy) as client,
    ):
        with pytest.raises(ServiceError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 3
        assert client._transport.pool_stats()[0] == 0
    exc = info.value
    assert exc.attempts == 3
    assert exc.status_code == 503
    assert exc.request_id == "rid-503"
    assert "after 3 attempts" in str(exc)
    assert "overloaded" in str(exc)
    assert len(retry_records(caplog)) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, HttpResponseError),
        (401, ClientAuthenticationError),
        (403, ClientAuthenticationError),
        (404, ResourceNotFoundError),
        (409, HttpResponseError),
        (413, HttpResponseError),
        (422, HttpResponseError),
    ],
)
async def test_caller_errors_are_not_retried(
    status: int, exc_type: type[HttpResponseError], caplog: pytest.LogCaptureFixture
) -> None:
    """A 4xx that is the caller's fault is raised at once (key credentials: 401 too)."""
    caplog.set_level(logging.INFO, logger="inference")
    async with (
        FaultServer(default=error(status)) as server,
        ChatCompletionsClient(
            server.endpoint(), AzureKeyCredential("key"), model="m", retry=FAST
        ) as client,
    ):
        with pytest.raises(exc_type) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
    assert info.value.status_code == status
    assert info.value.attempts == 1
    assert retry_records(caplog) == []


@pytest.mark.anyio
async def test_401_with_token_credential_is_retried_once_with_a_fresh_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused token is thrown away and the request sent once more with a new token."""
    caplog.set_level(logging.INFO, logger="inference")
    tokens = CountingTokens()
    async with (
        FaultServer(error(401)) as server,
        ChatCompletionsClient(server.endpoint("/models"), tokens, model="m", retry=0) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "Hello!"
    assert tokens.calls == 2
    assert [a.headers["authorization"] for a in server.attempts] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert any("fresh token" in r.getMessage() for r in retry_records(caplog))


@pytest.mark.anyio
async def test_401_twice_with_token_credential_gives_up() -> None:
    """If the fresh token is refused too, the authentication error is raised (no loop)."""
    tokens = CountingTokens()
    async with (
        FaultServer(default=error(401, message="token rejected")) as server,
        ChatCompletionsClient(server.endpoint("/models"), tokens, model="m", retry=FAST) as client,
    ):
        with pytest.raises(ClientAuthenticationError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 2
        assert client._transport.pool_stats()[0] == 0
    assert tokens.calls == 2
    assert info.value.attempts == 2
    assert "token rejected" in str(info.value)


@pytest.mark.anyio
async def test_retry_zero_disables_retries() -> None:
    """retry=0 and RetryPolicy(max_retries=0) make exactly one attempt."""
    for retry in (0, RetryPolicy(max_retries=0)):
        async with (
            FaultServer(default=error(503)) as server,
            ChatCompletionsClient(server.endpoint(), model="m", retry=retry) as client,
        ):
            with pytest.raises(ServiceError) as info:
                await client.complete(messages=HI)
            assert len(server.attempts) == 1
        assert info.value.attempts == 1


@pytest.mark.anyio
async def test_per_call_retry_overrides_the_client() -> None:
    """retry= on a call replaces the client's policy for that call only."""
    async with (
        FaultServer(default=error(500)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=0) as client,
    ):
        with pytest.raises(ServiceError):
            await client.complete(messages=HI, retry=RetryPolicy(max_retries=2, backoff=0.01))
        assert len(server.attempts) == 3
        with pytest.raises(ServiceError):
            await client.complete(messages=HI)
        assert len(server.attempts) == 4
    async with (
        FaultServer(default=error(500)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(ServiceError) as info:
            await client.complete(messages=HI, retry=0)
        assert len(server.attempts) == 1
        assert info.value.attempts == 1


@pytest.mark.anyio
async def test_custom_statuses() -> None:
    """RetryPolicy(statuses=...) chooses which statuses are retried."""
    policy = RetryPolicy(max_retries=2, backoff=0.0, statuses=frozenset({409}))
    async with (
        FaultServer(error(409), default=error(503)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        with pytest.raises(ServiceError) as info:
            await client.complete(messages=HI)
        # 409 was retried; 503 is not in this policy's statuses.
        assert len(server.attempts) == 2
    assert info.value.status_code == 503


@pytest.mark.anyio
async def test_connection_refused_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    """A refused connection is retried, then raised as ServiceRequestError with attempts."""
    caplog.set_level(logging.INFO, logger="inference")
    async with ChatCompletionsClient(refused_url(), "key", model="m", retry=FAST) as client:
        with pytest.raises(ServiceRequestError) as info:
            await client.complete(messages=HI)
        assert client._transport.pool_stats()[0] == 0
    assert info.value.attempts == 4
    assert "after 4 attempts" in str(info.value)
    records = retry_records(caplog)
    assert len(records) == 3
    assert all("cannot connect" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_reset_before_response_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    """A connection reset before any response byte is retried; the server sees each try."""
    caplog.set_level(logging.INFO, logger="inference")
    async with (
        FaultServer(reset(), reset()) as server,
        ChatCompletionsClient(server.endpoint(), "key", model="m", retry=FAST) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "Hello!"
        assert len(server.attempts) == 3
        assert client._transport.pool_stats()[0] == 0
    records = retry_records(caplog)
    assert len(records) == 2
    assert all("failed" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_client_request_id_is_kept_across_retries() -> None:
    """Every attempt of one call carries the same x-ms-client-request-id; calls differ."""
    async with (
        FaultServer(error(503), reset()) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        await client.complete(messages=HI)
        await client.complete(messages=HI)
    ids = [a.headers["x-ms-client-request-id"] for a in server.attempts]
    assert len(ids) == 4
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] != ids[0]


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "0.3"}, {"retry-after-ms": "300"}, {"x-ms-retry-after-ms": "300"}],
)
async def test_retry_after_is_honoured(headers: dict[str, str]) -> None:
    """The server-requested wait is respected (measured between attempts at the server)."""
    policy = RetryPolicy(max_retries=2, backoff=0.0, max_backoff=0.0, max_retry_after=5.0)
    async with (
        FaultServer(error(429, headers=headers)) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        await client.complete(messages=HI)
    assert len(server.attempts) == 2
    assert server.gaps()[0] >= 0.8 * 0.3


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_beyond_max_retry_after_raises_at_once(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A server asking for an hour gets its error raised at once (no sleep, no retry), with
    the wait it asked for on the exception and the reason in the message."""
    caplog.set_level(logging.INFO, logger="inference")
    policy = RetryPolicy(max_retries=3, backoff=0.0, max_retry_after=0.1)
    async with (
        FaultServer(error(status, headers={"Retry-After": "3600"})) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        with pytest.raises(HttpResponseError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
    assert info.value.status_code == status
    assert info.value.retry_after == 3600.0
    assert info.value.attempts == 1
    assert "max_retry_after" in str(info.value)
    assert retry_records(caplog) == []


@pytest.mark.anyio
async def test_429_storm_eventually_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    """A run of 429s with Retry-After is ridden out when the budget allows it."""
    caplog.set_level(logging.INFO, logger="inference")
    storm = [error(429, headers={"retry-after-ms": "20"}) for _ in range(6)]
    policy = RetryPolicy(max_retries=6, backoff=0.01, max_backoff=0.05, max_retry_after=1.0)
    async with (
        FaultServer(*storm) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        result = await client.complete(messages=HI)
        assert result.choices[0].message.content == "Hello!"
        assert len(server.attempts) == 7
        assert client._transport.pool_stats()[0] == 0
    assert all(gap >= 0.8 * 0.02 for gap in server.gaps())
    records = retry_records(caplog)
    assert len(records) == 6
    assert all("HTTP 429" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_endless_429_raises_rate_limit_error_with_retry_after() -> None:
    """A storm that never ends gives RateLimitError with attempts and the requested wait."""
    async with (
        FaultServer(default=error(429, headers={"Retry-After": "0.02"})) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(RateLimitError) as info:
            await client.complete(messages=HI)
        assert len(server.attempts) == 4
    assert info.value.attempts == 4
    assert info.value.retry_after == pytest.approx(0.02)


# -- streams ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stream_is_never_retried_after_an_event_reached_the_caller() -> None:
    """Two events then a reset: StreamInterruptedError with the partial answer, one attempt."""
    async with (
        FaultServer(
            sse(chunk_event("Hel"), chunk_event("lo"), then="reset"), default=sse(chunk_event("x"))
        ) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        seen: list[str] = []
        with pytest.raises(StreamInterruptedError) as info:
            async with stream:
                async for update in stream:
                    seen.append(update.choices[0].delta.content or "")
        assert seen == ["Hel", "lo"]
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
    partial = info.value.partial
    assert partial is not None
    assert partial.choices[0].message.content == "Hello"


@pytest.mark.anyio
async def test_stream_cut_before_first_event_is_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream whose head arrived but which was cut before its first event is raised, not
    sent again: the server answered and may have billed the request. Nothing is logged as a
    retry, and the connection is released."""
    caplog.set_level(logging.INFO, logger="inference")
    async with (
        FaultServer(
            sse(then="reset"), default=sse(chunk_event("fine"), chunk_event("!"))
        ) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        with pytest.raises(StreamInterruptedError) as info:
            await client.complete(messages=HI, stream=True)
        assert len(server.attempts) == 1
        assert info.value.attempts == 1
        assert client._transport.pool_stats()[0] == 0
    assert retry_records(caplog) == []


@pytest.mark.anyio
async def test_stream_status_errors_are_retried() -> None:
    """A 503 or a reset before a stream starts is retried like any other request."""
    async with (
        FaultServer(error(503), reset(), default=sse(chunk_event("ok"))) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=FAST) as client,
    ):
        stream = await client.complete(messages=HI, stream=True)
        async with stream:
            final = await stream.until_done()
        assert final.choices[0].message.content == "ok"
        assert len(server.attempts) == 3


@pytest.mark.anyio
async def test_backoff_sleep_is_cancellable() -> None:
    """Cancelling a call while it waits to retry ends it at once and leaves the pool empty."""
    policy = RetryPolicy(max_retries=3, backoff=30.0, max_backoff=30.0, max_retry_after=30.0)
    async with (
        FaultServer(default=error(503, headers={"Retry-After": "30"})) as server,
        ChatCompletionsClient(server.endpoint(), model="m", retry=policy) as client,
    ):
        with anyio.move_on_after(0.3) as scope:
            await client.complete(messages=HI)
        assert scope.cancelled_caught
        assert len(server.attempts) == 1
        assert client._transport.pool_stats()[0] == 0
        server.plan(completion("again"))
        result = await client.complete(messages=HI, retry=0)
        assert result.choices[0].message.content == "again"
