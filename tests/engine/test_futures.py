"""Futures: TaskFuture / ConcurrentFuture / FutureList and the module functions."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import re
import threading
import time
import uuid
from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import (
    ConcurrentFuture,
    FutureList,
    TaskFuture,
    ThreadPoolTaskRunner,
    as_completed,
    as_completed_async,
    get_run_context,
    resolve_futures_to_results,
    resolve_futures_to_states,
    task,
    wait,
    wait_async,
)
from taskrun.exceptions import CancelledRun
from taskrun.states import Completed, State

BACKENDS = ["asyncio", "trio"]

# ----------------------------------------------------------------------------- tasks


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def fail(msg: str = "boom") -> None:
    raise ValueError(msg)


@task
def gated(event: threading.Event, value: Any = None) -> Any:
    if not event.wait(10):
        raise RuntimeError("gate never opened")
    return value


@task
def gated_fail(event: threading.Event, msg: str) -> None:
    event.wait(10)
    raise ValueError(msg)


@task
async def async_add(x: int, y: int = 0) -> int:
    await anyio.lowlevel.checkpoint()
    return x + y


@task
async def async_gated(event: anyio.Event, value: Any = None) -> Any:
    await event.wait()
    return value


@task
async def async_sleeper(started: threading.Event) -> None:
    started.set()
    await anyio.sleep(10)


@task
def cooperative(started: threading.Event) -> bool:
    started.set()
    ctx = get_run_context()
    assert ctx is not None
    deadline = time.monotonic() + 10
    while not ctx.cancel_requested() and time.monotonic() < deadline:
        time.sleep(0.005)
    return ctx.cancel_requested()


hook_calls: list[tuple[str, bool]] = []


def _record_hook(kind: str) -> Callable[..., None]:
    def hook(task: Any, run: Any, state: State) -> None:
        time.sleep(0.02)
        hook_calls.append((kind, state.is_final()))

    return hook


@task(on_completion=[_record_hook("completion")])
def hooked_ok() -> int:
    return 1


@task(on_failure=[_record_hook("failure")])
def hooked_fail() -> None:
    raise KeyError("hooked")


# ----------------------------------------------------------------------------- fixtures


class Gates:
    """threading.Events that are all opened before the runner is left."""

    def __init__(self) -> None:
        self._events: list[threading.Event] = []

    def new(self) -> threading.Event:
        event = threading.Event()
        self._events.append(event)
        return event

    def open_all(self) -> None:
        for event in self._events:
            event.set()


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def runner(gates: Gates) -> Iterator[ThreadPoolTaskRunner]:
    with ThreadPoolTaskRunner(max_workers=4) as r:
        try:
            yield r
        finally:
            gates.open_all()


def open_later(event: threading.Event, delay: float = 0.05) -> threading.Timer:
    timer = threading.Timer(delay, event.set)
    timer.start()
    return timer


def run_in_thread(fn: Callable[[], Any], timeout: float = 20) -> Any:
    """Run ``fn`` in a fresh thread, return its value or re-raise its exception."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the thread did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ----------------------------------------------------------------------------- basics


def test_result_wait_done_and_state(runner: ThreadPoolTaskRunner) -> None:
    future = runner.submit(add, {"x": 1, "y": 2})
    assert isinstance(future, TaskFuture)
    assert isinstance(future, ConcurrentFuture)
    assert future.result() == 3
    assert future.wait() is None
    assert future.done()
    assert future.state.is_completed()
    assert future.state.result() == 3


def test_task_run_ids_are_distinct_uuids(runner: ThreadPoolTaskRunner) -> None:
    futures = [runner.submit(add, {"x": i}) for i in range(3)]
    ids = {f.task_run_id for f in futures}
    assert all(isinstance(i, uuid.UUID) for i in ids)
    assert len(ids) == 3
    assert futures[0].task_run_id == futures[0].task_run_id


def test_state_of_unfinished_run_does_not_block(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": 5})
    assert not future.done()
    assert not future.state.is_final()
    gate.set()
    assert future.result() == 5


def test_wait_with_timeout_returns_without_raising(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": 1})
    assert future.wait(timeout=0.05) is None
    assert not future.done()
    gate.set()
    future.wait(timeout=10)
    assert future.done()


def test_result_with_timeout_raises_timeout_error(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": 1})
    with pytest.raises(TimeoutError):
        future.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        future.result(timeout=0)
    gate.set()
    assert future.result(timeout=10) == 1
    assert future.result(timeout=0) == 1


def test_result_raises_the_task_exception(runner: ThreadPoolTaskRunner) -> None:
    future = runner.submit(fail, {"msg": "exact message"})
    with pytest.raises(ValueError, match="exact message"):
        future.result()
    error = future.result(raise_on_failure=False)
    assert isinstance(error, ValueError)
    assert str(error) == "exact message"
    assert future.state.is_failed()


def test_wait_and_result_after_completion_have_run_hooks(runner: ThreadPoolTaskRunner) -> None:
    hook_calls.clear()
    assert runner.submit(hooked_ok, {}).result() == 1
    assert hook_calls == [("completion", True)]
    future = runner.submit(hooked_fail, {})
    future.wait()
    assert future.state.is_final()
    assert hook_calls == [("completion", True), ("failure", True)]


# ----------------------------------------------------------------------------- bad timeouts

BAD_TIMEOUTS = [-1, -0.001, math.nan]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
def test_bad_timeouts_raise_value_error_sync(runner: ThreadPoolTaskRunner, gates: Gates,
                                             timeout: float) -> None:
    done = runner.submit(add, {"x": 1})
    done.wait()
    pending = runner.submit(gated, {"event": gates.new()})
    for future in (done, pending):
        futures = FutureList([future])
        with pytest.raises(ValueError):
            future.wait(timeout=timeout)
        with pytest.raises(ValueError):
            future.result(timeout=timeout)
        with pytest.raises(ValueError):
            futures.wait(timeout=timeout)
        with pytest.raises(ValueError):
            futures.result(timeout=timeout)
        with pytest.raises(ValueError):
            wait([future], timeout=timeout)
        with pytest.raises(ValueError):
            list(as_completed([future], timeout=timeout))


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
async def test_bad_timeouts_raise_value_error_async(anyio_backend: str, timeout: float) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner(max_workers=4) as runner:
        done = runner.submit(add, {"x": 1})
        await done
        pending = runner.submit(async_gated, {"event": go})
        try:
            for future in (done, pending):
                futures = FutureList([future])
                with pytest.raises(ValueError):
                    await future.wait_async(timeout=timeout)
                with pytest.raises(ValueError):
                    await future.result_async(timeout=timeout)
                with pytest.raises(ValueError):
                    await futures.wait_async(timeout=timeout)
                with pytest.raises(ValueError):
                    await futures.result_async(timeout=timeout)
                with pytest.raises(ValueError):
                    await wait_async([future], timeout=timeout)
                with pytest.raises(ValueError):
                    async for _ in as_completed_async([future], timeout=timeout):
                        pass
        finally:
            go.set()


# ----------------------------------------------------------------------------- callbacks


def test_done_callback_called_once_when_final(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    calls: list[tuple[TaskFuture, bool, bool]] = []
    called = threading.Event()
    future = runner.submit(gated, {"event": gate, "value": 1})

    def callback(f: TaskFuture) -> None:
        calls.append((f, f.done(), f.state.is_final()))
        called.set()

    future.add_done_callback(callback)
    assert calls == []
    gate.set()
    assert called.wait(10)
    future.result()
    time.sleep(0.02)
    assert calls == [(future, True, True)]


def test_done_callback_called_immediately_when_already_done(runner: ThreadPoolTaskRunner) -> None:
    future = runner.submit(add, {"x": 1})
    future.wait()
    calls: list[tuple[TaskFuture, int]] = []
    future.add_done_callback(lambda f: calls.append((f, threading.get_ident())))
    assert calls == [(future, threading.get_ident())]


def test_several_callbacks_all_called(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate})
    seen: list[int] = []
    all_called = threading.Event()

    def make(i: int) -> Callable[[TaskFuture], None]:
        def cb(_: TaskFuture) -> None:
            seen.append(i)
            if len(seen) == 3:
                all_called.set()

        return cb

    for i in range(3):
        future.add_done_callback(make(i))
    gate.set()
    assert all_called.wait(10)
    assert sorted(seen) == [0, 1, 2]


def test_callbacks_removed_before_the_end_are_not_called() -> None:
    calls: list[str] = []

    def first(_: TaskFuture) -> None:
        calls.append("first")

    def second(_: TaskFuture) -> None:
        calls.append("second")

    only = ConcurrentFuture(None)  # one callback, kept as itself
    only.add_done_callback(first)
    only._remove_done_callback(second)  # not registered: nothing happens
    only._remove_done_callback(first)
    only._finish(Completed(data=1))
    assert calls == []

    several = ConcurrentFuture(None)
    for fn in (first, second, first):
        several.add_done_callback(fn)
    several._remove_done_callback(first)  # the first registration of it, as list.remove
    several._finish(Completed(data=1))
    assert calls == ["second", "first"]


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def taskrun_log() -> Iterator[_ListHandler]:
    handler = _ListHandler()
    logger = logging.getLogger("taskrun")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_raising_callback_is_logged_not_raised(runner: ThreadPoolTaskRunner, gates: Gates,
                                               taskrun_log: _ListHandler) -> None:
    def bad(_: TaskFuture) -> None:
        raise ZeroDivisionError("callback bug")

    # already done: called at once, the error is logged
    done = runner.submit(add, {"x": 1})
    done.wait()
    done.add_done_callback(bad)
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in taskrun_log.records)

    # pending: called on completion, the error is logged, later callbacks still run
    taskrun_log.records.clear()
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": 7})
    after = threading.Event()
    future.add_done_callback(bad)
    future.add_done_callback(lambda f: after.set())
    gate.set()
    assert future.result() == 7
    assert after.wait(10)
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in taskrun_log.records)
    assert all(r.levelno >= logging.WARNING for r in taskrun_log.records)

    # pending, the only callback: the same
    taskrun_log.records.clear()
    alone = ConcurrentFuture(None)
    alone.add_done_callback(bad)
    assert alone._finish(Completed(data=1))
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in taskrun_log.records)


# ----------------------------------------------------------------------------- awaiting


@pytest.mark.anyio
async def test_await_future(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        assert await runner.submit(add, {"x": 1, "y": 2}) == 3
        assert await runner.submit(async_add, {"x": 3, "y": 4}) == 7
        future = runner.submit(add, {"x": 5})
        assert await future.result_async() == 5
        assert await future.wait_async() is None
        assert future.done()


@pytest.mark.anyio
async def test_result_async_raises_task_exception(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(fail, {"msg": "async boom"})
        with pytest.raises(ValueError, match="async boom"):
            await future
        with pytest.raises(ValueError, match="async boom"):
            await future.result_async()
        error = await future.result_async(raise_on_failure=False)
        assert isinstance(error, ValueError)


@pytest.mark.anyio
async def test_wait_async_and_result_async_timeouts(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(async_gated, {"event": go, "value": "v"})
        try:
            assert await future.wait_async(timeout=0.05) is None
            assert not future.done()
            with pytest.raises(TimeoutError):
                await future.result_async(timeout=0.05)
            with pytest.raises(TimeoutError):
                await FutureList([future]).result_async(timeout=0.05)
            await FutureList([future]).wait_async(timeout=0.05)
            assert not future.done()
        finally:
            go.set()
        assert await future.result_async(timeout=10) == "v"


@pytest.mark.anyio
async def test_wait_async_does_not_block_the_loop(anyio_backend: str) -> None:
    gate = threading.Event()
    ticks = 0
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(gated, {"event": gate, "value": 1})

        async def ticker() -> None:
            nonlocal ticks
            while ticks < 5:
                ticks += 1
                await anyio.sleep(0.001)
            gate.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                assert await future == 1
        finally:
            gate.set()
    assert ticks == 5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(30)
def test_await_from_a_foreign_loop_in_another_thread(backend: str, gates: Gates) -> None:
    """Runner entered with ``with`` in sync code; futures awaited in anyio.run in another thread."""
    gate = gates.new()
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        try:
            one = runner.submit(gated, {"event": gate, "value": 1})
            two = runner.submit(gated, {"event": gate, "value": 2})
            three = runner.submit(async_add, {"x": 3})
            many = FutureList([one, two, one])

            async def main() -> dict[str, Any]:
                out: dict[str, Any] = {}

                async def await_one() -> None:
                    out["await"] = await one

                async def result_two() -> None:
                    out["result_async"] = await two.result_async()

                async def wait_many() -> None:
                    done, not_done = await wait_async([one, two, three])
                    out["wait_async"] = (len(done), len(not_done))

                async def list_result() -> None:
                    out["list"] = await many.result_async()

                async def completed() -> None:
                    out["as_completed"] = sorted([await f async for f in as_completed_async([one, two])])

                async with anyio.create_task_group() as tg:
                    for fn in (await_one, result_two, wait_many, list_result, completed):
                        tg.start_soon(fn)
                    await anyio.sleep(0.05)
                    gate.set()
                return out

            out = run_in_thread(lambda: anyio.run(main, backend=backend))
        finally:
            gate.set()
    assert out == {
        "await": 1,
        "result_async": 2,
        "wait_async": (3, 0),
        "list": [1, 2, 1],
        "as_completed": [1, 2],
    }


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_await_from_a_loop_of_the_other_backend(anyio_backend: str) -> None:
    """Runner entered with ``async with`` here; the future is awaited on another library's loop."""
    other = "trio" if anyio_backend == "asyncio" else "asyncio"
    go = anyio.Event()
    parked = threading.Event()
    box: dict[str, Any] = {}
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(async_gated, {"event": go, "value": "cross"})

        async def foreign() -> Any:
            async def awaiter() -> None:
                box["value"] = await future

            async with anyio.create_task_group() as tg:
                tg.start_soon(awaiter)
                await anyio.sleep(0.01)
                parked.set()

        def thread_main() -> None:
            try:
                anyio.run(foreign, backend=other)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=thread_main)
        thread.start()
        try:
            assert await anyio.to_thread.run_sync(parked.wait, 10)
            assert not future.done()
            go.set()
            await anyio.to_thread.run_sync(thread.join, 20)
        finally:
            go.set()
    assert not thread.is_alive()
    assert box == {"value": "cross"}


# ----------------------------------------------------------------------------- blocking on a loop


def _blocking_calls(future: TaskFuture) -> list[Callable[[], Any]]:
    return [
        lambda: future.wait(),
        lambda: future.wait(timeout=1),
        lambda: future.result(),
        lambda: future.result(timeout=1),
        lambda: FutureList([future]).wait(),
        lambda: FutureList([future]).result(),
        lambda: wait([future]),
        lambda: list(as_completed([future])),
        lambda: resolve_futures_to_results([future]),
        lambda: resolve_futures_to_states({"f": future}),
    ]


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_blocking_calls_on_the_event_loop_thread_raise(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        future = runner.submit(async_gated, {"event": go, "value": 1})
        try:
            for call in _blocking_calls(future):
                with pytest.raises(RuntimeError, match="await"):
                    call()
        finally:
            go.set()
        assert await future == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.timeout(30)
def test_blocking_calls_on_a_foreign_loop_thread_raise(backend: str, runner: ThreadPoolTaskRunner,
                                                       gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": 1})

    async def main() -> int:
        for call in _blocking_calls(future):
            with pytest.raises(RuntimeError, match="await"):
                call()
        return 0

    assert run_in_thread(lambda: anyio.run(main, backend=backend)) == 0
    gate.set()
    assert future.result() == 1


# ----------------------------------------------------------------------------- FutureList


def test_map_returns_future_list(runner: ThreadPoolTaskRunner) -> None:
    futures = runner.map(add, {"x": [1, 2, 3]})
    assert isinstance(futures, FutureList)
    assert isinstance(futures, list)
    assert all(isinstance(f, ConcurrentFuture) for f in futures)
    assert futures.result() == [1, 2, 3]


def test_future_list_result_is_in_input_order(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    g = [gates.new() for _ in range(3)]
    futures = runner.map(gated, {"event": g, "value": ["a", "b", "c"]})
    # finish in reverse order
    for i in (2, 1, 0):
        g[i].set()
        futures[i].wait(10)
    assert futures.result() == ["a", "b", "c"]


def test_future_list_with_duplicates(runner: ThreadPoolTaskRunner) -> None:
    a = runner.submit(add, {"x": 1})
    b = runner.submit(add, {"x": 2})
    futures = FutureList([a, b, a, a])
    assert futures.result() == [1, 2, 1, 1]
    futures.wait()
    assert FutureList([]).result() == []


def test_future_list_result_raise_on_failure_false(runner: ThreadPoolTaskRunner) -> None:
    futures = FutureList([runner.submit(add, {"x": 1}), runner.submit(fail, {"msg": "x"})])
    values = futures.result(raise_on_failure=False)
    assert values[0] == 1
    assert isinstance(values[1], ValueError)


@pytest.mark.timeout(30)
def test_future_list_result_raises_first_failure_at_once(runner: ThreadPoolTaskRunner,
                                                         gates: Gates) -> None:
    slow_gate = gates.new()
    slow = runner.submit(gated, {"event": slow_gate, "value": 1})
    failing = runner.submit(fail, {"msg": "early"})
    futures = FutureList([slow, failing])
    with pytest.raises(ValueError, match="early"):
        futures.result()
    assert not slow.done()


@pytest.mark.timeout(30)
def test_future_list_result_raises_a_failure_as_soon_as_it_happens(runner: ThreadPoolTaskRunner,
                                                                   gates: Gates) -> None:
    slow_gate, fail_gate = gates.new(), gates.new()
    slow = runner.submit(gated, {"event": slow_gate, "value": 1})
    failing = runner.submit(gated_fail, {"event": fail_gate, "msg": "while waiting"})
    futures = FutureList([slow, failing])
    open_later(fail_gate)
    with pytest.raises(ValueError, match="while waiting"):
        futures.result()
    assert not slow.done()
    slow_gate.set()
    assert slow.result() == 1


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_future_list_result_async_raises_failure_as_soon_as_it_happens(anyio_backend: str) -> None:
    slow_gate, fail_gate = threading.Event(), threading.Event()
    async with ThreadPoolTaskRunner(max_workers=4) as runner:
        slow = runner.submit(gated, {"event": slow_gate, "value": 1})
        failing = runner.submit(gated_fail, {"event": fail_gate, "msg": "async early"})
        try:
            open_later(fail_gate)
            with pytest.raises(ValueError, match="async early"):
                await FutureList([slow, failing]).result_async()
            assert not slow.done()
        finally:
            slow_gate.set()
            fail_gate.set()


def test_future_list_timeouts(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    futures = FutureList([runner.submit(add, {"x": 1}), runner.submit(gated, {"event": gate})])
    assert futures.wait(timeout=0.05) is None
    with pytest.raises(TimeoutError):
        futures.result(timeout=0.05)
    gate.set()
    futures.wait()
    assert all(f.done() for f in futures)


@pytest.mark.anyio
async def test_future_list_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        futures = runner.map(async_add, {"x": [1, 2, 3], "y": 10})
        assert await futures.result_async() == [11, 12, 13]
        await futures.wait_async()
        mixed = FutureList([runner.submit(add, {"x": 1}), runner.submit(fail, {})])
        with pytest.raises(ValueError):
            await mixed.result_async()
        values = await mixed.result_async(raise_on_failure=False)
        assert values[0] == 1 and isinstance(values[1], ValueError)


# ----------------------------------------------------------------------------- wait / as_completed


def test_wait_function(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    quick = runner.submit(add, {"x": 1})
    slow = runner.submit(gated, {"event": gate})
    quick.wait()
    result = wait([quick, slow], timeout=0.05)
    assert result.done == {quick}
    assert result.not_done == {slow}
    done, not_done = result
    assert done == {quick} and not_done == {slow}
    gate.set()
    done, not_done = wait([quick, slow])
    assert done == {quick, slow} and not_done == set()


@pytest.mark.anyio
async def test_wait_async_function(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        quick = runner.submit(add, {"x": 1})
        slow = runner.submit(async_gated, {"event": go})
        await quick
        try:
            done, not_done = await wait_async([quick, slow], timeout=0.05)
            assert done == {quick} and not_done == {slow}
        finally:
            go.set()
        result = await wait_async([quick, slow])
        assert result.done == {quick, slow} and result.not_done == set()


def test_as_completed_yields_in_completion_order(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    g = [gates.new() for _ in range(3)]
    futures = [runner.submit(gated, {"event": g[i], "value": i}) for i in range(3)]
    release = [2, 0, 1]
    g[release[0]].set()
    order = []
    for k, future in enumerate(as_completed([*futures, futures[0]])):
        assert future.done()
        order.append(future.result())
        if k + 1 < len(release):
            g[release[k + 1]].set()
    assert order == release


def test_as_completed_yields_finished_first(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    slow = runner.submit(gated, {"event": gate, "value": "slow"})
    quick = runner.submit(add, {"x": 1})
    quick.wait()
    iterator = as_completed([slow, quick])
    assert next(iterator) is quick
    gate.set()
    assert next(iterator) is slow
    with pytest.raises(StopIteration):
        next(iterator)
    assert list(as_completed([])) == []


def test_as_completed_timeout_names_unfinished(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    quick = runner.submit(add, {"x": 1})
    quick.wait()
    slow = [runner.submit(gated, {"event": gate, "value": i}) for i in range(2)]
    seen = []
    with pytest.raises(TimeoutError) as info:
        for future in as_completed([quick, *slow], timeout=0.05):
            seen.append(future)
    assert seen == [quick]
    assert re.search(r"\b2\b", str(info.value)), str(info.value)


@pytest.mark.anyio
async def test_as_completed_async(anyio_backend: str) -> None:
    events = [anyio.Event() for _ in range(3)]
    async with ThreadPoolTaskRunner() as runner:
        futures = [runner.submit(async_gated, {"event": events[i], "value": i}) for i in range(3)]
        release = [1, 2, 0]
        events[release[0]].set()
        order = []
        try:
            async for future in as_completed_async([*futures, futures[1]]):
                assert future.done()
                order.append(await future)
                if len(order) < 3:
                    events[release[len(order)]].set()
        finally:
            for e in events:
                e.set()
    assert order == release


@pytest.mark.anyio
async def test_as_completed_async_timeout_names_unfinished(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner() as runner:
        quick = runner.submit(add, {"x": 1})
        await quick
        slow = [runner.submit(async_gated, {"event": go}) for _ in range(3)]
        seen = []
        try:
            with pytest.raises(TimeoutError) as info:
                async for future in as_completed_async([quick, *slow], timeout=0.05):
                    seen.append(future)
        finally:
            go.set()
    assert seen == [quick]
    assert re.search(r"\b3\b", str(info.value)), str(info.value)


# ----------------------------------------------------------------------------- resolve


@dataclasses.dataclass
class Box:
    first: Any
    rest: list[Any]


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    item: Any


Pair = namedtuple("Pair", ["left", "right"])


def test_resolve_futures_to_results_nested(runner: ThreadPoolTaskRunner) -> None:
    f1, f2, f3 = (runner.submit(add, {"x": i}) for i in (1, 2, 3))
    expr = {
        "list": [f1, (f2, 3), "text"],
        "set": {f3, 10},
        "dict": {"k": f1, f2: "as key"},
        "box": Box(f2, [f3, {"deep": f1}]),
        "frozen": FrozenBox(f3),
        "pair": Pair(f1, f2),
        "plain": 42,
    }
    out = resolve_futures_to_results(expr)
    assert out == {
        "list": [1, (2, 3), "text"],
        "set": {3, 10},
        "dict": {"k": 1, 2: "as key"},
        "box": Box(2, [3, {"deep": 1}]),
        "frozen": FrozenBox(3),
        "pair": Pair(1, 2),
        "plain": 42,
    }
    assert isinstance(out["list"][1], tuple)
    assert isinstance(out["pair"], Pair)
    assert isinstance(out["box"], Box)
    assert resolve_futures_to_results(f1) == 1


def test_resolve_futures_to_states_nested(runner: ThreadPoolTaskRunner) -> None:
    ok = runner.submit(add, {"x": 1})
    bad = runner.submit(fail, {"msg": "state"})
    out = resolve_futures_to_states({"a": [ok, (bad,)], "b": Box(ok, [bad]), "c": {ok}})
    assert isinstance(out["a"][0], State) and out["a"][0].is_completed()
    assert out["a"][0].result() == 1
    assert isinstance(out["a"][1], tuple) and out["a"][1][0].is_failed()
    assert out["b"].first.is_completed() and out["b"].rest[0].is_failed()
    (state,) = out["c"]
    assert isinstance(state, State) and state.is_completed()


def test_resolve_futures_to_results_raises_failure(runner: ThreadPoolTaskRunner) -> None:
    bad = runner.submit(fail, {"msg": "resolve me"})
    with pytest.raises(ValueError, match="resolve me"):
        resolve_futures_to_results({"x": [bad]})


def test_resolve_waits_for_unfinished(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": "late"})
    open_later(gate)
    assert resolve_futures_to_results([future, {"k": future}]) == ["late", {"k": "late"}]
    assert resolve_futures_to_states(future).is_completed()


def test_resolve_leaves_values_without_futures_alone() -> None:
    expr = {"a": [1, (2, "x")], "b": Box(1, [2])}
    assert resolve_futures_to_results(expr) == expr
    assert resolve_futures_to_states(expr) == expr


# ----------------------------------------------------------------------------- wrapped_future


def test_wrapped_future_success(runner: ThreadPoolTaskRunner, gates: Gates) -> None:
    gate = gates.new()
    future = runner.submit(gated, {"event": gate, "value": "ok"})
    wrapped = future.wrapped_future
    assert isinstance(wrapped, concurrent.futures.Future)
    assert not wrapped.done()
    gate.set()
    assert wrapped.result(timeout=10) == "ok"
    assert wrapped.exception() is None
    assert future.wrapped_future.result() == "ok"

    done_first = runner.submit(add, {"x": 4})
    done_first.wait()
    assert done_first.wrapped_future.result(timeout=0) == 4
    done, _ = concurrent.futures.wait([done_first.wrapped_future], timeout=10)
    assert done == {done_first.wrapped_future}


def test_wrapped_future_failure(runner: ThreadPoolTaskRunner) -> None:
    future = runner.submit(fail, {"msg": "wrapped"})
    error = future.wrapped_future.exception(timeout=10)
    assert isinstance(error, ValueError)
    assert str(error) == "wrapped"
    with pytest.raises(ValueError, match="wrapped"):
        future.wrapped_future.result()


def test_wrapped_future_of_cancelled_run(gates: Gates) -> None:
    gate = gates.new()
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        try:
            blocker = runner.submit(gated, {"event": gate})
            queued = runner.submit(add, {"x": 1})
            wrapped = queued.wrapped_future
            assert queued.cancel() is True
            concurrent.futures.wait([wrapped], timeout=10)
            assert wrapped.done()
            assert wrapped.cancelled() or isinstance(wrapped.exception(), CancelledRun)
        finally:
            gate.set()
        blocker.wait()


# ----------------------------------------------------------------------------- cancel


def test_cancel_a_run_not_started(gates: Gates) -> None:
    gate = gates.new()
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        try:
            blocker = runner.submit(gated, {"event": gate, "value": "b"})
            queued = runner.submit(add, {"x": 1})
            assert queued.cancel() is True
            queued.wait(10)
            assert queued.done()
            assert queued.state.is_cancelled()
            with pytest.raises(CancelledRun):
                queued.result()
            assert isinstance(queued.result(raise_on_failure=False), CancelledRun)
            assert queued.cancel() is False
        finally:
            gate.set()
        assert blocker.result() == "b"
    assert queued.state.is_cancelled()


def test_cancel_a_finished_run_returns_false(runner: ThreadPoolTaskRunner) -> None:
    future = runner.submit(add, {"x": 1})
    future.wait()
    assert future.cancel() is False
    assert future.state.is_completed()
    assert future.result() == 1
    failed = runner.submit(fail, {})
    failed.wait()
    assert failed.cancel() is False
    assert failed.state.is_failed()


@pytest.mark.timeout(30)
def test_cancel_a_running_async_run(runner: ThreadPoolTaskRunner) -> None:
    started = threading.Event()
    future = runner.submit(async_sleeper, {"started": started})
    assert started.wait(10)
    assert future.cancel() is True
    future.wait(10)
    assert future.done()
    assert future.state.is_cancelled()
    with pytest.raises(CancelledRun):
        future.result()


@pytest.mark.timeout(30)
def test_cancel_a_running_sync_run_is_cooperative() -> None:
    started = threading.Event()
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(cooperative, {"started": started})
        assert started.wait(10)
        assert future.cancel() is True
        future.wait(10)
        assert future.done()
        assert future.state.is_cancelled()
        with pytest.raises(CancelledRun):
            future.result()
        assert future.cancel() is False


@pytest.mark.anyio
async def test_cancel_from_async_code(anyio_backend: str) -> None:
    go = anyio.Event()
    async with ThreadPoolTaskRunner(max_workers=1) as runner:
        blocker = runner.submit(async_gated, {"event": go, "value": 1})
        queued = runner.submit(async_add, {"x": 1})
        assert queued.cancel() is True
        with pytest.raises(CancelledRun):
            await queued
        assert queued.state.is_cancelled()
        go.set()
        assert await blocker == 1


# --------------------------------------------------------------------------- the release slot


def test_a_release_set_before_the_end_is_called_once_when_final() -> None:
    calls: list[None] = []
    future: ConcurrentFuture[int] = ConcurrentFuture(None)
    future._release_when_final(lambda: calls.append(None))
    assert calls == []
    assert future._finish(Completed(1))
    assert not future._finish(Completed(2))
    assert calls == [None]


def test_a_release_set_after_the_end_is_called_at_once_and_once() -> None:
    calls: list[None] = []
    future: ConcurrentFuture[int] = ConcurrentFuture(None)
    future._finish(Completed(1))
    future._release_when_final(lambda: calls.append(None))
    assert calls == [None]
    future._finish(Completed(2))
    assert calls == [None]
