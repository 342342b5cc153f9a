"""The porting surface that the corpus does not reach, one test per bullet of the issue."""

from __future__ import annotations

import contextvars
import logging
import statistics
import threading
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, flow, get_run_context, get_run_logger, task
from taskrun.exceptions import MappingMissingIterable, UpstreamTaskError
from taskrun.states import Completed, Failed, State


@task
def add(x: int, y: int = 1) -> int:
    return x + y


@task
def boom() -> int:
    raise ValueError("bad input")


# ----------------------------------------------------------------------- direct calls


def test_direct_call_wait_for_and_return_state() -> None:
    @flow
    def pipeline() -> tuple[int, State[int]]:
        first = add.submit(1)
        value = add(1, wait_for=[first])
        return value, add(2, return_state=True)

    value, state = pipeline()
    assert value == 2
    assert state.is_completed() and state.result() == 3


def test_direct_call_wait_for_a_failed_upstream() -> None:
    @flow
    def pipeline() -> str:
        failed = boom.submit()
        with pytest.raises(UpstreamTaskError, match="boom"):
            add(1, wait_for=[failed])
        return add(1, wait_for=[failed], return_state=True).name

    assert pipeline() == "NotReady"


@pytest.mark.anyio
async def test_async_direct_call_return_state() -> None:
    @task
    async def twice(x: int) -> int:
        return 2 * x

    state = await twice(4, return_state=True)
    assert state.is_completed() and state.result() == 8


def test_map_return_state() -> None:
    with ThreadPoolTaskRunner(max_workers=2):
        states = add.map([1, 2, 3], return_state=True)
    assert [s.result() for s in states] == [2, 3, 4]
    assert all(isinstance(s, State) for s in states)


# ----------------------------------------------------------------------- hooks


def test_hook_decorators_on_a_task() -> None:
    seen: list[tuple[str, str]] = []

    @task(retries=0)
    def flaky(fail: bool) -> str:
        if fail:
            raise RuntimeError("no")
        return "yes"

    @flaky.on_running
    def running(tsk: Any, run: Any, state: State[Any]) -> None:
        seen.append(("running", state.name))

    @flaky.on_completion
    def done(tsk: Any, run: Any, state: State[Any]) -> None:
        seen.append(("completion", state.name))

    @flaky.on_failure
    def failed(tsk: Any, run: Any, state: State[Any]) -> None:
        seen.append(("failure", state.name))

    assert flaky.on_completion == [done]  # still a plain list of hooks
    assert flaky(False) == "yes"
    with pytest.raises(RuntimeError):
        flaky(True)
    assert seen == [("running", "Running"), ("completion", "Completed"),
                    ("running", "Running"), ("failure", "Failed")]


def test_on_crashed_and_on_cancellation_hooks_of_a_task() -> None:
    seen: list[str] = []

    @task(on_crashed=[lambda t, r, s: seen.append(f"crashed:{s.name}")])
    def dies() -> None:
        raise SystemExit(3)

    started = threading.Event()

    @task
    async def waits() -> None:  # async: really cancelled (a sync body cannot be stopped)
        import anyio

        started.set()
        await anyio.sleep(5)

    @waits.on_cancellation
    def cancelled(t: Any, r: Any, s: State[Any]) -> None:
        seen.append(f"cancelled:{s.name}")

    with ThreadPoolTaskRunner(max_workers=2):
        crashed = dies.submit()
        crashed.wait(5)
    with ThreadPoolTaskRunner(max_workers=2):
        running = waits.submit()
        assert started.wait(5)
        assert running.cancel()
        running.wait(5)
    assert crashed.state.is_crashed()
    assert running.state.is_cancelled()
    assert seen == ["crashed:Crashed", "cancelled:Cancelled"]


def test_flow_hooks_list_and_decorator_form() -> None:
    seen: list[str] = []

    @flow(on_completion=[lambda f, r, s: seen.append(f"done {r.flow_run_name} {s.name}")],
          flow_run_name="hooked")
    def ok() -> int:
        return 1

    @flow(retries=1)
    def bad() -> None:
        raise ValueError("oops!")

    @bad.on_failure
    def notify(f: Any, flow_run: Any, state: State[Any]) -> None:
        seen.append(f"{f.name} {state.name} attempt={flow_run.attempt}")

    assert ok() == 1
    with pytest.raises(ValueError, match="oops!"):
        bad()
    assert seen == ["done hooked Completed", "bad Failed attempt=2"]


# ----------------------------------------------------------------------- returned states


def test_a_returned_failed_state_fails_the_run() -> None:
    @task
    def toggle(fail: bool) -> State[Any]:
        if fail:
            return Failed(message="I was instructed to fail.")
        return Completed(data="fine", message="I was instructed to succeed.")

    with ThreadPoolTaskRunner(max_workers=2):
        failing = toggle.submit(True)
        passing = toggle.submit(False)
        failing.wait(5)
        passing.wait(5)
    assert failing.state.is_failed()
    assert failing.state.message == "I was instructed to fail."
    with pytest.raises(RuntimeError, match="instructed to fail"):
        failing.result()
    assert passing.result() == "fine"
    # Directly called, too: the returned Failed fails the call.
    with pytest.raises(RuntimeError, match="instructed to fail"):
        toggle(True)


def test_a_returned_failed_state_is_retried() -> None:
    attempts: list[int] = []

    @task(retries=2)
    def once_failed() -> Any:
        attempts.append(1)
        return Failed(message="not yet") if len(attempts) < 3 else "ok"

    assert once_failed() == "ok"
    assert len(attempts) == 3


# ----------------------------------------------------------------------- methods


class Repo:
    def __init__(self, base: int) -> None:
        self.base = base

    @task
    def plus(self, x: int) -> int:
        return self.base + x

    @task
    @classmethod
    def kind(cls) -> str:
        return cls.__name__

    @task
    @staticmethod
    def double(x: int) -> int:
        return 2 * x


def test_tasks_as_methods_bind_like_functions() -> None:
    repo = Repo(10)
    assert repo.plus(1) == 11
    assert Repo.kind() == "Repo"
    assert Repo.double(4) == 8 and repo.double(5) == 10
    with ThreadPoolTaskRunner(max_workers=2):
        assert repo.plus.submit(2).result() == 12
        assert repo.plus.map([1, 2]).result() == [11, 12]
        assert Repo.kind.submit().result() == "Repo"


# ----------------------------------------------------------------------- flow options


def test_flow_accepts_a_runner_class_and_exposes_its_run_context() -> None:
    seen: dict[str, Any] = {}

    @flow(task_runner=ThreadPoolTaskRunner, version="1.2", flow_run_name="run-{n}")
    def pipeline(n: int) -> int:
        ctx = get_run_context()
        seen.update(flow_name=ctx.flow_name, run=ctx.flow_run_name, params=ctx.parameters,
                    runner=ctx.task_runner)
        get_run_logger().info("in the flow")
        return add.submit(n).result()

    assert pipeline(3) == 4
    assert pipeline.version == "1.2"
    assert seen["flow_name"] == "pipeline" and seen["run"] == "run-3"
    assert seen["params"] == {"n": 3}
    assert isinstance(seen["runner"], ThreadPoolTaskRunner)


def test_validate_parameters_checks_nested_types() -> None:
    @flow
    def typed(xs: list[int], mode: str | None = None, scale: float = 1.0) -> int:
        return len(xs)

    assert typed([1, 2], None, 2) == 2  # an int is a valid float
    with pytest.raises(TypeError, match=r"parameter 'xs' expects list\[int\]"):
        typed([1, "2"])
    with pytest.raises(TypeError, match="parameter 'mode'"):
        typed([1], mode=3)


def test_flow_return_state_and_typed_twin() -> None:
    @flow
    def fails() -> int:
        raise ValueError("x")

    state = fails(return_state=True)
    assert state.is_failed()
    assert fails.call_with_state().is_failed()


# ----------------------------------------------------------------------- futures names


def test_seed_future_names_are_aliases() -> None:
    from taskrun.futures import (
        ConcurrentFuture,
        DistributedFuture,
        FutureList,
        PrefectConcurrentFuture,
        PrefectDistributedFuture,
        PrefectFuture,
        PrefectFutureList,
        TaskFuture,
    )

    assert PrefectFuture is TaskFuture
    assert PrefectConcurrentFuture is ConcurrentFuture
    assert PrefectDistributedFuture is DistributedFuture
    assert PrefectFutureList is FutureList


# ----------------------------------------------------------------------- jitter


def test_retry_jitter_follows_the_clamped_distribution() -> None:
    import random

    from taskrun._jitter import clamped_poisson_interval, lower_clamp_multiple

    random.seed(11)
    draws = [clamped_poisson_interval(10.0, 0.5) for _ in range(20000)]
    low = 10.0 * lower_clamp_multiple(1.5)
    assert min(draws) >= low - 1e-9 and max(draws) <= 15.0 + 1e-9
    assert abs(statistics.fmean(draws) - 10.0) < 0.6  # mean ≈ the delay
    assert min(draws) >= 0

    @task(retries=1, retry_delay_seconds=10, retry_jitter_factor=0.5)
    def jittery() -> None: ...

    delays = [jittery._retry_delay(1) for _ in range(2000)]
    assert low - 1e-9 <= min(delays) and max(delays) <= 15.0 + 1e-9
    assert len(set(delays)) > 1000


# ----------------------------------------------------------------------- errors that point the right way


def test_submit_from_a_user_thread_inside_a_flow_says_how() -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            add.submit(1)
        except RuntimeError as exc:
            errors.append(exc)

    @flow
    def pipeline() -> int:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        # the fix the message gives works
        ctx = contextvars.copy_context()
        out: list[int] = []
        fixed = threading.Thread(target=ctx.run, args=(lambda: out.append(add.submit(1).result()),))
        fixed.start()
        fixed.join()
        return out[0]

    assert pipeline() == 2
    assert errors and "thread" in str(errors[0]) and "copy_context" in str(errors[0])


def test_async_task_called_without_await_is_named() -> None:
    @task
    async def fetch() -> int:
        return 1

    @flow
    def pipeline() -> None:
        add.submit(fetch())  # forgot `await`

    with pytest.raises(TypeError, match=r"parameter 'x' got a coroutine.*without `await`"):
        pipeline()


def test_map_over_a_dict_says_how_to_map_keys_or_items() -> None:
    @task
    def show(item: Any) -> Any:
        return item

    with ThreadPoolTaskRunner(max_workers=1):
        with pytest.raises(MappingMissingIterable, match=r"dicts are passed whole.*\.items\(\)"):
            show.map({"a": 1})
        assert show.map(list({"a": 1}.items())).result() == [("a", 1)]


def test_help_task_lists_every_option() -> None:
    import pydoc

    from taskrun.tasks import _OPTIONS

    text = pydoc.render_doc(task, renderer=pydoc.plaintext)
    for option in _OPTIONS:
        assert f"``{option}``" in text or f"- ``{option}``" in text or option in text, option
    lines = [line for line in (task.__doc__ or "").splitlines() if line.strip().startswith("- ``")]
    listed = {name.strip("`") for line in lines for name in line.strip()[2:].split(":")[0].split(" / ")}
    assert set(_OPTIONS) <= listed


# ----------------------------------------------------------------------- run outcomes


def test_failed_run_in_a_flow_is_visible(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskrun")

    @flow(flow_run_name="visible")
    def pipeline() -> str:
        return boom.submit(return_state=True).name

    assert pipeline() == "Failed"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "ValueError: bad input" in errors[0].getMessage()
    assert errors[0].task_name == "boom" and errors[0].flow_run_name == "visible"
    end = [r for r in caplog.records
           if r.name == "taskrun.flow_runs" and "finished in state" in r.getMessage()]
    assert len(end) == 1 and "1 Failed" in end[0].getMessage()
