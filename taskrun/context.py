"""Run context: what a running task can ask about itself, tags, and run loggers.

Example::

    from taskrun import task, tags, get_run_context, get_run_logger

    @task
    def hello() -> str:
        ctx = get_run_context()
        get_run_logger().info("attempt %d of %s", ctx.attempt, ctx.task_run_name)
        return ctx.task_run_name

    with tags("nightly"):
        future = hello.submit()
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .futures import TaskFuture
    from .tasks import Task

current_run: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "taskrun_current_run", default=None
)
current_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "taskrun_tags", default=frozenset()
)
current_runner: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "taskrun_current_runner", default=None
)
flow_log_prints: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "taskrun_flow_log_prints", default=False
)

_id_lock = threading.Lock()


class TaskRunContext:
    """One task run, as the run itself and the engine see it.

    Returned by :func:`get_run_context` inside a run. Public attributes:
    ``task_run_id``, ``task``, ``task_run_name``, ``parameters``, ``tags``,
    ``attempt`` (1-based), ``dependencies`` (parameter name -> upstream run ids),
    and :meth:`cancel_requested`.
    """

    __slots__ = (
        "_cancel_delivered",
        "_cancel_hook",
        "_cancel_requested",
        "_context",
        "_dependencies",
        "_deps_computed",
        "_holds_slot",
        "_id",
        "_in_task",
        "_log_prints",
        "_name",
        "_name_error",
        "_next",
        "_prev",
        "_raw_parameters",
        "_slot_run",
        "_slots",
        "_started",
        "_timed_out_attempt",
        "_upstream",
        "attempt",
        "future",
        "parameters",
        "tags",
        "task",
        "wait_for",
    )

    def __init__(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        tags: frozenset[str],
        context: contextvars.Context,
        wait_for: Any = None,
    ) -> None:
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
        self._prev: Any = None  # the dispatcher's list of runs in flight
        self._next: Any = None
        self._context = context
        self._cancel_requested = False
        self._timed_out_attempt = 0
        self._cancel_hook: Any = None
        self._cancel_delivered = False
        self._slots: Any = None
        self._slot_run: TaskRunContext | None = None
        self._holds_slot = False
        self._upstream: Any = None
        self._log_prints = False
        self._started = False
        self._in_task = False

    @property
    def task_run_id(self) -> uuid.UUID:
        """A random UUID, made the first time anyone asks for it."""
        run_id = self._id
        if run_id is None:
            with _id_lock:
                run_id = self._id
                if run_id is None:
                    run_id = self._id = uuid.uuid4()
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
            from ._resolve import collect_futures

            raw = self._raw_parameters if self._raw_parameters is not None else self.parameters
            for name, value in raw.items():
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


def get_run_context() -> TaskRunContext | None:
    """The context of the task run calling this, or None outside a task run.

    Example::

        @task
        def which() -> int:
            return get_run_context().attempt
    """
    return current_run.get()


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every run submitted inside the block (nested blocks add up).

    Example::

        with tags("etl", "nightly"):
            load.submit()
    """
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags must be strings, got {name!r} of type {type(name).__name__}")
    new = current_tags.get() | frozenset(names)
    token = current_tags.set(new)
    try:
        yield new
    finally:
        current_tags.reset(token)


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Stamps each record with the task name, run name and run id."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"{extra['task_run_name']} - {msg}", kwargs


_RUN_LOGGER_NAME = "taskrun.task_runs"
_default_handler_lock = threading.Lock()
_default_handler_installed = False


def _ensure_default_handler() -> None:
    """Give taskrun's loggers a stderr handler unless logging is configured already."""
    global _default_handler_installed
    if _default_handler_installed:
        return
    with _default_handler_lock:
        if _default_handler_installed:
            return
        _default_handler_installed = True
        from .settings import logging_level

        root_logger = logging.getLogger("taskrun")
        if root_logger.handlers or logging.getLogger().handlers:
            return
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s"))
        root_logger.addHandler(handler)
        root_logger.setLevel(logging_level())
        root_logger.propagate = False


def run_logger_for(run: TaskRunContext) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    _ensure_default_handler()
    return RunLoggerAdapter(
        logging.getLogger(_RUN_LOGGER_NAME),
        {
            "task_name": run.task.name,
            "task_run_name": run.task_run_name,
            "task_run_id": str(run.task_run_id),
        },
    )


def get_run_logger() -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for the current task run, stamped with its name and id.

    Raises :class:`RuntimeError` outside a task run.

    Example::

        @task
        def load() -> None:
            get_run_logger().info("loading")
    """
    run = current_run.get()
    if run is None:
        raise RuntimeError(
            "get_run_logger() was called outside a task run; call it inside a @task "
            "function, or use logging.getLogger(...) elsewhere"
        )
    return run_logger_for(run)
