"""Transactions: commit the records of several runs together, or none of them.

``with transaction():`` (or ``async with``) makes a transaction current for the code
inside it, through a context variable, so runs started there (and their worker
threads, which run in a copy of the submitter's context) find it. A run that would
write a record *stages* it instead. When the block exits without an error the
transaction commits: every staged record is written, then the ``on_commit`` hooks
run. When it exits with an error nothing is written and the ``on_rollback`` hooks run
(newest first). Hooks take the transaction.

Nesting follows the seed engine:

- a nested block that exits cleanly hands its staged records and hooks to its
  parent, which commits them with its own (``commit_mode="lazy"``, the default,
  inherited from the parent); ``commit_mode="eager"`` commits the nested block on its
  own exit; ``commit_mode="off"`` on the outermost block rolls back at the end;
- a nested block that exits with an error rolls itself back *and* its parent, at
  once, so the parent commits nothing even if the code in it catches the error;
- ``set(name, value)`` / ``get(name)`` store values on a transaction; a nested
  block starts with a copy of its parent's.

The block's exit does not wait for runs that are still going: wait for them inside
the block (``future.result()``). A run that finishes after its transaction closed
writes its record at once if the transaction committed, and drops it (running its
``on_rollback`` hooks) if it rolled back.
"""

from __future__ import annotations

import contextvars
import copy
import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio

__all__ = ["CommitMode", "StagedRecord", "Transaction", "TransactionState", "get_transaction", "transaction"]

logger = logging.getLogger("taskrun.transactions")

Hook = Callable[["Transaction"], object]

_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "taskrun_transaction", default=None
)


class CommitMode(str, enum.Enum):
    """When a transaction's records are written.

    Example::

        with transaction(commit_mode="eager"): ...
    """

    LAZY = "lazy"
    EAGER = "eager"
    OFF = "off"


class TransactionState(str, enum.Enum):
    """``pending → active → committed | rolled_back``.

    Example::

        assert txn.state is TransactionState.COMMITTED
    """

    PENDING = "pending"
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


@dataclass
class StagedRecord:
    """One record waiting for its transaction: where, what, and what to call after.

    ``release`` (optional) lets go of the run's key lock once the record is written or
    dropped, so a SERIALIZABLE reader waiting for the key sees the committed record.
    """

    storage: Any
    key: str
    data: bytes
    task_name: str | None = None
    on_commit: list[Hook] = field(default_factory=list)
    on_rollback: list[Hook] = field(default_factory=list)
    release: Callable[[], None] | None = None


def _check_hook(name: str, hook: Any) -> Hook:
    if not callable(hook):
        raise TypeError(f"{name} hooks must be callables taking (transaction); got {hook!r}")
    return hook  # type: ignore[no-any-return]


class Transaction:
    """A group of record writes committed together. Make one with :func:`transaction`.

    Example::

        with transaction() as txn:
            txn.set("run", "nightly")
            load.submit(path).result()
            txn.on_commit(lambda t: print("saved"))
    """

    def __init__(self, commit_mode: CommitMode | str | None = None) -> None:
        self.commit_mode: CommitMode | None = None if commit_mode is None else _commit_mode(commit_mode)
        self.state = TransactionState.PENDING
        self.parent: Transaction | None = None
        self.children: list[Transaction] = []
        self._lock = threading.RLock()
        self._staged: dict[str, StagedRecord] = {}
        self._order: list[StagedRecord] = []
        self._commit_hooks: list[Hook] = []
        self._rollback_hooks: list[Hook] = []
        self._values: dict[str, Any] = {}
        self._token: contextvars.Token[Transaction | None] | None = None
        self._handed_to: Transaction | None = None

    def __repr__(self) -> str:
        return f"<Transaction {self.state.value}, {len(self._order)} staged>"

    # -- values ------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Store ``value`` under ``name`` on this transaction."""
        self._values[name] = value

    def get(self, name: str, *default: Any) -> Any:
        """The value stored under ``name``; ``default`` if given, else KeyError."""
        if name in self._values:
            return self._values[name]
        if default:
            return default[0]
        raise KeyError(f"no value named {name!r} in this transaction (set it with txn.set(name, value))")

    # -- state -------------------------------------------------------------------
    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    @property
    def staged_keys(self) -> list[str]:
        """Keys of the records waiting for the commit, in staging order."""
        with self._lock:
            return [r.key for r in self._order]

    # -- hooks and staging -------------------------------------------------------
    def on_commit(self, hook: Hook) -> Hook:
        """Register ``hook(transaction)`` to run after the commit (usable as a decorator)."""
        self._commit_hooks.append(_check_hook("on_commit", hook))
        return hook

    def on_rollback(self, hook: Hook) -> Hook:
        """Register ``hook(transaction)`` to run on a rollback (usable as a decorator)."""
        self._rollback_hooks.append(_check_hook("on_rollback", hook))
        return hook

    def stage(self, record: StagedRecord) -> None:
        """Hold ``record`` until the commit; after the end, write or drop it at once."""
        if self._handed_to is not None:
            self._handed_to.stage(record)
            return
        with self._lock:
            state = self.state
            if state is TransactionState.ACTIVE:
                old = self._staged.pop(_ident(record), None)
                if old is not None:
                    self._order.remove(old)
                    _release(old)
                self._staged[_ident(record)] = record
                self._order.append(record)
                return
        if state is TransactionState.COMMITTED:
            self._write([record])
            self._run_hooks([h for h in record.on_commit], "on_commit")
        else:
            _release(record)
            self._run_hooks(list(reversed(record.on_rollback)), "on_rollback")

    def read_staged(self, storage: Any, key: str) -> bytes | None:
        """A record staged here or in an enclosing transaction (read-your-writes)."""
        txn: Transaction | None = self
        while txn is not None:
            with txn._lock:
                found = txn._staged.get(f"{id(storage)}:{key}")
            if found is not None:
                return found.data
            txn = txn.parent
        return None

    # -- commit / rollback -------------------------------------------------------
    def commit(self) -> bool:
        """Write every staged record, then run the on_commit hooks. False if already ended.

        A record that fails to write rolls the whole transaction back (records already
        written stay; the error is logged) and returns False.
        """
        with self._lock:
            if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
                return False
            records = list(self._order)
        try:
            self._write(records)
        except Exception:
            logger.exception("writing the records of a transaction failed; rolling it back")
            self.rollback()
            return False
        with self._lock:
            self.state = TransactionState.COMMITTED
            self._staged.clear()
            self._order.clear()
        for child in self.children:
            if child._handed_to is self and child.state is TransactionState.ACTIVE:
                child.state = TransactionState.COMMITTED
        hooks = [h for r in records for h in r.on_commit] + list(self._commit_hooks)
        self._run_hooks(hooks, "on_commit")
        return True

    def rollback(self) -> bool:
        """Drop every staged record and run the on_rollback hooks (newest first). False if ended."""
        with self._lock:
            if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
                return False
            self.state = TransactionState.ROLLED_BACK
            records = list(self._order)
            self._staged.clear()
            self._order.clear()
        for r in records:
            _release(r)
        hooks = [h for r in records for h in r.on_rollback] + list(self._rollback_hooks)
        self._run_hooks(list(reversed(hooks)), "on_rollback")
        for child in reversed(self.children):
            child.rollback()
        return True

    def _write(self, records: list[StagedRecord]) -> None:
        try:
            for r in records:
                r.storage.write(r.key, r.data)
        finally:
            for r in records:
                _release(r)

    def _run_hooks(self, hooks: list[Hook], kind: str) -> None:
        for hook in hooks:
            try:
                hook(self)
            except Exception:
                logger.exception("%s hook %r raised", kind, getattr(hook, "__name__", hook))

    # -- nesting -----------------------------------------------------------------
    def _absorb(self, child: Transaction) -> None:
        with child._lock:
            records = list(child._order)
            child._staged.clear()
            child._order.clear()
            hooks_c, hooks_r = list(child._commit_hooks), list(child._rollback_hooks)
            child._commit_hooks.clear()
            child._rollback_hooks.clear()
            child._handed_to = self
        for r in records:
            self.stage(r)
        self._commit_hooks.extend(hooks_c)
        self._rollback_hooks.extend(hooks_r)

    def _enter(self) -> Transaction:
        if self.state is not TransactionState.PENDING:
            raise RuntimeError("a transaction can be entered once; make a new one with transaction()")
        parent = _current.get()
        if parent is not None and parent.state is not TransactionState.ACTIVE:
            parent = None
        self.parent = parent
        if parent is not None:
            self._values = copy.copy(parent._values)
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent is not None else CommitMode.LAZY
        self.state = TransactionState.ACTIVE
        self._token = _current.set(self)
        return self

    def _leave_context(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _current.reset(token)
            except ValueError:
                _current.set(self.parent)

    def _finish(self, failed: bool) -> None:
        parent = self.parent
        if failed:
            self.rollback()
            if parent is not None:
                parent.children.append(self)
                parent.rollback()
            return
        if self.commit_mode is CommitMode.EAGER:
            self.commit()
        if parent is not None:
            parent.children.append(self)
            if self.state is TransactionState.ACTIVE:
                parent._absorb(self)
            return
        if self.commit_mode is CommitMode.OFF:
            self.rollback()
        else:
            self.commit()

    def _writes_on_exit(self) -> bool:
        return self.parent is None or self.commit_mode is CommitMode.EAGER

    def __enter__(self) -> Transaction:
        return self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave_context()
        self._finish(exc_type is not None)

    async def __aenter__(self) -> Transaction:
        return self._enter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave_context()
        if exc_type is not None or not self._writes_on_exit():
            self._finish(exc_type is not None)
            return
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._finish, False)


def _ident(record: StagedRecord) -> str:
    return f"{id(record.storage)}:{record.key}"


def _release(record: StagedRecord) -> None:
    release, record.release = record.release, None
    if release is not None:
        try:
            release()
        except Exception:
            logger.exception("releasing the lock of record %r failed", record.key)


def _commit_mode(value: CommitMode | str) -> CommitMode:
    if isinstance(value, CommitMode):
        return value
    try:
        return CommitMode(str(value).lower())
    except ValueError:
        raise ValueError(f"commit_mode must be 'lazy', 'eager' or 'off', got {value!r}") from None


def transaction(commit_mode: CommitMode | str | None = None) -> Transaction:
    """A transaction for ``with`` or ``async with``.

    Records written by runs inside the block are committed together when it exits
    without an error; on an error nothing is committed and the ``on_rollback`` hooks
    run. With ``async with`` the commit's writes run on a worker thread, so the event
    loop is never blocked. See the module docstring for nesting.

    Example::

        with transaction():
            a = extract.submit(day).result()
            load.submit(a).result()        # both records, or neither
    """
    return Transaction(commit_mode)


def get_transaction() -> Transaction | None:
    """The transaction the calling code runs in, or None.

    Example::

        txn = get_transaction()
        if txn is not None:
            txn.set("rows", 10)
    """
    txn = _current.get()
    return txn if txn is not None and txn.state is TransactionState.ACTIVE else None
