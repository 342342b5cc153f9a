"""The code around a runner is cancelled while runs are in flight."""

from __future__ import annotations

import anyio
import pytest

from taskrun import ThreadPoolTaskRunner, task


@task
async def sleeper(seconds: float) -> float:
    await anyio.sleep(seconds)
    return seconds


@task
def quick(x: int) -> int:
    return x


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_outer_cancel_scope_cancels_runs_and_leaves_cleanly() -> None:
    with anyio.move_on_after(0.2) as scope:
        async with ThreadPoolTaskRunner(max_workers=4) as runner:
            slow = runner.map(sleeper, {"seconds": [30] * 6})
            fast = runner.map(quick, {"x": range(10)})
            await anyio.sleep(30)
    assert scope.cancelled_caught
    assert all(f.done() for f in slow)
    assert all(f.state.is_cancelled() for f in slow)
    assert all(f.done() for f in fast)


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_runner_still_usable_after_a_cancelled_neighbour() -> None:
    with anyio.move_on_after(0.1):
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            runner.map(sleeper, {"seconds": [30] * 3})
            await anyio.sleep(30)
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        assert await runner.map(quick, {"x": range(5)}).result_async() == [0, 1, 2, 3, 4]
