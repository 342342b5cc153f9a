"""Caching in a run: the one place the engine calls the results room.

:func:`~taskrun._engine._driver.drive` calls in only when the task has result
options (``task._results is not None``) or some flow with result defaults was
defined in this process (:data:`FLOW_DEFAULTS`); with caching off a run pays
that one check. Everything here runs for cached and persisted runs only:

- :func:`begin`, before the attempts: the key (``config.begin``), the key's lock
  when SERIALIZABLE (waited for holding no worker slot), the lookup. A hit, or a
  key that cannot be made, decides the final state at once: it raises
  :class:`Decided` and the driver ends the run with ``run._cache.state``
  (``Completed`` named ``Cached``: no body, no retries; ``on_completion`` hooks run).
- :func:`finish`, once the final state is known: stores a ``Completed`` value
  (staged instead inside ``with transaction():``), lets the lock go, and returns the
  final state (one that reads its value back from the store when the task has
  ``cache_result_in_memory=False``).
- :func:`abandon`, when the driver itself is cancelled or crashes: lets the lock go.

Blocking I/O never runs on an event loop: a sync run of a runner does it on the
runner's worker threads (in place when the run is stepped on one already, else
through ``Executor.call_user``), an async run through the
async twins (a worker thread, for asyncio and trio alike), and a direct call of
a sync task (no loop) in its own thread.

Example::

    # in drive(), the whole hunk:
    if task._results is not None or FLOW_DEFAULTS:
        await _caching.begin(run, ex)          # raises Decided on a hit
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .._core._backend import RunCancelledSignal
from .._core._dispatch import PROMOTE
from .._core._workers import in_stepping_worker
from .._results._lazy import StoredCompleted
from .._results._policies import uses_flow_parameters
from .._results._service import (
    CACHED_STATE_NAME,
    FlowResultDefaults,
    Hit,
    ResultsConfig,
    RunCache,
    effective_config,
)
from .._results._transaction import get_transaction
from ..states import Cancelled, Completed, Failed, State, StateType
from ._executors import DirectAsyncExecutor, Executor, InlineExecutor
from ._vars import current_flow_run

if TYPE_CHECKING:
    from ._flow_context import FlowRunContext
    from ._record import TaskRunContext

#: Flows with result defaults defined in this process (``@flow(persist_result=...)``).
#: While it is empty, a task without result options never enters this module.
FLOW_DEFAULTS: list[object] = []


class RemoteFlow(NamedTuple):
    """What a run executing in another process (Dask) needs of its flow run for caching:
    the flow run's id (the ``RUN_ID`` part of keys), its parameters (only when the
    task's policy hashes them, ``FLOW_PARAMETERS``) and its result defaults.

    Example::

        remote = remote_flow(run)        # None outside a flow, or when nothing caches
    """

    flow_run_id: uuid.UUID
    parameters: Mapping[str, Any] | None
    result_defaults: FlowResultDefaults | None


def remote_flow(run: TaskRunContext, context: Any) -> RemoteFlow | None:
    """(submitting side) The :class:`RemoteFlow` of ``run``, living in ``context``; None
    outside a flow, or when neither the task nor its flow has result options."""
    flow = context.get(current_flow_run, None)
    if flow is None:
        return None
    defaults = flow.result_defaults
    config = run.task._results
    if defaults is None and config is None:
        return None
    merged = effective_config(config, defaults)
    needs_parameters = merged is not None and uses_flow_parameters(merged.policy)
    return RemoteFlow(flow.flow_run_id, flow.parameters if needs_parameters else None, defaults)


_adopted: dict[Any, FlowResultDefaults] = {}


def adopt_remote_flow(flow: RemoteFlow) -> RemoteFlow:
    """(executing side) Make ``flow``'s result defaults known in this process, as defining
    the flow would (:data:`FLOW_DEFAULTS`); equal defaults become one object, so the
    merged configs memoized on it serve every run of the flow's tasks here."""
    defaults = flow.result_defaults
    if defaults is None:
        return flow
    try:
        known = _adopted.setdefault(defaults, defaults)
    except TypeError:  # a storage or serializer object that cannot be hashed
        known = defaults
    if not FLOW_DEFAULTS:
        FLOW_DEFAULTS.append("remote")
    return flow if known is defaults else flow._replace(result_defaults=known)


class Decided(Exception):
    """Raised by :func:`begin` when the run's final state is known before its body."""


class RunCaching:
    """The cache work of one run, kept on ``run._cache`` between begin and finish."""

    __slots__ = ("rc", "state")

    def __init__(self, rc: RunCache | None) -> None:
        self.rc = rc
        #: The final state decided before the body (set when Decided is raised).
        self.state: Any = None


class _View:
    """The run as the results room reads it (its ``RunView``)."""

    __slots__ = ("_flow", "context")

    def __init__(self, run: TaskRunContext, flow: FlowRunContext | RemoteFlow | None) -> None:
        self.context = run
        self._flow = flow

    @property
    def task_name(self) -> str:
        return self.context.task.name

    @property
    def task_fn(self) -> Callable[..., Any]:
        return self.context.task.fn

    @property
    def parameters(self) -> Mapping[str, Any]:
        return self.context.parameters

    @property
    def task_run_id(self) -> uuid.UUID:
        return self.context.task_run_id

    @property
    def flow_run_id(self) -> uuid.UUID | None:
        return None if self._flow is None else self._flow.flow_run_id

    @property
    def flow_parameters(self) -> Mapping[str, Any] | None:
        return None if self._flow is None else self._flow.parameters

    @property
    def tags(self) -> frozenset[str]:
        return self.context.tags


def _config(run: TaskRunContext) -> tuple[ResultsConfig | None, FlowRunContext | RemoteFlow | None]:
    flow: FlowRunContext | RemoteFlow | None = current_flow_run.get()
    if flow is None:  # a run rebuilt in a Dask worker carries its flow's part
        flow = getattr(run, "_remote_flow", None)
    defaults = None if flow is None else flow.result_defaults
    return effective_config(run.task._results, defaults), flow


def _open(config: ResultsConfig, view: _View) -> tuple[RunCache, bool, Hit | None]:
    """(blocking) The run's key, its lock if free at once, and the lookup under it."""
    rc = config.begin(view)
    if not rc.acquire(timeout=0):
        return rc, False, None
    return rc, True, rc.lookup()


def _cached(hit: Hit, rc: RunCache) -> State[Any]:
    if hit.value is not None and not rc.config.cache_result_in_memory and get_transaction() is None:
        return StoredCompleted(rc.stored_result(), CACHED_STATE_NAME)  # the value read is let go
    return Completed(hit.value, name=CACHED_STATE_NAME)


async def begin(run: TaskRunContext, ex: Executor) -> None:
    """Key, lock and lookup for ``run``; raises :class:`Decided` if that settles the run."""
    config, flow = _config(run)
    if config is None:
        return
    caching = run._cache = RunCaching(None)
    view = _View(run, flow)
    try:
        if isinstance(ex, InlineExecutor):
            rc, locked, hit = _open(config, view)
            if not locked:
                rc.acquire()
                hit = rc.lookup()
        elif run.task.isasync or isinstance(ex, DirectAsyncExecutor):
            if ex.promotes and not run._in_task:
                await PROMOTE  # the async twins need a real loop task
            rc = config.begin(view)
            if not rc.acquire(timeout=0):
                await ex.without_slot(run, rc.acquire_async())
            hit = await rc.lookup_async()
        else:
            # On a worker thread already (the run is stepped there): no need for another.
            opened = _open(config, view) if in_stepping_worker() else await ex.call_user(_open, config, view)
            rc, locked, hit = opened
            if not locked:
                caching.rc = rc
                await ex.without_slot(run, rc.acquire_async())
                hit = await ex.call_user(rc.lookup)
    except RunCancelledSignal:
        caching.state = Cancelled()
        raise Decided from None
    except Exception as exc:
        # A result_storage_key that does not render, a key function that raised:
        # the run fails (no retries: its next attempt would fail the same way).
        caching.rc = None
        caching.state = Failed(exc)
        raise Decided from None
    caching.rc = rc
    if hit is not None:
        rc.release()
        caching.rc = None
        caching.state = _cached(hit, rc)
        raise Decided


async def finish(run: TaskRunContext, state: State[Any], ex: Executor) -> State[Any]:
    """Store a Completed run's value (not a cached one's), then let the key's lock go.

    Returns the run's final state: ``state``, or — with ``cache_result_in_memory=False``
    and the record written — a :class:`StoredCompleted` that reads the value back from
    the store whenever it is asked for, so the run keeps no reference to it. A value
    that is not written (a serializer that refused it, a failed write, a record staged
    in a transaction) or is None stays in memory: there is nothing to read it back from.
    """
    caching: RunCaching | None = getattr(run, "_cache", None)
    if caching is None or caching.rc is None:
        return state
    rc = caching.rc
    caching.rc = None
    try:
        if state.type is StateType.COMPLETED and state.name != CACHED_STATE_NAME:
            value = state.data
            if isinstance(ex, InlineExecutor):
                rc.store(value)
            elif run.task.isasync or isinstance(ex, DirectAsyncExecutor):
                if ex.promotes and not run._in_task:
                    await PROMOTE
                await rc.store_async(value)
            elif in_stepping_worker():
                rc.store(value)
            else:
                await ex.call_user(rc.store, value)
            if rc.written and value is not None and not rc.config.cache_result_in_memory:
                state = StoredCompleted(rc.stored_result(), state.name, state.message)
    finally:
        rc.release()
    return state


def abandon(run: TaskRunContext) -> None:
    """The driver was cancelled or crashed: let the key's lock go, store nothing."""
    caching: RunCaching | None = getattr(run, "_cache", None)
    if caching is not None and caching.rc is not None:
        rc, caching.rc = caching.rc, None
        rc.release()


__all__ = ["FLOW_DEFAULTS", "Decided", "RemoteFlow", "RunCaching", "abandon", "adopt_remote_flow", "begin",
           "finish", "remote_flow"]
