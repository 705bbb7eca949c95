"""The sync API: the async core, run on an anyio blocking portal.

No behaviour lives here: every method is one hop into :mod:`inference.aio`. Each sync client
owns one portal (an event loop in a daemon thread) for its whole life, started on first use
and stopped by :meth:`ChatCompletionsClient.close`; the aiohttp session and async credentials
live on that loop. Streams cross over through one pump task and a memory object stream,
a batch of ready updates per hop (never one hop per token). Ctrl-C during a call or while
iterating cancels the request on the loop and releases its connection.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import inspect
import threading
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, suppress
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .aio._client import ChatCompletionsClient as _AsyncClient
from .aio._stream import AsyncChatCompletionsStream
from .exceptions import InferenceError
from .models import ChatCompletions, ModelInfo, StreamingChatCompletionsUpdate

__all__ = ["ChatCompletionsClient", "ChatCompletionsStream"]

T = TypeVar("T")

_BATCHES_AHEAD = 4  # how many batches the pump may read ahead of a slow consumer


class _Portal:
    """One event-loop thread, started on first use, stopped once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._stopped = False

    def get(self) -> BlockingPortal:
        portal = self._portal
        if portal is not None:
            return portal
        with self._lock:
            if self._stopped:
                raise InferenceError("the client is closed; create a new client")
            if self._portal is None:
                cm = start_blocking_portal("asyncio", name="inference-loop")
                self._portal = cm.__enter__()
                self._cm = cm
                _live_portals.add(self)
            return self._portal

    @property
    def started(self) -> bool:
        return self._portal is not None

    def call(self, func: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``func()`` on the loop and wait; Ctrl-C (or any exception here) cancels it."""
        portal = self.get()
        future: concurrent.futures.Future[T] = portal.start_task_soon(func)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                concurrent.futures.wait([future], timeout=5)
            raise

    def start(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> concurrent.futures.Future[Any]:
        return self.get().start_task_soon(func)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            portal, cm = self._portal, self._cm
            self._portal = self._cm = None
        _live_portals.discard(self)
        if portal is None or cm is None:
            return
        with suppress(RuntimeError):
            portal.call(portal.stop, True)
        cm.__exit__(None, None, None)


_live_portals: weakref.WeakSet[_Portal] = weakref.WeakSet()


@atexit.register
def _stop_portals_at_exit() -> None:
    for portal in list(_live_portals):
        with suppress(Exception):
            portal.stop()


def _same_signature(
    async_func: Callable[..., Any],
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a sync method the async twin's signature and docstring (one source of truth)."""

    def decorate(sync_func: Callable[..., T]) -> Callable[..., T]:
        sync_func.__doc__ = async_func.__doc__
        signature = inspect.signature(async_func)
        sync_func.__signature__ = signature  # type: ignore[attr-defined]
        return sync_func

    return decorate


class ChatCompletionsClient:
    """Sync client for chat completions; same constructor and methods as
    :class:`inference.aio.ChatCompletionsClient`, which it runs on a background event loop.

    Use it as ``with ChatCompletionsClient(...) as client:`` or call :meth:`close`. One client
    may be shared by many threads.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Building the async client needs no event loop: arguments are checked right here.
        self._async = _AsyncClient(*args, **kwargs)
        self._portal = _Portal()
        self._finalizer = weakref.finalize(self, self._portal.stop)

    @property
    def endpoint(self) -> Any:
        """The resolved endpoint: kind, URLs, api-version, key headers and token scope."""
        return self._async.endpoint

    def __repr__(self) -> str:
        return repr(self._async).replace("<", "<sync ", 1)

    @_same_signature(_AsyncClient.complete)
    def complete(self, *args: Any, **kwargs: Any) -> ChatCompletions | ChatCompletionsStream:
        result = self._portal.call(functools.partial(self._async.complete, *args, **kwargs))
        if isinstance(result, AsyncChatCompletionsStream):
            return ChatCompletionsStream(result, self._portal)
        return result

    @_same_signature(_AsyncClient.get_model_info)
    def get_model_info(self, *args: Any, **kwargs: Any) -> ModelInfo:
        return self._portal.call(functools.partial(self._async.get_model_info, *args, **kwargs))

    def close(self) -> None:
        """Close the connection pool and stop the background event loop. Idempotent."""
        if self._portal.started:
            try:
                self._portal.call(self._async.close)
            finally:
                self._portal.stop()
        else:
            self._portal.stop()

    def __enter__(self) -> ChatCompletionsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


ChatCompletionsClient.__init__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    _AsyncClient.__init__
)


class ChatCompletionsStream:
    """Iterator of :class:`~inference.models.StreamingChatCompletionsUpdate` (sync twin of
    :class:`inference.aio.AsyncChatCompletionsStream`).

    Use it as ``with stream:`` or call :meth:`close` to release the connection when stopping
    early; breaking out of a loop over a temporary stream, an exception, or garbage
    collection release it too.
    """

    def __init__(self, stream: AsyncChatCompletionsStream, portal: _Portal) -> None:
        self._stream = stream
        self._portal = portal
        self._buffer: deque[StreamingChatCompletionsUpdate] = deque()
        self._ended = False
        send, receive = anyio.create_memory_object_stream[Any](_BATCHES_AHEAD)
        self._receive: MemoryObjectReceiveStream[Any] = receive
        self._pump = portal.start(functools.partial(_pump, stream, send))
        self.request_id = stream.request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = stream.response_headers
        """The response headers."""

    def __iter__(self) -> ChatCompletionsStream:
        return self

    def __next__(self) -> StreamingChatCompletionsUpdate:
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        if self._ended:
            raise StopIteration
        try:
            item = self._portal.call(self._receive_batch)
        except BaseException:
            self._ended = True
            self.close()
            raise
        if item is None:
            self._ended = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._ended = True
            self.close()
            raise item
        buffer.extend(item)
        return buffer.popleft()

    async def _receive_batch(self) -> Any:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            self._receive.close()
            return None

    def close(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        self._ended = True
        pump = self._pump
        if not pump.done():
            pump.cancel()
        if self._portal.started:
            try:
                self._portal.call(self._shutdown)
            except (RuntimeError, InferenceError):
                self._receive.close()  # the loop is gone: nothing else touches the stream
        else:
            self._receive.close()

    async def _shutdown(self) -> None:
        await self._stream.aclose()
        self._receive.close()

    def __enter__(self) -> ChatCompletionsStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped without close() (a bare ``break``): clean up on the loop, without blocking.
        pump = getattr(self, "_pump", None)
        if pump is None:
            return
        if not pump.done():
            pump.cancel()
        try:
            self._portal.start(self._shutdown)
        except Exception:
            self._receive.close()  # the loop is gone: nothing else touches the stream

    @property
    def finished(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self._stream.finished

    @_same_signature(AsyncChatCompletionsStream.get_final_completion)
    def get_final_completion(self) -> ChatCompletions:
        return self._stream.get_final_completion()

    @_same_signature(AsyncChatCompletionsStream.partial_completion)
    def partial_completion(self) -> ChatCompletions:
        return self._stream.partial_completion()

    def until_done(self) -> ChatCompletions:
        """Read the rest of the stream and return the assembled completion."""
        for _ in self:
            pass
        return self._stream.get_final_completion()

    def text_deltas(self) -> Iterator[str]:
        """Iterate only the non-empty text deltas of the first choice (for UI code)."""
        for update in self:
            for choice in update.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content


async def _pump(stream: AsyncChatCompletionsStream, send: MemoryObjectSendStream[Any]) -> None:
    """Move batches of ready updates from the async stream into the memory stream."""
    async with send:
        try:
            while True:
                batch = await stream._next_batch()
                if not batch:
                    return
                await send.send(batch)
        except anyio.get_cancelled_exc_class():
            await stream.aclose()
            raise
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stream.aclose()
        except Exception as exc:  # delivered to the consumer, raised there
            await stream.aclose()
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)
