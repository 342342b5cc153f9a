# pyright: strict, reportUnnecessaryTypeIgnoreComment=true
"""What type checkers see of taskrun's public API: checked by ``mypy --strict`` and
``pyright`` in CI (``.ci/run``), never run.

Every ``assert_type`` must hold under both checkers. The lines marked
``# type: ignore[...]`` must be errors: both checkers report an ignore comment that
suppresses nothing (mypy's ``warn_unused_ignores`` in strict mode, pyright's
``reportUnnecessaryTypeIgnoreComment`` above), so a check that stops failing fails CI.

Not a test module (pytest collects ``test_*.py``); importing it runs nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

from typing_extensions import assert_type

from taskrun import ThreadPoolTaskRunner, allow_failure, flow, task
from taskrun.dask import DaskTaskRunner, DistributedFuture
from taskrun.futures import ConcurrentFuture, FutureList, PrefectFuture, TaskFuture
from taskrun.states import State
from taskrun.task_runners import ProcessPoolTaskRunner


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task(retries=1)
async def shout(word: str) -> str:
    return word.upper()


@flow
def pipeline(n: int) -> list[int]:
    return add.map(range(n)).result()


@flow
async def async_pipeline(word: str) -> str:
    return await shout(word)


def submit_and_map() -> None:
    future = add.submit(1, y=2)
    assert_type(future, TaskFuture[int])
    assert_type(future.result(), int)
    assert_type(future.state, State[int])
    assert_type(shout.submit("hi"), TaskFuture[str])
    assert_type(add.submit(1, wait_for=[future]), TaskFuture[int])
    assert_type(add.submit(1, wait_for=[allow_failure(future)]), TaskFuture[int])
    assert_type(add.submit(1, return_state=True), State[int])
    assert_type(shout.submit("hi", return_state=True), State[str])

    futures = add.map([1, 2, 3], y=5)
    assert_type(futures, FutureList[TaskFuture[int]])
    assert_type(futures.result(), list[int])
    assert_type(shout.map(["a", "b"]).result(), list[str])
    assert_type(add.map([1, 2], wait_for=[allow_failure(future)]), FutureList[TaskFuture[int]])
    assert_type(add.map([1, 2], return_state=True), list[State[int]])

    ported: PrefectFuture[int] = future  # the seed engine's name for the same type
    assert_type(ported.result(), int)


def parameters_are_checked() -> None:
    add.submit("one")  # type: ignore[call-overload]
    add.submit(1, z=2)  # type: ignore[call-overload]
    shout.submit(3)  # type: ignore[call-overload]
    pipeline("three")  # type: ignore[call-overload]
    add("one")  # type: ignore[call-overload]


async def awaiting() -> None:
    future = shout.submit("hi")
    assert_type(await future, str)
    assert_type(await future.result_async(), str)
    assert_type(await add.map([1, 2]).result_async(), list[int])
    assert_type(await shout("hi"), str)
    assert_type(await shout("hi", return_state=True), State[str])
    assert_type(await shout("hi", wait_for=[future]), str)
    assert_type(add(1), int)
    assert_type(add(1, return_state=True), State[int])
    assert_type(add(1, wait_for=[allow_failure(future)]), int)


def runners() -> None:
    with ThreadPoolTaskRunner() as threads:
        assert_type(threads.submit(add, {"x": 1}), ConcurrentFuture[int])
        assert_type(threads.submit(shout, {"word": "a"}), ConcurrentFuture[str])
        assert_type(threads.submit(add, {"x": 1}).result(), int)
        assert_type(threads.map(add, {"x": [1, 2]}), FutureList[ConcurrentFuture[int]])
        assert_type(threads.map(add, {"x": [1, 2]}).result(), list[int])
        assert_type(threads.imap(add, {"x": range(3)}), Iterator[int])
        assert_type(threads.imap(shout, {"word": ["a"]}), Iterator[str])
        for value in threads.imap(add, {"x": range(3)}, ordered=False):
            assert_type(value, int)
    with ProcessPoolTaskRunner(max_workers=2) as processes:
        assert_type(processes.submit(add, {"x": 1}), ConcurrentFuture[int])
        assert_type(processes.map(shout, {"word": ["a"]}).result(), list[str])
    with DaskTaskRunner() as dask:
        assert_type(dask.submit(add, {"x": 1}), DistributedFuture[int])
        assert_type(dask.submit(shout, {"word": "a"}).result(), str)
        assert_type(dask.map(add, {"x": [1, 2]}), FutureList[DistributedFuture[int]])
        assert_type(dask.map(add, {"x": [1, 2]}).result(), list[int])


async def async_runners() -> None:
    async with ThreadPoolTaskRunner() as runner:
        assert_type(runner.aimap(shout, {"word": ["a"]}), AsyncIterator[str])
        async for value in runner.aimap(add, {"x": range(3)}):
            assert_type(value, int)
        assert_type(await runner.submit(add, {"x": 1}), int)


async def flows() -> None:
    assert_type(pipeline(3), list[int])
    assert_type(pipeline(3, return_state=True), State[list[int]])
    assert_type(pipeline.call_with_state(3), State[list[int]])
    pending = async_pipeline("a")
    _ = assert_type(pending, Coroutine[Any, Any, str])
    pending.close()
    assert_type(await async_pipeline("a"), str)
    assert_type(await async_pipeline("a", return_state=True), State[str])
