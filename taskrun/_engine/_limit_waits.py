"""A run's body waiting inside ``concurrency()`` or ``rate_limit()`` gives its
worker slot back while it waits, as it does when it waits for a future
(``_block_until`` / ``_await_until`` in :mod:`._future`).

The limits room calls these hooks only around a wait that really waits, in
the waiting thread (sync) or task (async), and always calls the ``after`` one.
What the ``before`` hook gave back is kept in a context variable: the body runs
in the run's context, and a wait and its ``after`` hook run in the same one.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from .._limits._hooks import set_async_wait_hooks, set_wait_hooks
from ._future import _slot_holder

if TYPE_CHECKING:
    from .._core._dispatch import Dispatcher
    from ._record import TaskRunContext

_given_back: contextvars.ContextVar[tuple[TaskRunContext, Dispatcher] | None] = contextvars.ContextVar(
    "taskrun_limit_wait_slot", default=None
)


def _before_block() -> None:
    held = _slot_holder()
    if held is not None:
        held[1].release_threadsafe(held[0])
        _given_back.set(held)


def _after_block() -> None:
    held = _given_back.get()
    if held is not None:
        _given_back.set(None)
        # A run cancelled meanwhile has ended without its slot; its body goes
        # on, but takes no slot again (or the slot would leak).
        if not held[0]._cancel_requested:
            held[1].reacquire_blocking(held[0])


async def _before_await() -> None:
    held = _slot_holder()
    if held is not None and held[1].is_own_loop():
        held[1].release(held[0])
        _given_back.set(held)


async def _after_await() -> Any:
    held = _given_back.get()
    if held is not None:
        _given_back.set(None)
        await held[1].reacquire(held[0])


def install() -> None:
    """Make the limits room call the hooks above around its waits (once, at import)."""
    set_wait_hooks(_before_block, _after_block)
    set_async_wait_hooks(_before_await, _after_await)
