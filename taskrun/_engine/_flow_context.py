"""The flow-run context: what flow code (outside task runs) can ask about its run.

Example::

    @flow(flow_run_name="nightly-{day}")
    def nightly(day: str) -> None:
        ctx = get_run_context()          # a FlowRunContext here
        assert ctx.flow_run_name == f"nightly-{day}"
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .._ids import new_uuid
from ..states import State
from ._future import TaskFuture
from ._logging import _ensure_default_handler
from ._vars import current_flow_run

if TYPE_CHECKING:
    from ..flows import Flow

_FLOW_LOGGER_NAME = "taskrun.flow_runs"

#: Threads currently running a flow body (ident -> depth), for the "no runner in this
#: thread" error of ``task.submit`` called from a thread the user started.
_active_threads: dict[int, int] = {}
_active_lock = threading.Lock()


class FlowRunContext:
    """One run of a flow. Returned by ``get_run_context()`` in flow code.

    Attributes: ``flow`` and ``flow_name``, ``flow_run_id``, ``flow_run_name``,
    ``parameters``, ``task_runner`` (the entered runner, None between attempts),
    ``attempt`` (1-based), ``log_prints``.

    Example::

        ctx = get_run_context()
        print(ctx.flow_name, ctx.flow_run_name, ctx.parameters)
    """

    def __init__(self, flow: Flow[Any, Any], parameters: dict[str, Any], flow_run_name: str,
                 log_prints: bool) -> None:
        self.flow = flow
        self.flow_name: str = flow.name
        self.flow_run_id = new_uuid()
        self.flow_run_name = flow_run_name
        self.parameters = parameters
        self.task_runner: Any = None
        self.attempt = 0
        self.log_prints = log_prints
        #: The flow's result defaults for its task runs (``_results``), or None.
        self.result_defaults: Any = getattr(flow, "_result_defaults", None)
        self._tracked: list[Any] = []  # futures, FutureLists and final states of its runs

    def track(self, item: TaskFuture[Any] | list[Any] | State[Any]) -> None:
        """Remember a run (a future, a list of futures, or a final state) for the end line."""
        self._tracked.append(item)

    def counts(self) -> dict[str, int]:
        """Runs of this flow by state name (``{"Completed": 3, "Failed": 1}``)."""
        counts: dict[str, int] = {}
        for item in self._tracked:
            items = item if isinstance(item, list) else (item,)
            for one in items:
                if isinstance(one, TaskFuture):
                    name = one.state.name
                elif isinstance(one, State):
                    name = one.name
                else:
                    continue
                counts[name] = counts.get(name, 0) + 1
        return counts

    def logger(self) -> logging.LoggerAdapter:  # type: ignore[type-arg]
        """A logger stamped with this flow run (``taskrun.flow_runs``)."""
        _ensure_default_handler()
        return FlowRunLoggerAdapter(logging.getLogger(_FLOW_LOGGER_NAME), self.extra())

    def extra(self) -> dict[str, Any]:
        return {"flow_name": self.flow_name, "flow_run_name": self.flow_run_name,
                "flow_run_id": str(self.flow_run_id), "attempt": self.attempt}

    def __repr__(self) -> str:
        return f"<FlowRunContext {self.flow_run_name!r} attempt={self.attempt}>"


class FlowRunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Stamps records with the flow name, run name and id, and the attempt."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"{extra['flow_run_name']} - {msg}", kwargs


def enter_thread() -> None:
    ident = threading.get_ident()
    with _active_lock:
        _active_threads[ident] = _active_threads.get(ident, 0) + 1


def leave_thread() -> None:
    ident = threading.get_ident()
    with _active_lock:
        depth = _active_threads.get(ident, 0) - 1
        if depth > 0:
            _active_threads[ident] = depth
        else:
            _active_threads.pop(ident, None)


def flow_running_elsewhere() -> bool:
    """True when some flow body is running, but not in this thread."""
    with _active_lock:
        return bool(_active_threads) and threading.get_ident() not in _active_threads


__all__ = ["FlowRunContext", "current_flow_run"]
