"""A local chat-completions server for benchmarks: pre-rendered bytes, minimal work per request.

Run it as its own process::

    python benchmarks/server.py --port 0 --chunks 20000,200,20

It prints ``listening on 127.0.0.1:<port>`` once ready, then serves until it is stopped
(SIGTERM or Ctrl-C) and prints its counters at exit.

Routes (any method; request bodies are read and otherwise ignored):

- ``POST <anything>/chat/completions`` (``/models/chat/completions``, ``/chat/completions``,
  ``/openai/deployments/<d>/chat/completions``, ``/v1/chat/completions``, ...): a body with
  ``"stream": true`` gets a ``text/event-stream`` response of N ``chat.completion.chunk``
  events (N is the request's ``max_tokens``, default the first ``--chunks`` size), then a
  finish event, a usage event and ``data: [DONE]``; each event is one HTTP chunk, as real
  services send them. Other bodies get one ``chat.completion`` JSON document.
- ``GET /stats``: JSON counters ``connections`` (TCP connections accepted, this one not
  counted), ``requests`` and ``streams`` (chat requests served).

A request header ``x-bench-gap-ms: G`` makes a streamed response send its head and first two
events at once and the rest G milliseconds later: time to first token is then measured on a
first event that arrives alone, and open streams can be counted while they wait.

The bytes of every response are rendered once (at startup for the ``--chunks`` sizes, else on
first use) so the server does close to no work per request and is not what a benchmark measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
from collections.abc import Iterable

__all__ = [
    "NONSTREAM_TEXT",
    "BenchServer",
    "completion_body_size",
    "expected_text",
    "render_completion",
    "render_stream",
    "serve",
    "stream_body_size",
]

MODEL = "gpt-4o-2024-08-06"
COMPLETION_ID = "chatcmpl-AXm7yQ2rB9kT4vN8pL3wZ6cH1"
CREATED = 1736389076

# Tokens of the streamed answer: mostly ASCII words, some non-ASCII text (sent as raw UTF-8).
WORDS = (
    " The", " model", " answers", " token", " by", " token", ",", " and", " each",
    " chunk", " carries", " a", " small", " delta", " of", " text", ".", " Exercise",
    " helps", " the", " heart", " café", " naïve", " 東京", " 🙂", "\n",
)  # fmt: skip

NONSTREAM_TEXT = (
    "There are 5,280 feet in a mile. The unit comes from the Roman mile of a thousand paces; "
    "the English statute of 1593 set it to eight furlongs of 660 feet each, which is why the "
    "number is not a round one. For comparison, a kilometre is about 3,281 feet, so a mile is "
    "roughly 1.609 kilometres. Runners know the difference well: a 10K race is about 6.2 "
    "miles, and a marathon of 26.2 miles is a little over 42 kilometres."
)


def _word(i: int) -> str:
    return WORDS[i % len(WORDS)]


def expected_text(chunks: int) -> str:
    """The text a streamed response of ``chunks`` content events carries, concatenated."""
    return "".join(_word(i) for i in range(chunks))


def stream_body_size(chunks: int) -> int:
    """The size in bytes of a streamed response body of ``chunks`` events (without the
    chunked-encoding framing), as a client that reads the body sees it."""
    return sum(len(event) for event in _events(chunks))


def completion_body_size() -> int:
    """The size in bytes of the non-streamed response body."""
    return len(render_completion().partition(b"\r\n\r\n")[2])


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _chunk_event(delta: dict[str, object], finish: str | None, i: int) -> bytes:
    body = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED + i // 40,
        "model": MODEL,
        "system_fingerprint": "fp_5f20662549",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + _dumps(body) + b"\n\n"


def _events(chunks: int) -> list[bytes]:
    events = [_chunk_event({"role": "assistant", "content": ""}, None, 0)]
    events.extend(_chunk_event({"content": _word(i)}, None, i) for i in range(chunks))
    events.append(_chunk_event({}, "stop", chunks))
    usage = {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED + chunks // 40,
        "model": MODEL,
        "system_fingerprint": "fp_5f20662549",
        "choices": [],
        "usage": {"prompt_tokens": 25, "completion_tokens": chunks, "total_tokens": 25 + chunks},
    }
    events.append(b"data: " + _dumps(usage) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Cache-Control: no-cache\r\n"
    b"x-request-id: 68c37d1f-43e6-4895-89f2-e3dffb6bfa91\r\n"
    b"\r\n"
)


def render_stream(chunks: int) -> tuple[bytes, bytes]:
    """The whole streamed response for ``chunks`` content events, split in two parts: the head
    with the first two events, and the rest of the body (with the chunked-encoding end)."""
    encoded = [_http_chunk(event) for event in _events(chunks)]
    first = STREAM_HEAD + b"".join(encoded[:2])
    rest = b"".join(encoded[2:]) + b"0\r\n\r\n"
    return first, rest


def render_completion() -> bytes:
    """The whole non-streamed response: head and a ``chat.completion`` JSON body."""
    filters = {
        name: {"filtered": False, "severity": "safe"}
        for name in ("hate", "self_harm", "sexual", "violence")
    }
    body = _dumps(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_5f20662549",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": NONSTREAM_TEXT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                    "content_filter_results": filters,
                }
            ],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
            "usage": {"prompt_tokens": 29, "completion_tokens": 98, "total_tokens": 127},
        }
    )
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json\r\n"
        b"x-request-id: b4a0848a-3295-4440-a48a-882ee83293a6\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_MAX_TOKENS_RE = re.compile(rb'"max_tokens"\s*:\s*(\d+)')
_MAX_HEAD = 65536


class BenchServer:
    """Counters and pre-rendered responses shared by every connection."""

    def __init__(self, sizes: Iterable[int]) -> None:
        sizes = list(sizes)
        self.default_chunks = sizes[0] if sizes else 200
        self.streams: dict[int, tuple[bytes, bytes]] = {n: render_stream(n) for n in sizes}
        self.completion = render_completion()
        self.connections = 0
        self.requests = 0
        self.stream_count = 0

    def stream(self, chunks: int) -> tuple[bytes, bytes]:
        """The pre-rendered stream for ``chunks`` events (rendered now if it is a new size)."""
        parts = self.streams.get(chunks)
        if parts is None:
            parts = self.streams[chunks] = render_stream(chunks)
        return parts

    def stats(self) -> bytes:
        """The ``/stats`` response."""
        body = _dumps(
            {
                "connections": self.connections,
                "requests": self.requests,
                "streams": self.stream_count,
            }
        )
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: parse the request head, read the body, answer."""

    def __init__(self, server: BenchServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._counted = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while self._transport is not None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._transport.close()
                return
            head = bytes(buffer[:end]).decode("latin-1")
            lines = head.split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            start = end + 4
            if headers.get("transfer-encoding", "").lower() == "chunked":
                parsed = _read_chunked(buffer, start)
                if parsed is None:
                    return
                body, consumed = parsed
            else:
                length = int(headers.get("content-length", "0") or 0)
                if len(buffer) - start < length:
                    return
                body, consumed = bytes(buffer[start : start + length]), start + length
            del buffer[:consumed]
            self._respond(lines[0], headers, body)

    def _respond(self, request_line: str, headers: dict[str, str], body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        server = self._server
        parts = request_line.split(" ")
        path = parts[1] if len(parts) > 1 else "/"
        if path.startswith("/stats"):
            if self._counted:  # a stats probe is not one of the measured connections
                self._counted = False
                server.connections -= 1
            transport.write(server.stats())
        elif path.split("?", 1)[0].endswith("/chat/completions"):
            server.requests += 1
            if _STREAM_RE.search(body):
                server.stream_count += 1
                match = _MAX_TOKENS_RE.search(body)
                chunks = int(match.group(1)) if match else server.default_chunks
                first, rest = server.stream(chunks)
                gap = headers.get("x-bench-gap-ms")
                if gap:
                    transport.write(first)
                    loop = asyncio.get_running_loop()
                    self._pending = loop.call_later(float(gap) / 1000.0, self._write_later, rest)
                else:
                    transport.write(first + rest)
            else:
                transport.write(server.completion)
        else:
            message = b'{"error":{"code":"NotFound","message":"no such route"}}'
            transport.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(message), message)
            )
        if headers.get("connection", "").lower() == "close" and self._pending is None:
            transport.close()

    def _write_later(self, data: bytes) -> None:
        self._pending = None
        if self._transport is not None:
            self._transport.write(data)


def _read_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked request body starting at ``start``: (body, end offset), or None if
    it has not fully arrived yet."""
    pos = start
    parts: list[bytes] = []
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 2
        if len(buffer) < pos + size + 2:
            return None
        parts.append(bytes(buffer[pos : pos + size]))
        pos += size + 2


async def serve(host: str, port: int, sizes: Iterable[int]) -> None:
    """Serve until cancelled (SIGTERM or Ctrl-C); print the counters at exit."""
    state = BenchServer(sizes)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(state), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        with contextlib.suppress(OSError):  # whoever read our output may be gone
            print(
                f"connections={state.connections} requests={state.requests} "
                f"streams={state.stream_count}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run the server."""
    parser = argparse.ArgumentParser(description="Local chat-completions benchmark server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--chunks",
        default="200",
        help="comma-separated stream sizes to render at startup; the first is the default",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.chunks.split(",") if s.strip()]
    asyncio.run(serve(args.host, args.port, sizes))


if __name__ == "__main__":
    main()
