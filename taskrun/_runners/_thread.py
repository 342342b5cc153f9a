"""The thread pool runner: async bodies on the runner's loop, sync bodies on worker threads."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
from typing_extensions import Self

from .. import settings
from .._core._backend import Backend, current_backend
from .._core._dispatch import CLOSED_MESSAGE, Dispatcher
from .._core._host import LoopHost
from .._core._workers import join_threads
from .._engine._dispatch_engine import DispatchEngine
from .._engine._executors import Executor, RunnerExecutor
from .._engine._future import ConcurrentFuture
from .._engine._record import TaskRunContext
from .._engine._vars import current_run
from ..states import Pending
from ._base import TaskRunner

if TYPE_CHECKING:
    from .._engine._waiting import FutureList
    from ..tasks import Task

T = TypeVar("T")


class ThreadPoolTaskRunner(TaskRunner[ConcurrentFuture[Any]]):
    """Runs async tasks as coroutines on the runner's loop and sync tasks on worker threads.

    With ``async with`` the loop is the caller's (asyncio or trio), so task
    bodies can share loop-bound objects with the code that submitted them; with
    ``with`` it is an asyncio loop the runner hosts in a background thread.

    ``max_workers`` bounds how many runs execute at once, sync and async alike.
    Default: ``TASKRUN_THREAD_POOL_MAX_WORKERS``, else ``min(32, cpu_count + 4)``.
    A run blocked on another future gives its slot back while it waits, so
    nested submission cannot deadlock, even with ``max_workers=1``.

    Example::

        async with ThreadPoolTaskRunner(max_workers=8) as runner:
            values = await runner.map(fetch, {"url": urls}).result_async()
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is None:
            max_workers = settings.thread_pool_max_workers()
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        self.max_workers = max_workers
        self._dispatcher: Dispatcher | None = None
        self._host: LoopHost | None = None

    def duplicate(self) -> Self:
        return type(self)(max_workers=self.max_workers)

    if TYPE_CHECKING:  # the base's code, typed with the task's return type
        @overload
        def submit(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
                   wait_for: Iterable[Any] | None = None,
                   dependencies: dict[str, set[Any]] | None = None) -> ConcurrentFuture[T]: ...
        @overload
        def submit(self, task: Task[..., T], parameters: dict[str, Any],
                   wait_for: Iterable[Any] | None = None,
                   dependencies: dict[str, set[Any]] | None = None) -> ConcurrentFuture[T]: ...
        def submit(self, task: Any, parameters: Any, wait_for: Any = None,
                   dependencies: Any = None) -> Any: ...
        @overload
        def map(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
                wait_for: Iterable[Any] | None = None,
                progress: bool = False) -> FutureList[ConcurrentFuture[T]]: ...
        @overload
        def map(self, task: Task[..., T], parameters: dict[str, Any],
                wait_for: Iterable[Any] | None = None,
                progress: bool = False) -> FutureList[ConcurrentFuture[T]]: ...
        def map(self, task: Any, parameters: Any, wait_for: Any = None, progress: bool = False) -> Any: ...

    def _config(self) -> tuple[Any, ...]:
        return (self.max_workers,)

    def _executor_for(self, dispatcher: Dispatcher) -> Executor:
        """The engine's executor for this runner's runs (subclasses run bodies elsewhere)."""
        return RunnerExecutor(dispatcher)

    def _make_dispatcher(self, backend: Backend) -> Dispatcher:
        return Dispatcher(backend, self.max_workers, f"taskrun-{self.name}",
                          lambda dispatcher: DispatchEngine(dispatcher, self._executor_for(dispatcher)))

    def _submit_runs(self, runs: list[TaskRunContext]) -> list[ConcurrentFuture[Any]]:
        dispatcher = self._dispatcher  # once: the runner may be leaving on another thread
        if dispatcher is None:
            raise RuntimeError(CLOSED_MESSAGE)
        futures = []
        # States are immutable records, so the runs handed over together share
        # the one Pending state they all entered at this moment.
        pending = Pending()
        for run in runs:
            future: ConcurrentFuture[Any] = ConcurrentFuture(run, pending)
            run.future = future
            run.dispatcher = dispatcher  # so that cancel() works before the loop takes the run
            futures.append(future)
        submitter = current_run.get()  # a run of this runner may submit while it closes
        nested = submitter is not None and (submitter._slot_run or submitter).dispatcher is dispatcher
        dispatcher.submit_many(runs, nested)
        return futures

    def _cancel_all(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel_all()

    def _open_sync(self) -> None:
        self._host = LoopHost(self.name, self._make_dispatcher)
        self._dispatcher = self._host.start()

    def _close_sync(self, failed: bool) -> None:
        assert self._host is not None
        try:
            self._host.stop(failed)
        finally:
            self._host = None
            self._dispatcher = None

    async def _open_async(self) -> None:
        dispatcher = self._make_dispatcher(current_backend())
        await dispatcher.open()
        self._dispatcher = dispatcher

    async def _close_async(self, failed: bool) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        try:
            threads = await dispatcher.close(failed)
            if threads:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(join_threads, threads)
        finally:
            self._dispatcher = None
