"""map() pauses the cyclic garbage collector while it builds its runs, and restores it."""

from __future__ import annotations

import gc
import threading

import pytest

from taskrun import ThreadPoolTaskRunner, task
from taskrun._core._gc import collector_paused


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
