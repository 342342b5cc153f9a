"""taskrun: an asyncio-native task runner with sync shims.

Example::

    from taskrun import flow, task

    @task(retries=2)
    def fetch(n: int) -> int:
        return n * 10

    @flow
    def pipeline() -> int:
        return sum(fetch.map(range(5)).result())

    print(pipeline())   # 100
"""

from __future__ import annotations

from typing import Any

from .annotations import allow_failure, opaque, quote, unmapped
from .context import get_run_context, get_run_logger, tags
from .exceptions import (
    CancelledRun,
    CrashedRun,
    MappingLengthMismatch,
    MappingMissingIterable,
    ParameterBindError,
    TaskRunError,
    TaskRunTimeout,
    UpstreamTaskError,
)
from .flows import Flow, flow
from .futures import (
    ConcurrentFuture,
    FutureList,
    TaskFuture,
    as_completed,
    as_completed_async,
    resolve_futures_to_results,
    resolve_futures_to_states,
    wait,
    wait_async,
)
from .states import State, StateType
from .task_runners import TaskRunner, ThreadPoolTaskRunner
from .tasks import Task, exponential_backoff, task, task_input_hash

__version__ = "0.1.0"

__all__ = [
    "task",
    "Task",
    "flow",
    "Flow",
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "TaskFuture",
    "ConcurrentFuture",
    "FutureList",
    "wait",
    "as_completed",
    "wait_async",
    "as_completed_async",
    "resolve_futures_to_states",
    "resolve_futures_to_results",
    "unmapped",
    "allow_failure",
    "quote",
    "opaque",
    "State",
    "StateType",
    "tags",
    "get_run_context",
    "get_run_logger",
    "exponential_backoff",
    "task_input_hash",
    "TaskRunError",
    "UpstreamTaskError",
    "MappingLengthMismatch",
    "MappingMissingIterable",
    "TaskRunTimeout",
    "CancelledRun",
    "CrashedRun",
    "ParameterBindError",
]


def __getattr__(name: str) -> Any:
    # Heavier runners are imported on first use, so `import taskrun` stays quick.
    if name == "ProcessPoolTaskRunner":
        from ._runners._process._runner import ProcessPoolTaskRunner  # noqa: PLC0415 - lazy runner

        return ProcessPoolTaskRunner
    if name == "DistributedFuture":
        from ._runners._dask._future import DistributedFuture  # noqa: PLC0415 - lazy: no Dask code

        return DistributedFuture
    raise AttributeError(f"module 'taskrun' has no attribute {name!r}")
