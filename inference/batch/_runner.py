"""Running a batch file: check the input, skip what is done, send the rest at a bounded pace."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import anyio
import attrs

from ..exceptions import RequestValidationError
from ._estimate import estimate_tokens
from ._input import BatchRequest, LineError, parse_lines
from ._limits import RateLimiter
from ._output import ResultFile, check_output_path, is_failure, scan_results
from ._progress import Counts, ProgressSink, make_progress
from ._send import FATAL_ERRORS, Outcome, PacedSender, Sender, available_kinds

__all__ = [
    "BatchInputError",
    "BatchSummary",
    "DryRun",
    "check_input",
    "dry_run",
    "run_batch",
    "run_batch_sync",
]

_SHOWN_ERRORS = 20


class BatchInputError(RequestValidationError):
    """The input file has invalid lines (:attr:`errors`, each with its line number) or does not
    belong with the output file; nothing was sent."""

    def __init__(self, message: str, errors: list[LineError] | None = None) -> None:
        super().__init__(message)
        #: The invalid lines.
        self.errors: list[LineError] = errors or []


def check_input(path: str | os.PathLike[str]) -> tuple[list[BatchRequest], list[LineError]]:
    """The valid requests of the input file at ``path`` and its invalid lines."""
    try:
        with open(path, "rb") as file:
            return parse_lines(file, available_kinds())
    except OSError as exc:
        raise BatchInputError(
            f"cannot read the input file {path}: {exc.strerror or exc}; give the path of the "
            "JSONL file of requests"
        ) from exc


def _invalid_message(path: str | os.PathLike[str], errors: list[LineError]) -> str:
    shown = "\n".join(f"  {error}" for error in errors[:_SHOWN_ERRORS])
    more = f"\n  ... and {len(errors) - _SHOWN_ERRORS} more" if len(errors) > _SHOWN_ERRORS else ""
    return (
        f"{path}: {len(errors)} invalid line(s), nothing was sent (fix them, or skip them "
        f"with skip_invalid / --skip-invalid):\n{shown}{more}"
    )


@attrs.frozen
class DryRun:
    """What a run would do: requests, invalid lines, results already there, token estimate."""

    #: Valid requests in the input.
    requests: int
    #: The invalid lines.
    errors: list[LineError]
    #: Requests that already have a result in the output file.
    done: int
    #: Requests a run would send.
    to_send: int
    #: Estimated prompt tokens of the requests to send (see :mod:`inference.batch._estimate`).
    prompt_tokens: int
    #: Completion tokens the requests to send allow at most (their ``max_tokens``), where set.
    completion_tokens: int
    #: Requests to send without ``max_tokens`` (their answers are not in the estimate).
    unbounded: int

    def describe(self, tokens_per_minute: float | None = None) -> str:
        """A few lines for people."""
        lines = [
            f"{self.requests} valid request(s), {len(self.errors)} invalid line(s)",
            f"{self.done} already have a result; {self.to_send} to send",
            f"estimated tokens to send: {self.prompt_tokens:,} prompt + "
            f"{self.completion_tokens:,} completion (max_tokens) = "
            f"{self.prompt_tokens + self.completion_tokens:,}",
        ]
        if self.unbounded:
            lines.append(f"{self.unbounded} request(s) set no max_tokens: their answers are extra")
        if tokens_per_minute:
            minutes = (self.prompt_tokens + self.completion_tokens) / tokens_per_minute
            lines.append(f"at {tokens_per_minute:,.0f} tokens per minute: about {minutes:.1f} min")
        lines += [f"  {error}" for error in self.errors[:_SHOWN_ERRORS]]
        return "\n".join(lines)


def dry_run(input: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> DryRun:
    """Check ``input`` and estimate its tokens without sending anything or writing a file.

    With ``output``, requests that already have a result there are left out of the estimate.
    """
    requests, errors = check_input(input)
    done: set[str] = set()
    if output is not None:
        check_output_path(output)
    if output is not None and os.path.exists(output):
        with open(output, "rb") as file:
            done = set(scan_results(file.read(), os.fspath(output)).done)
    pending = [r for r in requests if r.custom_id not in done]
    prompt = completion = unbounded = 0
    for request in pending:
        whole = estimate_tokens(request.kind, request.body)
        alone = _prompt_tokens(request)
        prompt += alone
        completion += whole - alone
        unbounded += request.kind == "chat" and whole == alone
    return DryRun(
        requests=len(requests),
        errors=errors,
        done=len(requests) - len(pending),
        to_send=len(pending),
        prompt_tokens=prompt,
        completion_tokens=completion,
        unbounded=unbounded,
    )


def _prompt_tokens(request: BatchRequest) -> int:
    """The estimate without the answer (``max_tokens`` left out)."""
    body = {
        k: v for k, v in request.body.items() if k not in ("max_tokens", "max_completion_tokens")
    }
    return estimate_tokens(request.kind, body)


@attrs.frozen
class BatchSummary:
    """How a run went."""

    #: Valid requests in the input.
    total: int
    #: Requests that already had a result when the run started (not sent again).
    skipped: int
    #: Requests answered with a success in this run.
    succeeded: int
    #: Requests whose result in this run is a failure (see the output file for each).
    failed: int
    #: Tokens the answers of this run used (``usage.total_tokens``).
    tokens: int
    #: HTTP 429 answers seen (the refused attempts were retried by the client's policy).
    throttled: int
    #: Seconds the run took.
    elapsed: float
    #: Invalid input lines (skipped with ``skip_invalid=True``).
    invalid: list[LineError] = attrs.field(factory=list)
    #: Bytes of a torn last write removed from the output file when it was opened.
    repaired_bytes: int = 0
    #: Failed results removed from the output file to be sent again (``retry_failed=True``).
    retried_failures: int = 0
    #: The request pace in force at the end (yours, or the server's when lower or alone).
    requests_per_minute: float | None = None
    #: The token pace in force at the end.
    tokens_per_minute: float | None = None
    #: Of the ``skipped`` requests, those whose result in the output file is a failure.
    failed_before: int = 0

    @property
    def failures(self) -> int:
        """Requests whose result in the output file is a failure (this run's and earlier)."""
        return self.failed + self.failed_before

    @property
    def complete(self) -> bool:
        """True when every valid request has a result."""
        return self.skipped + self.succeeded + self.failed == self.total

    def describe(self) -> str:
        """One paragraph for people."""
        rate = (self.succeeded + self.failed) / self.elapsed if self.elapsed > 0 else 0.0
        text = (
            f"{self.succeeded + self.failed} sent in {self.elapsed:.1f} s ({rate:.1f} req/s): "
            f"{self.succeeded} succeeded, {self.failed} failed; {self.skipped} already done"
        )
        if self.failed_before:
            text += f" ({self.failed_before} of them failed)"
        text += f"; {self.tokens:,} tokens; {self.throttled} throttled (HTTP 429)"
        if self.requests_per_minute or self.tokens_per_minute:
            paces = [
                f"{value:,.0f} {unit}/min"
                for value, unit in (
                    (self.requests_per_minute, "requests"),
                    (self.tokens_per_minute, "tokens"),
                )
                if value
            ]
            text += f"; pace {', '.join(paces)}"
        if self.invalid:
            text += f"; {len(self.invalid)} invalid line(s) skipped"
        if self.repaired_bytes:
            text += f"; a torn last line ({self.repaired_bytes} bytes) was removed from the output"
        if not self.complete:
            text += "; incomplete: run again to send the rest"
        return text


class _Run:
    """One run's state: the output file, the pace, the counts."""

    def __init__(
        self,
        paced: PacedSender,
        results: ResultFile,
        counts: Counts,
        progress: ProgressSink | None,
    ) -> None:
        self.paced = paced
        self.results = results
        self.counts = counts
        self.progress = progress
        self.fatal: BaseException | None = None

    def _record(self, outcome: Outcome) -> None:
        self.results.append(outcome.record)
        if is_failure(outcome.record):
            self.counts.failed += 1
        else:
            self.counts.succeeded += 1
        self.counts.tokens += outcome.tokens or 0
        if self.progress is not None:
            self.progress.update(self.counts)

    async def worker(self, requests: Iterator[BatchRequest], scope: anyio.CancelScope) -> None:
        """Send requests taken from ``requests`` one at a time, until none is left."""
        for request in requests:
            try:
                outcome = await self.paced.send(request)
            except FATAL_ERRORS as exc:
                if self.fatal is None:
                    self.fatal = exc
                scope.cancel()
                return
            self._record(outcome)


def _prepare(
    input: str | os.PathLike[str], output: str | os.PathLike[str], skip_invalid: bool
) -> tuple[list[BatchRequest], list[LineError]]:
    requests, errors = check_input(input)
    check_output_path(output)
    if os.path.exists(output) and os.path.samefile(input, output):
        raise BatchInputError(f"{output} is the input file; choose another output file")
    if errors and not skip_invalid:
        raise BatchInputError(_invalid_message(input, errors), errors)
    return requests, errors


def _check_pairing(results: ResultFile, requests: list[BatchRequest], output: str) -> None:
    ids = {r.custom_id for r in requests}
    strangers = [cid for cid in results.done if cid not in ids]
    if strangers:
        raise BatchInputError(
            f"{output} has results for custom_id(s) the input does not have (e.g. "
            f"{strangers[0]!r}): is it the output of another input file? Choose another "
            "output file"
        )


async def run_batch(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    endpoint: str,
    credential: Any = None,
    concurrency: int = 16,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    skip_invalid: bool = False,
    retry_failed: bool = False,
    progress: bool | ProgressSink = False,
    progress_stream: TextIO | None = None,
    client_options: Mapping[str, Any] | None = None,
    fsync_interval: float = 1.0,
) -> BatchSummary:
    """Send every request of the JSONL ``input`` that has no result in ``output`` yet, and
    append each result to ``output`` as one line of OpenAI's batch output format.

    ``endpoint`` and ``credential`` are those of :class:`inference.aio.ChatCompletionsClient`;
    ``client_options`` are passed to the clients as keyword arguments (``timeout``, ``retry``,
    ``api_version``, ``headers``...). At most ``concurrency`` requests are in flight, at most
    ``requests_per_minute`` and ``tokens_per_minute`` (None: no limit of yours; the server's
    ``x-ratelimit-*`` headers and 429 answers still pace the run).

    Invalid input lines raise :class:`BatchInputError` before anything is sent, unless
    ``skip_invalid``. ``retry_failed`` removes failed results from ``output`` and sends those
    requests again. ``progress``: True for a progress display on ``progress_stream`` (stderr
    by default; tqdm when installed), or your own :class:`ProgressSink`.

    Errors that every request would meet (authentication, an unreachable endpoint, client
    options the client refuses) stop the run and are raised; what was finished is kept, and a
    rerun sends the rest. ``output`` is locked while the run writes it: a second run on it is
    refused with :class:`~inference.exceptions.RequestValidationError`, and so is an ``output``
    that is a directory, in a folder that does not exist or not writable (before sending).
    """
    _check_options(concurrency, requests_per_minute, tokens_per_minute)
    started = time.monotonic()
    requests, errors = _prepare(input, output, skip_invalid)
    limiter = RateLimiter(requests_per_minute, tokens_per_minute)
    results = ResultFile(output, fsync_interval=fsync_interval)
    try:
        _check_pairing(results, requests, os.fspath(output))
        retried = results.drop_failures() if retry_failed else 0
        pending = [r for r in requests if r.custom_id not in results.done]
        counts = Counts(total=len(requests), skipped=len(requests) - len(pending))
        failed_before = sum(1 for r in requests if results.done.get(r.custom_id))
        sink = _sink(progress, progress_stream, counts)
        async with Sender(endpoint, credential, limiter, client_options) as sender:
            await sender.prepare(r.kind for r in pending)
            run = _Run(PacedSender(sender, limiter), results, counts, sink)
            try:
                await _drive(run, pending, concurrency)
            finally:
                if sink is not None:
                    sink.close(counts)
        if run.fatal is not None:
            raise run.fatal
    finally:
        results.close()
    return BatchSummary(
        total=counts.total,
        skipped=counts.skipped,
        succeeded=counts.succeeded,
        failed=counts.failed,
        tokens=counts.tokens,
        throttled=limiter.throttled,
        elapsed=time.monotonic() - started,
        invalid=errors,
        repaired_bytes=results.repaired_bytes,
        retried_failures=retried,
        requests_per_minute=limiter.requests_per_minute,
        tokens_per_minute=limiter.tokens_per_minute,
        failed_before=failed_before,
    )


def _check_options(concurrency: int, *rates: float | None) -> None:
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise RequestValidationError(
            f"concurrency {concurrency!r}: use a whole number of 1 or more"
        )
    for name, rate in zip(("requests_per_minute", "tokens_per_minute"), rates, strict=True):
        if rate is not None and not (isinstance(rate, int | float) and 0 < rate < float("inf")):
            raise RequestValidationError(f"{name} {rate!r}: use a number greater than 0, or None")


def _sink(
    progress: bool | ProgressSink, stream: TextIO | None, counts: Counts
) -> ProgressSink | None:
    if progress is False:
        return None
    if progress is True:
        return make_progress(stream or sys.stderr, counts)
    return progress


async def _drive(run: _Run, pending: list[BatchRequest], concurrency: int) -> None:
    shared = iter(pending)
    async with anyio.create_task_group() as group:
        for _ in range(min(concurrency, len(pending))):
            group.start_soon(run.worker, shared, group.cancel_scope)


def run_batch_sync(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    **options: Any,
) -> BatchSummary:
    """:func:`run_batch` for synchronous code (runs its own event loop; the same options)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(functools.partial(run_batch, input, output, **options))
    raise RequestValidationError(
        "run_batch_sync() was called inside a running event loop; use await run_batch(...)"
    )
