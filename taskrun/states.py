"""Run states.

A :class:`State` is an immutable record of where a run is: its :class:`StateType`,
a display ``name`` (``"Completed"``, ``"Retrying"``, ``"TimedOut"``, ...), an optional
``message`` and the data it carries (the result, or the exception).

Example::

    from taskrun.states import Completed

    state = Completed(data=42)
    assert state.is_completed() and state.result() == 42
"""

from __future__ import annotations

import datetime
import enum
import time
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from .exceptions import CancelledRun, CrashedRun, UpstreamTaskError

if TYPE_CHECKING:
    from ._observe._summary import Summary

R = TypeVar("R")


class StateType(enum.Enum):
    """The kinds of state a run moves through.

    Example::

        if future.state.type is StateType.FAILED:
            print(future.state.message)
    """

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"


for _member in StateType:
    # Plain attributes on the members keep the per-state cost off Enum.__hash__.
    _member._display = _member.value.capitalize()  # type: ignore[attr-defined]
    _member._final = _member.value in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")  # type: ignore[attr-defined]


class State(Generic[R]):
    """One state of a run.

    Allowed transitions of a run: ``Pending -> Running -> Completed | Failed |
    Crashed | Cancelled``; ``Running -> AwaitingRetry (Scheduled) -> Retrying
    (Running)``; ``Pending -> Cancelled``; ``Pending`` named ``NotReady`` is final
    for a run whose upstream did not complete.

    Example::

        state = future.state
        if state.is_failed():
            print(state.name, state.message)
    """

    # _report: set only on a flow run's state, by a flow that records (see ``report``).
    __slots__ = ("_report", "_ts", "data", "message", "name", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
    ) -> None:
        self.type = type
        self.name = name or type._display  # type: ignore[attr-defined]
        self.message = message
        self.data = data
        self._ts = time.time()

    @property
    def timestamp(self) -> datetime.datetime:
        """When the run entered this state (UTC)."""
        return datetime.datetime.fromtimestamp(self._ts, tz=datetime.timezone.utc)

    @property
    def report(self) -> Summary | None:
        """On a flow run's final state, when the flow recorded (``@flow(record=...)`` or
        ``TASKRUN_RECORD``): the :class:`~taskrun.report.Summary` of its task runs. Else None.

        Example::

            state = nightly(return_state=True)
            print(state.report)        # counts per task and state, slowest runs, failures
        """
        return getattr(self, "_report", None)

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        """True for Completed, Failed, Crashed, Cancelled and for ``NotReady``."""
        return self.type._final or self.name == "NotReady"  # type: ignore[attr-defined]

    @overload
    def result(self, raise_on_failure: Literal[True] = ...) -> R: ...
    @overload
    def result(self, raise_on_failure: bool = ...) -> R | BaseException: ...

    def result(self, raise_on_failure: bool = True) -> R | BaseException:
        """The run's value, or its error.

        Completed gives the value; Failed raises the task's exception; Crashed
        raises :class:`CrashedRun`; Cancelled raises :class:`CancelledRun`;
        ``NotReady`` raises :class:`UpstreamTaskError`. With
        ``raise_on_failure=False`` the exception is returned instead. A state
        that is not final raises :class:`RuntimeError`.
        """
        if self.type is _COMPLETED:
            return self.data  # type: ignore[no-any-return]
        exc = self.exception()
        if exc is None:
            raise RuntimeError(
                f"state {self.name!r} is not final and has no result yet; "
                "wait for the run (future.wait()) before asking for its result"
            )
        if raise_on_failure:
            raise exc
        return exc

    def exception(self) -> BaseException | None:
        """The error this state stands for, or None (Completed or not final)."""
        if self.type is StateType.COMPLETED:
            return None
        if isinstance(self.data, BaseException):
            return self.data
        if self.type is StateType.CRASHED:
            return CrashedRun(self.message or "the run crashed")
        if self.type is StateType.CANCELLED:
            return CancelledRun(self.message or "the run was cancelled")
        if self.type is StateType.FAILED:
            return RuntimeError(self.message or "the run failed")
        if self.name == "NotReady":
            return UpstreamTaskError(self.message or "an upstream run did not complete")
        return None

    def __repr__(self) -> str:
        extra = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{extra})"


def Scheduled(name: str | None = None, message: str | None = None) -> State[Any]:
    """A run waiting for a time to start (``AwaitingRetry`` between attempts)."""
    return State(StateType.SCHEDULED, name, message)


def Pending(name: str | None = None, message: str | None = None, data: Any = None) -> State[Any]:
    """A run that has not started; ``Pending(name="NotReady")`` is final."""
    # State(StateType.PENDING, name, message, data) without the __init__ call:
    # one is made for every single submit.
    state: State[Any] = _new_state(State)
    state.type = _PENDING
    state.name = name or "Pending"
    state.message = message
    state.data = data
    state._ts = _now()
    return state


def Running(name: str | None = None, message: str | None = None) -> State[Any]:
    """A run in progress (``Retrying`` on later attempts)."""
    return State(StateType.RUNNING, name, message)


def Completed(data: Any = None, name: str | None = None, message: str | None = None) -> State[Any]:
    """A finished run, carrying its value as ``data``."""
    # State(StateType.COMPLETED, name, message, data) without the __init__ call:
    # one is made for every run that completes.
    state: State[Any] = _new_state(State)
    state.type = _COMPLETED
    state.name = name or "Completed"
    state.message = message
    state.data = data
    state._ts = _now()
    return state


_new_state = object.__new__
_COMPLETED = StateType.COMPLETED
_PENDING = StateType.PENDING
_now = time.time


def describe(exception: BaseException) -> str:
    """``"Type: message"`` for an exception, even one whose ``__str__`` raises."""
    kind = type(exception).__name__
    try:
        text = str(exception)
    except Exception as exc:
        try:
            why = type(exc).__name__
        except Exception:  # pragma: no cover - cannot happen for a real exception
            why = "an error"
        return f"{kind} (its message could not be read: str() raised {why})"
    return f"{kind}: {text}" if text else kind


def Failed(
    exception: BaseException | None = None, message: str | None = None, name: str | None = None
) -> State[Any]:
    """A run whose body raised ``exception`` (``TimedOut`` for a timeout)."""
    if message is None and exception is not None:
        message = describe(exception)
    return State(StateType.FAILED, name, message, exception)


def Crashed(
    exception: BaseException | None = None, message: str | None = None, name: str | None = None
) -> State[Any]:
    """A run that ended abnormally; ``result()`` raises :class:`CrashedRun`."""
    message = message or (describe(exception) if exception else "crashed")
    error = CrashedRun(message)
    error.__cause__ = exception
    return State(StateType.CRASHED, name, message, error)


def Cancelled(message: str | None = None, name: str | None = None) -> State[Any]:
    """A run cancelled before or while running; ``result()`` raises :class:`CancelledRun`."""
    message = message or "the run was cancelled"
    return State(StateType.CANCELLED, name, message, CancelledRun(message))


def NotReady(message: str) -> State[Any]:
    """The final state of a run whose upstream did not complete."""
    return State(StateType.PENDING, "NotReady", message, UpstreamTaskError(message))


__all__ = [
    "State",
    "StateType",
    "Scheduled",
    "Pending",
    "Running",
    "Completed",
    "Failed",
    "Crashed",
    "Cancelled",
    "NotReady",
]
