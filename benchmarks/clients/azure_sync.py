"""azure-ai-inference 1.0.0b9, sync: ``azure.ai.inference.ChatCompletionsClient``.

Uses an ``AzureKeyCredential`` on the Azure AI models URL; azure-core's requests transport
carries the requests. In the concurrent scenario one client is shared by all the threads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.models import SystemMessage, UserMessage
from azure.core.credentials import AzureKeyCredential

from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_sync

__all__ = ["AzureSyncClient"]


class AzureSyncClient:
    """``azure.ai.inference.ChatCompletionsClient``."""

    measures_bytes = False
    version = f"azure-ai-inference {version('azure-ai-inference')}"

    def __init__(self) -> None:
        self._client: ChatCompletionsClient | None = None
        self._messages: list[Any] = [SystemMessage(SYSTEM_PROMPT), UserMessage(USER_PROMPT)]

    def open(self, base_url: str) -> None:
        """Create the client."""
        self._client = ChatCompletionsClient(
            endpoint=f"{base_url}/models", credential=AzureKeyCredential(KEY), model=MODEL
        )

    def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Iterate the updates of one stream; count text deltas and characters."""
        assert self._client is not None
        updates = chars = 0
        first = 0.0
        extra: dict[str, Any] = {"headers": dict(headers)} if headers else {}
        response: Any = self._client.complete(
            messages=self._messages, stream=True, max_tokens=chunks, **extra
        )
        with response:
            for update in response:
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

    def complete(self) -> int:
        """One non-streamed request; return the characters of the answer."""
        assert self._client is not None
        response: Any = self._client.complete(messages=self._messages)
        content: str = response.choices[0].message.content
        return len(content)

    def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            self._client.close()


if __name__ == "__main__":
    main_sync("azure-sync", AzureSyncClient)
