"""The sync API: the async core, run on an anyio blocking portal.

No behaviour lives here: every method is one hop into :mod:`inference.aio`. Each sync client
owns one portal (an event loop in a daemon thread) for its whole life, started on first use
and stopped by :meth:`ChatCompletionsClient.close` (or, as a safety net, when the client is
garbage collected or the interpreter exits); the aiohttp session and async credentials live
on that loop. Streams cross over through one pump task and a memory object stream: the
consumer takes every batch of updates that is ready in one hop (never one hop per token).
Ctrl-C during a call or while iterating cancels the request on the loop and releases its
connection; the client stays usable.

A hop is one ``call_soon_threadsafe`` into the loop, which starts a task running the
coroutine inside its own cancel scope, and one wait on a :class:`concurrent.futures.Future`
for its outcome: one wake-up each way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._accumulate import text_delta
from ._auth import Credential
from ._config import RetryPolicy, Timeout
from ._endpoint import UNSET, Endpoint, EndpointKind
from .aio._client import ChatCompletionsClient as _AsyncClient
from .aio._stream import AsyncChatCompletionsStream
from .exceptions import InferenceError
from .models import ChatCompletions, ModelInfo, StreamingChatCompletionsUpdate

if TYPE_CHECKING:
    import aiohttp

__all__ = ["ChatCompletionsClient", "ChatCompletionsStream"]

T = TypeVar("T")

_BATCHES_AHEAD = 4  # how many batches the pump may read ahead of a slow consumer
_LIVENESS_CHECK = 1.0  # seconds between checks that the loop thread still runs, while waiting
_CANCEL_WAIT = 5.0  # seconds to wait for a cancelled call to finish its clean-up
_STOP_WAIT = 5.0  # seconds close() waits for the loop's tasks to end after cancelling them
_CLOSED_MESSAGE = "the client is closed; create a new client"


def _closed_error() -> InferenceError:
    return InferenceError(_CLOSED_MESSAGE)


class _Job(Generic[T]):
    """One coroutine run on the loop for a waiting thread (or for nobody: a pump)."""

    __slots__ = ("abandoned", "discard", "func", "future", "scope", "settled", "task")

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[None]] | None = None,
    ) -> None:
        self.func = func
        self.discard = discard  # releases a result that nobody will take (after Ctrl-C)
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        # The rest is touched on the loop thread only.
        self.scope: anyio.CancelScope | None = None
        self.task: asyncio.Task[None] | None = None
        self.abandoned = False
        self.settled: concurrent.futures.Future[None] | None = None

    def cancel(self) -> None:
        """Cancel the job (loop thread only)."""
        self.abandoned = True
        if self.scope is not None:
            self.scope.cancel()


class _Portal:
    """One event-loop thread for one sync client: started on first use, stopped once.

    ``closer`` is awaited on the loop when the portal stops (it closes the async client).
    """

    def __init__(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closer = closer
        self._lock = threading.Lock()
        self._stopped = False
        self._cm: AbstractContextManager[BlockingPortal] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Touched on the loop thread only:
        self._jobs: set[_Job[Any]] = set()
        self._receivers: weakref.WeakSet[MemoryObjectReceiveStream[Any]] = weakref.WeakSet()
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._stopped:
                raise _closed_error()
            if self._loop is None:
                cm = start_blocking_portal("asyncio", name="inference-loop")
                portal = cm.__enter__()
                try:
                    self._loop, self._thread = portal.call(_loop_and_thread)
                except BaseException:
                    cm.__exit__(None, None, None)
                    raise
                self._cm = cm
            return self._loop

    @property
    def started(self) -> bool:
        """True while the loop runs."""
        return self._loop is not None

    def stop(self) -> None:
        """Cancel what still runs, await ``closer()``, stop the loop and join its thread.

        Idempotent; safe from any thread (from the loop thread itself it does not wait).
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, cm, thread = self._loop, self._cm, self._thread
            self._loop = self._cm = None
        if loop is None or cm is None:
            return
        if threading.current_thread() is thread:
            # Called on the loop itself (a finalizer run by the garbage collector there):
            # it cannot wait for itself; shut down in the background instead.
            loop.call_soon(self._spawn_detached, self._shutdown, cm)
            return
        try:
            # If the loop is already gone, nothing is left to clean up there.
            with suppress(RuntimeError, InferenceError):
                job: _Job[None] = _Job(self._shutdown)
                loop.call_soon_threadsafe(self._spawn, job, True)
                self._wait(job, loop, thread)
        finally:
            cm.__exit__(None, None, None)

    async def _shutdown(self, cm: AbstractContextManager[BlockingPortal] | None = None) -> None:
        self._closing = True
        me = asyncio.current_task()
        jobs = [job for job in self._jobs if job.task is not None and job.task is not me]
        for job in jobs:
            job.cancel()
        tasks = [job.task for job in jobs if job.task is not None and not job.task.done()]
        if tasks:
            with anyio.move_on_after(_STOP_WAIT):
                await asyncio.wait(tasks)
        for receiver in list(self._receivers):
            receiver.close()
        try:
            await self._closer()
        finally:
            if cm is not None:
                # Stopping from the loop thread: let a helper thread stop the portal.
                threading.Thread(target=cm.__exit__, args=(None, None, None), daemon=True).start()

    # -- hops --------------------------------------------------------------------------------

    def call(
        self,
        func: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Run ``func()`` on the loop and wait for its result.

        Ctrl-C (or any exception raised in this thread while waiting) cancels it on the loop
        and waits for its clean-up; a result that nobody will take goes to ``discard``.
        """
        loop = self._get_loop()
        thread = self._thread
        if threading.current_thread() is thread:
            raise InferenceError(
                "the sync client was called from its own event loop thread, where it would "
                "wait for itself forever; in async code use inference.aio.ChatCompletionsClient "
                "with await"
            )
        job = _Job(func, discard)
        try:
            loop.call_soon_threadsafe(self._spawn, job, False)
        except RuntimeError:
            raise _closed_error() from None
        return self._wait(job, loop, thread)

    def call_soon(self, func: Callable[[], Awaitable[None]]) -> bool:
        """Start ``func()`` on the loop without waiting; False if the loop is not running."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(self._spawn_detached, func)
        except RuntimeError:
            return False
        return True

    def close_if_gone(self, receiver: MemoryObjectReceiveStream[Any]) -> None:
        """Close ``receiver`` here if the loop thread has ended (else the loop closes it)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            receiver.close()

    def _wait(
        self, job: _Job[T], loop: asyncio.AbstractEventLoop, thread: threading.Thread | None
    ) -> T:
        future = job.future
        try:
            while True:
                try:
                    return future.result(_LIVENESS_CHECK)
                except TimeoutError:
                    if future.done():
                        raise  # the call itself timed out
                    if thread is None or not thread.is_alive():
                        raise _closed_error() from None
        except BaseException:
            if not future.done():
                self._abandon(job, loop)
            raise

    def _abandon(self, job: _Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        """Cancel ``job`` on the loop and wait (bounded) until it has cleaned up."""
        settled: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            loop.call_soon_threadsafe(self._cancel, job, settled)
        except RuntimeError:
            return  # the loop is gone
        with suppress(TimeoutError):
            settled.result(_CANCEL_WAIT)

    def _cancel(self, job: _Job[Any], settled: concurrent.futures.Future[None]) -> None:
        # Loop thread.
        task = job.task
        if task is not None and not task.done():
            job.settled = settled
            job.cancel()
            return
        job.abandoned = True
        future = job.future
        if job.discard is not None and future.done() and future.exception() is None:
            # Finished just before the interrupt: release what it produced.
            discard = job.discard
            result = future.result()

            async def release() -> None:
                try:
                    await discard(result)
                finally:
                    settled.set_result(None)

            self._spawn_detached(release)
        else:
            settled.set_result(None)

    def _spawn(self, job: _Job[Any], internal: bool) -> None:
        # Loop thread.
        if self._closing and not internal:
            job.future.set_exception(_closed_error())
            return
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        self._jobs.add(job)

    def _spawn_detached(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        # Loop thread: a job that nobody waits for.
        self._spawn(_Job(functools.partial(func, *args)), True)

    def start(self, func: Callable[[], Awaitable[None]]) -> _Job[None]:
        """Start a background job (loop thread only); it is cancelled when the portal stops."""
        job: _Job[None] = _Job(func)
        self._spawn(job, True)
        return job

    def track(self, receiver: MemoryObjectReceiveStream[Any]) -> None:
        """Close ``receiver`` when the portal stops, if nobody did (loop thread only)."""
        self._receivers.add(receiver)

    async def _run(self, job: _Job[T]) -> None:
        future = job.future
        try:
            with anyio.CancelScope() as scope:
                job.scope = scope
                if job.abandoned:
                    scope.cancel()
                result = await job.func()
                if job.abandoned and job.discard is not None:
                    # Done, but the caller gave up waiting: release what it produced.
                    with anyio.CancelScope(shield=True):
                        await job.discard(result)
                elif future.set_running_or_notify_cancel():
                    future.set_result(result)
            if scope.cancelled_caught and not future.done():
                future.set_exception(_closed_error())
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:  # the loop itself is being torn down
                    future.set_exception(_closed_error())
            if not isinstance(exc, Exception):
                raise
        finally:
            self._jobs.discard(job)
            if job.settled is not None:
                job.settled.set_result(None)


async def _loop_and_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    return asyncio.get_running_loop(), threading.current_thread()


class ChatCompletionsClient:
    """Sync client for chat completions: the same constructor, methods and parameters as
    :class:`inference.aio.ChatCompletionsClient`, which it runs on a background event loop.

    ``endpoint``: the URL of an Azure AI model inference endpoint (``https://<resource>.services.
    ai.azure.com/models``), a serverless endpoint, an Azure OpenAI deployment (``.../openai/
    deployments/<name>``) or v1 (``.../openai/v1``) URL, GitHub Models, or any
    OpenAI-compatible server (``http://localhost:8000/v1``). The kind is detected from the URL;
    ``endpoint_kind=``, ``api_version=``, ``key_header=`` and ``token_scope=`` override it.

    ``credential``: an ``AzureKeyCredential``, a key string, an azure-identity credential
    (e.g. ``DefaultAzureCredential()``), or None for servers without auth.

    Default request parameters (``model``, ``temperature``, ``max_tokens``, ...) given here
    apply to every :meth:`complete` call that does not set them. ``headers`` are sent with
    every request. ``timeout`` (:class:`inference.Timeout` or seconds) and ``retry``
    (:class:`inference.RetryPolicy` or a number of retries) set the defaults for every call.
    ``session``: an ``aiohttp.ClientSession`` to use (it must belong to the client's own event
    loop, so it is rarely useful here). ``trust_env``: let the session read proxy settings and
    ``.netrc`` from the environment. ``log_request_body``: log request bodies at DEBUG.

    Use it as ``with ChatCompletionsClient(...) as client:`` or call :meth:`close`. One client
    may be shared by many threads. Its event loop starts on first use; Ctrl-C during a call
    cancels the request and leaves the client usable.
    """

    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        *,
        model: str | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        response_format: Any = None,
        stop: Sequence[str] | str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        seed: int | None = None,
        model_extras: Mapping[str, Any] | None = None,
        api_version: Any = UNSET,
        endpoint_kind: EndpointKind | str | None = None,
        key_header: str | Sequence[str] | None = None,
        token_scope: str | None = None,
        credential_scopes: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
        session: aiohttp.ClientSession | None = None,
        trust_env: bool = False,
        log_request_body: bool = False,
    ) -> None:
        # Building the async client needs no event loop: arguments are checked right here.
        self._async = _AsyncClient(
            endpoint,
            credential,
            model=model,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            response_format=response_format,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            seed=seed,
            model_extras=model_extras,
            api_version=api_version,
            endpoint_kind=endpoint_kind,
            key_header=key_header,
            token_scope=token_scope,
            credential_scopes=credential_scopes,
            headers=headers,
            timeout=timeout,
            retry=retry,
            session=session,
            trust_env=trust_env,
            log_request_body=log_request_body,
        )
        self._portal = _Portal(self._async.close)
        # Safety net: stop the loop when the client is garbage collected or at exit.
        self._finalizer = weakref.finalize(self, self._portal.stop)

    @property
    def endpoint(self) -> Endpoint:
        """The resolved endpoint: kind, URLs, api-version, key headers and token scope."""
        return self._async.endpoint

    def __repr__(self) -> str:
        return repr(self._async).replace("<", "<sync ", 1)

    @overload
    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[Any] | None = None,
        stream: Literal[False] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        response_format: Any = None,
        stop: Sequence[str] | str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        seed: int | None = None,
        model: str | None = None,
        n: int | None = None,
        user: str | None = None,
        stream_options: Mapping[str, Any] | None = None,
        model_extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ChatCompletions: ...

    @overload
    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[Any] | None = None,
        stream: Literal[True],
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        response_format: Any = None,
        stop: Sequence[str] | str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        seed: int | None = None,
        model: str | None = None,
        n: int | None = None,
        user: str | None = None,
        stream_options: Mapping[str, Any] | None = None,
        model_extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ChatCompletionsStream: ...

    @overload
    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[Any] | None = None,
        stream: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        response_format: Any = None,
        stop: Sequence[str] | str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        seed: int | None = None,
        model: str | None = None,
        n: int | None = None,
        user: str | None = None,
        stream_options: Mapping[str, Any] | None = None,
        model_extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ChatCompletions | ChatCompletionsStream: ...

    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        messages: Sequence[Any] | None = None,
        stream: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        response_format: Any = None,
        stop: Sequence[str] | str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        seed: int | None = None,
        model: str | None = None,
        n: int | None = None,
        user: str | None = None,
        stream_options: Mapping[str, Any] | None = None,
        model_extras: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ChatCompletions | ChatCompletionsStream:
        """Send a chat-completions request.

        ``messages``: the conversation (message models, a response's message, or dicts).
        ``stream=True`` returns a :class:`ChatCompletionsStream` of updates once the
        first event has arrived; otherwise the whole :class:`~inference.models.ChatCompletions`.
        Sampling parameters (``temperature``, ``top_p``, ``max_tokens``, ``stop``, penalties,
        ``seed``, ``n``), ``response_format`` (``"text"``, ``"json_object"``,
        ``JsonSchemaFormat``, ...), ``tools`` and ``tool_choice`` override the client's
        defaults. ``stream_options={"include_usage": True}`` asks for a final usage update.
        ``model_extras`` go at the body root with the header ``extra-parameters:
        pass-through``. ``body`` (positional) sends a complete JSON body as given instead.
        ``headers``, ``timeout`` and ``retry`` apply to this call only.
        """
        call = functools.partial(
            self._async.complete,
            body,
            messages=messages,
            stream=stream,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            response_format=response_format,
            stop=stop,
            tools=tools,
            tool_choice=tool_choice,
            seed=seed,
            model=model,
            n=n,
            user=user,
            stream_options=stream_options,
            model_extras=model_extras,
            headers=headers,
            timeout=timeout,
            retry=retry,
        )
        result: ChatCompletions | _Pumped = self._portal.call(
            functools.partial(self._complete, call), _discard
        )
        if isinstance(result, _Pumped):
            return ChatCompletionsStream(self, result)
        return result

    async def _complete(
        self, call: Callable[[], Awaitable[ChatCompletions | AsyncChatCompletionsStream]]
    ) -> ChatCompletions | _Pumped:
        # On the loop: the request, and for a stream its pump, in the same hop.
        result = await call()
        if isinstance(result, AsyncChatCompletionsStream):
            return _Pumped.start(result, self._portal)
        return result

    def get_model_info(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ModelInfo:
        """What ``/info`` says about the model behind the endpoint (Azure AI endpoints).

        Endpoint kinds without ``/info`` (Azure OpenAI v1, GitHub Models, OpenAI-compatible
        servers) raise :class:`~inference.exceptions.ResourceNotFoundError` without a request.
        """
        return self._portal.call(
            functools.partial(
                self._async.get_model_info, headers=headers, timeout=timeout, retry=retry
            )
        )

    def close(self) -> None:
        """Close the connection pool (not a session you passed in) and stop the background
        event loop; calls still running in other threads are cancelled. Idempotent."""
        self._finalizer()

    def __enter__(self) -> ChatCompletionsClient:
        """Return the client; leaving the block closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()


class _Pumped:
    """An async stream with its pump task and the receiving end of the pump's memory stream."""

    __slots__ = ("pump", "receive", "stream")

    def __init__(
        self,
        stream: AsyncChatCompletionsStream,
        receive: MemoryObjectReceiveStream[Any],
        pump: _Job[None],
    ) -> None:
        self.stream = stream
        self.receive = receive
        self.pump = pump

    @classmethod
    def start(cls, stream: AsyncChatCompletionsStream, portal: _Portal) -> _Pumped:
        """Create the memory stream and start the pump (loop thread only)."""
        send, receive = anyio.create_memory_object_stream[Any](_BATCHES_AHEAD)
        portal.track(receive)
        pump = portal.start(functools.partial(_pump, stream, send))
        return cls(stream, receive, pump)

    async def shutdown(self) -> None:
        """Stop the pump, release the connection, close the memory stream (loop thread)."""
        pump = self.pump
        pump.cancel()
        task = pump.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_WAIT):
                await asyncio.wait([task])
        await self.stream.aclose()
        self.receive.close()

    async def receive_ready(self) -> list[Any]:
        """Every item the pump has sent that is ready now (waiting for at least one).

        Items are batches (lists) of updates or an exception; ``_END`` ends the list when
        the pump has finished (the memory stream is then closed).
        """
        receive = self.receive
        items: list[Any] = []
        try:
            items.append(await receive.receive())
            while True:
                items.append(receive.receive_nowait())
        except anyio.WouldBlock:
            return items
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            receive.close()
            items.append(_END)
            return items


_END = object()


async def _discard(result: Any) -> None:
    """Release a result nobody will take (a call interrupted just as it finished)."""
    if isinstance(result, _Pumped):
        await result.shutdown()


async def _pump(stream: AsyncChatCompletionsStream, send: MemoryObjectSendStream[Any]) -> None:
    """Move batches of ready updates from the async stream into the memory stream.

    A failure is sent as the last item; the end of the stream closes the memory stream.
    """
    with send:
        try:
            while True:
                batch = await stream._next_batch()
                if not batch:
                    return
                await send.send(batch)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stream.aclose()  # the consumer went away
        except Exception as exc:
            await stream.aclose()
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise


class ChatCompletionsStream:
    """An iterator of :class:`~inference.models.StreamingChatCompletionsUpdate` (the sync twin
    of :class:`inference.aio.AsyncChatCompletionsStream`).

    Use it as ``with stream:`` (or call :meth:`close`) so the connection is released even when
    you stop early. The connection goes back to the pool as soon as ``data: [DONE]`` arrives;
    :meth:`close`, an error, Ctrl-C, or dropping the stream (a ``break`` out of a loop over
    ``client.complete(..., stream=True)``) closes it.

    After the stream ended, :meth:`get_final_completion` returns the assembled
    :class:`~inference.models.ChatCompletions`; :meth:`text_deltas` iterates only the text.

    Errors while iterating: :class:`~inference.exceptions.StreamServiceError` (the service
    sent an error event), :class:`~inference.exceptions.StreamInterruptedError` (the body ended
    before ``[DONE]``), :class:`~inference.exceptions.IdleTimeoutError` (no event within
    ``Timeout.idle``). Each carries ``partial``: what was received so far, assembled.
    """

    def __init__(self, client: ChatCompletionsClient, pumped: _Pumped) -> None:
        self._client = client  # keeps the client (and its loop) alive while the stream is
        self._portal = client._portal
        self._pumped = pumped
        self._stream = pumped.stream
        self._buffer: deque[StreamingChatCompletionsUpdate] = deque()
        self._error: BaseException | None = None
        self._ended = False  # nothing more to hand out
        self._closed = False  # nothing left to release on the loop
        self.request_id = pumped.stream.request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = pumped.stream.response_headers
        """The response headers (case-insensitive mapping)."""

    # -- iteration ---------------------------------------------------------------------------

    def __iter__(self) -> ChatCompletionsStream:
        """Return the stream itself."""
        return self

    def __next__(self) -> StreamingChatCompletionsUpdate:
        """The next update; waits for the next batch when none is buffered."""
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        if self._ended or self._error is not None:
            return self._end()
        try:
            items = self._portal.call(self._pumped.receive_ready)
        except BaseException:
            self._ended = True
            self.close()
            raise
        for item in items:
            if type(item) is list:
                buffer.extend(item)
            elif item is _END:
                self._ended = self._closed = True
            else:
                self._error = item
        if buffer:
            return buffer.popleft()
        return self._end()

    def _end(self) -> StreamingChatCompletionsUpdate:
        # Nothing buffered after a hop: raise the pump's error, or end the iteration.
        self._ended = True
        error, self._error = self._error, None
        if error is not None:
            self.close()
            raise error
        raise StopIteration

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        self._ended = True
        self._error = None
        if self._closed:
            return
        self._closed = True
        pumped = self._pumped
        try:
            self._portal.call(pumped.shutdown)
        except InferenceError:
            self._portal.close_if_gone(pumped.receive)

    def __enter__(self) -> ChatCompletionsStream:
        """Return the stream; leaving the block closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream."""
        self.close()

    def __del__(self) -> None:
        # Dropped without close() (a bare ``break``): clean up on the loop, without waiting.
        if getattr(self, "_closed", True):
            return
        self._closed = True
        pumped = self._pumped
        if not self._portal.call_soon(pumped.shutdown):
            self._portal.close_if_gone(pumped.receive)

    # -- results -----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self._stream.finished

    def get_final_completion(self) -> ChatCompletions:
        """The whole answer assembled from the updates, as a non-streamed call returns it.

        Raises :class:`~inference.exceptions.StreamError` if the stream has not finished:
        iterate it to the end first, or use ``stream.until_done()``.
        """
        return self._on_loop(self._stream.get_final_completion)

    def partial_completion(self) -> ChatCompletions:
        """What has arrived so far, assembled (also works after an error or an early stop)."""
        return self._on_loop(self._stream.partial_completion)

    def _on_loop(self, func: Callable[[], T]) -> T:
        # The pump updates the stream on the loop: read it there while the pump may run.
        if self._pumped.pump.future.done() or not self._portal.started:
            return func()

        async def read() -> T:
            return func()

        try:
            return self._portal.call(read)
        except InferenceError as exc:
            if str(exc) != _CLOSED_MESSAGE:
                raise
            return func()  # the loop stopped meanwhile: nothing changes the stream any more

    def until_done(self) -> ChatCompletions:
        """Read the rest of the stream and return the assembled completion."""
        for _ in self:
            pass
        return self.get_final_completion()

    def text_deltas(self) -> Iterator[str]:
        """Iterate only the non-empty text deltas of the first choice (for UI code)."""
        for update in self:
            text = text_delta(update)
            if text:
                yield text
