"""The seam between the core and the engine: the run slots the core owns, and
the one interface through which the dispatcher calls the engine.

The engine's run record (``taskrun._engine._record.TaskRunContext``) extends
:class:`DispatchedRun`, so a run is still one object (a pending run must stay
small), but each layer declares the slots it writes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._dispatch import Dispatcher


class DispatchedRun:
    """The part of a run that the core reads and writes.

    ``dispatcher``
        The dispatcher the run was handed to. Written once, by the runner,
        before the hand-off; read by anyone (cancel, slot release).
    ``_context``
        The run's :class:`contextvars.Context`. Written by the submitter (a
        snapshot shared by one hand-off), replaced by a copy of its own by the
        driver that starts the run, dropped when the run is over.
    ``_prev``, ``_next``
        The dispatcher's list of runs in flight; written under the
        dispatcher's ``_lock`` only.
    ``_holds_slot``
        True while the run holds one of the dispatcher's slots. Written by the
        thread stepping the run (the driver, or the run itself when it blocks
        and resumes); no lock: one thread steps a run at a time.
    ``_in_task``
        True once the run is stepped by a task driver; written by that driver.
    ``_started``
        True once a driver started the run. Written under ``cancel_lock``.
    ``_cancel_requested``
        True once a cancel was asked for. Written under ``cancel_lock``;
        read without it (a stale False is caught by re-reading after
        ``_cancel_hook`` is set).
    ``_cancel_hook``
        Whatever executes the run right now (a job, a task, a cancel scope);
        its ``cancel()`` stops just this run. Written by the thread stepping
        the run; read by the loop thread that delivers a cancel.
    ``_cancel_delivered``
        Set by the loop thread when it called ``_cancel_hook.cancel()``; read
        and cleared by the backend when the body ends.
    ``_priority``
        The run's place among ready runs (higher first, 0 by default). Written
        once, by the engine, when the run is made; read by the dispatcher's
        ready queue once :meth:`Dispatcher.use_priorities` was called.
    """

    __slots__ = (
        "_cancel_delivered",
        "_cancel_hook",
        "_cancel_requested",
        "_context",
        "_holds_slot",
        "_host",
        "_in_task",
        "_next",
        "_prev",
        "_priority",
        "_started",
        "dispatcher",
    )

    def __init__(self, context: contextvars.Context) -> None:
        self._context: contextvars.Context | None = context
        self._prev: Any = None
        self._next: Any = None
        self._holds_slot = False
        self._host: Any = None
        self._in_task = False
        self._started = False
        self._cancel_requested = False
        self._cancel_hook: Any = None
        self._cancel_delivered = False
        self._priority = 0
        self.dispatcher: Dispatcher | None = None


class RunEngine(Protocol):
    """What the dispatcher asks of the engine, for the runs of one dispatcher.

    Every method may be called on the loop thread or on a worker thread that
    steps runs on, never under the dispatcher's locks.
    """

    def admit_many(self, runs: list[Any]) -> list[Any]:
        """The runs of ``runs`` that may be offered a slot now, in order; the
        engine keeps the others (waiting for their inputs or for their tag
        limits, re-admitting them later through :meth:`Dispatcher.offer`) or
        ended them. Lets nothing out. A run with a non-zero ``_priority`` is
        admitted after :meth:`Dispatcher.use_priorities`."""
        ...

    def admit_submitted(self, run: Any, enter: Callable[[Any], None]) -> bool:
        """(the submitting thread, not the loop's) True when ``run`` waits for inputs
        that are not final and the engine took it there, having called ``enter(run)``
        first (which raises when the dispatcher accepts no more runs); else False,
        having done nothing, and ``run`` goes to :meth:`admit_many` on the loop. Unlike
        the other methods, called on any thread."""
        ...

    def needs_task(self, run: Any) -> bool:
        """True when the run will need a loop task (its body is async): the direct
        driver then hands it to a task driver before beginning it. A hint: a
        task driver can step any run."""
        ...

    def start(self, run: Any) -> Coroutine[Any, Any, Any]:
        """(inside the run's context) Make it the current run there and return
        the coroutine that runs it to its end. Stepped by a driver whose
        backend has ``direct_await``, that coroutine may instead return the
        run's body (a coroutine) for the driver to step: see :meth:`resume`."""
        ...

    def resume(self, run: Any, value: Any, error: BaseException | None) -> Coroutine[Any, Any, Any] | None:
        """(inside the run's context) The coroutine of :meth:`start` *returned* a
        coroutine, the run's body, which a task driver that awaits bodies itself
        (``Backend.direct_await``) then stepped: it returned ``value`` or raised
        ``error``. End the run and return None, or return the coroutine that
        runs it on to its end (which may hand over a body again)."""
        ...

    def crashed(self, run: Any, error: BaseException) -> None:
        """The run's coroutine let ``error`` out: end the run ``Crashed`` unless final."""
        ...

    def cancelled_before_start(self, run: Any) -> None:
        """End a run that was cancelled before it started."""
        ...

    def is_final(self, run: Any) -> bool:
        """True when the run reached a final state."""
        ...

    def release_final(self, run: Any) -> bool:
        """If the run is final, let go of what refers back to it; True if it was."""
        ...
