"""A body's exception, however odd, is that run's ordinary failure (issue 14)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.states import State

from ._helpers import within


class RaisingStr(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for you")


class RaisingRepr(Exception):
    def __str__(self) -> str:
        raise ValueError("no text")

    def __repr__(self) -> str:
        raise ValueError("no repr either")


failures: list[str] = []


def record(task: Any, run: Any, state: State[Any]) -> None:
    failures.append(state.name)


@task(on_failure=[record])
def raise_it(kind: str) -> None:
    raise {"str": RaisingStr, "repr": RaisingRepr}[kind]()


@task(on_failure=[record])
async def araise_it(kind: str) -> None:
    raise {"str": RaisingStr, "repr": RaisingRepr}[kind]()


@pytest.mark.parametrize("kind", ["str", "repr"])
@pytest.mark.parametrize("body", [raise_it, araise_it], ids=["sync", "async"])
def test_exception_with_raising_str_is_an_ordinary_failure(body: Any, kind: str) -> None:
    failures.clear()

    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future = runner.submit(body, {"kind": kind})
            future.wait(timeout=10)
            assert future.state.is_failed(), future.state.type
            assert future.state.name == "Failed"
            assert future.state.message is not None and "Raising" in future.state.message
            with pytest.raises((RaisingStr, RaisingRepr)):
                future.result(timeout=1)

    within(20, scenario, "a run raising an exception whose __str__ raises")
    assert failures == ["Failed"]


def test_direct_call_with_raising_str_raises_the_exception() -> None:
    with pytest.raises(RaisingStr):
        raise_it("str")


@pytest.mark.anyio
async def test_async_with_runner_and_raising_str() -> None:
    failures.clear()
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(araise_it, {"kind": "str"})
        await future.wait_async(timeout=10)
        assert future.state.is_failed()
    assert failures == ["Failed"]


@task
def sync_raises_cancelled() -> None:
    raise asyncio.CancelledError()


def test_sync_body_raising_cancelled_error_ends_its_run() -> None:
    """A sync body has no loop to cancel it: a CancelledError it raises is its own crash."""
    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future = runner.submit(sync_raises_cancelled, {})
            after = runner.submit(raise_it, {"kind": "str"}, wait_for=[future])
            future.wait(timeout=10)
            after.wait(timeout=10)
            assert future.done() and after.done()
            assert future.state.type.name in ("CRASHED", "FAILED"), future.state

    within(20, scenario, "a sync body raising CancelledError")
