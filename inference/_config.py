"""Timeouts and retries: the defaults live here, in one place.

Defaults, chosen for long generations and long streams:

===============  =========  ===================================================================
setting          default    meaning
===============  =========  ===================================================================
connect          10 s       TCP + TLS connection set-up
read             600 s      until the response head arrives (a non-streamed answer is generated
                            before its head is sent, so this is long)
idle             120 s      silence between two events of a stream (keep-alive comments do not
                            count as events), or while a non-streamed body arrives (a body
                            that keeps arriving is read to its end, however long it takes)
total            None       no limit on a whole call: a healthy long stream is never cut
max_retries      3          retries after the first attempt (4 attempts in all)
backoff          0.5 s      first backoff; doubles each retry; full jitter
max_backoff      8 s        cap of one computed backoff
max_retry_after  60 s       cap of a server-requested wait (Retry-After, retry-after-ms)
===============  =========  ===================================================================
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Final

from attrs import field, frozen

from .exceptions import RequestValidationError

__all__ = ["DEFAULT_RETRY", "DEFAULT_TIMEOUT", "RETRY_STATUSES", "RetryPolicy", "Timeout"]

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _non_negative(_inst: object, attr: object, value: float | None) -> None:
    if value is not None and (not _is_number(value) or value <= 0):
        name = getattr(attr, "name", "value")
        raise RequestValidationError(
            f"Timeout({name}={value!r}): use a positive number of seconds, or None for no limit"
        )


def _at_least_zero(_inst: object, attr: object, value: object) -> None:
    name = getattr(attr, "name", "value")
    if not _is_number(value) or value < 0:  # type: ignore[operator]
        raise RequestValidationError(f"RetryPolicy({name}={value!r}): use a number >= 0")
    if name == "max_retries" and not isinstance(value, int):
        raise RequestValidationError(f"RetryPolicy(max_retries={value!r}): use a whole number")


@frozen
class Timeout:
    """Deadlines for one call, in seconds (None: no limit).

    ``connect``: connection set-up. ``read``: until the response head arrives.
    ``idle``: longest silence between two events of a stream (or while a non-streamed body
    arrives). ``total``: the whole call,
    stream included (off by default, so long streams are never cut while they flow).
    Pass it as ``timeout=`` to a client or to one call; a plain number sets connect, read and
    idle at once.
    """

    connect: float | None = field(default=10.0, validator=_non_negative)
    read: float | None = field(default=600.0, validator=_non_negative)
    idle: float | None = field(default=120.0, validator=_non_negative)
    total: float | None = field(default=None, validator=_non_negative)

    @classmethod
    def coerce(cls, value: Timeout | float | None, default: Timeout) -> Timeout:
        """A :class:`Timeout` from what a caller passed: an instance, a number, or None."""
        if value is None:
            return default
        if isinstance(value, Timeout):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(connect=value, read=value, idle=value, total=default.total)
        raise RequestValidationError(
            f"timeout={value!r}: pass a number of seconds or inference.Timeout(...)"
        )


def _statuses(value: Iterable[int]) -> frozenset[int]:
    """``statuses=`` as a frozenset (any iterable of status codes is accepted)."""
    return frozenset(value)


@frozen
class RetryPolicy:
    """When and how long to wait before retrying a failed attempt.

    Retried: HTTP 408, 429, 500, 502, 503, 504, and connection errors raised before any
    response byte arrived. A stream is never retried once an event reached the caller.
    The wait is exponential backoff with full jitter (``uniform(0, min(max_backoff,
    backoff * 2**retry))``), unless the server says how long to wait (``Retry-After`` in
    seconds or as an HTTP date, ``retry-after-ms``, ``x-ms-retry-after-ms``), which is honoured
    up to ``max_retry_after``. ``RetryPolicy(max_retries=0)`` (or ``retry=0``) disables retries.
    """

    max_retries: int = field(default=3, validator=_at_least_zero)
    backoff: float = field(default=0.5, validator=_at_least_zero)
    max_backoff: float = field(default=8.0, validator=_at_least_zero)
    max_retry_after: float = field(default=60.0, validator=_at_least_zero)
    statuses: frozenset[int] = field(default=RETRY_STATUSES, converter=_statuses)

    @classmethod
    def coerce(cls, value: RetryPolicy | int | None, default: RetryPolicy) -> RetryPolicy:
        """A policy from what a caller passed: an instance, a number of retries, or None."""
        if value is None:
            return default
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(max_retries=value)
        raise RequestValidationError(
            f"retry={value!r}: pass a number of retries (0 disables) or inference.RetryPolicy(...)"
        )

    def backoff_delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The jittered wait before retry number ``retry`` (0 for the first retry)."""
        # The exponent is bounded so that a very long retry budget cannot overflow a float.
        ceiling = min(self.max_backoff, self.backoff * (2 ** min(max(retry, 0), 64)))
        return (rng or random).uniform(0, ceiling)

    def server_delay(self, headers: Mapping[str, str], now: float) -> float | None:
        """The wait the server asked for, capped at ``max_retry_after``; None if it asked none.

        ``now`` is the current epoch time, used for an HTTP-date ``Retry-After``.
        """
        wait = requested_delay(headers, now)
        if wait is None:
            return None
        return min(wait, self.max_retry_after)


def requested_delay(headers: Mapping[str, str], now: float) -> float | None:
    """The wait (seconds, >= 0) a response asks for before a retry, uncapped; None when it asks
    for none or says something that is not a finite number of seconds or an HTTP date."""
    wait: float | None = None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = headers.get(name)
        if raw:
            try:
                wait = float(raw) / 1000.0
                break
            except ValueError:
                continue
    if wait is None:
        raw = headers.get("retry-after")
        if raw:
            try:
                wait = float(raw)
            except ValueError:
                try:
                    wait = parsedate_to_datetime(raw).timestamp() - now
                except (TypeError, ValueError, IndexError, OverflowError):
                    wait = None
    if wait is None or not math.isfinite(wait):
        return None
    return max(wait, 0.0)


DEFAULT_TIMEOUT: Final = Timeout()
DEFAULT_RETRY: Final = RetryPolicy()
