"""The process pool runner: task bodies run in worker processes.

Everything but the body stays in the submitting process, on the runner's loop,
exactly as for :class:`~taskrun.task_runners.ThreadPoolTaskRunner`: admission
(futures in parameters and ``wait_for`` are resolved here, so only plain values
cross), slots, retries and their delays, timeouts, hooks, states and futures.
The engine hands each attempt's body to :class:`ProcessExecutor`, which ships
it to a :class:`~taskrun._runners._process._pool.ProcessPool` together with a snapshot of
the run, so that ``get_run_context()`` (tags, attempt, parameters,
``cancel_requested()``) and ``get_run_logger()`` work inside the worker.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from typing_extensions import Self

from ... import settings
from ..._core._dispatch import Dispatcher
from ..._engine._executors import Executor, RunnerExecutor, Way
from ..._engine._record import TaskRunContext
from ..._observe import _events
from .._remote import RemoteError, RemoteTraceback, snapshot_of
from .._thread import ThreadPoolTaskRunner
from ._pool import ABANDON_GRACE_SECONDS, Call, PoolOptions, ProcessPool, WorkerProcessDied
from ._worker import EXIT_NO_MAIN_GUARD


class ProcessExecutor(RunnerExecutor):
    """Engine executor whose bodies, sync and async, run in worker processes.

    Hooks and ``retry_condition_fn`` run in the submitting process, on its
    worker threads, as with the thread pool.

    Cancellation and timeouts: the future finishes at once (``Cancelled`` or
    ``TimedOut``); the worker's cancel flag turns on, so ``cancel_requested()``
    is true inside the body, and an async body is cancelled. A body still
    running :data:`ABANDON_GRACE_SECONDS` later has its process killed and
    replaced.
    """

    def __init__(self, dispatcher: Dispatcher, max_workers: int, name: str,
                 options: PoolOptions | None = None) -> None:
        super().__init__(dispatcher)
        self.pool = ProcessPool(max_workers, name, options)
        # Every body, sync or async, goes through call_sync below (after the
        # thread pool's ways, which its __init__ set).
        self.async_way = self.sync_way = self.timed_async_way = self.timed_sync_way = Way.CALL_SYNC

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        # The runner's own sync path parks a worker thread on the call, so
        # timeouts and cancellation behave as for the thread pool; the thread
        # is let go at once when the call is abandoned.
        call = Call(run.task, args, kwargs, snapshot_of(run))
        try:
            return await super().call_sync(run, self.pool.run, (call,), {}, timeout)
        except BaseException:
            self.pool.abandon(call)
            raise
        finally:
            if _events.ACTIVE and call.worker is not None:
                _events.emit_placed(run, f"pid {call.worker.process.pid}")


class ProcessPoolTaskRunner(ThreadPoolTaskRunner):
    """Runs sync and async task bodies in worker processes (``spawn``).

    ``max_workers`` worker processes at most (started on demand, kept for the
    runner's life), and as many runs executing at once. Default:
    ``TASKRUN_PROCESS_POOL_MAX_WORKERS``, else the CPU count.

    - Futures in parameters and ``wait_for`` are resolved in this process; only
      plain values cross, by pickling. Tasks and functions go by reference when
      importable, by value (cloudpickle) when defined in ``__main__``, a
      notebook or a function. An argument or result that cannot be pickled
      fails that run only, naming the parameter.
    - Retries, timeouts, hooks and states are handled here; the body sees its
      run through ``get_run_context()`` and logs through ``get_run_logger()``
      (records are replayed in this process's logging).
    - An exception keeps its type and message; its ``__cause__`` is a
      ``RemoteTraceback`` holding the traceback text from the worker.
    - A worker that dies (killed, ``os._exit``, out of memory) ends the run it
      was running ``Crashed``; a new process replaces it and other runs go on.
    - ``cancel_all()`` cancels queued runs; running ones get the cooperative
      cancel flag (see :class:`ProcessExecutor` for what happens next).

    - ``initializer(*initargs)`` runs once in each worker process when it
      starts (pickled like a task). If it raises, the pool is broken: every run
      queued or submitted later fails with a ``RuntimeError`` naming it.
    - ``max_tasks_per_child=N``: a worker process exits after N bodies and a
      fresh one replaces it on demand (leaky libraries, memory growth).

    Scripts that use it need the usual ``if __name__ == "__main__":`` guard,
    as with any ``spawn``-based pool. Without it, the runs fail at once with a
    ``RuntimeError`` that says so (the workers, which re-import the script,
    stop at the runner instead of running it again).

    Example::

        from taskrun import ProcessPoolTaskRunner, task

        @task
        def crunch(n: int) -> int:
            return sum(i * i for i in range(n))

        if __name__ == "__main__":
            with ProcessPoolTaskRunner(max_workers=4) as runner:
                print(runner.map(crunch, {"n": [10**6] * 8}).result())
    """

    def __init__(self, max_workers: int | None = None, *,
                 initializer: Callable[..., object] | None = None, initargs: Iterable[Any] = (),
                 max_tasks_per_child: int | None = None) -> None:
        if max_workers is None:
            max_workers = settings.process_pool_max_workers()
        super().__init__(max_workers=max_workers)
        self._options = PoolOptions.check(initializer, initargs, max_tasks_per_child)
        self._executor: ProcessExecutor | None = None

    @property
    def initializer(self) -> Callable[..., object] | None:
        return self._options.initializer

    @property
    def initargs(self) -> tuple[Any, ...]:
        return self._options.initargs

    @property
    def max_tasks_per_child(self) -> int | None:
        return self._options.max_tasks_per_child

    def duplicate(self) -> Self:
        return type(self)(self.max_workers, initializer=self.initializer, initargs=self.initargs,
                          max_tasks_per_child=self.max_tasks_per_child)

    def _config(self) -> tuple[Any, ...]:
        return (self.max_workers, self.initializer, self.initargs, self.max_tasks_per_child)

    def __hash__(self) -> int:  # initargs may hold unhashable values
        return hash((type(self), self.max_workers, self.max_tasks_per_child))

    def _executor_for(self, dispatcher: Dispatcher) -> Executor:
        executor = self._executor = ProcessExecutor(dispatcher, self.max_workers, f"taskrun-{self.name}",
                                                    self._options)
        return executor

    # A worker process re-imports the main script; one without the main guard
    # reaches this runner again while multiprocessing is still preparing the
    # worker. Stop there, quietly, with an exit code the parent recognises.

    def _open_sync(self) -> None:
        _exit_if_importing_main()
        super()._open_sync()

    async def _open_async(self) -> None:
        _exit_if_importing_main()
        await super()._open_async()

    def _pool(self) -> ProcessPool | None:
        executor, self._executor = self._executor, None
        return executor.pool if executor is not None else None

    # Every run is final once the dispatcher has closed; then the workers go.

    def _close_sync(self, failed: bool) -> None:
        pool = self._pool()
        try:
            super()._close_sync(failed)
        finally:
            if pool is not None:
                pool.stop().join()

    async def _close_async(self, failed: bool) -> None:
        pool = self._pool()
        try:
            await super()._close_async(failed)
        finally:
            if pool is not None:
                manager = pool.stop()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(manager.join)


def _exit_if_importing_main() -> None:
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(EXIT_NO_MAIN_GUARD)


__all__ = [
    "ProcessPoolTaskRunner",
    "ProcessExecutor",
    "WorkerProcessDied",
    "RemoteTraceback",
    "RemoteError",
    "ABANDON_GRACE_SECONDS",
]
