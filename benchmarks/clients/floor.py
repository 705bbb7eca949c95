"""Floor 2: aiohttp, split the body on blank lines, strip ``data: ``, ``orjson.loads`` each event.

The least a correct-enough streaming client must do: it builds the request body with
``orjson.dumps`` per request, reads the body to its end (so the connection is reused) and
picks the text delta out of each decoded chunk. No models, no accumulation, no error checks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiohttp
import orjson

from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_async

__all__ = ["FloorClient"]

_MESSAGES = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {"role": "user", "content": USER_PROMPT},
]


class FloorClient:
    """aiohttp + split on ``\\n\\n`` + ``orjson.loads``."""

    measures_bytes = False
    version = f"aiohttp {aiohttp.__version__}, orjson {orjson.__version__}"

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._url = ""
        self._headers = {"Content-Type": "application/json", "api-key": KEY}

    async def open(self, base_url: str) -> None:
        """Create the session."""
        self._session = aiohttp.ClientSession()
        self._url = f"{base_url}/models/chat/completions?api-version=2024-05-01-preview"

    async def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Stream and decode every event; count text deltas and characters."""
        assert self._session is not None
        send = {**self._headers, **headers} if headers else self._headers
        body = orjson.dumps(
            {"messages": _MESSAGES, "model": MODEL, "stream": True, "max_tokens": chunks}
        )
        loads = orjson.loads
        updates = chars = 0
        first = 0.0
        rest = b""
        async with self._session.post(self._url, data=body, headers=send) as resp:
            read = resp.content.readany
            while True:
                data = await read()
                if not data:
                    break
                events = (rest + data).split(b"\n\n") if rest else data.split(b"\n\n")
                rest = events.pop()
                for event in events:
                    payload = event[6:] if event.startswith(b"data: ") else event
                    if payload == b"[DONE]":
                        continue
                    choices = loads(payload)["choices"]
                    if choices:
                        content = choices[0]["delta"].get("content")
                        if content:
                            if not chars:
                                first = time.perf_counter()
                                if on_first is not None:
                                    on_first()
                            updates += 1
                            chars += len(content)
        return updates, chars, first

    async def complete(self) -> int:
        """One non-streamed request; return the characters of the answer."""
        assert self._session is not None
        body = orjson.dumps({"messages": _MESSAGES, "model": MODEL})
        async with self._session.post(self._url, data=body, headers=self._headers) as resp:
            content: str = orjson.loads(await resp.read())["choices"][0]["message"]["content"]
        return len(content)

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()


if __name__ == "__main__":
    main_async("floor", FloorClient)
