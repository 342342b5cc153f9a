"""The run record: one task run, as the engine and the run itself see it."""

from __future__ import annotations

import contextvars
import threading
import uuid
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._core._seam import DispatchedRun
from .._ids import new_uuid
from .._plain import LEAF_TYPES
from ._resolve import collect_futures

if TYPE_CHECKING:
    from ..tasks import Task
    from ._caching import RunCaching
    from ._future import TaskFuture

_id_lock = threading.Lock()

T = TypeVar("T")


class RunExtra:
    """The fields of a run that most runs never set, kept apart from the record
    and made on the first write of one of them: a pending run is smaller by
    their slots (README, *Performance*: bytes per pending run)."""

    __slots__ = ("cache", "dependencies", "deps_computed", "log_prints", "name_error",
                 "raw_parameters", "slot_run", "timed_out_attempt", "upstream")

    def __init__(self) -> None:
        #: results: a RunCaching, set (only) when the task caches or persists.
        self.cache: Any = None
        self.dependencies: dict[str, set[uuid.UUID]] | None = None
        self.deps_computed = False
        self.log_prints = False
        self.name_error: Exception | None = None
        #: The parameters as submitted, when admission replaced futures in them.
        self.raw_parameters: dict[str, Any] | None = None
        #: For a direct call inside a run: the run that holds the slot.
        self.slot_run: Any = None
        self.timed_out_attempt = 0
        #: Futures found in the parameters and ``wait_for`` (admission's cache).
        self.upstream: Any = None


class _Extra(Generic[T]):
    """A field of the run's :class:`RunExtra`, read and written as the record's own:
    reads give the default while the run has none; writing the default makes none."""

    __slots__ = ("_default", "_field")

    def __init__(self, field: str, default: T) -> None:
        self._field = field
        self._default = default

    def __get__(self, run: TaskRunContext | None, owner: Any = None) -> T:
        if run is None:
            return self  # type: ignore[return-value]
        extra = run._extra
        return self._default if extra is None else getattr(extra, self._field)

    def __set__(self, run: TaskRunContext, value: T) -> None:
        extra = run._extra
        if extra is None:
            if value is self._default:
                return
            extra = run._extra = RunExtra()
        setattr(extra, self._field, value)


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
        "_extra",  # a RunExtra, or None: the rarely set fields below live there
        "_id",
        "_name",
        "_param_name",
        "_params",
        "attempt",
        "future",
        "tags",
        "task",
        "wait_for",
    )
    _cache: _Extra[RunCaching | None] = _Extra("cache", None)
    _dependencies: _Extra[dict[str, set[uuid.UUID]] | None] = _Extra("dependencies", None)
    _deps_computed: _Extra[bool] = _Extra("deps_computed", False)
    _log_prints: _Extra[bool] = _Extra("log_prints", False)
    _name_error: _Extra[Exception | None] = _Extra("name_error", None)
    _raw_parameters: _Extra[dict[str, Any] | None] = _Extra("raw_parameters", None)
    _slot_run: _Extra[TaskRunContext | None] = _Extra("slot_run", None)
    _timed_out_attempt: _Extra[int] = _Extra("timed_out_attempt", 0)
    _upstream: _Extra[Any] = _Extra("upstream", None)

    def __init__(
        self,
        task: Task[Any, Any],
        parameters: Any,
        tags: frozenset[str],
        context: contextvars.Context,
        wait_for: Any = None,
        param_name: str | None = None,
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
        #: The parameters dict; or, for a run of a map over one parameter
        #: (``_param_name``), that parameter's bare value (never a dict) until
        #: the dict is made, on first access: 184 bytes less per pending run.
        self._params = parameters
        self._param_name = param_name
        self.wait_for = wait_for
        self.tags = tags
        self.attempt = 0
        self.future: TaskFuture[Any] | None = None
        self._id: uuid.UUID | None = None
        self._name: str | None = None
        self._extra: RunExtra | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters, name -> value (after admission: futures replaced by their values)."""
        params = self._params
        if type(params) is not dict:  # a map's run over one parameter: made now, once
            with _id_lock:
                params = self._params
                if type(params) is not dict:
                    params = self._params = {self._param_name: params}
        return params

    @parameters.setter
    def parameters(self, parameters: dict[str, Any]) -> None:
        self._params = parameters

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
        if self._cancel_requested:
            return True
        extra = self._extra
        return extra is not None and extra.timed_out_attempt == self.attempt

    def __repr__(self) -> str:
        return f"<TaskRunContext {self.task_run_name!r} attempt={self.attempt}>"


