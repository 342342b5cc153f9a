"""Task runners: submit task runs, get futures back at once.

A runner is used as a context manager, from sync code (``with``) or async code
(``async with``); inside, it is the *current runner* that ``task.submit`` and
``task.map`` use.

Lifecycle: ``NEW --enter--> OPEN --exit--> CLOSED``. Submitting to a NEW runner,
entering an OPEN one, or entering a CLOSED one (use :meth:`TaskRunner.duplicate`)
raises :class:`RuntimeError`.

Example::

    from taskrun import ThreadPoolTaskRunner, task

    @task
    def square(x: int) -> int:
        return x * x

    with ThreadPoolTaskRunner(max_workers=4) as runner:
        futures = runner.map(square, {"x": range(10)})
        print(futures.result())
"""

from __future__ import annotations

from typing import Any

from ._runners._base import RunnerState, TaskRunner
from ._runners._thread import ThreadPoolTaskRunner


def __getattr__(name: str) -> Any:
    # The process pool runner is imported on first use: `import taskrun` stays light.
    if name == "ProcessPoolTaskRunner":
        from ._runners._process._runner import ProcessPoolTaskRunner  # noqa: PLC0415 - lazy runner

        return ProcessPoolTaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "ProcessPoolTaskRunner",  # noqa: F822 - made on first use by __getattr__
    "RunnerState",
]
