"""map() pauses the cyclic garbage collector while it builds its runs, and restores it."""

from __future__ import annotations

import gc
import threading

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun._core._gc import PROMOTE_AFTER, collector_paused


@task
def identity(x: int) -> int:
    return x


def test_the_pause_nests_and_restores_an_enabled_collector() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_pause_keeps_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_pause_restores_the_collector_when_building_fails() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


@pytest.mark.timeout(30)
def test_pauses_from_many_threads_end_with_the_collector_on() -> None:
    start = threading.Barrier(4)

    def build() -> None:
        start.wait(10)
        for _ in range(200):
            with collector_paused():
                pass

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert gc.isenabled()


@pytest.mark.timeout(30)
def test_map_leaves_the_collector_as_it_found_it() -> None:
    with ThreadPoolTaskRunner(max_workers=2) as runner:
        assert runner.map(identity, {"x": range(100)}).result(timeout=10) == list(range(100))
        assert gc.isenabled()
        gc.disable()
        try:
            runner.map(identity, {"x": range(10)}).result(timeout=10)
            assert not gc.isenabled()
        finally:
            gc.enable()


class _Node:
    """A tracked object that the collector must traverse."""

    def __init__(self) -> None:
        self.peer: object = None


def _in_oldest_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=2))


def test_a_large_pause_moves_its_objects_to_the_oldest_generation() -> None:
    gc.collect()
    with collector_paused():
        built = [_Node() for _ in range(PROMOTE_AFTER + 1000)]
    assert gc.isenabled()
    assert gc.get_count()[0] < 1000, "the young generation should be empty after the move"
    assert _in_oldest_generation(built[-1])
    assert gc.get_freeze_count() == 0


def test_a_small_pause_leaves_its_objects_young() -> None:
    gc.collect()
    with collector_paused():
        built = [_Node() for _ in range(100)]
    assert not _in_oldest_generation(built[-1])


def test_objects_the_program_froze_stay_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            built = [_Node() for _ in range(PROMOTE_AFTER + 1000)]
        assert gc.get_freeze_count() == frozen
        assert not _in_oldest_generation(built[-1])
    finally:
        gc.unfreeze()


def test_garbage_cycles_made_during_a_large_pause_are_still_collected() -> None:
    gc.collect()
    with collector_paused():
        built = [_Node() for _ in range(PROMOTE_AFTER + 1000)]
        for a, b in zip(built[::2], built[1::2], strict=True):
            a.peer, b.peer = b, a
    del built
    assert gc.collect() >= PROMOTE_AFTER
