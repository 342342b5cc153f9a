"""``scope="machine"``: limits shared by every process that uses the same ``TASKRUN_HOME``.

State lives in ``$TASKRUN_HOME/limits.sqlite`` (WAL journal, 10 s busy timeout):

- a concurrency limit's holders are *leases*, rows of ``(name, slots, expires)``.
  Each lease lives ``TASKRUN_LIMITS_LEASE_TTL`` seconds (default 30). While a
  process holds leases, one background thread (``taskrun-limits-heartbeat``)
  renews them every third of the TTL, and it stops when the process holds none.
  A process that dies without releasing (SIGKILL, power loss of a container) stops
  renewing, so its slots come back at most one TTL later;
- a rate limit's bucket is one row ``(name, active, updated)``, drained by the
  same rule as the in-process bucket (wall-clock time, so every process agrees).

Waiting polls (2 ms, doubling to 50 ms): there is no cross-process wake-up, and
the order among processes is not FIFO. Every process must define the limit with
the same number of slots (a shared ``limits.toml`` does that); each checks the
count it knows.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from ._errors import LimitTimeout, too_many
from ._hooks import get_wait_hooks
from ._registry import taskrun_home
from ._wake import in_event_loop, refuse_blocking_in_loop

logger = logging.getLogger("taskrun.limits")
TTL_ENV = "TASKRUN_LIMITS_LEASE_TTL"
DEFAULT_TTL = 30.0
BUSY_TIMEOUT = 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, slots INTEGER NOT NULL,
    expires REAL NOT NULL, pid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_by_name ON leases (name, expires);
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, active REAL NOT NULL, updated REAL NOT NULL);
"""


def lease_ttl() -> float:
    """``TASKRUN_LIMITS_LEASE_TTL`` in seconds (default 30, at least 0.1)."""
    raw = os.environ.get(TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not ttl >= 0.1:
        raise ValueError(f"{TTL_ENV}={raw!r}: must be a number of seconds >= 0.1 (default {DEFAULT_TTL:g})")
    return ttl


def db_path() -> Path:
    return taskrun_home() / "limits.sqlite"


_pool_lock = threading.Lock()
_pool: dict[Path, list[sqlite3.Connection]] = {}


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    _use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to write-ahead logging, waiting out other processes.

    SQLite answers "database is locked" at once, without its busy handler, when
    another connection holds the lock this switch needs (several processes
    opening a new database together): so it is retried here for as long as the
    busy timeout would have waited.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection used by one thread at a time, then kept for the next caller."""
    with _pool_lock:
        free = _pool.setdefault(path, [])
        conn = free.pop() if free else None
    if conn is None:
        conn = _open(path)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.rollback()
        with _pool_lock:
            _pool.setdefault(path, []).append(conn)


def close_connections() -> None:
    """Close the idle pooled connections (at exit, and when tests switch ``TASKRUN_HOME``)."""
    with _pool_lock:
        conns = [conn for free in _pool.values() for conn in free]
        _pool.clear()
    for conn in conns:
        conn.close()


atexit.register(close_connections)


class _Heartbeat:
    """Renews this process's leases while it holds any; one thread at most."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[str, tuple[Path, float]] = {}
        self._thread: threading.Thread | None = None

    def add(self, path: Path, ids: Sequence[str], ttl: float) -> None:
        with self._cond:
            for lease in ids:
                self._held[lease] = (path, ttl)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="taskrun-limits-heartbeat", daemon=True
                )
                self._thread.start()

    def remove(self, ids: Sequence[str]) -> None:
        with self._cond:
            for lease in ids:
                self._held.pop(lease, None)
            if not self._held:
                self._cond.notify_all()

    def held(self) -> int:
        with self._cond:
            return len(self._held)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._held:
                    self._thread = None
                    return
                interval = min(ttl for _, ttl in self._held.values()) / 3
                self._cond.wait(interval)
                if not self._held:
                    self._thread = None
                    return
                held = dict(self._held)
            self._renew(held)

    @staticmethod
    def _renew(held: dict[str, tuple[Path, float]]) -> None:
        now = time.time()
        for lease, (path, ttl) in held.items():
            try:
                with _connect(path) as conn:
                    cur = conn.execute("UPDATE leases SET expires = ? WHERE id = ?", (now + ttl, lease))
                if cur.rowcount == 0:
                    logger.warning("machine-scope lease %s expired before it could be renewed", lease)
            except sqlite3.Error:
                logger.exception("renewing machine-scope lease %s failed", lease)


HEARTBEAT = _Heartbeat()


class MachinePermit:
    """Leases held in the machine-wide file; :meth:`release` (idempotent) deletes them.

    Example::

        permit = try_acquire([("gpu", 1)], 1)
        if permit:
            permit.release()
    """

    __slots__ = ("_ids", "_path", "names", "occupy")

    def __init__(self, path: Path, ids: list[str], names: tuple[str, ...], occupy: int) -> None:
        self._path = path
        self._ids: list[str] | None = ids
        self.names = names
        self.occupy = occupy

    def release(self) -> None:
        ids, self._ids = self._ids, None
        if not ids:
            return
        HEARTBEAT.remove(ids)
        with _connect(self._path) as conn:
            conn.executemany("DELETE FROM leases WHERE id = ?", [(i,) for i in ids])


def _check(limits: Sequence[tuple[str, int]], occupy: int) -> None:
    for name, limit in limits:
        if 0 < limit < occupy:
            raise too_many(name, occupy, limit)


def try_acquire(limits: Sequence[tuple[str, int]], occupy: int) -> MachinePermit | None:
    """All ``(name, limit)`` pairs at once in one transaction, or ``None``."""
    path, ttl = db_path(), lease_ttl()
    with _connect(path) as conn:  # an exception rolls the transaction back
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM leases WHERE expires < ?", (now,))
        for name, limit in limits:
            (used,) = conn.execute(
                "SELECT COALESCE(SUM(slots), 0) FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if used + occupy > limit:
                conn.execute("COMMIT")
                return None
        ids = [uuid.uuid4().hex for _ in limits]
        conn.executemany(
            "INSERT INTO leases (id, name, slots, expires, pid) VALUES (?, ?, ?, ?, ?)",
            [(i, name, occupy, now + ttl, os.getpid()) for i, (name, _) in zip(ids, limits, strict=True)],
        )
        conn.execute("COMMIT")
    HEARTBEAT.add(path, ids, ttl)
    return MachinePermit(path, ids, tuple(n for n, _ in limits), occupy)


def _name_blocking(limits: Sequence[tuple[str, int]], occupy: int) -> str:
    with _connect(db_path()) as conn:
        now = time.time()
        for name, limit in limits:
            (used,) = conn.execute(
                "SELECT COALESCE(SUM(slots), 0) FROM leases WHERE name = ? AND expires >= ?", (name, now)
            ).fetchone()
            if used + occupy > limit:
                return name
    return limits[0][0]


def acquire_sync(limits: Sequence[tuple[str, int]], occupy: int, timeout: float | None) -> MachinePermit:
    """Poll until every limit has room; :class:`LimitTimeout` names the one still full."""
    _check(limits, occupy)
    permit = try_acquire(limits, occupy)
    if permit is not None:
        return permit
    if in_event_loop():
        raise refuse_blocking_in_loop("concurrency()", "async with concurrency(...)")
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.002
    hooks = get_wait_hooks()
    hooks.before_block()
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise LimitTimeout(_name_blocking(limits, occupy), timeout or 0.0)
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, 0.05)
            permit = try_acquire(limits, occupy)
            if permit is not None:
                return permit
    finally:
        hooks.after_block()


async def acquire_async(
    limits: Sequence[tuple[str, int]], occupy: int, timeout: float | None
) -> MachinePermit:
    """As :func:`acquire_sync`; each database call runs in a worker thread."""
    _check(limits, occupy)
    permit = await anyio.to_thread.run_sync(try_acquire, limits, occupy)
    if permit is not None:
        return permit
    hooks = get_wait_hooks()
    delay = 0.002
    try:
        await hooks.before_await()
        with anyio.move_on_after(float("inf") if timeout is None else timeout):
            while True:
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.05)
                permit = await anyio.to_thread.run_sync(try_acquire, limits, occupy)
                if permit is not None:
                    return permit
    finally:
        with anyio.CancelScope(shield=True):
            await hooks.after_await()
    raise LimitTimeout(await anyio.to_thread.run_sync(_name_blocking, limits, occupy), timeout or 0.0)


# --- rate limits --------------------------------------------------------------------


def reserve(name: str, limit: int, decay: float, occupy: int, timeout: float | None) -> float:
    """The machine-wide twin of :meth:`taskrun._limits._bucket.Bucket.reserve`."""
    if occupy > limit > 0:
        raise too_many(name, occupy, limit)
    with _connect(db_path()) as conn:  # an exception rolls the transaction back
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        row = conn.execute("SELECT active, updated FROM buckets WHERE name = ?", (name,)).fetchone()
        active = 0.0 if row is None else max(0.0, row[0] - decay * (now - row[1]))
        wait = max(0.0, active + occupy - limit) / decay
        if timeout is not None and wait > timeout:
            raise LimitTimeout(name, timeout, "rate tokens")
        conn.execute(
            "INSERT OR REPLACE INTO buckets (name, active, updated) VALUES (?, ?, ?)",
            (name, active + occupy, now),
        )
        conn.execute("COMMIT")
    return wait


def give_back(name: str, decay: float, occupy: int) -> None:
    """Withdraw a machine-wide reservation whose holder stopped waiting."""
    with _connect(db_path()) as conn:
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        row = conn.execute("SELECT active, updated FROM buckets WHERE name = ?", (name,)).fetchone()
        if row is not None:
            active = max(0.0, row[0] - decay * (now - row[1]) - occupy)
            conn.execute("UPDATE buckets SET active = ?, updated = ? WHERE name = ?", (active, now, name))
        conn.execute("COMMIT")
