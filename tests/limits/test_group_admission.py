"""A batch of runs with the same tags (a tagged task's map) takes its tag limits'
permits together (``TagGate.admit_group``), as that many single admissions in a
row would: as many as fit, never ahead of anyone waiting, the rest parked in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import taskrun
import taskrun.limits as limits
from taskrun import ThreadPoolTaskRunner, task
from taskrun._limits import _local
from taskrun._limits._gate import TAG_GATE

from ._meter import Meter

pytestmark = pytest.mark.timeout(60)


class _Future:
    def __init__(self) -> None:
        self._final = False
        self.release: Callable[[], object] | None = None

    def _release_when_final(self, release: Callable[[], object]) -> None:
        self.release = release


class _Run:
    def __init__(self, tags: frozenset[str], future: Any) -> None:
        self.tags = tags
        self._priority = 0
        self.future = future
        self.dispatcher = None


def _runs(tags: frozenset[str], n: int) -> list[_Run]:
    return [_Run(tags, _Future()) for _ in range(n)]


def _used(name: str) -> int:
    stats = _local.statistics(name)
    return 0 if stats is None else stats.used


def test_a_group_takes_as_many_slots_as_are_free() -> None:
    limits.set("tag:db", 3)
    runs = _runs(frozenset({"db"}), 5)
    assert TAG_GATE.admit_group(runs) == 3
    assert _used("tag:db") == 3
    assert [run.future.release is not None for run in runs] == [True] * 3 + [False] * 2
    for run in runs[:3]:
        run.future.release()
    assert _used("tag:db") == 0


def test_a_group_counts_slots_given_back_without_the_lock() -> None:
    limits.set("tag:db", 2)
    first = _runs(frozenset({"db"}), 2)
    assert TAG_GATE.admit_group(first) == 2
    for run in first:
        run.future.release()  # lock-free: lands on the slots' returned list
    second = _runs(frozenset({"db"}), 2)
    assert TAG_GATE.admit_group(second) == 2
    for run in second:
        run.future.release()
    assert _used("tag:db") == 0


def test_a_group_never_goes_ahead_of_a_waiter() -> None:
    limits.set("tag:db", 2)
    held = _runs(frozenset({"db"}), 1)
    assert TAG_GATE.admit_group(held) == 1
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(_hold_both("tag:db")))
    waiter.start()
    deadline = time.monotonic() + 10
    while (stats := _local.statistics("tag:db")) is None or stats.waiting == 0:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.001)
    # One slot is free, but the waiter (for two) came first: the group waits behind it.
    assert TAG_GATE.admit_group(_runs(frozenset({"db"}), 1)) == 0
    held[0].future.release()
    waiter.join(10)
    assert got == [True]
    assert _used("tag:db") == 0


def _hold_both(name: str) -> bool:
    with taskrun.concurrency(name, occupy=2, timeout_seconds=10):
        time.sleep(0.01)
    return True


def test_a_group_without_limits_is_admitted_whole_and_takes_nothing() -> None:
    runs = _runs(frozenset({"no-limit-here"}), 4)
    assert TAG_GATE.admit_group(runs) == 4
    assert all(run.future.release is None for run in runs)


def test_a_run_without_a_future_gives_its_slot_back_at_once() -> None:
    limits.set("tag:db", 2)
    assert TAG_GATE.admit_group([_Run(frozenset({"db"}), None)]) == 1
    assert _used("tag:db") == 0


def test_a_map_larger_than_its_limit_runs_within_it_and_in_order() -> None:
    limits.set("tag:db", 2)
    meter = Meter()
    started: list[int] = []

    @task(tags=["db"])
    def query(i: int) -> int:
        meter.enter()
        started.append(i)
        time.sleep(0.005)
        meter.exit()
        return i

    @task
    def plain(i: int) -> int:
        return i

    with ThreadPoolTaskRunner(max_workers=8) as runner:
        assert runner.map(query, {"i": range(40)}).result(timeout=30) == list(range(40))
        # Parked runs are admitted first come, first served, two at a time: a run
        # never starts more than one place ahead of its turn.
        assert all(abs(pos - i) <= 1 for pos, i in enumerate(started)), started
        assert runner.map(plain, {"i": range(10)}).result(timeout=30) == list(range(10))
    assert meter.high <= 2 and meter.done == 40
    assert _used("tag:db") == 0


def test_one_hand_off_of_mixed_runs_starts_in_order() -> None:
    limits.set("tag:x", 1)
    limits.set("tag:y", 5)
    started: list[str] = []

    @task(tags=["x"])
    def xs(name: str) -> str:
        started.append(name)
        return name

    @task(tags=["y"])
    def ys(name: str) -> str:
        started.append(name)
        return name

    @task
    def untagged(name: str) -> str:
        started.append(name)
        return name

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        runs = [
            *runner._new_runs(xs, [{"name": "x0"}, {"name": "x1"}], None),
            *runner._new_runs(untagged, [{"name": "u0"}], None),
            *runner._new_runs(xs, [{"name": "x2"}], None),
            *runner._new_runs(ys, [{"name": "y0"}], None),
        ]
        futures = runner._submit_runs(runs)  # one batch: admitted together
        assert [f.result(timeout=30) for f in futures] == ["x0", "x1", "u0", "x2", "y0"]
    # x1 and x2 wait for x0's permit; the runs between them do not wait for them.
    assert started == ["x0", "u0", "y0", "x1", "x2"]
    assert _used("tag:x") == 0
