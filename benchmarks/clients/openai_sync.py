"""openai-python, sync: ``openai.OpenAI`` on an OpenAI-compatible ``/v1`` URL.

In the concurrent scenario one client is shared by all the threads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import openai

from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_sync

__all__ = ["OpenAISyncClient"]

_MESSAGES: Any = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {"role": "user", "content": USER_PROMPT},
]


class OpenAISyncClient:
    """``openai.OpenAI``."""

    measures_bytes = False
    version = f"openai {openai.__version__}"

    def __init__(self) -> None:
        self._client: openai.OpenAI | None = None

    def open(self, base_url: str) -> None:
        """Create the client."""
        self._client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY)

    def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Iterate the chunks of one stream; count text deltas and characters."""
        assert self._client is not None
        updates = chars = 0
        first = 0.0
        stream = self._client.chat.completions.create(
            model=MODEL,
            messages=_MESSAGES,
            stream=True,
            max_tokens=chunks,
            extra_headers=dict(headers) if headers else None,
        )
        with stream:
            for chunk in stream:
                choices = chunk.choices
                if choices:
                    content = choices[0].delta.content
                    if content:
                        if not chars:
                            first = time.perf_counter()
                            if on_first is not None:
                                on_first()
                        updates += 1
                        chars += len(content)
        return updates, chars, first

    def complete(self) -> int:
        """One non-streamed request; return the characters of the answer."""
        assert self._client is not None
        response = self._client.chat.completions.create(model=MODEL, messages=_MESSAGES)
        return len(response.choices[0].message.content or "")

    def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            self._client.close()


if __name__ == "__main__":
    main_sync("openai-sync", OpenAISyncClient)
