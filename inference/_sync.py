"""The sync API: the async core, run on an anyio blocking portal.

No behaviour lives here: every method is one hop into :mod:`inference.aio`. Each sync client
owns one portal (an event loop in a daemon thread) for its whole life, started on first use
and stopped by :meth:`ChatCompletionsClient.close` (or, as a safety net, when the client is
garbage collected or the interpreter exits); the aiohttp session and async credentials live
on that loop. Ctrl-C during a call or while iterating cancels the request on the loop and
releases its connection; the client stays usable.

The portal (:mod:`inference._portal`, on anyio's ``BlockingPortal``) makes a non-streamed
call exactly one hop: one hand-off to the loop and one back. Ctrl-C cancels the call's task
and waits until it has cleaned up. A client used before ``os.fork()`` refuses calls in the
child; one not used yet works there.

A stream crosses over through a pump task and a memory object stream. The async stream's
parser (:class:`inference._streamparser.StreamParser`) is split in two: the loop keeps its
input side, and the consuming thread gets its output side (the events read so far, the
accumulator, the end). The pump (on the loop) reads the network, decodes the server-sent
events and sends batches of events, not yet parsed (bytes), a few batches ahead of the
consumer; the deadlines and the release of the connection at ``[DONE]`` stay on the loop.
The consuming thread takes every batch that is ready in one hop (never one hop per token)
and its parser turns the events into updates one by one, as they are asked for. So an
update is made in the thread that uses it and dies young, as in the async API (a long
stream costs no garbage collections), and the loop reads ahead while the consumer parses.
The end of the stream (``[DONE]``, a cut, an error) comes as the last item of the last
batch; an error found while parsing closes the stream on the loop.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Unpack, overload

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._accumulate import text_delta
from ._auth import Credential
from ._config import RetryPolicy, Timeout
from ._endpoint import Endpoint
from ._keywords import BODY_EXTRAS, EXTRAS, checked_keywords
from ._options import ChatClientOptions
from ._params import CompleteParams, MessageInput, ToolInput, ToolLoopParams
from ._portal import Portal
from ._streamparser import Handoff, StreamParser, StreamState
from ._tools import DEFAULT_MAX_ROUNDS, ToolRunEvent, ToolRunResult, iterate_on_portal
from ._tracing import traced_sync_stream
from .aio._client import ChatCompletionsClient as _AsyncClient
from .aio._stream import AsyncChatCompletionsStream
from .exceptions import InferenceError, StreamError
from .models import ChatCompletions, ModelInfo, StreamingChatCompletionsUpdate

if TYPE_CHECKING:
    pass

__all__ = ["ChatCompletionsClient", "ChatCompletionsStream"]

_EVENTS = 4096  # the most events (not parsed yet: bytes) in one batch of the pump
_BATCHES_AHEAD = 2  # how many batches the pump may read ahead of a slow consumer
_CANCEL_WAIT = 5.0  # seconds to wait for a stopped pump to end


class ChatCompletionsClient:
    """Sync client for chat completions: the same constructor, methods and parameters as
    :class:`inference.aio.ChatCompletionsClient`, which it runs on a background event loop.

    ``endpoint``: the URL of an Azure AI model inference endpoint (``https://<resource>.services.
    ai.azure.com/models``), a serverless endpoint, an Azure OpenAI deployment (``.../openai/
    deployments/<name>``) or v1 (``.../openai/v1``) URL, GitHub Models, or any
    OpenAI-compatible server (``http://localhost:8000/v1``). The kind is detected from the URL;
    ``endpoint_kind=``, ``api_version=``, ``key_header=`` and ``token_scope=`` (or
    ``credential_scopes=``, azure-core's spelling) override it.

    ``credential``: an ``AzureKeyCredential``, a key string, an azure-identity credential
    (e.g. ``DefaultAzureCredential()``), or None for servers without auth.

    Default request parameters (``model``, ``temperature``, ``max_tokens``, ...) given here
    apply to every :meth:`complete` call that does not set them; ``model_extras`` are sent
    with every request, at the body root. ``headers`` are sent with
    every request. ``timeout`` (:class:`inference.Timeout` or seconds) and ``retry``
    (:class:`inference.RetryPolicy` or a number of retries) set the defaults for every call.
    ``session``: an ``aiohttp.ClientSession`` to use (it must belong to the client's own event
    loop, so it is rarely useful here). ``trust_env``: let the session read proxy settings and
    ``.netrc`` from the environment. ``log_request_body``: log request bodies at DEBUG.
    ``logging_enable``: log each request and response at DEBUG on the ``inference`` logger,
    bodies and headers included, keys and tokens redacted (azure-core's name).
    ``user_agent``: your application's name and version (``"myapp/1.2"``), sent before the
    library's own in the ``User-Agent`` header.
    ``enforce_https``: refuse to send a key or token over plain ``http://`` to a host that is
    not a loopback address (the default); ``False`` allows it, for a server on a network you
    trust (vLLM or Ollama on your LAN): anyone on the path can read the key.
    ``response_hook``: called with the status and headers of every response head received
    (each attempt, retries included), e.g. to read ``x-ratelimit-*`` headers; it runs on the
    client's event loop thread, must not block, and what it raises ends the call.
    ``max_connections``, ``max_response_bytes`` and ``max_stream_bytes``: the pool size, the
    largest body read and the most bytes of one stream, as on
    :class:`inference.aio.ChatCompletionsClient`. The keywords are declared once, in
    :class:`~inference.ChatClientOptions`; an unknown one raises
    :class:`~inference.exceptions.RequestValidationError` naming the closest one.

    Use it as ``with ChatCompletionsClient(...) as client:`` or call :meth:`close`. One client
    may be shared by many threads. Its event loop starts on first use; Ctrl-C during a call
    cancels the request and leaves the client usable. Called inside a running event loop, it
    blocks that loop: it warns once (``RuntimeWarning``; use :mod:`inference.aio` there). A
    client used before ``os.fork()`` refuses calls in the child process with
    :class:`~inference.exceptions.InferenceError` (its connections are the parent's): create
    a new client there; one not used before the fork works in the child.
    """

    @checked_keywords(EXTRAS)
    def __init__(
        self,
        endpoint: str,
        credential: Credential | None = None,
        **options: Unpack[ChatClientOptions],
    ) -> None:
        # Building the async client needs no event loop: arguments are checked right here.
        self._async = _AsyncClient(endpoint, credential, **options)
        self._portal = Portal(self._async.close)
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
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[False] | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions: ...

    @overload
    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: Literal[True],
        **params: Unpack[CompleteParams],
    ) -> ChatCompletionsStream: ...

    @overload
    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: bool | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions | ChatCompletionsStream: ...

    def complete(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        messages: Sequence[MessageInput] | None = None,
        stream: bool | None = None,
        **params: Unpack[CompleteParams],
    ) -> ChatCompletions | ChatCompletionsStream:
        """Send a chat-completions request.

        ``messages``: the conversation (message models, a response's message, or dicts such
        as ``{"role": "user", "content": "..."}``).
        ``stream=True`` returns a :class:`ChatCompletionsStream` of updates once the
        first event has arrived; otherwise the whole :class:`~inference.models.ChatCompletions`.
        The request parameters (:class:`~inference.RequestParams`: ``model``,
        ``temperature``, ``top_p``, ``max_tokens``, ``max_completion_tokens``, ``stop``,
        penalties, ``seed``, ``n``, ``user``, ``response_format``, ``tools``,
        ``tool_choice``) override the client's defaults and are checked before anything is
        sent. ``stream_options={"include_usage": True}`` asks for a final usage update.
        ``model_extras`` go at the body root with the header ``extra-parameters:
        pass-through``; ``extra_body`` is merged at the body root as given (a key set twice
        raises). ``body`` (the first argument, or ``body=``) sends a complete JSON body as
        given instead. ``headers`` (or ``extra_headers``), ``extra_query``, ``timeout`` and
        ``retry`` apply to this call only.
        A class as ``response_format`` (attrs, dataclass, TypedDict or pydantic model) asks
        for JSON of its strict schema and sets ``message.parsed`` to an instance of it.
        """
        call = functools.partial(
            self._async.complete,
            body,
            messages=messages,
            stream=stream,
            **params,
        )
        result: ChatCompletions | _Pumped = self._portal.call(
            functools.partial(self._complete, call), _discard
        )
        if isinstance(result, _Pumped):
            return traced_sync_stream(ChatCompletionsStream(self, result), result.stream)
        return result

    async def _complete(
        self, call: Callable[[], Awaitable[ChatCompletions | AsyncChatCompletionsStream]]
    ) -> ChatCompletions | _Pumped:
        # On the loop: a stream gets its pump (and is closed if the portal stops first).
        result = await call()
        if isinstance(result, AsyncChatCompletionsStream):
            return _Pumped(result, self._portal)
        return result

    def _keep_model_info(self, info: ModelInfo) -> None:
        self._async._keep_model_info(info)

    @checked_keywords()
    def get_model_info(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | int | None = None,
    ) -> ModelInfo:
        """What ``/info`` says about the model behind the endpoint (Azure AI endpoints).

        The first answer is kept for the client's life (a call with other ``headers=`` asks
        once for itself; a failure is not kept), as azure-ai-inference does. Calls made while
        the first request is under way wait for its answer (or its error) instead of sending
        their own.

        Endpoint kinds without ``/info`` (Azure OpenAI v1, GitHub Models, OpenAI-compatible
        servers) raise :class:`~inference.exceptions.ResourceNotFoundError` without a request.
        """
        return self._portal.call(
            functools.partial(
                self._async.get_model_info, headers=headers, timeout=timeout, retry=retry
            )
        )

    @checked_keywords(BODY_EXTRAS)
    def run_tools(
        self,
        *,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolInput],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Unpack[ToolLoopParams],
    ) -> ToolRunResult:
        """Let the model use Python functions as tools until it answers; the result holds
        the final completion and the whole conversation.

        ``tools``: plain or async functions with type hints and a docstring (or
        :func:`inference.tool` objects), beside tool definitions if you like. Each round the
        model is called with ``messages`` and every call it asks for is run, all at the same
        time (sync functions in worker threads), after its arguments are checked against the
        function's signature; the assistant turn and the tool results are appended, and the
        model is asked again, until it answers without tool calls.

        A tool that raises or returns a value JSON cannot carry, or arguments that do not
        fit, go back to the model as an ``Error: ...`` tool message (an exception's message
        cut to its first 4,000 characters, saying how many more were cut);
        ``raise_tool_errors=True`` raises
        :class:`~inference.exceptions.ToolCallError` (the whole message, the tool's exception
        as its cause) when a tool raises or returns such a value instead. More than
        ``max_rounds`` rounds of tool calls raise
        :class:`~inference.exceptions.ToolRoundsExceededError`. A ``tool_choice`` that forces a
        call (``"required"`` or a named tool) applies until tools have run once, then becomes
        ``"auto"`` so the model can answer; ``reset_tool_choice=False`` keeps it. Other keyword
        parameters (``model``, ``temperature``, ``tool_choice``, ``response_format``, ...) go
        to every :meth:`complete` call; ``n`` other than 1 (here, in ``model_extras`` or
        ``extra_body``, or as the client's default) is refused, since the loop continues one
        answer. An error raised by a model call in
        the loop carries ``messages``: the conversation so far, tool results included.
        """
        return self._portal.call(
            functools.partial(
                self._async.run_tools,
                messages=messages,
                tools=tools,
                max_rounds=max_rounds,
                raise_tool_errors=raise_tool_errors,
                reset_tool_choice=reset_tool_choice,
                **params,
            )
        )

    @checked_keywords(BODY_EXTRAS)
    def stream_tools(
        self,
        *,
        messages: Sequence[MessageInput],
        tools: Sequence[ToolInput],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        raise_tool_errors: bool = False,
        reset_tool_choice: bool = True,
        **params: Unpack[ToolLoopParams],
    ) -> Iterator[ToolRunEvent]:
        """The same loop as :meth:`run_tools`, streamed: an iterator of events as they happen.

        :class:`~inference.TextDeltaEvent` for each piece of text, :class:`~inference.
        ToolCallEvent` when the model asks for a call, :class:`~inference.ToolResultEvent` when
        it has run (``error`` set if it failed), and last :class:`~inference.ToolRunDoneEvent`
        with the :class:`~inference.ToolRunResult`. Parameters as for :meth:`run_tools`.
        """
        return iterate_on_portal(
            self._portal,
            functools.partial(
                self._async.stream_tools,
                messages=messages,
                tools=tools,
                max_rounds=max_rounds,
                raise_tool_errors=raise_tool_errors,
                reset_tool_choice=reset_tool_choice,
                **params,
            ),
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


async def _discard(result: Any) -> None:
    """Release a result nobody will take (a call interrupted just as it finished)."""
    if isinstance(result, _Pumped):
        await result.shutdown()


class _Pumped:
    """An async stream, its pump task and the receiving end of the pump's memory object
    stream; ``parser`` is the output side of the stream's parser, for the consuming thread.
    Created on the loop thread; its coroutines run there (each in one hop)."""

    __slots__ = ("__weakref__", "parser", "pump", "receive", "stream")

    def __init__(self, stream: AsyncChatCompletionsStream, portal: Portal) -> None:
        send, receive = anyio.create_memory_object_stream[Handoff](_BATCHES_AHEAD)
        self.stream = stream
        self.parser: StreamParser = stream._parser.hand_over()
        self.receive = receive
        self.pump = portal.start(functools.partial(_pump, stream, send))
        portal.track(self)

    async def receive_ready(self) -> list[Handoff]:
        """Every batch the pump has sent that is ready now (waiting for at least one). Once
        the pump has stopped, a last batch says so (``[StreamState.CLOSED]``: nothing more
        comes; a parser that already has its end ignores it)."""
        receive = self.receive
        items: list[Handoff] = []
        try:
            items.append(await receive.receive())
            while True:
                items.append(receive.receive_nowait())
        except anyio.WouldBlock:
            if StreamParser.ends(items[-1]):
                receive.close()  # the pump sends nothing after the end
            return items
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            receive.close()
            items.append([StreamState.CLOSED])
            return items

    async def _stop_pump(self) -> None:
        self.pump.cancel()
        await self.pump.wait(_CANCEL_WAIT)
        self.receive.close()

    async def shutdown(self) -> None:
        """Stop the pump and close the stream, releasing its connection."""
        await self._stop_pump()
        await self.stream.aclose()


async def _pump(stream: AsyncChatCompletionsStream, send: MemoryObjectSendStream[Handoff]) -> None:
    """Move batches of events read (not parsed) from the async stream into the memory object
    stream, the end of the stream in the last one; then close it."""
    with send:
        try:
            while True:
                events = await stream._next_events(_EVENTS)
                if not events:
                    return
                await send.send(events)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stream.aclose()  # the consumer went away
        except Exception as exc:  # a failure of the library itself: it ends the stream
            await stream.aclose()
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send([exc])


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
    ``Timeout.idle``), :class:`~inference.exceptions.ResponseTooLargeError` (the body grew
    past the client's ``max_stream_bytes``). Each carries ``partial``: what was received so
    far, assembled.

    Like any iterator, a stream is used from one thread at a time: the thread that iterates
    it parses its events, so :meth:`partial_completion` from another thread, while the first
    one iterates, may see a half-merged update.
    """

    def __init__(self, client: ChatCompletionsClient, pumped: _Pumped) -> None:
        self._client = client  # keeps the client (and its loop) alive while the stream is
        self._portal = client._portal
        self._pumped = pumped
        # The output side of the stream's parser, with what complete() read (the first
        # update); the pump passes on what the loop reads after that.
        self._parser = pumped.parser
        self._next = self._parser.next_update
        self._closed = False  # nothing left to release on the loop
        stream = pumped.stream
        self.request_id = stream.request_id
        """The request id the server returned (or the one the client sent)."""
        self.response_headers = stream.response_headers
        """The response headers (case-insensitive mapping)."""

    # -- iteration ---------------------------------------------------------------------------

    def __iter__(self) -> ChatCompletionsStream:
        """Return the stream itself."""
        return self

    def __next__(self) -> StreamingChatCompletionsUpdate:
        """The next update; takes every batch the pump has ready when none is left here."""
        try:
            update = self._next()
            if update is None:
                update = self._wait_for_update()
        except BaseException:
            self.close()  # an error (raised by the parser, with its partial) or Ctrl-C
            raise
        if update is None:
            raise StopIteration
        return update

    def _wait_for_update(self) -> StreamingChatCompletionsUpdate | None:
        parser = self._parser
        while parser.state is StreamState.OPEN:
            for batch in self._portal.call(self._pumped.receive_ready):
                parser.put_events(batch)
            if parser.state is not StreamState.OPEN:
                # The end came: the pump has finished (or finishes by itself), and the loop
                # has released or closed the connection.
                self._closed = True
            update = parser.next_update()
            if update is not None:
                return update
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and release the connection. Idempotent."""
        self._parser.close()
        if self._closed:
            return
        self._closed = True
        with suppress(InferenceError):  # the client is closed: it closed the connection
            self._portal.call(self._pumped.shutdown)

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
        self._portal.call_soon(self._pumped.shutdown)

    # -- results -----------------------------------------------------------------------------
    # The updates are parsed and accumulated in the thread that iterates (the pump only reads
    # and decodes): from that thread, the results can be read directly.

    @property
    def finished(self) -> bool:
        """True once ``data: [DONE]`` arrived."""
        return self._parser.state is StreamState.DONE

    def get_final_completion(self) -> ChatCompletions:
        """The whole answer assembled from the updates, as a non-streamed call returns it.

        Raises :class:`~inference.exceptions.StreamError` if the stream has not finished:
        iterate it to the end first, or use ``stream.until_done()``.
        """
        if not self._parser.complete:
            raise StreamError(
                "the stream has not finished: iterate it to the end first, or call "
                "'stream.until_done()'; partial_completion() gives what arrived so far"
            )
        return self._pumped.stream._final(self._parser)

    def partial_completion(self) -> ChatCompletions:
        """What has arrived so far, assembled (also works after an error or an early stop)."""
        return self._parser.partial()

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
