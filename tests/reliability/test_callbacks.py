"""A done callback that raises anything never strands waiters, callbacks or dependants (issue 14)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.futures import TaskFuture

from ._helpers import within

RAISED = [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError(), ValueError("plain")]


@task
def value(x: int) -> int:
    return x


@task
async def avalue(x: int) -> int:
    return x


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("body", [value, avalue], ids=["sync", "async"])
def test_raising_callback_serves_everyone_else(body: Any, error: BaseException) -> None:
    gate = threading.Event()

    @task
    def held() -> int:
        gate.wait(10)
        return 1

    later: list[int] = []

    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=4) as runner:
            upstream = runner.submit(held, {})

            def bad(_: TaskFuture[Any]) -> None:
                raise error

            upstream.add_done_callback(bad)
            upstream.add_done_callback(lambda f: later.append(f.result()))
            dependant = runner.submit(body, {"x": 2}, wait_for=[upstream])
            waiter_result: list[int] = []
            waiter = threading.Thread(target=lambda: waiter_result.append(upstream.result(timeout=10)))
            waiter.start()
            gate.set()
            waiter.join(10)
            assert waiter_result == [1], "a thread blocked in result() was never woken"
            assert dependant.result(timeout=10) == 2
            assert later == [1]

    within(30, scenario, "a runner whose done callback raised")


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
def test_callback_added_to_a_finished_future_is_contained(error: BaseException) -> None:
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        future = runner.submit(value, {"x": 1})
        future.wait(timeout=10)

        def bad(_: TaskFuture[Any]) -> None:
            raise error

        future.add_done_callback(bad)  # logged, not raised (the API's rule)
        assert future.result() == 1


@pytest.mark.anyio
async def test_raising_callback_under_async_with() -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        upstream = runner.submit(avalue, {"x": 1})

        def bad(_: TaskFuture[Any]) -> None:
            raise SystemExit(1)

        upstream.add_done_callback(bad)
        dependant = runner.submit(avalue, {"x": 2}, wait_for=[upstream])
        assert await dependant.result_async(timeout=10) == 2
        assert await upstream.result_async(timeout=10) == 1
