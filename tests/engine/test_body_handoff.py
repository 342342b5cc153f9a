"""On asyncio the engine hands an untimed async body to the task driver: while the
body waits, no engine coroutine (``drive``) is alive for it (README, *Performance*:
bytes per pending run). After the body, the run ends as if it had been awaited
in the engine's frame: its value, its error with the body's own traceback, a
cancel, a retry, a completion hook."""

from __future__ import annotations

import gc
import traceback
import types
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun._engine._driver import drive
from taskrun.context import get_run_context
from taskrun.states import Failed, State

pytestmark = pytest.mark.anyio


def _drives_alive(of: Any) -> int:
    """Engine coroutines alive for runs of task ``of`` (other tests' garbage aside)."""
    gc.collect()
    return sum(1 for o in gc.get_objects()
               if type(o) is types.CoroutineType and o.cr_code is drive.__code__
               and o.cr_frame is not None and o.cr_frame.f_locals["run"].task is of)


started: list[int] = []


@task
async def waits(gate: anyio.Event, x: int) -> int:
    started.append(x)
    await gate.wait()
    assert get_run_context() is not None
    return x


async def test_a_waiting_body_holds_no_engine_coroutine(anyio_backend: str) -> None:
    gate = anyio.Event()
    started.clear()
    async with ThreadPoolTaskRunner(max_workers=50) as runner:
        futures = runner.map(waits, {"gate": [gate] * 20, "x": range(20)})
        while len(started) < 20:  # then every body waits on the gate
            await anyio.sleep(0.01)
        alive = _drives_alive(waits)
        gate.set()
        assert await futures.result_async() == list(range(20))
    if anyio_backend == "asyncio":
        assert alive == 0
    else:  # trio's task driver awaits the body in the engine's frame
        assert alive >= 20


def _boom_line() -> None:
    raise ValueError("boom")


@task
async def fails_after_wait() -> None:
    await anyio.lowlevel.checkpoint()
    _boom_line()


async def test_an_error_after_a_wait_fails_the_run_with_the_bodys_traceback(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(fails_after_wait, {})
        await future.wait_async()
        state = future.state
    assert state.is_failed()
    error = state.data
    assert isinstance(error, ValueError)
    names = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert names[-2:] == ["fails_after_wait", "_boom_line"]
    assert "_advance" not in names


attempts: list[int] = []


@task(retries=2, retry_delay_seconds=0)
async def flaky() -> int:
    await anyio.lowlevel.checkpoint()
    run = get_run_context()
    assert run is not None
    attempts.append(run.attempt)
    if run.attempt < 3:
        raise RuntimeError("again")
    return run.attempt


async def test_a_handed_off_body_is_retried(anyio_backend: str) -> None:
    attempts.clear()
    async with ThreadPoolTaskRunner() as runner:
        assert await runner.submit(flaky, {}).result_async() == 3
    assert attempts == [1, 2, 3]


seen: list[Any] = []


def _on_completion(task_: Any, run: Any, state: State[Any]) -> None:
    seen.append(state.result())


@task(on_completion=[_on_completion])
async def hooked() -> str:
    await anyio.lowlevel.checkpoint()
    return "done"


@task
async def returns_a_state() -> State[Any]:
    await anyio.lowlevel.checkpoint()
    return Failed(ValueError("chosen"))


async def test_completion_hooks_and_returned_states_after_a_wait(anyio_backend: str) -> None:
    seen.clear()
    async with ThreadPoolTaskRunner() as runner:
        assert await runner.submit(hooked, {}).result_async() == "done"
        future = runner.submit(returns_a_state, {})
        await future.wait_async()
        state = future.state
    assert seen == ["done"]
    assert state.is_failed()


@task
async def sleeps_long(started: anyio.Event) -> str:
    started.set()
    await anyio.sleep(30)
    return "never"


async def test_a_waiting_handed_off_body_is_cancelled(anyio_backend: str) -> None:
    started = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(sleeps_long, {"started": started})
        await started.wait()
        assert future.cancel()
        await future.wait_async()
        assert future.state.is_cancelled()
        assert await runner.submit(hooked, {}).result_async() == "done"  # the task driver goes on


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asyncio's driver tasks: trio has none
async def test_a_driver_task_cancelled_before_its_first_step_cancels_its_run(anyio_backend: str) -> None:
    import asyncio

    from taskrun._core._backend import DRIVER_TASK_NAME

    async with ThreadPoolTaskRunner(max_workers=10) as runner:
        futures = runner.map(waits, {"gate": [anyio.Event()] * 5, "x": range(5)})
        drivers = [t for t in asyncio.all_tasks() if t.get_name() == DRIVER_TASK_NAME]
        assert len(drivers) == 5  # created, not stepped yet: the runs are not begun
        for driver in drivers:
            driver.cancel()
        await futures.wait_async()
        assert all(f.state.is_cancelled() for f in futures)
        assert await runner.submit(hooked, {}).result_async() == "done"
