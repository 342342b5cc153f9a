"""A map over one parameter keeps each run's bare value and makes its parameters
dict on first access (README, *Performance*: bytes per pending run): what a body,
a hook or the future's run sees is the same as for any other run."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.context import get_run_context

pytestmark = pytest.mark.anyio


@task
def seen(x: Any) -> Any:
    run = get_run_context()
    assert run is not None
    assert run.parameters is run.parameters  # made once
    return dict(run.parameters)


@task
async def seen_async(x: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    run = get_run_context()
    assert run is not None
    return dict(run.parameters)


@task
def double(x: int) -> int:
    return 2 * x


values: list[Any] = [1, "s", None, 2.5, {"a": 1}, [1, 2], (3,), b"b"]


def test_a_sync_map_over_one_parameter_sees_its_parameters() -> None:
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        assert runner.map(seen, {"x": values}).result() == [{"x": v} for v in values]


async def test_an_async_map_over_one_parameter_sees_its_parameters(anyio_backend: str) -> None:
    async with ThreadPoolTaskRunner() as runner:
        assert await runner.map(seen_async, {"x": values}).result_async() == [{"x": v} for v in values]


def test_futures_in_a_one_parameter_map_are_resolved_and_recorded() -> None:
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        upstream = [runner.submit(double, {"x": i}) for i in range(3)]
        futures = runner.map(seen, {"x": upstream})
        assert futures.result() == [{"x": 2 * i} for i in range(3)]
        for future, up in zip(futures, upstream, strict=True):
            run = future._run
            assert run is not None
            assert run.dependencies == {"x": {up.task_run_id}}


def test_a_one_parameter_map_checks_the_parameter_name() -> None:
    from taskrun.exceptions import ParameterBindError

    with ThreadPoolTaskRunner(max_workers=2) as runner, pytest.raises(ParameterBindError):
        runner.map(seen, {"y": [1, 2]})
