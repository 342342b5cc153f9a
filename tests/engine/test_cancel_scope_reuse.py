"""An async body is awaited in the engine's frame; on trio its run's cancel
cancels the task driver's host scope, shared by the runs that task hosts one
after another. These check that a cancel stays with its run: its own hooks
still await freely, and the runs hosted after it are not cancelled."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.states import State

pytestmark = pytest.mark.anyio

hook_calls: list[str] = []


async def _awaiting_hook(task_: Any, run: Any, state: State[Any]) -> None:
    await anyio.sleep(0.01)  # a checkpoint: would raise if the cancelled scope were still around it
    hook_calls.append(state.name)


@task(on_cancellation=[_awaiting_hook])
async def sleeper(started: anyio.Event) -> str:
    started.set()
    await anyio.sleep(30)
    return "never"


@task(on_cancellation=[_awaiting_hook])
async def swallower(started: anyio.Event) -> str:
    started.set()
    try:
        await anyio.sleep(30)
    except anyio.get_cancelled_exc_class():
        pass
    return "swallowed"


@task
async def after(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return x * 2


@pytest.mark.parametrize("body", [sleeper, swallower])
async def test_a_cancelled_run_leaves_later_runs_and_its_hooks_alone(body: Any) -> None:
    hook_calls.clear()
    started = anyio.Event()
    with anyio.fail_after(20):
        async with ThreadPoolTaskRunner(max_workers=1) as runner:
            doomed = runner.submit(body, {"started": started})
            later = runner.map(after, {"x": list(range(20))})
            await started.wait()
            assert doomed.cancel()
            await doomed.wait_async()
            results = await later.result_async()
    assert doomed.state.is_cancelled(), doomed.state
    assert results == [x * 2 for x in range(20)]
    assert hook_calls == ["Cancelled"]


async def test_many_cancels_in_one_task_each_end_just_their_run() -> None:
    events = [anyio.Event() for _ in range(10)]
    with anyio.fail_after(20):
        async with ThreadPoolTaskRunner(max_workers=1) as runner:
            outcomes = []
            for event in events:
                doomed = runner.submit(sleeper, {"started": event})
                survivor = runner.submit(after, {"x": 3})
                await event.wait()
                doomed.cancel()
                outcomes.append((doomed, survivor))
            for doomed, survivor in outcomes:
                assert await survivor.result_async() == 6
                await doomed.wait_async()
                assert doomed.state.is_cancelled(), doomed.state
