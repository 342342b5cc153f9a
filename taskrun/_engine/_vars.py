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
#: ``log_prints`` of the enclosing flow, the default for its tasks.
flow_log_prints: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "taskrun_flow_log_prints", default=False
)


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
