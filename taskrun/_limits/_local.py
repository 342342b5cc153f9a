"""The in-process limiter: a counting semaphore per limit name.

One lock guards every name's bookkeeping; no call is made while it is held (the
wake-ups and callbacks it decides on run after it is released).

- **FIFO.** Slots a holder gives back are handed to the oldest waiter that fits,
  and a newcomer never takes slots while someone waits for that name.
- **Several names** are taken one by one in sorted order, so two callers can never
  each hold what the other waits for. A waiter keeps the names it already has while
  it waits for the next one.
- **Cancellation and timeouts** undo everything: a waiter that gives up leaves its
  queue and gives back the names it had been handed.
- :func:`try_acquire` (all names or none, never waits) and :func:`notify_when_free`
  let a dispatcher admit runs without parking anything.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio

from ._errors import LimitTimeout, too_many
from ._hooks import get_wait_hooks
from ._wake import ThreadWaker, async_waker, in_event_loop, refuse_blocking_in_loop

logger = logging.getLogger("taskrun.limits")
UNBOUNDED = sys.maxsize
_lock = threading.Lock()


class _Slots:
    __slots__ = ("limit", "name", "one", "queue", "returned", "used", "watchers")

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.used = 0
        self.queue: deque[_Waiter] = deque()
        self.watchers: list[_Watcher] = []
        #: Gives back one slot when called: one object serves every run that took one
        #: (it holds nothing of the run), so admitting a tagged run makes none.
        self.one = OneSlot(self)
        #: Slots :class:`OneSlot` gave back without the lock, not yet taken off ``used``
        #: (see :func:`settle`).
        self.returned: list[None] = []


_states: dict[str, _Slots] = {}
# The process-scope concurrency limits in force, by name: the fast path's one lookup.
fast: dict[str, _Slots] = {}


class _Waiter:
    __slots__ = ("done", "index", "occupy", "states", "wake")

    def __init__(self, states: Sequence[_Slots], occupy: int, wake: Callable[[], None]) -> None:
        self.states = states
        self.occupy = occupy
        self.index = 0
        self.done = False
        self.wake = wake


class _Watcher:
    __slots__ = ("callback", "state")

    def __init__(self, state: _Slots, callback: Callable[[], object]) -> None:
        self.state = state
        self.callback = callback

    def cancel(self) -> None:
        """Stop waiting for the callback (no effect once it has been called)."""
        with _lock:
            try:
                self.state.watchers.remove(self)
            except ValueError:
                pass


@dataclass(frozen=True)
class SlotStatistics:
    """One name's bookkeeping, for tests and monitoring.

    Example::

        stats = statistics("db")
        assert stats.used <= stats.limit
    """

    name: str
    limit: int
    used: int
    waiting: int
    watchers: int


class Permit:
    """Slots held in this process; :meth:`release` (idempotent) gives them back.

    Example::

        permit = try_acquire(["db"], 1)
        if permit is not None:
            with permit:
                ...
    """

    __slots__ = ("_states", "occupy")

    def __init__(self, states: Sequence[_Slots], occupy: int) -> None:
        self._states: Sequence[_Slots] | None = states
        self.occupy = occupy

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._states or ())

    def release(self) -> None:
        occupy = self.occupy
        with _lock:
            states, self._states = self._states, None
            if states is None:
                return
            waited = False
            for state in states:
                state.used -= occupy
                if state.queue or state.watchers:
                    waited = True
            if not waited:  # the common case: nothing to hand off, no call under the lock
                return
            calls: list[Callable[[], object]] = []
            for state in states:
                _hand_off(state, calls)
        call_all(calls)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _state(name: str, limit: int) -> _Slots:
    state = _states.get(name)
    if state is None:
        with _lock:
            state = _states.get(name)
            if state is None:
                state = _states[name] = _Slots(name, limit)
    return state


def states_for(limits: Iterable[tuple[str, int]]) -> list[_Slots]:
    """The states of ``(name, limit)`` pairs, in the global (sorted) order."""
    return [_state(name, limit) for name, limit in sorted(limits)]


def update_limit(name: str, limit: int | None) -> None:
    """A name's definition changed; ``None``: it no longer binds in this process."""
    calls: list[Callable[[], object]] = []
    with _lock:
        state = _states.get(name)
        if limit is None:
            fast.pop(name, None)
            if state is None:
                return
            state.limit = UNBOUNDED
        else:
            if state is None:
                state = _states[name] = _Slots(name, limit)
            state.limit = limit
            fast[name] = state
        _hand_off(state, calls)
        if limit is None and state.used == 0 and not state.queue:
            del _states[name]
    call_all(calls)


def release_one(state: _Slots, occupy: int) -> None:
    """The fast path's release of one name's slots.

    ``with _lock`` rather than ``_lock.acquire()``: the interpreter may switch
    threads right after a call returns, and a thread switched out holding the
    lock stalls every other thread behind it; nothing is called under it either
    unless someone waits.
    """
    calls: list[Callable[[], object]] | None = None
    with _lock:
        state.used -= occupy
        if state.queue or state.watchers:
            calls = []
            _hand_off(state, calls)
    if calls:
        call_all(calls)


# --- bookkeeping (callers hold _lock) -------------------------------------------


def settle(state: _Slots) -> None:
    """Take the slots :class:`OneSlot` gave back without the lock off ``used``.

    Every reader of ``used`` calls this first, under the lock. ``del returned[:n]``
    is one step under the interpreter lock: a slot given back meanwhile lands
    after the first ``n`` and stays for the next settle.
    """
    returned = state.returned
    n = len(returned)
    if n:
        del returned[:n]
        state.used -= n


def _advance(waiter: _Waiter) -> bool:
    """Take as many of the waiter's names as are free, in order; True when it has all."""
    states, occupy = waiter.states, waiter.occupy
    while waiter.index < len(states):
        state = states[waiter.index]
        settle(state)
        if state.queue or state.used + occupy > state.limit:
            state.queue.append(waiter)
            # A slot given back since the settle above, by a thread that saw no one
            # queued yet, would wake no one: count it now that this waiter is queued.
            if not state.returned:
                return False
            settle(state)
            if state.queue[0] is not waiter or state.used + occupy > state.limit:
                return False
            state.queue.popleft()
        state.used += occupy
        waiter.index += 1
    waiter.done = True
    return True


def _hand_off(state: _Slots, calls: list[Callable[[], object]]) -> None:
    settle(state)
    queue = state.queue
    while queue:
        waiter = queue[0]
        if state.used + waiter.occupy > state.limit:
            break
        queue.popleft()
        state.used += waiter.occupy
        waiter.index += 1
        if _advance(waiter):
            calls.append(waiter.wake)
    if not queue and state.watchers and state.used < state.limit:
        calls.extend(w.callback for w in state.watchers)
        state.watchers.clear()


def _give_back(states: Sequence[_Slots], occupy: int) -> list[Callable[[], object]]:
    calls: list[Callable[[], object]] = []
    for state in states:
        state.used -= occupy
        _hand_off(state, calls)
    return calls


def _abandon(waiter: _Waiter) -> tuple[bool, list[Callable[[], object]]]:
    """Withdraw a waiter: ``(True, [])`` if it already had everything, else undo it."""
    if waiter.done:
        return True, []
    blocked = waiter.states[waiter.index]
    blocked.queue.remove(waiter)
    calls = _give_back(waiter.states[: waiter.index], waiter.occupy)
    _hand_off(blocked, calls)
    return False, calls


def call_all(calls: list[Callable[[], object]]) -> None:
    for call in calls:
        try:
            call()
        except Exception:
            logger.exception("a limit wake-up callback raised")


def _check(states: Sequence[_Slots], occupy: int) -> None:
    for state in states:
        if 0 < state.limit < occupy:
            raise too_many(state.name, occupy, state.limit)


# --- the public operations --------------------------------------------------------


def try_acquire(states: Sequence[_Slots], occupy: int) -> Permit | None:
    """All the names' slots at once, or ``None`` without waiting (never jumps a queue)."""
    with _lock:
        for state in states:
            settle(state)
            if state.queue or state.used + occupy > state.limit:
                return None
        for state in states:
            state.used += occupy
    return Permit(states, occupy)


def try_acquire_one(state: _Slots) -> bool:
    """One slot of one name, or False without waiting: :func:`try_acquire`'s fast path."""
    with _lock:  # see release_one
        settle(state)
        if state.queue or state.used >= state.limit:
            return False
        state.used += 1
    return True


class OneSlot:
    """One slot of one name taken by :func:`try_acquire_one`; calling it gives it back
    (once per slot taken: it is what a tagged run releases when it is final).

    Without the lock when nobody waits: the slot goes on ``returned`` (a list
    append is one step under the interpreter lock) and the next reader of
    ``used`` settles it. The append comes before the look at the queue, and a
    waiter looks at ``returned`` again after it queued itself (:func:`_advance`,
    :func:`notify_when_free`), so a slot given back as a waiter arrives is seen
    by one of the two.
    """

    __slots__ = ("state",)

    def __init__(self, state: _Slots) -> None:
        self.state = state

    def __call__(self, _future: object = None) -> None:
        state = self.state
        state.returned.append(None)
        if state.queue or state.watchers:
            calls: list[Callable[[], object]] = []
            with _lock:
                _hand_off(state, calls)
            call_all(calls)

    release = __call__


def notify_when_free(
    states: Sequence[_Slots], occupy: int, callback: Callable[[], object]
) -> _Watcher | None:
    """Call ``callback()`` once, from any thread, when :func:`try_acquire` might succeed.

    If it might succeed now, ``callback`` is called at once (in this thread) and
    ``None`` is returned; otherwise the returned handle's ``cancel()`` withdraws it.
    The call is a hint, not a reservation: try again, and register again on failure.
    """
    with _lock:
        for state in states:
            settle(state)
            if state.queue or state.used + occupy > state.limit:
                watcher = _Watcher(state, callback)
                state.watchers.append(watcher)
                if not state.returned:  # as in _advance: a slot given back meanwhile
                    return watcher
                settle(state)
                if state.queue or state.used + occupy > state.limit:
                    return watcher
                state.watchers.remove(watcher)
    call_all([callback])
    return None


def _withdraw(waiter: _Waiter) -> bool:
    """Withdraw a waiter that stopped waiting; True if it holds its permit after all."""
    with _lock:
        got, calls = _abandon(waiter)
    call_all(calls)
    return got


def _undo(waiter: _Waiter) -> None:
    """Withdraw a waiter that is leaving with an exception: give back whatever it has."""
    with _lock:
        got, calls = _abandon(waiter)
        if got:
            calls = _give_back(waiter.states, waiter.occupy)
    call_all(calls)


def acquire_sync(states: Sequence[_Slots], occupy: int, timeout: float | None) -> Permit:
    """Block the calling thread until every name has ``occupy`` free slots.

    Raises :class:`LimitTimeout` naming the limit still missing when ``timeout``
    runs out; an exception while waiting (``KeyboardInterrupt``) gives back
    everything the waiter had been handed.
    """
    _check(states, occupy)
    waker = ThreadWaker()
    waiter = _Waiter(states, occupy, waker.wake)
    with _lock:
        if _advance(waiter):
            return Permit(states, occupy)
    if in_event_loop():
        _undo(waiter)
        raise refuse_blocking_in_loop("concurrency()", "async with concurrency(...)")
    hooks = get_wait_hooks()
    hooks.before_block()
    try:
        waker.wait(timeout)
        got = _withdraw(waiter)
    except BaseException:
        _undo(waiter)
        raise
    finally:
        hooks.after_block()
    if not got:
        raise LimitTimeout(states[waiter.index].name, timeout or 0.0)
    return Permit(states, occupy)


async def acquire_async(states: Sequence[_Slots], occupy: int, timeout: float | None) -> Permit:
    """Wait in the current asyncio or trio task; never blocks the loop.

    Cancellation (the loop's own, or an enclosing anyio scope) gives back every
    slot the waiter had been handed, even ones handed over as it was cancelled.
    """
    _check(states, occupy)
    wake, wait = async_waker()
    waiter = _Waiter(states, occupy, wake)
    with _lock:
        if _advance(waiter):
            return Permit(states, occupy)
    hooks = get_wait_hooks()
    try:
        await hooks.before_await()
        with anyio.move_on_after(float("inf") if timeout is None else timeout):
            await wait()
        got = _withdraw(waiter)
    except BaseException:
        _undo(waiter)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.after_await()
    if not got:
        raise LimitTimeout(states[waiter.index].name, timeout or 0.0)
    return Permit(states, occupy)


def statistics(name: str) -> SlotStatistics | None:
    """The name's bookkeeping in this process, or ``None`` if it was never used."""
    with _lock:
        state = _states.get(name)
        if state is None:
            return None
        settle(state)
        return SlotStatistics(name, state.limit, state.used, len(state.queue), len(state.watchers))
