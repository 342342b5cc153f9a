"""A tagged run gives its slot back without the limiter's lock when nobody waits
(``OneSlot``): the slot is appended to a list that the next reader settles. These
tests give a slot back at the worst moment for a waiter and for a watcher, and
race many threads taking and giving back, and check that no wake-up is lost and no slot is counted
twice or never."""

from __future__ import annotations

import threading

import pytest

from taskrun._limits import _local

pytestmark = pytest.mark.timeout(60)


def _fresh(name: str, limit: int) -> _local._Slots:
    _local.update_limit(name, limit)
    return _local._states[name]


class _ReleaseWhileSettling(list[None]):
    """``returned`` that gives a slot back (as a run on another thread would) just
    after the limiter read how many had come back: the narrowest interleaving,
    made certain. The releaser sees no one queued yet, so it wakes no one."""

    def __init__(self, state: _local._Slots) -> None:
        super().__init__()
        self.state = state
        self.armed = False

    def __len__(self) -> int:
        n = super().__len__()
        if self.armed:
            self.armed = False
            self.state.one()
        return n


def _armed(state: _local._Slots) -> _ReleaseWhileSettling:
    returned = _ReleaseWhileSettling(state)
    state.returned = returned
    return returned


def test_a_waiter_queued_as_the_slot_comes_back_gets_it() -> None:
    state = _fresh("race-waiter", 1)
    try:
        assert _local.try_acquire_one(state)
        _armed(state).armed = True
        # Would wait the whole timeout and raise LimitTimeout if the slot were missed.
        permit = _local.acquire_sync((state,), 1, 2.0)
        permit.release()
        stats = _local.statistics("race-waiter")
        assert stats is not None and (stats.used, stats.waiting) == (0, 0)
    finally:
        _local.update_limit("race-waiter", None)


def test_a_watcher_registered_as_the_slot_comes_back_is_called() -> None:
    state = _fresh("race-watcher", 1)
    try:
        assert _local.try_acquire_one(state)
        _armed(state).armed = True
        called = threading.Event()
        handle = _local.notify_when_free((state,), 1, called.set)
        assert called.is_set(), "the watcher was left waiting although the slot had come back"
        assert handle is None
        stats = _local.statistics("race-watcher")
        assert stats is not None and (stats.used, stats.watchers) == (0, 0)
    finally:
        _local.update_limit("race-watcher", None)


def test_slots_given_back_from_many_threads_are_all_counted() -> None:
    limit = 3
    state = _fresh("race-count", limit)
    taken = threading.Semaphore(0)
    most = 0
    inside = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal most, inside
        for _ in range(3000):
            if not _local.try_acquire_one(state):
                permit = _local.acquire_sync((state,), 1, 10.0)
                with lock:
                    inside += 1
                    most = max(most, inside)
                    inside -= 1
                permit.release()
                continue
            taken.release()
            with lock:
                inside += 1
                most = max(most, inside)
                inside -= 1
            state.one()

    try:
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = _local.statistics("race-count")
        assert stats is not None
        assert (stats.used, stats.waiting) == (0, 0)
        assert state.returned == []  # statistics() settled them
        assert most <= limit
    finally:
        _local.update_limit("race-count", None)
