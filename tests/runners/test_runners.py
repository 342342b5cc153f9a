"""TaskRunner behaviours, through ThreadPoolTaskRunner."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import (
    FutureList,
    TaskRunner,
    ThreadPoolTaskRunner,
    get_run_context,
    tags,
    task,
    unmapped,
)
from taskrun.exceptions import MappingLengthMismatch, MappingMissingIterable

# ----------------------------------------------------------------------------- helpers


class Gauge:
    """Counts runs executing at once; ``full`` is set once ``full_at`` run together."""

    def __init__(self, full_at: int | None = None) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.full_at = full_at
        self.full = threading.Event()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.full_at is not None and self.now >= self.full_at:
                self.full.set()

    def exit(self) -> None:
        with self._lock:
            self.now -= 1


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


# ----------------------------------------------------------------------------- tasks


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
async def async_add(x: int, y: int = 0) -> int:
    await anyio.lowlevel.checkpoint()
    return x + y


@task
def with_default(x: int, y: int = 7) -> int:
    return x + y


@task
def with_kwargs(x: int, **extra: Any) -> tuple[int, list[tuple[str, Any]]]:
    return x, sorted(extra.items())


@task
def make_list(n: int) -> list[int]:
    return list(range(n))


@task
def total(xs: list[int], x: int) -> int:
    return sum(xs) + x


@task
def fail_if(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


@task
def gated(event: threading.Event, value: Any = None) -> Any:
    if not event.wait(10):
        raise RuntimeError("gate never opened")
    return value


@task
def gated_list(event: threading.Event, n: int) -> list[int]:
    event.wait(10)
    return list(range(n))


@task
def occupy(gauge: Gauge, x: int = 0) -> int:
    gauge.enter()
    try:
        if gauge.full_at is not None:
            gauge.full.wait(2)
        time.sleep(0.005)
    finally:
        gauge.exit()
    return x


@task
async def aoccupy(gauge: Gauge, x: int = 0) -> int:
    gauge.enter()
    try:
        deadline = time.monotonic() + 2
        while gauge.full_at is not None and not gauge.full.is_set() and time.monotonic() < deadline:
            await anyio.sleep(0.002)
        await anyio.sleep(0.005)
    finally:
        gauge.exit()
    return x


@task
def cooperative(started: threading.Event) -> bool:
    started.set()
    ctx = get_run_context()
    assert ctx is not None
    deadline = time.monotonic() + 10
    while not ctx.cancel_requested() and time.monotonic() < deadline:
        time.sleep(0.005)
    return ctx.cancel_requested()


@task
async def async_sleeper(started: threading.Event) -> None:
    started.set()
    await anyio.sleep(10)


@task
def sleepy(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


@task
async def async_sleepy(seconds: float, value: Any) -> Any:
    await anyio.sleep(seconds)
    return value


@task
def nest(n: int) -> int:
    if n == 0:
        return 0
    return nest.submit(n - 1).result() + 1


@task
async def anest(n: int) -> int:
    if n == 0:
        return 0
    return await anest.submit(n - 1) + 1


@task
def nest_mixed(n: int) -> int:
    """Sync task whose child is async."""
    if n == 0:
        return 0
    return anest_mixed.submit(n - 1).result() + 1


@task
async def anest_mixed(n: int) -> int:
    """Async task whose child is sync."""
    if n == 0:
        return 0
    return await nest_mixed.submit(n - 1) + 1


@task
def tree(depth: int) -> int:
    if depth == 0:
        return 1
    return sum(tree.map([depth - 1] * 3).result())


children: list[Any] = []


@task
def spawn_child(value: int) -> int:
    children.append(sleepy.submit(0.05, value * 10))
    return value


@task
def read_var() -> str:
    return request_id.get()


@task
async def aread_var() -> str:
    return request_id.get()


@task
def read_tags() -> frozenset[str]:
    ctx = get_run_context()
    assert ctx is not None
    return frozenset(ctx.tags)


@task
def thread_id() -> int:
    return threading.get_ident()


@task
async def async_thread_id() -> int:
    return threading.get_ident()


@task
async def wait_anyio_event(event: anyio.Event, value: Any) -> Any:
    await event.wait()
    return value


@task
async def wait_native_event(event: Any, value: Any) -> Any:
    await event.wait()
    return value


@task
async def take_lock(lock: anyio.Lock, log: list[str]) -> str:
    async with lock:
        log.append("task")
    return "locked"


def native_event(backend: str) -> Any:
    if backend == "asyncio":
        return asyncio.Event()
    import trio

    return trio.Event()


def run_gauge(runner: ThreadPoolTaskRunner, body: Any, count: int, gauge: Gauge) -> list[int]:
    return runner.map(body, {"gauge": unmapped(gauge), "x": list(range(count))}).result()


# ----------------------------------------------------------------------------- identity


def test_name() -> None:
    assert ThreadPoolTaskRunner().name == "threadpool"
    assert isinstance(ThreadPoolTaskRunner(), TaskRunner)


def test_duplicate_and_equality() -> None:
    runner = ThreadPoolTaskRunner(max_workers=3)
    copy = runner.duplicate()
    assert copy is not runner
    assert type(copy) is ThreadPoolTaskRunner
    assert copy == runner
    assert ThreadPoolTaskRunner(max_workers=3) == ThreadPoolTaskRunner(max_workers=3)
    assert ThreadPoolTaskRunner(max_workers=3) != ThreadPoolTaskRunner(max_workers=4)
    assert runner != object()


def test_duplicate_of_an_entered_runner_is_not_started() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        copy = runner.duplicate()
        assert copy == runner
        with pytest.raises(RuntimeError, match="Task runner is not started"):
            copy.submit(add, {"x": 1})
    with copy:
        assert copy.submit(add, {"x": 1}).result() == 1


# ----------------------------------------------------------------------------- lifecycle


def test_submit_before_entering_raises() -> None:
    runner = ThreadPoolTaskRunner()
    with pytest.raises(RuntimeError, match="Task runner is not started"):
        runner.submit(add, {"x": 1})
    with pytest.raises(RuntimeError, match="Task runner is not started"):
        runner.map(add, {"x": [1, 2]})
    with pytest.raises(RuntimeError, match="Task runner is not started"):
        list(runner.imap(add, {"x": [1, 2]}))


def test_entering_twice_raises() -> None:
    runner = ThreadPoolTaskRunner()
    with runner:
        with pytest.raises(RuntimeError):
            runner.__enter__()
        with pytest.raises(RuntimeError), runner:
            pass
        assert runner.submit(add, {"x": 2}).result() == 2


@pytest.mark.anyio
async def test_entering_twice_raises_async(anyio_backend: str) -> None:
    runner = ThreadPoolTaskRunner()
    async with runner:
        with pytest.raises(RuntimeError):
            async with runner:
                pass
        with pytest.raises(RuntimeError), runner:
            pass
        assert await runner.submit(add, {"x": 2}) == 2


def test_entering_a_closed_runner_raises() -> None:
    runner = ThreadPoolTaskRunner()
    with runner:
        pass
    with pytest.raises(RuntimeError):
        runner.__enter__()
    with pytest.raises(RuntimeError):
        runner.submit(add, {"x": 1})
    with runner.duplicate() as fresh:
        assert fresh.submit(add, {"x": 1}).result() == 1


@pytest.mark.anyio
async def test_entering_a_closed_runner_raises_async(anyio_backend: str) -> None:
    runner = ThreadPoolTaskRunner()
    async with runner:
        pass
    with pytest.raises(RuntimeError):
        async with runner:
            pass
    async with runner.duplicate() as fresh:
        assert await fresh.submit(add, {"x": 1}) == 1


def test_with_makes_it_the_current_runner() -> None:
    with pytest.raises(RuntimeError):
        add.submit(1)
    with ThreadPoolTaskRunner() as runner:
        assert isinstance(runner, ThreadPoolTaskRunner)
        assert add.submit(1, 2).result() == 3
        assert add.map([1, 2], y=unmapped(10)).result() == [11, 12]
        with ThreadPoolTaskRunner() as inner:
            future = add.submit(5)
            assert future.result() == 5
            assert inner is not runner
        assert add.submit(6).result() == 6
    with pytest.raises(RuntimeError):
        add.submit(1)


@pytest.mark.anyio
async def test_async_with_makes_it_the_current_runner(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        assert isinstance(runner, ThreadPoolTaskRunner)
        assert await add.submit(1, 2) == 3
        assert await async_add.submit(3, 4) == 7
        assert await async_add.map([1, 2], y=unmapped(10)).result_async() == [11, 12]
    with pytest.raises(RuntimeError):
        add.submit(1)


# ----------------------------------------------------------------------------- submit


def test_submit_returns_immediately() -> None:
    gate = threading.Event()
    with ThreadPoolTaskRunner() as runner:
        try:
            future = runner.submit(gated, {"event": gate, "value": 1})
            downstream = runner.submit(add, {"x": future, "y": 1})
            assert not future.done()
            assert not downstream.done()
        finally:
            gate.set()
        assert downstream.result() == 2


@pytest.mark.anyio
async def test_submit_returns_immediately_async(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(wait_anyio_event, {"event": go, "value": 1})
        downstream = runner.submit(add, {"x": future, "y": 1})
        await anyio.sleep(0.01)
        assert not future.done()
        assert not downstream.done()
        go.set()
        assert await downstream == 2


def test_submit_with_wait_for() -> None:
    gate = threading.Event()
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        try:
            first = runner.submit(gated, {"event": gate, "value": 1})
            after = runner.submit(add, {"x": 2}, wait_for=[first])
            after.wait(0.05)
            assert not after.done()
        finally:
            gate.set()
        assert after.result() == 2
        assert first.done()


def test_sync_and_async_tasks_from_sync_code() -> None:
    with ThreadPoolTaskRunner() as runner:
        assert runner.submit(add, {"x": 1}).result() == 1
        assert runner.submit(async_add, {"x": 2}).result() == 2
        assert runner.submit(thread_id, {}).result() != threading.get_ident()
        assert runner.submit(async_thread_id, {}).result() != threading.get_ident()


@pytest.mark.anyio
async def test_sync_and_async_tasks_from_async_code(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        assert await runner.submit(add, {"x": 1}) == 1
        assert await runner.submit(async_add, {"x": 2}) == 2
        # sync bodies on worker threads, async bodies on this loop
        assert await runner.submit(thread_id, {}) != threading.get_ident()
        assert await runner.submit(async_thread_id, {}) == threading.get_ident()
        upstream = runner.submit(async_add, {"x": 3})
        assert await runner.submit(add, {"x": upstream, "y": 1}) == 4


# ----------------------------------------------------------------------------- map


def test_map_basic_and_unmapped() -> None:
    with ThreadPoolTaskRunner() as runner:
        assert runner.map(add, {"x": [1, 2, 3], "y": unmapped(10)}).result() == [11, 12, 13]
        assert runner.map(add, {"x": [1, 2], "y": 5}).result() == [6, 7]
        assert runner.map(add, {"x": (1, 2), "y": [10, 20]}).result() == [11, 22]
        assert runner.map(total, {"xs": unmapped([1, 2, 3]), "x": [0, 100]}).result() == [6, 106]
        assert runner.map(add, {"x": range(3)}).result() == [0, 1, 2]
        assert runner.map(add, {"x": []}).result() == []


def test_map_generators() -> None:
    with ThreadPoolTaskRunner() as runner:
        assert runner.map(add, {"x": (i for i in range(4)), "y": unmapped(1)}).result() == [1, 2, 3, 4]
        assert runner.map(add, {"x": iter([1, 2]), "y": (i * 10 for i in (1, 2))}).result() == [11, 22]


def test_map_over_futures() -> None:
    with ThreadPoolTaskRunner() as runner:
        listing = runner.submit(make_list, {"n": 4})
        assert runner.map(add, {"x": listing, "y": unmapped(1)}).result() == [1, 2, 3, 4]
        items = [runner.submit(add, {"x": i}) for i in range(3)]
        assert runner.map(add, {"x": items, "y": 100}).result() == [100, 101, 102]
        assert runner.map(total, {"xs": unmapped(listing), "x": [0, 1]}).result() == [6, 7]


def test_map_defaults_and_kwargs() -> None:
    with ThreadPoolTaskRunner() as runner:
        assert runner.map(with_default, {"x": [1, 2]}).result() == [8, 9]
        assert runner.map(with_default, {"x": [1, 2], "y": [0, 0]}).result() == [1, 2]
        assert runner.map(with_kwargs, {"x": [1, 2], "z": [3, 4], "w": unmapped("u")}).result() == [
            (1, [("w", "u"), ("z", 3)]),
            (2, [("w", "u"), ("z", 4)]),
        ]
        assert with_kwargs.map([1, 2], z=[5, 6]).result() == [(1, [("z", 5)]), (2, [("z", 6)])]
        assert with_default.map([3]).result() == [10]


def test_map_length_mismatch() -> None:
    with ThreadPoolTaskRunner() as runner:
        with pytest.raises(MappingLengthMismatch):
            runner.map(add, {"x": [1, 2], "y": [1]})
        with pytest.raises(MappingLengthMismatch):
            add.map([1, 2, 3], [1, 2])
        with pytest.raises(ValueError):
            runner.map(add, {"x": [1, 2], "y": [1, 2, 3]})


def test_map_missing_iterable() -> None:
    with ThreadPoolTaskRunner() as runner:
        with pytest.raises(MappingMissingIterable):
            runner.map(add, {"x": 1, "y": 2})
        with pytest.raises(MappingMissingIterable):
            runner.map(add, {"x": unmapped([1, 2])})
        with pytest.raises(MappingMissingIterable):
            add.map(1)


def test_map_with_wait_for() -> None:
    gate = threading.Event()
    with ThreadPoolTaskRunner() as runner:
        try:
            first = runner.submit(gated, {"event": gate})
            futures = runner.map(add, {"x": [1, 2]}, wait_for=[first])
            futures.wait(0.05)
            assert not any(f.done() for f in futures)
        finally:
            gate.set()
        assert futures.result() == [1, 2]


@pytest.mark.anyio
async def test_map_on_loop_with_unfinished_future_raises(anyio_backend: str) -> None:
    gate = threading.Event()
    async with ThreadPoolTaskRunner() as runner:
        listing = runner.submit(gated_list, {"event": gate, "n": 3})
        try:
            with pytest.raises(RuntimeError, match="await"):
                runner.map(add, {"x": listing, "y": unmapped(1)})
        finally:
            gate.set()
        await listing
        # a finished future is fine
        assert await runner.map(add, {"x": listing, "y": unmapped(1)}).result_async() == [1, 2, 3]


@pytest.mark.anyio
async def test_map_on_loop_with_plain_iterables(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        futures = runner.map(async_add, {"x": [1, 2, 3], "y": unmapped(1)})
        assert isinstance(futures, FutureList)
        assert await futures.result_async() == [2, 3, 4]


# ----------------------------------------------------------------------------- imap


def test_imap_ordered() -> None:
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        seconds = [0.03, 0.0, 0.02, 0.0, 0.01]
        values = list(runner.imap(sleepy, {"seconds": seconds, "value": range(5)}, max_in_flight=3))
        assert values == [0, 1, 2, 3, 4]
        assert list(runner.imap(add, {"x": range(10), "y": unmapped(1)})) == list(range(1, 11))
        assert list(runner.imap(with_default, {"x": [1]})) == [8]


def test_imap_unordered_yields_as_finished() -> None:
    gate = threading.Event()

    @task
    def first_waits(x: int, event: threading.Event) -> int:
        if x == 0:
            event.wait(10)
        return x

    with ThreadPoolTaskRunner(max_workers=4) as runner:
        try:
            values = []
            with contextlib.closing(
                runner.imap(first_waits, {"x": range(4), "event": gate}, max_in_flight=2, ordered=False)
            ) as results:
                for value in results:
                    values.append(value)
                    if len(values) == 3:
                        gate.set()
        finally:
            gate.set()
    assert values == [1, 2, 3, 0]


@pytest.mark.timeout(30)
def test_imap_consumes_generators_lazily() -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    with ThreadPoolTaskRunner(max_workers=4) as runner:
        values: list[int] = []
        with contextlib.closing(runner.imap(add, {"x": numbers()}, max_in_flight=3)) as results:
            assert pulled == 0 or pulled <= 3
            for value in results:
                values.append(value)
                assert pulled <= len(values) + 3
                if len(values) == 10:
                    break
    assert values == list(range(10))
    assert pulled <= 13


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.timeout(30)
def test_imap_respects_max_in_flight(ordered: bool) -> None:
    gauge = Gauge(full_at=3)
    with ThreadPoolTaskRunner(max_workers=8) as runner:
        values = list(runner.imap(occupy, {"gauge": gauge, "x": range(20)}, max_in_flight=3,
                                  ordered=ordered))
    assert sorted(values) == list(range(20))
    assert gauge.peak == 3


def test_imap_errors() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        seen = []
        with pytest.raises(ValueError, match="bad item 2"):
            for value in runner.imap(fail_if, {"x": range(5), "bad": 2}, max_in_flight=2):
                seen.append(value)
        assert seen == [0, 1]
        with pytest.raises(ValueError, match="bad item 1"):
            list(runner.imap(fail_if, {"x": range(3), "bad": 1}, ordered=False))
        with pytest.raises(MappingLengthMismatch):
            list(runner.imap(add, {"x": iter(range(3)), "y": iter(range(2))}))
        with pytest.raises(MappingMissingIterable):
            list(runner.imap(add, {"x": 1}))


@pytest.mark.anyio
async def test_aimap_ordered(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=4) as runner:
        seconds = [0.03, 0.0, 0.02, 0.0, 0.01]
        values = [v async for v in runner.aimap(async_sleepy, {"seconds": seconds, "value": range(5)},
                                                max_in_flight=3)]
        assert values == [0, 1, 2, 3, 4]
        values = [v async for v in runner.aimap(sleepy, {"seconds": seconds, "value": range(5)})]
        assert values == [0, 1, 2, 3, 4]


@pytest.mark.anyio
async def test_aimap_unordered_yields_as_finished(anyio_backend: str) -> None:
    go = anyio.Event()

    @task
    async def first_waits(x: int, event: anyio.Event) -> int:
        if x == 0:
            await event.wait()
        return x

    values = []
    async with ThreadPoolTaskRunner(max_workers=4) as runner:
        try:
            async with contextlib.aclosing(
                runner.aimap(first_waits, {"x": range(4), "event": go}, max_in_flight=2, ordered=False)
            ) as results:
                async for value in results:
                    values.append(value)
                    if len(values) == 3:
                        go.set()
        finally:
            go.set()
    assert values == [1, 2, 3, 0]


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_aimap_consumes_generators_lazily(anyio_backend: str) -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield i

    values: list[int] = []
    async with ThreadPoolTaskRunner(max_workers=4) as runner:
        async with contextlib.aclosing(runner.aimap(async_add, {"x": numbers()}, max_in_flight=3)) as results:
            async for value in results:
                values.append(value)
                assert pulled <= len(values) + 3
                if len(values) == 10:
                    break
    assert values == list(range(10))


@pytest.mark.anyio
@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.timeout(30)
async def test_aimap_respects_max_in_flight(anyio_backend: str, ordered: bool) -> None:
    gauge = Gauge(full_at=3)
    async with ThreadPoolTaskRunner(max_workers=8) as runner:
        values = [v async for v in runner.aimap(aoccupy, {"gauge": gauge, "x": range(20)}, max_in_flight=3,
                                                ordered=ordered)]
    assert sorted(values) == list(range(20))
    assert gauge.peak == 3


@pytest.mark.anyio
async def test_aimap_errors(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        seen = []
        with pytest.raises(ValueError, match="bad item 2"):
            async for value in runner.aimap(fail_if, {"x": range(5), "bad": 2}, max_in_flight=2):
                seen.append(value)
        assert seen == [0, 1]
        with pytest.raises(ValueError, match="bad item 1"):
            async for _ in runner.aimap(fail_if, {"x": range(3), "bad": 1}, ordered=False):
                pass


# ----------------------------------------------------------------------------- cancel_all


@pytest.mark.timeout(30)
def test_cancel_all() -> None:
    started = threading.Event()
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        running = runner.submit(cooperative, {"started": started})
        queued = [runner.submit(add, {"x": i}) for i in range(5)]
        assert started.wait(10)
        runner.cancel_all()
        for future in [running, *queued]:
            future.wait(10)
            assert future.done()
            assert future.state.is_cancelled(), future.state
        # the runner goes on working
        assert runner.submit(add, {"x": 9}).result(timeout=10) == 9


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_cancel_all_async(anyio_backend: str) -> None:
    started = threading.Event()
    async with ThreadPoolTaskRunner(max_workers=1) as runner:
        running = runner.submit(async_sleeper, {"started": started})
        queued = [runner.submit(async_add, {"x": i}) for i in range(3)]
        while not started.is_set():
            await anyio.sleep(0.001)
        runner.cancel_all()
        for future in [running, *queued]:
            await future.wait_async(10)
            assert future.state.is_cancelled(), future.state
        assert await runner.submit(async_add, {"x": 9}) == 9


# ----------------------------------------------------------------------------- max_workers


@pytest.mark.timeout(30)
def test_max_workers_bounds_sync_tasks() -> None:
    gauge = Gauge(full_at=3)
    with ThreadPoolTaskRunner(max_workers=3) as runner:
        assert run_gauge(runner, occupy, 12, gauge) == list(range(12))
    assert gauge.peak == 3


@pytest.mark.timeout(30)
def test_max_workers_bounds_async_tasks() -> None:
    gauge = Gauge(full_at=3)
    with ThreadPoolTaskRunner(max_workers=3) as runner:
        assert run_gauge(runner, aoccupy, 12, gauge) == list(range(12))
    assert gauge.peak == 3


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_max_workers_bounds_async_tasks_on_callers_loop(anyio_backend: str) -> None:
    gauge = Gauge(full_at=2)
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(aoccupy, {"gauge": unmapped(gauge), "x": list(range(10))})
        assert await futures.result_async() == list(range(10))
    assert gauge.peak == 2


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_max_workers_bounds_sync_tasks_from_async_code(anyio_backend: str) -> None:
    gauge = Gauge(full_at=2)
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = runner.map(occupy, {"gauge": unmapped(gauge), "x": list(range(10))})
        assert await futures.result_async() == list(range(10))
    assert gauge.peak == 2


@pytest.mark.timeout(30)
def test_max_workers_bounds_sync_and_async_together() -> None:
    gauge = Gauge(full_at=3)
    with ThreadPoolTaskRunner(max_workers=3) as runner:
        sync_futures = runner.map(occupy, {"gauge": unmapped(gauge), "x": list(range(8))})
        async_futures = runner.map(aoccupy, {"gauge": unmapped(gauge), "x": list(range(8))})
        assert sync_futures.result() == list(range(8))
        assert async_futures.result() == list(range(8))
    assert gauge.peak == 3


def test_max_workers_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKRUN_THREAD_POOL_MAX_WORKERS", "2")
    runner = ThreadPoolTaskRunner()
    monkeypatch.setenv("TASKRUN_THREAD_POOL_MAX_WORKERS", "6")
    assert runner == ThreadPoolTaskRunner(max_workers=2)
    assert ThreadPoolTaskRunner() == ThreadPoolTaskRunner(max_workers=6)
    gauge = Gauge(full_at=2)
    with runner:  # read at construction, not when entered
        assert run_gauge(runner, occupy, 6, gauge) == list(range(6))
    assert gauge.peak == 2


def test_max_workers_default_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKRUN_THREAD_POOL_MAX_WORKERS", raising=False)
    runner = ThreadPoolTaskRunner()
    assert runner == ThreadPoolTaskRunner()
    assert runner.duplicate() == runner
    with runner:
        assert runner.map(add, {"x": range(50)}).result() == list(range(50))


# ----------------------------------------------------------------------------- nested submission


@pytest.mark.timeout(30)
def test_nested_sync_submission_does_not_deadlock() -> None:
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        assert nest.submit(20).result(timeout=25) == 20
        assert runner.submit(nest, {"n": 5}).result(timeout=25) == 5


@pytest.mark.timeout(30)
def test_nested_async_submission_does_not_deadlock_sync_host() -> None:
    with ThreadPoolTaskRunner(max_workers=1):
        assert anest.submit(20).result(timeout=25) == 20


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_nested_async_submission_does_not_deadlock(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=1):
        with anyio.fail_after(25):
            assert await anest.submit(20) == 20


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_nested_sync_submission_from_async_code(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=1):
        with anyio.fail_after(25):
            assert await nest.submit(20) == 20


@pytest.mark.timeout(30)
def test_nested_mixed_submission_does_not_deadlock() -> None:
    with ThreadPoolTaskRunner(max_workers=1):
        assert nest_mixed.submit(20).result(timeout=25) == 20
        assert anest_mixed.submit(20).result(timeout=25) == 20


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_nested_mixed_submission_from_async_code(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=1):
        with anyio.fail_after(25):
            assert await nest_mixed.submit(20) == 20
            assert await anest_mixed.submit(20) == 20


@pytest.mark.timeout(30)
def test_nested_map_does_not_deadlock() -> None:
    with ThreadPoolTaskRunner(max_workers=1):
        assert tree.submit(3).result(timeout=25) == 27


# ----------------------------------------------------------------------------- leaving the runner


def test_leaving_waits_for_runs_in_flight() -> None:
    children.clear()
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = [runner.submit(sleepy, {"seconds": 0.01, "value": i}) for i in range(10)]
        async_futures = [runner.submit(async_sleepy, {"seconds": 0.01, "value": i}) for i in range(5)]
        downstream = runner.submit(add, {"x": futures[-1], "y": 1})
        parents = [runner.submit(spawn_child, {"value": i}) for i in range(3)]
    everything = futures + async_futures + [downstream] + parents
    assert all(f.done() and f.state.is_completed() for f in everything)
    assert [f.result() for f in futures] == list(range(10))
    assert [f.result() for f in async_futures] == list(range(5))
    assert downstream.result() == 10
    assert len(children) == 3
    assert all(c.done() and c.state.is_completed() for c in children)
    assert sorted(c.result() for c in children) == [0, 10, 20]


@pytest.mark.anyio
async def test_leaving_waits_for_runs_in_flight_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = [runner.submit(async_sleepy, {"seconds": 0.01, "value": i}) for i in range(6)]
        sync_futures = [runner.submit(sleepy, {"seconds": 0.01, "value": i}) for i in range(6)]
        downstream = runner.submit(add, {"x": futures[-1], "y": 1})
    everything = futures + sync_futures + [downstream]
    assert all(f.done() and f.state.is_completed() for f in everything)
    assert [f.result() for f in futures] == list(range(6))
    assert [f.result() for f in sync_futures] == list(range(6))
    assert downstream.result() == 6


class Boom(Exception):
    pass


@pytest.mark.timeout(30)
def test_leaving_on_an_exception_cancels_unfinished_runs() -> None:
    started_sync, started_async = threading.Event(), threading.Event()
    error = Boom("leave now")
    with pytest.raises(Boom) as info:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            done = runner.submit(add, {"x": 1})
            done.wait()
            running_sync = runner.submit(cooperative, {"started": started_sync})
            running_async = runner.submit(async_sleeper, {"started": started_async})
            queued = [runner.submit(add, {"x": i}) for i in range(5)]
            assert started_sync.wait(10) and started_async.wait(10)
            raise error
    assert info.value is error
    assert done.state.is_completed()
    for future in [running_sync, running_async, *queued]:
        assert future.done()
        assert future.state.is_cancelled(), future.state


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_leaving_on_an_exception_cancels_unfinished_runs_async(anyio_backend: str) -> None:
    started_sync, started_async = threading.Event(), threading.Event()
    error = Boom("leave now")
    with pytest.raises(Boom) as info:
        async with ThreadPoolTaskRunner(max_workers=2) as runner:
            done = runner.submit(add, {"x": 1})
            await done
            running_sync = runner.submit(cooperative, {"started": started_sync})
            running_async = runner.submit(async_sleeper, {"started": started_async})
            queued = [runner.submit(async_add, {"x": i}) for i in range(5)]
            while not (started_sync.is_set() and started_async.is_set()):
                await anyio.sleep(0.001)
            raise error
    assert info.value is error
    assert done.state.is_completed()
    for future in [running_sync, running_async, *queued]:
        assert future.done()
        assert future.state.is_cancelled(), future.state


# ----------------------------------------------------------------------------- context variables


def test_context_variables_visible_in_runs() -> None:
    with ThreadPoolTaskRunner() as runner:
        token = request_id.set("req-1")
        try:
            sync_future = runner.submit(read_var, {})
            async_future = runner.submit(aread_var, {})
            with tags("outer"), tags("inner"):
                tagged = runner.submit(read_tags, {})
        finally:
            request_id.reset(token)
        plain = runner.submit(read_var, {})
        assert sync_future.result() == "req-1"
        assert async_future.result() == "req-1"
        assert {"outer", "inner"} <= tagged.result()
        assert plain.result() == "unset"


@pytest.mark.anyio
async def test_context_variables_visible_in_runs_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        token = request_id.set("req-2")
        try:
            sync_future = runner.submit(read_var, {})
            async_future = runner.submit(aread_var, {})
            with tags("t"):
                tagged = runner.submit(read_tags, {})
        finally:
            request_id.reset(token)
        assert await sync_future == "req-2"
        assert await async_future == "req-2"
        assert "t" in await tagged


def test_context_variables_of_each_submitter_thread() -> None:
    with ThreadPoolTaskRunner() as runner:
        results: dict[int, Any] = {}

        def submitter(i: int) -> None:
            request_id.set(f"thread-{i}")
            results[i] = runner.submit(read_var, {})

        threads = [threading.Thread(target=submitter, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert {i: f.result() for i, f in results.items()} == {i: f"thread-{i}" for i in range(4)}


# ----------------------------------------------------------------------------- the caller's loop


@pytest.mark.anyio
async def test_async_tasks_run_on_the_callers_loop(anyio_backend: str) -> None:
    event = anyio.Event()
    native = native_event(anyio_backend)
    async with ThreadPoolTaskRunner() as runner:
        on_anyio = runner.submit(wait_anyio_event, {"event": event, "value": "anyio"})
        on_native = runner.submit(wait_native_event, {"event": native, "value": "native"})
        where = runner.submit(async_thread_id, {})
        await anyio.sleep(0.01)
        assert not on_anyio.done() and not on_native.done()
        event.set()
        native.set()
        assert await on_anyio == "anyio"
        assert await on_native == "native"
        assert await where == threading.get_ident()


@pytest.mark.anyio
async def test_async_tasks_share_a_lock_with_the_submitter(anyio_backend: str) -> None:
    lock = anyio.Lock()
    log: list[str] = []
    async with ThreadPoolTaskRunner() as runner:
        async with lock:
            future = runner.submit(take_lock, {"lock": lock, "log": log})
            await anyio.sleep(0.02)
            assert not future.done()
            log.append("submitter")
        assert await future == "locked"
    assert log == ["submitter", "task"]


# ----------------------------------------------------------------------------- many threads


@pytest.mark.timeout(60)
def test_submitting_from_many_threads() -> None:
    threads_count, per_thread = 8, 500
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)
    with ThreadPoolTaskRunner(max_workers=4) as runner:

        def submitter(t: int) -> None:
            try:
                start.wait(10)
                futures = [runner.submit(add, {"x": t * 10_000, "y": i}) for i in range(per_thread)]
                results[t] = FutureList(futures).result(timeout=50)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=submitter, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(55)
    assert not errors
    assert sorted(results) == list(range(threads_count))
    for t, values in results.items():
        assert values == [t * 10_000 + i for i in range(per_thread)]


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_submitting_from_many_threads_into_an_async_runner(anyio_backend: str) -> None:
    threads_count, per_thread = 8, 200
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    async with ThreadPoolTaskRunner(max_workers=4) as runner:

        def submitter(t: int) -> None:
            try:
                task_ = add if t % 2 else async_add
                futures = [runner.submit(task_, {"x": t * 10_000, "y": i}) for i in range(per_thread)]
                results[t] = FutureList(futures).result(timeout=50)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=submitter, args=(t,)) for t in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join, 55)
    assert not errors
    assert sorted(results) == list(range(threads_count))
    for t, values in results.items():
        assert values == [t * 10_000 + i for i in range(per_thread)]
