"""Tests of ``TASKRUN_*`` settings read from the environment."""

from __future__ import annotations

import threading
import time

import pytest

from taskrun import ThreadPoolTaskRunner, get_run_context, task

pytestmark = pytest.mark.timeout(30)

MAX_WORKERS = "TASKRUN_THREAD_POOL_MAX_WORKERS"
DEFAULT_RETRIES = "TASKRUN_TASK_DEFAULT_RETRIES"


def _peak_concurrency(runner: ThreadPoolTaskRunner, n: int = 4) -> int:
    lock = threading.Lock()
    state = {"current": 0, "peak": 0}

    @task
    def tracked(i: int) -> None:
        with lock:
            state["current"] += 1
            state["peak"] = max(state["peak"], state["current"])
        time.sleep(0.05)
        with lock:
            state["current"] -= 1

    with runner:
        tracked.map(range(n)).wait()
    return state["peak"]


# --------------------------------------------------------------------------- TASKRUN_THREAD_POOL_MAX_WORKERS


def test_thread_pool_max_workers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_WORKERS, "3")
    runner = ThreadPoolTaskRunner()
    assert runner == ThreadPoolTaskRunner(max_workers=3)
    assert runner.duplicate() == ThreadPoolTaskRunner(max_workers=3)


def test_thread_pool_max_workers_is_read_at_construction_not_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_WORKERS, "1")
    runner = ThreadPoolTaskRunner()
    monkeypatch.setenv(MAX_WORKERS, "8")
    assert _peak_concurrency(runner) == 1
    assert runner == ThreadPoolTaskRunner(max_workers=1)
    # a runner constructed now sees the new value
    assert ThreadPoolTaskRunner() == ThreadPoolTaskRunner(max_workers=8)


def test_unset_environment_gives_the_bounded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_WORKERS, raising=False)
    default = ThreadPoolTaskRunner()
    monkeypatch.setenv(MAX_WORKERS, "5")
    assert ThreadPoolTaskRunner() != default
    monkeypatch.delenv(MAX_WORKERS)
    assert ThreadPoolTaskRunner() == default


def test_explicit_max_workers_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_WORKERS, "7")
    assert ThreadPoolTaskRunner(max_workers=2) != ThreadPoolTaskRunner()
    assert ThreadPoolTaskRunner(max_workers=2) == ThreadPoolTaskRunner(max_workers=2)
    monkeypatch.setenv(MAX_WORKERS, "not a number")
    ThreadPoolTaskRunner(max_workers=2)  # the variable is not needed, so not read


@pytest.mark.parametrize("value", ["abc", "2.5", "0", "-1"])
def test_bad_thread_pool_max_workers_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(MAX_WORKERS, value)
    with pytest.raises(ValueError, match=MAX_WORKERS):
        ThreadPoolTaskRunner()


def test_bad_value_is_reported_at_construction_not_at_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_WORKERS, "2")
    runner = ThreadPoolTaskRunner()
    monkeypatch.setenv(MAX_WORKERS, "bogus")
    with runner:
        assert runner == ThreadPoolTaskRunner(max_workers=2)


# --------------------------------------------------------------------------- TASKRUN_TASK_DEFAULT_RETRIES


def test_task_default_retries_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEFAULT_RETRIES, "2")
    attempts: list[int] = []

    @task
    def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("again")
        return "ok"

    assert flaky.retries == 2
    with ThreadPoolTaskRunner():
        assert flaky.submit().result() == "ok"
    assert attempts == [1, 2, 3]


def test_explicit_retries_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEFAULT_RETRIES, "4")
    calls: list[int] = []

    @task(retries=0)
    def once() -> None:
        calls.append(1)
        raise RuntimeError("no retry")

    assert once.retries == 0
    with pytest.raises(RuntimeError):
        once()
    assert calls == [1]


def test_default_retries_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_RETRIES, raising=False)

    @task
    def plain() -> None: ...

    assert plain.retries == 0


@pytest.mark.parametrize("value", ["many", "-1", "1.5"])
def test_bad_task_default_retries_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(DEFAULT_RETRIES, value)
    with pytest.raises(ValueError, match=DEFAULT_RETRIES):

        @task
        def plain() -> None: ...
