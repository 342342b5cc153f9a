"""Tests of ``taskrun.flows``: sync and async flows, their runner, return values,
states, failures, timeouts and nesting."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import Flow, ThreadPoolTaskRunner, flow, task
from taskrun.exceptions import TaskRunTimeout
from taskrun.states import State

pytestmark = pytest.mark.timeout(30)


@task
def double(x: int) -> int:
    return 2 * x


@task
async def adouble(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * x


@task
def fails(msg: str = "task failed") -> None:
    raise ValueError(msg)


class Peak:
    """Records how many runs were inside ``track`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def track(self, seconds: float = 0.05) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(seconds)
        with self._lock:
            self.current -= 1


# --------------------------------------------------------------------------- basics


def test_sync_flow_returns_its_value() -> None:
    @flow
    def pipeline(n: int) -> int:
        return sum(double.map(range(n)).result())

    assert isinstance(pipeline, Flow)
    assert pipeline(4) == 12


def test_flow_with_options_decorator() -> None:
    @flow(name="named-flow")
    def pipeline() -> int:
        return double.submit(2).result()

    assert pipeline.name == "named-flow"
    assert pipeline() == 4


@pytest.mark.anyio
async def test_async_flow_returns_its_value(anyio_backend: str) -> None:
    @flow
    async def pipeline(n: int) -> int:
        values = await adouble.map(range(n)).result_async()
        more = await double.submit(10)
        return sum(values) + more

    assert await pipeline(3) == 6 + 20


def test_default_runner_is_a_thread_pool() -> None:
    @flow
    def pipeline() -> None: ...

    assert isinstance(pipeline.task_runner, ThreadPoolTaskRunner)


def test_flow_can_be_called_repeatedly() -> None:
    @flow
    def pipeline(x: int) -> int:
        return double.submit(x).result()

    assert [pipeline(1), pipeline(2), pipeline(3)] == [2, 4, 6]


def test_flow_with_bad_arguments_raises_type_error() -> None:
    @flow
    def pipeline(x: int) -> int:
        return x

    with pytest.raises(TypeError):
        pipeline(1, 2)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- task_runner option


def test_given_task_runner_is_duplicated_not_entered() -> None:
    given = ThreadPoolTaskRunner(max_workers=1)
    peak = Peak()

    @task
    def tracked(i: int) -> None:
        peak.track()

    @flow(task_runner=given)
    def pipeline() -> None:
        tracked.map(range(4)).wait()

    pipeline()
    pipeline()  # the given instance was never entered, so it is not closed either
    assert peak.peak == 1  # the duplicate has the given configuration
    # the given instance itself is still unstarted: it can be entered once
    with given:
        assert double.submit(1).result() == 2


def test_submit_inside_a_flow_uses_the_flows_runner() -> None:
    peak = Peak()

    @task
    def tracked(i: int) -> None:
        peak.track()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def narrow() -> None:
        tracked.map(range(4)).wait()

    with ThreadPoolTaskRunner(max_workers=8):
        narrow()
        assert peak.peak == 1
        # after the flow, the enclosing runner is current again
        peak.peak = 0
        barrier = threading.Barrier(3, timeout=10)

        @task
        def meet(i: int) -> None:
            barrier.wait()

        meet.map(range(3)).result()


@pytest.mark.anyio
async def test_async_flow_uses_its_runner(anyio_backend: str) -> None:
    peak = Peak()

    @task
    def tracked(i: int) -> None:
        peak.track()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    async def narrow() -> None:
        await tracked.map(range(3)).wait_async()

    await narrow()
    assert peak.peak == 1


# --------------------------------------------------------------------------- return values


def test_futures_in_the_return_value_are_resolved() -> None:
    @flow
    def pipeline() -> Any:
        a, b = double.submit(1), double.submit(2)
        return {"a": a, "nested": [b, (double.submit(3),)], "map": double.map([4, 5]), "plain": 7}

    assert pipeline() == {"a": 2, "nested": [4, (6,)], "map": [8, 10], "plain": 7}


@pytest.mark.anyio
async def test_futures_in_an_async_flow_return_value_are_resolved(anyio_backend: str) -> None:
    @flow
    async def pipeline() -> Any:
        return [adouble.submit(1), {"k": double.submit(2)}]

    assert await pipeline() == [2, {"k": 4}]


def test_return_state_gives_the_flows_state() -> None:
    @flow
    def ok() -> Any:
        return double.submit(21)

    @flow
    def bad() -> None:
        fails.submit("in flow").result()

    state = ok(return_state=True)
    assert isinstance(state, State)
    assert state.is_completed()
    assert state.result() == 42

    failed = bad(return_state=True)
    assert isinstance(failed, State)
    assert failed.is_failed()
    exc = failed.result(raise_on_failure=False)
    assert isinstance(exc, ValueError) and str(exc) == "in flow"


@pytest.mark.anyio
async def test_async_return_state(anyio_backend: str) -> None:
    @flow
    async def ok() -> int:
        return await adouble.submit(5)

    state = await ok(return_state=True)
    assert isinstance(state, State)
    assert state.result() == 10


# --------------------------------------------------------------------------- failures


def test_failing_flow_raises_the_tasks_exception() -> None:
    @flow
    def bad() -> None:
        fails.submit("boom").result()

    with pytest.raises(ValueError, match="boom"):
        bad()


def test_flow_returning_a_failed_future_raises_its_exception() -> None:
    @flow
    def bad() -> Any:
        return [fails.submit("returned failure")]

    with pytest.raises(ValueError, match="returned failure"):
        bad()


def test_flow_body_exception_is_raised() -> None:
    @flow
    def bad() -> None:
        raise KeyError("body")

    with pytest.raises(KeyError):
        bad()


@pytest.mark.anyio
async def test_failing_async_flow_raises(anyio_backend: str) -> None:
    @flow
    async def bad() -> None:
        await fails.submit("async boom")

    with pytest.raises(ValueError, match="async boom"):
        await bad()


# --------------------------------------------------------------------------- timeouts


def test_sync_flow_timeout() -> None:
    body_done = threading.Event()

    @flow(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(0.5)
        body_done.set()

    with pytest.raises(TaskRunTimeout) as info:
        slow()
    assert isinstance(info.value, TimeoutError)
    assert not body_done.is_set()
    state = slow(return_state=True)
    assert state.is_failed()
    assert state.name == "TimedOut"
    assert body_done.wait(5)


@pytest.mark.anyio
async def test_async_flow_timeout(anyio_backend: str) -> None:
    reached: list[str] = []

    @flow(timeout_seconds=0.1)
    async def slow() -> None:
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    with pytest.raises(TaskRunTimeout):
        await slow()
    assert reached == ["finally"]
    state = await slow(return_state=True)
    assert state.is_failed()
    assert state.name == "TimedOut"


def test_flow_timeout_not_reached() -> None:
    @flow(timeout_seconds=10)
    def quick() -> int:
        return double.submit(3).result()

    assert quick() == 6


def test_flow_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        flow(timeout_seconds=0)(lambda: None)


# --------------------------------------------------------------------------- waiting for runs


def test_every_submitted_run_finishes_before_the_flow_returns() -> None:
    finished: list[int] = []

    @task
    def slow_append(i: int) -> None:
        time.sleep(0.05)
        finished.append(i)

    @flow
    def fire_and_forget() -> str:
        for i in range(5):
            slow_append.submit(i)
        slow_append.map([10, 11])
        return "returned"

    assert fire_and_forget() == "returned"
    assert sorted(finished) == [0, 1, 2, 3, 4, 10, 11]


@pytest.mark.anyio
async def test_every_submitted_run_finishes_before_an_async_flow_returns(anyio_backend: str) -> None:
    finished: list[int] = []

    @task
    async def slow_append(i: int) -> None:
        await anyio.sleep(0.05)
        finished.append(i)

    @task
    def sync_append(i: int) -> None:
        time.sleep(0.05)
        finished.append(i)

    @flow
    async def fire_and_forget() -> None:
        for i in range(3):
            slow_append.submit(i)
        sync_append.submit(3)

    await fire_and_forget()
    assert sorted(finished) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- nesting


def test_nested_flows() -> None:
    @flow
    def inner(x: int) -> int:
        return double.submit(x).result()

    @flow
    def outer(n: int) -> list[int]:
        here = double.submit(100)
        return [inner(i) for i in range(n)] + [here.result()]

    assert outer(3) == [0, 2, 4, 200]


@pytest.mark.anyio
async def test_nested_async_flows(anyio_backend: str) -> None:
    @flow
    async def inner(x: int) -> int:
        return await adouble.submit(x)

    @flow
    async def outer() -> list[int]:
        first = await inner(1)
        f = adouble.submit(10)
        second = await inner(2)
        return [first, second, await f]

    assert await outer() == [2, 4, 20]


def test_flow_called_from_inside_a_task() -> None:
    @flow
    def inner(x: int) -> int:
        return double.submit(x).result()

    @task
    def uses_flow(x: int) -> int:
        return inner(x) + 1

    @flow
    def outer() -> int:
        return uses_flow.submit(5).result()

    assert outer() == 11
