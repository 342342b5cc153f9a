"""The engine's seam around waits: hooks called before and after every real wait.

A wait that does not have to wait (the slots are free, a token is there) calls no
hook. The engine installs hooks that give the run's worker slot back while its
body waits inside ``concurrency()`` or ``rate_limit()``, and take it again after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple


def _noop() -> None:
    return None


async def _anoop() -> None:
    return None


class WaitHooks(NamedTuple):
    """The hooks in force: sync pair for blocking waits, async pair for awaits."""

    before_block: Callable[[], object]
    after_block: Callable[[], object]
    before_await: Callable[[], Awaitable[object]]
    after_await: Callable[[], Awaitable[object]]


_hooks = WaitHooks(_noop, _noop, _anoop, _anoop)


def get_wait_hooks() -> WaitHooks:
    """The hooks in force (the defaults are no-ops)."""
    return _hooks


def set_wait_hooks(
    before_block: Callable[[], object] | None = None,
    after_block: Callable[[], object] | None = None,
) -> WaitHooks:
    """Install the sync hooks, called in the waiting thread; ``None`` restores a no-op.

    ``after_block`` runs even when the wait ends in a timeout or an exception.
    Returns the previous hooks, so a caller can restore them with :func:`restore_wait_hooks`.

    Example::

        previous = set_wait_hooks(run.give_slot_back, run.take_slot_again)
        ...
        restore_wait_hooks(previous)
    """
    global _hooks
    previous = _hooks
    _hooks = _hooks._replace(before_block=before_block or _noop, after_block=after_block or _noop)
    return previous


def set_async_wait_hooks(
    before_await: Callable[[], Awaitable[object]] | None = None,
    after_await: Callable[[], Awaitable[object]] | None = None,
) -> WaitHooks:
    """Install the async hooks, awaited in the waiting task; ``None`` restores a no-op.

    ``after_await`` is awaited even when the wait is cancelled or times out (inside
    a shielded scope), so it must be short.

    Example::

        previous = set_async_wait_hooks(give_slot_back, take_slot_again)
    """
    global _hooks
    previous = _hooks
    _hooks = _hooks._replace(before_await=before_await or _anoop, after_await=after_await or _anoop)
    return previous


def restore_wait_hooks(hooks: WaitHooks) -> None:
    """Put back hooks returned by :func:`set_wait_hooks` or :func:`set_async_wait_hooks`.

    Example::

        restore_wait_hooks(previous)
    """
    global _hooks
    _hooks = hooks
