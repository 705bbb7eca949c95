"""Shared fixtures: the anyio backend and a running emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from inference.testing import Emulator


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
async def emulator(anyio_backend: str) -> AsyncIterator[Emulator]:
    """A started emulator on 127.0.0.1 with no key required."""
    async with Emulator() as emu:
        yield emu
