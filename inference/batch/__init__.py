"""Batch jobs: many requests from a JSONL file, at a bounded pace, resumable after a crash.

The input is OpenAI's Batch format, one request a line::

    {"custom_id": "q-1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"messages": [{"role": "user", "content": "How many feet are in a mile?"}]}}

and the output is OpenAI's batch output format, one result a line, in the order they finish::

    {"id": "batch_req_...", "custom_id": "q-1",
     "response": {"status_code": 200, "request_id": "...", "body": {...chat.completion...}},
     "error": null}

From a shell: ``python -m inference batch requests.jsonl results.jsonl``. From Python::

    summary = await run_batch("requests.jsonl", "results.jsonl", endpoint=url, credential=key,
                              concurrency=32, requests_per_minute=600)
    summary = run_batch_sync(...)   # the same, from synchronous code

Run it again with the same arguments after any interruption (Ctrl-C, a crash, ``kill -9``): only
the requests without a result are sent, and no finished result is lost (see
:mod:`inference.batch._output`). One run at a time writes an output file (it is locked).
The pace (:class:`RateLimiter`) follows your limits and what the server says in its
``x-ratelimit-*`` headers and 429 answers.
"""

from ._estimate import estimate_tokens
from ._input import ENDPOINT_URLS, BatchRequest, LineError
from ._limits import RateLimiter, Ticket
from ._progress import Counts, PlainProgress, ProgressSink
from ._runner import (
    BatchInputError,
    BatchSummary,
    DryRun,
    check_input,
    dry_run,
    run_batch,
    run_batch_sync,
)

__all__ = [
    "ENDPOINT_URLS",
    "BatchInputError",
    "BatchRequest",
    "BatchSummary",
    "Counts",
    "DryRun",
    "LineError",
    "PlainProgress",
    "ProgressSink",
    "RateLimiter",
    "Ticket",
    "check_input",
    "dry_run",
    "estimate_tokens",
    "run_batch",
    "run_batch_sync",
]
