"""Tests of ``taskrun.context``: tags, the run context and run loggers."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, flow, get_run_context, get_run_logger, tags, task

pytestmark = pytest.mark.timeout(30)


@task(tags=["own"])
def sync_tags() -> frozenset[str]:
    ctx = get_run_context()
    assert ctx is not None
    return frozenset(ctx.tags)


@task(tags=["own-async"])
async def async_tags() -> frozenset[str]:
    await anyio.lowlevel.checkpoint()
    ctx = get_run_context()
    assert ctx is not None
    return frozenset(ctx.tags)


# --------------------------------------------------------------------------- tags


def test_tags_context_manager_nests_and_yields_the_tags() -> None:
    with tags("a") as outer:
        assert outer == {"a"}
        with tags("b", "c") as inner:
            assert inner == {"a", "b", "c"}
        with tags("a") as again:
            assert again == {"a"}


def test_tags_combine_with_task_tags_for_sync_tasks() -> None:
    with ThreadPoolTaskRunner():
        assert sync_tags.submit().result() == {"own"}
        with tags("outer"):
            assert sync_tags.submit().result() == {"own", "outer"}
            with tags("inner", "x"):
                assert sync_tags.submit().result() == {"own", "outer", "inner", "x"}
            assert sync_tags.submit().result() == {"own", "outer"}
        assert sync_tags.submit().result() == {"own"}


def test_tags_apply_to_mapped_runs() -> None:
    @task(tags=["m"])
    def mapped(x: int) -> frozenset[str]:
        ctx = get_run_context()
        assert ctx is not None
        return frozenset(ctx.tags)

    with ThreadPoolTaskRunner(), tags("batch"):
        assert mapped.map([1, 2]).result() == [{"m", "batch"}, {"m", "batch"}]


@pytest.mark.anyio
async def test_tags_combine_with_task_tags_for_async_tasks(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        assert await async_tags.submit() == {"own-async"}
        with tags("outer"):
            assert await async_tags.submit() == {"own-async", "outer"}
            with tags("inner"):
                assert await async_tags.submit() == {"own-async", "outer", "inner"}
                assert await sync_tags.submit() == {"own", "outer", "inner"}
        assert await async_tags.submit() == {"own-async"}


def test_tags_are_fixed_at_submission() -> None:
    release = threading.Event()

    @task(tags=["t"])
    def late() -> frozenset[str]:
        release.wait(10)
        ctx = get_run_context()
        assert ctx is not None
        return frozenset(ctx.tags)

    with ThreadPoolTaskRunner():
        with tags("at-submit"):
            future = late.submit()
        release.set()
        assert future.result() == {"t", "at-submit"}


def test_tags_are_visible_in_worker_threads_and_submissions_from_threads() -> None:
    results: dict[str, Any] = {}

    def submit_from_thread() -> None:
        with tags("from-thread"):
            results["thread"] = sync_tags.submit().result()

    with ThreadPoolTaskRunner() as runner:
        with tags("main"):
            results["main"] = runner.submit(sync_tags, {}).result()

        thread = threading.Thread(target=_run_in_context_of(runner, submit_from_thread))
        thread.start()
        thread.join(10)
    assert results["main"] == {"own", "main"}
    assert results["thread"] == {"own", "from-thread"}


def _run_in_context_of(runner: ThreadPoolTaskRunner, fn: Any) -> Any:
    """Run ``fn`` in a thread with the submitting thread's context (runner is current)."""
    import contextvars

    context = contextvars.copy_context()
    return lambda: context.run(fn)


def test_direct_call_sees_enclosing_tags() -> None:
    with tags("direct"):
        assert sync_tags() == {"own", "direct"}


def test_tags_inside_a_task_apply_to_children() -> None:
    @task(tags=["parent"])
    def parent() -> frozenset[str]:
        with tags("from-parent"):
            return sync_tags.submit().result()

    with ThreadPoolTaskRunner():
        assert parent.submit().result() == {"own", "from-parent"}


def test_tags_reject_non_strings() -> None:
    with pytest.raises(TypeError):
        with tags("ok", 3):  # type: ignore[arg-type]
            pass


# --------------------------------------------------------------------------- run context


def test_get_run_context_is_none_outside_a_run() -> None:
    assert get_run_context() is None
    with ThreadPoolTaskRunner():
        assert get_run_context() is None
        assert _ctx_fields.submit(1, 2).result()["attempt"] == 1
        assert get_run_context() is None


@pytest.mark.anyio
async def test_get_run_context_is_none_outside_a_run_async(anyio_backend: str) -> None:
    assert get_run_context() is None
    async with ThreadPoolTaskRunner():
        await _actx_fields.submit(1)
        assert get_run_context() is None


@task(task_run_name="fields-{x}-{y}")
def _ctx_fields(x: int, y: int) -> dict[str, Any]:
    ctx = get_run_context()
    assert ctx is not None
    return {
        "task_run_id": ctx.task_run_id,
        "task": ctx.task,
        "task_run_name": ctx.task_run_name,
        "parameters": dict(ctx.parameters),
        "attempt": ctx.attempt,
        "cancel_requested": ctx.cancel_requested(),
    }


@task
async def _actx_fields(x: int) -> dict[str, Any]:
    ctx = get_run_context()
    assert ctx is not None
    await anyio.lowlevel.checkpoint()
    after_await = get_run_context()
    return {
        "task_run_id": ctx.task_run_id,
        "same_after_await": after_await is ctx,
        "task": ctx.task,
        "task_run_name": ctx.task_run_name,
        "parameters": dict(ctx.parameters),
        "attempt": ctx.attempt,
    }


def test_run_context_fields_of_a_sync_run() -> None:
    with ThreadPoolTaskRunner():
        future = _ctx_fields.submit(1, y=2)
        fields = future.result()
    assert fields == {
        "task_run_id": future.task_run_id,
        "task": _ctx_fields,
        "task_run_name": "fields-1-2",
        "parameters": {"x": 1, "y": 2},
        "attempt": 1,
        "cancel_requested": False,
    }


@pytest.mark.anyio
async def test_run_context_fields_of_an_async_run(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner():
        future = _actx_fields.submit(x=3)
        fields = await future
    assert fields["task_run_id"] == future.task_run_id
    assert fields["same_after_await"] is True
    assert fields["task"] is _actx_fields
    assert fields["task_run_name"].startswith("_actx_fields")
    assert fields["parameters"] == {"x": 3}
    assert fields["attempt"] == 1


def test_parameters_hold_resolved_values() -> None:
    with ThreadPoolTaskRunner():
        x_future = _id.submit(5)
        fields = _ctx_fields.submit(x_future, y=_id.submit(7)).result()
    assert fields["parameters"] == {"x": 5, "y": 7}


@task
def _id(x: Any) -> Any:
    return x


def test_each_run_has_its_own_id() -> None:
    with ThreadPoolTaskRunner():
        futures = _ctx_fields.map([1, 2, 3], y=[0, 0, 0])
        ids = [f["task_run_id"] for f in futures.result()]
    assert len(set(ids)) == 3
    assert ids == [f.task_run_id for f in futures]


def test_run_context_in_a_flow() -> None:
    @flow
    def pipeline() -> dict[str, Any]:
        flow_run = get_run_context()  # flow code gets the flow run's context (issue 11)
        assert flow_run is not None and flow_run.flow_name == "pipeline"
        return _ctx_fields.submit(4, 5).result()

    assert pipeline()["parameters"] == {"x": 4, "y": 5}


# --------------------------------------------------------------------------- run logger


def _record_text(record: logging.LogRecord) -> str:
    values = [record.getMessage()] + [str(v) for v in vars(record).values()]
    return "\n".join(values)


def test_get_run_logger_stamps_task_name_and_run_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @task
    def chatty() -> None:
        get_run_logger().info("a message from the run")

    with ThreadPoolTaskRunner():
        future = chatty.submit()
        future.result()
    records = [r for r in caplog.records if "a message from the run" in r.getMessage()]
    assert len(records) == 1
    record = records[0]
    text = _record_text(record)
    assert "chatty" in text
    assert str(future.task_run_id) in text


@pytest.mark.anyio
async def test_get_run_logger_in_an_async_run(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @task
    async def achatty() -> None:
        logger = get_run_logger()
        assert isinstance(logger, logging.LoggerAdapter)
        logger.warning("async run says %s", "hi")

    async with ThreadPoolTaskRunner():
        future = achatty.submit()
        await future
    records = [r for r in caplog.records if "async run says hi" in r.getMessage()]
    assert len(records) == 1
    text = _record_text(records[0])
    assert "achatty" in text
    assert str(future.task_run_id) in text
    assert records[0].levelno == logging.WARNING


def test_get_run_logger_in_a_direct_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @task
    def direct() -> str:
        ctx = get_run_context()
        assert ctx is not None
        get_run_logger().info("direct call log")
        return str(ctx.task_run_id)

    run_id = direct()
    records = [r for r in caplog.records if "direct call log" in r.getMessage()]
    assert len(records) == 1
    assert run_id in _record_text(records[0])


def test_get_run_logger_outside_a_run_raises_a_helpful_error() -> None:
    with pytest.raises(RuntimeError, match=r"(?i)task"):
        get_run_logger()
    with ThreadPoolTaskRunner():
        with pytest.raises(RuntimeError, match=r"outside"):
            get_run_logger()
