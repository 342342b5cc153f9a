"""Tag limits, priorities and wait hooks through the thread pool runner (sync and async bodies)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import pytest

import taskrun
import taskrun.limits as limits
from taskrun import ThreadPoolTaskRunner, task
from taskrun._limits import _local
from taskrun.states import StateType

from ._meter import Meter


@pytest.fixture
def meter() -> Iterator[Meter]:
    yield Meter()


def _used(name: str) -> int:
    stats = _local.statistics(name)
    return 0 if stats is None else stats.used


def _waiting(name: str) -> int:
    stats = _local.statistics(name)
    return 0 if stats is None else stats.waiting


# ----------------------------------------------------------------------------- tag limits


def test_tag_limit_bounds_sync_runs_on_the_thread_pool(meter: Meter) -> None:
    limits.set("tag:db", 3)

    @task(tags=["db"])
    def query(i: int) -> int:
        meter.enter()
        time.sleep(0.02)
        meter.exit()
        return i

    with ThreadPoolTaskRunner(max_workers=8) as runner:
        assert runner.map(query, {"i": range(30)}).result() == list(range(30))
    assert meter.high == 3
    assert _used("tag:db") == 0


def test_tags_from_a_tags_block_count_too(meter: Meter) -> None:
    limits.set("tag:batch", 2)

    @task
    def work(i: int) -> int:
        meter.enter()
        time.sleep(0.02)
        meter.exit()
        return i

    with ThreadPoolTaskRunner(max_workers=6) as runner, taskrun.tags("batch"):
        assert len(runner.map(work, {"i": range(12)}).result()) == 12
    assert meter.high == 2


@pytest.mark.anyio
async def test_tag_limit_bounds_async_runs(meter: Meter) -> None:
    limits.set("tag:api", 2)

    @task(tags=["api"])
    async def call(i: int) -> int:
        meter.enter()
        await anyio.sleep(0.02)
        meter.exit()
        return i

    async with ThreadPoolTaskRunner(max_workers=8) as runner:
        assert await runner.map(call, {"i": range(16)}).result_async() == list(range(16))
    assert meter.high == 2
    assert _used("tag:api") == 0


def test_runs_with_dependencies_are_admitted_against_their_tag_limits(meter: Meter) -> None:
    limits.set("tag:db", 1)

    @task
    def source(i: int) -> int:
        time.sleep(0.01)
        return i

    @task(tags=["db"])
    def store(i: int) -> int:
        meter.enter()
        time.sleep(0.01)
        meter.exit()
        return i * 2

    with ThreadPoolTaskRunner(max_workers=6) as runner:
        assert runner.map(store, {"i": runner.map(source, {"i": range(10)})}).result() == [
            2 * i for i in range(10)
        ]
    assert meter.high == 1


def test_a_parked_run_holds_no_worker_slot() -> None:
    limits.set("tag:db", 1)
    release = threading.Event()

    @task(tags=["db"])
    def hold() -> str:
        assert release.wait(10)
        return "held"

    @task
    def free() -> str:
        return "free"

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        holder = runner.submit(hold, {})
        parked = [runner.submit(hold, {}) for _ in range(4)]
        # Four runs wait for tag:db; with max_workers=2 one slot is still free for this one.
        assert runner.submit(free, {}).result(timeout=5) == "free"
        assert not any(f.done() for f in parked)
        release.set()
        assert [f.result(timeout=5) for f in [holder, *parked]] == ["held"] * 5


def test_nested_runs_under_a_limit_of_one_with_one_worker_do_not_deadlock() -> None:
    limits.set("tag:db", 1)
    limits.set("res", 1)

    @task(tags=["db"])
    def inner(i: int) -> int:
        with taskrun.concurrency("res"):
            return i + 1

    @task
    def outer(n: int) -> list[int]:
        futures = [inner.submit(i) for i in range(n)]
        return [f.result() for f in futures]

    @taskrun.flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def nested() -> list[int]:
        return outer.submit(5).result()

    assert nested() == [1, 2, 3, 4, 5]
    assert _used("tag:db") == 0 and _used("res") == 0


def test_cancelled_waiting_runs_leak_no_permit() -> None:
    limits.set("tag:db", 1)
    release = threading.Event()

    @task(tags=["db"])
    def hold(i: int) -> int:
        assert release.wait(10)
        return i

    with ThreadPoolTaskRunner(max_workers=4) as runner:
        holder = runner.submit(hold, {"i": 0})
        waiting = [runner.submit(hold, {"i": i}) for i in range(1, 6)]
        deadline = time.monotonic() + 5
        while _used("tag:db") != 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        for future in waiting:
            future.cancel()
        for future in waiting:
            future.wait(5)
            assert future.state.type is StateType.CANCELLED
        release.set()
        assert holder.result(timeout=5) == 0
        assert runner.submit(hold, {"i": 9}).result(timeout=5) == 9
    stats = _local.statistics("tag:db")
    assert stats is not None and stats.used == 0 and stats.waiting == 0 and stats.watchers == 0


@pytest.mark.anyio
async def test_timed_out_and_failed_runs_give_their_permit_back() -> None:
    limits.set("tag:slow", 1)

    @task(tags=["slow"], timeout_seconds=0.1)
    async def too_slow() -> None:
        await anyio.sleep(10)

    @task(tags=["slow"])
    async def broken() -> None:
        raise ValueError("boom")

    @task(tags=["slow"])
    async def fine() -> str:
        return "ok"

    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        timed_out = runner.submit(too_slow, {})
        failed = runner.submit(broken, {})
        last = runner.submit(fine, {})
        with anyio.fail_after(5):
            assert await last == "ok"
            await timed_out.wait_async()
            await failed.wait_async()
    assert timed_out.state.name == "TimedOut"
    assert failed.state.type is StateType.FAILED
    assert _used("tag:slow") == 0


# ----------------------------------------------------------------------------- wait hooks


def test_a_body_waiting_in_concurrency_gives_its_slot_back() -> None:
    """max_workers=2: one run holds "res" until a third run signals; the second waits
    for "res". Only if the waiting run gives its slot back can the third one run."""
    limits.set("res", 1)
    holding = threading.Event()
    signal = threading.Event()

    @task
    def holder() -> str:
        with taskrun.concurrency("res"):
            holding.set()
            assert signal.wait(10)
        return "holder"

    @task
    def waiter() -> str:
        assert holding.wait(10)
        with taskrun.concurrency("res", timeout_seconds=10):
            return "waiter"

    @task
    def signaller() -> str:
        signal.set()
        return "signaller"

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        first = runner.submit(holder, {})
        assert holding.wait(5)
        second = runner.submit(waiter, {})
        deadline = time.monotonic() + 5
        while not _waiting("res"):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        third = runner.submit(signaller, {})
        assert [f.result(timeout=10) for f in (first, second, third)] == ["holder", "waiter", "signaller"]


@pytest.mark.anyio
async def test_an_async_body_waiting_in_concurrency_gives_its_slot_back() -> None:
    limits.set("res", 1)
    holding = anyio.Event()
    signal = anyio.Event()

    @task
    async def holder() -> str:
        async with taskrun.concurrency("res"):
            holding.set()
            await signal.wait()
        return "holder"

    @task
    async def waiter() -> str:
        async with taskrun.concurrency("res", timeout_seconds=10):
            return "waiter"

    @task
    async def signaller() -> str:
        signal.set()
        return "signaller"

    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        first = runner.submit(holder, {})
        with anyio.fail_after(5):
            await holding.wait()
        second = runner.submit(waiter, {})
        with anyio.fail_after(5):
            while not _waiting("res"):
                await anyio.sleep(0.005)
        third = runner.submit(signaller, {})
        with anyio.fail_after(10):
            assert [await f for f in (first, second, third)] == ["holder", "waiter", "signaller"]


def test_a_body_waiting_in_rate_limit_gives_its_slot_back() -> None:
    limits.set("api", 1, slot_decay_per_second=4)  # one token, then one every 250 ms
    order: list[str] = []

    @task
    def limited(name: str) -> str:
        taskrun.rate_limit("api")
        order.append(name)
        return name

    @task
    def quick() -> str:
        order.append("quick")
        return "quick"

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        a = runner.submit(limited, {"name": "a"})
        assert a.result(timeout=5) == "a"
        b = runner.submit(limited, {"name": "b"})  # waits ~250 ms for a token, holding no slot
        time.sleep(0.05)
        c = runner.submit(quick, {})
        assert c.result(timeout=5) == "quick"
        assert b.result(timeout=5) == "b"
    assert order == ["a", "quick", "b"]


# ----------------------------------------------------------------------------- priorities


def test_priority_is_checked_and_kept_by_with_options() -> None:
    def f() -> None: ...

    assert task(f).priority == 0
    assert task(priority=4)(f).with_options(retries=1).priority == 4
    assert task(f).with_options(priority=-2).priority == -2
    for bad in ("high", 1.5, True, None):
        with pytest.raises(TypeError, match="priority must be an int"):
            task(priority=bad)(f)  # type: ignore[arg-type]


def test_higher_priority_takes_a_free_slot_first_with_one_worker() -> None:
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    @task
    def blocker() -> None:
        started.set()
        assert release.wait(10)

    @task
    def step(name: str) -> str:
        order.append(name)
        return name

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        first = runner.submit(blocker, {})
        assert started.wait(5)
        futures = [
            runner.submit(step.with_options(priority=p), {"name": name})
            for name, p in [("a0", 0), ("b5", 5), ("c1", 1), ("d5", 5), ("e10", 10), ("f0", 0)]
        ]
        # a batch of one map call: ordered among the queued ones too
        mapped = runner.map(step.with_options(priority=3), {"name": ["m3a", "m3b"]})
        release.set()
        first.result(timeout=5)
        taskrun.wait([*futures, *mapped], timeout=5)
    assert order == ["e10", "b5", "d5", "m3a", "m3b", "c1", "a0", "f0"]



def test_a_tag_limit_counts_the_runs_of_every_runner(meter: Meter) -> None:
    limits.set("tag:shared", 2)

    @task(tags=["shared"])
    def body(i: int) -> int:
        meter.enter()
        time.sleep(0.01)
        meter.exit()
        return i

    with ThreadPoolTaskRunner(max_workers=4) as one, ThreadPoolTaskRunner(max_workers=4) as two:
        first = one.map(body, {"i": range(20)})
        second = two.map(body, {"i": range(20)})
        assert first.result() == second.result() == list(range(20))
    assert meter.high == 2
    assert _used("tag:shared") == 0
