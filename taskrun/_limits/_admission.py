"""The dispatcher's seam: admit a run only when its tag limits have room.

A run carrying tags ``{"db", "gpu"}`` is bounded by the limits ``tag:db`` and
``tag:gpu`` (where defined). The dispatcher calls :func:`try_admit` before the
run takes a worker slot; on ``None`` it parks the run (holding no slot) and calls
:func:`notify_when_free`, whose callback (from any thread) means "try again".
The permit is released when the run ends, whatever the ending.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from . import _local, _machine
from ._registry import REGISTRY, Limit

TAG_PREFIX = "tag:"
_MACHINE_POLL = 0.05


class AdmissionPermit:
    """What an admitted run holds; :meth:`release` (idempotent) when the run ends.

    Example::

        permit = try_admit({"db"})
        if permit is not None:
            try:
                run()
            finally:
                permit.release()
    """

    __slots__ = ("_local", "_machine")

    def __init__(self, local: _local.Permit | None, machine: _machine.MachinePermit | None) -> None:
        self._local = local
        self._machine = machine

    def release(self) -> None:
        local, machine, self._local, self._machine = self._local, self._machine, None, None
        if machine is not None:
            machine.release()
        if local is not None:
            local.release()

    def __call__(self, _future: object = None) -> None:
        """:meth:`release`, as a future's done callback."""
        self.release()


NO_LIMITS = AdmissionPermit(None, None)


class Plan:
    """What admitting runs with one set of tags takes: kept until a definition changes."""

    __slots__ = ("effective", "key", "local", "machine", "single")

    def __init__(self, effective: object, limits: list[Limit]) -> None:
        self.effective = effective
        self.key = tuple(limit.name for limit in limits)
        local, machine = _split(limits)
        self.local = _local.states_for(local) if local else None
        self.machine = machine or None
        #: One process-scope limit and nothing else: the common case, taken inline.
        self.single = self.local[0] if self.local and len(self.local) == 1 and not machine else None

    def try_admit(self, occupy: int = 1) -> AdmissionPermit | _local.OneSlot | None:
        """:func:`try_admit` for these tags, without looking the limits up again.

        The permit is called (or ``release()``d) once, when the run is over.
        """
        single = self.single
        if single is not None and occupy == 1:
            return single.one if _local.try_acquire_one(single) else None
        local_permit = None
        if self.local is not None:
            local_permit = _local.try_acquire(self.local, occupy)
            if local_permit is None:
                return None
        machine_permit = None
        if self.machine is not None:
            machine_permit = _machine.try_acquire(self.machine, occupy)
            if machine_permit is None:
                if local_permit is not None:
                    local_permit.release()
                return None
        return AdmissionPermit(local_permit, machine_permit)


_plans: dict[frozenset[str], tuple[object, Plan | None]] = {}


def plan_for(tags: frozenset[str]) -> Plan | None:
    """The :class:`Plan` of a run's tags, or ``None`` when none of them has a limit.

    One dict lookup while the definitions stay as they are (a change replaces
    ``REGISTRY.effective``, which makes every cached answer stale).
    """
    entry = _plans.get(tags)
    if entry is not None and entry[0] is REGISTRY.effective:
        return entry[1]
    limits = tag_limits(tags)  # loads the definitions on first use
    effective = REGISTRY.effective
    if len(_plans) > 4096:
        _plans.clear()
    plan = Plan(effective, limits) if limits else None
    _plans[tags] = (effective, plan)
    return plan


def tag_limits(tags: Iterable[str]) -> list[Limit]:
    """The defined ``tag:<tag>`` limits of a run's tags, in name order."""
    REGISTRY.ensure_loaded()
    effective = REGISTRY.effective
    if not effective:
        return []
    found = [effective.get(TAG_PREFIX + tag) for tag in tags]
    return sorted((limit for limit in found if limit is not None), key=lambda limit: limit.name)


def _split(limits: list[Limit]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    local = [(lim.name, lim.limit) for lim in limits if lim.scope == "process"]
    machine = [(lim.name, lim.limit) for lim in limits if lim.scope == "machine"]
    return local, machine


def try_admit(tags: Iterable[str], occupy: int = 1) -> AdmissionPermit | None:
    """A permit for every defined tag limit of ``tags``, or ``None`` (nothing taken).

    Never blocks on another run (a machine-scope tag limit costs one SQLite
    transaction). Runs whose tags have no limits get the shared no-op permit.
    A tag limit with ``slot_decay_per_second`` bounds concurrency only (its decay
    is not applied to runs).
    """
    limits = tag_limits(tags)
    if not limits:
        return NO_LIMITS
    local, machine = _split(limits)
    local_permit = _local.try_acquire(_local.states_for(local), occupy) if local else None
    if local and local_permit is None:
        return None
    machine_permit = None
    if machine:
        machine_permit = _machine.try_acquire(machine, occupy)
        if machine_permit is None:
            if local_permit is not None:
                local_permit.release()
            return None
    return AdmissionPermit(local_permit, machine_permit)


class _Cancel:
    __slots__ = ("_cancel",)

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel = cancel

    def cancel(self) -> None:
        """Withdraw the request (no effect after the callback ran)."""
        self._cancel()


def notify_when_free(tags: Iterable[str], callback: Callable[[], object], occupy: int = 1) -> _Cancel:
    """Call ``callback()`` once, from any thread, when :func:`try_admit` might succeed.

    It may be called at once, in this thread, if room appeared meanwhile (so no
    wake-up is lost between a failed :func:`try_admit` and this call). A hint, not
    a reservation. Machine-scope tag limits are polled every 50 ms by a short-lived
    timer thread.
    """
    limits = tag_limits(tags)
    local, machine = _split(limits)
    if machine:
        timer = threading.Timer(_MACHINE_POLL, callback)
        timer.name = "taskrun-limits-poll"
        timer.daemon = True
        timer.start()
        return _Cancel(timer.cancel)
    if not local:
        callback()
        return _Cancel(lambda: None)
    watcher = _local.notify_when_free(_local.states_for(local), occupy, callback)
    return _Cancel(watcher.cancel if watcher is not None else (lambda: None))
