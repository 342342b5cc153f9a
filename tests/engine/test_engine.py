"""Run semantics through ThreadPoolTaskRunner: input resolution, annotations,
dependencies, the upstream-failure rule, retries, timeouts, hooks, crashes,
log_prints and cancellation. Sync code uses ``with``; async code ``async with``
on asyncio and trio."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import threading
import time
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
import pytest

from taskrun import (
    TaskFuture,
    ThreadPoolTaskRunner,
    allow_failure,
    exponential_backoff,
    flow,
    get_run_context,
    opaque,
    quote,
    task,
)
from taskrun.exceptions import CancelledRun, CrashedRun, TaskRunTimeout, UpstreamTaskError
from taskrun.states import State, StateType

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------- helpers


@task
def ident(x: Any) -> Any:
    return x


@task
async def aident(x: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    return x


@task
def echo(value: Any) -> Any:
    return value


@task
async def aecho(value: Any) -> Any:
    return value


@task
def fails(msg: str = "upstream failed") -> None:
    raise ValueError(msg)


@task
async def afails(msg: str = "upstream failed") -> None:
    raise ValueError(msg)


@dataclasses.dataclass
class Box:
    item: Any
    label: str = "box"


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    item: Any


class Pair(NamedTuple):
    left: Any
    right: Any


def _wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


async def _await_until(predicate: Any, timeout: float = 10.0) -> bool:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.002)
    return predicate()


def _nested(a: TaskFuture[Any], b: TaskFuture[Any], c: TaskFuture[Any]) -> dict[str, Any]:
    return {
        "list": [a, [b]],
        "tuple": (a, (b, c)),
        "named": Pair(a, b),
        "set": {a, c},
        "frozenset": frozenset({b}),
        "dict": {"k": a, "deep": {"k2": [c]}},
        "box": Box(a),
        "frozen": FrozenBox([b, c]),
        "plain": 5,
    }


EXPECTED_NESTED = {
    "list": [1, [2]],
    "tuple": (1, (2, 3)),
    "named": Pair(1, 2),
    "set": {1, 3},
    "frozenset": frozenset({2}),
    "dict": {"k": 1, "deep": {"k2": [3]}},
    "box": Box(1),
    "frozen": FrozenBox([2, 3]),
    "plain": 5,
}


# --------------------------------------------------------------------------- input resolution


def test_futures_nested_in_parameters_are_resolved_before_the_run() -> None:
    with ThreadPoolTaskRunner() as runner:
        a, b, c = ident.submit(1), ident.submit(2), ident.submit(3)
        result = echo.submit(_nested(a, b, c)).result()
        via_runner = runner.submit(echo, {"value": _nested(a, b, c)}).result()
    assert result == EXPECTED_NESTED
    assert via_runner == EXPECTED_NESTED
    assert isinstance(result["named"], Pair)
    assert isinstance(result["box"], Box)
    assert isinstance(result["frozen"], FrozenBox)


@pytest.mark.anyio
async def test_futures_nested_in_parameters_are_resolved_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        a, b, c = aident.submit(1), ident.submit(2), aident.submit(3)
        result = await aecho.submit(_nested(a, b, c))
        sync_result = await echo.submit(_nested(a, b, c))
    assert result == EXPECTED_NESTED
    assert sync_result == EXPECTED_NESTED


def test_a_future_as_a_direct_parameter_is_resolved() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    with ThreadPoolTaskRunner():
        x = ident.submit(2)
        assert add.submit(x, y=ident.submit(3)).result() == 5


def test_quote_passes_the_future_untouched() -> None:
    @task
    def inspect_value(value: Any) -> tuple[bool, Any]:
        return isinstance(value, TaskFuture), value

    with ThreadPoolTaskRunner():
        upstream = ident.submit(1)
        is_future, value = inspect_value.submit(quote(upstream)).result()
        in_list = inspect_value.submit(quote([upstream])).result()[1]
    assert is_future is True
    assert value is upstream
    assert isinstance(in_list, list) and in_list[0] is upstream


@pytest.mark.anyio
async def test_quote_passes_the_future_untouched_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        upstream = aident.submit(1)
        value = await aecho.submit(quote(upstream))
    assert value is upstream


@task
def spawn_child(x: int) -> TaskFuture[Any]:
    return ident.submit(x)  # a task may return a future of a run it submitted


def test_opaque_resolves_the_future_but_not_its_result() -> None:
    with ThreadPoolTaskRunner():
        outer = spawn_child.submit(5)
        traversed = echo.submit(outer).result()
        opaque_value = echo.submit(opaque(outer)).result()
        nested_opaque = echo.submit([opaque(outer)]).result()
    assert traversed == 5
    assert isinstance(opaque_value, TaskFuture)
    assert opaque_value.result() == 5
    assert isinstance(nested_opaque[0], TaskFuture)


@pytest.mark.anyio
async def test_opaque_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        outer = spawn_child.submit(6)
        assert await aecho.submit(outer) == 6
        value = await aecho.submit(opaque(outer))
    assert isinstance(value, TaskFuture)
    assert value.result() == 6


def test_annotations_are_unwrapped_when_they_hold_no_future() -> None:
    with ThreadPoolTaskRunner():
        assert echo.submit(quote([1, 2])).result() == [1, 2]
        assert echo.submit(allow_failure(3)).result() == 3
        assert echo.submit(opaque({"a": 1})).result() == {"a": 1}


def test_annotations_are_unwrapped_in_direct_calls() -> None:
    assert echo(quote([1, 2])) == [1, 2]
    assert echo(allow_failure(3)) == 3
    with ThreadPoolTaskRunner():
        upstream = ident.submit(4)
        upstream.wait()
        assert echo(quote(upstream)) is upstream
        assert echo(opaque(upstream)) == 4


def test_allow_failure_hands_the_exception_to_the_downstream_run() -> None:
    with ThreadPoolTaskRunner():
        bad = fails.submit("bad input")
        received = echo.submit(allow_failure(bad)).result()
        nested = echo.submit([allow_failure(bad), 1]).result()
    assert isinstance(received, ValueError)
    assert str(received) == "bad input"
    assert isinstance(nested[0], ValueError) and nested[1] == 1


@pytest.mark.anyio
async def test_allow_failure_async(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        bad = afails.submit("bad input")
        received = await aecho.submit(allow_failure(bad))
    assert isinstance(received, ValueError)


def test_allow_failure_of_a_completed_future_gives_its_value() -> None:
    with ThreadPoolTaskRunner():
        assert echo.submit(allow_failure(ident.submit(7))).result() == 7


# --------------------------------------------------------------------------- wait_for / dependencies


def test_wait_for_orders_runs() -> None:
    order: list[str] = []

    @task
    def first() -> None:
        time.sleep(0.05)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    with ThreadPoolTaskRunner(max_workers=4):
        f1 = first.submit()
        f2 = second.submit(wait_for=[f1])
        f2.result()
    assert order == ["first", "second"]


@pytest.mark.anyio
async def test_wait_for_orders_runs_async(anyio_backend: str) -> None:
    order: list[str] = []

    @task
    async def first() -> None:
        await anyio.sleep(0.05)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @task
    async def third() -> None:
        order.append("third")

    async with ThreadPoolTaskRunner(max_workers=4):
        f1 = first.submit()
        f2 = second.submit(wait_for=[f1])
        f3 = third.submit(wait_for=[f2])
        await f3
    assert order == ["first", "second", "third"]


def test_wait_for_with_a_map() -> None:
    order: list[Any] = []

    @task
    def gate() -> None:
        time.sleep(0.05)
        order.append("gate")

    @task
    def item(x: int) -> None:
        order.append(x)

    with ThreadPoolTaskRunner():
        g = gate.submit()
        item.map([1, 2, 3], wait_for=[g]).wait()
    assert order[0] == "gate"
    assert sorted(order[1:]) == [1, 2, 3]


def test_dependencies_are_recorded_in_the_run_context() -> None:
    @task
    def downstream(x: Any, y: Any, z: int) -> dict[str, set[Any]]:
        ctx = get_run_context()
        assert ctx is not None
        return {k: set(v) for k, v in ctx.dependencies.items()}

    with ThreadPoolTaskRunner():
        a, b, c, w = ident.submit(1), ident.submit(2), ident.submit(3), ident.submit(4)
        deps = downstream.submit(a, [b, {"k": c}], 1, wait_for=[w]).result()
    assert deps == {
        "x": {a.task_run_id},
        "y": {b.task_run_id, c.task_run_id},
        "wait_for": {w.task_run_id},
    }


@pytest.mark.anyio
async def test_dependencies_are_recorded_async(anyio_backend: str) -> None:
    @task
    async def downstream(x: Any) -> dict[str, set[Any]]:
        ctx = get_run_context()
        assert ctx is not None
        return {k: set(v) for k, v in ctx.dependencies.items()}

    async with ThreadPoolTaskRunner():
        a, w = aident.submit(1), ident.submit(2)
        deps = await downstream.submit(Box(a), wait_for=[w])
    assert deps == {"x": {a.task_run_id}, "wait_for": {w.task_run_id}}


def test_no_dependencies_without_futures() -> None:
    @task
    def plain(x: int) -> dict[str, Any]:
        ctx = get_run_context()
        assert ctx is not None
        return dict(ctx.dependencies)

    with ThreadPoolTaskRunner():
        assert plain.submit(1).result() == {}


# --------------------------------------------------------------------------- upstream failure


def _assert_not_ready(future: TaskFuture[Any], upstream_name: str) -> None:
    assert future.done() is True
    state = future.state
    assert state.type is StateType.PENDING
    assert state.is_pending()
    assert state.name == "NotReady"
    assert state.is_final()
    assert state.message and upstream_name in state.message
    with pytest.raises(UpstreamTaskError) as info:
        future.result()
    assert upstream_name in str(info.value)
    assert isinstance(future.result(raise_on_failure=False), UpstreamTaskError)


def test_downstream_of_a_failed_run_never_starts() -> None:
    started: list[str] = []

    @task
    def downstream(x: Any) -> None:
        started.append("downstream")

    @task
    def after_wait() -> None:
        started.append("after_wait")

    with ThreadPoolTaskRunner():
        bad = fails.submit()
        by_param = downstream.submit(bad)
        by_nested_param = downstream.submit({"k": [bad]})
        by_wait_for = after_wait.submit(wait_for=[bad])
        chained = downstream.submit(by_param)
        for f in (by_param, by_nested_param, by_wait_for, chained):
            f.wait()
    assert started == []
    for f in (by_param, by_nested_param, by_wait_for):
        _assert_not_ready(f, "fails")
    _assert_not_ready(chained, "downstream")


@pytest.mark.anyio
async def test_downstream_of_a_failed_run_never_starts_async(anyio_backend: str) -> None:
    started: list[str] = []

    @task
    async def downstream(x: Any) -> None:
        started.append("downstream")

    async with ThreadPoolTaskRunner():
        bad = afails.submit()
        by_param = downstream.submit(bad)
        by_wait_for = downstream.submit(1, wait_for=[bad])
        await by_param.wait_async()
        await by_wait_for.wait_async()
        with pytest.raises(UpstreamTaskError):
            await by_param
    assert started == []
    _assert_not_ready(by_param, "afails")
    _assert_not_ready(by_wait_for, "afails")


def test_downstream_of_a_cancelled_run_is_not_ready() -> None:
    release = threading.Event()
    started: list[str] = []

    @task
    def blocker() -> None:
        release.wait(10)

    @task
    def downstream(x: Any) -> None:
        started.append("x")

    with ThreadPoolTaskRunner(max_workers=1):
        b = blocker.submit()
        queued = ident.submit(1)  # waits for the only slot
        down = downstream.submit(queued)
        assert queued.cancel() is True
        release.set()
        down.wait()
        b.result()
    assert started == []
    assert down.state.name == "NotReady"


# --------------------------------------------------------------------------- retries


def test_retries_count_attempts() -> None:
    attempts: list[int] = []

    @task(retries=3)
    def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError(f"attempt {ctx.attempt}")
        return "done"

    with ThreadPoolTaskRunner():
        future = flaky.submit()
        assert future.result() == "done"
    assert attempts == [1, 2, 3]
    assert future.state.is_completed()


def test_retries_exhausted_gives_failed_with_the_last_exception() -> None:
    attempts: list[int] = []

    @task(retries=2)
    def always() -> None:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        raise RuntimeError(f"attempt {ctx.attempt}")

    with ThreadPoolTaskRunner():
        future = always.submit()
        future.wait()
    assert attempts == [1, 2, 3]
    assert future.state.is_failed()
    with pytest.raises(RuntimeError, match="attempt 3"):
        future.result()


@pytest.mark.anyio
async def test_retries_async(anyio_backend: str) -> None:
    attempts: list[int] = []

    @task(retries=2, retry_delay_seconds=0.01)
    async def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        await anyio.lowlevel.checkpoint()
        if ctx.attempt < 3:
            raise RuntimeError("again")
        return "done"

    async with ThreadPoolTaskRunner():
        assert await flaky.submit() == "done"
    assert attempts == [1, 2, 3]


@pytest.mark.parametrize(
    "delay, expected",
    [
        (0.05, [0.05, 0.05]),
        ([0.02, 0.08], [0.02, 0.08]),
        ([0.05], [0.05, 0.05]),
        (exponential_backoff(backoff_factor=0.03), [0.03, 0.06]),
    ],
)
def test_retry_delay_seconds_is_waited_between_attempts(delay: Any, expected: list[float]) -> None:
    times: list[float] = []

    @task(retries=2, retry_delay_seconds=delay)
    def flaky() -> None:
        times.append(time.monotonic())
        if len(times) < 3:
            raise RuntimeError("again")

    with ThreadPoolTaskRunner():
        flaky.submit().result()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == len(expected)
    for gap, minimum in zip(gaps, expected, strict=True):
        assert gap >= minimum * 0.9, (gaps, expected)


def test_retry_states_are_awaiting_retry_then_retrying() -> None:
    holder: dict[str, Any] = {}
    submitted = threading.Event()
    first_failed = threading.Event()
    seen_inside: list[str] = []

    @task(retries=1, retry_delay_seconds=0.3)
    def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        if ctx.attempt == 1:
            submitted.wait(10)
            seen_inside.append(holder["future"].state.name)
            first_failed.set()
            raise RuntimeError("first attempt")
        seen_inside.append(holder["future"].state.name)
        return "ok"

    with ThreadPoolTaskRunner():
        future = flaky.submit()
        holder["future"] = future
        submitted.set()
        first_failed.wait(10)
        assert _wait_until(lambda: future.state.name == "AwaitingRetry")
        awaiting = future.state
        assert future.done() is False
        assert future.result() == "ok"
    assert awaiting.type is StateType.SCHEDULED
    assert awaiting.is_scheduled()
    assert seen_inside == ["Running", "Retrying"]


@pytest.mark.anyio
async def test_retry_states_async(anyio_backend: str) -> None:
    holder: dict[str, Any] = {}
    seen_inside: list[str] = []
    first_failed = anyio.Event()

    @task(retries=1, retry_delay_seconds=0.2)
    async def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        await anyio.lowlevel.checkpoint()
        seen_inside.append(holder["future"].state.name)
        if ctx.attempt == 1:
            first_failed.set()
            raise RuntimeError("first attempt")
        return "ok"

    async with ThreadPoolTaskRunner():
        future = flaky.submit()
        holder["future"] = future
        await first_failed.wait()
        assert await _await_until(lambda: future.state.name == "AwaitingRetry")
        assert future.state.is_scheduled()
        assert await future == "ok"
    assert seen_inside == ["Running", "Retrying"]


def test_retry_jitter_keeps_delays_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[tuple[float, float, float]] = []
    real_uniform = random.uniform

    def spy(a: float, b: float) -> float:
        value = real_uniform(a, b)
        draws.append((a, b, value))
        return value

    monkeypatch.setattr(random, "uniform", spy)
    times: list[float] = []

    @task(retries=3, retry_delay_seconds=0.04, retry_jitter_factor=0.5)
    def flaky() -> None:
        times.append(time.monotonic())
        if len(times) < 4:
            raise RuntimeError("again")

    with ThreadPoolTaskRunner():
        flaky.submit().result()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    # each delay lies in [delay * c, delay * (1 + jitter)], the seed engine's clamped
    # exponential draw (issue 11); c = lower_clamp_multiple(1 + jitter) ~ 0.63
    from taskrun._jitter import lower_clamp_multiple

    assert all(gap >= 0.04 * lower_clamp_multiple(1.5) * 0.9 for gap in gaps), gaps
    assert len(draws) == 3
    for low, high, value in draws:  # the draw is on the distribution's CDF, in [0, 1]
        assert 0 <= low <= value <= high <= 1


def test_retry_jitter_never_makes_a_negative_delay() -> None:
    times: list[float] = []

    @task(retries=2, retry_delay_seconds=0.01, retry_jitter_factor=5)
    def flaky() -> None:
        times.append(time.monotonic())
        if len(times) < 3:
            raise RuntimeError("again")

    with ThreadPoolTaskRunner():
        flaky.submit().result()
    assert len(times) == 3


def test_retry_condition_fn_returning_false_stops_retries() -> None:
    attempts: list[int] = []
    calls: list[tuple[Any, Any, State[Any]]] = []

    def only_value_errors(t: Any, run: Any, state: State[Any]) -> bool:
        calls.append((t, run, state))
        return isinstance(state.result(raise_on_failure=False), ValueError)

    @task(retries=5, retry_condition_fn=only_value_errors)
    def flaky() -> None:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ValueError("retry me")
        raise TypeError("do not retry me")

    with ThreadPoolTaskRunner():
        future = flaky.submit()
        future.wait()
    assert attempts == [1, 2]
    assert future.state.is_failed()
    with pytest.raises(TypeError):
        future.result()
    assert len(calls) == 2
    t, run, state = calls[0]
    assert t is flaky
    assert run.task_run_id == future.task_run_id
    assert state.is_failed()


def test_retry_condition_fn_false_on_first_failure_means_one_attempt() -> None:
    attempts: list[int] = []

    @task(retries=3, retry_condition_fn=lambda t, run, state: False)
    def never_retried() -> None:
        attempts.append(1)
        raise RuntimeError("x")

    with ThreadPoolTaskRunner():
        future = never_retried.submit()
        future.wait()
    assert attempts == [1]
    assert future.state.is_failed()


# --------------------------------------------------------------------------- timeouts


def _assert_timed_out(future: TaskFuture[Any]) -> None:
    state = future.state
    assert state.is_failed()
    assert state.type is StateType.FAILED
    assert state.name == "TimedOut"
    exc = future.result(raise_on_failure=False)
    assert isinstance(exc, TaskRunTimeout)
    assert isinstance(exc, TimeoutError)
    with pytest.raises(TaskRunTimeout):
        future.result()


def test_async_body_is_cancelled_on_timeout_in_a_sync_runner() -> None:
    reached: list[str] = []

    @task(timeout_seconds=0.1)
    async def slow() -> None:
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    with ThreadPoolTaskRunner():
        future = slow.submit()
        future.wait()
        _assert_timed_out(future)
    assert reached == ["finally"]


@pytest.mark.anyio
async def test_async_body_is_cancelled_on_timeout(anyio_backend: str) -> None:
    reached: list[str] = []

    @task(timeout_seconds=0.1)
    async def slow() -> None:
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    async with ThreadPoolTaskRunner():
        future = slow.submit()
        await future.wait_async()
        assert reached == ["finally"]
    _assert_timed_out(future)
    assert reached == ["finally"]


def test_timeout_applies_per_attempt_and_retries() -> None:
    attempts: list[int] = []

    @task(timeout_seconds=0.1, retries=1)
    async def slow_then_fast() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await anyio.sleep(5)
        return "fast"

    with ThreadPoolTaskRunner():
        assert slow_then_fast.submit().result() == "fast"
    assert attempts == [1, 2]


def test_sync_body_timeout_finishes_the_future_while_the_body_still_sleeps() -> None:
    body_done = threading.Event()

    @task(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(0.5)
        body_done.set()

    with ThreadPoolTaskRunner():
        future = slow.submit()
        future.wait()
        assert not body_done.is_set()
        _assert_timed_out(future)
    assert body_done.wait(5)


def test_sync_body_sees_cancel_requested_after_timeout() -> None:
    seen: list[bool] = []
    body_done = threading.Event()

    @task(timeout_seconds=0.1)
    def cooperative() -> None:
        ctx = get_run_context()
        assert ctx is not None
        seen.append(ctx.cancel_requested())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ctx.cancel_requested():
            time.sleep(0.01)
        seen.append(ctx.cancel_requested())
        body_done.set()

    with ThreadPoolTaskRunner():
        future = cooperative.submit()
        future.wait()
        _assert_timed_out(future)
        assert body_done.wait(5)
    assert seen == [False, True]


@pytest.mark.anyio
async def test_sync_body_timeout_in_an_async_runner(anyio_backend: str) -> None:
    seen: list[bool] = []
    body_done = threading.Event()

    @task(timeout_seconds=0.1)
    def cooperative() -> None:
        ctx = get_run_context()
        assert ctx is not None
        time.sleep(0.3)
        seen.append(ctx.cancel_requested())
        body_done.set()

    async with ThreadPoolTaskRunner():
        future = cooperative.submit()
        await future.wait_async()
        assert not body_done.is_set()
        _assert_timed_out(future)
    assert await anyio.to_thread.run_sync(body_done.wait, 5)
    assert seen == [True]


def test_runner_exit_works_after_a_sync_timeout() -> None:
    body_done = threading.Event()

    @task(timeout_seconds=0.05)
    def slow() -> None:
        time.sleep(0.4)
        body_done.set()

    with ThreadPoolTaskRunner(max_workers=1):
        timed_out = slow.submit()
        after = ident.submit(42)  # the slot is given back after the timeout
        assert after.result() == 42
    _assert_timed_out(timed_out)
    assert body_done.wait(5)


# --------------------------------------------------------------------------- hooks


def test_hooks_are_called_with_task_run_and_state() -> None:
    calls: list[tuple[str, Any, Any, str]] = []

    def hook(kind: str) -> Any:
        def record(t: Any, run: Any, state: State[Any]) -> None:
            calls.append((kind, t, run, state.name))

        return record

    @task(on_running=[hook("running")], on_completion=[hook("completion")], on_failure=[hook("failure")])
    def ok() -> int:
        return 1

    bad = task(on_running=[hook("running")], on_completion=[hook("completion")],
               on_failure=[hook("failure")], name="bad")(fails.fn)

    with ThreadPoolTaskRunner():
        good_future = ok.submit()
        bad_future = bad.submit()
        assert good_future.result() == 1
        bad_future.wait()

    good_calls = [c for c in calls if c[1] is ok]
    bad_calls = [c for c in calls if c[1] is bad]
    assert [(c[0], c[3]) for c in good_calls] == [("running", "Running"), ("completion", "Completed")]
    assert [(c[0], c[3]) for c in bad_calls] == [("running", "Running"), ("failure", "Failed")]
    assert all(c[2].task_run_id == good_future.task_run_id for c in good_calls)
    assert all(c[2].task_run_id == bad_future.task_run_id for c in bad_calls)


def test_on_failure_runs_once_after_the_last_retry() -> None:
    failures: list[int] = []

    @task(retries=2, on_failure=[lambda t, run, state: failures.append(run.attempt)])
    def always() -> None:
        raise RuntimeError("no")

    with ThreadPoolTaskRunner():
        always.submit().wait()
    assert failures == [3]


def test_on_failure_is_called_for_a_timeout() -> None:
    states: list[str] = []

    @task(timeout_seconds=0.05, on_failure=[lambda t, run, state: states.append(state.name)])
    async def slow() -> None:
        await anyio.sleep(5)

    with ThreadPoolTaskRunner():
        slow.submit().wait()
    assert states == ["TimedOut"]


def test_async_hooks_in_a_sync_runner() -> None:
    calls: list[str] = []

    async def async_hook(t: Any, run: Any, state: State[Any]) -> None:
        await anyio.sleep(0.01)
        calls.append(f"async-{state.name}")

    @task(on_running=[async_hook], on_completion=[async_hook])
    def ok() -> int:
        return 1

    with ThreadPoolTaskRunner():
        assert ok.submit().result() == 1
    assert calls == ["async-Running", "async-Completed"]


@pytest.mark.anyio
async def test_sync_and_async_hooks_in_an_async_runner(anyio_backend: str) -> None:
    calls: list[str] = []

    async def async_hook(t: Any, run: Any, state: State[Any]) -> None:
        await anyio.sleep(0.01)
        calls.append(f"async-{state.name}")

    def sync_hook(t: Any, run: Any, state: State[Any]) -> None:
        time.sleep(0.01)
        calls.append(f"sync-{state.name}")

    @task(on_completion=[async_hook, sync_hook], on_failure=[sync_hook, async_hook])
    async def ok() -> int:
        return 1

    bad = task(on_failure=[sync_hook, async_hook])(afails.fn)

    async with ThreadPoolTaskRunner():
        assert await ok.submit() == 1
        assert calls == ["async-Completed", "sync-Completed"]
        calls.clear()
        await bad.submit().wait_async()
        assert calls == ["sync-Failed", "async-Failed"]


def test_hooks_have_run_when_result_returns() -> None:
    calls: list[str] = []

    def slow_hook(t: Any, run: Any, state: State[Any]) -> None:
        time.sleep(0.1)
        calls.append(state.name)

    @task(on_completion=[slow_hook])
    def ok() -> int:
        return 1

    @task(on_failure=[slow_hook])
    def bad() -> None:
        raise ValueError("x")

    with ThreadPoolTaskRunner():
        assert ok.submit().result() == 1
        assert calls == ["Completed"]
        bad_future = bad.submit()
        bad_future.wait()
        assert calls == ["Completed", "Failed"]
        assert bad_future.state.is_final()


@pytest.mark.anyio
async def test_hooks_have_run_when_await_returns(anyio_backend: str) -> None:
    calls: list[str] = []

    async def slow_hook(t: Any, run: Any, state: State[Any]) -> None:
        await anyio.sleep(0.05)
        calls.append(state.name)

    @task(on_completion=[slow_hook])
    async def ok() -> int:
        return 1

    async with ThreadPoolTaskRunner():
        assert await ok.submit() == 1
        assert calls == ["Completed"]


def test_a_raising_hook_is_logged_and_does_not_change_the_state(caplog: pytest.LogCaptureFixture) -> None:
    later: list[str] = []

    def raising(t: Any, run: Any, state: State[Any]) -> None:
        raise RuntimeError("hook exploded")

    def after(t: Any, run: Any, state: State[Any]) -> None:
        later.append(state.name)

    @task(on_running=[raising], on_completion=[raising, after])
    def ok() -> int:
        return 1

    @task(on_failure=[raising, after])
    def bad() -> None:
        raise ValueError("task error")

    with caplog.at_level(logging.ERROR):
        with ThreadPoolTaskRunner():
            good_future = ok.submit()
            assert good_future.result() == 1
            bad_future = bad.submit()
            bad_future.wait()
    assert good_future.state.is_completed()
    assert bad_future.state.is_failed()
    with pytest.raises(ValueError, match="task error"):
        bad_future.result()
    assert later == ["Completed", "Failed"]
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) >= 3
    assert any(r.exc_info and "hook exploded" in str(r.exc_info[1]) for r in logged)


@pytest.mark.anyio
async def test_a_raising_async_hook_is_logged(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async def raising(t: Any, run: Any, state: State[Any]) -> None:
        raise RuntimeError("async hook exploded")

    @task(on_completion=[raising])
    async def ok() -> int:
        return 1

    with caplog.at_level(logging.ERROR):
        async with ThreadPoolTaskRunner():
            future = ok.submit()
            assert await future == 1
    assert future.state.is_completed()
    assert any(r.exc_info and "async hook exploded" in str(r.exc_info[1]) for r in caplog.records)


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt()])
def test_base_exception_in_a_sync_task_is_a_crash(error: BaseException) -> None:
    failures: list[str] = []

    @task(on_failure=[lambda t, run, state: failures.append(state.name)])
    def crash() -> None:
        raise error

    with ThreadPoolTaskRunner():
        future = crash.submit()
        future.wait()
        after = ident.submit(1).result()  # the runner keeps working
    assert after == 1
    assert future.state.is_crashed()
    assert future.state.type is StateType.CRASHED
    with pytest.raises(CrashedRun) as info:
        future.result()
    assert info.value.__cause__ is error
    assert failures == ["Crashed"]


@pytest.mark.parametrize("error_type", [SystemExit, KeyboardInterrupt])
@pytest.mark.anyio
async def test_base_exception_in_an_async_task_is_a_crash(
    anyio_backend: str, error_type: type[BaseException]
) -> None:
    error = error_type()

    @task
    async def crash() -> None:
        await anyio.lowlevel.checkpoint()
        raise error

    async with ThreadPoolTaskRunner():
        future = crash.submit()
        await future.wait_async()
        assert await aident.submit(2) == 2
    assert future.state.is_crashed()
    with pytest.raises(CrashedRun) as info:
        await future
    assert info.value.__cause__ is error


# --------------------------------------------------------------------------- log_prints


def _task_run_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "taskrun.task_runs"]


def test_log_prints_routes_print_to_the_run_logger(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)

    @task(log_prints=True)
    def chatty() -> int:
        print("hello from a sync task")
        return 1

    @task(log_prints=True)
    async def achatty() -> int:
        print("hello from an async task")
        return 2

    @task
    def quiet() -> None:
        print("plain print inside a task")

    with ThreadPoolTaskRunner():
        assert chatty.submit().result() == 1
        assert achatty.submit().result() == 2
        quiet.submit().result()
    print("print outside any run")

    messages = _task_run_messages(caplog)
    assert any("hello from a sync task" in m for m in messages)
    assert any("hello from an async task" in m for m in messages)
    assert not any("plain print inside a task" in m for m in messages)
    assert not any("print outside any run" in m for m in messages)
    out = capsys.readouterr().out
    assert "print outside any run" in out
    assert "plain print inside a task" in out
    assert "hello from a sync task" not in out
    assert "hello from an async task" not in out


@pytest.mark.anyio
async def test_log_prints_async_runner(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)

    @task(log_prints=True)
    async def achatty() -> None:
        print("async runner print")

    async with ThreadPoolTaskRunner():
        await achatty.submit()
    print("outside after")
    assert any("async runner print" in m for m in _task_run_messages(caplog))
    out = capsys.readouterr().out
    assert "outside after" in out
    assert "async runner print" not in out


def test_flow_log_prints_turns_it_on_for_its_tasks(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)

    @task
    def chatty() -> None:
        print("printed in a flow task")

    @task(log_prints=False)
    def opted_out() -> None:
        print("opted out print")

    @flow(log_prints=True)
    def chatty_flow() -> None:
        chatty.submit().result()
        opted_out.submit().result()

    @flow
    def quiet_flow() -> None:
        chatty.submit().result()

    chatty_flow()
    messages = _task_run_messages(caplog)
    assert any("printed in a flow task" in m for m in messages)
    assert not any("opted out print" in m for m in messages)
    caplog.clear()
    quiet_flow()
    assert not any("printed in a flow task" in m for m in _task_run_messages(caplog))
    out = capsys.readouterr().out
    assert "opted out print" in out
    assert "printed in a flow task" in out  # from quiet_flow only


# --------------------------------------------------------------------------- cancellation


def test_cancel_a_run_waiting_for_a_slot() -> None:
    release = threading.Event()
    ran: list[str] = []

    @task
    def blocker() -> None:
        release.wait(10)

    @task
    def queued() -> None:
        ran.append("queued")

    with ThreadPoolTaskRunner(max_workers=1):
        b = blocker.submit()
        q = queued.submit()
        assert q.cancel() is True
        assert q.done() is True
        assert q.state.is_cancelled()
        assert q.state.type is StateType.CANCELLED
        release.set()
        b.result()
    assert ran == []
    with pytest.raises(CancelledRun):
        q.result()
    assert q.cancel() is False


def test_cancel_a_run_waiting_for_wait_for() -> None:
    release = threading.Event()
    ran: list[str] = []

    @task
    def gate() -> None:
        release.wait(10)

    @task
    def downstream() -> None:
        ran.append("downstream")

    with ThreadPoolTaskRunner(max_workers=4):
        g = gate.submit()
        d = downstream.submit(wait_for=[g])
        assert d.cancel() is True
        assert d.done() is True
        assert d.state.is_cancelled()
        release.set()
        g.result()
    assert ran == []
    assert d.state.is_cancelled()


@pytest.mark.anyio
async def test_cancel_a_not_started_run_async(anyio_backend: str) -> None:
    release = anyio.Event()
    ran: list[str] = []

    @task
    async def blocker() -> None:
        await release.wait()

    @task
    async def queued() -> None:
        ran.append("queued")

    async with ThreadPoolTaskRunner(max_workers=1):
        b = blocker.submit()
        q = queued.submit()
        w = queued.submit(wait_for=[b])
        assert q.cancel() is True
        assert w.cancel() is True
        assert q.done() and w.done()
        assert q.state.is_cancelled() and w.state.is_cancelled()
        release.set()
        await b
    assert ran == []
    with pytest.raises(CancelledRun):
        await q


@pytest.mark.anyio
async def test_cancel_a_running_async_run(anyio_backend: str) -> None:
    started = anyio.Event()
    reached: list[str] = []

    @task
    async def long() -> None:
        started.set()
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    async with ThreadPoolTaskRunner():
        future = long.submit()
        await started.wait()
        assert future.state.is_running()
        assert future.cancel() is True
        await future.wait_async()
        assert future.state.is_cancelled()
        # the runner still works after a cancel
        assert await aident.submit(3) == 3
    assert reached == ["finally"]
    with pytest.raises(CancelledRun):
        future.result()


def test_cancel_a_running_async_run_in_a_sync_runner() -> None:
    started = threading.Event()
    reached: list[str] = []

    @task
    async def long() -> None:
        started.set()
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    with ThreadPoolTaskRunner():
        future = long.submit()
        assert started.wait(10)
        assert future.cancel() is True
        future.wait()
        assert future.state.is_cancelled()
    assert reached == ["finally"]


def test_cancel_a_running_sync_run() -> None:
    started = threading.Event()
    body_done = threading.Event()
    seen: list[bool] = []

    @task
    def long() -> None:
        ctx = get_run_context()
        assert ctx is not None
        started.set()
        time.sleep(0.3)
        seen.append(ctx.cancel_requested())
        body_done.set()

    with ThreadPoolTaskRunner():
        future = long.submit()
        assert started.wait(10)
        assert future.cancel() is True
        future.wait()
        assert not body_done.is_set()  # finished promptly, while the body sleeps
        assert future.state.is_cancelled()
        with pytest.raises(CancelledRun):
            future.result()
        assert body_done.wait(5)
    assert seen == [True]


@pytest.mark.anyio
async def test_cancel_a_running_sync_run_async(anyio_backend: str) -> None:
    started = threading.Event()
    body_done = threading.Event()
    seen: list[bool] = []

    @task
    def long() -> None:
        ctx = get_run_context()
        assert ctx is not None
        started.set()
        deadline = time.monotonic() + 5
        while not ctx.cancel_requested() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(ctx.cancel_requested())
        body_done.set()

    async with ThreadPoolTaskRunner():
        future = long.submit()
        assert await anyio.to_thread.run_sync(started.wait, 10)
        assert future.cancel() is True
        await future.wait_async()
        assert future.state.is_cancelled()
        assert await anyio.to_thread.run_sync(body_done.wait, 5)
    assert seen == [True]


def test_cancel_of_a_finished_run_returns_false() -> None:
    with ThreadPoolTaskRunner():
        future = ident.submit(1)
        assert future.result() == 1
        assert future.cancel() is False
        assert future.state.is_completed()
