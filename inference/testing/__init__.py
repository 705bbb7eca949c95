"""A local chat-completions emulator for developing and testing offline.

:class:`Emulator` is an aiohttp.web server on 127.0.0.1 that speaks the chat-completions API of
every endpoint kind the client supports (see :meth:`Emulator.endpoint`), answers with a
deterministic built-in model, and records every request it receives::

    async with Emulator() as emulator:
        endpoint = emulator.endpoint("azure_ai_models")    # http://127.0.0.1:PORT/models
        ...                                                 # point a client at it
        assert emulator.requests[-1].json["messages"]

The built-in model answers a few questions from a table (try "How many languages are in the
world?"), quotes other questions back, calls offered tools with arguments taken from the
question ("When is the next flight from Miami to Seattle?" gives
``{"origin_city": "Miami", "destination_city": "Seattle"}``), answers from tool results,
honours ``response_format``, ``max_tokens``, ``stop`` and ``n``, and acknowledges images.
User text containing ``knife skills`` or ``[content-filter]`` is refused with the services'
HTTP 400 ``content_filter`` error. Embeddings requests get a deterministic unit vector per
text (from a SHA-256 of the text; ``dimensions`` and every ``encoding_format`` honoured), and
``Emulator(model_type="embeddings")`` makes ``/info`` report an embeddings model.

Like the real services it refuses, with HTTP 400 in the endpoint kind's error shape, a
conversation whose tool calls do not add up (an assistant message's ``tool_calls`` not each
answered by a tool message right after it, a tool message that answers no call of the
assistant message before it, a ``tool_choice`` naming a function not in ``tools`` or
``required`` without tools). Request bodies up to :data:`MAX_REQUEST_BYTES` (64 MiB; the
``max_request_bytes`` argument changes it) are read; a larger one gets HTTP 413 saying the
limit.

:class:`EmulatorOptions` inject the faults real services show: slow tokens, CRLF line endings,
keep-alive comments, Azure content-filter annotations, error events, cut or stalled streams,
error statuses with ``Retry-After``, rate limits (``rate_limit_requests``,
``rate_limit_tokens``: HTTP 429 past them, ``x-ratelimit-*`` headers on every answer). Set them
on :attr:`Emulator.options`, or per request with ``x-emulator-<option>`` headers
(``x-emulator-status: 429``).

From a shell, ``python -m inference serve`` runs :func:`run` (which warns on stderr when it
serves an address other than a loopback one without a key). For pytest, enable the fixtures
with ``pytest_plugins = ["inference.testing.pytest_plugin"]``.
"""

from ._emulator import (
    ENDPOINT_KINDS,
    MAX_REQUEST_BYTES,
    Emulator,
    EmulatorOptions,
    RecordedRequest,
    run,
)

__all__ = [
    "ENDPOINT_KINDS",
    "MAX_REQUEST_BYTES",
    "Emulator",
    "EmulatorOptions",
    "RecordedRequest",
    "run",
]
