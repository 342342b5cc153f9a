"""Cost of the observability hook: microseconds per emitted event, with and without a subscriber.

Run: python benchmarks/observe.py [events]

"none" is what every run pays when nobody listens (the engine's guarded call:
``if _events.ACTIVE: emit(...)``, plus the unguarded emitter call for comparison);
"subscribed" is the emitting thread's cost with a recorder listening (the append to
the buffer); "delivered" adds the delivery thread turning events into run records.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from taskrun._observe import _events
from taskrun._observe._recorder import Recorder
from taskrun.states import Completed, Running


@dataclass(frozen=True)
class _Task:
    name: str


@dataclass
class _Run:
    task: _Task
    task_run_name: str
    parameters: dict[str, Any]
    tags: frozenset[str] = frozenset()
    attempt: int = 1
    task_run_id: uuid.UUID = field(default_factory=uuid.uuid4)


def _emit(runs: list[_Run], guarded: bool) -> float:
    running, completed = Running(), Completed(1)
    events = _events
    start = time.perf_counter()
    if guarded:
        for run in runs:
            if events.ACTIVE:
                events.emit_submitted(run)
            if events.ACTIVE:
                events.emit_state(run, running)
            if events.ACTIVE:
                events.emit_finished(run, completed)
    else:
        for run in runs:
            events.emit_submitted(run)
            events.emit_state(run, running)
            events.emit_finished(run, completed)
    return time.perf_counter() - start


def main(n: int) -> None:
    runs = [_Run(_Task("fetch"), f"fetch-{i}", {"i": i}) for i in range(n)]
    count = 3 * n
    rows = [("none, guarded (engine form)", _emit(runs, True)), ("none, unguarded call", _emit(runs, False))]
    with Recorder(keep=True) as recorder:
        emitted = _emit(runs, True)
        start = time.perf_counter()
        _events.flush(60)
        drained = time.perf_counter() - start
    assert len(recorder.records) == n
    rows.append(("subscribed (emitting thread)", emitted))
    rows.append(("subscribed + delivered to records", emitted + drained))
    print(f"{count} events ({n} runs x submitted/state/finished)")
    for name, seconds in rows:
        print(f"  {name:36s} {seconds / count * 1e6:7.3f} us/event")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
