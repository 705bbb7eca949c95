"""This library's sync client: ``inference.ChatCompletionsClient`` (Azure AI models URL).

In the concurrent scenario one client is shared by all the threads, as its documentation
allows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from azure.core.credentials import AzureKeyCredential

import inference
from benchmarks.clients._common import KEY, MODEL, SYSTEM_PROMPT, USER_PROMPT, OnFirst, main_sync
from inference import ChatCompletionsClient, ChatCompletionsStream
from inference.models import ChatCompletions, SystemMessage, UserMessage

__all__ = ["InferenceSyncClient"]


class InferenceSyncClient:
    """``inference.ChatCompletionsClient`` with an ``AzureKeyCredential``."""

    measures_bytes = False
    version = f"inference {inference.__version__}"

    def __init__(self) -> None:
        self._client: ChatCompletionsClient | None = None
        self._messages = [SystemMessage(SYSTEM_PROMPT), UserMessage(USER_PROMPT)]

    def open(self, base_url: str) -> None:
        """Create the client."""
        self._client = ChatCompletionsClient(
            f"{base_url}/models", AzureKeyCredential(KEY), model=MODEL
        )

    def stream(
        self, chunks: int, headers: Mapping[str, str] | None, on_first: OnFirst
    ) -> tuple[int, int, float]:
        """Iterate the updates of one stream; count text deltas and characters."""
        assert self._client is not None
        updates = chars = 0
        first = 0.0
        stream = self._client.complete(
            messages=self._messages, stream=True, max_tokens=chunks, headers=headers
        )
        assert isinstance(stream, ChatCompletionsStream)
        with stream:
            for update in stream:
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
        response = self._client.complete(messages=self._messages)
        assert isinstance(response, ChatCompletions)
        return len(response.choices[0].message.content or "")

    def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            self._client.close()


if __name__ == "__main__":
    main_sync("inference-sync", InferenceSyncClient)
