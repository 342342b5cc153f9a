"""ProcessPoolTaskRunner: bodies in worker processes, everything else in the parent."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskrun import (
    ProcessPoolTaskRunner,
    allow_failure,
    flow,
    get_run_context,
    get_run_logger,
    tags,
    task,
)
from taskrun.exceptions import CancelledRun, CrashedRun, TaskRunTimeout, UpstreamTaskError

pytestmark = pytest.mark.timeout(60)

PARENT_PID = os.getpid()


class Boom(Exception):
    """A user exception type that must survive the trip back."""


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles, but cannot be rebuilt from args
        super().__init__(f"{a}-{b}")


# ----------------------------------------------------------------------------- tasks


@task
def where(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@task
async def where_async(x: int) -> tuple[int, int]:
    await asyncio.sleep(0.01)
    return x + 1, os.getpid()


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def fail(message: str = "nope") -> None:
    raise Boom(message)


@task
def fail_unpicklable() -> None:
    raise Unpicklable(1, 2)


@task
def describe() -> dict[str, Any]:
    ctx = get_run_context()
    assert ctx is not None
    get_run_logger().info("inside %s", ctx.task_run_name)
    return {
        "id": ctx.task_run_id, "name": ctx.task_run_name, "tags": set(ctx.tags),
        "parameters": dict(ctx.parameters), "attempt": ctx.attempt, "pid": os.getpid(),
    }


@task(retries=2)
def flaky(until: int) -> int:
    ctx = get_run_context()
    assert ctx is not None
    if ctx.attempt < until:
        raise Boom(f"attempt {ctx.attempt}")
    return ctx.attempt


@task
def exit_hard(code: int) -> None:
    os._exit(code)


@task
def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def report_pid_and_wait(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(30)


@task
def wait_for_cancel(marker: str, limit: float = 20.0) -> str:
    """Loops until the run's cancel flag turns on, then leaves a marker file."""
    ctx = get_run_context()
    assert ctx is not None
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ctx.cancel_requested():
            Path(marker).write_text("seen")
            return "stopped"
        time.sleep(0.01)
    return "never cancelled"


@task(timeout_seconds=0.5)
def slow_with_timeout(marker: str) -> str:
    return wait_for_cancel.fn(marker)


@task
def give_lock() -> Any:
    return threading.Lock()


@task
def exit_system() -> None:
    raise SystemExit(3)


# ----------------------------------------------------------------------------- basics


def test_sync_and_async_bodies_run_in_other_processes() -> None:
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        squares = runner.map(where, {"x": range(5)})
        plus = runner.submit(where_async, {"x": 41})
        values = squares.result()
        value, pid = plus.result()
    assert [v for v, _ in values] == [0, 1, 4, 9, 16]
    assert all(p != PARENT_PID for _, p in values)
    assert value == 42 and pid != PARENT_PID


@pytest.mark.anyio
async def test_async_with_on_both_loops() -> None:
    async with ProcessPoolTaskRunner(max_workers=2) as runner:
        sync_future = runner.submit(where, {"x": 3})
        async_future = runner.submit(where_async, {"x": 1})
        assert (await sync_future)[0] == 9
        assert (await async_future)[0] == 2
        assert await runner.map(add, {"x": [1, 2], "y": 10}).result_async() == [11, 12]


def test_max_workers_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKRUN_PROCESS_POOL_MAX_WORKERS", raising=False)
    assert ProcessPoolTaskRunner().max_workers == (os.cpu_count() or 1)
    monkeypatch.setenv("TASKRUN_PROCESS_POOL_MAX_WORKERS", "3")
    assert ProcessPoolTaskRunner().max_workers == 3
    monkeypatch.setenv("TASKRUN_PROCESS_POOL_MAX_WORKERS", "zero")
    with pytest.raises(ValueError, match="TASKRUN_PROCESS_POOL_MAX_WORKERS"):
        ProcessPoolTaskRunner()
    with pytest.raises(ValueError, match="max_workers"):
        ProcessPoolTaskRunner(max_workers=0)


def test_identity_and_configuration() -> None:
    runner = ProcessPoolTaskRunner(max_workers=3)
    assert runner.name == "processpool"
    assert runner.duplicate() == runner
    assert runner.duplicate() is not runner
    assert runner != ProcessPoolTaskRunner(max_workers=2)
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(add, {"x": 1})


def test_works_as_a_flow_runner() -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def pipeline(n: int) -> list[int]:
        doubled = add.map(range(n), y=range(n))
        return [add.submit(doubled[0], y=100).result(), *doubled.result()]

    assert pipeline(3) == [100, 0, 2, 4]


# ----------------------------------------------------------------------------- functions crossing


def test_function_defined_in_a_test_goes_by_value() -> None:
    offset = 7

    @task
    def local(x: int) -> tuple[int, int]:  # a closure: not importable by name
        return x + offset, os.getpid()

    with ProcessPoolTaskRunner(max_workers=1) as runner:
        value, pid = runner.submit(local, {"x": 1}).result()
        changed = runner.submit(local.with_options(name="other"), {"x": 2}).result()
    assert value == 8 and pid != PARENT_PID
    assert changed[0] == 9


MAIN_SCRIPT = """
import os
from taskrun import ProcessPoolTaskRunner, task

@task
def pid_plus(x):
    return os.getpid(), x + 1

if __name__ == "__main__":
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        results = runner.map(pid_plus, {"x": [1, 2, 3]}).result()
    assert all(pid != os.getpid() for pid, _ in results), results
    print("values", [v for _, v in results])
"""


@pytest.mark.timeout(90)
def test_tasks_from_main_script_and_from_python_c(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    as_script = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                               timeout=60, env=env, cwd=tmp_path)
    assert as_script.returncode == 0, as_script.stderr
    assert "values [2, 3, 4]" in as_script.stdout
    # `python -c` (like a notebook): __main__ has no file the workers could import.
    as_code = subprocess.run([sys.executable, "-c", MAIN_SCRIPT.replace('if __name__ == "__main__":',
                                                                        "if True:")],
                             capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert as_code.returncode == 0, as_code.stderr
    assert "values [2, 3, 4]" in as_code.stdout


# ----------------------------------------------------------------------------- inputs


def test_futures_are_resolved_in_the_parent() -> None:
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        first = runner.submit(add, {"x": 1, "y": 2})
        nested = runner.submit(describe, {}, wait_for=[first])
        second = runner.submit(add, {"x": first, "y": 10})
        in_list = runner.map(add, {"x": [first, second], "y": 1})
        assert second.result() == 13
        assert in_list.result() == [4, 14]
        assert nested.result()["attempt"] == 1


def test_upstream_failure_rule() -> None:
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        bad = runner.submit(fail, {"message": "upstream broke"})
        blocked = runner.submit(add, {"x": bad, "y": 1})
        waiting = runner.submit(add, {"x": 1}, wait_for=[bad])
        allowed = runner.submit(describe, {}, wait_for=[allow_failure(bad)])
        blocked.wait()
        waiting.wait()
        assert blocked.state.name == "NotReady"
        assert waiting.state.name == "NotReady"
        with pytest.raises(UpstreamTaskError, match="upstream broke"):
            blocked.result()
        assert allowed.result()["attempt"] == 1


def test_unpicklable_parameter_fails_only_that_run() -> None:
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        ok = runner.submit(add, {"x": 1})
        bad = runner.submit(add, {"x": 1, "y": threading.Lock()})
        bad.wait()
        assert bad.state.is_failed()
        with pytest.raises(TypeError, match="parameter 'y' of task 'add' cannot be pickled"):
            bad.result()
        assert ok.result() == 1
        assert runner.submit(add, {"x": 2}).result() == 2


def test_unpicklable_result_fails_the_run() -> None:
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(give_lock, {})
        future.wait()
        with pytest.raises(TypeError, match=r"result of task run .* cannot be pickled"):
            future.result()
        assert runner.submit(add, {"x": 5}).result() == 5


# ----------------------------------------------------------------------------- context and engine


def test_run_context_and_logger_inside_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskrun")
    with ProcessPoolTaskRunner(max_workers=1) as runner, tags("nightly"):
        future = runner.submit(describe.with_options(tags=["etl"]), {})
        seen = future.result()
    assert seen["id"] == future.task_run_id
    assert seen["tags"] == {"etl", "nightly"}
    assert seen["attempt"] == 1 and seen["pid"] != PARENT_PID
    messages = [r.getMessage() for r in caplog.records if r.name == "taskrun.task_runs"]
    assert any(f"inside {seen['name']}" in m for m in messages), messages
    record = next(r for r in caplog.records if "inside" in r.getMessage())
    assert record.task_run_id == str(future.task_run_id)  # type: ignore[attr-defined]
    assert record.process != PARENT_PID


@task(log_prints=True)
def talk(word: str) -> None:
    print("said", word)


def test_log_prints_reach_the_parent_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskrun")
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        runner.submit(talk, {"word": "hello"}).result()
    said = [r for r in caplog.records if r.getMessage().endswith("said hello")]
    assert said and said[0].process != PARENT_PID


def test_retries_run_again_in_a_worker_and_hooks_run_in_the_parent() -> None:
    seen: list[tuple[str, int]] = []

    def on_completion(task: Any, run: Any, state: Any) -> None:
        seen.append((state.name, os.getpid()))

    with ProcessPoolTaskRunner(max_workers=2) as runner:
        third = runner.submit(flaky.with_options(on_completion=[on_completion]), {"until": 3})
        never = runner.submit(flaky, {"until": 9})
        assert third.result() == 3
        never.wait()
    assert seen == [("Completed", PARENT_PID)]
    with pytest.raises(Boom, match="attempt 3"):
        never.result()


def test_timeout_finishes_promptly_and_sets_the_cancel_flag(tmp_path: Path) -> None:
    marker = tmp_path / "flag"
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        started = time.monotonic()
        future = runner.submit(slow_with_timeout, {"marker": str(marker)})
        future.wait()
        assert time.monotonic() - started < 5
        assert future.state.name == "TimedOut"
        with pytest.raises(TaskRunTimeout):
            future.result()
        # The body saw cancel_requested() and left its marker; the worker is free again.
        assert runner.submit(add, {"x": 1}).result() == 1
    assert marker.read_text() == "seen"


def test_exceptions_keep_type_message_and_remote_traceback() -> None:
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        failed = runner.submit(fail, {"message": "bad input"})
        odd = runner.submit(fail_unpicklable, {})
        failed.wait()
        odd.wait()
    with pytest.raises(Boom, match=r"^bad input$") as caught:
        failed.result()
    cause = caught.value.__cause__
    assert type(cause).__name__ == "RemoteTraceback"
    assert "in fail" in str(cause) and "Boom: bad input" in str(cause)
    error = odd.state.result(raise_on_failure=False)
    assert type(error).__name__ == "RemoteError"
    assert "Unpicklable" in str(error) and "1-2" in str(error)


def test_system_exit_in_a_body_crashes_only_that_run() -> None:
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(exit_system, {})
        future.wait()
        assert future.state.is_crashed()
        assert runner.submit(add, {"x": 4}).result() == 4


# ----------------------------------------------------------------------------- dying workers


@pytest.mark.parametrize("killer", [exit_hard.with_options(name="exit_hard"), kill_self])
def test_a_dying_worker_crashes_only_its_run(killer: Any) -> None:
    params = {"code": 7} if killer.name == "exit_hard" else {}
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        others = runner.map(nap, {"seconds": [0.3] * 6})
        doomed = runner.submit(killer, params)
        doomed.wait()
        assert doomed.state.is_crashed()
        assert "worker process running it died" in (doomed.state.message or "")
        with pytest.raises(CrashedRun):
            doomed.result()
        assert others.result() == [0.3] * 6
        # The pool replaced the dead process.
        assert runner.submit(where, {"x": 2}).result()[0] == 4


def test_a_worker_killed_from_outside(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        victim = runner.submit(report_pid_and_wait, {"path": str(pid_file)})
        survivor = runner.submit(nap, {"seconds": 1.0})
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the victim never started"
            time.sleep(0.02)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        victim.wait()
        assert victim.state.is_crashed()
        assert "SIGKILL" in (victim.state.message or "")
        assert survivor.result() == 1.0


# ----------------------------------------------------------------------------- cancellation


def test_cancel_all_cancels_queued_and_flags_running_runs(tmp_path: Path) -> None:
    marker = tmp_path / "flag"
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        running = runner.submit(wait_for_cancel, {"marker": str(marker)})
        queued = runner.map(add, {"x": range(3)})
        deadline = time.monotonic() + 20
        while not running.state.is_running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.5)  # let the body get going in its worker
        runner.cancel_all()
        running.wait()
        queued.wait()
        assert running.state.is_cancelled()
        assert all(f.state.is_cancelled() for f in queued)
        with pytest.raises(CancelledRun):
            queued[0].result()
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline, "the running body never saw its cancel flag"
            time.sleep(0.02)


@pytest.mark.anyio
async def test_leaving_with_an_error_cancels_what_is_left() -> None:
    with pytest.raises(KeyError):
        async with ProcessPoolTaskRunner(max_workers=1) as runner:
            slow = runner.submit(nap, {"seconds": 20})
            queued = runner.submit(add, {"x": 1})
            await anyio.sleep(0.2)
            raise KeyError("leave")
    assert slow.state.is_cancelled()
    assert queued.state.is_cancelled()


def test_source_of_a_remote_error_names_the_function() -> None:
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(fail, {})
        future.wait()
    error = future.state.result(raise_on_failure=False)
    assert isinstance(error, Boom)
    assert textwrap.dedent('raise Boom(message)') in str(error.__cause__)
