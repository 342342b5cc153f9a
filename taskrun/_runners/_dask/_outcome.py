"""What crosses back from a Dask worker: a run's outcome, and run identities."""

from __future__ import annotations

import uuid
from typing import Any

from ...states import State


class RemoteOutcome:
    """The final state of a run executed on a Dask worker, and what came with it."""

    __slots__ = ("logs", "name", "state", "traceback")

    def __init__(self, state: State[Any], name: str, logs: list[dict[str, Any]],
                 traceback: str | None) -> None:
        self.state = state
        self.name = name
        self.logs = logs
        self.traceback = traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return RemoteOutcome, (self.state, self.name, self.logs, self.traceback)


class RunRef:
    """The identity of a run known only by id and name (upstream runs, unpickled futures)."""

    __slots__ = ("task_run_id", "task_run_name")

    def __init__(self, task_run_id: uuid.UUID, task_run_name: str) -> None:
        self.task_run_id = task_run_id
        self.task_run_name = task_run_name
