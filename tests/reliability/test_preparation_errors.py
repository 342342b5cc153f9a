"""Whatever goes wrong before or around the body ends that run, and the runner exits (issue 14)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from taskrun import ThreadPoolTaskRunner, allow_failure, task
from taskrun.futures import TaskFuture

from ._helpers import within


@task
def ok() -> int:
    return 1


@task
def take(x: Any) -> str:
    return type(x).__name__


# ------------------------------------------------------------------ task_run_name templates


def test_template_naming_a_missing_parameter_is_rejected_when_the_task_is_made() -> None:
    with pytest.raises(ValueError, match=r"'url'.*not a parameter.*\['n'\]"):
        @task(task_run_name="fetch-{url}")
        def fetch(n: int) -> int:
            return n


def test_template_with_attribute_and_index_fields_checks_the_root_name() -> None:
    @task(task_run_name="run-{item.name}-{items[0]}")
    def good(item: Any, items: list[int]) -> None:
        return None

    assert good.task_run_name == "run-{item.name}-{items[0]}"
    with pytest.raises(ValueError, match="'other'"):
        task(task_run_name="{other.name}")(lambda item: None)


def test_positional_and_broken_templates_are_rejected() -> None:
    with pytest.raises(ValueError, match="positional"):
        task(task_run_name="run-{}")(lambda x: x)
    with pytest.raises(ValueError, match="not a valid template"):
        task(task_run_name="run-{x")(lambda x: x)


def test_with_options_checks_the_template_against_the_signature() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        take.with_options(task_run_name="t-{nope}")


def _final_with_dependant(runner: ThreadPoolTaskRunner, bad: Any, params: dict[str, Any]) -> tuple[
        TaskFuture[Any], TaskFuture[Any], TaskFuture[Any]]:
    future = runner.submit(bad, params)
    dependant = runner.submit(ok, {}, wait_for=[future])
    tolerant = runner.submit(take, {"x": allow_failure(future)})
    for f in (future, dependant, tolerant):
        f.wait(timeout=10)
        assert f.done(), f"{f!r} never reached a final state"
    return future, dependant, tolerant


def test_template_failing_at_run_time_fails_the_run_and_admits_dependants() -> None:
    @task(task_run_name="fetch-{url}")
    def loose(**kwargs: Any) -> int:  # **kwargs: the template cannot be checked up front
        return 1

    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future, dependant, tolerant = _final_with_dependant(runner, loose, {"n": 1})
            assert future.state.is_failed(), future.state
            assert "url" in (future.state.message or "")
            assert dependant.state.name == "NotReady"
            assert tolerant.state.is_completed()

    within(20, scenario, "a runner whose run has a bad name")


def test_name_callable_raising_fails_the_run() -> None:
    def naming() -> str:
        raise LookupError("no name today")

    named = ok.with_options(task_run_name=naming)

    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future, dependant, _ = _final_with_dependant(runner, named, {})
            assert future.state.type.name in ("FAILED", "CRASHED"), future.state
            assert "no name today" in (future.state.message or "")
            assert dependant.state.name == "NotReady"

    within(20, scenario, "a runner whose run's name callable raises")


# ------------------------------------------------------------------ parameters that break traversal


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


@dataclasses.dataclass
class Link:
    next: Link | None


def _long_chain(length: int) -> Link:
    head: Link | None = None
    for _ in range(length):
        head = Link(head)
    assert head is not None
    return head


@dataclasses.dataclass
class Unset:
    x: int = dataclasses.field(init=False)


def _check_ends(params: dict[str, Any], expected_error: type[BaseException]) -> None:
    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future, dependant, _ = _final_with_dependant(runner, take, params)
            if future.state.is_completed():
                assert dependant.state.is_completed()
                return
            assert future.state.type.name in ("FAILED", "CRASHED"), future.state
            error = future.state.result(raise_on_failure=False)
            cause = getattr(error, "__cause__", None) or error
            assert isinstance(cause, expected_error) or expected_error.__name__ in (
                future.state.message or ""), future.state
            assert dependant.state.name == "NotReady"

    within(30, scenario, "a runner given parameters that break traversal")


def test_600_deep_dicts_end_the_run() -> None:
    _check_ends({"x": _deep_dict(600)}, RecursionError)


def test_3000_long_linked_dataclass_ends_the_run() -> None:
    _check_ends({"x": _long_chain(3000)}, RecursionError)


def test_dataclass_with_an_unset_field_ends_the_run_with_the_real_error() -> None:
    def scenario() -> None:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            future, dependant, _ = _final_with_dependant(runner, take, {"x": Unset()})
            # the body never touches x.x; only traversal can fail, and it must not strand the run
            message = future.state.message or ""
            assert future.state.is_completed() or "AttributeError" in message, future.state
            if not future.state.is_completed():
                assert dependant.state.name == "NotReady"

    within(20, scenario, "a runner given a dataclass with an unset field")


@pytest.mark.anyio
async def test_preparation_errors_under_async_with() -> None:
    import anyio

    async with ThreadPoolTaskRunner(max_workers=2) as runner:
        with anyio.fail_after(10):
            future = runner.submit(take, {"x": _deep_dict(600)})
            dependant = runner.submit(ok, {}, wait_for=[future])
            await dependant.wait_async()
            await future.wait_async()
        assert future.done() and dependant.done()
