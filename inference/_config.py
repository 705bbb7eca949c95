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
max_retry_after  60 s       longest server-requested wait (Retry-After, retry-after-ms) that
                            is waited for; a 429/503 asking for longer is raised at once
===============  =========  ===================================================================

Limits of one client (``ChatCompletionsClient(..., max_connections=, max_response_bytes=,
max_stream_bytes=)``; the options are declared in :mod:`inference._options`):

==================  =======  ======================================================================
max_connections     100      connections kept open at most; more concurrent requests wait for a
                             free one (that wait counts against ``Timeout.total`` only)
max_response_bytes  8 MiB    largest non-streamed body read (counted after decompression; 256 MiB
                             for an embeddings client); an error body is kept to its first 64 KiB
max_stream_bytes    64 MiB   most bytes one stream's body may bring (counted after
                             decompression; None: no limit); a chat client's option
==================  =======  ======================================================================
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Final

from attrs import field, frozen

from .exceptions import (
    ReadTimeoutError,
    RequestValidationError,
    ServiceRequestError,
    TotalTimeoutError,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_STREAM_BYTES",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "EMBEDDINGS_MAX_RESPONSE_BYTES",
    "ERROR_BODY_LIMIT",
    "RETRY_STATUSES",
    "Deadline",
    "RetryPolicy",
    "Timeout",
    "is_transient",
    "requested_delay",
]

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_MAX_CONNECTIONS: Final = 100
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 2**20
#: The most bytes one stream's body may bring: what its text can grow the client by.
DEFAULT_MAX_STREAM_BYTES: Final = 64 * 2**20
#: The body limit of an embeddings client (2048 inputs of 3072 floats as JSON: ~130 MB).
EMBEDDINGS_MAX_RESPONSE_BYTES: Final = 256 * 2**20
#: How much of an error response's body is read and kept on the exception.
ERROR_BODY_LIMIT: Final = 64 * 1024


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

    ``connect``: connection set-up. ``read``: from sending the request until the response
    head arrives, and for a non-streamed call until its whole body has arrived too (the answer
    is generated before its head is sent: a body still arriving after ``read`` is trickling,
    and is cut); it also bounds each wait for the server to take more of a large request
    body (one that stops reading it raises ``ReadTimeoutError``). ``idle``: longest silence
    between two events of a stream (or while a non-streamed body arrives). ``total``: the
    whole call, stream included (off by default, so long streams are never cut while they flow).
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
    response byte arrived. Once the server has begun to answer, a request is not sent again
    (it may have been billed): a body or a stream cut off is raised to the caller.
    The wait is exponential backoff with full jitter (``uniform(0, min(max_backoff,
    backoff * 2**retry))``), unless the server says how long to wait (``Retry-After`` in
    seconds or as an HTTP date, ``retry-after-ms``, ``x-ms-retry-after-ms``), which is honoured
    up to ``max_retry_after``: a server asking for a longer wait gets its error raised at once,
    the wait it asked for on the exception (``exc.retry_after``). A POST whose response began
    to arrive (any byte of its head) is not sent again, except for a retried status.
    ``RetryPolicy(max_retries=0)`` (or ``retry=0``) disables retries. :meth:`should_retry`
    and :meth:`delay` are the decisions the client's attempt loop asks for.
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

    def should_retry(self, attempt: int, outcome: object) -> bool:
        """Whether to try again after attempt number ``attempt`` (1 for the first) ended in
        ``outcome``: an error status response (anything with ``status`` and ``headers``) or an
        exception of the project's tree.

        An error status is retried when it is one of :attr:`statuses`, unless the server asks
        for a longer wait than :attr:`max_retry_after` (then it is raised at once, with the
        wait on the exception as ``retry_after``). An exception is retried when the same
        request may well succeed: a connection that failed or timed out before any response
        byte arrived (never once the server began to answer: a body or a stream cut off is
        raised). Never once the budget of :attr:`max_retries` retries is spent.
        """
        if attempt > self.max_retries:
            return False
        status = _status(outcome)
        if status is None:
            return is_transient(outcome)
        if status not in self.statuses:
            return False
        wait = requested_delay(_headers(outcome), time.time())
        return wait is None or wait <= self.max_retry_after

    def delay(self, attempt: int, outcome: object, rng: random.Random | None = None) -> float:
        """How long to wait before the attempt after attempt number ``attempt``: the wait the
        server asked for (``Retry-After`` in seconds or as an HTTP date, ``retry-after-ms``,
        ``x-ms-retry-after-ms``), else the jittered backoff (:meth:`backoff_delay`)."""
        if _status(outcome) is not None:
            wait = requested_delay(_headers(outcome), time.time())
            if wait is not None:
                return wait
        return self.backoff_delay(attempt - 1, rng)


def _status(outcome: object) -> int | None:
    """The HTTP status of a response, or of an HTTP error exception; None for other errors."""
    status = getattr(outcome, "status_code", None) or getattr(outcome, "status", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _headers(outcome: object) -> Mapping[str, str]:
    headers = getattr(outcome, "headers", None)
    if headers is None:
        headers = getattr(getattr(outcome, "response", None), "headers", None)
    return headers if headers is not None else {}


# Only failures before the server answered: once any byte of a response has arrived the
# server has taken the request (and may have billed it), so a body cut off
# (ServiceResponseError) or a stream cut before its first event (StreamInterruptedError) is
# raised, not sent again. Retryable statuses are decided on the status, not here.
_TRANSIENT = (ServiceRequestError, ReadTimeoutError)


def is_transient(error: object) -> bool:
    """True for an exception that another attempt of the same request may well not meet.

    Those are connection failures and timeouts before any response byte arrived. Once the
    server has begun to answer (a body cut off, a stream cut before its first event, a
    response that arrived broken) the request is not sent again: the server may have done,
    and billed, the work. An error that says otherwise of itself (a TLS certificate refused)
    is not retried either.
    """
    flag = getattr(error, "_transient", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(error, _TRANSIENT)


class Deadline:
    """The end of one call under ``Timeout.total``: every wait of the call draws from it.

    ``clock`` returns the current time in seconds (the event loop's clock). With ``total``
    None there is no end and every method says so (None: no limit).
    """

    __slots__ = ("_clock", "at", "total")

    def __init__(self, total: float | None, clock: Callable[[], float]) -> None:
        self.total = total
        self._clock = clock
        self.at: float | None = None if total is None else clock() + total

    def left(self) -> float | None:
        """Seconds left (0 once passed), or None without a deadline."""
        if self.at is None:
            return None
        return max(self.at - self._clock(), 0.0)

    def cap(self, seconds: float | None) -> float | None:
        """``seconds`` (None: unbounded) shortened to what is left of the call."""
        left = self.left()
        if left is None:
            return seconds
        return left if seconds is None else min(seconds, left)

    def allows(self, wait: float) -> bool:
        """Whether a wait of ``wait`` seconds ends before the deadline."""
        return self.at is None or self._clock() + wait < self.at

    @property
    def passed(self) -> bool:
        """True once the deadline is (all but) reached."""
        return self.at is not None and self._clock() >= self.at - 1e-3

    def error(self, attempts: int, during: str = "") -> TotalTimeoutError:
        """The :class:`TotalTimeoutError` to raise when the deadline has passed."""
        where = f" ({during})" if during else ""
        return TotalTimeoutError(
            f"the call took longer than Timeout.total ({self.total} s){where}", attempts=attempts
        )


def requested_delay(headers: Mapping[str, str], now: float) -> float | None:
    """The wait (seconds, >= 0) a response asks for before a retry, uncapped; None when it asks
    for none or says something that is not a number of seconds or an HTTP date (``nan`` and
    ``inf`` are not). A number too large for a float is ``math.inf``: a wait longer than any
    limit."""
    wait: float | None = None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        seconds = _number(headers.get(name))
        if seconds is not None:
            wait = seconds / 1000.0
            break
    if wait is None:
        raw = headers.get("retry-after")
        if raw:
            wait = _number(raw)
            if wait is None:
                try:
                    wait = parsedate_to_datetime(raw).timestamp() - now
                except (TypeError, ValueError, IndexError, OverflowError):
                    wait = None
    if wait is None or not -math.inf < wait:
        return None
    return max(wait, 0.0)  # math.inf: longer than any max_retry_after


def _number(raw: str | None) -> float | None:
    """``raw`` as a number; None when it is none, or spells NaN or an infinity."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if math.isnan(value) or (math.isinf(value) and "inf" in raw.lower()):
        return None
    return value  # a number too large for a float is inf


DEFAULT_TIMEOUT: Final = Timeout()
DEFAULT_RETRY: Final = RetryPolicy()
