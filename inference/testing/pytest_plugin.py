"""pytest fixtures that run the local emulator.

Enable them in your ``conftest.py``::

    pytest_plugins = ["inference.testing.pytest_plugin"]

Then, in tests run by the anyio pytest plugin (``@pytest.mark.anyio``, asyncio backend)::

    @pytest.mark.anyio
    async def test_answer(inference_emulator):
        async with ChatCompletionsClient(
            endpoint=inference_emulator.endpoint("azure_ai_models"), credential=...
        ) as client:
            ...
        assert inference_emulator.requests[-1].json["messages"]

Plain synchronous tests (for example ones using the sync client) use
``inference_emulator_thread``, which serves the emulator from a background thread.

Both fixtures give a fresh :class:`~inference.testing.Emulator` per test; change its
:attr:`~inference.testing.Emulator.options` to inject faults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ._emulator import Emulator

__all__ = ["inference_emulator", "inference_emulator_thread"]


@pytest.fixture
async def inference_emulator(anyio_backend: object) -> AsyncIterator[Emulator]:
    """A started emulator on the test's event loop (needs anyio's ``asyncio`` backend)."""
    backend = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    if backend != "asyncio":
        raise pytest.UsageError(
            f"inference_emulator runs on aiohttp and needs the asyncio backend, not {backend!r}"
        )
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
def inference_emulator_thread() -> Iterator[Emulator]:
    """A started emulator served from a background thread, for synchronous tests."""
    with Emulator().run_in_thread() as emulator:
        yield emulator
