"""Run loggers: records stamped with the run, and taskrun's default handler."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..settings import logging_level
from ._vars import current_flow_run, current_run

if TYPE_CHECKING:
    from ._record import TaskRunContext


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
            "flow_run_name": current_flow_run_name(),
            "attempt": run.attempt,
        },
    )


def current_flow_run_name() -> str | None:
    """The name of the flow run this code runs in, or None."""
    ctx = current_flow_run.get()
    return ctx.flow_run_name if ctx is not None else None


def get_run_logger() -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for the current task run (or, in flow code, flow run), stamped with its name and id.

    Raises :class:`RuntimeError` outside a task run.

    Example::

        @task
        def load() -> None:
            get_run_logger().info("loading")
    """
    run = current_run.get()
    if run is None:
        flow_run = current_flow_run.get()
        if flow_run is not None:
            return flow_run.logger()
        raise RuntimeError(
            "get_run_logger() was called outside a task or flow run; call it inside a @task "
            "or @flow function, or use logging.getLogger(...) elsewhere"
        )
    return run_logger_for(run)
