from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

import taskrun.limits as limits
from taskrun._limits import LimitTimeout, UnknownLimitError, concurrency
from taskrun._limits._local import statistics

from .test_concurrency_sync import Gauge, assert_idle

pytestmark = pytest.mark.anyio


async def wait_until_async(cond: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await anyio.sleep(0.001)


@pytest.mark.parametrize("limit", [1, 3])
async def test_tasks_never_exceed_the_limit(limit: int) -> None:
    limits.set("db", limit)
    gauge = Gauge()

    async def work() -> None:
        for _ in range(10):
            async with concurrency("db"):
                gauge.enter()
                await anyio.sleep(0.001)
                gauge.leave()

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(work)
    assert gauge.high == limit
    assert_idle("db")


async def test_timeout_names_the_limit() -> None:
    limits.set("a", 1)
    limits.set("b", 1)
    async with concurrency("b"):
        with pytest.raises(TimeoutError, match="'b'") as info:
            async with concurrency(["a", "b"], timeout_seconds=0.05):
                pass
        assert isinstance(info.value, LimitTimeout)
        assert statistics("a").used == 0  # type: ignore[union-attr]
    assert_idle("b")


async def test_cancelled_waiters_release_everything() -> None:
    limits.set("a", 2)
    limits.set("b", 1)
    async with concurrency("b"):  # exhaust "b"
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(_enter_forever, ["a", "b"])  # each may get "a" first, then waits on "b"
            await wait_until_async(lambda: statistics("b").waiting >= 2)  # type: ignore[union-attr]
            assert statistics("a").used == 2  # type: ignore[union-attr]  # two hold "a" while waiting
            tg.cancel_scope.cancel()
        assert statistics("a").used == 0  # type: ignore[union-attr]
        assert statistics("a").waiting == 0 and statistics("b").waiting == 0  # type: ignore[union-attr]
    with anyio.fail_after(1):
        async with concurrency(["a", "b"]):  # a fresh acquire gets through
            pass
    assert_idle("a")
    assert_idle("b")


async def _enter_forever(names: list[str]) -> None:
    async with concurrency(names):
        await anyio.sleep_forever()


async def test_cancel_scope_timeout_around_a_waiter() -> None:
    limits.set("db", 1)
    async with concurrency("db"):
        with anyio.move_on_after(0.05) as scope:
            async with concurrency("db"):
                pytest.fail("got a slot that was held")
        assert scope.cancelled_caught
    assert_idle("db")


async def test_strict_and_no_limit() -> None:
    async with concurrency("nobody"):
        pass
    with pytest.raises(UnknownLimitError):
        async with concurrency("nobody", strict=True):
            pass


def test_mixed_threads_and_loops_share_one_limit() -> None:
    limits.set("db", 2)
    gauge = Gauge()
    errors: list[BaseException] = []

    async def async_work() -> None:
        for _ in range(15):
            async with concurrency("db"):
                gauge.enter()
                await anyio.sleep(0.001)
                gauge.leave()

    async def loop_main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(async_work)

    def sync_work() -> None:
        for _ in range(15):
            with concurrency("db"):
                gauge.enter()
                time.sleep(0.001)
                gauge.leave()

    def guard(fn: object, *args: object) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=guard, args=(anyio.run, loop_main)),
        threading.Thread(target=guard, args=(lambda: anyio.run(loop_main, backend="trio"),)),
        threading.Thread(target=guard, args=(asyncio.run, loop_main())),
        *[threading.Thread(target=guard, args=(sync_work,)) for _ in range(3)],
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert gauge.high == 2
    assert_idle("db")
