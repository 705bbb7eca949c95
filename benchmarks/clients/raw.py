"""Floor 1: raw aiohttp that only reads the response body bytes (no SSE, no JSON).

The request body is encoded once; the stream is read with ``readany()`` until the end of the
body. Everything a real client does on top of this is overhead the tables compare.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiohttp
import orjson

from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_async

__all__ = ["RawClient"]

_MESSAGES = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {"role": "user", "content": USER_PROMPT},
]


class RawClient:
    """aiohttp, body bytes only."""

    measures_bytes = True
    version = f"aiohttp {aiohttp.__version__}"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._url = ""
        self._headers = {"Content-Type": "application/json", "api-key": KEY}
        self._bodies: dict[int, bytes] = {}
        self._complete_body = orjson.dumps({"messages": _MESSAGES, "model": MODEL})

    async def open(self, base_url: str) -> None:
        """Create the session."""
        self._session = aiohttp.ClientSession()
        self._url = f"{base_url}/models/chat/completions?api-version=2024-05-01-preview"

    def _body(self, chunks: int) -> bytes:
        body = self._bodies.get(chunks)
        if body is None:
            body = self._bodies[chunks] = orjson.dumps(
                {"messages": _MESSAGES, "model": MODEL, "stream": True, "max_tokens": chunks}
            )
        return body

    async def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Read a streamed body to its end; count reads and bytes."""
        assert self._session is not None
        send = {**self._headers, **headers} if headers else self._headers
        reads = size = 0
        first = 0.0
        async with self._session.post(self._url, data=self._body(chunks), headers=send) as resp:
            read = resp.content.readany
            while True:
                data = await read()
                if not data:
                    break
                if not size:
                    first = time.perf_counter()
                    if on_first is not None:
                        on_first()
                reads += 1
                size += len(data)
        return reads, size, first

    async def complete(self) -> int:
        """Read a non-streamed body; return its size."""
        assert self._session is not None
        async with self._session.post(
            self._url, data=self._complete_body, headers=self._headers
        ) as resp:
            return len(await resp.read())

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()


if __name__ == "__main__":
    main_async("raw", RawClient)
