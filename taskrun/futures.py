"""Futures: handles to task runs, usable from sync and async code alike.

A :class:`TaskFuture` is done when its run reaches a final state. Blocking calls
(:meth:`~TaskFuture.wait`, :meth:`~TaskFuture.result`) work from any thread that
is not running an event loop; awaiting (``await future``,
:meth:`~TaskFuture.wait_async`, :meth:`~TaskFuture.result_async`) works on any
asyncio or trio loop, in any thread.

Cancellation: cancelling a coroutine that awaits a future stops the waiting only;
the run itself goes on (call :meth:`TaskFuture.cancel` to cancel the run).

Example::

    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(add, {"x": 1, "y": 2})
        assert future.result() == 3
"""

from __future__ import annotations

import abc
import concurrent.futures
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from ._core._backend import current_backend, in_event_loop_thread
from ._core._dispatch import ThreadWaiter
from ._core._workers import in_stepping_worker
from .context import TaskRunContext, current_run
from .states import State, StateType

if TYPE_CHECKING:
    from ._core._backend import Backend
    from ._distributed import DistributedFuture

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


def _futures_of(futures: Iterable[TaskFuture[Any]], what: str) -> list[TaskFuture[Any]]:
    """``futures`` as a list, or a TypeError naming ``what`` and the item that is not a future."""
    try:
        items = list(futures)
    except TypeError:
        if not hasattr(futures, "__iter__"):
            raise TypeError(
                f"{what} takes an iterable of futures, got {type(futures).__name__} {futures!r}"
            ) from None
        raise
    for index, item in enumerate(items):
        if not isinstance(item, TaskFuture):
            raise _not_a_future(what, index, item)
    return items


def _not_a_future(what: str, index: int, item: Any) -> TypeError:
    return TypeError(
        f"{what} takes futures (returned by submit/map); item {index} is "
        f"{item!r} of type {type(item).__name__}"
    )


def _check_items(futures: list[Any], what: str) -> None:
    """Raise the TypeError for the first item of ``futures`` that is not a future."""
    for index, item in enumerate(futures):
        if not isinstance(item, TaskFuture):
            raise _not_a_future(what, index, item)


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


def _slot_holder() -> TaskRunContext | None:
    run = current_run.get()
    if run is None:
        return None
    holder = run._slot_run or run
    if holder._holds_slot and holder._slots is not None:
        return holder
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
            import anyio

            with anyio.move_on_after(timeout):
                await self._waiter.wait()


def _block_until(register: Callable[[Callable[[Any], None]], None], timeout: float | None,
                 unregister: Callable[[Callable[[Any], None]], None]) -> None:
    """Park this thread until a callback fires, giving back the run's slot meanwhile."""
    waiter = ThreadWaiter()
    register(waiter)
    holder = _slot_holder()
    if holder is not None:
        holder._slots.release_threadsafe(holder)
    try:
        if not waiter.wait(timeout):
            unregister(waiter)
    finally:
        # A run cancelled meanwhile has ended without its slot; its body goes on
        # (it cannot be stopped) but takes no slot again, or the slot would leak.
        if holder is not None and not holder._cancel_requested:
            holder._slots.reacquire_blocking(holder)


async def _await_until(register: Callable[[Callable[[Any], None]], None], timeout: float | None,
                       unregister: Callable[[Callable[[Any], None]], None]) -> None:
    """Park this coroutine until a callback fires, giving back the run's slot meanwhile."""
    backend = current_backend()
    notifier = _LoopNotifier(backend)
    register(notifier)
    holder = _slot_holder()
    if holder is not None and not holder._slots.is_own_loop():
        holder = None
    if holder is not None:
        holder._slots.release(holder)
    try:
        await notifier.wait(timeout)
    finally:
        unregister(notifier)
        if holder is not None:
            await holder._slots.reacquire(holder)


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

    __slots__ = ("__weakref__", "_callbacks", "_final", "_run", "_state")

    def __init__(self, run: TaskRunContext | None, state: State[Any] | None = None) -> None:
        self._run = run
        self._state: State[Any] = state if state is not None else State(StateType.PENDING)
        self._final = False
        self._callbacks: list[Callable[[Any], object]] | None = None

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
                if self._callbacks is None:
                    self._callbacks = [fn]
                else:  # no call under the lock: a thread never gets switched out holding it
                    self._callbacks += (fn,)
                return
        _call_callback(fn, self)

    def _remove_done_callback(self, fn: Callable[[Any], object]) -> None:
        with _lock:
            if self._callbacks is not None:
                try:
                    self._callbacks.remove(fn)
                except ValueError:
                    pass

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
        if callbacks:
            for fn in callbacks:
                _call_callback(fn, self)
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

    __slots__ = ("_wrapped",)

    def __init__(self, run: TaskRunContext | None, state: State[Any] | None = None) -> None:
        super().__init__(run, state)
        self._wrapped: concurrent.futures.Future[R] | None = None

    @property
    def wrapped_future(self) -> concurrent.futures.Future[R]:
        """A :class:`concurrent.futures.Future` that mirrors this run's outcome.

        Made on first access (so runs nobody asks about do not pay for one); it
        completes with the value, or the exception, when the run is final.
        """
        with _lock:
            wrapped = self._wrapped
            if wrapped is None:
                wrapped = self._wrapped = concurrent.futures.Future()
                wrapped.set_running_or_notify_cancel()
                mirror = True
            else:
                mirror = False
        if mirror:
            self.add_done_callback(_mirror_into(wrapped))
        return wrapped

    def _request_cancel(self) -> bool:
        run = self._run
        if run is None or run._slots is None:
            return False
        return run._slots.request_cancel(run)  # type: ignore[no-any-return]


def _mirror_into(wrapped: concurrent.futures.Future[Any]) -> Callable[[TaskFuture[Any]], None]:
    def mirror(future: TaskFuture[Any]) -> None:
        state = future.state
        if state.is_completed():
            wrapped.set_result(state.data)
        else:
            wrapped.set_exception(state.exception() or RuntimeError(state.name))

    return mirror


class _Countdown:
    """A done callback counting unfinished futures down; fires its waiter at zero
    (or at the first failure, when asked to).

    Counting is lock-free (``next`` on an :func:`itertools.count` is atomic), so
    the many threads that finish runs never queue on one lock here.
    """

    __slots__ = ("_calls", "_fire", "_stop_on_failure", "_total", "failed")

    def __init__(self, remaining: int, stop_on_failure: bool, fire: Callable[[Any], None]) -> None:
        self._total = remaining
        self._calls = itertools.count(1)
        self._stop_on_failure = stop_on_failure
        self._fire = fire
        self.failed: TaskFuture[Any] | None = None

    def __call__(self, future: TaskFuture[Any]) -> None:
        fire = next(self._calls) == self._total
        if self._stop_on_failure and self.failed is None and not future.state.is_completed():
            self.failed = future
            fire = True
        if fire:
            self._fire(None)


def _unfinished(futures: list[TaskFuture[Any]], what: str = "FutureList") -> list[TaskFuture[Any]]:
    seen: set[int] = set()
    out = []
    try:
        for f in futures:
            if not f._final and id(f) not in seen:
                seen.add(id(f))
                out.append(f)
    except AttributeError:  # the items are checked only when one is not a future
        _check_items(futures, what)
        raise
    return out


def _first_failure(futures: Iterable[TaskFuture[Any]]) -> TaskFuture[Any] | None:
    for f in futures:
        if f._final and not f._state.is_completed():
            return f
    return None


class _CountdownWait:
    """Registers one countdown on a set of unfinished futures, and takes it back."""

    def __init__(self, pending: list[TaskFuture[Any]], stop_on_failure: bool) -> None:
        self._pending = pending
        self._stop_on_failure = stop_on_failure
        self._countdown: _Countdown | None = None

    def register(self, fire: Callable[[Any], None]) -> None:
        self._countdown = _Countdown(len(self._pending), self._stop_on_failure, fire)
        for f in self._pending:
            f.add_done_callback(self._countdown)

    def unregister(self, _: Any) -> None:
        if self._countdown is not None and any(not f._final for f in self._pending):
            for f in self._pending:
                f._remove_done_callback(self._countdown)


def _wait_many(futures: list[TaskFuture[Any]], timeout: float | None, stop_on_failure: bool,
               what: str = "FutureList") -> None:
    pending = _unfinished(futures, what)
    if not pending or (stop_on_failure and _first_failure(futures) is not None):
        return
    _refuse_blocking_on_loop("waiting for futures")
    wait = _CountdownWait(pending, stop_on_failure)
    _block_until(wait.register, timeout, wait.unregister)


async def _wait_many_async(futures: list[TaskFuture[Any]], timeout: float | None,
                           stop_on_failure: bool, what: str = "FutureList") -> None:
    pending = _unfinished(futures, what)
    if not pending or (stop_on_failure and _first_failure(futures) is not None):
        await current_backend().checkpoint()
        return
    wait = _CountdownWait(pending, stop_on_failure)
    await _await_until(wait.register, timeout, wait.unregister)


def _results(futures: list[TaskFuture[Any]], timeout: float | None, raise_on_failure: bool) -> list[Any]:
    failed = _first_failure(futures) if raise_on_failure else None
    if failed is not None:
        failed._state.result(True)
    for f in futures:
        if not f._final:
            unfinished = sum(1 for g in futures if not g._final)
            raise TimeoutError(f"{unfinished} of {len(futures)} runs were not finished after {timeout} s")
    return [f._state.result(raise_on_failure) for f in futures]


class FutureList(list[F]):
    """The futures returned by ``map``, in input order.

    Example::

        futures = double.map([1, 2, 3])
        assert futures.result() == [2, 4, 6]
    """

    def wait(self, timeout: float | None = None) -> None:
        """Block until every run is final, or ``timeout`` passes."""
        _wait_many(list(self), check_timeout(timeout), stop_on_failure=False)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        """Values in input order; raises the first failure as soon as it happens."""
        timeout = check_timeout(timeout)
        futures: list[TaskFuture[Any]] = list(self)
        _wait_many(futures, timeout, stop_on_failure=raise_on_failure)
        return _results(futures, timeout, raise_on_failure)

    async def wait_async(self, timeout: float | None = None) -> None:
        """Await every run, without blocking the loop."""
        await _wait_many_async(list(self), check_timeout(timeout), stop_on_failure=False)

    async def result_async(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        """The async twin of :meth:`result`."""
        timeout = check_timeout(timeout)
        futures: list[TaskFuture[Any]] = list(self)
        await _wait_many_async(futures, timeout, stop_on_failure=raise_on_failure)
        return _results(futures, timeout, raise_on_failure)


class DoneAndNotDoneFutures(NamedTuple):
    """What :func:`wait` returns."""

    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def _split(futures: list[TaskFuture[Any]]) -> DoneAndNotDoneFutures:
    done = {f for f in futures if f._final}
    return DoneAndNotDoneFutures(done, {f for f in futures if not f._final})


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Block until all futures are final or ``timeout`` passes; returns (done, not_done).

    Example::

        done, not_done = wait(futures, timeout=5)
    """
    timeout = check_timeout(timeout)
    items = _futures_of(futures, "wait(futures)")
    _wait_many(items, timeout, stop_on_failure=False)
    return _split(items)


async def wait_async(
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None
) -> DoneAndNotDoneFutures:
    """The async twin of :func:`wait`.

    Example::

        done, not_done = await wait_async(futures, timeout=5)
    """
    timeout = check_timeout(timeout)
    items = _futures_of(futures, "wait_async(futures)")
    await _wait_many_async(items, timeout, stop_on_failure=False)
    return _split(items)


def as_completed(
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None
) -> Iterator[TaskFuture[Any]]:
    """Yield each future as it finishes (finished ones first).

    Raises :class:`TimeoutError`, naming how many are unfinished, when
    ``timeout`` passes first.

    Example::

        for future in as_completed(futures):
            print(future.result())
    """
    timeout = check_timeout(timeout)
    unique = list(dict.fromkeys(_futures_of(futures, "as_completed(futures)")))
    return _as_completed(unique, timeout)


def _as_completed(unique: list[TaskFuture[Any]], timeout: float | None) -> Iterator[TaskFuture[Any]]:
    deadline = None if timeout is None else time.monotonic() + timeout
    finished: queue.SimpleQueue[TaskFuture[Any]] = queue.SimpleQueue()
    pending = 0
    for f in unique:
        if f._final:
            yield f
        else:
            pending += 1
            f.add_done_callback(finished.put)
    if pending:
        _refuse_blocking_on_loop("as_completed()")
    while pending:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            f = finished.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(f"{pending} (of {len(unique)}) futures unfinished after {timeout} s") from None
        pending -= 1
        yield f


async def as_completed_async(
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None
) -> AsyncIterator[TaskFuture[Any]]:
    """Async iterator yielding each future as it finishes.

    Example::

        async for future in as_completed_async(futures):
            print(await future)
    """
    import anyio

    timeout = check_timeout(timeout)
    unique = list(dict.fromkeys(_futures_of(futures, "as_completed_async(futures)")))
    backend = current_backend()
    finished: list[TaskFuture[Any]] = []
    notifier_box: list[_LoopNotifier] = [_LoopNotifier(backend)]
    guard = threading.Lock()

    def on_done(f: TaskFuture[Any]) -> None:
        with guard:
            finished.append(f)
            notifier = notifier_box[0]
        notifier(None)

    pending = 0
    for f in unique:
        if f._final:
            yield f
        else:
            pending += 1
            f.add_done_callback(on_done)
    deadline = None if timeout is None else anyio.current_time() + timeout
    while pending:
        with guard:
            batch, finished[:] = finished[:], []
            if not batch:
                notifier = notifier_box[0] = _LoopNotifier(backend)
        if not batch:
            remaining = None if deadline is None else max(0.0, deadline - anyio.current_time())
            await notifier.wait(remaining)
            with guard:
                if not finished and deadline is not None and anyio.current_time() >= deadline:
                    raise TimeoutError(f"{pending} (of {len(unique)}) futures unfinished after {timeout} s")
            continue
        for f in batch:
            pending -= 1
            yield f


def _unfinished_in(expr: Any) -> list[TaskFuture[Any]]:
    """Futures in ``expr`` (and in the results of finished ones) not final yet."""
    from ._resolve import collect_futures

    return [f for f, _ in collect_futures(expr) if not f._final]


def _result_of(future: TaskFuture[Any], allowed: bool) -> Any:
    return future.state.result(not allowed)


def _resolve(expr: Any, to_state: bool) -> Any:
    from ._resolve import replace_futures

    # Finished futures may return futures of their own, so wait until none is left.
    while pending := _unfinished_in(expr):
        _refuse_blocking_on_loop("resolving futures")
        _wait_many(pending, None, stop_on_failure=False)
    if to_state:
        return replace_futures(expr, lambda f, allowed: f.state, traverse_results=False)
    return replace_futures(expr, _result_of)


async def resolve_results_async(expr: Any) -> Any:
    """The async twin of :func:`resolve_futures_to_results` (used by async flows)."""
    from ._resolve import replace_futures

    while pending := _unfinished_in(expr):
        await _wait_many_async(pending, None, stop_on_failure=False)
    return replace_futures(expr, _result_of)


def resolve_futures_to_states(expr: Any) -> Any:
    """Replace every future nested in ``expr`` with its final state (blocks).

    Example::

        states = resolve_futures_to_states({"a": fut_a, "b": [fut_b]})
    """
    return _resolve(expr, to_state=True)


def resolve_futures_to_results(expr: Any) -> Any:
    """Replace every future nested in ``expr`` with its result (blocks; raises failures).

    Example::

        values = resolve_futures_to_results([fut_a, (fut_b, 3)])
    """
    return _resolve(expr, to_state=False)


def __getattr__(name: str) -> Any:
    # DistributedFuture lives with the Dask support; importing it needs no Dask.
    if name == "DistributedFuture":
        from ._distributed import DistributedFuture

        return DistributedFuture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TaskFuture",
    "ConcurrentFuture",
    "DistributedFuture",
    "FutureList",
    "DoneAndNotDoneFutures",
    "wait",
    "wait_async",
    "as_completed",
    "as_completed_async",
    "resolve_futures_to_states",
    "resolve_futures_to_results",
]
