"""The event loop of a sync client: an anyio :class:`~anyio.from_thread.BlockingPortal`.

Each sync client owns one :class:`Portal` for its whole life. The portal's thread (named
``inference-loop``) starts on the first call (:func:`anyio.from_thread.start_blocking_portal`)
and stops when the client is closed, garbage collected or the interpreter exits.

A call (:meth:`Portal.call`) is one hop: one ``call_soon_threadsafe`` starts a task running
the coroutine on the portal's loop, and the calling thread waits on a lock that the task
releases as the last thing it does (:class:`_Call`). One hand-off each way is the floor: the
portal's own ``start_task_soon`` first waits for the loop to accept the task, then for its
result (two hand-offs, a third more time per non-streamed request), and
``asyncio.run_coroutine_threadsafe`` settles its future one loop iteration after the task
ends. An exception in the waiting thread (Ctrl-C) cancels the call; the task then stops (it
is cancelled on the loop, and the thread waits, bounded, for its clean-up) and a result it
made anyway goes to the call's ``discard``.

Background work that the loop starts for itself (a stream's pump) runs in one anyio task
group, started with the portal (``BlockingPortal.start_task``) and cancelled when it stops.

Forks: a child process inherits the parent's portal object but not its thread. A portal
started before ``os.fork()`` refuses calls in the child (:class:`~inference.exceptions.
InferenceError` saying to create a new client there), and its stop is a no-op: the child
never waits for a thread it does not have, nor touches the loop, sockets and event-loop
registrations it shares with the parent. A portal not started yet starts normally in the
child.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, suppress
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.from_thread import BlockingPortal, start_blocking_portal

from .exceptions import InferenceError

__all__ = ["Background", "Portal"]

T = TypeVar("T")

_CANCEL_WAIT = 5.0  # seconds to wait for a cancelled call to finish its clean-up
_STOP_WAIT = 5.0  # seconds close() waits for the loop's tasks to end after cancelling them
_CLOSED_MESSAGE = "the client is closed; create a new client"
_OWN_THREAD_MESSAGE = (
    "the sync client was called from its own event loop thread, where it would wait for "
    "itself forever; in async code use the client of inference.aio (for example "
    "inference.aio.ChatCompletionsClient) with await"
)
_IN_LOOP_MESSAGE = (
    "a sync inference client was called inside a running event loop: each call blocks that "
    "loop until it returns; in async code use the client of inference.aio (for example "
    "inference.aio.ChatCompletionsClient) with await"
)


_EXIT_MESSAGE = (
    "the client was closed because the interpreter is exiting (a thread still used it after "
    "the main thread had finished)"
)
_exiting = False  # set when the portals are stopped at interpreter exit


def closed_error() -> InferenceError:
    """The error of a call on a closed client."""
    return InferenceError(_EXIT_MESSAGE if _exiting else _CLOSED_MESSAGE)


def _forked_error(pid: int) -> InferenceError:
    return InferenceError(
        f"this client's event loop runs in process {pid}, which forked this one "
        "(os.fork(), multiprocessing with 'fork', a server that preloads the app): its "
        "connections belong to that process; create a new client in this process"
    )


class _Call(Generic[T]):
    """One coroutine run on the loop for a waiting thread, and the hand-off of its outcome.

    Written for the hand-off's cost rather than taken from :mod:`concurrent.futures`: the
    waiting thread blocks on ``_done``, a lock held from creation that the loop releases once
    the outcome is stored (a ``Future`` waits on a ``Condition``, which makes a lock per
    waiter and notifies through it: several microseconds more per call). Exactly one of
    :meth:`settle` (the loop) and :meth:`cancel` (the waiting thread, giving up on Ctrl-C)
    wins ``_claim``; a non-blocking ``acquire`` is atomic. A result made after the caller gave
    up goes to ``discard``.
    """

    __slots__ = (
        "_claim",
        "_done",
        "_error",
        "_result",
        "_stored",
        "cancelled",
        "discard",
        "func",
        "task",
    )

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[None]] | None,
    ) -> None:
        self.func = func
        self.discard = discard  # releases a result that nobody will take (after Ctrl-C)
        self.task: asyncio.Task[Any] | None = None  # set on the loop thread
        self._claim = threading.Lock()  # taken by whichever of settle and cancel comes first
        self._done = threading.Lock()  # held until the outcome is stored
        self._done.acquire()
        self._result: T | None = None
        self._error: BaseException | None = None
        self._stored = False  # the outcome is in _result/_error
        self.cancelled = False  # given up by the waiting thread before it was settled

    async def run(self, calls: set[asyncio.Task[Any]]) -> None:
        """Run ``func()`` and settle the call with its outcome (loop thread)."""
        task = self.task = asyncio.current_task()
        assert task is not None
        if self._claim.locked():  # given up before it started
            return
        calls.add(task)
        try:
            result = await self.func()
        except BaseException as exc:
            if _cancellation(exc):
                self.settle(None, closed_error())
                raise  # cancelled (by the portal stopping, or by the waiting thread)
            # An error, or what user code (a tool function) raised to end the program
            # (SystemExit from sys.exit()): the waiting thread raises it, the loop goes on.
            self.settle(None, exc)
            return
        finally:
            calls.discard(task)
        # Settling is the last thing the task does: the waiting thread wakes up as this
        # thread is about to let go of the interpreter.
        if not self.settle(result, None):
            await self.release(result)  # made after the caller gave up

    def settle(self, result: T | None, error: BaseException | None) -> bool:
        """Store the outcome and wake the waiting thread; False if it gave up first."""
        if not self._claim.acquire(False):
            return False
        self._result, self._error = result, error
        self._stored = True
        self._done.release()
        return True

    def cancel(self) -> bool:
        """Give up (waiting thread); False if the outcome is already settled or settling."""
        if not self._claim.acquire(False):
            return False
        self.cancelled = True
        return True

    def wait(self, timeout: float = -1) -> T:
        """Block until settled (at most ``timeout`` seconds if given, else TimeoutError),
        then return the result or raise the error."""
        if not self._done.acquire(timeout=timeout):
            raise TimeoutError(f"the call did not end within {timeout} seconds")
        self._done.release()  # later waits (``outcome``) return at once
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def outcome(self) -> tuple[T | None, BaseException | None]:
        """The result and error of a call whose :meth:`cancel` failed (it is settled, or being
        settled this instant). Does not take ``_done``: a Ctrl-C in :meth:`wait` may have
        landed after it took the lock and before it let go of it."""
        while not self._stored:
            time.sleep(0.0001)  # settle() stores the outcome right after winning the claim
        return self._result, self._error

    def failed_with(self, exc: BaseException) -> bool:
        """True if ``exc`` is the call's own error (as opposed to a Ctrl-C while waiting)."""
        return self._error is exc

    async def release(self, result: T) -> None:
        """Hand a result nobody will take to ``discard`` (shielded from cancellation)."""
        if self.discard is not None:
            with anyio.CancelScope(shield=True):
                await self.discard(result)


def _cancellation(exc: BaseException) -> bool:
    """True if ``exc`` is (or holds) the event loop's cancellation."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    return isinstance(exc, BaseExceptionGroup) and (
        exc.subgroup(asyncio.CancelledError) is not None
    )


class Background:
    """A task the loop started for itself (:meth:`Portal.start`): cancel it, wait for it."""

    __slots__ = ("finished", "scope", "task")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self.task: asyncio.Task[Any] | None = None

    def cancel(self) -> None:
        """Cancel the task (loop thread only)."""
        self.scope.cancel()

    async def wait(self, timeout: float) -> None:
        """Wait (shielded, at most ``timeout`` seconds) until the task has ended; a no-op in
        the task itself."""
        if self.task is asyncio.current_task():
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
            await self.finished.wait()

    async def run(self, func: Callable[[], Awaitable[None]]) -> None:
        self.task = asyncio.current_task()
        try:
            with self.scope:
                await func()
        finally:
            self.finished.set()


class _Running:
    """What a started portal holds; replaced by nothing when it stops."""

    __slots__ = ("cm", "group", "host", "loop", "pid", "portal", "thread")

    def __init__(self) -> None:
        self.cm: AbstractContextManager[BlockingPortal] = start_blocking_portal(
            "asyncio", name="inference-loop"
        )
        self.portal = self.cm.__enter__()
        try:
            self.loop, self.thread = self.portal.call(_loop_and_thread)
            self.host, self.group = self.portal.start_task(_host)
        except BaseException:
            self.cm.__exit__(None, None, None)
            raise
        self.pid = os.getpid()


async def _loop_and_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    return asyncio.get_running_loop(), threading.current_thread()


async def _host(*, task_status: TaskStatus[TaskGroup]) -> None:
    # The task group of the loop's background tasks; cancelled when the portal stops.
    async with anyio.create_task_group() as group:
        task_status.started(group)
        await anyio.sleep_forever()


class Portal:
    """One event-loop thread for one sync client: started on first use, stopped once.

    ``closer`` is awaited on the loop when the portal stops (it closes the async client).
    """

    def __init__(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closer = closer
        self._lock = threading.Lock()
        self._running: _Running | None = None
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set while running
        self._thread_id: int | None = None
        self._forked_from: int | None = None  # the parent's pid, in a forked child
        self._warned_in_loop = False
        # Touched on the loop thread only:
        self._calls: set[asyncio.Task[Any]] = set()
        self._tracked: weakref.WeakSet[Any] = weakref.WeakSet()
        _portals.add(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._forked_from is not None:
                raise _forked_error(self._forked_from)
            if self._stopped:
                raise closed_error()
            if self._running is None:
                running = _Running()
                self._thread_id = running.thread.ident
                self._running = running
                self._loop = running.loop
            return self._running.loop

    @property
    def started(self) -> bool:
        """True while the loop runs."""
        return self._running is not None

    @property
    def thread(self) -> threading.Thread | None:
        """The loop's thread while it runs."""
        running = self._running
        return running.thread if running is not None else None

    def stop(self) -> None:
        """Cancel what still runs, await ``closer()``, stop the loop and join its thread.

        Idempotent; safe from any thread (from the loop thread itself it does not wait); a
        no-op in a forked child.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            running, self._running, self._loop = self._running, None, None
        if running is None or self._forked_from is not None:
            return
        if threading.get_ident() == self._thread_id:
            # Called on the loop itself (a finalizer run by the garbage collector there):
            # it cannot wait for itself; shut down in the background instead.
            running.loop.call_soon(_start_in_group, running, self._shutdown, running, True)
            return
        try:
            # If the loop is already gone, nothing is left to clean up there.
            with suppress(RuntimeError):
                running.portal.call(self._shutdown, running, False)
        finally:
            running.cm.__exit__(None, None, None)

    async def _shutdown(self, running: _Running, from_loop: bool) -> None:
        me = asyncio.current_task()
        tasks = [task for task in self._calls if task is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.move_on_after(_STOP_WAIT):
                await asyncio.wait(tasks)
        try:
            for pumped in list(self._tracked):
                await pumped.shutdown()
            await self._closer()
        finally:
            running.group.cancel_scope.cancel()  # the background tasks and the host task
            if from_loop:
                # Stopping from the loop thread: a helper thread stops the portal.
                threading.Thread(target=running.cm.__exit__, args=(None,) * 3, daemon=True).start()

    def _after_fork(self) -> None:
        # In a forked child: the loop thread is not there. Refuse calls, and mark the anyio
        # portal stopped (``BlockingPortal.stop`` only sets flags: it needs no loop), so that
        # releasing it later (at exit) neither waits for the missing thread nor wakes the
        # parent's loop.
        self._lock = threading.Lock()
        running = self._running
        if running is None or self._forked_from is not None:
            return
        self._forked_from = running.pid
        self._loop = None
        stop = running.portal.stop()
        with suppress(BaseException):
            stop.send(None)
        stop.close()

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
        loop = self._loop or self._start()
        if threading.get_ident() == self._thread_id:
            raise InferenceError(_OWN_THREAD_MESSAGE)
        if not self._warned_in_loop and asyncio._get_running_loop() is not None:
            self._warn_in_loop()
        job = _Call(func, discard)
        coro = job.run(self._calls)
        handed = False
        # One try from the hand-off on: a Ctrl-C that lands just after the task was handed
        # over (before this thread started waiting) must cancel it like one while waiting.
        try:
            try:
                loop.call_soon_threadsafe(loop.create_task, coro)
            except RuntimeError:
                raise closed_error() from None  # the loop was closed meanwhile
            handed = True
            return job.wait()
        except BaseException as exc:
            if not handed:
                coro.close()  # never scheduled: nothing runs, nothing to wait for
            elif not job.failed_with(exc):
                self._abandon(job)  # interrupted while waiting (not the call's own error)
            raise

    def _warn_in_loop(self) -> None:
        self._warned_in_loop = True
        warnings.warn(_IN_LOOP_MESSAGE, RuntimeWarning, stacklevel=4)

    def _abandon(self, job: _Call[Any]) -> None:
        """Give up ``job``: cancel it, then on the loop stop its task and wait (bounded) for
        its clean-up, or release the result it had just made."""
        running = self._running
        if running is None:
            return
        with suppress(RuntimeError):  # the portal stopped meanwhile
            if job.cancel():
                running.portal.call(self._cancel, job)
                return
            result, error = job.outcome()
            if error is None:
                running.portal.call(job.release, result)

    @staticmethod
    async def _cancel(job: _Call[Any]) -> None:
        # Loop thread. The job was handed over before this hop: its task exists.
        task = job.task
        if task is not None and not task.done():
            task.cancel()
            with anyio.move_on_after(_CANCEL_WAIT):
                await asyncio.wait([task])

    def call_soon(self, func: Callable[[], Awaitable[None]]) -> bool:
        """Start ``func()`` on the loop without waiting; False if the loop is not running."""
        running = self._running
        if running is None or self._forked_from is not None:
            return False
        try:
            running.loop.call_soon_threadsafe(_start_in_group, running, func)
        except RuntimeError:
            return False
        return True

    def start(self, func: Callable[[], Awaitable[None]]) -> Background:
        """Start a background task (loop thread only); it is cancelled when the portal stops."""
        running = self._running
        if running is None:
            raise closed_error()
        task = Background()
        running.group.start_soon(task.run, func)
        return task

    def track(self, pumped: Any) -> None:
        """Shut down ``pumped`` when the portal stops, if nobody did (loop thread only)."""
        self._tracked.add(pumped)


def _start_in_group(running: _Running, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Start ``func(*args)`` in the portal's task group from a plain loop callback.

    anyio's ``start_soon`` asks sniffio (when it is installed, as httpx and openai bring it)
    which async library runs, and sniffio can tell only inside a task: so the call is made
    from a short task of its own, not from the callback.
    """

    async def start() -> None:
        running.group.start_soon(func, *args)

    running.loop.create_task(start())


_portals: weakref.WeakSet[Portal] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for portal in list(_portals):
        portal._after_fork()
        if portal._forked_from is not None:
            _inherited.append(portal)


def _stop_at_exit() -> None:
    # A portal still running at exit is stopped while its thread can still run: later, in
    # the interpreter's finalization, the thread is frozen, and releasing anyio's portal
    # context (which waits for that thread) would wait forever.
    global _exiting
    _exiting = True
    for portal in list(_portals):
        portal.stop()


atexit.register(_stop_at_exit)


# Portals inherited from the parent process stay referenced in the child: the objects they
# reach (the parent's loop, sockets and event-loop registrations) are never released there.
_inherited: list[Portal] = []
os.register_at_fork(after_in_child=_after_fork_in_child)
