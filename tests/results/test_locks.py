from __future__ import annotations

import multiprocessing
import pathlib
import threading
import time

import anyio
import pytest

from taskrun._results._locks import FileLockManager, MemoryLockManager, default_lock_manager
from taskrun._results._storage import FsspecStorage, LocalStorage

from . import _workers


@pytest.fixture(params=["memory", "file"])
def manager(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> MemoryLockManager | FileLockManager:
    return MemoryLockManager() if request.param == "memory" else FileLockManager(tmp_path / "locks")


def test_exclusive_per_key_and_reentrant_per_holder(manager: MemoryLockManager | FileLockManager) -> None:
    assert manager.acquire("k", "a", timeout=1)
    assert manager.acquire("k", "a", timeout=0)          # same holder: at once
    assert not manager.acquire("k", "b", timeout=0.05)
    assert manager.acquire("other", "b", timeout=0)
    assert manager.is_locked("k")
    manager.release("k", "a")
    assert not manager.acquire("k", "b", timeout=0)      # still held once by a
    manager.release("k", "a")
    assert manager.acquire("k", "b", timeout=0)
    with pytest.raises(RuntimeError, match="not held by 'a'"):
        manager.release("k", "a")
    manager.release("k", "b")
    manager.release("other", "b")
    assert not manager.is_locked("k")


def test_released_from_another_thread(manager: MemoryLockManager | FileLockManager) -> None:
    assert manager.acquire("k", "run-1")
    t = threading.Thread(target=manager.release, args=("k", "run-1"))
    t.start()
    t.join(5)
    assert manager.acquire("k", "run-2", timeout=1)
    manager.release("k", "run-2")


def test_threads_are_serialized(manager: MemoryLockManager | FileLockManager) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def work(n: int) -> None:
        nonlocal inside, most
        with manager.hold("k", f"h{n}", timeout=10):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 1 and not manager.is_locked("k")


def test_negative_timeout_is_rejected(manager: MemoryLockManager | FileLockManager) -> None:
    with pytest.raises(ValueError, match="timeout"):
        manager.acquire("k", "a", timeout=-1)


@pytest.mark.anyio
async def test_async_acquire_waits_without_blocking_the_loop(
        manager: MemoryLockManager | FileLockManager) -> None:
    assert manager.acquire("k", "holder")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        assert not await manager.acquire_async("k", "waiter", timeout=0.1)
        threading.Timer(0.05, manager.release, ("k", "holder")).start()
        assert await manager.acquire_async("k", "waiter", timeout=5)
        tg.cancel_scope.cancel()
    assert ticks >= 10
    manager.release("k", "waiter")


@pytest.mark.anyio
async def test_async_acquire_cancelled_leaves_lock_free(manager: MemoryLockManager | FileLockManager) -> None:
    assert manager.acquire("k", "holder")
    with anyio.move_on_after(0.05):
        await manager.acquire_async("k", "waiter")
    manager.release("k", "holder")
    assert not manager.is_locked("k")


@pytest.mark.anyio
async def test_async_waiters_serialized(manager: MemoryLockManager | FileLockManager) -> None:
    order: list[int] = []
    inside = 0
    most = 0

    async def run(n: int) -> None:
        nonlocal inside, most
        assert await manager.acquire_async("k", f"h{n}", timeout=10)
        try:
            inside += 1
            most = max(most, inside)
            await anyio.sleep(0.01)
            order.append(n)
            inside -= 1
        finally:
            manager.release("k", f"h{n}")

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(run, n)
    assert most == 1 and sorted(order) == list(range(5))


def test_file_lock_holds_across_processes(tmp_path: pathlib.Path) -> None:
    ready = tmp_path / "ready"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_workers.hold_file_lock, args=(str(tmp_path / "locks"), "k", str(ready), 0.6))
    proc.start()
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and proc.is_alive(), "child never took the lock"
            time.sleep(0.01)
        manager = FileLockManager(tmp_path / "locks")
        assert manager.is_locked("k")
        assert not manager.acquire("k", "parent", timeout=0.1)
        started = time.monotonic()
        assert manager.acquire("k", "parent", timeout=20)
        assert time.monotonic() - started > 0.1
        manager.release("k", "parent")
    finally:
        proc.join(30)
    assert proc.exitcode == 0


def test_file_lock_of_a_killed_process_is_freed(tmp_path: pathlib.Path) -> None:
    ready = tmp_path / "ready"
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_workers.hold_file_lock, args=(str(tmp_path / "locks"), "k", str(ready), 60))
    proc.start()
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and proc.is_alive()
        time.sleep(0.01)
    proc.kill()
    proc.join(30)
    manager = FileLockManager(tmp_path / "locks")
    assert manager.acquire("k", "parent", timeout=5)
    manager.release("k", "parent")


def test_default_lock_manager_by_storage(tmp_path: pathlib.Path) -> None:
    local = default_lock_manager(LocalStorage(tmp_path))
    assert isinstance(local, FileLockManager) and local.directory == tmp_path / ".locks"
    assert default_lock_manager(LocalStorage(tmp_path)) is local
    assert isinstance(default_lock_manager(FsspecStorage("memory://locks-test")), MemoryLockManager)
