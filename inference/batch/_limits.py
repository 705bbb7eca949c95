"""The pace of a batch: requests and tokens per minute, set by the user and learnt from the server.

Two token buckets (requests, tokens) refill continuously at the per-minute rate and hold one
second's worth, so requests leave evenly spaced rather than in bursts. A request takes one
request and its estimated tokens before it is sent; when its answer reports the tokens really
used, the difference is given back or taken (:meth:`RateLimiter.settle`).

What the server says adjusts the pace (:meth:`RateLimiter.observe`, fed every response head):

- ``x-ratelimit-limit-requests`` / ``-tokens``: the server's limits. They become the rates when
  the user set none, and cap the user's when lower.
- ``x-ratelimit-remaining-requests`` / ``-tokens``: what the server has left. A bucket never
  holds more than that, less what was sent after the request that reported it.
- ``x-ratelimit-reset-requests`` / ``-tokens`` (seconds, or durations such as ``1m30s``, ``250ms``):
  when nothing is left, no request is sent until then.
- HTTP 429: no request is sent until its ``Retry-After`` (or ``retry-after-ms``,
  ``x-ratelimit-reset-*``, else one second) has passed. The client retries the refused request
  itself, by its retry policy.

The clock is injected so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping

import anyio
import attrs

from .._config import requested_delay

__all__ = ["RateLimiter", "Ticket", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DEFAULT_PAUSE = 1.0
# Reads Retry-After / retry-after-ms; a server's wait is honoured up to an hour here.
_LONGEST_SERVER_WAIT = 3600.0


def parse_duration(text: str | None) -> float | None:
    """Seconds from ``"2"``, ``"1.5s"``, ``"250ms"`` or ``"6m0s"``; None when unreadable."""
    if not text:
        return None
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) and value >= 0 else None
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(amount) * _UNIT[unit] for amount, unit in parts)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@attrs.define
class _Bucket:
    """One limit. ``per_minute`` None: unlimited (until the server names a limit)."""

    user_limit: float | None
    per_minute: float | None = None
    level: float = 0.0
    stamp: float = 0.0

    def __attrs_post_init__(self) -> None:
        self.per_minute = self.user_limit
        self.level = self.capacity

    @property
    def capacity(self) -> float:
        return 1.0 if self.per_minute is None else max(1.0, self.per_minute / 60.0)

    def refill(self, now: float) -> None:
        if self.per_minute is not None:
            rate = self.per_minute / 60.0
            self.level = min(self.capacity, self.level + (now - self.stamp) * rate)
        self.stamp = now

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` (at most the capacity) can be taken; 0: now."""
        if self.per_minute is None:
            return 0.0
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= 0 else missing / (self.per_minute / 60.0)

    def learn_limit(self, limit: float) -> None:
        if limit <= 0:
            return
        self.per_minute = limit if self.user_limit is None else min(self.user_limit, limit)
        self.level = min(self.level, self.capacity)


@attrs.frozen
class Ticket:
    """A permission to send: its place in the sending order and the tokens it took."""

    sequence: int
    tokens: int


class RateLimiter:
    """Paces requests to at most ``requests_per_minute`` and ``tokens_per_minute`` (None: no
    limit of the user's; the server's limits still apply once it names them)."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._requests = _Bucket(requests_per_minute)
        self._tokens = _Bucket(tokens_per_minute)
        now = clock()
        self._requests.stamp = self._tokens.stamp = now
        self._paused_until = now
        self._sent = 0
        self._lock: anyio.Lock | None = None
        #: How many HTTP 429 answers were seen.
        self.throttled = 0

    @property
    def requests_per_minute(self) -> float | None:
        """The request rate in force (the user's, or the server's when lower or alone)."""
        return self._requests.per_minute

    @property
    def tokens_per_minute(self) -> float | None:
        """The token rate in force."""
        return self._tokens.per_minute

    def wait(self, tokens: int) -> float:
        """Seconds to wait before a request of ``tokens`` may go; 0 when it may go now."""
        now = self._clock()
        self._requests.refill(now)
        self._tokens.refill(now)
        return max(
            self._paused_until - now, self._requests.wait(1.0), self._tokens.wait(float(tokens))
        )

    def take(self, tokens: int) -> Ticket:
        """Take one request and ``tokens`` tokens (call when :meth:`wait` says 0)."""
        self._requests.level -= 1.0
        self._tokens.level -= tokens
        self._sent += 1
        return Ticket(self._sent, tokens)

    async def acquire(self, tokens: int) -> Ticket:
        """Wait for the pace to allow a request of ``tokens`` tokens, then take them.

        Waiters are served in order of arrival.
        """
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            # Not an event: the wait is computed from the clock (refills, pauses), then checked.
            while (delay := self.wait(tokens)) > 0:  # noqa: ASYNC110
                await anyio.sleep(delay)
            return self.take(tokens)

    def settle(self, ticket: Ticket, used: int | None) -> None:
        """Correct a request's token charge with what it really ``used`` (None: unknown)."""
        if used is not None:
            self._tokens.level += ticket.tokens - used

    def observe(self, status: int, headers: Mapping[str, str], ticket: Ticket | None) -> None:
        """Learn from one response head (``ticket``: the request it answers, when known)."""
        now = self._clock()
        self._requests.refill(now)
        self._tokens.refill(now)
        later = self._sent - ticket.sequence if ticket is not None else 0
        for name, bucket in (("requests", self._requests), ("tokens", self._tokens)):
            limit = _number(headers.get(f"x-ratelimit-limit-{name}"))
            if limit is not None:
                bucket.learn_limit(limit)
            remaining = _number(headers.get(f"x-ratelimit-remaining-{name}"))
            if remaining is None:
                continue
            bucket.level = min(bucket.level, remaining - later)
            if remaining < 1:
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{name}"))
                self._pause(now, reset if reset is not None else _DEFAULT_PAUSE)
        if status == 429:
            self.throttled += 1
            self._requests.level = min(self._requests.level, 0.0)
            self._pause(now, self._retry_after(headers, now))

    @staticmethod
    def _retry_after(headers: Mapping[str, str], now: float) -> float:
        wait = requested_delay(headers, time.time())
        if wait is not None:
            wait = min(wait, _LONGEST_SERVER_WAIT)
        else:
            resets = [
                parse_duration(headers.get(f"x-ratelimit-reset-{name}"))
                for name in ("requests", "tokens")
            ]
            wait = max((r for r in resets if r is not None), default=_DEFAULT_PAUSE)
        return wait

    def _pause(self, now: float, seconds: float) -> None:
        self._paused_until = max(self._paused_until, now + seconds)
