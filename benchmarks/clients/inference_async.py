"""This library's async client: ``inference.aio.ChatCompletionsClient`` (Azure AI models URL)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from azure.core.credentials import AzureKeyCredential

import inference
from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_async
from inference.aio import ChatCompletionsClient
from inference.models import SystemMessage, UserMessage

__all__ = ["InferenceAsyncClient"]


class InferenceAsyncClient:
    """``inference.aio.ChatCompletionsClient`` with an ``AzureKeyCredential``."""

    measures_bytes = False
    version = f"inference {inference.__version__}"

    def __init__(self) -> None:
        self._client: ChatCompletionsClient | None = None
        self._messages = [SystemMessage(SYSTEM_PROMPT), UserMessage(USER_PROMPT)]

    async def open(self, base_url: str) -> None:
        """Create the client."""
        self._client = ChatCompletionsClient(
            f"{base_url}/models", AzureKeyCredential(KEY), model=MODEL
        )

    async def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Iterate the updates of one stream; count text deltas and characters."""
        assert self._client is not None
        updates = chars = 0
        first = 0.0
        stream = await self._client.complete(
            messages=self._messages, stream=True, max_tokens=chunks, headers=headers
        )
        async with stream:
            async for update in stream:
                choices = update.choices
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

    async def complete(self) -> int:
        """One non-streamed request; return the characters of the answer."""
        assert self._client is not None
        response = await self._client.complete(messages=self._messages)
        return len(response.choices[0].message.content or "")

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.close()


if __name__ == "__main__":
    main_async("inference-async", InferenceAsyncClient)
