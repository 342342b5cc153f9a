"""Tests of ``taskrun.tasks``: the ``@task`` decorator, its options, direct calls,
submission helpers, ``with_options``, pickling and the helper functions."""

from __future__ import annotations

import datetime
import inspect
import pickle
import threading
import time

import anyio
import anyio.lowlevel
import pytest

from taskrun import (
    Task,
    ThreadPoolTaskRunner,
    exponential_backoff,
    get_run_context,
    task,
    task_input_hash,
)
from taskrun.exceptions import ParameterBindError, TaskRunTimeout
from taskrun.states import State

# --------------------------------------------------------------------------- module-level tasks


@task
def add(x: int, y: int = 10) -> int:
    return x + y


@task(name="async-add", retries=1, tags=["pickled"])
async def async_add(x: int, y: int = 10) -> int:
    await anyio.lowlevel.checkpoint()
    return x + y


@task
def boom() -> None:
    raise ValueError("boom")


def _hook(task: object, run: object, state: object) -> None:
    pass


def _condition(task: object, run: object, state: object) -> bool:
    return True


# --------------------------------------------------------------------------- decorator forms


def test_bare_decorator_makes_a_task() -> None:
    def double(x: int) -> int:
        """Doubles x."""
        return 2 * x

    t = task(double)
    assert isinstance(t, Task)
    assert t.fn is double
    assert t.name == "double"
    assert t.isasync is False
    assert t.tags == frozenset()
    assert t.retries == 0
    assert t.timeout_seconds is None
    assert t(4) == 8


def test_decorator_with_parentheses_and_no_options() -> None:
    @task()
    def one() -> int:
        return 1

    assert isinstance(one, Task)
    assert one.name == "one"
    assert one() == 1


def test_async_function_is_detected() -> None:
    @task
    async def coro_fn() -> int:
        return 1

    assert coro_fn.isasync is True


def test_every_documented_option_is_accepted_and_stored() -> None:
    async def on_running_async(task: object, run: object, state: object) -> None:
        pass

    @task(
        name="custom",
        description="a description",
        tags=["a", "b"],
        task_run_name="run-{x}",
        retries=3,
        retry_delay_seconds=[0.1, 0.2],
        retry_jitter_factor=0.5,
        retry_condition_fn=_condition,
        timeout_seconds=2.5,
        on_completion=[_hook],
        on_failure=[_hook],
        on_running=[on_running_async],
        log_prints=True,
        persist_result=False,
    )
    def fn(x: int) -> int:
        return x

    assert fn.name == "custom"
    assert fn.description == "a description"
    assert fn.tags == {"a", "b"}
    assert fn.task_run_name == "run-{x}"
    assert fn.retries == 3
    assert list(fn.retry_delay_seconds) == [0.1, 0.2]  # type: ignore[arg-type]
    assert fn.retry_jitter_factor == 0.5
    assert fn.retry_condition_fn is _condition
    assert fn.timeout_seconds == 2.5
    assert list(fn.on_completion) == [_hook]
    assert list(fn.on_failure) == [_hook]
    assert list(fn.on_running) == [on_running_async]
    assert fn.log_prints is True
    assert fn(3) == 3


def test_description_defaults_to_docstring() -> None:
    @task
    def documented() -> None:
        """The docstring."""

    assert documented.description == "The docstring."


def test_retry_delay_seconds_number_and_callable_are_accepted() -> None:
    @task(retries=2, retry_delay_seconds=0.5)
    def number() -> None: ...

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
    def backoff() -> None: ...

    assert number.retry_delay_seconds == 0.5
    assert list(backoff.retry_delay_seconds) == [1, 2, 4]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- invalid options


@pytest.mark.parametrize("retries", [-1, -10])
def test_negative_retries_is_a_clear_error(retries: int) -> None:
    with pytest.raises(ValueError, match="retries"):
        task(retries=retries)(lambda: None)


def test_non_integer_retries_is_a_clear_error() -> None:
    with pytest.raises((TypeError, ValueError), match="retries"):
        task(retries="3")(lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [-1, [0.1, -0.5], lambda retries: [-1] * retries])
def test_negative_retry_delay_is_a_clear_error(delay: object) -> None:
    with pytest.raises(ValueError, match="retry_delay_seconds"):
        task(retries=2, retry_delay_seconds=delay)(lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [object(), "soon", [None]])
def test_wrong_type_of_retry_delay_is_a_clear_error(delay: object) -> None:
    with pytest.raises((TypeError, ValueError), match="retry_delay_seconds"):
        task(retries=2, retry_delay_seconds=delay)(lambda: None)  # type: ignore[arg-type]


def test_negative_jitter_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="retry_jitter_factor"):
        task(retry_jitter_factor=-0.1)(lambda: None)


@pytest.mark.parametrize("timeout", [0, -1])
def test_non_positive_timeout_is_a_clear_error(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        task(timeout_seconds=timeout)(lambda: None)


def test_unknown_option_name_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="retires"):
        task(retires=3)(lambda: None)  # type: ignore[call-overload]


@pytest.mark.parametrize("hook_option", ["on_completion", "on_failure", "on_running"])
def test_non_callable_hook_is_a_clear_error(hook_option: str) -> None:
    with pytest.raises(TypeError, match=hook_option):
        task(**{hook_option: [_hook, 42]})(lambda: None)


def test_non_callable_retry_condition_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="retry_condition_fn"):
        task(retry_condition_fn=True)(lambda: None)  # type: ignore[arg-type]


def test_non_string_tag_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="tags"):
        task(tags=["ok", 3])(lambda: None)  # type: ignore[list-item]


def test_task_of_a_non_callable_is_an_error() -> None:
    with pytest.raises(TypeError):
        task(42)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "options",
    [
        {"cache_key_fn": task_input_hash},
        {"cache_key_fn": task_input_hash, "cache_expiration": datetime.timedelta(minutes=5)},
        {"persist_result": True},
    ],
)
def test_persistence_options_turn_results_on(options: dict[str, object]) -> None:
    assert task(**options)(lambda: None)._results is not None
    assert add.with_options(**options)._results is not None
    assert add._results is None


def test_cache_expiration_without_caching_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ValueError, match="cache_policy"):
        task(cache_expiration=datetime.timedelta(minutes=5))(lambda: None)


# --------------------------------------------------------------------------- direct calls


def test_direct_call_of_sync_task_returns_its_value() -> None:
    assert add(1, 2) == 3
    assert add(1) == 11
    assert add(x=5, y=5) == 10


def test_direct_call_of_async_task_returns_a_coroutine() -> None:
    coro = async_add(1, 2)
    assert inspect.iscoroutine(coro)
    assert anyio.run(lambda: coro) == 3


@pytest.mark.anyio
async def test_direct_call_of_async_task_awaited(anyio_backend: str) -> None:
    assert await async_add(2, y=3) == 5


def test_direct_call_raises_the_task_exception() -> None:
    with pytest.raises(ValueError, match="boom"):
        boom()


def test_direct_call_with_bad_arguments_raises_parameter_bind_error() -> None:
    with pytest.raises(ParameterBindError):
        add(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(ParameterBindError):
        add(z=1)  # type: ignore[call-arg]


def test_direct_call_applies_retries() -> None:
    attempts: list[int] = []

    @task(retries=2)
    def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)}")
        return "ok"

    assert flaky() == "ok"
    assert attempts == [1, 2, 3]


def test_direct_call_raises_the_last_attempts_exception_when_retries_run_out() -> None:
    calls: list[int] = []

    @task(retries=1)
    def always_fails() -> None:
        calls.append(1)
        raise RuntimeError(f"attempt {len(calls)}")

    with pytest.raises(RuntimeError, match="attempt 2"):
        always_fails()
    assert len(calls) == 2


@pytest.mark.anyio
async def test_direct_call_of_async_task_applies_retries(anyio_backend: str) -> None:
    attempts: list[int] = []

    @task(retries=2)
    async def flaky() -> str:
        ctx = get_run_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        await anyio.lowlevel.checkpoint()
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "ok"

    assert await flaky() == "ok"
    assert attempts == [1, 2, 3]


@pytest.mark.timeout(30)
def test_direct_call_of_sync_task_applies_timeout() -> None:
    finished = threading.Event()

    @task(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(0.5)
        finished.set()

    with pytest.raises(TaskRunTimeout) as info:
        slow()
    assert isinstance(info.value, TimeoutError)
    assert not finished.is_set()
    finished.wait(5)  # let the body end before the thread check


@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_direct_call_of_async_task_applies_timeout(anyio_backend: str) -> None:
    reached: list[str] = []

    @task(timeout_seconds=0.1)
    async def slow() -> None:
        try:
            await anyio.sleep(5)
            reached.append("after sleep")
        finally:
            reached.append("finally")

    with pytest.raises(TaskRunTimeout):
        await slow()
    assert reached == ["finally"]


def test_direct_call_applies_hooks() -> None:
    seen: list[tuple[str, object, str]] = []

    def record(kind: str):  # type: ignore[no-untyped-def]
        def hook(t: Task, run: object, state: State) -> None:  # type: ignore[type-arg]
            seen.append((kind, t, state.name))

        return hook

    @task(on_running=[record("running")], on_completion=[record("completion")],
          on_failure=[record("failure")])
    def ok() -> int:
        return 1

    assert ok() == 1
    assert seen == [("running", ok, "Running"), ("completion", ok, "Completed")]

    seen.clear()
    failing = task(on_failure=[record("failure")], on_completion=[record("completion")])(boom.fn)
    with pytest.raises(ValueError):
        failing()
    assert seen == [("failure", failing, "Failed")]


@pytest.mark.anyio
async def test_direct_call_of_async_task_applies_hooks(anyio_backend: str) -> None:
    seen: list[str] = []

    async def async_hook(t: Task, run: object, state: State) -> None:  # type: ignore[type-arg]
        await anyio.lowlevel.checkpoint()
        seen.append(f"async:{state.name}")

    def sync_hook(t: Task, run: object, state: State) -> None:  # type: ignore[type-arg]
        seen.append(f"sync:{state.name}")

    @task(on_completion=[async_hook, sync_hook])
    async def ok() -> int:
        return 1

    assert await ok() == 1
    assert seen == ["async:Completed", "sync:Completed"]


def test_direct_call_outside_a_run_has_its_own_run_context() -> None:
    seen: dict[str, object] = {}

    @task
    def which(x: int) -> None:
        ctx = get_run_context()
        assert ctx is not None
        seen.update(task=ctx.task, parameters=dict(ctx.parameters), attempt=ctx.attempt)

    which(7)
    assert seen == {"task": which, "parameters": {"x": 7}, "attempt": 1}
    assert get_run_context() is None


def test_direct_call_inside_a_task_creates_a_child_run() -> None:
    seen: dict[str, object] = {}

    @task
    def child() -> None:
        ctx = get_run_context()
        assert ctx is not None
        seen["child_id"] = ctx.task_run_id
        seen["child_task"] = ctx.task

    @task
    def parent() -> None:
        ctx = get_run_context()
        assert ctx is not None
        seen["parent_id"] = ctx.task_run_id
        child()
        after = get_run_context()
        assert after is not None
        seen["parent_after_id"] = after.task_run_id
        seen["parent_after_task"] = after.task

    with ThreadPoolTaskRunner(max_workers=1):
        parent.submit().result()

    assert seen["child_task"] is child
    assert seen["child_id"] != seen["parent_id"]
    assert seen["parent_after_id"] == seen["parent_id"]
    assert seen["parent_after_task"] is parent


@pytest.mark.anyio
async def test_direct_call_inside_an_async_task_creates_a_child_run(anyio_backend: str) -> None:
    seen: dict[str, object] = {}

    @task
    async def child() -> int:
        ctx = get_run_context()
        assert ctx is not None
        seen["child_id"] = ctx.task_run_id
        seen["child_task"] = ctx.task
        return 5

    @task
    async def parent() -> int:
        ctx = get_run_context()
        assert ctx is not None
        seen["parent_id"] = ctx.task_run_id
        value = await child()
        after = get_run_context()
        assert after is not None
        seen["parent_after_id"] = after.task_run_id
        return value

    async with ThreadPoolTaskRunner(max_workers=1):
        assert await parent.submit() == 5

    assert seen["child_task"] is child
    assert seen["child_id"] != seen["parent_id"]
    assert seen["parent_after_id"] == seen["parent_id"]


# --------------------------------------------------------------------------- submit / map


def test_submit_outside_a_runner_says_how_to_fix_it() -> None:
    with pytest.raises(RuntimeError, match=r"(?i)flow|with ThreadPoolTaskRunner"):
        add.submit(1)


def test_map_outside_a_runner_says_how_to_fix_it() -> None:
    with pytest.raises(RuntimeError, match=r"(?i)flow|with ThreadPoolTaskRunner"):
        add.map([1, 2])


def test_submit_after_the_runner_exited_is_refused() -> None:
    with ThreadPoolTaskRunner():
        pass
    with pytest.raises(RuntimeError):
        add.submit(1)


def test_submit_and_map_return_results() -> None:
    with ThreadPoolTaskRunner():
        assert add.submit(1, 2).result() == 3
        assert add.submit(1).result() == 11
        assert add.map([1, 2, 3], y=1).result() == [2, 3, 4]


@pytest.mark.parametrize(
    "args, kwargs",
    [((1, 2, 3), {}), ((), {}), ((1,), {"z": 2}), ((1,), {"x": 1})],
)
def test_submit_with_bad_arguments_raises_parameter_bind_error(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with ThreadPoolTaskRunner():
        with pytest.raises(ParameterBindError):
            add.submit(*args, **kwargs)


def test_map_with_bad_arguments_raises_parameter_bind_error() -> None:
    with ThreadPoolTaskRunner():
        with pytest.raises(ParameterBindError):
            add.map([1, 2], z=[3, 4])


def _one(x): ...  # type: ignore[no-untyped-def]
def _two(x, y=2): ...  # type: ignore[no-untyped-def]
def _mixed(a, b, c=3, *, d, e=5): ...  # type: ignore[no-untyped-def]
def _keyword_only(*, k=1): ...  # type: ignore[no-untyped-def]
def _none(): ...  # type: ignore[no-untyped-def]


@pytest.mark.parametrize("fn", [_one, _two, _mixed, _keyword_only, _none])
def test_binding_matches_inspect_signature_bind(fn: object) -> None:
    """Signatures of named parameters bind without inspect; the result (its order
    too) and every refusal must be exactly what Signature.bind gives."""
    signature = inspect.signature(fn)  # type: ignore[arg-type]
    bound_task = task(fn)  # type: ignore[call-overload]
    calls = [(args, kwargs) for args in [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]
             for kwargs in [{}, {"x": 9}, {"y": 8}, {"d": 4}, {"e": 1, "d": 2}, {"c": 0, "d": 1},
                            {"unknown": 1}, {"a": 1, "b": 2, "d": 3}, {"k": 2}, {"b": 1}]]
    for args, kwargs in calls:
        for defaults in (True, False):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                with pytest.raises(ParameterBindError):
                    bound_task.bind(args, kwargs, defaults)
                continue
            if defaults:
                bound.apply_defaults()
            got = bound_task.bind(args, kwargs, defaults)
            assert list(got.items()) == list(bound.arguments.items()), (args, kwargs, defaults)


def test_parameter_bind_error_is_a_type_error() -> None:
    assert issubclass(ParameterBindError, TypeError)


def test_submit_with_return_state_gives_the_final_state() -> None:
    with ThreadPoolTaskRunner():
        state = add.submit(1, 2, return_state=True)
        failed = boom.submit(return_state=True)
    assert isinstance(state, State)
    assert state.is_completed()
    assert state.result() == 3
    assert isinstance(failed, State)
    assert failed.is_failed()
    assert isinstance(failed.result(raise_on_failure=False), ValueError)
    with pytest.raises(ValueError, match="boom"):
        failed.result()


@pytest.mark.anyio
async def test_async_task_submit_and_map(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        assert await async_add.submit(1, 2) == 3
        assert await async_add.map([1, 2]).result_async() == [11, 12]


# --------------------------------------------------------------------------- with_options


def test_with_options_returns_a_copy_with_options_replaced() -> None:
    @task(name="orig", retries=1, tags=["t"], on_completion=[_hook], timeout_seconds=5)
    def fn(x: int) -> int:
        return x

    copy = fn.with_options(retries=4, name="renamed", timeout_seconds=1.5)
    assert copy is not fn
    assert isinstance(copy, Task)
    assert copy.fn is fn.fn
    assert (copy.name, copy.retries, copy.timeout_seconds) == ("renamed", 4, 1.5)
    # options not given are carried over
    assert copy.tags == {"t"}
    assert list(copy.on_completion) == [_hook]
    # the original is unchanged
    assert (fn.name, fn.retries, fn.timeout_seconds) == ("orig", 1, 5)
    assert copy(3) == 3


def test_with_options_copy_behaves_with_new_options() -> None:
    calls: list[int] = []

    @task
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError("first")
        return "ok"

    with pytest.raises(RuntimeError):
        flaky()
    calls.clear()
    assert flaky.with_options(retries=1)() == "ok"
    assert len(calls) == 2


def test_with_options_rejects_unknown_and_invalid_options() -> None:
    with pytest.raises(TypeError, match="bogus"):
        add.with_options(bogus=1)
    with pytest.raises(ValueError, match="retries"):
        add.with_options(retries=-1)


# --------------------------------------------------------------------------- pickling


def test_module_level_task_pickles_by_reference() -> None:
    assert pickle.loads(pickle.dumps(add)) is add
    assert pickle.loads(pickle.dumps(async_add)) is async_add
    assert pickle.loads(pickle.dumps(boom, protocol=pickle.HIGHEST_PROTOCOL)) is boom


# --------------------------------------------------------------------------- task_run_name


def test_task_run_name_template_is_filled_from_parameters() -> None:
    @task(task_run_name="load-{city}-{day}")
    def load(city: str, day: int = 1) -> str:
        ctx = get_run_context()
        assert ctx is not None
        return ctx.task_run_name

    assert load("paris", day=3) == "load-paris-3"
    with ThreadPoolTaskRunner():
        assert load.submit("oslo", 2).result() == "load-oslo-2"
        assert load.map(["a", "b"], day=[5, 6]).result() == ["load-a-5", "load-b-6"]


def test_task_run_name_template_may_name_a_parameter_left_at_its_default() -> None:
    @task(task_run_name="load-{city}-{day}")
    def load(city: str, day: int = 1) -> str:
        ctx = get_run_context()
        assert ctx is not None
        return ctx.task_run_name

    assert load("rome") == "load-rome-1"
    with ThreadPoolTaskRunner():
        assert load.submit("oslo").result() == "load-oslo-1"


def test_task_run_name_callable() -> None:
    @task(task_run_name=lambda: "fixed-name")
    def named() -> str:
        ctx = get_run_context()
        assert ctx is not None
        return ctx.task_run_name

    assert named() == "fixed-name"
    with ThreadPoolTaskRunner():
        assert named.submit().result() == "fixed-name"


def test_default_task_run_name_starts_with_the_task_name() -> None:
    @task
    def plain() -> str:
        ctx = get_run_context()
        assert ctx is not None
        return ctx.task_run_name

    with ThreadPoolTaskRunner():
        first, second = plain.submit().result(), plain.submit().result()
    assert first.startswith("plain")
    assert second.startswith("plain")
    assert first != second


def test_task_run_name_with_bad_type_is_an_error() -> None:
    with pytest.raises(TypeError, match="task_run_name"):
        task(task_run_name=42)(lambda: None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- helpers


def test_exponential_backoff_values() -> None:
    assert exponential_backoff(backoff_factor=1)(4) == [1, 2, 4, 8]
    assert exponential_backoff(backoff_factor=0.5)(3) == [0.5, 1, 2]
    assert exponential_backoff(backoff_factor=10)(1) == [10]
    assert exponential_backoff(backoff_factor=2)(0) == []


def test_exponential_backoff_rejects_negative_factor() -> None:
    with pytest.raises(ValueError):
        exponential_backoff(backoff_factor=-1)


def test_task_input_hash_is_stable_for_equal_inputs() -> None:
    first = task_input_hash(None, {"x": 1, "y": [1, 2], "z": "s"})
    second = task_input_hash(None, {"z": "s", "y": [1, 2], "x": 1})
    assert isinstance(first, str)
    assert first == second
    assert task_input_hash(None, {"x": 1, "y": [1, 2], "z": "s"}) == first


def test_task_input_hash_differs_for_different_inputs() -> None:
    base = task_input_hash(None, {"x": 1})
    assert task_input_hash(None, {"x": 2}) != base
    assert task_input_hash(None, {"y": 1}) != base
    assert task_input_hash(None, {"x": "1"}) != base
    assert task_input_hash(None, {"x": 1, "y": 1}) != base


def test_task_input_hash_depends_on_the_task() -> None:
    hashes: dict[str, str | None] = {}

    @task
    def first(x: int) -> None:
        hashes["first"] = task_input_hash(get_run_context(), {"x": x})

    @task
    def second(x: int) -> None:
        hashes["second"] = task_input_hash(get_run_context(), {"x": x})

    first(1)
    second(1)
    first_again = dict(hashes)
    first(1)
    assert hashes["first"] == first_again["first"]
    assert hashes["first"] != hashes["second"]
