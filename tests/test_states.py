"""States: StateType, the factories, result(raise_on_failure), is_* and is_final."""

from __future__ import annotations

import datetime
import gc
import threading

import pytest

from taskrun import ThreadPoolTaskRunner, get_run_context, task
from taskrun.exceptions import CancelledRun, CrashedRun, TaskRunTimeout, UpstreamTaskError
from taskrun.states import Cancelled, Completed, Crashed, Failed, Pending, Running, State, StateType

PREDICATES = ["is_scheduled", "is_pending", "is_running", "is_completed", "is_failed", "is_crashed",
              "is_cancelled"]


def _true_predicates(state: State) -> set[str]:
    return {p for p in PREDICATES if getattr(state, p)()}


def not_ready(message: str = "upstream run 'x' ended Failed") -> State:
    return Pending(name="NotReady", message=message)


# ----------------------------------------------------------------------------- StateType


def test_state_type_members() -> None:
    assert {t.name for t in StateType} == {
        "SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"
    }


@pytest.mark.parametrize("kind", list(StateType))
def test_state_built_directly_has_type_and_default_name(kind: StateType) -> None:
    state = State(kind)
    assert state.type is kind
    assert state.name == kind.name.capitalize()
    assert state.message is None


# ----------------------------------------------------------------------------- factories


def test_pending_factory() -> None:
    state = Pending()
    assert state.type is StateType.PENDING
    assert state.name == "Pending"
    assert _true_predicates(state) == {"is_pending"}
    assert not state.is_final()


def test_running_factory() -> None:
    state = Running()
    assert state.type is StateType.RUNNING
    assert state.name == "Running"
    assert _true_predicates(state) == {"is_running"}
    assert not state.is_final()


def test_running_factory_with_name() -> None:
    state = Running(name="Retrying")
    assert state.is_running()
    assert state.name == "Retrying"


def test_completed_factory_and_result() -> None:
    value = {"a": [1, 2]}
    state = Completed(data=value)
    assert state.type is StateType.COMPLETED
    assert state.name == "Completed"
    assert _true_predicates(state) == {"is_completed"}
    assert state.is_final()
    assert state.result() is value
    assert state.result(raise_on_failure=False) is value


def test_completed_with_none_result() -> None:
    state = Completed()
    assert state.result() is None


def test_failed_factory_raises_the_exception() -> None:
    error = ValueError("bad input")
    state = Failed(exception=error, message="it failed")
    assert state.type is StateType.FAILED
    assert state.name == "Failed"
    assert state.message == "it failed"
    assert _true_predicates(state) == {"is_failed"}
    assert state.is_final()
    with pytest.raises(ValueError, match="bad input") as info:
        state.result()
    assert info.value is error
    assert state.result(raise_on_failure=False) is error


def test_failed_factory_default_message_names_the_exception() -> None:
    state = Failed(exception=KeyError("k"))
    assert state.message is not None and "KeyError" in state.message


def test_crashed_factory_raises_crashed_run_with_cause() -> None:
    original = SystemExit(3)
    state = Crashed(exception=original)
    assert state.type is StateType.CRASHED
    assert state.name == "Crashed"
    assert _true_predicates(state) == {"is_crashed"}
    assert state.is_final()
    with pytest.raises(CrashedRun) as info:
        state.result()
    assert info.value.__cause__ is original
    returned = state.result(raise_on_failure=False)
    assert isinstance(returned, CrashedRun)
    assert returned.__cause__ is original


def test_crashed_factory_without_exception() -> None:
    state = Crashed(message="worker died")
    assert state.message == "worker died"
    with pytest.raises(CrashedRun):
        state.result()


def test_cancelled_factory_raises_cancelled_run() -> None:
    state = Cancelled(message="stop")
    assert state.type is StateType.CANCELLED
    assert state.name == "Cancelled"
    assert state.message == "stop"
    assert _true_predicates(state) == {"is_cancelled"}
    assert state.is_final()
    with pytest.raises(CancelledRun):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), CancelledRun)


def test_not_ready_is_final_pending_and_raises_upstream_error() -> None:
    state = not_ready("upstream run 'load' ended Failed")
    assert state.type is StateType.PENDING
    assert state.name == "NotReady"
    assert _true_predicates(state) == {"is_pending"}
    assert state.is_final()
    with pytest.raises(UpstreamTaskError, match="load"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), UpstreamTaskError)


def test_scheduled_state() -> None:
    state = State(StateType.SCHEDULED, name="AwaitingRetry")
    assert state.name == "AwaitingRetry"
    assert _true_predicates(state) == {"is_scheduled"}
    assert not state.is_final()


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (Pending(), False),
        (Running(), False),
        (State(StateType.SCHEDULED), False),
        (Completed(data=1), True),
        (Failed(exception=ValueError()), True),
        (Crashed(exception=RuntimeError()), True),
        (Cancelled(), True),
        (not_ready(), True),
    ],
    ids=lambda v: v.name if isinstance(v, State) else str(v),
)
def test_is_final(state: State, final: bool) -> None:
    assert state.is_final() is final


def test_timestamp_is_aware_and_recent() -> None:
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    state = Completed(data=1)
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    assert isinstance(state.timestamp, datetime.datetime)
    assert state.timestamp.tzinfo is not None
    assert before <= state.timestamp <= after


def test_repr_names_the_state() -> None:
    assert "Completed" in repr(Completed(data=1))
    assert "NotReady" in repr(not_ready())


# ----------------------------------------------------------------------------- states of real runs


@task
def ok_task(x: int) -> int:
    return x + 1


@task
def failing_task() -> None:
    raise ValueError("from the task")


@task(retries=2)
def failing_differently() -> None:
    attempt = get_run_context().attempt
    raise RuntimeError(f"attempt {attempt}")


@task
def exiting_task() -> None:
    raise SystemExit(7)


@task(timeout_seconds=0.05)
async def slow_async_task() -> None:
    import anyio

    await anyio.sleep(5)


@task
def gated(event: threading.Event) -> int:
    event.wait(10)
    return 1


@task
def downstream(x: int) -> int:
    return x


def test_completed_run_state() -> None:
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(ok_task, {"x": 1})
        future.wait()
    assert future.state.is_completed()
    assert future.state.name == "Completed"
    assert future.state.result() == 2


def test_failed_run_state_raises_the_task_exception() -> None:
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(failing_task, {})
        future.wait()
    state = future.state
    assert state.is_failed() and state.is_final()
    with pytest.raises(ValueError, match="from the task"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), ValueError)


def test_failed_after_retries_raises_the_last_attempts_exception() -> None:
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(failing_differently, {})
        future.wait()
    assert future.state.is_failed()
    with pytest.raises(RuntimeError, match="attempt 3"):
        future.state.result()


def test_base_exception_in_task_gives_crashed() -> None:
    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(exiting_task, {})
        future.wait()
    state = future.state
    assert state.is_crashed() and state.is_final()
    with pytest.raises(CrashedRun) as info:
        state.result()
    assert isinstance(info.value.__cause__, SystemExit)


def _check_timed_out(state: State) -> None:
    assert state.is_failed()
    assert state.name == "TimedOut"
    with pytest.raises(TaskRunTimeout):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), TimeoutError)


def test_timeout_gives_failed_timed_out() -> None:
    try:
        with ThreadPoolTaskRunner() as runner:
            future = runner.submit(slow_async_task, {})
            future.wait()
    finally:
        gc.collect()  # report an un-awaited task coroutine here, not in a later test
    _check_timed_out(future.state)


@pytest.mark.anyio
async def test_timeout_gives_failed_timed_out_async(anyio_backend: str) -> None:
    error = None
    try:
        async with ThreadPoolTaskRunner() as runner:
            future = runner.submit(slow_async_task, {})
            await future.wait_async()
    except BaseException as exc:  # kept as text so nothing of the run outlives this test
        error = f"{type(exc).__name__}: {exc}"
    gc.collect()
    assert error is None, f"leaving the runner raised {error}"
    _check_timed_out(future.state)


def test_cancelled_before_start_state() -> None:
    event = threading.Event()
    with ThreadPoolTaskRunner(max_workers=1) as runner:
        blocker = runner.submit(gated, {"event": event})
        queued = runner.submit(ok_task, {"x": 1})
        assert queued.cancel() is True
        event.set()
        blocker.wait()
    assert queued.state.is_cancelled() and queued.state.is_final()
    with pytest.raises(CancelledRun):
        queued.state.result()


def test_not_ready_run_state() -> None:
    with ThreadPoolTaskRunner() as runner:
        upstream = runner.submit(failing_task, {})
        down = runner.submit(downstream, {"x": upstream})
        down.wait()
    state = down.state
    assert state.is_pending()
    assert state.name == "NotReady"
    assert state.is_final()
    assert down.done()
    assert state.message is not None and "failing_task" in state.message
    with pytest.raises(UpstreamTaskError):
        down.result()
