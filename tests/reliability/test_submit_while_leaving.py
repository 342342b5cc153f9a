"""Submissions racing the runner's exit: each runs to a final state or is refused at once (issue 14)."""

from __future__ import annotations

import threading

import anyio
import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun.futures import TaskFuture

from ._helpers import within

ROUNDS = 10


@task
def value(x: int) -> int:
    return x


def _submitter(runner: ThreadPoolTaskRunner, stop: threading.Event, futures: list[TaskFuture[int]],
               errors: list[str]) -> None:
    while not stop.is_set():
        try:
            futures.append(runner.submit(value, {"x": 1}))
        except RuntimeError as exc:
            errors.append(str(exc))
            return


def _check(futures: list[TaskFuture[int]], errors: list[str]) -> None:
    lost = [f for f in futures if not f.wait(timeout=5) and not f.done()]  # type: ignore[func-returns-value]
    assert not lost, f"{len(lost)} of {len(futures)} submissions never reached a final state"
    assert all("closed" in e for e in errors), errors


def test_with_runner() -> None:
    def scenario() -> None:
        for _ in range(ROUNDS):
            futures: list[TaskFuture[int]] = []
            errors: list[str] = []
            stop = threading.Event()
            runner = ThreadPoolTaskRunner(max_workers=2)
            with runner:
                threads = [threading.Thread(target=_submitter, args=(runner, stop, futures, errors))
                           for _ in range(2)]
                for t in threads:
                    t.start()
            stop.set()
            for t in threads:
                t.join(5)
            _check(futures, errors)

    within(20, scenario, "rounds of submitting while leaving")


@pytest.mark.anyio
async def test_async_with_runner() -> None:
    for _ in range(ROUNDS):
        futures: list[TaskFuture[int]] = []
        errors: list[str] = []
        stop = threading.Event()
        with anyio.fail_after(8):
            runner = ThreadPoolTaskRunner(max_workers=2)
            async with runner:
                threads = [threading.Thread(target=_submitter, args=(runner, stop, futures, errors))
                           for _ in range(2)]
                for t in threads:
                    t.start()
                await anyio.sleep(0.005)
        stop.set()
        for t in threads:
            t.join(5)
        _check(futures, errors)
