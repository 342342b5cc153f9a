"""ProcessPoolTaskRunner options the seed engine's users port (initializer, initargs,
max_tasks_per_child), the missing-main-guard failure, and the pickling hints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from taskrun import ProcessPoolTaskRunner, task

pytestmark = pytest.mark.timeout(60)

_WORKER_STATE: dict[str, Any] = {}


def remember(value: str, log_path: str) -> None:
    """The initializer: runs once in each worker process."""
    _WORKER_STATE["value"] = value
    with open(log_path, "a") as log:
        log.write(f"{os.getpid()}\n")


def refuse(reason: str) -> None:
    raise ValueError(reason)


@task
def read_state(x: int) -> tuple[int, str | None, int]:
    return x, _WORKER_STATE.get("value"), os.getpid()


@task
def pid(x: int) -> tuple[int, int]:
    return x, os.getpid()


def test_initializer_runs_once_in_each_worker_with_its_initargs(tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    with ProcessPoolTaskRunner(max_workers=2, initializer=remember, initargs=("ready", str(log))) as runner:
        results = runner.map(read_state, {"x": range(6)}).result()
    assert [(x, value) for x, value, _ in results] == [(x, "ready") for x in range(6)]
    worker_pids = {p for _, _, p in results}
    assert os.getpid() not in worker_pids
    started = log.read_text().split()
    assert sorted(started) == sorted(set(started))  # once per process
    assert set(map(int, started)) >= worker_pids


def test_a_failing_initializer_fails_every_run_at_once_naming_it() -> None:
    with ProcessPoolTaskRunner(max_workers=2, initializer=refuse, initargs=("no database",)) as runner:
        first = runner.submit(pid, {"x": 1})
        with pytest.raises(RuntimeError, match=r"initializer refuse raised ValueError: no database") as exc:
            first.result(timeout=30)
        assert isinstance(exc.value.__cause__, ValueError)
        later = runner.map(pid, {"x": [2, 3]})
        later.wait(timeout=30)
    assert all(f.state.is_failed() for f in later)
    assert "initializer refuse" in str(later[0].state.message)


def test_max_tasks_per_child_recycles_workers() -> None:
    with ProcessPoolTaskRunner(max_workers=1, max_tasks_per_child=2) as runner:
        pids = [runner.submit(pid, {"x": i}).result()[1] for i in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert len(set(pids)) == 3


def test_options_are_checked_where_the_runner_is_made() -> None:
    with pytest.raises(TypeError, match="initializer must be a callable"):
        ProcessPoolTaskRunner(initializer="setup")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initargs were given without an initializer"):
        ProcessPoolTaskRunner(initargs=(1,))
    with pytest.raises(ValueError, match="max_tasks_per_child must be a whole number >= 1"):
        ProcessPoolTaskRunner(max_tasks_per_child=0)
    with pytest.raises(TypeError, match="must be picklable to reach the worker processes"):
        ProcessPoolTaskRunner(initializer=remember, initargs=(threading.Lock(), "x"))


def test_duplicate_and_equality_carry_the_options() -> None:
    runner = ProcessPoolTaskRunner(3, initializer=remember, initargs=["a", "b"], max_tasks_per_child=4)
    copy = runner.duplicate()
    assert copy is not runner and copy == runner and hash(copy) == hash(runner)
    assert (copy.initializer, copy.initargs, copy.max_tasks_per_child) == (remember, ("a", "b"), 4)
    assert runner != ProcessPoolTaskRunner(3)
    other_args = ProcessPoolTaskRunner(3, initializer=remember, initargs=("a", "c"), max_tasks_per_child=4)
    assert runner != other_args
    assert runner != ProcessPoolTaskRunner(3, initializer=remember, initargs=("a", "b"))


# ----------------------------------------------------------------------------- no main guard

_UNGUARDED = """
    from taskrun import ProcessPoolTaskRunner, flow, task

    print("script body ran", flush=True)

    @task
    def double(x: int) -> int:
        return 2 * x

    {run}
"""

_RUNS = {
    "with": """
    with ProcessPoolTaskRunner(max_workers=2) as runner:
        print(runner.map(double, {"x": [1, 2, 3]}).result())
    """,
    "flow": """
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def doubled() -> list[int]:
        return double.map([1, 2, 3]).result()

    print(doubled())
    """,
}


@pytest.mark.parametrize("how", sorted(_RUNS))
def test_a_script_without_the_main_guard_fails_once_and_says_why(tmp_path: Path, how: str) -> None:
    script = tmp_path / "unguarded.py"
    source = textwrap.dedent(_UNGUARDED).replace("{run}", textwrap.dedent(_RUNS[how]).strip())
    script.write_text(source)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr
    # One ERROR record per failed run (three runs) and the script's own exit: nothing from the workers.
    assert proc.stderr.count("Traceback") <= 4
    assert len(proc.stderr.splitlines()) < 150
    assert "internal error" not in proc.stderr
    assert "RuntimeError: the worker processes cannot start" in proc.stderr
    # The parent ran the script; each worker stopped at the runner (at most max_workers of them).
    assert 1 <= proc.stdout.count("script body ran") <= 3


def test_the_main_guard_still_works(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    source = textwrap.dedent(_UNGUARDED).replace("{run}", "if __name__ == '__main__':\n" + textwrap.indent(
        textwrap.dedent(_RUNS["with"]).strip(), "    "))
    script.write_text(source)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[2, 4, 6]" in proc.stdout.splitlines()


# ----------------------------------------------------------------------------- pickling hints

_LOCK = threading.Lock()


@task
def module_level(x: int) -> int:
    return x


def test_module_level_hint_for_a_task_defined_in_a_function() -> None:
    lock = threading.Lock()

    @task
    def local(x: int) -> bool:
        return lock.locked()

    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(local, {"x": 1})
        with pytest.raises(TypeError, match="defined inside another function") as exc:
            future.result(timeout=30)
    assert "define it at module level" in str(exc.value)
    assert "'local'" in str(exc.value)


def test_no_module_level_hint_when_an_option_is_the_cause() -> None:
    lock = threading.Lock()
    renamed = module_level.with_options(task_run_name=lambda: f"locked-{lock.locked()}")
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(renamed, {"x": 1})
        with pytest.raises(TypeError, match="its option task_run_name=") as exc:
            future.result(timeout=30)
    assert "module level" not in str(exc.value)


def test_main_script_hint_names_the_globals() -> None:
    def uses_global(x: int) -> bool:
        return _LOCK.locked()

    uses_global.__module__ = "__main__"  # as a function of the main script is seen
    uses_global.__qualname__ = "uses_global"
    with ProcessPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(task(uses_global), {"x": 1})
        with pytest.raises(TypeError, match="in the main script, so it is sent by value") as exc:
            future.result(timeout=30)
    assert "module level" not in str(exc.value)
