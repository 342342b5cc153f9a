"""The runner base: what every runner shares (submit, map, imap, cancel, the context managers)."""

from __future__ import annotations

import abc
import contextvars
import enum
import os
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from typing import Any, Generic, TypeVar, overload

import anyio
from typing_extensions import Self

from .._core._backend import current_backend, in_event_loop_thread
from .._core._dispatch import CLOSED_MESSAGE
from .._core._gc import collector_paused
from .._engine._future import TaskFuture, _LoopNotifier
from .._engine._record import TaskRunContext
from .._engine._vars import current_runner, current_tags
from .._engine._waiting import FutureList
from .._observe import _events
from .._observe._summary import Summary
from .._observe._switches import (
    NOT_RECORDING,
    RunnerRecording,
    check_progress,
    progress_for_runs,
    progress_for_stream,
)
from ..annotations import BaseAnnotation
from ..tasks import Task
from ._mapping import Column, split_parameters, stream_parameters

F = TypeVar("F", bound=TaskFuture[Any])
T = TypeVar("T")


def _check_task(task: Any) -> Task[Any, Any]:
    if not isinstance(task, Task):
        raise TypeError(f"runners take a Task (a function decorated with @task), got {task!r}")
    return task


def _check_wait_for(wait_for: Any) -> list[Any] | None:
    """``wait_for`` as a list; a TypeError naming any item that holds no future.

    Items are futures, ``allow_failure(future)``, or lists/tuples/sets of them (a
    ``FutureList`` from ``map``, say). A plain value there is a mistake, not
    something to wait for.
    """
    if wait_for is None:
        return None
    kind = type(wait_for)  # a list or a tuple needs no (slow, abstract-class) isinstance
    if kind is not list and kind is not tuple and (
            isinstance(wait_for, (str, bytes, TaskFuture)) or not hasattr(wait_for, "__iter__")):
        raise TypeError(
            f"wait_for takes an iterable of futures (e.g. wait_for=[future]), "
            f"got {type(wait_for).__name__} {wait_for!r}"
        )
    waits = list(wait_for)
    for item in waits:
        if type(item) not in _FUTURE_TYPES and not _holds_futures(item):
            index = next(i for i, x in enumerate(waits) if x is item)
            raise TypeError(
                f"wait_for takes futures (returned by submit/map); item {index} is "
                f"{item!r} of type {type(item).__name__}"
            )
    return waits


#: Types known to be futures (an ``isinstance`` per item is slow on the hot path).
_FUTURE_TYPES: set[type] = set()


def _holds_futures(item: Any) -> bool:
    if isinstance(item, TaskFuture):
        _FUTURE_TYPES.add(type(item))
        return True
    if isinstance(item, BaseAnnotation):
        return _holds_futures(item.unwrap())
    if isinstance(item, (list, tuple, set, frozenset)):
        return all(_holds_futures(x) for x in item)
    return False


#: Taken for the check-and-set of a runner's state on entry (rare, and a few
#: instructions long: one lock for every runner, so a runner stays picklable).
_entering = threading.Lock()


class RunnerState(enum.Enum):
    """Where a runner is in its life."""

    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"


#: (A member read through the enum class costs a ``__getattr__`` hook: read per submit.)
_OPEN = RunnerState.OPEN


class TaskRunner(abc.ABC, Generic[F]):
    """Base class of task runners.

    Subclasses provide ``_open_sync``/``_close_sync``, ``_open_async``/``_close_async``,
    ``_submit_runs`` and ``_cancel_all``; everything else (map, imap, the context
    managers, the current-runner context) is shared.

    Example::

        def run_all(runner: TaskRunner, items: list[int]) -> list[int]:
            with runner:                      # any runner: threads, processes, Dask
                return runner.map(square, {"x": items}).result()
    """

    def __init__(self) -> None:
        self._state = RunnerState.NEW
        self._token: contextvars.Token[Any] | None = None
        self._record_asked: tuple[str | os.PathLike[str] | None, bool] = (None, False)
        self._recording: RunnerRecording | None = None

    # ------------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        """Lower-case class name without ``taskrunner``: ``"threadpool"``."""
        return type(self).__name__.lower().replace("taskrunner", "")

    @abc.abstractmethod
    def duplicate(self) -> Self:
        """A new, unstarted runner with the same configuration."""

    @abc.abstractmethod
    def _config(self) -> tuple[Any, ...]:
        """The configuration compared by ``==``."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._config() == other._config()

    def __hash__(self) -> int:
        return hash((type(self), self._config()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self._config()))}) [{self._state.value}]"

    # ------------------------------------------------------------------ submission

    def _check_open(self) -> None:
        if self._state is not RunnerState.OPEN:
            if self._state is RunnerState.NEW or self._state is RunnerState.OPENING:
                raise RuntimeError(
                    "Task runner is not started; enter it first: `with runner:` or `async with runner:`"
                )
            raise RuntimeError(CLOSED_MESSAGE)

    def _new_runs(self, task: Task[Any, Any], params_list: list[dict[str, Any]] | Column,
                  wait_for: Iterable[Any] | None,
                  dependencies: dict[str, set[Any]] | None = None) -> list[TaskRunContext]:
        waits = _check_wait_for(wait_for)
        inherited = current_tags.get()
        tags = task.tags | inherited if inherited else task.tags
        context = contextvars.copy_context()
        runs = []
        if type(params_list) is Column:  # each record holds its bare value (see the record)
            name = params_list.name
            for value in params_list.values:
                runs.append(TaskRunContext(task, value, tags, context, waits, name) if type(value) is not dict
                            else TaskRunContext(task, {name: value}, tags, context, waits))
            if _events.ACTIVE:
                _events.emit_submitted_runs(runs)
            return runs
        for parameters in params_list:  # type: ignore[union-attr]  # a list of dicts (Column: above)
            # All runs of one hand-off share the submitter's snapshot; each gets a
            # copy of its own when it starts (so a million queued runs do not
            # hold a million contexts).
            run = TaskRunContext(task, parameters, tags, context, waits)
            if dependencies:
                run.add_dependencies(dependencies)
            runs.append(run)
        if _events.ACTIVE:
            _events.emit_submitted_runs(runs)
        return runs

    @abc.abstractmethod
    def _submit_runs(self, runs: list[TaskRunContext]) -> list[F]:
        """Hand runs over for execution; one future per run, in order."""

    def submit(self, task: Task[Any, Any], parameters: dict[str, Any],
               wait_for: Iterable[Any] | None = None,
               dependencies: dict[str, set[Any]] | None = None) -> F:
        """Submit one run of ``task`` and return its future at once.

        Futures anywhere in ``parameters`` are resolved before the run starts and
        recorded in its ``dependencies``; ``wait_for`` futures must finish first.

        Example::

            future = runner.submit(add, {"x": 1, "y": 2})
        """
        if self._state is not _OPEN:
            self._check_open()
        if type(task) is not Task:  # (a subclass, or not a task: the check says which)
            _check_task(task)
        task.check_parameters(parameters)
        return self._submit_runs(self._new_runs(task, [parameters], wait_for, dependencies))[0]

    def _submit_bound(self, task: Task[Any, Any], parameters: dict[str, Any],
                      wait_for: Iterable[Any] | None) -> F:
        """:meth:`submit` for parameters bound by ``task.submit`` (checked already)."""
        if self._state is not _OPEN:
            self._check_open()
        return self._submit_runs(self._new_runs(task, [parameters], wait_for))[0]

    def map(self, task: Task[Any, Any], parameters: dict[str, Any],
            wait_for: Iterable[Any] | None = None, progress: bool = False) -> FutureList[F]:
        """Submit one run per element of the iterable parameters.

        Iterables are split; everything else (and ``unmapped(...)``) is passed to
        every run. A future whose result is a list is mapped over. Raises
        :class:`MappingLengthMismatch` or :class:`MappingMissingIterable`.
        ``progress=True`` shows the runs' progress until they are all final.

        Example::

            futures = runner.map(add, {"x": [1, 2, 3], "y": unmapped(10)})
        """
        self._check_open()
        if not isinstance(parameters, dict):
            raise TypeError(f"parameters must be a dict, got {type(parameters).__name__}")
        check_progress(progress, "map()")
        return self._map(_check_task(task), parameters, wait_for, check=True, progress=progress)

    def _map_bound(self, task: Task[Any, Any], parameters: dict[str, Any],
                   wait_for: Iterable[Any] | None, progress: bool = False) -> FutureList[F]:
        """:meth:`map` for parameters bound by ``task.map`` (checked already)."""
        self._check_open()
        return self._map(task, parameters, wait_for, check=False, progress=progress)

    def _map(self, task: Task[Any, Any], parameters: dict[str, Any],
             wait_for: Iterable[Any] | None, check: bool,
             progress: bool = False) -> FutureList[F]:
        # Splitting may wait for a future's result: the collector stays on for that.
        params_list = split_parameters(task.name, parameters)
        if check and params_list:
            task.check_parameters({params_list.name: params_list.values[0]}
                                  if isinstance(params_list, Column) else params_list[0])
        with collector_paused():
            runs = self._new_runs(task, params_list, wait_for)
            if progress:
                progress_for_runs(task.name, runs)  # ends by itself when the runs are final
            return FutureList(self._submit_runs(runs))

    def _default_in_flight(self) -> int:
        return 2 * int(getattr(self, "max_workers", 8))

    @overload
    def imap(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
             max_in_flight: int | None = None, ordered: bool = True) -> Iterator[T]: ...
    @overload
    def imap(self, task: Task[..., T], parameters: dict[str, Any], max_in_flight: int | None = None,
             ordered: bool = True) -> Iterator[T]: ...

    def imap(self, task: Task[Any, Any], parameters: dict[str, Any], max_in_flight: int | None = None,
             ordered: bool = True, progress: bool = False) -> Iterator[Any]:
        """Streaming map for sync code: yields results, with at most ``max_in_flight``
        runs alive (default: twice ``max_workers``). ``progress=True`` shows their progress.

        Iterables (generators too) are read lazily. Results come in input order
        when ``ordered``, else as they finish. A failed run raises when its
        result is reached.

        Example::

            for value in runner.imap(square, {"x": range(1_000_000)}, max_in_flight=64):
                total += value
        """
        self._check_open()
        check_progress(progress, "imap()")
        limit = self._check_in_flight(max_in_flight)
        items = stream_parameters(_check_task(task).name, parameters)
        return self._imap(task, items, limit, ordered, parameters if progress else None)

    def _check_in_flight(self, max_in_flight: int | None) -> int:
        if max_in_flight is None:
            return self._default_in_flight()
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be a whole number >= 1, got {max_in_flight!r}")
        return max_in_flight

    def _imap(self, task: Task[Any, Any], items: Iterator[dict[str, Any]], limit: int,
              ordered: bool, shown_for: dict[str, Any] | None = None) -> Iterator[Any]:
        finished: queue.SimpleQueue[TaskFuture[Any]] = queue.SimpleQueue()
        stream = _Stream(self, task, items, limit, None if ordered else finished.put)
        shown = progress_for_stream(task.name, shown_for) if shown_for is not None else None
        try:
            while True:
                stream.fill()
                if not stream.alive:
                    return
                if ordered:
                    future = stream.take_first()
                else:
                    if in_event_loop_thread():
                        raise RuntimeError("imap() blocks; use `async for ... in runner.aimap(...)` here")
                    future = stream.take(finished.get())
                yield future.result()
        finally:
            stream.cancel_rest()
            if shown is not None:
                shown.close_later()

    @overload
    def aimap(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
              max_in_flight: int | None = None, ordered: bool = True) -> AsyncIterator[T]: ...
    @overload
    def aimap(self, task: Task[..., T], parameters: dict[str, Any], max_in_flight: int | None = None,
              ordered: bool = True) -> AsyncIterator[T]: ...

    async def aimap(self, task: Task[Any, Any], parameters: dict[str, Any],
                    max_in_flight: int | None = None, ordered: bool = True,
                    progress: bool = False) -> AsyncIterator[Any]:
        """The async-iterator twin of :meth:`imap`.

        Example::

            async for value in runner.aimap(square, {"x": range(100)}):
                print(value)
        """
        self._check_open()
        check_progress(progress, "aimap()")
        limit = self._check_in_flight(max_in_flight)
        items = stream_parameters(_check_task(task).name, parameters)
        done: deque[TaskFuture[Any]] = deque()
        guard = threading.Lock()
        notifier: list[Any] = [None]
        backend = current_backend()

        def on_done(f: TaskFuture[Any]) -> None:
            with guard:
                done.append(f)
                wake = notifier[0]
                notifier[0] = None
            if wake is not None:
                wake(None)

        stream = _Stream(self, task, items, limit, None if ordered else on_done)
        shown = progress_for_stream(task.name, parameters) if progress else None
        try:
            while True:
                stream.fill()
                if not stream.alive:
                    return
                if ordered:
                    yield await stream.take_first().result_async()
                    continue
                while True:
                    with guard:
                        first = done.popleft() if done else None
                        if first is None:
                            waiter = notifier[0] = _LoopNotifier(backend)
                    if first is not None:
                        break
                    await waiter.wait(None)
                yield stream.take(first).result()
        finally:
            stream.cancel_rest()
            if shown is not None:
                shown.close_later()

    # ------------------------------------------------------------------ cancellation

    def cancel_all(self) -> None:
        """Cancel every run of this runner that is not final yet."""
        if self._state is RunnerState.OPEN:
            self._cancel_all()

    @abc.abstractmethod
    def _cancel_all(self) -> None: ...

    # ------------------------------------------------------------------ context managers

    def _enter_state(self) -> None:
        """Claim the runner for one entry: of two threads entering at once, one gets in."""
        with _entering:
            state = self._state
            if state is RunnerState.NEW:
                self._state = RunnerState.OPENING
                return
        if state is RunnerState.CLOSED:
            raise RuntimeError(
                f"{type(self).__name__} was closed; use runner.duplicate() for a fresh one"
            )
        raise RuntimeError(f"{type(self).__name__} is already entered; a runner can be entered once")

    def _enter_failed(self) -> None:
        self._state = RunnerState.NEW  # it never opened: it may be entered again

    def __enter__(self) -> Self:
        self._enter_state()
        try:
            self._open_sync()
        except BaseException:
            self._enter_failed()
            raise
        self._state = RunnerState.OPEN
        self._token = current_runner.set(self)
        self._recording = RunnerRecording.open(*self._record_asked)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._close_sync(failed=exc_type is not None)
        finally:
            self._state = RunnerState.CLOSED
            self._reset_current()
            if self._recording is not None:
                self._recording.close()

    async def __aenter__(self) -> Self:
        self._enter_state()
        try:
            await self._open_async()
        except BaseException:
            self._enter_failed()
            raise
        self._state = RunnerState.OPEN
        self._token = current_runner.set(self)
        self._recording = RunnerRecording.open(*self._record_asked)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self._close_async(failed=exc_type is not None)
        finally:
            self._state = RunnerState.CLOSED
            self._reset_current()
            if self._recording is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._recording.close)

    # ------------------------------------------------------------------ records

    def record(self, path: str | os.PathLike[str] | None = None) -> Self:
        """Record this runner's runs while it is open, for :meth:`summary`; ``path`` also
        appends one JSON line per run there. Returns the runner, to enter it.

        Example::

            with ThreadPoolTaskRunner().record("runs.jsonl") as runner:
                runner.map(square, {"x": range(10)}).wait()
            print(runner.summary())
        """
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"record() takes a file path such as 'runs.jsonl' (or nothing), got {path!r}")
        self._record_asked = (path, True)
        if self._state is RunnerState.OPEN and self._recording is None:
            self._recording = RunnerRecording.open(path, True)
        return self

    def summary(self) -> Summary:
        """Counts per task and state, the slowest runs, failures, retries and cached runs
        of the runs recorded while this runner was open (see :meth:`record`; with
        ``TASKRUN_RECORD`` set, runners outside flows record by themselves).

        Example::

            print(runner.summary())
        """
        if self._recording is None:
            raise RuntimeError(NOT_RECORDING)
        return self._recording.summary()

    def _reset_current(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                current_runner.reset(token)
            except ValueError:  # left from another context than it was entered in
                current_runner.set(None)

    @abc.abstractmethod
    def _open_sync(self) -> None: ...

    @abc.abstractmethod
    def _close_sync(self, failed: bool) -> None: ...

    @abc.abstractmethod
    async def _open_async(self) -> None: ...

    @abc.abstractmethod
    async def _close_async(self, failed: bool) -> None: ...


class _Stream:
    """The runs an ``imap``/``aimap`` keeps alive: at most ``limit``, in order."""

    def __init__(self, runner: TaskRunner[Any], task: Task[Any, Any], items: Iterator[dict[str, Any]],
                 limit: int, on_done: Any) -> None:
        self._runner = runner
        self._task = task
        self._items = items
        self._limit = limit
        self._on_done = on_done
        self._exhausted = False
        self.alive: dict[TaskFuture[Any], None] = {}

    def fill(self) -> None:
        while not self._exhausted and len(self.alive) < self._limit:
            try:
                params = next(self._items)
            except StopIteration:
                self._exhausted = True
                return
            future = self._runner.submit(self._task, params)
            self.alive[future] = None
            if self._on_done is not None:
                future.add_done_callback(self._on_done)

    def take_first(self) -> TaskFuture[Any]:
        future = next(iter(self.alive))
        del self.alive[future]
        return future

    def take(self, future: TaskFuture[Any]) -> TaskFuture[Any]:
        del self.alive[future]
        return future

    def cancel_rest(self) -> None:
        for future in self.alive:
            future.cancel()
