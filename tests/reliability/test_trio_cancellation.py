"""Cancellation rules on both loops: foreign cancel types stay in their run; a granted cancel ends
Cancelled even when the body swallows it (issue 14)."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, task

pytestmark = pytest.mark.anyio


@task
async def raises_asyncio_cancelled() -> None:
    await anyio.lowlevel.checkpoint()
    raise asyncio.CancelledError()


async def test_foreign_cancellation_does_not_leave_the_runner(anyio_backend: str) -> None:
    with anyio.fail_after(10):
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            future = runner.submit(raises_asyncio_cancelled, {})
            await future.wait_async()
            after = runner.submit(raises_asyncio_cancelled.with_options(name="again"), {})
            await after.wait_async()
    assert future.done()
    expected = "CANCELLED" if anyio_backend == "asyncio" else "CRASHED"
    assert future.state.type.name == expected, future.state


started: list[int] = []


@task
async def swallows_cancel() -> str:
    started.append(1)
    try:
        await anyio.sleep(30)
    except BaseException:
        return "swallowed"
    return "slept"


async def test_swallowed_cancel_ends_cancelled_on_both_backends() -> None:
    started.clear()
    with anyio.fail_after(10):
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            future = runner.submit(swallows_cancel, {})
            while not started:
                await anyio.sleep(0.01)
            assert future.cancel()
            await future.wait_async()
    assert future.state.is_cancelled(), future.state


def test_swallowed_cancel_with_sync_runner() -> None:
    started.clear()
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(swallows_cancel, {})
        for _ in range(1000):
            if started:
                break
            anyio.run(anyio.sleep, 0.005)
        assert future.cancel()
        future.wait(timeout=10)
    assert future.state.is_cancelled(), future.state
