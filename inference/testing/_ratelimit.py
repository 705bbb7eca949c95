"""The emulator's rate limit: requests and tokens per minute, as token buckets.

Each limit is a bucket that holds ``window`` seconds' worth of the per-minute limit and refills
continuously at ``limit / 60`` per second (Azure OpenAI evaluates its limits over 1 or 10 second
intervals; OpenAI refills its buckets continuously). A request is admitted when the request
bucket holds one request and the token bucket holds the request's tokens (prompt plus
completion, capped at the bucket's size); it then takes them. Every answer carries the
``x-ratelimit-*`` headers OpenAI and Azure OpenAI send; a refused request gets HTTP 429 with
``Retry-After`` (whole seconds, rounded up) and ``retry-after-ms``.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["RateLimiter", "Verdict"]


@attrs.define
class _Bucket:
    limit: int
    window: float
    level: float
    stamp: float

    @property
    def capacity(self) -> float:
        return max(1.0, self.limit * self.window / 60.0)

    @property
    def rate(self) -> float:
        return self.limit / 60.0

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (capped at its capacity)."""
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate)

    def headers(self, name: str) -> dict[str, str]:
        full_in = max(0.0, (self.capacity - self.level) / self.rate)
        return {
            f"x-ratelimit-limit-{name}": str(self.limit),
            f"x-ratelimit-remaining-{name}": str(max(0, math.floor(self.level))),
            f"x-ratelimit-reset-{name}": _duration(full_in),
        }


def _duration(seconds: float) -> str:
    """A duration as OpenAI writes it: ``250ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


@attrs.frozen
class Verdict:
    """Whether a request is admitted, the headers to send, and the wait when it is not."""

    admitted: bool
    headers: dict[str, str]
    retry_after: float = 0.0


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets shared by every request."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, name: str, limit: int, window: float, now: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.limit != limit or bucket.window != window:
            # A new or changed limit starts with a full bucket.
            bucket = _Bucket(limit, window, 0.0, now)
            bucket.level = bucket.capacity
            self._buckets[name] = bucket
        bucket.refill(now)
        return bucket

    def admit(
        self,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        window: float,
        tokens: int,
        now: float,
    ) -> Verdict:
        """Admit (and charge) one request of ``tokens`` tokens at ``now``, or refuse it."""
        wanted: list[tuple[_Bucket, str, float]] = []
        if requests_per_minute is not None:
            wanted.append(
                (self._bucket("requests", requests_per_minute, window, now), "requests", 1.0)
            )
        if tokens_per_minute is not None:
            wanted.append(
                (self._bucket("tokens", tokens_per_minute, window, now), "tokens", float(tokens))
            )
        wait = max((bucket.wait_for(amount) for bucket, _, amount in wanted), default=0.0)
        if wait <= 0:
            for bucket, _, amount in wanted:
                bucket.level -= amount
        headers: dict[str, str] = {}
        for bucket, name, _ in wanted:
            headers.update(bucket.headers(name))
        if wait > 0:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            return Verdict(False, headers, wait)
        return Verdict(True, headers)
