"""Futures: handles to task runs, usable from sync and async code alike.

A :class:`TaskFuture` is done when its run reaches a final state. Blocking calls
(:meth:`~TaskFuture.wait`, :meth:`~TaskFuture.result`) work from any thread that
is not running an event loop; awaiting (``await future``,
:meth:`~TaskFuture.wait_async`, :meth:`~TaskFuture.result_async`) works on any
asyncio or trio loop, in any thread.

Cancellation: cancelling a coroutine that awaits a future stops the waiting only;
the run itself goes on (call :meth:`TaskFuture.cancel` to cancel the run).

Example::

    with ThreadPoolTaskRunner() as runner:
        future = runner.submit(add, {"x": 1, "y": 2})
        assert future.result() == 3
"""

from __future__ import annotations

from typing import Any

from ._engine._future import ConcurrentFuture, TaskFuture
from ._engine._waiting import (
    DoneAndNotDoneFutures,
    FutureList,
    as_completed,
    as_completed_async,
    resolve_futures_to_results,
    resolve_futures_to_states,
    wait,
    wait_async,
)

#: The seed engine's names for these types, so that annotations in ported code keep
#: working: ``PrefectFuture`` is :class:`TaskFuture`, ``PrefectConcurrentFuture`` is
#: :class:`ConcurrentFuture`, ``PrefectDistributedFuture`` is :class:`DistributedFuture`
#: and ``PrefectFutureList`` is :class:`FutureList`.
PrefectFuture = TaskFuture
PrefectConcurrentFuture = ConcurrentFuture
PrefectFutureList = FutureList


def __getattr__(name: str) -> Any:
    # DistributedFuture lives with the Dask support; importing it needs no Dask.
    if name in ("DistributedFuture", "PrefectDistributedFuture"):
        from ._runners._dask._future import DistributedFuture  # noqa: PLC0415 - lazy: keeps Dask code out

        return DistributedFuture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TaskFuture",
    "ConcurrentFuture",
    "DistributedFuture",  # noqa: F822 - made on first use by __getattr__
    "FutureList",
    "DoneAndNotDoneFutures",
    "wait",
    "wait_async",
    "as_completed",
    "as_completed_async",
    "resolve_futures_to_states",
    "resolve_futures_to_results",
]
