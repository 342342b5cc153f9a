"""The run record: one task run, as the engine and the run itself see it."""

from __future__ import annotations

import contextvars
import threading
import uuid
from typing import TYPE_CHECKING, Any

from .._core._seam import DispatchedRun
from .._ids import new_uuid
from .._plain import LEAF_TYPES
from ._resolve import collect_futures

if TYPE_CHECKING:
    from ..tasks import Task
    from ._caching import RunCaching
    from ._future import TaskFuture

_id_lock = threading.Lock()


class TaskRunContext(DispatchedRun):
    """One task run, as the run itself and the engine see it.

    Returned by :func:`get_run_context` inside a run. Public attributes:
    ``task_run_id``, ``task``, ``task_run_name``, ``parameters``, ``tags``,
    ``attempt`` (1-based), ``dependencies`` (parameter name -> upstream run ids),
    and :meth:`cancel_requested`. The slots the core owns are declared on
    :class:`~taskrun._core._seam.DispatchedRun`; the ones below are the engine's,
    written by whichever thread steps the run (one at a time).

    Example::

        @task
        def which() -> str:
            ctx = get_run_context()
            return f"{ctx.task_run_name} attempt {ctx.attempt}"
    """

    __slots__ = (
        "_cache",  # results: a RunCaching, set (only) when the task caches or persists
        "_dependencies",
        "_deps_computed",
        "_id",
        "_log_prints",
        "_name",
        "_name_error",
        "_raw_parameters",
        "_slot_run",
        "_timed_out_attempt",
        "_upstream",
        "attempt",
        "future",
        "parameters",
        "tags",
        "task",
        "wait_for",
    )
    _cache: RunCaching

    def __init__(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        tags: frozenset[str],
        context: contextvars.Context,
        wait_for: Any = None,
    ) -> None:
        # The core's slots, as DispatchedRun.__init__ sets them (inlined: one
        # call less per run; tests/core/test_seam.py checks the two agree).
        self._context: contextvars.Context | None = context
        self._prev: Any = None
        self._next: Any = None
        self._holds_slot = False
        self._host: Any = None
        self._in_task = False
        self._started = False
        self._cancel_requested = False
        self._cancel_hook: Any = None
        self._cancel_delivered = False
        self._priority = task.priority
        self.dispatcher = None
        self.task = task
        self.parameters = parameters
        self.wait_for = wait_for
        self.tags = tags
        self.attempt = 0
        self.future: TaskFuture[Any] | None = None
        self._dependencies: dict[str, set[uuid.UUID]] | None = None
        self._raw_parameters: dict[str, Any] | None = None
        self._deps_computed = False
        self._id: uuid.UUID | None = None
        self._name: str | None = None
        self._name_error: Exception | None = None
        self._timed_out_attempt = 0
        #: For a direct call inside a run: the run that holds the slot.
        self._slot_run: TaskRunContext | None = None
        #: Futures found in the parameters and ``wait_for`` (admission's cache).
        self._upstream: Any = None
        self._log_prints = False

    @property
    def task_run_id(self) -> uuid.UUID:
        """A random UUID, made the first time anyone asks for it."""
        run_id = self._id
        if run_id is None:
            with _id_lock:
                run_id = self._id
                if run_id is None:
                    run_id = self._id = new_uuid()
        return run_id

    @property
    def task_run_name(self) -> str:
        """``task_run_name`` of the task filled from the parameters, else ``<task>-<id>``."""
        name = self._name
        if name is None:
            try:
                name = self.task._format_run_name(self)
            except Exception as exc:  # the engine fails the run with it; the name falls back
                self._name_error = exc
                name = f"{self.task.name}-{self.task_run_id.hex[:8]}"
            self._name = name
        return name

    @property
    def dependencies(self) -> dict[str, set[uuid.UUID]]:
        """Parameter name -> ids of the upstream runs found in it (``"wait_for"`` too).

        Worked out on first access from the parameters as submitted.
        """
        deps = self._dependencies
        if deps is None:
            deps = {}
        if not self._deps_computed:
            raw = self._raw_parameters if self._raw_parameters is not None else self.parameters
            for name, value in raw.items():
                if type(value) in LEAF_TYPES:  # no future in it (collect_futures' first test)
                    continue
                found = collect_futures(value)
                if found:
                    deps.setdefault(name, set()).update(f.task_run_id for f, _ in found)
            if self.wait_for:
                found = collect_futures(None, self.wait_for)
                if found:
                    deps.setdefault("wait_for", set()).update(f.task_run_id for f, _ in found)
            self._dependencies = deps
            self._deps_computed = True
        return deps

    def add_dependencies(self, given: dict[str, Any]) -> None:
        """Merge caller-supplied inputs (``submit(..., dependencies=...)``)."""
        deps = self._dependencies if self._dependencies is not None else {}
        for key, ids in given.items():
            deps.setdefault(key, set()).update(ids)
        self._dependencies = deps

    def cancel_requested(self) -> bool:
        """True once the run was cancelled, or its current attempt timed out.

        Sync bodies cannot be interrupted; long ones should check this and return.
        """
        return self._cancel_requested or self._timed_out_attempt == self.attempt

    def __repr__(self) -> str:
        return f"<TaskRunContext {self.task_run_name!r} attempt={self.attempt}>"


