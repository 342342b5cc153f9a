"""Cost of the observability hook: microseconds per emitted event, with and without a subscriber.

Run: python benchmarks/observe.py [events]      (the hook alone, on synthetic runs)
     python benchmarks/observe.py map [N]       (a real N-run sync map, recording off vs on)

"none" is what every run pays when nobody listens (the engine's guarded call:
``if _events.ACTIVE: emit(...)``, plus the unguarded emitter call for comparison);
"subscribed" is the emitting thread's cost with a recorder listening (the append to
the buffer); "delivered" adds the delivery thread turning events into run records.

``map`` times ``ThreadPoolTaskRunner(max_workers=8).map(noop, N).result()`` with
recording off and with a Recorder writing JSON Lines (what ``TASKRUN_RECORD`` does),
alternately, 5 pairs after a warm-up, and prints the median ratio on/off: for the map
itself, and until every record is written. The target is ratio <= 1.3.
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


def _map_once(n: int, path: str | None) -> tuple[float, float]:
    from taskrun import ThreadPoolTaskRunner, task

    @task
    def noop(x: int) -> int:
        return x

    recorder = Recorder(path, keep=False).start() if path is not None else None
    try:
        start = time.perf_counter()
        with ThreadPoolTaskRunner(max_workers=8) as runner:
            out = runner.map(noop, {"x": range(n)}).result()
        mapped = time.perf_counter() - start
        if recorder is not None:
            recorder.close()
        written = time.perf_counter() - start
    finally:
        if recorder is not None:
            recorder.close()
    assert len(out) == n
    return mapped, written


def map_ratio(n: int, pairs: int = 5) -> None:
    import os
    import statistics
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "runs.jsonl")
        _map_once(n, None), _map_once(n, path)  # warm-up
        off, on = [], []
        for _ in range(pairs):
            off.append(_map_once(n, None))
            if os.path.exists(path):
                os.unlink(path)
            on.append(_map_once(n, path))
        with open(path) as lines:
            assert sum(1 for _ in lines) == n
    mapped = statistics.median(b[0] / a[0] for a, b in zip(off, on, strict=True))
    written = statistics.median(b[1] / a[0] for a, b in zip(off, on, strict=True))
    print(f"{n}-run sync map, ThreadPoolTaskRunner(max_workers=8), {pairs} pairs, medians:")
    print(f"  off                       {statistics.median(a[0] for a in off) * 1e3:8.1f} ms")
    print(f"  recording on: map         {statistics.median(b[0] for b in on) * 1e3:8.1f} ms")
    print(f"  recording on: all written {statistics.median(b[1] for b in on) * 1e3:8.1f} ms")
    print(f"ratio on/off: map {mapped:.2f}x, until written {written:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "map":
        map_ratio(int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
