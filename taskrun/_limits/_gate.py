"""Tag limits at admission: a run takes its permits before a worker slot, and
waits for them holding none.

One :class:`TagGate` per process (:data:`TAG_GATE`), as the limits are. A run
whose tags have ``tag:<tag>`` limits gets a permit at once, or is parked in a
*line*: the runs waiting for the same set of limits, first come, first served,
whatever runner they belong to. Each line has at most one watcher in the limiter
(:func:`~._admission.notify_when_free`), so a release wakes one line, not every
parked run. When the watcher fires, the line's head runs are admitted for as
long as permits come, and offered to their dispatcher (``run.dispatcher``:
``schedule``, ``offer``, ``call_soon``). The permit is given back when the
run's future is final, whatever the ending (completed, failed, crashed,
cancelled, timed out; cancelled while parked: then it leaves its line instead).

Lock order: the gate's lock, then the limiter's; nothing is called back under
either (wake-ups go through ``schedule``, which never runs its call inline).
"""

from __future__ import annotations

import threading
from typing import Any

from . import _local
from ._admission import AdmissionPermit, _plans, notify_when_free, plan_for, try_admit
from ._local import OneSlot
from ._registry import REGISTRY

#: The inline admission counts the slots given back without the lock only when it
#: refuses a run; past this many it counts them anyway, so the list stays short.
_SETTLE_AFTER = 1024


class _Hold:
    """One gated run: its permit while it has one; the future's done callback."""

    __slots__ = ("gate", "line", "permit", "run")

    def __init__(self, gate: TagGate, run: Any) -> None:
        self.gate = gate
        self.run = run
        self.line: _Line | None = None
        self.permit: AdmissionPermit | OneSlot | None = None

    def __call__(self, _future: object) -> None:
        self.gate._ended(self)


class _Line:
    """The runs parked for one set of limits, oldest first (a dict keeps order)."""

    __slots__ = ("handle", "holds", "key", "tags", "waiting")

    def __init__(self, key: tuple[str, ...], tags: frozenset[str]) -> None:
        self.key = key
        self.tags = tags
        self.holds: dict[_Hold, None] = {}
        self.waiting = False  # a watcher is registered (or its wake-up is on its way)
        self.handle: Any = None


class TagGate:
    """Admits runs against their tag limits.

    A run is any object with a ``dispatcher`` that has ``schedule(fn, *args)``
    (call soon, never inside the current call), ``offer(run)`` (the run may take
    a slot now) and ``call_soon(fn, *args)`` (on its loop).

    Example::

        if TAG_GATE.admit_run(run):
            dispatcher.offer(run)   # else the gate offers it once its permits are free
    """

    __slots__ = ("_lines", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, ...], _Line] = {}

    def admit_run(self, run: Any) -> bool:
        """(inputs ready) True when ``run`` may take a slot now; else it is parked.

        Orders the run by its ``_priority`` first (the dispatcher's ready queue),
        then admits it against the tag limits of ``run.tags``. Called once per run
        with tags or a priority, so the common case (one process-scope limit with
        room, nobody parked) is written out here.
        """
        if run._priority:
            run.dispatcher.use_priorities()
        tags = run.tags
        entry = _plans.get(tags)
        plan = entry[1] if entry is not None and entry[0] is REGISTRY.effective else plan_for(tags)
        future = run.future
        if plan is None or future is None:
            return True
        if plan.key not in self._lines:  # nobody parked ahead (a dict lookup is atomic)
            single = plan.single
            if single is not None:
                with _local._lock:  # _local.try_acquire_one, inline
                    free = not single.queue and single.used < single.limit
                    if free:
                        single.used += 1
                if free:
                    future._release_when_final(single.one)
                    if len(single.returned) > _SETTLE_AFTER:  # slots given back, not yet counted
                        with _local._lock:
                            _local.settle(single)
                    return True
        return self.admit(run, tags, future)

    def admit_group(self, runs: list[Any]) -> int:
        """(inputs ready) How many of ``runs``, from the first, hold their permits
        now: runs without a priority and with the very same ``tags`` object, in
        the order they came (a tagged task's map).

        The common case (one process-scope limit, nobody parked) takes the
        slots of as many runs as fit under one lock, as that many
        :meth:`admit_run` calls in a row would; the runs after them are for
        :meth:`admit_run` to admit or park, one by one.
        """
        plan = plan_for(runs[0].tags)  # once per batch: no need to inline its cache lookup
        if plan is None:
            return len(runs)
        single = plan.single
        if single is None or plan.key in self._lines:
            return 0
        wanted = len(runs)
        with _local._lock:
            if single.queue:
                return 0
            if single.used + wanted > single.limit:
                _local.settle(single)
            taken = min(wanted, max(single.limit - single.used, 0))
            single.used += taken
        one = single.one
        for run in runs[:taken] if taken < wanted else runs:
            future = run.future
            if future is None:
                one()
            else:
                future._release_when_final(one)
        if len(single.returned) > _SETTLE_AFTER:
            with _local._lock:
                _local.settle(single)
        return taken

    def admit(self, run: Any, tags: frozenset[str], future: Any) -> bool:
        """True when ``run`` holds its permits now (or needs none); else it is parked."""
        if future is None:
            return True
        plan = plan_for(tags)
        if plan is None:
            return True
        key = plan.key
        if key not in self._lines:  # nobody parked ahead (a dict lookup is atomic)
            permit = plan.try_admit()
            if permit is not None:
                future._release_when_final(permit)
                return True
        hold = _Hold(self, run)
        watch = None
        with self._lock:
            line = self._lines.get(key)
            if line is None or not line.holds:  # nobody ahead: never jump the line
                hold.permit = plan.try_admit()
            if hold.permit is None:
                if line is None:
                    line = self._lines[key] = _Line(key, tags)
                line.holds[hold] = None
                hold.line = line
                if not line.waiting:
                    line.waiting = True
                    watch = line
            admitted = hold.line is None
        future.add_done_callback(hold)  # at once if the run is final already
        if watch is not None:
            self._watch(watch)
        return admitted

    def _watch(self, line: _Line) -> None:
        handle = notify_when_free(line.tags, lambda: self._wake(line))
        with self._lock:
            keep = line.waiting and line.holds and line.handle is None
            if keep:
                line.handle = handle
        if not keep:
            handle.cancel()

    def _wake(self, line: _Line) -> None:
        """(any thread) Room may have appeared: drain the line where its head run lives."""
        with self._lock:
            head = next(iter(line.holds), None)
        if head is not None:
            dispatcher = head.run.dispatcher
            dispatcher.schedule(self._drain, line, dispatcher)

    def _drain(self, line: _Line, here: Any) -> None:
        """(scheduled on ``here``, a dispatcher) Admit the line's head runs while permits come."""
        admitted = []
        watch = False
        with self._lock:
            line.waiting = False
            line.handle = None
            while line.holds:
                hold = next(iter(line.holds))
                permit = try_admit(line.tags)
                if permit is None:
                    break
                del line.holds[hold]
                hold.line = None
                hold.permit = permit
                admitted.append(hold.run)
            if line.holds:
                line.waiting = watch = True
            elif self._lines.get(line.key) is line:
                del self._lines[line.key]
        if watch:
            self._watch(line)
        for run in admitted:
            dispatcher = run.dispatcher
            if dispatcher is here:
                dispatcher.offer(run)
            else:
                dispatcher.call_soon(dispatcher.offer, run)

    def _ended(self, hold: _Hold) -> None:
        """The run's future is final: give its permit back, or take it out of its line."""
        handle = None
        with self._lock:
            permit, hold.permit = hold.permit, None
            line, hold.line = hold.line, None
            if line is not None:
                line.holds.pop(hold, None)
                if not line.holds:
                    handle, line.handle = line.handle, None
                    line.waiting = False
                    if self._lines.get(line.key) is line:
                        del self._lines[line.key]
        if handle is not None:
            handle.cancel()
        if permit is not None:
            permit.release()

    def parked(self) -> int:
        """How many runs wait for their tag limits right now."""
        with self._lock:
            return sum(len(line.holds) for line in self._lines.values())


#: The process's gate: tag limits count every runner's runs.
TAG_GATE = TagGate()
