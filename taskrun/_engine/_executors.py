"""Executors: what the engine needs from its surroundings to run one attempt.

A runner's runs, a direct call in sync code, a direct call in async code and a
worker process each have their own executor. :meth:`Executor.way` says how a
task's body runs there (one :class:`Way` per run); the engine's driver has one
small branch per way.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from .._core._backend import AsyncioBackend, TrioBackend
from .._core._dispatch import PROMOTE
from .._core._workers import Job, park

if TYPE_CHECKING:
    from .._core._dispatch import Dispatcher
    from ._record import TaskRunContext


class AttemptTimedOut(Exception):
    """Raised by an executor when a sync body ran past the timeout."""


class Way(enum.Enum):
    """How an attempt's body runs."""

    #: An async body awaited in the engine's own frame, cancelled through the
    #: task hosting the run (``arm_cancel``/``disarm_cancel``).
    AWAIT_DIRECT = "await-direct"
    #: An async body handed to :meth:`Executor.call_async`.
    CALL_ASYNC = "call-async"
    #: A sync body parked on a worker thread as a :class:`Job` (no timeout).
    PARK = "park"
    #: Any body handed to :meth:`Executor.call_sync` as a function, which
    #: enforces the timeout itself (by raising :class:`AttemptTimedOut`).
    CALL_SYNC = "call-sync"


class Executor:
    """Base of the engine's executors.

    ``call_sync`` raises :class:`AttemptTimedOut` when ``timeout`` passes and
    :class:`RunCancelledSignal` when the run was cancelled. ``promotes``: the
    engine awaits ``PROMOTE`` before anything that needs a real loop task.

    The four ``*_way`` attributes say how a body runs: async or sync, without
    or with a timeout (read per run, so they are attributes, not a method).
    ``AWAIT_DIRECT`` and ``PARK`` are for bodies without a timeout only.
    """

    promotes = False
    #: An untimed async body (``AWAIT_DIRECT``) is returned by ``drive`` for the
    #: task driver to step itself, which calls ``body_ended`` when it ends
    #: (asyncio's task driver: see ``drive``).
    hands_off = False
    async_way = Way.CALL_ASYNC
    sync_way = Way.CALL_SYNC
    timed_async_way = Way.CALL_ASYNC
    timed_sync_way = Way.CALL_SYNC

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any:
        raise NotImplementedError

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        raise NotImplementedError

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        raise NotImplementedError

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def without_slot(self, run: TaskRunContext, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` (a wait on something else: a cache key's lock) holding no slot."""
        return await awaitable

    # Only for executors whose way is AWAIT_DIRECT.

    def arm_cancel(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> None:
        raise NotImplementedError

    def disarm_cancel(self, run: TaskRunContext, exc: BaseException | None) -> bool:
        raise NotImplementedError

    async def absorb_cancel(self) -> None:
        raise NotImplementedError


class RunnerExecutor(Executor):
    """Executor for runs of a runner: sync bodies are parked on the dispatcher's
    worker threads; anything that needs a loop task first awaits ``PROMOTE``."""

    promotes = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        backend = self._backend = dispatcher.backend
        self.call_async = backend.run_cancellable  # type: ignore[method-assign,assignment]
        self.sync_way = Way.PARK
        if isinstance(backend, (AsyncioBackend, TrioBackend)):
            # The task drivers await untimed bodies in the engine's frame (see the dispatcher).
            self.async_way = Way.AWAIT_DIRECT
            self.arm_cancel = backend.arm_cancel  # type: ignore[method-assign]
            self.disarm_cancel = backend.disarm_cancel  # type: ignore[method-assign]
            self.absorb_cancel = backend.absorb_cancel  # type: ignore[method-assign]
            self.hands_off = backend.direct_await

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        job = Job(contextvars.copy_context(), fn, args, kwargs)
        if timeout is None:
            return await park(run, job)
        await PROMOTE
        with anyio.move_on_after(timeout):
            return await park(run, job)
        job.abandoned = True
        raise AttemptTimedOut

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        await PROMOTE
        dispatcher = self._dispatcher
        holder = run._slot_run or run
        dispatcher.release(holder)
        try:
            await self._backend.run_cancellable(run, anyio.sleep(seconds))
        finally:
            await dispatcher.reacquire(holder)

    async def without_slot(self, run: TaskRunContext, awaitable: Awaitable[Any]) -> Any:
        await PROMOTE
        dispatcher = self._dispatcher
        holder = run._slot_run or run
        dispatcher.release(holder)
        try:
            return await self._backend.run_cancellable(run, awaitable)
        finally:
            await dispatcher.reacquire(holder)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            await PROMOTE
            return await fn(*args)
        ok, value = await Job(contextvars.copy_context(), fn, args, {})
        if not ok:
            raise value
        if inspect.isawaitable(value):
            await PROMOTE
            return await value
        return value


class InlineExecutor(Executor):
    """Executor for a direct call of a sync task: everything in the calling thread.

    The engine never suspends under this executor, so :func:`drive_inline` can
    step it to the end without an event loop.
    """

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any:
        coro.close()
        raise RuntimeError("an async body cannot run inline")

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        if timeout is None:
            return fn(*args, **kwargs)
        return _call_with_thread_timeout(fn, args, kwargs, timeout)

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        time.sleep(seconds)  # noqa: ASYNC251 - stepped without a loop (drive_inline)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            return _run_coroutine_elsewhere(value)
        return value


class DirectAsyncExecutor(Executor):
    """Executor for a direct call of an async task, on the caller's loop."""

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any:
        return await coro

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        return fn(*args, **kwargs)

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            return await value
        return value


def _call_with_thread_timeout(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                              timeout: float) -> Any:
    """Run ``fn`` on a helper thread and stop waiting after ``timeout`` seconds."""
    box: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=target, name="taskrun-timeout", daemon=True)
    thread.start()
    thread.join(timeout if timeout < threading.TIMEOUT_MAX else None)  # math.inf: no limit
    if not box:
        raise AttemptTimedOut
    ok, value = box[0]
    if ok:
        return value
    raise value


def _run_coroutine_elsewhere(awaitable: Any) -> Any:
    """Run an awaitable returned by a sync-world hook on a fresh loop in a helper thread."""
    box: list[tuple[bool, Any]] = []

    async def wrapper() -> Any:
        return await awaitable

    def target() -> None:
        try:
            box.append((True, asyncio.run(wrapper())))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=target, name="taskrun-hook")
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value
    raise value
