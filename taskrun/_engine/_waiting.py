"""Waiting on many futures: lists, ``wait``, ``as_completed``, and resolving nested futures."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import anyio

from .._core._backend import current_backend
from .._observe._switches import check_progress, progress_for_futures
from ..states import StateType
from ._future import (
    TaskFuture,
    _await_until,
    _block_until,
    _LoopNotifier,
    _refuse_blocking_on_loop,
    check_timeout,
)
from ._resolve import collect_futures, replace_futures

F = TypeVar("F", bound="TaskFuture[Any]")
T = TypeVar("T")


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


_COMPLETED = StateType.COMPLETED


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
        if self._stop_on_failure and self.failed is None and future._state.type is not _COMPLETED:
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
        if f._final and f._state.type is not _COMPLETED:
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
    return [s.data if (s := f._state).type is _COMPLETED else s.result(raise_on_failure) for f in futures]


class FutureList(list[F]):
    """The futures returned by ``map``, in input order.

    Example::

        futures = double.map([1, 2, 3])
        assert futures.result() == [2, 4, 6]
    """

    def wait(self, timeout: float | None = None) -> None:
        """Block until every run is final, or ``timeout`` passes."""
        _wait_many(list(self), check_timeout(timeout), stop_on_failure=False)

    # `self: Sequence[TaskFuture[T]]` reads T out of the future type F (for type checkers).
    def result(self: Sequence[TaskFuture[T]], timeout: float | None = None,
               raise_on_failure: bool = True) -> list[T]:
        """Values in input order; raises the first failure as soon as it happens."""
        timeout = check_timeout(timeout)
        futures: list[TaskFuture[Any]] = list(self)
        _wait_many(futures, timeout, stop_on_failure=raise_on_failure)
        return _results(futures, timeout, raise_on_failure)

    async def wait_async(self, timeout: float | None = None) -> None:
        """Await every run, without blocking the loop."""
        await _wait_many_async(list(self), check_timeout(timeout), stop_on_failure=False)

    async def result_async(self: Sequence[TaskFuture[T]], timeout: float | None = None,
                           raise_on_failure: bool = True) -> list[T]:
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
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None, progress: bool = False
) -> Iterator[TaskFuture[Any]]:
    """Yield each future as it finishes (finished ones first).

    Raises :class:`TimeoutError`, naming how many are unfinished, when
    ``timeout`` passes first. ``progress=True`` shows the runs' progress until all are final.

    Example::

        for future in as_completed(futures):
            print(future.result())
    """
    timeout = check_timeout(timeout)
    check_progress(progress, "as_completed()")
    unique = list(dict.fromkeys(_futures_of(futures, "as_completed(futures)")))
    return _as_completed(unique, timeout, progress)


def _as_completed(unique: list[TaskFuture[Any]], timeout: float | None,
                  progress: bool = False) -> Iterator[TaskFuture[Any]]:
    if progress:
        progress_for_futures(unique)  # ends by itself once every future is final
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
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None, progress: bool = False
) -> AsyncIterator[TaskFuture[Any]]:
    """Async iterator yielding each future as it finishes (``progress=True``: with a display).

    Example::

        async for future in as_completed_async(futures):
            print(await future)
    """
    timeout = check_timeout(timeout)
    check_progress(progress, "as_completed_async()")
    unique = list(dict.fromkeys(_futures_of(futures, "as_completed_async(futures)")))
    if progress:
        progress_for_futures(unique)  # ends by itself once every future is final
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
    return [f for f, _ in collect_futures(expr) if not f._final]


def _result_of(future: TaskFuture[Any], allowed: bool) -> Any:
    return future.state.result(not allowed)


def _resolve(expr: Any, to_state: bool) -> Any:
    # Finished futures may return futures of their own, so wait until none is left.
    while pending := _unfinished_in(expr):
        _refuse_blocking_on_loop("resolving futures")
        _wait_many(pending, None, stop_on_failure=False)
    if to_state:
        return replace_futures(expr, lambda f, allowed: f.state, traverse_results=False)
    return replace_futures(expr, _result_of)


async def resolve_results_async(expr: Any) -> Any:
    """The async twin of :func:`resolve_futures_to_results` (used by async flows)."""
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
