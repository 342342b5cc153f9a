"""Bad input is a clear error at the call site, naming the argument and the item (issue 14)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from taskrun import (
    FutureList,
    ThreadPoolTaskRunner,
    as_completed,
    as_completed_async,
    flow,
    task,
    wait,
    wait_async,
)


@task
def one() -> int:
    return 1


@task
def echo(x: int) -> int:
    return x


# ------------------------------------------------------------------ non-futures


@pytest.mark.parametrize("call", [
    lambda: wait([1]),
    lambda: list(as_completed([1])),
    lambda: FutureList([1]).result(),  # type: ignore[list-item]
    lambda: FutureList([1]).wait(),  # type: ignore[list-item]
], ids=["wait", "as_completed", "FutureList.result", "FutureList.wait"])
def test_non_future_items_are_a_type_error_naming_the_item(call: Any) -> None:
    with pytest.raises(TypeError, match=r"1.*int|int.*1"):
        call()


def test_as_completed_of_a_non_iterable_names_the_argument() -> None:
    with pytest.raises(TypeError, match="futures"):
        list(as_completed(5))  # type: ignore[arg-type]


def test_wait_of_a_non_iterable_names_the_argument() -> None:
    with pytest.raises(TypeError, match="futures"):
        wait(5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_twins_reject_non_futures() -> None:
    with pytest.raises(TypeError, match="int"):
        await wait_async([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="int"):
        async for _ in as_completed_async([1]):  # type: ignore[list-item]
            pass
    with pytest.raises(TypeError, match="int"):
        await FutureList([1]).result_async()  # type: ignore[list-item]


def test_wait_for_not_iterable_is_a_type_error_naming_wait_for() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        with pytest.raises(TypeError, match="wait_for"):
            one.submit(wait_for=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="wait_for"):
            runner.submit(one, {}, wait_for=5)  # type: ignore[arg-type]


def test_wait_for_items_must_be_futures() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        with pytest.raises(TypeError, match=r"wait_for.*\b1\b.*int"):
            one.submit(wait_for=[1, None, "x"])  # type: ignore[list-item]
        with pytest.raises(TypeError, match=r"wait_for.*NoneType"):
            runner.map(echo, {"x": [1, 2]}, wait_for=[None])  # type: ignore[list-item]
        # Nothing was half-submitted: the runner still works and leaves cleanly.
        assert one.submit().result(timeout=10) == 1


# ------------------------------------------------------------------ task options


BAD_OPTIONS: list[tuple[str, Any]] = [
    ("name", 5),
    ("description", 5),
    ("tags", 5),
    ("task_run_name", 5),
    ("retries", "2"),
    ("retries", 1.5),
    ("retry_delay_seconds", "1"),
    ("retry_delay_seconds", [1, "x"]),
    ("retry_jitter_factor", "0.5"),
    ("retry_condition_fn", 5),
    ("timeout_seconds", "5"),
    ("timeout_seconds", [5]),
    ("on_completion", 5),
    ("on_failure", 5),
    ("on_running", 5),
    ("on_failure", [5]),
    ("log_prints", "yes"),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=[f"{o}={v!r}" for o, v in BAD_OPTIONS])
def test_wrong_option_types_are_rejected_when_the_task_is_made(option: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        task(**{option: value})(lambda: None)


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS[:6], ids=[f"{o}={v!r}" for o, v in BAD_OPTIONS[:6]])
def test_with_options_checks_types_too(option: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        one.with_options(**{option: value})


def test_flow_options_are_checked() -> None:
    with pytest.raises((TypeError, ValueError), match="timeout_seconds"):
        flow(timeout_seconds="5")(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task_runner"):
        flow(task_runner=5)(lambda: None)  # type: ignore[arg-type]


# ------------------------------------------------------------------ infinite timeouts

HUGE = [math.inf, 1e10]


@pytest.mark.parametrize("timeout", HUGE)
def test_huge_timeouts_wait_for_ever_on_futures_and_lists(timeout: float) -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(echo, {"x": 3})
        assert future.result(timeout=timeout) == 3
        future.wait(timeout=timeout)
        futures = runner.map(echo, {"x": [1, 2]})
        assert futures.result(timeout=timeout) == [1, 2]
        futures.wait(timeout=timeout)
        done, not_done = wait(futures, timeout=timeout)
        assert len(done) == 2 and not not_done
        assert {f.result() for f in as_completed(futures, timeout=timeout)} == {1, 2}


@pytest.mark.parametrize("timeout", HUGE)
def test_huge_timeouts_on_unfinished_futures_do_not_overflow(timeout: float) -> None:
    import threading

    gate = threading.Event()

    @task
    def held() -> int:
        gate.wait(10)
        return 7

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(held, {})
        futures = runner.map(echo, {"x": [1, 2]}, wait_for=[future])
        timer = threading.Timer(0.2, gate.set)
        timer.start()
        try:
            assert future.result(timeout=timeout) == 7
            assert futures.result(timeout=timeout) == [1, 2]
        finally:
            gate.set()
            timer.join()
        held2 = runner.submit(held, {})
        assert [f.result() for f in as_completed([held2], timeout=timeout)] == [7]
        done, _ = wait([runner.submit(held, {})], timeout=timeout)
        assert len(done) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", HUGE)
async def test_huge_timeouts_in_async_waits(timeout: float) -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(echo, {"x": 3})
        assert await future.result_async(timeout=timeout) == 3
        futures = runner.map(echo, {"x": [1, 2]})
        assert await futures.result_async(timeout=timeout) == [1, 2]
        done, _ = await wait_async(futures, timeout=timeout)
        assert len(done) == 2
        assert {f.result() async for f in as_completed_async(futures, timeout=timeout)} == {1, 2}


@pytest.mark.parametrize("timeout", HUGE)
def test_huge_task_and_flow_timeouts(timeout: float) -> None:
    slow = echo.with_options(timeout_seconds=timeout)
    assert slow(4) == 4  # a direct call with a timeout waits on a helper thread
    with ThreadPoolTaskRunner(max_workers=2):
        assert slow.submit(5).result(timeout=10) == 5

    @flow(timeout_seconds=timeout)
    def pipeline() -> int:
        return echo.submit(6).result()  # type: ignore[no-any-return]

    assert pipeline() == 6


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", HUGE)
async def test_huge_async_task_and_flow_timeouts(timeout: float) -> None:
    @task(timeout_seconds=timeout)
    async def aecho(x: int) -> int:
        return x

    assert await aecho(1) == 1
    async with ThreadPoolTaskRunner(max_workers=2):
        assert await aecho.submit(2) == 2

    @flow(timeout_seconds=timeout)
    async def pipeline() -> int:
        return await aecho(3)  # type: ignore[no-any-return]

    assert await pipeline() == 3
