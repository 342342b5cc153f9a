"""The one narrow seam between the core and the event loop library in use.

Everything the core needs from a loop is here: a thread-safe "call this on the
loop", "am I on the loop's thread", a one-shot waiter a coroutine can park on,
spawning a system coroutine, and cancelling a single run.  There is one
implementation for asyncio and one for trio; :func:`current_backend` picks the
right one lazily, at first use, because futures are created in sync code.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Protocol

import anyio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]


class Waiter(Protocol):
    """A one-shot slot a single coroutine awaits; ``set`` is called on the loop thread."""

    def set(self, value: Any) -> None: ...

    def wait(self) -> Awaitable[Any]: ...


class Backend(Protocol):
    name: str
    #: True where a task driver awaits async bodies directly (see AsyncioBackend).
    direct_await: bool
    #: Call ``fn(*args)`` on the loop, from any thread.
    call_soon_threadsafe: Callable[..., object]
    #: Call ``fn(*args)`` on a later turn of the loop (from the loop thread).
    defer: Callable[..., object]

    def is_loop_thread(self) -> bool: ...

    def create_waiter(self) -> Waiter: ...

    def spawner(self) -> Spawner: ...

    def run_cancellable(self, run: Any, awaitable: Awaitable[Any]) -> Awaitable[Any]:
        """Await ``awaitable`` so that ``run._cancel_hook.cancel()`` cancels just it.

        Raises :class:`RunCancelledSignal` when that happened.
        """
        ...

    async def checkpoint(self) -> None: ...

    def host_scope(self) -> Any:
        """A fresh cancel scope for a task driver to host runs in (``run._host``)."""
        ...


class Spawner(Protocol):
    """Owns the coroutines one runner starts; entered and left around the runner's life."""

    async def __aenter__(self) -> Spawner: ...

    async def __aexit__(self, *exc_info: Any) -> bool | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...


# --------------------------------------------------------------------------- asyncio


#: The running task of each loop, read directly on Python < 3.12, where
#: ``asyncio.current_task`` is Python code around this lookup (two calls more per run).
_TASKS_BY_LOOP: dict[Any, Any] | None = (
    asyncio.tasks._current_tasks  # type: ignore[attr-defined]
    if sys.version_info < (3, 12) and isinstance(getattr(asyncio.tasks, "_current_tasks", None), dict)
    else None
)


class _AsyncioWaiter:
    __slots__ = ("_future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[Any] = loop.create_future()

    def set(self, value: Any) -> None:
        if not self._future.done():
            self._future.set_result(value)

    def wait(self) -> Awaitable[Any]:
        return self._future


class _AsyncioCanceller:
    """Cancels the worker task and then takes the cancellation back (``uncancel``)."""

    __slots__ = ("_requested", "_task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        self._requested = False

    def cancel(self) -> None:
        if not self._requested:
            self._requested = True
            self._task.cancel()

    def cancelled_caught(self, exc: BaseException) -> bool:
        if self._requested and isinstance(exc, asyncio.CancelledError):
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            return True
        return False


#: The name of the asyncio tasks that host runs (``asyncio.current_task().get_name()`` in a body).
DRIVER_TASK_NAME = "taskrun-driver"


class _AsyncioSpawner:
    """Starts tasks on the loop. The dispatcher keeps count of its drivers and
    waits for them itself; each task is referenced by the run it drives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # One context for all driver tasks (each run is stepped in its own), instead
        # of a copy per task: 64 bytes less per waiting run. Tasks step one at a
        # time; an eager task factory would enter it inside another's step.
        self._context = contextvars.copy_context() if sys.version_info >= (3, 11) else None

    async def __aenter__(self) -> _AsyncioSpawner:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        return None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        # One name for every driver task: on Python < 3.12 a task without one
        # gets its own "Task-<n>" string, 58 bytes more per waiting run.
        loop = self._loop
        if self._context is None or loop.get_task_factory() is not None:
            loop.create_task(coro, name=DRIVER_TASK_NAME)
        else:
            create: Any = loop.create_task  # context= is 3.11+
            create(coro, name=DRIVER_TASK_NAME, context=self._context)


class AsyncioBackend:
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread_id = threading.get_ident()
        self.call_soon_threadsafe: Callable[..., object] = loop.call_soon_threadsafe
        self.defer: Callable[..., object] = loop.call_soon

    def is_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def create_waiter(self) -> Waiter:
        return _AsyncioWaiter(self.loop)

    def spawner(self) -> Spawner:
        return _AsyncioSpawner(self.loop)

    # A task driver awaits an async body directly and cancels a run by
    # cancelling its own task (then taking that cancellation back), so no
    # wrapper coroutine stays alive per waiting run.
    direct_await = True

    def arm_cancel(self, run: Any, coro: Coroutine[Any, Any, Any]) -> None:
        """Before a body awaited by the task hosting ``run``: a cancel from now on
        cancels that task (``coro`` is closed, unstarted, if the run was cancelled)."""
        if run._cancel_requested:
            coro.close()
            raise RunCancelledSignal
        tasks = _TASKS_BY_LOOP
        run._cancel_hook = tasks.get(self.loop) if tasks is not None else asyncio.current_task(self.loop)

    def disarm_cancel(self, run: Any, exc: BaseException | None) -> bool:
        """After the body: True when it ended because the run was cancelled."""
        run._cancel_hook = None
        if not run._cancel_delivered:
            return False
        run._cancel_delivered = False
        task = asyncio.current_task()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            return False
        if task is not None and sys.version_info >= (3, 11):
            if exc is None and not task.cancelling():
                return True
            task.uncancel()
            if task.cancelling():  # the host was cancelled as well
                return False
        return True

    async def absorb_cancel(self) -> None:
        """Take a cancel that was requested while the body was running."""
        task = asyncio.current_task()
        if task is not None and getattr(task, "_must_cancel", False):
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                if hasattr(task, "uncancel"):
                    task.uncancel()

    def run_cancellable(self, run: Any, awaitable: Awaitable[Any]) -> Awaitable[Any]:
        return _run_cancellable_asyncio(run, awaitable)

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def host_scope(self) -> Any:
        # Not used by asyncio's own task driver, which cancels the task instead.
        return anyio.CancelScope()


# --------------------------------------------------------------------------- trio


class _TrioWaiter:
    __slots__ = ("_abandoned", "_is_set", "_task", "_value")

    def __init__(self) -> None:
        self._task: Any = None
        self._value: Any = None
        self._is_set = False
        self._abandoned = False

    def set(self, value: Any) -> None:
        if self._is_set or self._abandoned:
            return
        self._value = value
        self._is_set = True
        if self._task is not None:
            import outcome  # noqa: PLC0415 - trio is optional: imported only on a trio loop
            import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

            trio.lowlevel.reschedule(self._task, outcome.Value(value))
            self._task = None

    async def wait(self) -> Any:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        if self._is_set:
            await trio.lowlevel.checkpoint()
            return self._value
        self._task = trio.lowlevel.current_task()

        def abort(_: Any) -> Any:
            self._task = None
            self._abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)


class TrioBackend:
    name = "trio"

    def __init__(self) -> None:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        self._trio = trio
        self.token = trio.lowlevel.current_trio_token()
        self._thread_id = threading.get_ident()
        self.call_soon_threadsafe: Callable[..., object] = self.token.run_sync_soon
        self.defer: Callable[..., object] = self.token.run_sync_soon

    def is_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def create_waiter(self) -> Waiter:
        return _TrioWaiter()

    def spawner(self) -> Spawner:
        return _TrioSpawner()

    direct_await = False

    def run_cancellable(self, run: Any, awaitable: Awaitable[Any]) -> Awaitable[Any]:
        return _run_cancellable_trio(run, awaitable)

    async def checkpoint(self) -> None:
        await self._trio.lowlevel.checkpoint()

    def host_scope(self) -> Any:
        return self._trio.CancelScope()

    # An async body awaited in the engine's frame, in a task driver's host scope
    # (``run._host``): a cancel cancels that scope; after the body the engine
    # awaits RESCOPE, and the driver goes on under a fresh one.

    def arm_cancel(self, run: Any, coro: Coroutine[Any, Any, Any]) -> None:
        """Before the body: a cancel from now on cancels the host scope."""
        if run._cancel_requested:
            coro.close()
            raise RunCancelledSignal
        run._cancel_hook = run._host

    def disarm_cancel(self, run: Any, exc: BaseException | None) -> bool:
        """After the body: True when it ended because the run was cancelled."""
        run._cancel_hook = None
        if not run._cancel_delivered:
            return False
        run._cancel_delivered = False
        if exc is None:  # granted, the cancel ends the run even if the body swallowed it
            return True
        if isinstance(exc, BaseExceptionGroup):
            return exc.split(self._trio.Cancelled)[1] is None
        return isinstance(exc, self._trio.Cancelled)

    async def absorb_cancel(self) -> None:
        """After a cancelled body: leave the cancelled host scope (see RESCOPE)."""
        await RESCOPE


async def _await(coro: Coroutine[Any, Any, Any]) -> Any:
    return await coro


class _Rescope:
    """Awaited by the engine after a body whose run's cancel cancelled its task
    driver's host scope: the driver steps the run on under a fresh scope."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


RESCOPE = _Rescope()


@types.coroutine
def relay(signal: Any) -> Generator[Any, Any, Any]:
    """Pass a value a run yielded on to the task running us; return what comes back
    (the same for every backend: the signal is the loop library's own)."""
    return (yield signal)


class _TrioSpawner:
    def __init__(self) -> None:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        self._manager = trio.open_nursery()
        self._nursery: Any = None

    async def __aenter__(self) -> _TrioSpawner:
        self._nursery = await self._manager.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if exc_info[0] is not None:
            self._nursery.cancel_scope.cancel()
        return await self._manager.__aexit__(*exc_info)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._nursery.start_soon(_await, coro)



# --------------------------------------------------------------------------- detection

_asyncio_backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncioBackend] = (
    weakref.WeakKeyDictionary()
)


def current_backend() -> Backend:
    """The backend of the loop running in this thread (RuntimeError if none)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        backend = _asyncio_backends.get(loop)
        if backend is None:
            backend = _asyncio_backends[loop] = AsyncioBackend(loop)
        return backend
    if "trio" in sys.modules:
        var = _trio_backend_var()
        try:
            return var.get()  # type: ignore[no-any-return]
        except (LookupError, RuntimeError):
            pass
        try:
            backend_t = TrioBackend()
        except RuntimeError:
            pass
        else:
            var.set(backend_t)
            return backend_t
    raise RuntimeError(
        "this needs a running event loop (asyncio or trio); "
        "call it from async code, or use the blocking twin from sync code"
    )


_trio_var: Any = None


def _trio_backend_var() -> Any:
    global _trio_var
    if _trio_var is None:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        _trio_var = trio.lowlevel.RunVar("taskrun_backend")
    return _trio_var


def in_event_loop_thread() -> bool:
    """True when an asyncio or trio loop is running in the calling thread."""
    if asyncio._get_running_loop() is not None:
        return True
    if "trio" in sys.modules:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return False
        return True
    return False


# --------------------------------------------------------------------------- run cancellation


class RunCancelledSignal(Exception):
    """Raised inside the engine when the run itself (not its host) was cancelled."""


def is_cancellation(exc: BaseException) -> bool:
    """True for the cancellation exception of asyncio or trio."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    if "trio" in sys.modules:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        return isinstance(exc, trio.Cancelled)
    return False


def is_host_cancellation(exc: BaseException) -> bool:
    """True when ``exc`` is the cancellation of the loop running this thread.

    A cancellation type raised by user code on its own (``raise
    asyncio.CancelledError()`` in a sync body, or under trio, or by an asyncio
    task nobody cancelled) is that code's error, not the host's cancellation.
    """
    if isinstance(exc, asyncio.CancelledError):
        if asyncio._get_running_loop() is None:
            return False
        cancelling = getattr(asyncio.current_task(), "cancelling", None)
        return cancelling is None or cancelling() > 0
    if "trio" in sys.modules:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        return isinstance(exc, trio.Cancelled)
    return False


def is_loop_cancellation(exc: BaseException) -> bool:
    """True when ``exc`` is the cancellation type of the loop running this thread
    (whoever raised it); a foreign type (asyncio's under trio) is not."""
    if isinstance(exc, asyncio.CancelledError):
        return asyncio._get_running_loop() is not None
    if "trio" in sys.modules:
        import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

        return isinstance(exc, trio.Cancelled)
    return False


async def _run_cancellable_asyncio(run: Any, awaitable: Awaitable[Any]) -> Any:
    task = asyncio.current_task()
    assert task is not None
    canceller = _AsyncioCanceller(task)
    run._cancel_hook = canceller
    try:
        if run._cancel_requested:
            _close_if_unstarted(awaitable)
            raise RunCancelledSignal
        value = await awaitable
    except BaseException as exc:
        if canceller.cancelled_caught(exc):
            raise RunCancelledSignal from None
        raise
    finally:
        run._cancel_hook = None
    if canceller._requested:
        # The cancel came while this task was running, so asyncio will deliver it
        # at the next await: take it here, where it belongs.
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            canceller.cancelled_caught(asyncio.CancelledError())
        raise RunCancelledSignal
    return value


async def _run_cancellable_trio(run: Any, awaitable: Awaitable[Any]) -> Any:
    import trio  # noqa: PLC0415 - trio is optional: imported only on a trio loop

    scope = trio.CancelScope()
    run._cancel_hook = scope
    try:
        if run._cancel_requested:
            _close_if_unstarted(awaitable)
            raise RunCancelledSignal
        with scope:
            value = await awaitable
    finally:
        run._cancel_hook = None
    # Granted, the cancel ends the run Cancelled even when the body swallowed it
    # and returned (as on asyncio); an exception the body raised instead is its own.
    if scope.cancel_called:
        raise RunCancelledSignal
    return value


def _close_if_unstarted(awaitable: Any) -> None:
    """Close a coroutine that was never started, so it is not reported as never awaited."""
    if inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED:
        awaitable.close()
