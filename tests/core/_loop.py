"""Tasks and a helper the core tests share: where a run ran, a run held until an
event, and a runner's loop thread kept busy on purpose."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from taskrun import ThreadPoolTaskRunner, task


@task
def where(x: int) -> tuple[int, str]:
    return x, threading.current_thread().name


@task
def blocked_until(event: threading.Event) -> str:
    assert event.wait(10)
    return threading.current_thread().name


@contextmanager
def loop_held(runner: ThreadPoolTaskRunner) -> Iterator[None]:
    """Keep ``runner``'s loop thread busy (an async body that blocks it) for the block."""
    holding = threading.Event()
    free = threading.Event()

    @task
    async def hold() -> None:
        holding.set()
        free.wait(10)  # blocks the loop thread on purpose

    busy = runner.submit(hold, {})
    assert holding.wait(10)
    try:
        yield
    finally:
        free.set()
    busy.result(timeout=10)
