"""A loopback HTTP/1.1 server that misbehaves on purpose, for fault-injection tests.

The server speaks just enough HTTP/1.1 by hand (over ``asyncio`` streams) to be able to break
it in the ways real networks and proxies do: reset a connection before or in the middle of a
response, stall, end a chunked body early, trickle one byte at a time, answer with an HTML
page. Each request is answered by the next *action* of a script (a queue), or by the default
action once the script is used up; every request is recorded as an :class:`Attempt`.

An action is an async callable taking an :class:`Exchange` and returning True to keep the
connection open for the next request, False to close it. The factories below
(:func:`completion`, :func:`error`, :func:`sse`, :func:`reset`, ...) build the usual ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal

import attrs
import orjson

__all__ = [
    "DONE",
    "Action",
    "Attempt",
    "Exchange",
    "FaultServer",
    "chat_body",
    "chunk_event",
    "completion",
    "error",
    "raw",
    "refused_url",
    "reset",
    "sse",
    "stall",
    "trickle",
]

#: The event that ends a chat-completions stream.
DONE = b"data: [DONE]\n\n"

StreamEnd = Literal["done", "eof", "reset", "stall", "keepalive"]


@attrs.define
class Attempt:
    """One request the server received."""

    #: HTTP method, e.g. ``"POST"``.
    method: str
    #: Request target (path and query), e.g. ``"/v1/chat/completions"``.
    target: str
    #: Request headers, names in lower case.
    headers: dict[str, str]
    #: The raw request body.
    body: bytes
    #: Event-loop time at which the request head had arrived.
    at: float


@attrs.define
class Exchange:
    """What an action works with: the connection's streams and the request it answers."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    attempt: Attempt

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait until it is handed to the socket."""
        self.writer.write(data)
        await self.writer.drain()

    def abort(self) -> None:
        """Reset the connection (TCP RST: no orderly close)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def wait_for_disconnect(self) -> None:
        """Send nothing until the client closes the connection."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass


Action = Callable[[Exchange], Awaitable[bool]]


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def raw(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Action:
    """A complete response with a ``Content-Length`` body; the connection stays open.

    ``request_id`` goes in ``x-request-id`` (a new UUID when None; ``""`` sends no such header).
    """

    async def action(ex: Exchange) -> bool:
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        if request_id != "":
            all_headers["x-request-id"] = request_id or str(uuid.uuid4())
        all_headers.update(headers or {})
        await ex.send(_head(status, all_headers) + body)
        return True

    return action


def chat_body(text: str = "Hello!", model: str = "fault-model") -> dict[str, Any]:
    """A minimal non-streamed chat-completions body answering ``text``."""
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def completion(text: str = "Hello!", *, request_id: str | None = None) -> Action:
    """A 200 answer with a chat-completions JSON body whose content is ``text``."""
    return raw(200, orjson.dumps(chat_body(text)), request_id=request_id)


def error(
    status: int,
    *,
    code: str | None = None,
    message: str = "fault server error",
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Action:
    """An error status with an OpenAI-style JSON error body."""
    body = orjson.dumps({"error": {"code": code or str(status), "message": message}})
    return raw(status, body, headers=headers, request_id=request_id)


def chunk_event(content: str, *, finish: str | None = None, index: int = 0) -> bytes:
    """One ``data:`` event of a chat-completions stream carrying ``content``."""
    delta: dict[str, Any] = {"content": content}
    if index == 0 and finish is None:
        delta["role"] = "assistant"
    data = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fault-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse(
    *events: bytes,
    then: StreamEnd = "done",
    gap: float = 0.0,
    keepalive_every: float = 0.05,
    request_id: str | None = None,
    content_type: str = "text/event-stream",
) -> Action:
    """A chunked ``text/event-stream`` response sending ``events`` (``gap`` seconds apart).

    ``then`` says how it ends: ``"done"`` sends ``data: [DONE]`` and ends the body properly;
    ``"eof"`` ends the body properly without ``[DONE]``; ``"reset"`` resets the connection;
    ``"stall"`` sends nothing more until the client leaves; ``"keepalive"`` sends only
    ``: keep-alive`` comments (every ``keepalive_every`` seconds) until the client leaves.
    """

    async def action(ex: Exchange) -> bool:
        headers = {
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
            "x-request-id": request_id or str(uuid.uuid4()),
        }
        await ex.send(_head(200, headers))
        for number, event in enumerate(events):
            if gap and number:
                await asyncio.sleep(gap)
            await ex.send(_chunked(event))
        if then == "done":
            await ex.send(_chunked(DONE) + b"0\r\n\r\n")
            return True
        if then == "eof":
            await ex.send(b"0\r\n\r\n")
            return True
        if then == "reset":
            ex.abort()
            return False
        if then == "keepalive":
            reading = asyncio.ensure_future(ex.wait_for_disconnect())
            try:
                while not reading.done():
                    with contextlib.suppress(ConnectionError):
                        await ex.send(_chunked(b": keep-alive\n\n"))
                    await asyncio.wait({reading}, timeout=keepalive_every)
            finally:
                reading.cancel()
            return False
        await ex.wait_for_disconnect()
        return False

    return action


def reset() -> Action:
    """Reset the connection before sending any byte of a response."""

    async def action(ex: Exchange) -> bool:
        ex.abort()
        return False

    return action


def stall() -> Action:
    """Send nothing (not even a status line) until the client leaves."""

    async def action(ex: Exchange) -> bool:
        await ex.wait_for_disconnect()
        return False

    return action


def trickle(inner: Action, *, delay: float = 0.0) -> Action:
    """Send what ``inner`` sends one byte at a time, ``delay`` seconds apart."""

    async def action(ex: Exchange) -> bool:
        writer = ex.writer
        original_write = writer.write
        buffered: list[bytes] = []

        def capture(data: bytes | bytearray | memoryview) -> None:
            buffered.append(bytes(data))

        writer.write = capture  # type: ignore[method-assign]
        try:
            keep = await inner(ex)
        finally:
            writer.write = original_write  # type: ignore[method-assign]
        payload = b"".join(buffered)
        for position in range(len(payload)):
            original_write(payload[position : position + 1])
            await writer.drain()
            if delay:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
        return keep

    return action


def refused_url(path: str = "/v1") -> str:
    """A loopback URL on which nothing listens (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class FaultServer:
    """The misbehaving server. Use as ``async with FaultServer(action, ...) as server:``.

    ``actions`` answer the first requests, in order; then ``default`` answers every other
    request (a 200 completion unless given). :attr:`attempts` records every request;
    :meth:`plan` replaces the script.
    """

    def __init__(self, *actions: Action, default: Action | None = None) -> None:
        self.script: deque[Action] = deque(actions)
        self.default: Action = default or completion()
        self.attempts: list[Attempt] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._port = 0

    def plan(self, *actions: Action, default: Action | None = None) -> None:
        """Replace the script (and the default action, when given)."""
        self.script = deque(actions)
        if default is not None:
            self.default = default

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self._port}"

    def endpoint(self, path: str = "/v1") -> str:
        """The endpoint URL a client would be given (OpenAI-compatible ``/v1`` by default)."""
        return self.url + path

    @property
    def open_connections(self) -> int:
        """Connections the server still holds open."""
        return sum(1 for writer in self._writers if not writer.is_closing())

    def gaps(self) -> list[float]:
        """Seconds between consecutive attempts, as the server saw them."""
        times = [attempt.at for attempt in self.attempts]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop every connection and end every handler."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        await server.wait_closed()

    async def __aenter__(self) -> FaultServer:
        """Start the server and return it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        keep = True
        try:
            while keep:
                attempt = await self._read_request(reader)
                if attempt is None:
                    break
                self.attempts.append(attempt)
                action = self.script.popleft() if self.script else self.default
                keep = await action(Exchange(reader, writer, attempt))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # stop() ends the handlers; nothing awaits them but stop() itself
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> Attempt | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        at = asyncio.get_running_loop().time()
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return Attempt(method=method, target=target, headers=headers, body=body, at=at)
