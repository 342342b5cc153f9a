"""``DistributedFuture``: the future of a run on a Dask cluster.

Importing this module needs no Dask; ``distributed`` is imported when a future
has to talk to a cluster itself (after unpickling in another process).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from ..._engine._future import TaskFuture, _lock
from ...states import Cancelled, Crashed, Failed, State, StateType
from .._remote import attach_traceback, emit_records
from ._outcome import RunRef

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._engine._record import TaskRunContext

R = TypeVar("R")


class DistributedFuture(TaskFuture[R]):
    """The future of a run sent to a Dask cluster by :class:`~taskrun.dask.DaskTaskRunner`.

    It has the whole :class:`~taskrun.futures.TaskFuture` interface: ``result()``
    and ``wait()`` from sync code, ``await`` from async code (asyncio or trio).
    Its :attr:`state` is ``Pending`` until the run is over on the cluster, then
    the final state the worker's engine reached, with the value.

    Two of them are equal when they stand for the same run (``task_run_id``).
    It can be pickled: once unpickled in another process that can reach the same
    scheduler, ``result()`` and ``await`` work there too (the run's data stays on
    the cluster as long as the original future exists). :attr:`wrapped_future`
    is the underlying :class:`distributed.Future`.

    Example::

        with DaskTaskRunner() as runner:
            future = runner.submit(add, {"x": 1, "y": 2})
            assert future.result() == 3
            assert future == pickle.loads(pickle.dumps(future))
    """

    __slots__ = ("_address", "_dask", "_fetching", "_key", "_owner", "_placements", "_when_placed")

    def __init__(self, run: TaskRunContext | Any, state: State[Any] | None = None, *,
                 owner: Any = None) -> None:
        super().__init__(run, state)
        self._owner = owner
        self._dask: Any = None
        self._key: str | None = None
        self._address: str | None = None
        self._fetching = owner is not None
        self._placements = 0
        self._when_placed: list[Callable[[DistributedFuture[Any]], None]] | None = []

    # ------------------------------------------------------------------ identity

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DistributedFuture):
            return bool(self.task_run_id == other.task_run_id)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.task_run_id)

    @property
    def wrapped_future(self) -> Any:
        """The :class:`distributed.Future` of the run (None before it reached the cluster)."""
        self._attach()
        return self._dask

    # ------------------------------------------------------------------ consumer side

    @property
    def state(self) -> State[R]:
        self._attach()
        return self._state

    def done(self) -> bool:
        self._attach()
        return self._final

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], object]) -> None:
        self._attach()
        super().add_done_callback(fn)

    def _request_cancel(self) -> bool:
        owner = self._owner
        if owner is None:
            return False  # only the submitting runner cancels its runs
        return bool(owner.cancel_future(self))

    # ------------------------------------------------------------------ producer side (runner)

    def _placed(self, dask_future: Any, address: str | None) -> None:
        """The run reached the cluster under ``dask_future``."""
        self._dask = dask_future
        self._key = dask_future.key
        self._address = address
        self._fire_placed()

    def _fire_placed(self) -> None:
        with _lock:
            callbacks, self._when_placed = self._when_placed, None
        for fn in callbacks or ():
            fn(self)

    def _when_placed_or_done(self, fn: Callable[[DistributedFuture[Any]], None]) -> None:
        """Call ``fn(self)`` once the run is on the cluster or final (at once if it is)."""
        with _lock:
            waiting = self._when_placed is not None and not self._final
            if waiting:
                assert self._when_placed is not None
                self._when_placed.append(fn)
        if not waiting:
            fn(self)
        else:
            self.add_done_callback(lambda _: self._fire_placed())

    def _finish_with(self, outcome: Any) -> None:
        """Finish from a worker's :class:`~taskrun._runners._dask._outcome.RemoteOutcome`."""
        run = self._run
        if run is not None and outcome.name and getattr(run, "_name", outcome.name) is None:
            run._name = outcome.name
        if outcome.logs:
            emit_records(outcome.logs)
        state = outcome.state
        if state.type is StateType.FAILED and isinstance(state.data, BaseException):
            attach_traceback(state.data, outcome.traceback)
        self._finish(state)

    # ------------------------------------------------------------------ pickling

    def __reduce__(self) -> tuple[Any, ...]:
        state = self._state if self._final and not self._state.is_completed() else None
        if self._key is None and state is None:
            if not self._final:
                raise TypeError("this DistributedFuture has not reached the cluster yet; pickle it later")
            state = self._state
        name = self._run.task_run_name if self._run is not None else "?"
        return _rebuild, (self.task_run_id, name, self._address, self._key, state)

    # ------------------------------------------------------------------ detached (unpickled) futures

    def _attach(self) -> None:
        """(unpickled copies) Start fetching the outcome from the cluster, once."""
        if self._fetching or self._final:
            return
        with _attach_lock:
            if self._fetching:
                return
            self._fetching = True
        threading.Thread(target=self._fetch, name="taskrun-dask-fetch", daemon=True).start()

    def _fetch(self) -> None:
        try:
            outcome = _fetch_outcome(self._address, self._key)
        except BaseException as exc:  # becomes the state
            self._finish(state_of_dask_error(exc))
        else:
            self._finish_with(outcome)


def _fetch_outcome(address: str | None, key: str | None) -> Any:
    """Wait for the outcome stored under ``key`` on the cluster at ``address``."""
    import distributed  # noqa: PLC0415 - this module is imported without Dask

    client = _client_for(address)
    known = client.run_on_scheduler(_knows_key, key=key)
    if not known:
        raise LookupError(
            f"the cluster no longer holds run {key!r}: its original future (or runner) is gone"
        )
    dask_future: Any = distributed.Future(key, client)  # type: ignore[arg-type]
    # A future made from a key must tell the scheduler this client wants it.
    client._send_to_scheduler({"op": "client-desires-keys", "keys": [key]})
    return dask_future.result()


def _knows_key(dask_scheduler: Any, key: str) -> bool:
    return key in dask_scheduler.tasks


_attach_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _client_for(address: str | None) -> Any:
    """A client of the scheduler at ``address`` in this process (made once, then reused)."""
    import distributed  # noqa: PLC0415 - this module is imported without Dask

    for get in (distributed.default_client, distributed.get_client):
        try:
            client = get()
        except Exception:
            continue
        if address is None or getattr(client.scheduler, "address", None) == address:
            return client
    if address is None:
        raise RuntimeError("this DistributedFuture does not know its scheduler's address")
    with _attach_lock:
        client = _clients.get(address)
        if client is None or client.status not in ("running", "connecting", "newly-created"):
            client = _clients[address] = distributed.Client(address, set_as_default=False)
    return client


def state_of_dask_error(exc: BaseException) -> State[Any]:
    """The state of a run whose Dask task itself failed (not the task's body)."""
    kind = type(exc).__name__
    if kind == "KilledWorker":
        return Crashed(exc, message=f"the Dask worker running it died, too often to retry ({exc})")
    if kind in ("CancelledError", "FutureCancelledError"):
        return Cancelled(f"the run was cancelled on the cluster ({exc})")
    if isinstance(exc, Exception):
        return Failed(exc)
    return Crashed(exc)


def _rebuild(run_id: uuid.UUID, name: str, address: str | None, key: str | None,
             state: State[Any] | None) -> DistributedFuture[Any]:
    future: DistributedFuture[Any] = DistributedFuture(RunRef(run_id, name))
    future._address = address
    future._key = key
    future._when_placed = None
    if state is not None:
        future._finish(state)
    return future


__all__ = ["DistributedFuture"]
