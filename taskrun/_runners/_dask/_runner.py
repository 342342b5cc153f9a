"""``DaskTaskRunner``: task runs on a dask.distributed cluster (the ``dask`` extra).

Each run becomes one Dask task that runs the whole engine on a worker
(retries, timeouts, hooks, states) and stores the run's final state with its
value under the run's key. A future passed as a parameter (or in ``wait_for``)
becomes a Dask dependency, so its data moves worker-to-worker; the worker then
applies the same upstream-failure rule as the local runners.

Example::

    from taskrun import flow, task
    from taskrun.dask import DaskTaskRunner

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(task_runner=DaskTaskRunner(address="tcp://scheduler:8786"))
    def pipeline() -> list[int]:
        return inc.map(range(10))
"""

from __future__ import annotations

try:
    import distributed
except ImportError as _error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "taskrun.dask needs dask.distributed; install the extra: pip install 'taskrun[dask]'"
    ) from _error

import importlib
import logging
import pickle
import queue
import threading
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
from typing_extensions import Self

from ..._engine._admission import upstream_problem
from ..._engine._future import TaskFuture
from ..._engine._record import TaskRunContext
from ..._engine._resolve import collect_futures
from ..._engine._waiting import _wait_many, _wait_many_async
from ...states import Cancelled, Failed, NotReady
from .._base import TaskRunner
from .._remote import dumps, plain_values, snapshot_of, unpicklable_parameter_error
from ._client import get_async_dask_client, get_dask_client
from ._future import DistributedFuture, state_of_dask_error
from ._limits import map_with_limits
from ._options import check_porting_options as _check_porting_options
from ._options import close_report, open_report
from ._worker import fixed_marker, run_on_worker, upstream_marker

if TYPE_CHECKING:
    from ..._engine._waiting import FutureList
    from ...tasks import Task

T = TypeVar("T")

logger = logging.getLogger("taskrun.dask")

# Loopback only, and no dashboard. The scheduler still serves its small HTTP API
# (health, metrics); it gets a free loopback port rather than 8787 on every host.
_LOCAL_DEFAULTS: dict[str, Any] = {"host": "127.0.0.1", "dashboard_address": None}
_LOCAL_SCHEDULER_DEFAULTS: dict[str, Any] = {"dashboard_address": "127.0.0.1:0"}
_BROKEN = ("error", "cancelled", "lost")


def _load_class(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    module, _, name = spec.rpartition(".")
    if not module:
        raise ValueError(f"cluster_class {spec!r} must be a class or a dotted path like 'pkg.module.Class'")
    return getattr(importlib.import_module(module), name)


def _class_key(spec: Any) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec
    return f"{spec.__module__}.{spec.__qualname__}"


def _frozen(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, repr(value)) for key, value in options.items()))


class DaskTaskRunner(TaskRunner[DistributedFuture[Any]]):
    """Runs task runs on a Dask cluster and returns :class:`~taskrun.futures.DistributedFuture`\\ s.

    - ``address=None``: an embedded ``cluster_class(**cluster_kwargs)``
      (default ``distributed.LocalCluster``, bound to 127.0.0.1 with the
      dashboard off), started on entry and closed on exit.
    - ``address="tcp://host:8786"``: connect to that scheduler; it is left
      running on exit.
    - ``cluster_class`` may be a class or a dotted path; ``client_kwargs``
      go to :class:`distributed.Client`.

    The engine runs on the worker; the final state comes back with the
    result. Log records of ``get_run_logger()`` come back with it and are
    replayed here. A worker that dies mid-run: Dask retries the task on
    another worker while its ``distributed.scheduler.allowed-failures`` allows,
    then the run ends ``Crashed``.

    Example::

        with DaskTaskRunner(cluster_kwargs={"n_workers": 2}) as runner:
            futures = runner.map(inc, {"x": range(100)})
            print(sum(futures.result()))
    """

    def __init__(self, address: str | None = None, cluster_class: Any = None,
                 cluster_kwargs: dict[str, Any] | None = None,
                 client_kwargs: dict[str, Any] | None = None, *, cluster: Any = None,
                 adapt_kwargs: dict[str, Any] | None = None,
                 performance_report_path: str | None = None) -> None:
        super().__init__()
        _check_porting_options(address, cluster_class, cluster_kwargs, cluster, adapt_kwargs,
                               performance_report_path)
        self.cluster = cluster
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.performance_report_path = performance_report_path
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a scheduler address like 'tcp://host:8786', got {address!r}")
        if address is not None and (cluster_class is not None or cluster_kwargs):
            raise ValueError(
                "give either address= (an existing scheduler) or cluster_class/cluster_kwargs, not both"
            )
        for label, given in (("cluster_kwargs", cluster_kwargs), ("client_kwargs", client_kwargs)):
            if given is not None and not isinstance(given, dict):
                raise TypeError(f"{label} must be a dict, got {type(given).__name__}")
        if client_kwargs and client_kwargs.get("asynchronous"):
            raise ValueError("client_kwargs may not set asynchronous=True; the runner manages its client")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._session: _Session | None = None

    # ------------------------------------------------------------------ identity

    def duplicate(self) -> Self:
        return type(self)(self.address, self.cluster_class, dict(self.cluster_kwargs),
                          dict(self.client_kwargs), cluster=self.cluster,
                          adapt_kwargs=dict(self.adapt_kwargs),
                          performance_report_path=self.performance_report_path)

    if TYPE_CHECKING:  # the base's code, typed with the task's return type
        @overload
        def submit(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
                   wait_for: Iterable[Any] | None = None,
                   dependencies: dict[str, set[Any]] | None = None) -> DistributedFuture[T]: ...
        @overload
        def submit(self, task: Task[..., T], parameters: dict[str, Any],
                   wait_for: Iterable[Any] | None = None,
                   dependencies: dict[str, set[Any]] | None = None) -> DistributedFuture[T]: ...
        def submit(self, task: Any, parameters: Any, wait_for: Any = None,
                   dependencies: Any = None) -> Any: ...
        @overload
        def map(self, task: Task[..., Coroutine[Any, Any, T]], parameters: dict[str, Any],
                wait_for: Iterable[Any] | None = None,
                progress: bool = False) -> FutureList[DistributedFuture[T]]: ...
        @overload
        def map(self, task: Task[..., T], parameters: dict[str, Any],
                wait_for: Iterable[Any] | None = None,
                progress: bool = False) -> FutureList[DistributedFuture[T]]: ...
        def map(self, task: Any, parameters: Any, wait_for: Any = None, progress: bool = False) -> Any: ...

    def _config(self) -> tuple[Any, ...]:
        return (self.address, _class_key(self.cluster_class), _frozen(self.cluster_kwargs),
                _frozen(self.client_kwargs), id(self.cluster), _frozen(self.adapt_kwargs),
                self.performance_report_path)

    @property
    def client(self) -> distributed.Client:
        """The :class:`distributed.Client` of the open runner."""
        self._check_open()
        assert self._session is not None
        return self._session.client

    # ------------------------------------------------------------------ lifecycle

    def _connect(self) -> _Session:
        cluster = None
        if self.cluster is not None:  # the user's cluster: used, never closed
            client = distributed.Client(self.cluster, **self.client_kwargs)
        elif self.address is not None:
            client = distributed.Client(self.address, **self.client_kwargs)
        else:
            cls = _load_class(self.cluster_class) or distributed.LocalCluster
            kwargs = dict(self.cluster_kwargs)
            if cls is distributed.LocalCluster:
                defaults = dict(_LOCAL_DEFAULTS)
                if kwargs.get("processes") is False and "protocol" not in kwargs:
                    # In one process the workers talk over ``inproc://``, which
                    # binds no socket and takes no host (a host breaks its address).
                    del defaults["host"]
                kwargs = {**defaults, **kwargs}
                if kwargs["dashboard_address"] is None:
                    kwargs["scheduler_kwargs"] = {**_LOCAL_SCHEDULER_DEFAULTS,
                                                  **(kwargs.get("scheduler_kwargs") or {})}
            cluster = cls(**kwargs)
            try:
                if self.adapt_kwargs:
                    cluster.adapt(**self.adapt_kwargs)
                client = distributed.Client(cluster, **self.client_kwargs)
            except BaseException:
                cluster.close()
                raise
        return _Session(client, cluster, open_report(client, self.performance_report_path))

    def _open_sync(self) -> None:
        self._session = self._connect()

    async def _open_async(self) -> None:
        self._session = await anyio.to_thread.run_sync(self._connect)

    def _close_sync(self, failed: bool) -> None:
        session = self._session
        assert session is not None
        try:
            if failed:
                session.cancel_all()
            session.wait_all()
        finally:
            self._session = None
            session.shut_down()

    async def _close_async(self, failed: bool) -> None:
        session = self._session
        assert session is not None
        try:
            if failed:
                session.cancel_all()
            await session.wait_all_async()
        finally:
            self._session = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.shut_down)

    # ------------------------------------------------------------------ runs

    def _submit_runs(self, runs: list[TaskRunContext]) -> list[DistributedFuture[Any]]:
        session = self._session
        assert session is not None
        return session.submit(runs)

    def _cancel_all(self) -> None:
        if self._session is not None:
            self._session.cancel_all()


class _Session:
    """One entry of a runner: the client, the runs not final yet, the collector thread.

    The collector thread is told (through Dask's done callbacks) of every Dask
    future that finished; it fetches the outcomes of the finished ones in
    batches (one ``gather`` per wake-up) and finishes their runs' futures. It
    also makes the blocking calls nobody else may make (cancelling keys).
    """

    def __init__(self, client: distributed.Client, cluster: Any, report: Any = None) -> None:
        self.client = client
        self.cluster = cluster
        self.report = report
        self.address: str = str(client.scheduler.address)  # type: ignore[union-attr]
        self._lock = threading.Lock()
        self._outstanding: set[DistributedFuture[Any]] = set()
        self._blobs: dict[int, tuple[Any, bytes]] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._collect, name="taskrun-dask-collector", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submission (any thread)

    def submit(self, runs: list[TaskRunContext]) -> list[DistributedFuture[Any]]:
        futures = []
        for run in runs:
            future: DistributedFuture[Any] = DistributedFuture(run, owner=self)
            run.future = future
            futures.append(future)
        with self._lock:
            self._outstanding.update(futures)
        for future in futures:
            future.add_done_callback(self._forget)
        self._place(futures)
        return futures

    def _forget(self, future: TaskFuture[Any]) -> None:
        with self._lock:
            self._outstanding.discard(future)

    def _place(self, futures: Iterable[DistributedFuture[Any]]) -> None:
        """Send every run that can go now to the cluster, in one batch."""
        keys: list[str] = []
        payloads: list[bytes] = []
        deps: list[tuple[Any, ...]] = []
        placing: list[DistributedFuture[Any]] = []
        for future in futures:
            prepared = self._prepare(future)
            if prepared is not None:
                placing.append(future)
                keys.append(prepared[0])
                payloads.append(prepared[1])
                deps.append(prepared[2])
        if not placing:
            return
        try:
            dask_futures = map_with_limits(self.client, run_on_worker, payloads, deps, keys,
                                           [f._run._priority for f in placing])  # type: ignore[union-attr]
        except Exception as exc:
            for future in placing:
                future._finish(Failed(exc, message=f"the cluster did not take the run: {exc}"))
            return
        pairs = list(zip(placing, dask_futures, strict=True))
        for future, dask_future in pairs:
            future._placed(dask_future, self.address)
        # Done callbacks registered from the client's own loop thread cost no
        # cross-thread wake-up each: one hop for the whole batch.
        loop = self.client.loop
        assert loop is not None
        loop.add_callback(_watch, pairs, self._queue)

    def _prepare(self, future: DistributedFuture[Any]) -> tuple[str, bytes, tuple[Any, ...]] | None:
        """``(key, payload, dependencies)`` for a run ready to go; None when it is not (yet)."""
        if future._final:
            return None
        run: TaskRunContext = future._run  # type: ignore[assignment]
        found = collect_futures(run.parameters, run.wait_for)
        dependencies: list[Any] = []
        reductions: dict[int, Any] = {}
        all_final = True
        for upstream, _ in found:
            usable = self._dependency(upstream)
            if usable is not None:
                reductions[id(upstream)] = (upstream_marker, (len(dependencies), upstream.task_run_id,
                                                              _name(upstream)))
                dependencies.append(usable)
                all_final = all_final and upstream._final
            elif upstream._final:
                reductions[id(upstream)] = (fixed_marker, (upstream.task_run_id, _name(upstream),
                                                           upstream._state))
            else:
                self._wait_then_place(future, upstream)
                return None
        if found and all_final:
            problem = upstream_problem(found)
            if problem is not None:
                future._finish(NotReady(problem))
                return None
        try:
            blob = self._task_blob(run.task)
            snapshot = snapshot_of(run, with_flow=True)
            if not found and run.wait_for is None and snapshot.flow is None and plain_values(run.parameters):
                payload = pickle.dumps((blob, None, snapshot), protocol=5)
            else:
                payload = dumps((blob, run.wait_for, snapshot), on_future=lambda f: reductions.get(id(f)))
        except Exception as exc:
            future._finish(Failed(unpicklable_parameter_error(run.task.name, run.parameters, exc)))
            return None
        key = f"{run.task.name}-{run.task_run_id.hex}-{future._placements}"
        future._placements += 1
        return key, payload, tuple(dependencies)

    def _dependency(self, upstream: TaskFuture[Any]) -> Any:
        """The Dask future to depend on for ``upstream``, or None if it cannot be one."""
        if not isinstance(upstream, DistributedFuture) or upstream._owner is not self:
            return None
        dask_future = upstream._dask
        if dask_future is None or dask_future.status in _BROKEN:
            return None
        if upstream._final and not upstream._state.is_completed():
            return None  # its state travels in the payload; no need to move anything
        return dask_future

    def _wait_then_place(self, future: DistributedFuture[Any], upstream: TaskFuture[Any]) -> None:
        def again(_: Any) -> None:
            self._place([future])

        if isinstance(upstream, DistributedFuture) and upstream._owner is self and upstream._dask is None:
            upstream._when_placed_or_done(again)
        else:
            upstream.add_done_callback(again)

    def _task_blob(self, task: Any) -> bytes:
        cached = self._blobs.get(id(task))
        if cached is None or cached[0] is not task:
            cached = self._blobs[id(task)] = (task, dumps(task))
        return cached[1]

    # ------------------------------------------------------------------ cancellation

    def cancel_future(self, future: DistributedFuture[Any]) -> bool:
        if not future._finish(Cancelled("the run was cancelled")):
            return False
        if future._dask is not None:
            self._queue.put([future._dask])
        return True

    def cancel_all(self) -> None:
        with self._lock:
            pending = list(self._outstanding)
        cancelled = [f._dask for f in pending if f._finish(Cancelled("the run was cancelled"))
                     and f._dask is not None]
        if cancelled:
            self._queue.put(cancelled)

    # ------------------------------------------------------------------ closing

    def wait_all(self) -> None:
        while True:
            with self._lock:
                pending = list(self._outstanding)
            if not pending:
                return
            _wait_many(pending, None, stop_on_failure=False)  # type: ignore[arg-type]

    async def wait_all_async(self) -> None:
        while True:
            with self._lock:
                pending = list(self._outstanding)
            if not pending:
                return
            await _wait_many_async(pending, None, stop_on_failure=False)  # type: ignore[arg-type]

    def shut_down(self) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            close_report(self.report)
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    # ------------------------------------------------------------------ collector thread

    def _collect(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            done: list[tuple[DistributedFuture[Any], Any]] = []
            for item in items:
                if item is None:
                    stop = True
                elif isinstance(item, list):
                    self._cancel_keys(item)
                else:
                    done.append(item)
            try:
                self._settle(done)
            except Exception:  # never leave a future hanging because of a bug here
                logger.exception("internal error while collecting Dask results")
                for future, _ in done:
                    future._finish(Failed(RuntimeError("taskrun could not collect this run's result")))
            if stop:
                return

    def _cancel_keys(self, dask_futures: list[Any]) -> None:
        try:
            self.client.cancel(dask_futures)
        except Exception:
            logger.warning("could not cancel %d Dask task(s)", len(dask_futures), exc_info=True)

    def _settle(self, done: list[tuple[DistributedFuture[Any], Any]]) -> None:
        finished = []
        for future, dask_future in done:
            if future._final or future._dask is not dask_future:
                continue  # cancelled here already, or placed again since
            if dask_future.status == "finished":
                finished.append((future, dask_future))
            else:
                self._failed_on_cluster(future, dask_future)
        if not finished:
            return
        try:
            outcomes = self.client.gather([d for _, d in finished])
        except Exception:
            outcomes = None
        for index, (future, dask_future) in enumerate(finished):
            if outcomes is not None:
                future._finish_with(outcomes[index])
                continue
            try:
                outcome = dask_future.result()
            except Exception as exc:
                future._finish(Failed(exc, message=f"the run's result could not be fetched: {exc}"))
            else:
                future._finish_with(outcome)

    def _failed_on_cluster(self, future: DistributedFuture[Any], dask_future: Any) -> None:
        """The Dask task erred or was cancelled: the run's own fate, or an upstream's?"""
        run: TaskRunContext = future._run  # type: ignore[assignment]
        for upstream, _ in collect_futures(run.parameters, run.wait_for):
            if (isinstance(upstream, DistributedFuture) and upstream._owner is self
                    and upstream._dask is not None and upstream._dask.status in _BROKEN):
                # Inherited from an upstream: place the run again once that one is
                # final; its state then travels in the payload and the usual rule applies.
                if upstream._final:
                    self._place([future])
                else:
                    self._wait_then_place(future, upstream)
                return
        try:
            error = dask_future.exception() if dask_future.status == "error" else None
        except Exception as exc:
            error = exc
        if error is None:
            error = distributed.client.FutureCancelledError(dask_future.key, "cancelled on the cluster")
        future._finish(state_of_dask_error(error))


def _watch(pairs: list[tuple[DistributedFuture[Any], Any]], q: queue.SimpleQueue[Any]) -> None:
    """(client loop) Have the collector told when each Dask future is done."""
    for future, dask_future in pairs:
        dask_future.add_done_callback(_Notify(q, future))


class _Notify:
    """Dask done callback: tell the collector which run's Dask future finished."""

    __slots__ = ("_future", "_queue")

    def __init__(self, q: queue.SimpleQueue[Any], future: DistributedFuture[Any]) -> None:
        self._queue = q
        self._future = future

    def __call__(self, dask_future: Any) -> None:
        self._queue.put((self._future, dask_future))


def _name(future: TaskFuture[Any]) -> str:
    run = future._run
    return run.task_run_name if run is not None else "?"


__all__ = ["DaskTaskRunner", "get_dask_client", "get_async_dask_client"]
