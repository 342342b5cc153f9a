"""What a Dask worker runs for one task run: the whole engine, then the final state.

The client sends :func:`run_on_worker` a payload (the pickled task, the
``wait_for`` list and a :class:`~taskrun._remote.RunSnapshot` with the
parameters, pickled by :func:`~taskrun._remote.dumps`) and, as separate arguments Dask resolves, the
outcomes of the upstream runs. In the payload each upstream future was replaced
by a marker: :func:`upstream_marker` for one that is a Dask dependency (its
outcome arrives with the call, moved worker-to-worker by Dask),
:func:`fixed_marker` for one whose final state the client knew already. Markers
are futures that are already final, so the engine's own rules (upstream
failures, ``allow_failure``, ``quote``, ...) apply here unchanged.

The result stored under the run's Dask key is a :class:`RemoteOutcome`: the
final state with the value, the run's name, its log records, and the traceback
text of a failure.

Nothing here imports ``distributed`` at module level.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from typing import Any

from ..._engine._admission import upstream_problem, value_of
from ..._engine._direct import step_to_end
from ..._engine._driver import drive
from ..._engine._executors import DirectAsyncExecutor, InlineExecutor
from ..._engine._future import TaskFuture
from ..._engine._resolve import collect_futures, replace_futures
from ...states import Failed, NotReady, State, StateType
from .._remote import (
    capture_logs,
    check_picklable,
    loads,
    pack_exception,
    rebuild_run,
    unpicklable_result_error,
)
from ._outcome import RemoteOutcome, RunRef


class UpstreamMarker(TaskFuture[Any]):
    """An upstream run, final, standing in for its future inside a worker."""

    __slots__ = ()

    def __init__(self, ref: RunRef, state: State[Any]) -> None:
        super().__init__(ref, state)  # type: ignore[arg-type]
        self._final = True

    def _request_cancel(self) -> bool:
        return False


_binding = threading.local()


def upstream_marker(index: int, run_id: uuid.UUID, name: str) -> UpstreamMarker:
    """(unpickling, worker) The marker of the ``index``-th Dask dependency."""
    outcome: RemoteOutcome = _binding.upstream[index]
    return UpstreamMarker(RunRef(run_id, name), outcome.state)


def fixed_marker(run_id: uuid.UUID, name: str, state: State[Any]) -> UpstreamMarker:
    """(unpickling, worker) The marker of an upstream run already final on the client."""
    return UpstreamMarker(RunRef(run_id, name), state)


def _load(payload: bytes, upstream: tuple[Any, ...]) -> Any:
    _binding.upstream = upstream
    try:
        return loads(payload)
    finally:
        _binding.upstream = ()


_tasks: dict[bytes, Any] = {}
_tasks_lock = threading.Lock()
_TASK_CACHE_SIZE = 256


def _task_from(blob: bytes) -> Any:
    """The task pickled in ``blob``, unpickled once per worker process."""
    task = _tasks.get(blob)
    if task is None:
        task = loads(blob)
        with _tasks_lock:
            if len(_tasks) >= _TASK_CACHE_SIZE:
                _tasks.clear()
            _tasks[blob] = task
    return task


class _CheckedInline(InlineExecutor):
    """Inline executor whose results must be picklable (they leave this worker)."""

    async def call_sync(self, run: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                        timeout: float | None) -> Any:
        return _checked(run, await super().call_sync(run, fn, args, kwargs, timeout))


class _CheckedAsync(DirectAsyncExecutor):
    async def call_async(self, run: Any, coro: Coroutine[Any, Any, Any]) -> Any:
        return _checked(run, await coro)


def _checked(run: Any, value: Any) -> Any:
    try:
        check_picklable(value)
    except Exception as exc:
        raise unpicklable_result_error(run.task_run_name, exc) from None
    return value


def _cancel_check() -> Any:
    """A check telling whether the Dask task running this thread was cancelled."""
    try:
        from distributed import get_worker  # noqa: PLC0415 - imported without Dask
        from distributed.worker import thread_state  # type: ignore[attr-defined]  # noqa: PLC0415 - imported without Dask

        worker = get_worker()
        key = thread_state.key
    except Exception:
        return None

    def cancelled() -> bool:
        try:
            ts = worker.state.tasks.get(key)
            return ts is None or ts.state in ("cancelled", "released", "forgotten")
        except Exception:
            return False

    return cancelled


def run_on_worker(payload: bytes, upstream: tuple[Any, ...] = ()) -> RemoteOutcome:
    """Run one task run here, engine included, and return its :class:`RemoteOutcome`."""
    try:
        blob, wait_for, snap = _load(payload, upstream)
        task = _task_from(blob)
        parameters = snap.parameters
    except Exception as exc:
        error, where = pack_exception(exc)
        return RemoteOutcome(Failed(error), "", [], where)
    found = collect_futures(parameters, wait_for)
    if found:
        problem = upstream_problem(found)
        if problem is not None:  # it never starts; the client knows its name
            return RemoteOutcome(NotReady(problem), "", [], None)
        parameters = replace_futures(parameters, value_of)
    run, context = rebuild_run(task, snap._replace(parameters=parameters), _cancel_check())
    logs: list[dict[str, Any]] = []
    capture_logs(context, logs.append)
    if task.isasync:
        state = context.run(asyncio.run, drive(run, _CheckedAsync()))
    else:
        state = context.run(step_to_end, drive(run, _CheckedInline()))
    text: str | None = None
    if state.type is StateType.FAILED and isinstance(state.data, BaseException):
        state.data, text = pack_exception(state.data)
    return RemoteOutcome(state, run.task_run_name, logs, text)
