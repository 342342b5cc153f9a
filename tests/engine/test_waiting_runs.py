"""Ready sync runs waiting for a slot: pending until they start, never early, cancellable."""

from __future__ import annotations

import threading

import pytest

from taskrun import ThreadPoolTaskRunner, task


@pytest.mark.timeout(30)
def test_waiting_runs_stay_pending_until_their_body_starts() -> None:
    release = threading.Event()
    started = threading.Event()

    @task
    def blocker() -> str:
        started.set()
        release.wait(10)
        return "done"

    @task
    def queued(x: int) -> int:
        return x

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        first = runner.submit(blocker, {})
        assert started.wait(10)
        waiting = runner.map(queued, {"x": range(5)})
        for future in waiting:
            future.wait(0.05)
            assert future.state.is_pending(), future.state
        release.set()
        assert waiting.result(timeout=10) == [0, 1, 2, 3, 4]
        assert first.result(timeout=10) == "done"
    assert all(f.state.is_completed() for f in waiting)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_many_short_runs_never_exceed_max_workers(workers: int) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @task
    def body(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        for _ in range(200):  # a little work, so that bodies overlap if they can
            pass
        with lock:
            running[0] -= 1
        return x

    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        assert runner.map(body, {"x": range(3000)}).result(timeout=20) == list(range(3000))
    assert 1 <= peak[0] <= workers


@pytest.mark.timeout(30)
def test_cancelling_waiting_runs_leaves_the_rest_running() -> None:
    release = threading.Event()

    @task
    def blocker() -> None:
        release.wait(10)

    @task
    def queued(x: int) -> int:
        return x

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        runner.submit(blocker, {})
        waiting = runner.map(queued, {"x": range(6)})
        assert waiting[1].cancel() and waiting[4].cancel()
        release.set()
        values = waiting.result(timeout=10, raise_on_failure=False)
    assert [v for i, v in enumerate(values) if i not in (1, 4)] == [0, 2, 3, 5]
    assert waiting[1].state.is_cancelled() and waiting[4].state.is_cancelled()


@pytest.mark.timeout(30)
def test_a_waiting_run_that_blocks_on_a_child_gives_its_slot_back() -> None:
    @task
    def child(x: int) -> int:
        return x + 1

    @task
    def parent(x: int) -> int:
        return child.submit(x).result(timeout=10)

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        assert runner.map(parent, {"x": range(20)}).result(timeout=20) == list(range(1, 21))
