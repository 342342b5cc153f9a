"""The run record sets the core's slots itself (inlined for speed): it must set
every one of them, to what :class:`DispatchedRun` would."""

from __future__ import annotations

import contextvars

from taskrun import task
from taskrun._core._seam import DispatchedRun
from taskrun._engine._record import TaskRunContext


@task(priority=3)
def prioritised() -> None:
    return None


def test_the_record_sets_every_core_slot_as_the_seam_does() -> None:
    context = contextvars.copy_context()
    reference = DispatchedRun(context)
    run = TaskRunContext(prioritised, {}, frozenset(), context)
    for slot in DispatchedRun.__slots__:
        expected = getattr(reference, slot)
        if slot == "_priority":
            expected = 3
        assert getattr(run, slot) == expected, slot
