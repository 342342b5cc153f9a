"""The future of one task run: its state, its callbacks, and waiting on it."""

from __future__ import annotations

import abc
import concurrent.futures
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .._core._backend import current_backend, in_event_loop_thread
from .._core._dispatch import ThreadWaiter
from .._core._workers import in_stepping_worker
from .._observe import _events
from ..states import State, StateType
from ._vars import current_run

if TYPE_CHECKING:
    from .._core._backend import Backend
    from .._core._dispatch import Dispatcher
    from ._record import TaskRunContext

R = TypeVar("R")
F = TypeVar("F", bound="TaskFuture[Any]")

logger = logging.getLogger("taskrun.futures")

# One lock for every future's bookkeeping: the sections it guards are a few
# attribute writes long, and a lock per future would cost more than it saves.
_lock = threading.Lock()


def check_timeout(timeout: float | None) -> float | None:
    """Reject negative, NaN and non-numeric timeouts; return the timeout to use.

    A timeout too large for the platform's waits (``math.inf``, ``1e10``) means
    "wait for ever" and comes back as None.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be None or a number of seconds, got {timeout!r}")
    if not (timeout >= 0):
        raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")
    if timeout >= threading.TIMEOUT_MAX:
        return None
    return timeout


def _refuse_blocking_on_loop(what: str) -> None:
    if in_event_loop_thread():
        raise RuntimeError(
            f"{what} would block the event loop running in this thread; "
            f"use the async twin instead (e.g. `await future` or `await future.wait_async()`)"
        )
    if in_stepping_worker():
        raise RuntimeError(
            f"{what} would block a worker thread while it finishes runs (in a done "
            f"callback); keep done callbacks short, and wait in the code that registered them"
        )


def _slot_holder() -> tuple[TaskRunContext, Dispatcher] | None:
    """The run in this context that holds a slot, and its dispatcher (None if none)."""
    run = current_run.get()
    if run is None:
        return None
    holder = run._slot_run or run
    dispatcher = holder.dispatcher
    if holder._holds_slot and dispatcher is not None:
        return holder, dispatcher
    return None


class _LoopNotifier:
    """Wakes one coroutine parked on a waiter of its own loop, from any thread."""

    __slots__ = ("_backend", "_waiter")

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._waiter = backend.create_waiter()

    def __call__(self, _: Any = None) -> None:
        if self._backend.is_loop_thread():
            self._waiter.set(None)
        else:
            self._backend.call_soon_threadsafe(self._waiter.set, None)

    async def wait(self, timeout: float | None) -> None:
        if timeout is None:
            await self._waiter.wait()
        else:
            with anyio.move_on_after(timeout):
                await self._waiter.wait()


def _block_until(register: Callable[[Callable[[Any], None]], None], timeout: float | None,
                 unregister: Callable[[Callable[[Any], None]], None]) -> None:
    """Park this thread until a callback fires, giving back the run's slot meanwhile."""
    waiter = ThreadWaiter()
    register(waiter)
    held = _slot_holder()
    if held is not None:
        held[1].release_threadsafe(held[0])
    try:
        if not waiter.wait(timeout):
            unregister(waiter)
    finally:
        # A run cancelled meanwhile has ended without its slot; its body goes on
        # (it cannot be stopped) but takes no slot again, or the slot would leak.
        if held is not None and not held[0]._cancel_requested:
            held[1].reacquire_blocking(held[0])


async def _await_until(register: Callable[[Callable[[Any], None]], None], timeout: float | None,
                       unregister: Callable[[Callable[[Any], None]], None]) -> None:
    """Park this coroutine until a callback fires, giving back the run's slot meanwhile."""
    backend = current_backend()
    notifier = _LoopNotifier(backend)
    register(notifier)
    held = _slot_holder()
    if held is not None and not held[1].is_own_loop():
        held = None
    if held is not None:
        held[1].release(held[0])
    try:
        await notifier.wait(timeout)
    finally:
        unregister(notifier)
        if held is not None:
            await held[1].reacquire(held[0])


class TaskFuture(abc.ABC, Generic[R]):
    """A handle to one task run.

    Consumer methods: :attr:`state`, :meth:`done`, :meth:`wait`, :meth:`result`,
    :meth:`add_done_callback`, :meth:`cancel`, ``await future``,
    :meth:`wait_async`, :meth:`result_async`. By the time a wait returns or a
    callback is called, the run's hooks have run and :attr:`state` is final.

    Example::

        future = add.submit(1, 2)
        future.wait()
        print(future.state.name, future.result())
    """

    __slots__ = ("__weakref__", "_callbacks", "_final", "_release", "_run", "_state")

    def __init__(self, run: TaskRunContext | None, state: State[Any] | None = None) -> None:
        self._run = run
        self._state: State[Any] = state if state is not None else State(StateType.PENDING)
        self._final = False
        #: No done callback (None), one (the callable itself) or several (a list).
        self._callbacks: Callable[[Any], object] | list[Callable[[Any], object]] | None = None
        self._release: Callable[[], object] | None = None

    # ------------------------------------------------------------------ consumer side

    @property
    def task_run_id(self) -> uuid.UUID:
        """The id of the run this future stands for."""
        assert self._run is not None
        return self._run.task_run_id

    @property
    def state(self) -> State[R]:
        """The run's current state; never blocks."""
        return self._state

    def done(self) -> bool:
        """True once the run is in a final state; never blocks."""
        return self._final

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], object]) -> None:
        """Call ``fn(future)`` once, when the run is final (at once if it is already).

        The callback runs in the thread that finishes the run (a worker thread
        for sync tasks, the loop thread for async ones): keep it short; a
        blocking wait there raises :class:`RuntimeError`. An exception it raises
        is logged.
        """
        with _lock:
            if not self._final:
                callbacks = self._callbacks
                if callbacks is None:  # one callback is kept as itself: no list per run
                    self._callbacks = fn
                elif isinstance(callbacks, list):
                    # no call under the lock: a thread never gets switched out holding it
                    callbacks += (fn,)
                else:
                    self._callbacks = [callbacks, fn]
                return
        _call_callback(fn, self)

    def _release_when_final(self, release: Callable[[], object]) -> None:
        """Call ``release()`` once, when the run is final (at once if it is already).

        For the one permit a run's tag limits gave it at admission: a slot, not a
        done callback, so admitting a tagged run takes no lock and makes no list.
        One per future.
        """
        self._release = release
        if self._final:  # _finish may have read the slot before it was set: claim it
            with _lock:
                release, self._release = self._release, None
            if release is not None:
                release()

    def _remove_done_callback(self, fn: Callable[[Any], object]) -> None:
        with _lock:
            callbacks = self._callbacks
            if isinstance(callbacks, list):
                try:
                    callbacks.remove(fn)
                except ValueError:
                    pass
            elif callbacks is not None and callbacks == fn:
                self._callbacks = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run is final, or ``timeout`` seconds pass (no error then).

        Raises :class:`RuntimeError` on a thread running an event loop: await
        :meth:`wait_async` there. Inside a run, the run's slot is given back while
        it waits.
        """
        timeout = check_timeout(timeout)
        if self._final:
            return
        _refuse_blocking_on_loop("future.wait()")
        _block_until(self.add_done_callback, timeout, self._remove_done_callback)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Block until the run is final and return its value.

        Raises the task's own exception if it failed (or returns it with
        ``raise_on_failure=False``), and :class:`TimeoutError` when ``timeout``
        passes first.
        """
        if not self._final or timeout is not None:  # (a final run's value, at once)
            self.wait(timeout)
            if not self._final:
                raise TimeoutError(f"the run was not finished after {timeout} s (state: {self._state.name})")
        return self._state.result(raise_on_failure)  # type: ignore[return-value]

    async def wait_async(self, timeout: float | None = None) -> None:
        """Wait for the run without blocking the loop (asyncio or trio, any thread).

        Always yields to the loop once, even when the run is already done.
        Cancelling the caller stops the waiting, not the run.
        """
        timeout = check_timeout(timeout)
        if self._final:
            await current_backend().checkpoint()
            return
        await _await_until(self.add_done_callback, timeout, self._remove_done_callback)

    async def result_async(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Await the run and return its value; the async twin of :meth:`result`."""
        await self.wait_async(timeout)
        if not self._final:
            raise TimeoutError(f"the run was not finished after {timeout} s (state: {self._state.name})")
        return self._state.result(raise_on_failure)  # type: ignore[return-value]

    def __await__(self) -> Generator[Any, None, R]:
        return self.result_async().__await__()

    def cancel(self) -> bool:
        """Ask for the run to be cancelled.

        A run that has not started is cancelled at once. A running async body is
        cancelled at its next ``await``. A running sync body cannot be stopped: its
        future finishes ``Cancelled`` promptly, ``cancel_requested()`` turns true
        in its context, and its thread is reclaimed when the function returns.
        Returns False when the run was already final.
        """
        if self._final:
            return False
        return self._request_cancel()

    @abc.abstractmethod
    def _request_cancel(self) -> bool:
        """Deliver a cancel request to whatever executes the run."""

    # ------------------------------------------------------------------ producer side

    def _set_state(self, state: State[Any]) -> None:
        """Record a non-final state."""
        self._state = state

    def _finish(self, state: State[Any]) -> bool:
        """Record the final state and call the callbacks; False if it was final already."""
        with _lock:
            if self._final:
                return False
            self._state = state
            self._final = True
            callbacks, self._callbacks = self._callbacks, None
            release, self._release = self._release, None
        if release is not None:
            try:
                release()
            except BaseException:
                logger.exception("releasing the limits of %r failed; it is ignored", self)
        if _events.ACTIVE and self._run is not None:  # every final state passes here, once
            _events.emit_finished(self._run, state)
        if callbacks is not None:
            # contained as in _call_callback (inlined: called for every run)
            if not isinstance(callbacks, list):
                try:
                    callbacks(self)
                except BaseException:
                    logger.exception("done callback %r of %r raised; it is ignored", callbacks, self)
            else:
                for fn in callbacks:
                    try:
                        fn(self)
                    except BaseException:
                        logger.exception("done callback %r of %r raised; it is ignored", fn, self)
        return True

    def __repr__(self) -> str:
        name = self._run.task_run_name if self._run is not None else "?"
        return f"<{type(self).__name__} {name!r} state={self._state.name}>"


def _call_callback(fn: Callable[[Any], object], future: TaskFuture[Any]) -> None:
    # Every exception is contained, SystemExit and CancelledError too: the other
    # callbacks (waiters, dependants' counters) must still be served, and the
    # thread finishing the run is not the callback owner's to stop.
    try:
        fn(future)
    except BaseException:
        logger.exception("done callback %r of %r raised; it is ignored", fn, future)


class ConcurrentFuture(TaskFuture[R]):
    """The future of the thread and process pool runners.

    Example::

        future = runner.submit(add, {"x": 1, "y": 2})
        assert isinstance(future.wrapped_future, concurrent.futures.Future)
    """

    # No slot for the wrapped future, made for few futures: it is kept in
    # _WRAPPED instead (16 bytes less per pending run).
    __slots__ = ()

    def __init__(self, run: TaskRunContext | None, state: State[Any] | None = None) -> None:
        # TaskFuture.__init__, inlined: one call less per run.
        self._run = run
        self._state = state if state is not None else State(StateType.PENDING)
        self._final = False
        self._callbacks = None
        self._release = None

    @property
    def wrapped_future(self) -> concurrent.futures.Future[R]:
        """A :class:`concurrent.futures.Future` that mirrors this run's outcome.

        Made on first access (so runs nobody asks about do not pay for one); it
        completes with the value, or the exception, when the run is final.
        """
        with _lock:
            wrapped = _WRAPPED.get(self)
            if wrapped is None:
                wrapped = _WRAPPED[self] = concurrent.futures.Future()
                wrapped.set_running_or_notify_cancel()
                mirror = True
            else:
                mirror = False
        if mirror:
            self.add_done_callback(_mirror_into(wrapped))
        return wrapped

    def _request_cancel(self) -> bool:
        run = self._run
        if run is None or run.dispatcher is None:
            return False
        return run.dispatcher.request_cancel(run)


#: The wrapped future of each ConcurrentFuture that was asked for one, while it lives.
_WRAPPED: weakref.WeakKeyDictionary[ConcurrentFuture[Any], concurrent.futures.Future[Any]] = (
    weakref.WeakKeyDictionary()
)


def _mirror_into(wrapped: concurrent.futures.Future[Any]) -> Callable[[TaskFuture[Any]], None]:
    def mirror(future: TaskFuture[Any]) -> None:
        state = future.state
        if state.is_completed():
            wrapped.set_result(state.data)
        else:
            wrapped.set_exception(state.exception() or RuntimeError(state.name))

    return mirror
