"""A sync task that returns a coroutine by mistake fails, saying what to do (issue 14)."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task


async def fetch() -> int:
    return 1


@task
def forgot_await() -> Any:
    return fetch()  # a coroutine, by mistake


def _check(state: Any) -> None:
    assert state.is_failed(), state
    assert "async def" in (state.message or "") and "await" in (state.message or "")


def test_runner_run_fails_and_closes_the_coroutine() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(forgot_await, {})
        future.wait(timeout=10)
        _check(future.state)
        with pytest.raises(TypeError, match="async def"):
            future.result()
    gc.collect()  # filterwarnings=error: a never-awaited coroutine would fail here


def test_direct_call_fails_too() -> None:
    with pytest.raises(TypeError, match="async def"):
        forgot_await()
    gc.collect()


@pytest.mark.anyio
async def test_under_async_with() -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(forgot_await, {})
        await future.wait_async(timeout=10)
        _check(future.state)
    gc.collect()


def test_a_sync_task_returning_other_awaitables_is_left_alone() -> None:
    @task
    def returns_a_future_like() -> Any:
        return [1]

    with ThreadPoolTaskRunner(max_workers=1):
        assert returns_a_future_like.submit().result(timeout=10) == [1]
