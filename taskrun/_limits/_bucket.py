"""Token buckets for ``rate_limit``: occupied slots drain at ``slot_decay_per_second``.

A bucket of ``limit`` slots starts empty (a burst of ``limit`` goes through at
once). Taking ``occupy`` slots adds them; the occupied count falls continuously at
the decay rate (the seed engine's semantics, without its rounding down to whole
slots). A caller that does not fit *reserves* its slots at once and sleeps until
the bucket has drained enough, so callers are served in arrival order and nobody
polls. One that gives up (cancelled) hands its reservation back.

A wait longer than ``timeout_seconds`` is known in advance, so it raises
:class:`~taskrun._limits._errors.LimitTimeout` at once, reserving nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel

from ._errors import LimitTimeout, too_many
from ._hooks import get_wait_hooks
from ._wake import in_event_loop, refuse_blocking_in_loop

_lock = threading.Lock()


class Bucket:
    """One name's bucket (shared by every thread and loop of the process)."""

    __slots__ = ("active", "decay", "limit", "name", "updated")

    def __init__(self, name: str, limit: int, decay: float) -> None:
        self.name = name
        self.limit = limit
        self.decay = decay
        self.active = 0.0
        self.updated = time.monotonic()

    def _drain(self, now: float) -> None:
        self.active = max(0.0, self.active - self.decay * (now - self.updated))
        self.updated = now

    def reserve(self, occupy: int, timeout: float | None) -> float:
        """Take ``occupy`` slots now; return how long to sleep before using them."""
        if occupy > self.limit > 0:
            raise too_many(self.name, occupy, self.limit)
        with _lock:
            self._drain(time.monotonic())
            wait = max(0.0, self.active + occupy - self.limit) / self.decay
            if timeout is not None and wait > timeout:
                raise LimitTimeout(self.name, timeout, "rate tokens")
            self.active += occupy
        return wait

    def give_back(self, occupy: int) -> None:
        """Withdraw a reservation whose holder stopped waiting."""
        with _lock:
            self._drain(time.monotonic())
            self.active = max(0.0, self.active - occupy)

    def update(self, limit: int, decay: float) -> None:
        with _lock:
            self._drain(time.monotonic())
            self.limit, self.decay = limit, decay

    def occupied(self) -> float:
        """Slots occupied right now (after decay)."""
        with _lock:
            self._drain(time.monotonic())
            return self.active


_buckets: dict[str, Bucket] = {}


def bucket(name: str, limit: int, decay: float) -> Bucket:
    found = _buckets.get(name)
    if found is None:
        with _lock:
            found = _buckets.setdefault(name, Bucket(name, limit, decay))
    return found


def update_limit(name: str, limit: int | None, decay: float | None) -> None:
    """A definition changed; ``None`` limit or decay drops the bucket."""
    if limit is None or decay is None:
        with _lock:
            _buckets.pop(name, None)
        return
    found = _buckets.get(name)
    if found is not None:
        found.update(limit, decay)


def sleep_sync(undo: list[Callable[[], object]], wait: float) -> None:
    """Sleep this thread ``wait`` s for reserved tokens; any exception calls every ``undo``."""
    if in_event_loop():
        _undo_all(undo)
        raise refuse_blocking_in_loop("rate_limit()", "await rate_limit_async(...)")
    hooks = get_wait_hooks()
    hooks.before_block()
    try:
        time.sleep(wait)
    except BaseException:
        _undo_all(undo)
        raise
    finally:
        hooks.after_block()


async def sleep_async(undo: list[Callable[[], object]], wait: float) -> None:
    """Sleep this task ``wait`` s (never the loop); cancellation calls every ``undo``."""
    if wait <= 0:
        await anyio.lowlevel.checkpoint()
        return
    hooks = get_wait_hooks()
    try:
        await hooks.before_await()
        await anyio.sleep(wait)
    except BaseException:
        _undo_all(undo)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.after_await()


def _undo_all(undo: list[Callable[[], object]]) -> None:
    for fn in undo:
        fn()
