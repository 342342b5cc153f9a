"""``concurrency()``, ``rate_limit()`` and ``rate_limit_async()``: the user-facing waits.

Where the slots come from is decided per name, at each entry:

- inside a Dask worker's task, a concurrency limit is the cluster-wide
  ``distributed.Semaphore`` of that name (see ``_dask``);
- otherwise a limit with ``scope="machine"`` lives in ``$TASKRUN_HOME/limits.sqlite``
  (see ``_machine``), and one with ``scope="process"`` in this process (``_local``).

Rate limits (``slot_decay_per_second`` set) use a token bucket in their own scope
(process or machine), also inside Dask workers. Several names are taken in a fixed
order: rate tokens first, then process slots, then machine slots (or Dask leases),
each group in sorted name order; on any failure everything taken is given back.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from types import TracebackType

import anyio.lowlevel
import anyio.to_thread

from . import _bucket, _dask, _local, _machine
from ._errors import check_occupy, check_timeout
from ._registry import REGISTRY, Limit

logger = logging.getLogger("taskrun.limits")
_fast_get = _local.fast.get
_acquire = _local._lock.acquire
_release = _local._lock.release
_UNSET = object()
_Slots = _local._Slots
_modules = sys.modules
_DASK_WORKER = "distributed.worker"


class UnknownLimitError(LookupError):
    """``strict=True`` and a name has no limit defined.

    Example::

        with pytest.raises(UnknownLimitError):
            with concurrency("nope", strict=True):
                pass
    """


def normalize_names(names: object) -> tuple[str, ...]:
    if isinstance(names, str):
        return (names,)
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return tuple(dict.fromkeys(names))
    raise TypeError(f"names must be a str or a list of str (limit names), got {names!r}")


def _resolve(names: Sequence[str], strict: bool, what: str) -> list[Limit]:
    REGISTRY.ensure_loaded()
    effective = REGISTRY.effective
    found: list[Limit] = []
    for name in names:
        limit = effective.get(name)
        if limit is None:
            if strict:
                raise UnknownLimitError(
                    f"{what}: no limit named {name!r} is defined; define it with "
                    f"taskrun.limits.set({name!r}, N), TASKRUN_LIMITS or limits.toml, or pass strict=False"
                )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s: no limit named %r; not limiting on it", what, name)
            continue
        found.append(limit)
    return found


class _Plan:
    __slots__ = ("dask", "local", "machine", "rates")

    def __init__(self, limits: list[Limit], *, concurrency: bool) -> None:
        in_dask = concurrency and _dask.in_dask_worker()
        self.rates: list[Limit] = []
        self.local: list[tuple[str, int]] = []
        self.machine: list[tuple[str, int]] = []
        self.dask: list[tuple[str, int]] = []
        for limit in limits:
            if limit.slot_decay_per_second is not None:
                self.rates.append(limit)
            elif in_dask:
                self.dask.append((limit.name, limit.limit))
            elif limit.scope == "machine":
                self.machine.append((limit.name, limit.limit))
            else:
                self.local.append((limit.name, limit.limit))
        self.rates.sort(key=lambda limit: limit.name)
        self.machine.sort()


def _rate_error(limit: Limit) -> ValueError:
    return ValueError(
        f"rate_limit: limit {limit.name!r} has no slot_decay_per_second, so its slots never come back "
        f"on their own; make it a rate limit with taskrun.limits.set({limit.name!r}, {limit.limit}, "
        f"slot_decay_per_second=R) (TASKRUN_LIMITS: '{limit.name}={limit.limit}/s'), "
        "or use `with concurrency(...)` instead"
    )


def _reserve(
    rates: list[Limit], occupy: int, timeout: float | None
) -> tuple[float, list[Callable[[], object]]]:
    wait = 0.0
    undo: list[Callable[[], object]] = []
    try:
        for limit in rates:
            decay = limit.slot_decay_per_second
            assert decay is not None
            if limit.scope == "machine":
                wait = max(wait, _machine.reserve(limit.name, limit.limit, decay, occupy, timeout))
                undo.append(functools.partial(_machine.give_back, limit.name, decay, occupy))
            else:
                b = _bucket.bucket(limit.name, limit.limit, decay)
                wait = max(wait, b.reserve(occupy, timeout))
                undo.append(functools.partial(b.give_back, occupy))
    except BaseException:
        for fn in undo:
            fn()
        raise
    return wait, undo


class _Held:
    """Everything one ``with`` holds, released in reverse order."""

    __slots__ = ("permits",)

    def __init__(self) -> None:
        self.permits: list[_local.Permit | _machine.MachinePermit | _dask.DaskPermit] = []

    def release(self) -> None:
        while self.permits:
            self.permits.pop().release()


class concurrency:
    """Hold ``occupy`` slots of every named limit while inside; ``with`` or ``async with``.

    ``names`` is a limit name or a list of them. A name with no limit defined is
    skipped (a debug log) unless ``strict=True``, which raises
    :class:`UnknownLimitError`. When a wait outlasts ``timeout_seconds``,
    ``TimeoutError`` (:class:`~taskrun._limits._errors.LimitTimeout`) names the limit
    still full; nothing is held then. A limit with ``slot_decay_per_second`` takes
    rate tokens on entry, which drain on their own (nothing is given back on exit).

    Cancellation: cancelling a task waiting in ``async with`` gives back every slot
    it had been handed, and the cancellation goes through. The sync form waits in
    the calling thread and refuses to block a thread that runs an event loop.
    The same object may be entered again after it exits (and nested).

    Example::

        taskrun.limits.set("db", 5)
        with concurrency("db"):
            query()
        async with concurrency(["db", "api"], occupy=2, timeout_seconds=10):
            await aquery()
    """

    __slots__ = ("_held", "_names", "_occupy", "_stack", "_strict", "_timeout")

    def __init__(
        self,
        names: str | list[str],
        occupy: int = 1,
        timeout_seconds: float | None = None,
        strict: bool = False,
    ) -> None:
        # a single name stays a str: the fast path's one dict lookup
        self._names: str | tuple[str, ...] = names if type(names) is str else normalize_names(names)
        self._occupy = occupy if type(occupy) is int and occupy > 0 else check_occupy(occupy)
        self._timeout = None if timeout_seconds is None else check_timeout(timeout_seconds)
        self._strict = strict
        self._held: object = _UNSET
        self._stack: list[object] | None = None

    def _push(self, held: object) -> None:
        if self._held is _UNSET:
            self._held = held
        else:  # the same object entered again while inside
            if self._stack is None:
                self._stack = []
            self._stack.append(held)

    def _pop(self) -> object:
        stack = self._stack
        if stack:
            return stack.pop()
        held, self._held = self._held, _UNSET
        return held

    def __enter__(self) -> None:
        names = self._names
        if type(names) is str:
            state = _fast_get(names)
            if state is not None and (_DASK_WORKER not in _modules or not _dask.in_dask_worker()):
                occupy = self._occupy
                _acquire()
                if not state.queue and state.used + occupy <= state.limit:
                    state.used += occupy
                    _release()
                    held: object = state
                else:
                    _release()
                    held = _local.acquire_sync((state,), occupy, self._timeout)
                if self._held is _UNSET:
                    self._held = held
                else:
                    self._push(held)
                return
        self._push(self._enter_sync())

    def _name_tuple(self) -> tuple[str, ...]:
        names = self._names
        return (names,) if isinstance(names, str) else names

    def _enter_sync(self) -> _Held | None:
        limits = _resolve(self._name_tuple(), self._strict, "concurrency")
        if not limits:
            return None
        plan, occupy, timeout = _Plan(limits, concurrency=True), self._occupy, self._timeout
        held = _Held()
        try:
            if plan.rates:
                wait, undo = _reserve(plan.rates, occupy, timeout)
                if wait > 0:
                    _bucket.sleep_sync(undo, wait)
            if plan.local:
                held.permits.append(_local.acquire_sync(_local.states_for(plan.local), occupy, timeout))
            if plan.machine:
                held.permits.append(_machine.acquire_sync(plan.machine, occupy, timeout))
            if plan.dask:
                held.permits.append(_dask.acquire_sync(plan.dask, occupy, timeout))
        except BaseException:
            held.release()
            raise
        return held

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack = self._stack
        if stack:
            held = stack.pop()
        else:
            held, self._held = self._held, _UNSET
        if type(held) is _Slots:
            _acquire()
            held.used -= self._occupy
            if held.queue or held.watchers:
                _release()
                _local.release_one(held, 0)  # hand the freed slots on
            else:
                _release()
        elif isinstance(held, (_Held, _local.Permit)):
            held.release()

    async def __aenter__(self) -> None:
        limits = _resolve(self._name_tuple(), self._strict, "concurrency")
        if not limits:
            await anyio.lowlevel.checkpoint()
            self._push(None)
            return
        plan, occupy, timeout = _Plan(limits, concurrency=True), self._occupy, self._timeout
        held = _Held()
        try:
            if plan.rates:
                wait, undo = await _reserve_async(plan.rates, occupy, timeout)
                await _bucket.sleep_async(undo, wait)
            if plan.local:
                held.permits.append(
                    await _local.acquire_async(_local.states_for(plan.local), occupy, timeout)
                )
            else:
                await anyio.lowlevel.checkpoint()
            if plan.machine:
                held.permits.append(await _machine.acquire_async(plan.machine, occupy, timeout))
            if plan.dask:
                held.permits.append(await _dask.acquire_async(plan.dask, occupy, timeout))
        except BaseException:
            if plan.machine or plan.dask:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(held.release)
            else:
                held.release()
            raise
        self._push(held)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        held = self._pop()
        if held is None:
            return
        if isinstance(held, _Slots):
            _local.release_one(held, self._occupy)
        elif isinstance(held, _Held) and any(not isinstance(p, _local.Permit) for p in held.permits):
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(held.release)
        elif isinstance(held, (_Held, _local.Permit)):
            held.release()


async def _reserve_async(
    rates: list[Limit], occupy: int, timeout: float | None
) -> tuple[float, list[Callable[[], object]]]:
    if any(limit.scope == "machine" for limit in rates):
        return await anyio.to_thread.run_sync(_reserve, rates, occupy, timeout)
    return _reserve(rates, occupy, timeout)


def _rate_limits(names: str | list[str], occupy: int, strict: bool) -> list[Limit]:
    check_occupy(occupy)
    limits = _resolve(normalize_names(names), strict, "rate_limit")
    for limit in limits:
        if limit.slot_decay_per_second is None:
            raise _rate_error(limit)
    return sorted(limits, key=lambda limit: limit.name)


def rate_limit(
    names: str | list[str], occupy: int = 1, timeout_seconds: float | None = None, strict: bool = False
) -> None:
    """Take ``occupy`` rate tokens of every named limit, sleeping this thread until they are due.

    Each name must have ``slot_decay_per_second`` (a rate limit), else
    ``ValueError`` names the fix. Callers are served in arrival order. When the
    wait would outlast ``timeout_seconds`` the call raises ``TimeoutError`` at once
    and takes nothing. Refuses to block a thread that runs an event loop (use
    :func:`rate_limit_async` there).

    Example::

        taskrun.limits.set("api", 10, slot_decay_per_second=10)   # 10 calls per second
        for url in urls:
            rate_limit("api")
            fetch(url)
    """
    limits = _rate_limits(names, occupy, strict)
    if not limits:
        return
    wait, undo = _reserve(limits, occupy, check_timeout(timeout_seconds))
    if wait > 0:
        _bucket.sleep_sync(undo, wait)


async def rate_limit_async(
    names: str | list[str], occupy: int = 1, timeout_seconds: float | None = None, strict: bool = False
) -> None:
    """The async twin of :func:`rate_limit`: sleeps the task, never the loop; always checkpoints.

    Cancellation while sleeping hands the reserved tokens back.

    Example::

        async def crawl(urls: list[str]) -> None:
            for url in urls:
                await rate_limit_async("api")
                await fetch(url)
    """
    limits = _rate_limits(names, occupy, strict)
    if not limits:
        await anyio.lowlevel.checkpoint()
        return
    wait, undo = await _reserve_async(limits, occupy, check_timeout(timeout_seconds))
    await _bucket.sleep_async(undo, wait)


def _on_change(limit: Limit | None, name: str) -> None:
    if limit is None or limit.slot_decay_per_second is not None or limit.scope != "process":
        _local.update_limit(name, None)
    else:
        _local.update_limit(name, limit.limit)
    if limit is None or limit.scope != "process":
        _bucket.update_limit(name, None, None)
    else:
        _bucket.update_limit(name, limit.limit, limit.slot_decay_per_second)


REGISTRY.add_listener(_on_change)
