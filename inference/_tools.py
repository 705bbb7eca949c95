"""Tools from Python functions, and the loop that runs them for the model.

:func:`tool` wraps a plain or async function: its name, docstring and type hints become the
tool definition the model sees (see :mod:`inference._schema`). :func:`run_tool_events` is the
one implementation of the tool-running loop: it calls the model, runs the tools it asks for
(concurrently; sync functions in worker threads), appends the assistant and tool messages,
and repeats until the model answers. The clients' ``run_tools`` (the final result) and
``stream_tools`` (events as they happen) both drive it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._accumulate import text_delta
from ._parse import ParseFailure, load_json, structure, to_json_text
from ._schema import function_definition, parameter_hints
from ._values import show
from .exceptions import (
    InferenceError,
    RequestValidationError,
    ToolCallError,
    ToolRoundsExceededError,
)
from .models import ChatCompletions, ChatCompletionsToolCall, ChatResponseMessage, ToolMessage

if TYPE_CHECKING:
    from ._params import RequestDefaults

__all__ = [
    "TextDeltaEvent",
    "Tool",
    "ToolCallEvent",
    "ToolResultEvent",
    "ToolRunDoneEvent",
    "ToolRunEvent",
    "ToolRunResult",
    "iterate_on_portal",
    "run_tool_events",
    "tool",
    "tools_for_request",
]

DEFAULT_MAX_ROUNDS = 10

MAX_TOOL_ERROR_CHARS = 4_000
"""The most characters of a tool's exception message sent to the model in its ``Error: ...``
tool message; the rest is cut, the message saying how many characters were (the exception
itself, and a :class:`~inference.exceptions.ToolCallError`, keep the whole text)."""


@attrs.frozen
class Tool:
    """A Python function offered to the model as a tool (made by :func:`inference.tool`).

    ``definition`` is the wire tool definition (name, description, parameter schema);
    ``function`` is called with the model's arguments, checked against its signature.
    """

    function: Callable[..., Any]
    definition: dict[str, Any] = attrs.field(repr=False)
    parameters: Mapping[str, inspect.Parameter] = attrs.field(repr=False)

    @property
    def name(self) -> str:
        """The name the model calls the tool by."""
        name: str = self.definition["function"]["name"]
        return name


def tool(
    function: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    """Describe a plain or async function as a tool the model can call.

    The name is the function's (or ``name``), the description its docstring without the
    parameter section (or ``description``). A callable object (an instance whose class
    defines ``__call__``) is named after its class and described by its ``__call__``; a
    ``functools.partial`` by the function it calls, its bound keywords fixed (they are not
    parameters the model sees or may pass). The parameters' JSON schema comes from the type
    hints (str, int, float, bool, enums, ``Literal``, lists, ``X | None``, attrs classes,
    dataclasses, TypedDicts, pydantic models) with descriptions from the docstring's
    ``Args:`` (or NumPy / reST) section. Parameters with a default are optional.

    Passing the function itself in ``tools=[...]`` does the same with the defaults.
    """
    if not callable(function):
        raise RequestValidationError(f"tool() takes a function, got {type(function).__name__}")
    definition = {
        "type": "function",
        "function": function_definition(function, name=name, description=description),
    }
    return Tool(function, definition, parameter_hints(function))


def _as_tool(item: Any) -> Tool | None:
    if isinstance(item, Tool):
        return item
    if callable(item) and not isinstance(item, type) and not attrs.has(type(item)):
        return tool(item)
    return None


def tools_for_request(tools: Any) -> tuple[list[Any] | None, dict[str, Tool]]:
    """``tools`` with functions replaced by their definitions, and the functions by name.

    Tool definitions and dicts pass through unchanged (they have no function to run).
    Anything but a list or tuple (None aside) raises
    :class:`~inference.exceptions.RequestValidationError`: ``complete()``, ``run_tools()``
    and ``stream_tools()`` all check ``tools=`` here.
    """
    if tools is None:
        return None, {}
    if isinstance(tools, str | bytes) or not isinstance(tools, list | tuple):
        hint = ""
        if callable(tools) and not isinstance(tools, type):
            hint = f"; put it in a list: tools=[{getattr(tools, '__name__', 'func')}]"
        raise RequestValidationError(
            "tools must be a list of tools (functions, ChatCompletionsToolDefinition or "
            f"dicts), got {type(tools).__name__} {show(tools)}{hint}"
        )
    wire: list[Any] = []
    runnable: dict[str, Tool] = {}
    for item in tools:
        found = _as_tool(item)
        if found is None:
            wire.append(item)
            continue
        if found.name in runnable:
            raise RequestValidationError(
                f"two tools are named {found.name!r}; give one another name with "
                "inference.tool(func, name=...)"
            )
        runnable[found.name] = found
        wire.append(found.definition)
    return wire, runnable


# -- results and events -----------------------------------------------------------------------


@attrs.frozen
class ToolRunResult:
    """What ``run_tools`` returns: the final completion (the model's answer), the whole
    conversation (your messages, then each assistant turn and tool result, then the answer)
    and the number of rounds of tool calls it took."""

    completion: ChatCompletions
    messages: list[Any]
    rounds: int

    @property
    def content(self) -> str | None:
        """The text of the final answer."""
        return self.completion.choices[0].message.content if self.completion.choices else None

    @property
    def parsed(self) -> Any:
        """The final answer as an instance of the class given as ``response_format``."""
        return self.completion.choices[0].message.parsed if self.completion.choices else None


@attrs.frozen
class TextDeltaEvent:
    """A piece of the model's text, as it is streamed. ``round`` counts tool rounds from 0."""

    text: str
    round: int


@attrs.frozen
class ToolCallEvent:
    """The model asked for a tool call (it is about to run)."""

    call: ChatCompletionsToolCall
    round: int


@attrs.frozen
class ToolResultEvent:
    """A tool call finished: ``content`` went back to the model; ``error`` is the exception
    the tool raised, the reason its arguments were refused, or why its return value could not
    be sent (None on success)."""

    call: ChatCompletionsToolCall
    content: str
    error: BaseException | None
    round: int


@attrs.frozen
class ToolRunDoneEvent:
    """The last event: the model answered without asking for tools."""

    result: ToolRunResult


ToolRunEvent: TypeAlias = TextDeltaEvent | ToolCallEvent | ToolResultEvent | ToolRunDoneEvent
"""Any event of ``stream_tools``."""


# -- running one call -------------------------------------------------------------------------


class _BadArguments(Exception):
    """The model's arguments do not fit the function's signature."""


def _bind(found: Tool, arguments: str) -> dict[str, Any]:
    """The keyword arguments for ``found.function``, checked and converted to the hinted
    types (dicts become attrs classes, dataclasses, pydantic models ...)."""
    try:
        given = load_json(arguments or "{}")
    except ParseFailure as exc:
        raise _BadArguments(f"the arguments are {exc}") from None
    if not isinstance(given, dict):
        raise _BadArguments(f"the arguments must be a JSON object, got {arguments!r}")
    params = found.parameters
    unknown = sorted(set(given) - set(params))
    missing = [n for n, p in params.items() if p.default is p.empty and n not in given]
    if unknown or missing:
        parts = [f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else ""]
        raise _BadArguments(
            f"parameters {' and '.join(p for p in parts if p)}; {found.name} takes {list(params)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in given.items():
        try:
            kwargs[name] = structure(value, params[name].annotation)
        except ParseFailure as exc:
            raise _BadArguments(f"parameter {name!r}: {exc}") from None
    return kwargs


def _is_async(function: Callable[..., Any]) -> bool:
    """Whether calling ``function`` makes a coroutine: a coroutine function, a
    ``functools.partial`` of one, or a callable object whose ``__call__`` is ``async``."""
    while isinstance(function, functools.partial):
        function = function.func
    call = inspect.getattr_static(type(function), "__call__", None)  # a class's own method
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


async def _call(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    if _is_async(function):
        return await function(**kwargs)
    # A thread cannot be stopped: when the loop is cancelled (a timeout, Ctrl-C, a closed
    # stream_tools iterator) the caller is let go at once and the function is left to finish
    # on its own, its result dropped, instead of the cancellation waiting for it.
    result = await anyio.to_thread.run_sync(
        functools.partial(function, **kwargs), abandon_on_cancel=True
    )
    if inspect.isawaitable(result):
        result = await result
    return result


@attrs.define
class _Outcome:
    content: str = ""
    error: BaseException | None = None
    # What the tool did wrong, for ToolCallError: it raised, or returned a value that cannot
    # be sent (None when it worked, or when the model's arguments were refused).
    failure: str | None = None


async def _run_call(call: ChatCompletionsToolCall, runnable: Mapping[str, Tool]) -> _Outcome:
    name = call.function.name
    found = runnable.get(name)
    if found is None:
        error = _BadArguments(f"there is no tool named {name!r}; the tools are {list(runnable)}")
        return _Outcome(f"Error: {error}", error)
    try:
        kwargs = _bind(found, call.function.arguments)
    except _BadArguments as exc:
        return _Outcome(f"Error: invalid arguments for {name}: {exc}", exc)
    try:
        result = await _call(found.function, kwargs)
    except Exception as exc:
        raised = f"{name} raised {type(exc).__name__}: "
        message = _message(exc)
        return _Outcome(f"Error: {raised}{_cut(message)}", exc, raised + message)
    try:
        return _Outcome(to_json_text(result))
    except ParseFailure as exc:
        failure = (
            f"{name} returned a value that cannot be sent to the model: {exc}; return a str, "
            "or JSON values (numbers, lists, dicts with str keys, attrs classes, dataclasses)"
        )
        return _Outcome(f"Error: {failure}", exc, failure)


def _cut(message: str) -> str:
    """``message`` cut to :data:`MAX_TOOL_ERROR_CHARS`, saying how many characters were cut
    (a tool's exception can carry megabytes: a whole file, a response body)."""
    if len(message) <= MAX_TOOL_ERROR_CHARS:
        return message
    cut = len(message) - MAX_TOOL_ERROR_CHARS
    return f"{message[:MAX_TOOL_ERROR_CHARS]} [... {cut:,} more characters cut]"


def _message(exc: BaseException) -> str:
    """The exception's message; a placeholder when turning it into text fails itself."""
    try:
        return str(exc)
    except Exception as failure:
        return f"(its message could not be read: {type(failure).__name__})"


async def _run_calls(
    calls: Sequence[ChatCompletionsToolCall], runnable: Mapping[str, Tool]
) -> list[_Outcome]:
    """Run every call at the same time; the outcomes in the order of the calls."""
    outcomes: list[_Outcome] = [_Outcome() for _ in calls]
    stopped: list[BaseException] = []

    async def one(index: int, group: TaskGroup) -> None:
        try:
            outcomes[index] = await _run_call(calls[index], runnable)
        except (SystemExit, KeyboardInterrupt) as exc:
            # A tool's sys.exit() (or a KeyboardInterrupt it raised): out of a task of its
            # own, asyncio would raise it out of the event loop (for the sync API, the
            # client's loop thread). Kept, the other calls stopped, raised below instead.
            stopped.append(exc)
            group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(one, index, group)
    if stopped:
        raise stopped[0]
    return outcomes


# -- the loop -----------------------------------------------------------------------------------


def _answers_asked(
    params: Mapping[str, Any], defaults: RequestDefaults | None
) -> Iterator[tuple[str, Any]]:
    """Every place the loop's model calls may take ``n`` from (worded with ``{n}`` for
    ``n=<value>``), with its value: the call's ``n=``, ``model_extras`` and ``extra_body``,
    then the client's defaults the call does not override."""
    extras = params.get("model_extras")
    extras = extras if isinstance(extras, Mapping) else {}
    extra_body = params.get("extra_body")
    yield "{n}", params.get("n")
    yield "{n} in model_extras", extras.get("n")
    yield "{n} in extra_body", extra_body.get("n") if isinstance(extra_body, Mapping) else None
    if defaults is not None:
        if params.get("n") is None:
            yield "the client's {n}", defaults.wire.get("n")
        if "n" not in extras:
            yield "{n} in the client's model_extras", defaults.model_extras.get("n")


def _check_run(
    tools: Sequence[Any],
    max_rounds: int,
    params: Mapping[str, Any],
    defaults: RequestDefaults | None = None,
) -> tuple[list[Any], dict[str, Tool]]:
    if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) or max_rounds < 0:
        raise RequestValidationError(
            f"max_rounds must be a whole number >= 0, got {show(max_rounds)}"
        )
    for where, n in _answers_asked(params, defaults):
        if n is not None and n != 1:
            given = where.format(n=f"n={show(n)}")
            raise RequestValidationError(
                f"run_tools() and stream_tools() follow one conversation, so they ask for one "
                f"answer at a time: {given} would have every answer but the first dropped; "
                "leave n out (or pass n=1)"
            )
    wire, runnable = tools_for_request(tools)
    if not runnable:
        raise RequestValidationError(
            "run_tools() needs at least one Python function in tools=[...] to run "
            "(tool definitions and dicts alone have nothing to call)"
        )
    return wire or [], runnable


async def _ask(
    client: Any, stream: bool, round_: int, kwargs: dict[str, Any], sink: list[Any]
) -> AsyncIterator[TextDeltaEvent]:
    """One model call; streamed text comes out as events, the completion goes to ``sink``."""
    if not stream:
        sink.append(await client.complete(**kwargs))
        return
    answer = await client.complete(stream=True, **kwargs)
    async with answer:
        async for update in answer:
            text = text_delta(update)
            if text:
                yield TextDeltaEvent(text, round_)
        sink.append(answer.get_final_completion())


async def run_tool_events(
    client: Any,
    *,
    messages: Sequence[Any],
    tools: Sequence[Any],
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    raise_tool_errors: bool = False,
    reset_tool_choice: bool = True,
    stream: bool = False,
    params: Mapping[str, Any],
) -> AsyncIterator[ToolRunEvent]:
    """The tool-running loop (see the module docstring), as events; the last one is a
    :class:`ToolRunDoneEvent`."""
    wire, runnable = _check_run(
        tools, max_rounds, params, getattr(client, "_request_defaults", None)
    )
    params = dict(params)
    history = list(messages)
    for round_ in range(max_rounds + 1):
        sink: list[ChatCompletions] = []
        kwargs = {**params, "messages": history, "tools": wire}
        try:
            async for event in _ask(client, stream, round_, kwargs, sink):
                yield event
            completion = sink[0]
            message = _answer(completion, round_)
        except InferenceError as exc:
            if exc.messages is None:  # the tools that ran are not lost with the call
                exc.messages = list(history)
            raise
        history.append(message)
        if not message.tool_calls:
            yield ToolRunDoneEvent(ToolRunResult(completion, history, round_))
            return
        if round_ == max_rounds:
            raise ToolRoundsExceededError(
                f"the model still asked for tools after max_rounds={max_rounds} rounds; raise "
                "max_rounds, or continue from .messages",
                messages=history,
                completion=completion,
            )
        for call in message.tool_calls:
            yield ToolCallEvent(call, round_)
        outcomes = await _run_calls(message.tool_calls, runnable)
        for call, outcome in zip(message.tool_calls, outcomes, strict=True):
            history.append(ToolMessage(outcome.content, tool_call_id=call.id))
            yield ToolResultEvent(call, outcome.content, outcome.error, round_)
        _raise_first_error(message.tool_calls, outcomes, history, raise_tool_errors)
        if reset_tool_choice and params.get("tool_choice") not in (None, "auto", "none"):
            params["tool_choice"] = "auto"  # a forced call was made: now the model may answer


def _answer(completion: ChatCompletions, round_: int) -> ChatResponseMessage:
    """The message of the model's answer to continue the conversation with. A tool call the
    service sent without an id, or with the id of an earlier call of the same answer (some
    OpenAI-compatible servers do), gets one of its own, ``call_<round>_<n>``, for its tool
    message to answer: each result must say which call it answers."""
    if not completion.choices:
        raise InferenceError(
            f"the model's answer in round {round_} of the tool loop has no choices, so the "
            f"conversation cannot go on (completion id {completion.id!r}, usage "
            f"{completion.usage}); the service sent no message: look at its logs, or try again"
        )
    message = completion.choices[0].message
    calls = message.tool_calls or ()
    taken = {call.id for call in calls}
    seen: set[str] = set()
    for number, call in enumerate(calls):
        if not isinstance(call.id, str) or not call.id or call.id in seen:
            new_id = f"call_{round_}_{number}"
            while new_id in taken:
                new_id += "_"
            call.id = new_id
            taken.add(new_id)
        seen.add(call.id)
    return message


def _raise_first_error(
    calls: Sequence[ChatCompletionsToolCall],
    outcomes: Sequence[_Outcome],
    history: list[Any],
    raise_tool_errors: bool,
) -> None:
    if not raise_tool_errors:
        return
    for call, outcome in zip(calls, outcomes, strict=True):
        if outcome.failure is not None:
            raise ToolCallError(
                f"tool {outcome.failure}", call=call, messages=history
            ) from outcome.error


async def run_tools(client: Any, **kwargs: Any) -> ToolRunResult:
    """Drive :func:`run_tool_events` to its end and return the result."""
    events = run_tool_events(client, **kwargs)
    try:
        async for event in events:
            if isinstance(event, ToolRunDoneEvent):
                return event.result
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    raise InferenceError("the tool loop ended without an answer")  # pragma: no cover


# -- the sync side: events cross the portal through a pump task ---------------------------------


class _Portal(Protocol):
    def call(self, func: Callable[[], Awaitable[Any]]) -> Any: ...

    def start(self, func: Callable[[], Awaitable[None]]) -> Any: ...


_END = object()
_BATCH = 64  # events the pump may run ahead of a slow consumer
_STOP_WAIT = 5.0  # seconds to wait for a stopped pump to close its stream


@attrs.define
class _Failed:
    error: BaseException


async def _pump(
    events: Callable[[], AsyncIterator[Any]], send: MemoryObjectSendStream[Any]
) -> None:
    iterator = events()
    async with send:
        try:
            async for event in iterator:
                await send.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the consumer went away: nothing more to send
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            # An error, or a tool's sys.exit() (SystemExit): raised in the consuming thread,
            # not in the loop (which would stop every other call of the client).
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(_Failed(exc))
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]


@attrs.define
class _Pumped:
    receive: MemoryObjectReceiveStream[Any]
    job: Any  # the portal's handle of the pump task: cancel(), wait(timeout)

    async def ready(self) -> list[Any]:
        """Every event that is ready (waiting for at least one); ``_END`` after the last."""
        items: list[Any] = []
        try:
            items.append(await self.receive.receive())
            while True:
                items.append(self.receive.receive_nowait())
        except anyio.WouldBlock:
            return items
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            items.append(_END)
            return items

    async def stop(self) -> None:
        """Cancel the pump and wait (bounded) until it has closed what it opened."""
        self.job.cancel()
        await self.job.wait(_STOP_WAIT)
        await self.receive.aclose()


def iterate_on_portal(portal: _Portal, events: Callable[[], AsyncIterator[Any]]) -> Iterator[Any]:
    """The events of an async iterator, made and run on the portal's loop by a pump task,
    taken by the calling thread in batches (one hop per batch of ready events)."""

    async def start() -> _Pumped:
        send, receive = anyio.create_memory_object_stream[Any](_BATCH)
        job = portal.start(functools.partial(_pump, events, send))
        return _Pumped(receive, job)

    pumped: _Pumped = portal.call(start)
    try:
        while True:
            for item in portal.call(pumped.ready):
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
    finally:
        with suppress(InferenceError):  # a closed client has stopped the pump already
            portal.call(pumped.stop)
