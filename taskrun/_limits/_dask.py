"""Limits inside Dask tasks: each name is a cluster-wide ``distributed.Semaphore``.

Code running in a Dask worker (a task body submitted with ``client.submit``, or a
run of the Dask runner) takes its slots from
``distributed.Semaphore(max_leases=limit, name="taskrun-limit-<name>")``, so a limit
of 5 holds across every worker of the cluster. The scheduler keeps the semaphore;
the first process to create it fixes ``max_leases``, so every worker must define
the limit with the same count. Leases of a worker that dies come back after
Dask's ``distributed.scheduler.locks.lease-timeout`` (30 s by default).

``distributed`` is imported only when this module is used, which happens only in
a process that already imported it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread

from ._errors import LimitTimeout, too_many
from ._hooks import get_wait_hooks
from ._wake import in_event_loop, refuse_blocking_in_loop

_POLL = 0.2
_semaphores: dict[tuple[str, str, int], Any] = {}


def in_dask_worker() -> bool:
    """True when this code runs inside a Dask worker's task (cheap when Dask is not loaded)."""
    module = sys.modules.get("distributed.worker")
    if module is None:
        return False
    cvar = getattr(module, "_worker_cvar", None)
    if cvar is not None:
        return cvar.get(None) is not None
    try:
        module.get_worker()
    except ValueError:
        return False
    return True


def _semaphore(name: str, limit: int) -> Any:
    from distributed import Semaphore  # noqa: PLC0415 - optional: only inside a Dask worker
    from distributed.worker import get_worker  # noqa: PLC0415 - optional: only inside a Dask worker

    key = (get_worker().scheduler.address, name, limit)
    sem = _semaphores.get(key)
    if sem is None:
        sem = _semaphores[key] = Semaphore(  # type: ignore[no-untyped-call]
            max_leases=limit, name=f"taskrun-limit-{name}"
        )
    return sem


class DaskPermit:
    """Leases held on the cluster's semaphores; :meth:`release` (idempotent) returns them.

    Example::

        permit = acquire_sync([("db", 5)], 1, None)
        permit.release()
    """

    __slots__ = ("_held", "names", "occupy")

    def __init__(self, held: list[Any], names: tuple[str, ...], occupy: int) -> None:
        self._held: list[Any] | None = held
        self.names = names
        self.occupy = occupy

    def release(self) -> None:
        held, self._held = self._held, None
        for sem in reversed(held or []):
            sem.release()


def _take(sem: Any, occupy: int, held: list[Any], deadline: float | None) -> bool:
    for _ in range(occupy):
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            if sem.acquire(timeout=_POLL if left is None else min(_POLL, left)):
                held.append(sem)
                break
    return True


def _acquire_one(sem: Any, timeout: float) -> bool:
    return bool(sem.acquire(timeout=timeout))


def _check(limits: Sequence[tuple[str, int]], occupy: int) -> None:
    for name, limit in limits:
        if 0 < limit < occupy:
            raise too_many(name, occupy, limit)


def acquire_sync(limits: Sequence[tuple[str, int]], occupy: int, timeout: float | None) -> DaskPermit:
    """Take ``occupy`` leases of each name's semaphore, names in sorted order."""
    _check(limits, occupy)
    if in_event_loop():
        raise refuse_blocking_in_loop("concurrency()", "async with concurrency(...)")
    ordered = sorted(limits)
    deadline = None if timeout is None else time.monotonic() + timeout
    held: list[Any] = []
    hooks = get_wait_hooks()
    hooks.before_block()
    try:
        for name, limit in ordered:
            if not _take(_semaphore(name, limit), occupy, held, deadline):
                raise LimitTimeout(name, timeout or 0.0)
    except BaseException:
        DaskPermit(held, (), occupy).release()
        raise
    finally:
        hooks.after_block()
    return DaskPermit(held, tuple(n for n, _ in ordered), occupy)


async def acquire_async(limits: Sequence[tuple[str, int]], occupy: int, timeout: float | None) -> DaskPermit:
    """As :func:`acquire_sync`, polling from a worker thread so cancellation is prompt."""
    _check(limits, occupy)
    ordered = sorted(limits)
    deadline = None if timeout is None else time.monotonic() + timeout
    held: list[Any] = []
    hooks = get_wait_hooks()
    try:
        await hooks.before_await()
        for name, limit in ordered:
            sem = await anyio.to_thread.run_sync(_semaphore, name, limit)
            for _ in range(occupy):
                while True:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise LimitTimeout(name, timeout or 0.0)
                    wait = _POLL if left is None else min(_POLL, left)
                    if await anyio.to_thread.run_sync(_acquire_one, sem, wait):
                        held.append(sem)
                        break
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(DaskPermit(held, (), occupy).release)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.after_await()
    return DaskPermit(held, tuple(n for n, _ in ordered), occupy)
