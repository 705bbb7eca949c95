"""Replay recorded HTTP traffic from a loopback aiohttp.web server (test helper).

The reference recordings (``tests/data/recordings``, see ``tests/data/README.md``) hold real
exchanges with the services: Azure SDK test-proxy files (``{"Entries": [...]}``), a verbatim
server-sent-events sample (``.sse``) and error bodies copied from the service documentation.
This module loads them into :class:`Exchange` objects and serves them from 127.0.0.1 with
the recorded status, headers and body bytes, so a client can be pointed at real wire data::

    exchanges = load_exchanges(recording_path("chat_tools_roundtrip_mistral-large-2411.json"))
    async with ReplayServer(exchanges) as server:
        endpoint = server.endpoint_for(exchanges[0])   # http://127.0.0.1:PORT + recorded path
        ...                                             # run the client against it
        assert server.requests[0].json == exchanges[0].request_body

Responses are served in order, one per request. A request whose method or path differs from
the next recorded one (with ``strict=True``, the default), or one that arrives after the
queue ran out, gets a 599 answer and is listed in :attr:`ReplayServer.problems`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "REFERENCE_DIR",
    "Exchange",
    "ReceivedRequest",
    "ReplayServer",
    "load_exchanges",
    "load_sse_sample",
    "recording_path",
    "recordings_dir",
]

#: The reference material the tests run against, carried inside the repository
#: (``tests/data``; its README says where each file came from).
REFERENCE_DIR = Path(__file__).resolve().parent / "data"

# Headers that describe the recorded connection, not the response: the replay server sets its
# own (the body is served unencoded, with its real length).
_HOP_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


def recordings_dir() -> Path:
    """The recordings folder; raises ``FileNotFoundError`` with a clear message when absent."""
    path = REFERENCE_DIR / "recordings"
    if not path.is_dir():
        raise FileNotFoundError(
            f"the reference recordings are missing: expected the folder {path} (it is part of "
            "the repository: restore it with 'git checkout -- tests/data')"
        )
    return path


def recording_path(name: str) -> Path:
    """The path of one recording file by name; ``FileNotFoundError`` when it is missing."""
    path = recordings_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"recording {name!r} is missing from {path.parent}")
    return path


@attrs.define
class Exchange:
    """One recorded request and the response the service gave to it."""

    #: HTTP method of the recorded request.
    method: str
    #: URL path of the recorded request, e.g. ``/chat/completions``.
    path: str
    #: Query parameters of the recorded request, e.g. ``{"api-version": "2024-05-01-preview"}``.
    query: dict[str, str]
    #: Recorded request headers (as the test proxy kept them; keys sanitized).
    request_headers: dict[str, str]
    #: Recorded request body as parsed JSON (None for GET).
    request_body: Any
    #: Response status code.
    status: int
    #: Response headers, without the hop-by-hop ones.
    response_headers: dict[str, str]
    #: Response body as a list of chunks (one per event for streamed responses).
    chunks: list[bytes]
    #: The recorded response body as parsed JSON (None for streamed or non-JSON bodies).
    response_json: Any = None

    @property
    def body(self) -> bytes:
        """The whole response body."""
        return b"".join(self.chunks)

    @property
    def streamed(self) -> bool:
        """True for a ``text/event-stream`` response."""
        return "text/event-stream" in self.content_type

    @property
    def content_type(self) -> str:
        """The response's content type header ('' when absent)."""
        for name, value in self.response_headers.items():
            if name.lower() == "content-type":
                return value
        return ""

    @property
    def events(self) -> list[str]:
        """The ``data:`` payloads of a streamed response, in order (``[DONE]`` included)."""
        text = self.body.decode("utf-8").replace("\r\n", "\n")
        return [
            line[len("data:") :].strip() for line in text.split("\n") if line.startswith("data:")
        ]

    @classmethod
    def make(
        cls,
        status: int,
        body: bytes | str | Mapping[str, Any] | list[Any],
        headers: Mapping[str, str] | None = None,
        *,
        method: str = "POST",
        path: str = "/chat/completions",
    ) -> Exchange:
        """An ad-hoc response: JSON-able bodies get ``content-type: application/json``."""
        all_headers = dict(headers or {})
        parsed: Any = None
        if isinstance(body, Mapping | list):
            parsed = body
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
        return cls(
            method=method,
            path=path,
            query={},
            request_headers={},
            request_body=None,
            status=status,
            response_headers=all_headers,
            chunks=[data],
            response_json=parsed,
        )


def _entry_to_exchange(entry: Mapping[str, Any]) -> Exchange:
    url = urlsplit(entry["RequestUri"])
    body = entry.get("ResponseBody")
    headers = {
        k: v for k, v in entry.get("ResponseHeaders", {}).items() if k.lower() not in _HOP_HEADERS
    }
    parsed: Any = None
    if isinstance(body, list) and all(isinstance(part, str) for part in body):
        # A streamed body, event by event. An excerpt marks the events it left out with a
        # "<<< ... >>>" note: not service bytes, so it is not served.
        chunks = [part.encode("utf-8") for part in body if not _is_excerpt_note(part)]
    elif isinstance(body, str):
        chunks = [body.encode("utf-8")]
    elif body is None:
        chunks = [b""]
    else:
        parsed = body
        chunks = [json.dumps(body, ensure_ascii=False).encode("utf-8")]
    return Exchange(
        method=entry["RequestMethod"],
        path=url.path,
        query=dict(parse_qsl(url.query)),
        request_headers=dict(entry.get("RequestHeaders", {})),
        request_body=entry.get("RequestBody"),
        status=int(entry["StatusCode"]),
        response_headers=headers,
        chunks=chunks,
        response_json=parsed,
    )


def _is_excerpt_note(part: str) -> bool:
    text = part.strip()
    return text.startswith("<<<") and text.endswith(">>>")


def load_exchanges(path: Path) -> list[Exchange]:
    """The exchanges of a test-proxy recording file (``{"Entries": [...]}``), in order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "Entries" not in data:
        raise ValueError(f"{path.name} is not a test-proxy recording (no 'Entries')")
    return [_entry_to_exchange(entry) for entry in data["Entries"]]


def load_sse_sample(path: Path, *, request_path: str = "/chat/completions") -> Exchange:
    """A streamed 200 response from a ``.sse`` sample file.

    Lines starting with ``#`` are the file's notes (not service bytes) and are left out;
    every event becomes one chunk.
    """
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if not line.startswith("#")]
    body = "\n".join(lines).lstrip("\n")
    chunks = [(block + "\n\n").encode("utf-8") for block in body.split("\n\n") if block.strip()]
    return Exchange(
        method="POST",
        path=request_path,
        query={},
        request_headers={},
        request_body=None,
        status=200,
        response_headers={"Content-Type": "text/event-stream; charset=utf-8"},
        chunks=chunks,
    )


@attrs.define
class ReceivedRequest:
    """One request the replay server received."""

    #: HTTP method.
    method: str
    #: URL path.
    path: str
    #: Query parameters (first value of each).
    query: dict[str, str]
    #: Request headers (case-insensitive lookups).
    headers: CIMultiDictProxy[str]
    #: Raw body.
    body: bytes
    #: The body parsed as JSON, or None.
    json: Any


class ReplayServer:
    """A loopback server that answers requests with recorded responses, in order.

    ``strict``: answer 599 (and note a problem) when a request's method or path differs
    from the recorded one. ``chunk_delay``: seconds to wait between the chunks of a
    streamed body.
    """

    def __init__(
        self,
        exchanges: Iterable[Exchange] = (),
        *,
        strict: bool = True,
        chunk_delay: float = 0.0,
    ) -> None:
        self._queue: deque[Exchange] = deque(exchanges)
        self._strict = strict
        self._chunk_delay = chunk_delay
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        #: Every request received, oldest first.
        self.requests: list[ReceivedRequest] = []
        #: Descriptions of requests that did not match the recording (empty when all matched).
        self.problems: list[str] = []

    def add(self, *exchanges: Exchange) -> None:
        """Queue more responses."""
        self._queue.extend(exchanges)

    @property
    def pending(self) -> int:
        """How many queued responses have not been served yet."""
        return len(self._queue)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (needs a started server)."""
        if self._url is None:
            raise RuntimeError("the replay server has not been started")
        return self._url

    def endpoint_for(self, exchange: Exchange) -> str:
        """The client endpoint that makes requests land on ``exchange``'s recorded path."""
        path = exchange.path
        for suffix in ("/chat/completions", "/info"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
        return self.url + path

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            ReceivedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body=body,
                json=parsed,
            )
        )
        if not self._queue:
            return self._problem(f"{request.method} {request.path}: no recorded response left")
        exchange = self._queue.popleft()
        if self._strict and (request.method, request.path) != (exchange.method, exchange.path):
            return self._problem(
                f"{request.method} {request.path}: the recording expects "
                f"{exchange.method} {exchange.path}"
            )
        if not exchange.streamed:
            return web.Response(
                status=exchange.status, body=exchange.body, headers=exchange.response_headers
            )
        response = web.StreamResponse(status=exchange.status, headers=exchange.response_headers)
        await response.prepare(request)
        try:
            for chunk in exchange.chunks:
                if self._chunk_delay:
                    await asyncio.sleep(self._chunk_delay)
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response

    def _problem(self, text: str) -> web.Response:
        self.problems.append(text)
        return web.Response(status=599, text=f"replay server: {text}")
