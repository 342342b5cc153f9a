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

from ._engine._flow_context import FlowRunContext
from ._engine._logging import RunLoggerAdapter, get_run_logger
from ._engine._record import TaskRunContext
from ._engine._vars import get_run_context, tags

__all__ = [
    "TaskRunContext",
    "FlowRunContext",
    "RunLoggerAdapter",
    "get_run_context",
    "get_run_logger",
    "tags",
]
