"""The clients the benchmark measures, one module each.

Each module runs one scenario in its own process (``python -m benchmarks.clients.<module>
--scenario stream --port P ...``) and prints one JSON line of results; see
:mod:`benchmarks.clients._common` for the scenarios and what is measured.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CLIENTS", "ClientInfo"]


class ClientInfo(NamedTuple):
    """A measured client: its module, the package it needs, and how the tables name it."""

    module: str
    requires: str | None
    label: str


#: Every client, in the order the tables list them. ``requires`` is the importable package
#: a peer library needs (None: only this project's own dependencies).
CLIENTS: dict[str, ClientInfo] = {
    "raw": ClientInfo("benchmarks.clients.raw", None, "raw aiohttp bytes"),
    "floor": ClientInfo("benchmarks.clients.floor", None, "aiohttp + SSE split + orjson"),
    "inference-async": ClientInfo("benchmarks.clients.inference_async", None, "inference (async)"),
    "inference-sync": ClientInfo("benchmarks.clients.inference_sync", None, "inference (sync)"),
    "azure-async": ClientInfo(
        "benchmarks.clients.azure_async", "azure.ai.inference", "azure-ai-inference (aio)"
    ),
    "azure-sync": ClientInfo(
        "benchmarks.clients.azure_sync", "azure.ai.inference", "azure-ai-inference (sync)"
    ),
    "openai-async": ClientInfo("benchmarks.clients.openai_async", "openai", "openai (AsyncOpenAI)"),
    "openai-sync": ClientInfo("benchmarks.clients.openai_sync", "openai", "openai (OpenAI)"),
}
