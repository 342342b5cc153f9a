from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable

import pytest

import taskrun.limits as limits
from taskrun._limits import LimitTimeout, UnknownLimitError, concurrency
from taskrun._limits._local import statistics


class Gauge:
    """Counts how many are inside at once and remembers the highest count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.high = 0

    def enter(self, n: int = 1) -> None:
        with self.lock:
            self.now += n
            self.high = max(self.high, self.now)

    def leave(self, n: int = 1) -> None:
        with self.lock:
            self.now -= n


def run_threads(n: int, target: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def wrapped() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not [t for t in threads if t.is_alive()]
    assert not errors, errors


def assert_idle(name: str) -> None:
    stats = statistics(name)
    assert stats is not None and (stats.used, stats.waiting) == (0, 0), stats


@pytest.mark.parametrize("limit", [1, 3])
def test_threads_never_exceed_the_limit(limit: int) -> None:
    limits.set("db", limit)
    gauge = Gauge()

    def work() -> None:
        for _ in range(30):
            with concurrency("db"):
                gauge.enter()
                time.sleep(0.0005)
                gauge.leave()

    run_threads(8, work)
    assert gauge.high == limit
    assert_idle("db")


def test_occupy_and_several_names() -> None:
    limits.set("a", 4)
    limits.set("b", 2)
    ga, gb = Gauge(), Gauge()

    def work_ab() -> None:
        for _ in range(20):
            with concurrency(["b", "a"], occupy=2):
                ga.enter(2)
                gb.enter(2)
                time.sleep(0.0005)
                ga.leave(2)
                gb.leave(2)

    def work_a() -> None:
        for _ in range(20):
            with concurrency("a"):
                ga.enter()
                time.sleep(0.0005)
                ga.leave()

    run_threads(3, work_ab)
    def both() -> None:
        work_a()
        work_ab()

    run_threads(6, both)
    assert ga.high <= 4 and gb.high <= 2
    assert_idle("a")
    assert_idle("b")


def test_timeout_names_the_limit_and_leaves_nothing_held() -> None:
    limits.set("a", 1)
    limits.set("b", 1)
    with concurrency("b"):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="'b'") as info:
            with concurrency(["a", "b"], timeout_seconds=0.1):
                pass
        assert time.monotonic() - started >= 0.09
        assert isinstance(info.value, LimitTimeout) and info.value.limit_name == "b"
        assert statistics("a").used == 0  # type: ignore[union-attr]  # "a" was handed back
    assert_idle("b")


def test_fifo_order() -> None:
    limits.set("db", 1)
    order: list[int] = []
    held = concurrency("db")
    held.__enter__()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: _take_and_record("db", i, order))
        t.start()
        _wait_until(functools.partial(_waiting_is, "db", i + 1))
        threads.append(t)
    held.__exit__(None, None, None)
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def _waiting_is(name: str, n: int) -> bool:
    stats = statistics(name)
    return stats is not None and stats.waiting == n


def _take_and_record(name: str, i: int, order: list[int]) -> None:
    with concurrency(name):
        order.append(i)


def _wait_until(cond: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def test_raising_a_limit_wakes_waiters_and_removing_it_lets_them_through() -> None:
    limits.set("db", 1)
    inside: list[int] = []
    go = threading.Event()

    def hold(i: int) -> None:
        with concurrency("db"):
            inside.append(i)
            go.wait(5)

    with concurrency("db"):
        threads = [threading.Thread(target=hold, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        _wait_until(lambda: statistics("db").waiting == 3)  # type: ignore[union-attr]
        limits.set("db", 2)
        _wait_until(lambda: len(inside) == 1)
        time.sleep(0.02)
        assert len(inside) == 1
        limits.remove("db")  # no limit any more: everyone goes ahead
        _wait_until(lambda: len(inside) == 3)
    go.set()
    for t in threads:
        t.join(5)


def test_strict_and_undefined_names() -> None:
    with concurrency("nobody"):  # not defined: no-op
        pass
    with pytest.raises(UnknownLimitError, match=r"taskrun\.limits\.set\('nobody', N\)"):
        with concurrency("nobody", strict=True):
            pass
    limits.set("db", 1)
    with pytest.raises(UnknownLimitError):
        with concurrency(["db", "nobody"], strict=True):
            pass
    assert_idle("db")


def test_bad_arguments() -> None:
    limits.set("db", 2)
    with pytest.raises(ValueError, match="can never fit limit 'db'"):
        with concurrency("db", occupy=3):
            pass
    with pytest.raises(ValueError, match="occupy must be"):
        concurrency("db", occupy=0)
    with pytest.raises(ValueError, match="timeout_seconds"):
        concurrency("db", timeout_seconds=-1)
    with pytest.raises(TypeError, match="str or a list of str"):
        concurrency(3)  # type: ignore[arg-type]


def test_sync_form_refuses_to_block_an_event_loop() -> None:
    limits.set("db", 1)

    async def main() -> None:
        with concurrency("db"):  # free: does not block, so allowed
            with pytest.raises(RuntimeError, match="async with concurrency"):
                with concurrency("db"):
                    pass

    asyncio.run(main())
    assert_idle("db")


def test_the_same_object_nests_and_reenters() -> None:
    limits.set("db", 2)
    c = concurrency("db")
    with c:
        with c:
            assert statistics("db").used == 2  # type: ignore[union-attr]
    with c:
        assert statistics("db").used == 1  # type: ignore[union-attr]
    assert_idle("db")
