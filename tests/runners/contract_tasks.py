"""Tasks shared by the runner contract suite.

They live at module level in an importable module so that the process pool and
Dask workers unpickle them by reference. Everything a body reports back to the
test crosses either as its return value or through a file whose path is a
parameter, because bodies and hooks may run in another process.
"""

from __future__ import annotations

import contextvars
import os
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from taskrun import get_run_context, task

#: How long a blocking body waits for its release before giving up (a hang fails, it does not stall).
HOLD_LIMIT_SECONDS = 10.0

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("contract_request_id", default="unset")


class Boom(Exception):
    """A user exception whose type must survive the trip back from any runner."""


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def lines(path: str | Path) -> list[str]:
    """The lines appended to ``path`` so far (none if it does not exist)."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
async def add_async(x: int, y: int = 0) -> int:
    await anyio.lowlevel.checkpoint()
    return x + y


@task
def total(xs: list[Any]) -> Any:
    return sum(xs)


@task
def echo(value: Any) -> Any:
    return value


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def fail(message: str = "nope") -> None:
    raise Boom(message)


@task
def nap(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


@task
def fail_if(x: int, bad: int) -> int:
    if x == bad:
        raise Boom(f"bad item {x}")
    return x


@task
def hold(name: str, started: str, release: str) -> str:
    """Leaves ``started/name``, then waits until ``release`` exists or the run is cancelled."""
    ctx = get_run_context()
    assert ctx is not None
    Path(started, name).write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if os.path.exists(release):
            return name
        if ctx.cancel_requested():
            Path(started, name + ".cancelled").write_text("seen", encoding="utf-8")
            return "cancelled"
        time.sleep(0.005)
    return "never released"


@task
def wait_file(path: str, value: Any) -> Any:
    """Waits (bounded) for ``path`` to exist, then returns ``value``."""
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return value


@task
def touch_after(seconds: float, path: str) -> str:
    time.sleep(seconds)
    Path(path).write_text("done", encoding="utf-8")
    return path


@task(retries=2)
def flaky(counter: str, failures: int) -> int:
    """Fails ``failures`` times (counted in a file, so across processes), then returns the attempt."""
    ctx = get_run_context()
    assert ctx is not None
    _append(counter, str(ctx.attempt))
    if len(lines(counter)) <= failures:
        raise Boom(f"attempt {ctx.attempt}")
    return ctx.attempt


@task(timeout_seconds=0.2)
def too_slow_sync() -> str:
    ctx = get_run_context()
    assert ctx is not None
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while time.monotonic() < deadline and not ctx.cancel_requested():
        time.sleep(0.005)
    return "finished"


@task(timeout_seconds=0.2)
async def too_slow_async() -> str:
    await anyio.sleep(HOLD_LIMIT_SECONDS)
    return "finished"


@task(task_run_name="describe-{x}", tags=["own"])
def describe(x: int) -> dict[str, Any]:
    ctx = get_run_context()
    assert ctx is not None
    return {
        "attempt": ctx.attempt,
        "parameters": dict(ctx.parameters),
        "tags": sorted(ctx.tags),
        "task_run_name": ctx.task_run_name,
        "task_run_id": ctx.task_run_id,
        "task_name": ctx.task.name,
    }


@task
def read_request_id() -> str:
    return request_id.get()


@task
def submit_child(x: int) -> int:
    """Submits a child run to the current runner and waits for it."""
    return int(add.submit(x, 1).result(timeout=5))


@task
def call_child(x: int) -> int:
    """Calls another task directly: a child run in the same worker."""
    return int(add(x, 1))


def record_hook(task: Any, run: Any, state: Any) -> None:
    """A hook that appends ``<state name> <pid>`` to the file named by the run's ``log`` parameter."""
    _append(run.parameters["log"], f"{state.name} {os.getpid()}")


@task(on_running=[record_hook], on_completion=[record_hook], on_failure=[record_hook])
def hooked(log: str, ok: bool) -> str:
    if not ok:
        raise Boom("hooked failure")
    return "ok"


@task
def pid() -> int:
    return os.getpid()


@task
def exists(path: str) -> bool:
    return os.path.exists(path)


@task
def gate(x: int, path: str) -> int:
    """Item 0 waits (bounded) for ``path``; every other item returns at once."""
    if x == 0:
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
    return x
