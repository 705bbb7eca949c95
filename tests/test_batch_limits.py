"""The batch pace: the rate limiter's arithmetic (on a fake clock), the client's response hook
that feeds it, the emulator's rate limit, and runs that learn the limit from the server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from inference.aio import ChatCompletionsClient, EmbeddingsClient
from inference.batch import RateLimiter, run_batch
from inference.batch._limits import parse_duration
from inference.exceptions import RateLimitError
from inference.models import UserMessage
from inference.testing import Emulator, EmulatorOptions


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2", 2.0), ("0.5", 0.5), ("1.5s", 1.5), ("250ms", 0.25), ("6m0s", 360.0), ("1h2m3s", 3723)],
)
def test_durations_in_every_spelling_servers_use(text: str, seconds: float) -> None:
    """Plain seconds and Go-style durations (OpenAI's reset headers) are read."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "-1", "1x", "nan", "5s later"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    """Anything else is not guessed at."""
    assert parse_duration(text) is None


def test_requests_are_spaced_at_the_user_rate() -> None:
    """At 120 requests per minute the bucket holds 2; then one every half second."""
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=120, clock=clock)
    assert limiter.wait(0) == 0
    limiter.take(0)
    limiter.take(0)
    assert limiter.wait(0) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.wait(0) == 0


def test_tokens_are_charged_by_estimate_and_settled_by_usage() -> None:
    """A request takes its estimated tokens; the real usage gives back (or takes) the rest."""
    clock = Clock()
    limiter = RateLimiter(tokens_per_minute=6000, clock=clock)  # 100 a second, holds 100
    ticket = limiter.take(100)
    assert limiter.wait(50) == pytest.approx(0.5)
    limiter.settle(ticket, 40)  # used 40 of the 100 estimated
    assert limiter.wait(60) == 0
    assert limiter.wait(61) > 0
    # A request larger than the bucket waits for a full bucket only, then runs into debt.
    assert limiter.wait(10_000) == pytest.approx(0.4)


def test_no_limit_means_no_wait() -> None:
    """Without limits of the user's or the server's, nothing waits."""
    limiter = RateLimiter(clock=Clock())
    for _ in range(1000):
        assert limiter.wait(10_000) == 0
        limiter.take(10_000)


def test_the_server_limit_is_learnt_and_caps_the_user_limit() -> None:
    """x-ratelimit-limit-* becomes the pace when the user set none, and caps a higher one."""
    limiter = RateLimiter(tokens_per_minute=1000, clock=Clock())
    limiter.observe(
        200, {"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "5000"}, None
    )
    assert limiter.requests_per_minute == 600
    assert limiter.tokens_per_minute == 1000


def test_remaining_counts_what_was_sent_after_the_reporting_request() -> None:
    """remaining-requests 3, reported by the request sent 2 before the newest: 1 is left."""
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=6000, clock=clock)  # holds 100
    first = limiter.take(0)
    limiter.take(0)
    limiter.take(0)
    limiter.observe(200, {"x-ratelimit-remaining-requests": "3"}, first)
    assert limiter.wait(0) == 0
    limiter.take(0)
    assert limiter.wait(0) > 0


def test_nothing_left_pauses_until_the_reset() -> None:
    """remaining 0 with a reset of 1.5 s: nothing is sent for 1.5 s (no rate known)."""
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    ticket = limiter.take(0)
    limiter.observe(
        200, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.5s"}, ticket
    )
    assert limiter.wait(0) == pytest.approx(1.5)
    clock.now += 1.5
    assert limiter.wait(0) == 0


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ratelimit-reset-requests": "2s"}, 2.0),
        ({}, 1.0),
    ],
)
def test_a_429_pauses_every_request(headers: Mapping[str, str], pause: float) -> None:
    """HTTP 429 stops all sending for Retry-After (or the reset, or one second) and counts."""
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(429, headers, limiter.take(0))
    assert limiter.throttled == 1
    assert limiter.wait(0) == pytest.approx(pause)


@pytest.mark.anyio
async def test_the_response_hook_sees_every_attempt(emulator: Emulator) -> None:
    """response_hook gets each response head's status and headers, retried attempts included."""
    seen: list[tuple[int, str | None]] = []

    def hook(status: int, headers: Mapping[str, str]) -> None:
        seen.append((status, headers.get("x-request-id")))

    async with ChatCompletionsClient(emulator.endpoint(), response_hook=hook, retry=1) as client:
        await client.complete(messages=[UserMessage("Hi")])
        emulator.options.status = 503
        emulator.options.retry_after = 0
        with pytest.raises(Exception, match="503"):
            await client.complete(messages=[UserMessage("Hi")])
    assert [status for status, _ in seen] == [200, 503, 503]
    assert all(request_id for _, request_id in seen)


@pytest.mark.anyio
async def test_what_the_response_hook_raises_ends_the_call(emulator: Emulator) -> None:
    """An exception from the hook reaches the caller, and the connection is not leaked."""

    def hook(status: int, headers: Mapping[str, str]) -> None:
        raise LookupError("from the hook")

    async with ChatCompletionsClient(emulator.endpoint(), response_hook=hook) as client:
        with pytest.raises(LookupError, match="from the hook"):
            await client.complete(messages=[UserMessage("Hi")])


async def heads(
    options: EmulatorOptions, calls: int, used: list[int] | None = None
) -> tuple[list[Mapping[str, str]], RateLimitError | None]:
    """Make ``calls`` requests (no retries) to an emulator with ``options``: the response heads'
    headers, and the RateLimitError of the first refused call (the calls stop there). The
    answers' total tokens are appended to ``used``."""
    seen: list[Mapping[str, str]] = []
    async with (
        Emulator(options) as emulator,
        ChatCompletionsClient(
            emulator.endpoint(), retry=0, response_hook=lambda s, h: seen.append(h)
        ) as client,
    ):
        for _ in range(calls):
            try:
                result = await client.complete(messages=[UserMessage("Hi")], max_tokens=5)
            except RateLimitError as exc:
                return seen, exc
            if used is not None and result.usage is not None:
                used.append(result.usage.total_tokens)
    return seen, None


@pytest.mark.anyio
async def test_the_emulator_rate_limit_answers_429_with_headers() -> None:
    """Past its request bucket the emulator answers 429 with Retry-After; every answer has the
    x-ratelimit headers."""
    options = EmulatorOptions(rate_limit_requests=60, rate_limit_window=2.0)  # holds 2
    seen, caught = await heads(options, 3)
    assert seen[0]["x-ratelimit-limit-requests"] == "60"
    assert seen[0]["x-ratelimit-remaining-requests"] == "1"
    assert seen[1]["x-ratelimit-remaining-requests"] == "0"
    assert parse_duration(seen[1]["x-ratelimit-reset-requests"]) == pytest.approx(2.0, abs=0.1)
    assert caught is not None and caught.status_code == 429
    assert caught.response is not None
    assert caught.response.headers["retry-after"] == "1"
    assert 900 <= int(caught.response.headers["retry-after-ms"]) <= 1000


@pytest.mark.anyio
async def test_the_emulator_token_limit_counts_prompt_and_completion() -> None:
    """The token bucket is charged with the answer's total tokens."""
    options = EmulatorOptions(rate_limit_tokens=600)  # holds 100 (10 s worth)
    used: list[int] = []
    seen, _ = await heads(options, 1, used)
    assert used and used[0] > 5
    assert int(seen[0]["x-ratelimit-remaining-tokens"]) == 100 - used[0]


def write_requests(path: Path, count: int) -> None:
    """``count`` chat requests r0, r1, ... as a JSONL file."""
    with path.open("w") as file:
        for i in range(count):
            body = {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 4}
            request = {"custom_id": f"r{i}", "method": "POST", "url": "/chat/completions"}
            file.write(json.dumps({**request, "body": body}) + "\n")


def statuses(emulator: Emulator) -> int:
    """How many requests reached the emulator."""
    return len(emulator.requests)


@pytest.mark.anyio
async def test_a_run_learns_the_limit_from_429s_and_headers(tmp_path: Path) -> None:
    """With no limit of its own, a burst meets 429s; the run pauses, learns the server's limit
    from its headers, sends the refused requests again, and every request ends answered."""
    options = EmulatorOptions(rate_limit_requests=1200, rate_limit_window=0.25)  # holds 5
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 30)
    async with Emulator(options) as emulator:
        summary = await run_batch(source, target, endpoint=emulator.endpoint(), concurrency=10)
        sent = statuses(emulator)
    assert summary.throttled > 0
    assert summary.requests_per_minute == 1200
    assert (summary.succeeded, summary.failed) == (30, 0)
    assert sent == 30 + summary.throttled
    results = [json.loads(x) for x in target.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in results) == sorted(f"r{i}" for i in range(30))
    assert {r["response"]["status_code"] for r in results} == {200}


@pytest.mark.anyio
async def test_a_run_at_the_server_limit_is_never_throttled(tmp_path: Path) -> None:
    """Told the server's limit, the run paces itself under it: no 429 at all."""
    options = EmulatorOptions(rate_limit_requests=1200, rate_limit_window=1.0)  # holds 20
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 40)
    async with Emulator(options) as emulator:
        summary = await run_batch(
            source, target, endpoint=emulator.endpoint(), concurrency=20, requests_per_minute=1200
        )
        sent = statuses(emulator)
    assert summary.throttled == 0
    assert sent == 40
    assert summary.succeeded == 40


@pytest.mark.anyio
async def test_429s_beyond_the_retry_policy_are_recorded(tmp_path: Path) -> None:
    """A request still refused after the policy's retries is written with its 429 answer."""
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_requests(source, 1)
    async with Emulator(EmulatorOptions(status=429, retry_after=0.01)) as emulator:
        summary = await run_batch(
            source, target, endpoint=emulator.endpoint(), client_options={"retry": 2}
        )
        sent = statuses(emulator)
    assert sent == 3
    assert (summary.failed, summary.throttled) == (1, 3)
    result = json.loads(target.read_text())
    assert result["response"]["status_code"] == 429
    assert result["response"]["body"]["error"]["code"]


@pytest.mark.anyio
async def test_the_embeddings_client_has_the_response_hook_too(emulator: Emulator) -> None:
    """EmbeddingsClient(response_hook=...) reports its response heads like the chat client."""
    seen: list[int] = []
    async with EmbeddingsClient(
        emulator.endpoint(), response_hook=lambda status, headers: seen.append(status)
    ) as client:
        await client.embed(input=["a"])
    assert seen == [200]
