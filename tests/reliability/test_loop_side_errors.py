"""An exception in the loop-side code that admits, starts or hands on a run ends
that run with the real error; its dependants are admitted and the runner exits (issue 14)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun._core._workers import Job, WorkerPool
from taskrun._engine import _admission
from taskrun._engine._dispatch_engine import DispatchEngine

from ._helpers import within


class Injected(BaseException):
    """Raised by the patched loop-side code; a BaseException, the worst case."""


@task
def victim() -> int:
    return 1


@task
async def async_victim() -> int:
    await anyio.lowlevel.checkpoint()
    return 1


@task
def plus_one(x: int) -> int:
    return x + 1


def _fail_for(monkeypatch: pytest.MonkeyPatch, method: str, names: set[str], error: BaseException) -> None:
    """Make starting (``DispatchEngine.start``) or admitting (one run's step of
    ``admit_many``) the runs of the tasks ``names`` raise ``error``."""
    owner: Any = DispatchEngine if method == "start" else _admission
    name = "start" if method == "start" else "_inputs_ready"
    real = getattr(owner, name)

    def patched(first: Any, run: Any) -> Any:
        if run.task.name in names:
            raise error
        return real(first, run)

    monkeypatch.setattr(owner, name, patched)


def _check(doomed: Any, dependant: Any, bystander: Any, text: str) -> None:
    assert doomed.state.is_crashed(), doomed.state
    assert text in (doomed.state.message or "")
    assert dependant.state.name == "NotReady", dependant.state
    assert bystander.result() == 2


@pytest.mark.parametrize("method", ["start", "admit"])
def test_an_error_starting_or_admitting_a_run_crashes_just_that_run(
        monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    _fail_for(monkeypatch, method, {"victim"}, Injected(f"injected into {method}"))

    def scenario() -> tuple[Any, Any, Any]:
        with ThreadPoolTaskRunner(max_workers=1) as runner:
            doomed = runner.submit(victim, {})
            dependant = runner.submit(plus_one, {"x": doomed})
            bystander = runner.submit(plus_one, {"x": 1})
        return doomed, dependant, bystander

    _check(*within(10, scenario, "a runner whose run could not start"), f"injected into {method}")


@pytest.mark.anyio
async def test_an_error_starting_an_async_run_crashes_just_that_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_for(monkeypatch, "start", {"async_victim"}, Injected("injected into start"))
    with anyio.fail_after(10):
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            doomed = runner.submit(async_victim, {})
            dependant = runner.submit(plus_one, {"x": doomed})
            bystander = runner.submit(plus_one, {"x": 1})
            await bystander.wait_async()
    _check(doomed, dependant, bystander, "injected into start")


def _put_fails_for(monkeypatch: pytest.MonkeyPatch, fn_name: str) -> None:
    real = WorkerPool.put

    def put(self: WorkerPool, job: Job) -> None:
        if getattr(job.fn, "__name__", "") == fn_name:
            raise RuntimeError("injected: no worker for this job")
        real(self, job)

    monkeypatch.setattr(WorkerPool, "put", put)


def test_a_job_no_worker_takes_fails_its_run_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _put_fails_for(monkeypatch, "victim")

    def scenario() -> tuple[Any, Any, Any]:
        with ThreadPoolTaskRunner(max_workers=1) as runner:
            doomed = runner.submit(victim, {})
            dependant = runner.submit(plus_one, {"x": doomed})
            bystander = runner.submit(plus_one, {"x": 1})
        return doomed, dependant, bystander

    doomed, dependant, bystander = within(10, scenario, "a runner whose job found no worker")
    assert doomed.state.is_failed(), doomed.state
    assert "injected: no worker" in (doomed.state.message or "")
    assert dependant.state.name == "NotReady"
    assert bystander.result() == 2


@pytest.mark.anyio
async def test_a_job_no_worker_takes_fails_its_run_in_a_task_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    _put_fails_for(monkeypatch, "victim")
    slow = victim.with_options(retries=0, timeout_seconds=30)  # a timeout: the body runs in a loop task
    with anyio.fail_after(10):
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            doomed = runner.submit(slow, {})
            bystander = runner.submit(plus_one, {"x": 1})
            await doomed.wait_async()
    assert doomed.state.is_failed(), doomed.state
    assert "injected: no worker" in (doomed.state.message or "")
    assert bystander.result() == 2
