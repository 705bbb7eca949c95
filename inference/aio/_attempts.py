"""The attempt loop: the one place where a call is sent, retried, timed and turned into a
result or an error.

A call (:class:`Caller.call`) is the request every attempt sends, its
:class:`~inference.RetryPolicy` and its :class:`~inference._config.Deadline`
(``Timeout.total``). :meth:`Caller._attempts` runs attempts until one succeeds or the
policy says stop: each attempt adds the credential's header (the wait for a token draws from
the deadline), sends the request (the waits for a pool slot, the connection and the response
head too), then either finishes (reads the body, bounded by ``max_response_bytes``, or starts
the stream) or hands what went wrong to the policy, which answers whether to retry
(:meth:`~inference.RetryPolicy.should_retry`) and after how long
(:meth:`~inference.RetryPolicy.delay`, ``Retry-After`` included). The error a call ends with
gets its attempt count, and has keys and tokens removed, in one place (:meth:`Caller._final`).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, TypeVar

import anyio

from .._auth import Authenticator
from .._config import ERROR_BODY_LIMIT, Deadline, RetryPolicy, Timeout, requested_delay
from .._endpoint import Endpoint
from .._errors import error_from_response
from .._serialization import DecodeFailure
from .._streamparser import is_event_stream
from ..exceptions import (
    ErrorResponse,
    HttpResponseError,
    InferenceError,
    InferenceTimeoutError,
    ReadTimeoutError,
    ResponseDecodeError,
    ServiceRequestError,
    StreamInterruptedError,
    TotalTimeoutError,
)
from ._stream import AsyncChatCompletionsStream

if TYPE_CHECKING:
    from ._transport import Response, Transport

__all__ = ["Caller", "redact_headers"]

_log = logging.getLogger("inference")
_T = TypeVar("_T")

# The library's own generator, seeded from the system: an application that seeds ``random``
# (for reproducible runs) neither fixes the request ids nor has its sequence consumed by them.
# A forked child reseeds it, so parent and child do not send the same ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_random_bits = _ids.getrandbits
# The version (4) and variant (RFC 9562) bits of a random UUID, and the bits they replace.
_UUID4_CLEAR = 0xF000 << 64 | 0xC000 << 48
_UUID4_SET = 0x4000 << 64 | 0x8000 << 48


def _request_id() -> str:
    """A random (version 4) UUID for ``x-ms-client-request-id``.

    It only has to be unique, not secret: a generator of the library's own makes one in a
    third of the time of ``uuid.uuid4()``, without a system call.
    """
    h = "%032x" % ((_random_bits(128) & ~_UUID4_CLEAR) | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECRET_HEADERS = frozenset(
    {
        "api-key",
        "authorization",
        "cookie",
        "set-cookie",
        "ocp-apim-subscription-key",
        "proxy-authorization",
        "x-api-key",
    }
)


def redact_headers(
    headers: Mapping[str, str], secret_names: frozenset[str] = _SECRET_HEADERS
) -> dict[str, str]:
    """A copy of ``headers`` with credentials replaced by ``***`` (for logs).

    ``secret_names`` (lower case) are the headers to hide; the defaults always are.
    """
    names = secret_names | _SECRET_HEADERS
    return {k: ("***" if k.lower() in names else v) for k, v in headers.items()}


class Caller:
    """Runs the calls of one client: builds each call's headers, then its attempt loop.

    ``headers`` go with every request; ``token_auth`` says the credential is a token
    credential (a 401 is then retried once with a fresh token); ``max_body`` bounds the
    bodies read (``max_response_bytes``) and ``max_stream`` the bytes of one stream's body
    (``max_stream_bytes``, None: no limit); ``log_body`` logs request bodies at DEBUG, and
    ``log_http`` response headers;
    ``response_hook`` is called with the status and headers of every response head.
    """

    def __init__(
        self,
        transport: Transport,
        auth: Authenticator,
        endpoint: Endpoint,
        headers: Mapping[str, str],
        *,
        token_auth: bool,
        max_body: int,
        log_body: bool,
        max_stream: int | None = None,
        log_http: bool = False,
        response_hook: Callable[[int, Mapping[str, str]], None] | None = None,
    ) -> None:
        self._transport = transport
        self._auth = auth
        self._endpoint = endpoint
        auth.check_caller_headers(headers, "headers=")
        self._headers = dict(headers)
        self._token_auth = token_auth
        self._max_body = max_body
        self._max_stream = max_stream
        self._log_body = log_body
        self._log_http = log_http
        self._response_hook = response_hook
        # Every header that can carry the credential, including a custom key_header=.
        self._secret_headers = _SECRET_HEADERS | frozenset(
            name.lower() for name in endpoint.key_headers
        )
        self._closed = False

    def close(self) -> None:
        """Refuse further calls."""
        self._closed = True

    def _scrub(self, error: InferenceError) -> None:
        """Some servers and proxies echo the key they got in their error text: never let it
        into the exception's message or repr (the raw body stays on ``error.response``)."""
        if isinstance(error, HttpResponseError):
            text = str(error)
            clean = self._auth.redact(text)
            if clean != text:
                error._text = clean
                error.args = (clean,)
            error.message = self._auth.redact(error.message)
        elif error.args and isinstance(error.args[0], str):
            error.args = (self._auth.redact(error.args[0]), *error.args[1:])

    def call(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        extra_headers: Mapping[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
    ) -> _Call:
        """What every attempt of one call sends, with the call's policy and deadline."""
        if self._closed:
            raise InferenceError("the client is closed; create a new client")
        # Checked per call too: an AzureKeyCredential's key may be set after the client.
        self._auth.check_caller_headers(self._headers, "the client's headers=")
        self._auth.check_caller_headers(extra_headers, "this call's headers")
        request_id = _request_id()
        headers = {
            "Accept": "application/json"
            if method == "GET"
            else "application/json, text/event-stream",
            "x-ms-client-request-id": request_id,
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self._headers)
        headers.update(extra_headers)
        deadline = Deadline(timeout.total, anyio.current_time)
        return _Call(method, url, payload, headers, timeout, retry, deadline, request_id)

    async def stream(
        self,
        payload: bytes,
        headers: dict[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
        url: str,
    ) -> AsyncChatCompletionsStream:
        call = self.call("POST", url, payload, headers, timeout, retry)

        async def start(response: Response, attempt: int) -> AsyncChatCompletionsStream:
            content_type = response.headers.get("content-type", "")
            if not is_event_stream(content_type):
                data = await self._read_body(response, call, attempt)
                raise self.decode_error(
                    response,
                    data,
                    DecodeFailure(
                        f"a streamed request got content-type {content_type!r} instead of "
                        "text/event-stream"
                    ),
                    attempt,
                )
            response.set_body_timeout(None)  # the stream keeps its own idle clock
            request_id = (
                response.headers.get("x-request-id")
                or response.headers.get("apim-request-id")
                or call.request_id
            )
            stream = AsyncChatCompletionsStream(
                response,
                idle_timeout=timeout.idle,
                deadline=call.deadline.at,
                total=timeout.total,
                request_id=request_id,
                redact=self._auth.redact,
                max_stream_bytes=self._max_stream,
                server=response.origin,
            )
            try:
                await stream._prime()
            except StreamInterruptedError:
                # Cut before its first event: the server had answered (it may have billed
                # the request), so it is raised like a body cut off, never sent again.
                raise
            return stream

        return await self._attempts(call, start)

    async def fetch(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        headers: Mapping[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
    ) -> tuple[Response, bytes, int]:
        """Send and read the whole body: (response, body, attempts)."""
        call = self.call(method, url, payload, headers, timeout, retry)

        async def read(response: Response, attempt: int) -> tuple[Response, bytes, int]:
            return response, await self._read_body(response, call, attempt), attempt

        return await self._attempts(call, read)

    async def _attempts(self, call: _Call, finish: Callable[[Response, int], Awaitable[_T]]) -> _T:
        """The attempt loop of every call: send, check the status, ``finish`` (read the body or
        start the stream); ask the call's RetryPolicy whether and when to try again."""
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            outcome: _Answer | InferenceError
            try:
                response = await self._send_once(call, attempt)
                if response.status < 300:
                    return await finish(response, attempt)
                outcome = await self._answer(call, response, attempt)
            except InferenceError as exc:
                outcome = exc
            if not refreshed and self._refused_token(outcome):
                refreshed = True
                await self._renew_token(call, attempt)
                continue
            await self._wait_or_raise(call, attempt, outcome)

    async def _send_once(self, call: _Call, attempt: int) -> Response:
        """One attempt: the credential's header, then the request, up to the response head."""
        headers = call.headers
        with _bounded(call.deadline, max(attempt - 1, 1), "waiting for a token"):
            await self._auth.apply(headers)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s attempt %d headers=%s%s",
                call.method,
                call.url,
                attempt,
                redact_headers(headers, self._secret_headers),
                f" body={call.payload.decode('utf-8', 'replace')}"
                if self._log_body and call.payload
                else "",
            )
        read_timeout = call.deadline.cap(call.timeout.read)
        if read_timeout == 0:
            raise call.deadline.error(max(attempt - 1, 1))
        try:
            # The wait for a pool slot counts against Timeout.total only.
            with _bounded(call.deadline, attempt, "waiting for a connection or a response"):
                response = await self._transport.send(
                    call.method,
                    call.url,
                    params=self._endpoint.query() or None,
                    headers=headers,
                    body=call.payload,
                    connect_timeout=call.timeout.connect,
                    read_timeout=read_timeout,
                )
        except (ServiceRequestError, InferenceTimeoutError) as exc:
            if call.deadline.passed and not isinstance(exc, TotalTimeoutError):
                raise call.deadline.error(attempt) from exc
            raise
        _log.debug(
            "%s %s -> %d %s%s",
            call.method,
            call.url,
            response.status,
            response.reason,
            f" headers={redact_headers(response.headers, self._secret_headers)}"
            if self._log_http
            else "",
        )
        if self._response_hook is not None:
            try:
                self._response_hook(response.status, response.headers)
            except BaseException:
                response.close()
                raise
        return response

    async def _answer(self, call: _Call, response: Response, attempt: int) -> _Answer:
        """An answer that is not a success, its body read (its first bytes, for a long one)."""
        try:
            body = await self._read_body(response, call, attempt, limit=ERROR_BODY_LIMIT)
        except InferenceError:
            body = b""
        return _Answer(response.status, response.reason, response.headers, body)

    def _refused_token(self, outcome: object) -> bool:
        return self._token_auth and isinstance(outcome, _Answer) and outcome.status == 401

    async def _renew_token(self, call: _Call, attempt: int) -> None:
        """After a 401: drop the refused token, unless another request already replaced it
        (a burst of 401s costs one token request, not one each)."""
        current: dict[str, str] = {}
        with _bounded(call.deadline, attempt, "waiting for a token"):
            await self._auth.apply(current)
        if current.get("authorization") == call.headers.get("authorization"):
            self._auth.invalidate()
        _log.info("retrying %s %s with a fresh token after HTTP 401", call.method, call.url)

    async def _wait_or_raise(
        self, call: _Call, attempt: int, outcome: _Answer | InferenceError
    ) -> None:
        """Wait before the next attempt, or raise the call's error if there is none."""
        retry = call.retry
        if not retry.should_retry(attempt, outcome):
            raise self._final(call, attempt, outcome)
        delay = retry.delay(attempt, outcome)
        if not call.deadline.allows(delay):
            raise self._final(call, attempt, outcome)
        _log.info(
            "retrying %s %s in %.2f s (attempt %d %s)",
            call.method,
            call.url,
            delay,
            attempt,
            _why(outcome),
        )
        await anyio.sleep(delay)

    def _final(
        self, call: _Call, attempt: int, outcome: _Answer | InferenceError
    ) -> InferenceError:
        """The error a call ends with, its attempt count set (here, once) and secrets removed."""
        if isinstance(outcome, _Answer):
            error: InferenceError = self._answer_error(call.retry, attempt, outcome)
        else:
            error = outcome
            error.attempts = attempt
            if attempt > 1 and not isinstance(error, HttpResponseError) and error.args:
                error.args = (f"{error.args[0]} (after {attempt} attempts)", *error.args[1:])
        self._scrub(error)
        return error

    @staticmethod
    def _answer_error(retry: RetryPolicy, attempt: int, answer: _Answer) -> HttpResponseError:
        status = answer.status
        response = ErrorResponse(status, answer.reason, answer.headers, answer.body)
        if status < 400:
            location = answer.headers.get("location", "")
            return HttpResponseError(
                f"HTTP {status} {answer.reason}: the server redirected the request"
                + (f" to {location.split('?')[0]}" if location else "")
                + "; use the final URL as the endpoint (redirects are not followed, so a "
                "key is never sent to another address)",
                response,
                attempts=attempt,
            )
        wait = requested_delay(answer.headers, time.time())
        error = error_from_response(
            status, answer.reason, answer.headers, answer.body, attempts=attempt, retry_after=wait
        )
        if (
            wait is not None
            and wait > retry.max_retry_after
            and status in retry.statuses
            and attempt <= retry.max_retries
        ):
            asked = "for an endless wait" if math.isinf(wait) else f"to wait {wait:g} s"
            error._text += (
                f" (not retried: the server asked {asked}, longer than "
                f"RetryPolicy.max_retry_after, {retry.max_retry_after:g} s)"
            )
            error.args = (error._text,)
        return error

    async def _read_body(
        self,
        response: Response,
        call: _Call,
        attempt: int,
        *,
        limit: int | None = None,
    ) -> bytes:
        """The body of ``response``, bounded in size (``max_response_bytes``; an error body
        is cut to ``limit`` bytes instead) and in time: the whole response, head and body,
        within Timeout.read of sending the request (the answer is made before its head is
        sent, so a body still arriving after that is trickling), no silence longer than
        Timeout.idle (or read, when idle is None), and the call's Timeout.total."""
        timeout = call.timeout
        idle = timeout.idle if timeout.idle is not None else timeout.read
        response.set_body_timeout(idle)
        read = timeout.read
        try:
            with (
                _bounded(call.deadline, attempt, "reading the response body"),
                _within(read, response.sent_at),
            ):
                if limit is not None:
                    return await response.read(limit, truncate=True)
                return await response.read(self._max_body)
            # Only the read deadline's scope ends the block without a return.
            error = ReadTimeoutError(
                f"the response did not complete within {read} s of the request "
                "(Timeout.read bounds a non-streamed response, head and body)"
            )
            error._transient = False  # the server has answered
            raise error
        except TimeoutError as exc:
            response.close()
            if isinstance(exc, InferenceTimeoutError):
                raise
            error = ReadTimeoutError(f"the response body stopped arriving: nothing for {idle} s")
            error._transient = False  # the server has answered
            raise error from None
        finally:
            response.release()

    def decode_error(
        self, response: Response, data: bytes, exc: Exception, attempts: int
    ) -> HttpResponseError:
        """The error for a body that is not the API's JSON, secrets removed from it and from
        ``exc`` (raised as its cause, it is shown in tracebacks too)."""
        exc.args = tuple(
            self._auth.redact(arg) if isinstance(arg, str) else arg for arg in exc.args
        )
        content_type = response.headers.get("content-type", "")
        error = ResponseDecodeError(
            f"HTTP {response.status} but the body is not the expected chat-completions JSON "
            f"(content-type {content_type or 'missing'}): {exc}",
            ErrorResponse(response.status, response.reason, response.headers, data),
            attempts=attempts,
        )
        self._scrub(error)
        return error


class _Answer:
    """A response with a status other than success, and its (first) body bytes."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.reason}".rstrip()


class _Call:
    """One call: what each of its attempts sends, its retry policy and its deadline."""

    __slots__ = (
        "deadline",
        "headers",
        "method",
        "payload",
        "request_id",
        "retry",
        "timeout",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: Timeout,
        retry: RetryPolicy,
        deadline: Deadline,
        request_id: str,
    ) -> None:
        self.method = method
        self.url = url
        self.payload = payload
        self.headers = headers
        self.timeout = timeout
        self.retry = retry
        self.deadline = deadline
        self.request_id = request_id


def _why(outcome: _Answer | InferenceError) -> str:
    """What ended an attempt, for the log record of its retry."""
    if isinstance(outcome, _Answer):
        return f"got {outcome}"
    if isinstance(outcome, StreamInterruptedError):
        return f"failed: the stream was cut before its first event: {outcome}"
    return f"failed: {outcome}"


_NO_DEADLINE = nullcontext()


def _bounded(deadline: Deadline, attempts: int, during: str) -> AbstractContextManager[None]:
    """Cancel what the block awaits when the call's deadline passes, and raise
    :class:`TotalTimeoutError` (saying what was awaited) instead. Free without a deadline."""
    if deadline.at is None:
        return _NO_DEADLINE
    return _deadline_scope(deadline, attempts, during)


def _within(seconds: float | None, since: float) -> anyio.CancelScope:
    """A scope that cancels what it awaits ``seconds`` after the loop time ``since``."""
    return anyio.CancelScope(deadline=math.inf if seconds is None else since + seconds)


@contextmanager
def _deadline_scope(deadline: Deadline, attempts: int, during: str) -> Iterator[None]:
    with anyio.move_on_after(deadline.left() or 0.0) as scope:
        yield
    if scope.cancelled_caught:
        raise deadline.error(attempts, during)
