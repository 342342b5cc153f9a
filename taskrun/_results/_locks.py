"""Isolation levels and key locks.

``READ_COMMITTED`` (the default): two runs with the same key may both execute; each
writes a whole record and the last write wins. ``SERIALIZABLE``: a run takes the
key's lock before it looks the key up, so a second run waits, then reads the first
one's record instead of executing.

Locks belong to a *holder* (a run id), not to a thread: a run may take its lock on
one thread and let it go on another. A holder that takes a lock it holds already gets
it at once (no self-deadlock). Two lock managers ship:

- :class:`MemoryLockManager`: within one process, for threads and event loops;
- :class:`FileLockManager`: ``fcntl.flock`` on a lock file per key next to a local
  store, so it holds across processes (and across threads of one process). A
  process that dies lets its locks go with it.

Both have a blocking :meth:`acquire` and an :meth:`acquire_async` that never blocks the
event loop (it polls with ``anyio.sleep``, 1 ms growing to 20 ms), under asyncio and
trio. Cancelling ``acquire_async`` leaves the lock untaken.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import pathlib
import threading
import time
from typing import Any, Protocol, runtime_checkable

import anyio

from ._storage import LOCK_DIR, LocalStorage

__all__ = ["FileLockManager", "IsolationLevel", "LockManager", "MemoryLockManager",
           "resolve_isolation_level"]

_POLL_START = 0.001
_POLL_MAX = 0.02


class IsolationLevel(str, enum.Enum):
    """How concurrent runs with one key behave.

    Example::

        policy = INPUTS.configure(isolation_level="SERIALIZABLE")
    """

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


def resolve_isolation_level(value: Any) -> IsolationLevel:
    """``None`` → READ_COMMITTED; a name (any case) or an IsolationLevel → itself.

    Example::

        assert resolve_isolation_level("serializable") is IsolationLevel.SERIALIZABLE
    """
    if value is None:
        return IsolationLevel.READ_COMMITTED
    if isinstance(value, IsolationLevel):
        return value
    if isinstance(value, str):
        try:
            return IsolationLevel(value.upper())
        except ValueError:
            pass
    raise ValueError(f"isolation_level must be 'READ_COMMITTED' or 'SERIALIZABLE', got {value!r}")


@runtime_checkable
class LockManager(Protocol):
    """What ``lock_manager=`` accepts.

    ``acquire`` returns False when ``timeout`` (seconds; None waits for ever) passes.

    Example::

        manager = MemoryLockManager()
        if manager.acquire("key", holder="run-1", timeout=5):
            try: ...
            finally: manager.release("key", holder="run-1")
    """

    def acquire(self, key: str, holder: str, timeout: float | None = None) -> bool: ...

    async def acquire_async(self, key: str, holder: str, timeout: float | None = None) -> bool: ...

    def release(self, key: str, holder: str) -> None: ...

    def is_locked(self, key: str) -> bool: ...


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if not timeout >= 0:
        raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")
    return time.monotonic() + timeout


class _Base:
    def try_acquire(self, key: str, holder: str) -> bool:
        raise NotImplementedError

    def _wait_blocking(self, key: str, holder: str, deadline: float | None) -> bool:
        delay = _POLL_START
        while True:
            if self.try_acquire(key, holder):
                return True
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(delay, left))
            else:
                time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def acquire_async(self, key: str, holder: str, timeout: float | None = None) -> bool:
        """Take ``key`` for ``holder`` without blocking the loop; False at timeout.

        Cancellation: the lock is not taken (or, if it was just taken, let go).
        """
        deadline = _check_timeout(timeout)
        delay = _POLL_START
        while True:
            if self.try_acquire(key, holder):
                try:
                    await anyio.lowlevel.checkpoint()
                except BaseException:
                    self.release(key, holder)
                    raise
                return True
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                await anyio.sleep(min(delay, left))
            else:
                await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def acquire(self, key: str, holder: str, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def release(self, key: str, holder: str) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def hold(self, key: str, holder: str, timeout: float | None = None) -> Any:
        """``with manager.hold(key, holder):`` — TimeoutError if not taken in time."""
        if not self.acquire(key, holder, timeout):
            raise TimeoutError(f"lock {key!r} was not free within {timeout} s")
        try:
            yield self
        finally:
            self.release(key, holder)


class MemoryLockManager(_Base):
    """Key locks within one process (threads and event loops alike).

    Example::

        manager = MemoryLockManager()
        manager.acquire("k", holder="a")
        assert not manager.acquire("k", holder="b", timeout=0)
        manager.release("k", holder="a")
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._holders: dict[str, tuple[str, int]] = {}

    def try_acquire(self, key: str, holder: str) -> bool:
        with self._cond:
            current = self._holders.get(key)
            if current is None:
                self._holders[key] = (holder, 1)
                return True
            if current[0] == holder:
                self._holders[key] = (holder, current[1] + 1)
                return True
            return False

    def acquire(self, key: str, holder: str, timeout: float | None = None) -> bool:
        """Take ``key`` for ``holder``, waiting up to ``timeout`` seconds; False at timeout."""
        deadline = _check_timeout(timeout)
        with self._cond:
            while True:
                current = self._holders.get(key)
                if current is None or current[0] == holder:
                    self._holders[key] = (holder, 1 if current is None else current[1] + 1)
                    return True
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)

    def release(self, key: str, holder: str) -> None:
        """Let ``key`` go; RuntimeError if ``holder`` does not hold it."""
        with self._cond:
            current = self._holders.get(key)
            if current is None or current[0] != holder:
                raise RuntimeError(f"lock {key!r} is not held by {holder!r}")
            if current[1] > 1:
                self._holders[key] = (holder, current[1] - 1)
                return
            del self._holders[key]
            self._cond.notify_all()

    def is_locked(self, key: str) -> bool:
        """True while some holder has ``key``."""
        with self._cond:
            return key in self._holders


class FileLockManager(_Base):
    """Key locks shared by every process on the machine: ``fcntl.flock`` per key.

    Lock files live in ``directory`` (for a :class:`LocalStorage` store,
    ``<store>/.locks``), named by the SHA-256 of the key; they stay after release.
    POSIX only.

    Example::

        manager = FileLockManager("/tmp/cache/.locks")
        with manager.hold("k", holder="run-1"):
            ...
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only
        except ImportError as exc:  # pragma: no cover - Windows
            raise RuntimeError("FileLockManager needs fcntl (POSIX); use MemoryLockManager") from exc
        self._fcntl = fcntl
        self.directory = pathlib.Path(directory)
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, int, int]] = {}

    def _file(self, key: str) -> pathlib.Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".lock")

    def try_acquire(self, key: str, holder: str) -> bool:
        with self._lock:
            current = self._held.get(key)
            if current is not None:
                if current[0] == holder:
                    self._held[key] = (holder, current[1], current[2] + 1)
                    return True
                return False
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._file(key), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            self._held[key] = (holder, fd, 1)
            return True

    def acquire(self, key: str, holder: str, timeout: float | None = None) -> bool:
        """Take ``key`` for ``holder``, polling up to ``timeout`` seconds; False at timeout."""
        return self._wait_blocking(key, holder, _check_timeout(timeout))

    def release(self, key: str, holder: str) -> None:
        """Let ``key`` go; RuntimeError if ``holder`` does not hold it."""
        with self._lock:
            current = self._held.get(key)
            if current is None or current[0] != holder:
                raise RuntimeError(f"lock {key!r} is not held by {holder!r}")
            if current[2] > 1:
                self._held[key] = (holder, current[1], current[2] - 1)
                return
            del self._held[key]
            fd = current[1]
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def is_locked(self, key: str) -> bool:
        """True while any process holds ``key``."""
        with self._lock:
            if key in self._held:
                return True
        path = self._file(key)
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


_memory_default = MemoryLockManager()
_file_managers: dict[pathlib.Path, FileLockManager] = {}
_file_lock = threading.Lock()


def default_lock_manager(storage: Any) -> Any:
    """The lock manager SERIALIZABLE uses when none is configured for ``storage``.

    A :class:`~taskrun._results._storage.LocalStorage` gets the process-wide
    :class:`FileLockManager` of its ``.locks`` directory (so it holds across
    processes); any other storage the process-wide :class:`MemoryLockManager`.
    """
    if isinstance(storage, LocalStorage):
        directory = storage.root / LOCK_DIR
        with _file_lock:
            manager = _file_managers.get(directory)
            if manager is None:
                manager = _file_managers[directory] = FileLockManager(directory)
        return manager
    return _memory_default
