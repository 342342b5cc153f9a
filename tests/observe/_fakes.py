"""Synthetic runs and event streams: the observability room is tested without the engine."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from taskrun._observe import _events
from taskrun.states import Completed, Failed, Running, Scheduled


@dataclasses.dataclass(frozen=True)
class FakeTask:
    name: str


@dataclasses.dataclass
class FakeRun:
    task: FakeTask
    task_run_name: str
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    attempt: int = 0
    task_run_id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    dependencies: dict[str, set[uuid.UUID]] = dataclasses.field(default_factory=dict)


def make_runs(task: str, n: int, **params: Any) -> list[FakeRun]:
    return [FakeRun(FakeTask(task), f"{task}-{i}", {"i": i, **params}) for i in range(n)]


def play(run: FakeRun, *, fail: bool = False, retries: int = 0, seconds: float = 0.0,
         cached: bool = False) -> None:
    """Emit the events of one run's life, as the engine will."""
    _events.emit_submitted(run)
    run.attempt = 1
    _events.emit_state(run, Running())
    for attempt in range(retries):
        if seconds:
            time.sleep(seconds)
        _events.emit_state(run, Scheduled("AwaitingRetry", f"attempt {attempt + 1} Failed"))
        run.attempt += 1
        _events.emit_state(run, Running("Retrying", f"attempt {run.attempt}"))
    if seconds:
        time.sleep(seconds)
    if fail:
        _events.emit_finished(run, Failed(ValueError(f"bad input {run.task_run_name}\nsecond line")))
    else:
        _events.emit_finished(run, Completed(run.parameters.get("i")), cached=cached)


def sample_stream(workers: int = 3, per_worker: int = 8) -> None:
    """A small mixed run on real threads: completions, failures, a retry, cache hits."""
    import threading

    def work(k: int) -> None:
        for j, run in enumerate(make_runs(f"fetch{k % 2}", per_worker, url=f"u{k}")):
            play(run, seconds=0.002, fail=(j == 3), retries=1 if j == 5 else 0, cached=(j == 7))

    threads = [threading.Thread(target=work, args=(k,), name=f"worker-{k}") for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
