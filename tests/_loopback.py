"""A loopback aiohttp server for tests: one handler answers every path, on 127.0.0.1.

:func:`serve` runs it on the test's event loop; :func:`serve_in_thread` runs it on an event
loop of its own in a thread, for tests of the sync API (whose calls block the test's thread).
Both yield the server's base URL, ``http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web

__all__ = ["Handler", "serve", "serve_in_thread"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _start(handler: Handler) -> tuple[web.AppRunner, str]:
    async def route(request: web.Request) -> web.StreamResponse:
        return await handler(request)  # any callable: aiohttp wants a coroutine function

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """Serve ``handler`` on the running loop; yields the base URL."""
    runner, url = await _start(handler)
    try:
        yield url
    finally:
        await runner.cleanup()


@contextmanager
def serve_in_thread(handler: Handler) -> Iterator[str]:
    """Serve ``handler`` on a loop in a thread of its own; yields the base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loopback-server", daemon=True)
    thread.start()
    try:
        runner, url = asyncio.run_coroutine_threadsafe(_start(handler), loop).result(10)
        try:
            yield url
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
