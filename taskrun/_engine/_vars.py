"""The context variables the engine reads and the surface sets, and their accessors.

They live apart from the run record so that any engine module can read them
without importing the record (and whatever the record imports).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._flow_context import FlowRunContext
    from ._record import TaskRunContext

#: The run whose code is executing in this context (None outside runs).
current_run: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "taskrun_current_run", default=None
)
#: Tags added by enclosing ``tags(...)`` blocks.
current_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "taskrun_tags", default=frozenset()
)
#: The runner that ``task.submit``/``task.map`` use (set by entering a runner).
current_runner: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "taskrun_current_runner", default=None
)
#: The flow run whose code (or whose task runs) execute in this context.
current_flow_run: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "taskrun_current_flow_run", default=None
)
#: ``log_prints`` of the enclosing flow, the default for its tasks.
flow_log_prints: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "taskrun_flow_log_prints", default=False
)


def get_run_context() -> TaskRunContext | FlowRunContext | None:
    """The context of the task run calling this, else of the flow run, else None.

    Inside a task run: its :class:`~taskrun.context.TaskRunContext`. In flow code
    outside task runs: a ``FlowRunContext`` (``flow_name``, ``flow_run_name``,
    ``parameters``, ``task_runner``).

    Example::

        @task
        def which() -> int:
            return get_run_context().attempt
    """
    run = current_run.get()
    if run is None:
        return current_flow_run.get()
    return run


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
