"""Ray Data integration: callable classes for ``Dataset.map_batches`` (Ray is not a dependency).

``pip install 'aioinference[ray]'`` brings Ray Data. Each actor of the map stage builds one
instance: one async client on an event loop of its own, one pace (:class:`~inference.batch.
RateLimiter`), shared by every batch the actor receives. Rows in, the same rows out with the
answer's columns added::

    import ray
    from inference.ray import ChatCompletions

    ds = ray.data.from_items([{"messages": [{"role": "user", "content": "Hi"}]}, ...])
    answers = ds.map_batches(
        ChatCompletions,
        fn_constructor_kwargs={"endpoint": url, "credential": key, "model": "gpt-4o-mini"},
        concurrency=4,          # actors
        batch_size=64,
    )

A row gives its request as a ``messages`` column (the ``body_defaults`` add ``model``,
``max_tokens``...) or as a whole ``body`` column (a dict, sent as written). The requests of a
batch are sent concurrently (at most ``concurrency_per_actor`` at once), paced, retried and
throttled exactly as ``python -m inference batch`` does; a request that fails leaves its
error in the row (``error``, ``status_code``) instead of failing the dataset, except errors
every request would meet (a refused key, an unreachable endpoint), which are raised.

The limits (``requests_per_minute``, ``tokens_per_minute``) are per actor: divide the
account's limits by the number of actors. The server's ``x-ratelimit-*`` headers and 429s
pace each actor whatever you set.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Final

import anyio
import anyio.from_thread
import orjson

from .batch._input import BatchRequest, LineError, parse_lines
from .batch._limits import RateLimiter
from .batch._send import FATAL_ERRORS, Outcome, PacedSender, Sender

__all__ = ["ChatCompletions", "Embeddings"]

_CHAT_URL: Final = "/v1/chat/completions"
_EMBEDDINGS_URL: Final = "/v1/embeddings"


def _plain(value: Any) -> Any:
    """A column value as plain Python data (Ray hands numpy arrays and scalars)."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(batch: Mapping[str, Any]) -> tuple[list[str], int]:
    columns = list(batch)
    sizes = {len(batch[c]) for c in columns}
    if len(sizes) > 1:
        raise ValueError(f"the batch's columns have different lengths: {sorted(sizes)}")
    return columns, sizes.pop() if sizes else 0


class _Stage(ABC):
    """What both callable classes share: the actor's event loop, client and pace."""

    _url: str = _CHAT_URL

    def __init__(
        self,
        endpoint: str,
        credential: Any = None,
        *,
        body_defaults: Mapping[str, Any] | None = None,
        model: str | None = None,
        concurrency_per_actor: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._defaults = dict(body_defaults or {})
        if model is not None:
            self._defaults["model"] = model
        if not isinstance(concurrency_per_actor, int) or concurrency_per_actor < 1:
            raise ValueError(
                f"concurrency_per_actor={concurrency_per_actor!r}: use a whole number >= 1"
            )
        self._concurrency = concurrency_per_actor
        self._limiter = RateLimiter(requests_per_minute, tokens_per_minute)
        self._sender = Sender(endpoint, credential, self._limiter, client_options)
        self._paced = PacedSender(self._sender, self._limiter)
        self._portal_cm: Any = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        kind = "chat" if self._url == _CHAT_URL else "embeddings"
        try:
            self._portal.call(self._sender.prepare, [kind])  # refused options fail here
        except BaseException:
            self.close()
            raise

    @abstractmethod
    def _body(self, row: Mapping[str, Any]) -> Any:
        """The request body for one row (chat or embeddings)."""

    @abstractmethod
    def _columns(self, outcome: Outcome | LineError) -> dict[str, Any]:
        """The output columns for one row's outcome."""

    def _requests(self, batch: Mapping[str, Any], size: int) -> list[BatchRequest | LineError]:
        lines = []
        for index in range(size):
            row = {name: _plain(batch[name][index]) for name in batch}
            line = {"custom_id": str(index), "method": "POST", "url": self._url}
            lines.append(orjson.dumps({**line, "body": self._body(row)}))
        requests, errors = parse_lines(lines)
        found: dict[int, BatchRequest | LineError] = {r.line: r for r in requests}
        found.update({e.line: e for e in errors})
        for request in requests:
            problem = self._refuse(request.body)
            if problem is not None:
                found[request.line] = LineError(request.line, problem, request.custom_id)
        return [found[index + 1] for index in range(size)]

    def _refuse(self, body: Mapping[str, Any]) -> str | None:
        """Why a row's valid request cannot fill the row's columns (None when it can)."""
        return None

    async def _send_all(
        self, requests: Sequence[BatchRequest | LineError]
    ) -> list[Outcome | LineError]:
        # Invalid rows keep their LineError; the others get their Outcome.
        results: list[Outcome | LineError | None] = [
            r if isinstance(r, LineError) else None for r in requests
        ]
        pending = iter([(i, r) for i, r in enumerate(requests) if isinstance(r, BatchRequest)])
        fatal: list[BaseException] = []

        async def worker(scope: anyio.CancelScope) -> None:
            for index, request in pending:
                try:
                    results[index] = await self._paced.send(request)
                except FATAL_ERRORS as exc:
                    fatal.append(exc)
                    scope.cancel()
                    return

        async with anyio.create_task_group() as group:
            for _ in range(self._concurrency):
                group.start_soon(worker, group.cancel_scope)
        if fatal:
            raise fatal[0]
        done = [r for r in results if r is not None]
        assert len(done) == len(results)  # every worker ran to the end
        return done

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        """The batch's columns (as lists) with the answer's columns added."""
        columns, size = _rows(batch)
        requests = self._requests(batch, size)
        outcomes = self._portal.call(self._send_all, requests)
        added = [self._columns(outcome) for outcome in outcomes]
        result = {name: _plain(batch[name]) for name in columns}
        for name in added[0] if added else ():
            result[name] = [row[name] for row in added]
        return result

    def close(self) -> None:
        """Close the client and stop the actor's event loop. Idempotent."""
        portal_cm, self._portal_cm = self._portal_cm, None
        if portal_cm is not None:
            try:
                self._portal.call(self._sender.aclose)
            finally:
                portal_cm.__exit__(None, None, None)

    def __del__(self) -> None:
        # An actor that ends without close(): stop the loop thread with it (at interpreter
        # shutdown there is nobody to report a failure to).
        with contextlib.suppress(Exception):
            self.close()


def _failure(outcome: Outcome | LineError) -> tuple[int | None, str | None]:
    """The status code and error text of a result that failed; (status, None) otherwise."""
    if isinstance(outcome, LineError):
        return None, f"invalid request: {outcome.message}"
    record = outcome.record
    if record["error"] is not None:
        return None, str(record["error"].get("message"))
    response = record["response"]
    status = int(response["status_code"])
    if status < 400:
        return status, None
    error = response["body"].get("error") if isinstance(response["body"], dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return status, f"HTTP {status}: {message or orjson.dumps(response['body']).decode()}"


def _body(outcome: Outcome | LineError) -> dict[str, Any]:
    if isinstance(outcome, Outcome) and outcome.record["response"] is not None:
        body = outcome.record["response"]["body"]
        if isinstance(body, dict):
            return body
    return {}


class ChatCompletions(_Stage):
    """Chat completions for the rows of a Ray Data batch (``map_batches``; one per actor).

    A row holds ``messages`` (a list of message dicts), merged into ``body_defaults`` (``model``,
    ``max_tokens``, ``temperature``...), or a whole request ``body``. Columns added: ``content``
    (the first choice's text), ``finish_reason``, ``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``, ``status_code``, ``error`` (None on success) and ``response`` (the
    whole chat.completion, or the service's error body, as JSON text).

    ``endpoint``, ``credential``: as for :class:`inference.aio.ChatCompletionsClient`, whose
    other options go in ``client_options``. ``concurrency_per_actor``: requests in flight at
    once in one actor. ``requests_per_minute``, ``tokens_per_minute``: the actor's pace.
    """

    def _body(self, row: Mapping[str, Any]) -> Any:
        if "body" in row:
            return row["body"]
        return {**self._defaults, "messages": row.get("messages")}

    def _columns(self, outcome: Outcome | LineError) -> dict[str, Any]:
        status, error = _failure(outcome)
        body = _body(outcome)
        choices = body.get("choices") if error is None else None
        first = choices[0] if isinstance(choices, list) and choices else {}
        usage = body.get("usage") or {}
        return {
            "content": (first.get("message") or {}).get("content"),
            "finish_reason": first.get("finish_reason"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
            "status_code": status,
            "error": error,
            "response": orjson.dumps(body).decode() if body else None,
        }


class Embeddings(_Stage):
    """Embeddings for the rows of a Ray Data batch (``map_batches``; one per actor).

    A row holds ``input`` (one text), sent with ``body_defaults`` (``model``, ``dimensions``...);
    a row whose ``input`` is a list of several texts gets an ``error`` (put each text in a row
    of its own) and nothing is sent for it.
    Columns added: ``embedding`` (a list of floats), ``total_tokens``, ``status_code`` and
    ``error`` (None on success). The other parameters are those of :class:`ChatCompletions`.
    """

    _url = _EMBEDDINGS_URL

    def _body(self, row: Mapping[str, Any]) -> Any:
        return {**self._defaults, "input": row.get("input")}

    def _refuse(self, body: Mapping[str, Any]) -> str | None:
        # The row has one embedding column: a list of several texts would get as many
        # vectors, all but the first lost.
        texts = body.get("input")
        if isinstance(texts, list) and len(texts) > 1:
            return (
                f"input holds {len(texts)} texts, but a row has one embedding column: put each "
                "text in a row of its own"
            )
        return None

    def _columns(self, outcome: Outcome | LineError) -> dict[str, Any]:
        status, error = _failure(outcome)
        body = _body(outcome)
        data = body.get("data") if error is None else None
        first = data[0] if isinstance(data, list) and data else {}
        return {
            "embedding": first.get("embedding"),
            "total_tokens": (body.get("usage") or {}).get("total_tokens"),
            "status_code": status,
            "error": error,
        }
