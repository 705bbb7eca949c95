"""The async API: ``from inference.aio import ChatCompletionsClient, EmbeddingsClient``.

Everything here runs on the caller's event loop (asyncio). The sync API in
:mod:`inference` runs this same code on a background event loop.
"""

from ._client import ChatCompletionsClient
from ._embeddings import EmbeddingsClient, load_client
from ._stream import AsyncChatCompletionsStream

__all__ = [
    "AsyncChatCompletionsStream",
    "ChatCompletionsClient",
    "EmbeddingsClient",
    "load_client",
]
