"""A hook's exception never changes how the run ended, nor stops later hooks (issue 14)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.states import State

RAISED = [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError(), ValueError("plain")]
seen: list[str] = []


def _raiser(error: BaseException) -> Any:
    def hook(task: Any, run: Any, state: State[Any]) -> None:
        seen.append(f"bad:{state.name}")
        raise error

    return hook


def _async_raiser(error: BaseException) -> Any:
    async def hook(task: Any, run: Any, state: State[Any]) -> None:
        seen.append(f"abad:{state.name}")
        raise error

    return hook


def good(task: Any, run: Any, state: State[Any]) -> None:
    seen.append(f"good:{state.name}")


def ok() -> int:
    return 1


def fails() -> int:
    raise ValueError("body")


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("make", [_raiser, _async_raiser], ids=["sync-hook", "async-hook"])
def test_raising_hooks_leave_the_state_and_later_hooks_alone(make: Any, error: BaseException) -> None:
    seen.clear()
    hooks = [make(error), good]
    completes = task(on_running=hooks, on_completion=hooks)(ok)
    failing = task(on_failure=hooks)(fails)
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        a = runner.submit(completes, {})
        b = runner.submit(failing, {})
        a.wait(timeout=10)
        b.wait(timeout=10)
        assert a.state.is_completed(), a.state
        assert b.state.is_failed() and b.state.name == "Failed", b.state
    assert seen.count("good:Running") == 1
    assert seen.count("good:Completed") == 1
    assert seen.count("good:Failed") == 1


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
def test_direct_call_hooks_are_contained(error: BaseException) -> None:
    seen.clear()
    completes = task(on_completion=[_raiser(error), good])(ok)
    assert completes() == 1
    assert seen == ["bad:Completed", "good:Completed"]


@pytest.mark.anyio
@pytest.mark.parametrize("error", [SystemExit(3), asyncio.CancelledError()], ids=lambda e: type(e).__name__)
async def test_hooks_under_async_with(error: BaseException) -> None:
    seen.clear()

    async def body() -> int:
        return 1

    completes = task(on_completion=[_async_raiser(error), _raiser(error), good])(body)
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(completes, {})
        await future.wait_async(timeout=10)
        assert future.state.is_completed(), future.state
    assert seen[-1] == "good:Completed"


def test_raising_retry_condition_does_not_crash_the_run() -> None:
    def condition(task: Any, run: Any, state: State[Any]) -> bool:
        raise SystemExit(1)

    flaky = task(retries=2, retry_condition_fn=condition)(fails)
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(flaky, {})
        future.wait(timeout=10)
        assert future.state.name == "Failed"
        assert future.state.result(raise_on_failure=False).args == ("body",)
