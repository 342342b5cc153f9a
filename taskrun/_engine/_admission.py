"""Admission: a run starts only when its inputs are final, and only if they allow it.

Futures nested in a run's parameters and its ``wait_for`` are its inputs. A
run whose inputs are unfinished waits for them holding no slot (a done
callback counts them down and re-admits it); one whose input may not fail and
did not complete ends ``NotReady``; otherwise the futures in its parameters
are replaced by their values and the run is offered a slot. A run with tags or
a priority then goes through :func:`admit_limited` (the limits room's gate):
it takes its tag limits' permits before a slot, or waits for them holding none.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._limits._gate import TAG_GATE
from .._plain import PLAIN_SCALARS
from .._results._lazy import StoredCompleted
from ..states import Cancelled, Crashed, Failed, NotReady, StateType, describe
from ._future import TaskFuture
from ._resolve import collect_futures, replace_futures
from ._run_logging import log_final

if TYPE_CHECKING:
    from .._core._dispatch import Dispatcher
    from ._dispatch_engine import DispatchEngine
    from ._record import TaskRunContext



class _Dependencies:
    """Done callback counting a run's unfinished inputs; re-admits it at zero.

    Inputs finish on any thread; ``next`` on an :func:`itertools.count` is atomic,
    so the count needs no lock.
    """

    __slots__ = ("_calls", "_dispatcher", "_left", "_readmit", "_run")

    def __init__(self, dispatcher: Dispatcher, run: TaskRunContext, left: int,
                 readmit: Callable[[Dispatcher, TaskRunContext], None]) -> None:
        self._dispatcher = dispatcher
        self._run = run
        self._left = left
        self._readmit = readmit
        self._calls = itertools.count(1)

    def __call__(self, _: TaskFuture[Any]) -> None:
        if next(self._calls) == self._left:
            # Never inside the step that finished the input, so that a cascade of
            # runs (a long chain ending NotReady) does not recurse.
            self._dispatcher.schedule(self._readmit, self._dispatcher, self._run)


class _Dependency:
    """:class:`_Dependencies` for the one unfinished future a run waits for (a
    ``wait_for`` chain's link): re-admits it when that future is final."""

    __slots__ = ("_dispatcher", "_run")

    def __init__(self, dispatcher: Dispatcher, run: TaskRunContext) -> None:
        self._dispatcher = dispatcher
        self._run = run

    def __call__(self, _: TaskFuture[Any]) -> None:
        self._dispatcher.schedule(_readmit_after, self._dispatcher, self._run)


def _wait_for_inputs(dispatcher: Dispatcher, run: TaskRunContext, pending: list[TaskFuture[Any]],
                     readmit: Callable[[Dispatcher, TaskRunContext], None]) -> None:
    counter = _Dependencies(dispatcher, run, len(pending), readmit)
    for f in pending:
        f.add_done_callback(counter)


def readmit(dispatcher: Dispatcher, run: TaskRunContext) -> None:
    """Admit a run again once its last input is final."""
    if _admit_one(dispatcher, run):
        dispatcher.offer(run)


def _readmit_after(dispatcher: Dispatcher, run: TaskRunContext) -> None:
    """:func:`readmit` for a run whose only inputs are the futures it waits for:
    its parameters were found plain when it was first admitted, so only its
    cancel, its inputs' states and its limits are left to check."""
    try:
        if run._cancel_requested:
            dispatcher.finished(run)
            return
        for f in run.wait_for:  # _inputs_completed, its common case inlined
            if f._state.type is not _COMPLETED:
                _inputs_completed(dispatcher, run, run.wait_for)
                return
        if (run.tags or run._priority) and not admit_limited(run):
            return
    except Exception as exc:
        _preparing_failed(dispatcher, run, exc)
        return
    dispatcher.offer(run)


def _admit_one(dispatcher: Dispatcher, run: TaskRunContext) -> bool:
    """:func:`admit_many` for one run: True when it is ready to be offered a slot.

    An error on the way (parameters too deep to search, a dataclass whose field
    cannot be read) ends the run ``Failed`` with that error: it never strands it.
    """
    try:
        return _inputs_ready(dispatcher, run) and (
            not (run.tags or run._priority) or admit_limited(run))
    except Exception as exc:
        _preparing_failed(dispatcher, run, exc)
        return False


def admit_many(engine: DispatchEngine, runs: list[TaskRunContext]) -> list[TaskRunContext]:
    """(``DispatchEngine.admit_many``; the loop thread, or a worker thread stepping
    runs on) The runs of a batch that are ready to be offered a slot, in order;
    the others wait for their inputs or their tag limits, or have ended.

    Consecutive runs that need only the permits of the same tags (a tagged
    task's map) take them together: :meth:`TagGate.admit_group`. Lets nothing
    out: an error admitting one run (parameters too deep to search, a dataclass
    whose field cannot be read) ends that run ``Failed``; it never strands it.
    """
    dispatcher = engine.dispatcher
    ready: list[TaskRunContext] = []
    take = ready.append
    group: list[TaskRunContext] = []  # ready but for the permits of group[0].tags
    for run in runs:
        try:
            if not _inputs_ready(dispatcher, run):
                continue
            if run.tags or run._priority:
                if group and (run._priority or run.tags is not group[0].tags):
                    _admit_group(dispatcher, group, ready)
                if not run._priority:
                    group.append(run)
                elif admit_limited(run):
                    take(run)
                continue
        except Exception as exc:
            _preparing_failed(dispatcher, run, exc)
            continue
        except BaseException as exc:
            _crashed(dispatcher, run, exc)
            continue
        if group:
            _admit_group(dispatcher, group, ready)
        take(run)
    if group:
        _admit_group(dispatcher, group, ready)
    return ready


def _admit_group(dispatcher: Dispatcher, group: list[TaskRunContext], ready: list[TaskRunContext]) -> None:
    """Admit runs that need only the permits of the same tags; empties ``group``."""
    try:
        taken = TAG_GATE.admit_group(group)
    except BaseException:  # each run then meets the error on its own, below
        taken = 0
    ready.extend(group[:taken] if taken < len(group) else group)
    for run in group[taken:]:
        try:
            if admit_limited(run):
                ready.append(run)
        except Exception as exc:
            _preparing_failed(dispatcher, run, exc)
        except BaseException as exc:
            _crashed(dispatcher, run, exc)
    group.clear()


def _crashed(dispatcher: Dispatcher, run: TaskRunContext, error: BaseException) -> None:
    """End a run that admitting let ``error`` out for (not an ``Exception``): ``Crashed``."""
    crash(run, error)
    dispatcher.finished(run)


def _inputs_ready(dispatcher: Dispatcher, run: TaskRunContext) -> bool:
    """True when the run's inputs are final and allow it to start (its limits are
    left); else it waits for them, or has ended. Raises what preparing it raised."""
    if run._cancel_requested:
        dispatcher.finished(run)
        return False
    params = run._params
    waits = run.wait_for
    if type(params) is not dict:  # a map's run over one parameter, its bare value
        plain = type(params) in PLAIN_SCALARS
        if not plain:
            params = run.parameters
    else:
        plain = True
        for value in params.values():  # all_plain(params), inlined: called for every run
            if type(value) not in PLAIN_SCALARS:
                plain = False
                break
    if plain:
        if waits is None:
            return True
        if _only_futures(waits):
            return _admit_after(dispatcher, run, waits)
    return _admit_resolving(dispatcher, run, params, waits)


def admit_submitted(engine: DispatchEngine, run: TaskRunContext, enter: Callable[[Any], None]) -> bool:
    """(``DispatchEngine.admit_submitted``; the submitting thread, not the loop's) For a
    run whose only inputs are ``wait_for`` futures, some of them unfinished: ``enter(run)``,
    then wait for them right here, and True. Else False, having done nothing: the run
    is admitted on the loop (:func:`admit_many`).

    The same first admission as :func:`admit_many` gives such a run, without the hand-off
    to the loop: a done callback re-admits it where its last input finishes.
    """
    waits = run.wait_for
    if waits is None or run.tags or run._priority:
        return False
    known = _FUTURE_TYPES
    for item in waits:  # _only_futures, its common case inlined
        if type(item) not in known:
            if not _only_futures(waits):
                return False
            break
    for value in run.parameters.values():
        if type(value) not in PLAIN_SCALARS:
            return False
    pending = None
    for f in waits:  # (a loop, not a comprehension: no function made per run)
        if not f._final:
            if pending is None:
                pending = [f]
            else:
                pending.append(f)
    if pending is None:
        return False
    enter(run)  # it counts as in flight before any callback can re-admit it
    dispatcher = engine.dispatcher
    if len(pending) == 1:
        pending[0].add_done_callback(_Dependency(dispatcher, run))
    else:
        _wait_for_inputs(dispatcher, run, pending, _readmit_after)
    return True


def _preparing_failed(dispatcher: Dispatcher, run: TaskRunContext, error: Exception) -> None:
    """End a run that admitting raised ``error`` for: it fails, and is never stranded."""
    finish_failed(run, error, f"preparing the run failed: {describe(error)}")
    dispatcher.finished(run)


def _admit_resolving(dispatcher: Dispatcher, run: TaskRunContext, params: dict[str, Any],
                     waits: Any) -> bool:
    """:func:`_inputs_ready` for a run whose inputs hold futures or annotations to resolve."""
    upstream = run._upstream
    if upstream is None or _results_hold_more(upstream[0]):
        upstream = run._upstream = (collect_futures(params), collect_futures(None, waits))
    pending = [f for part in upstream for f, _ in part if not f._final]
    if pending:
        _wait_for_inputs(dispatcher, run, pending, readmit)
        return False
    problem = upstream_problem(upstream[0]) or upstream_problem(upstream[1])
    if problem is not None:
        finish_not_ready(run, problem)
        dispatcher.finished(run)
        return False
    if not all_plain(params):  # futures to replace, or annotations to unwrap
        run._raw_parameters = params
        run.parameters = replace_futures(params, value_of)
    return True


#: (inputs ready) For a run with tags or a priority: order it by its priority, and
#: let it take a slot only with its tag limits' permits; else it waits for them
#: holding no slot, and the gate offers it to its dispatcher later.
admit_limited = TAG_GATE.admit_run


def _admit_after(dispatcher: Dispatcher, run: TaskRunContext, waits: list[TaskFuture[Any]]) -> bool:
    """:func:`_inputs_ready` for a run whose only inputs are the futures it waits for."""
    pending = [f for f in waits if not f._final]
    if pending:
        if len(pending) == 1:
            pending[0].add_done_callback(_Dependency(dispatcher, run))
        else:
            _wait_for_inputs(dispatcher, run, pending, _readmit_after)
        return False
    return _inputs_completed(dispatcher, run, waits)


def _inputs_completed(dispatcher: Dispatcher, run: TaskRunContext, waits: list[TaskFuture[Any]]) -> bool:
    """True when every future ``run`` waits for completed; else it ends ``NotReady``."""
    for f in waits:
        if f._state.type is not StateType.COMPLETED:
            finish_not_ready(run, upstream_problem([(f, False)]) or "")
            dispatcher.finished(run)
            return False
    return True


#: Types known to be :class:`TaskFuture` subclasses (an ``isinstance`` per wait is slow).
_FUTURE_TYPES: set[type] = set()
#: (A member read through the enum class costs a ``__getattr__`` hook: read per link.)
_COMPLETED = StateType.COMPLETED


def _only_futures(waits: list[Any]) -> bool:
    known = _FUTURE_TYPES
    for item in waits:
        kind = type(item)
        if kind not in known:
            if not issubclass(kind, TaskFuture):
                return False
            known.add(kind)
    return True


def all_plain(params: dict[str, Any]) -> bool:
    """True when every parameter is a builtin scalar (nothing to resolve or unwrap)."""
    for value in params.values():
        if type(value) not in PLAIN_SCALARS:
            return False
    return True


def _results_hold_more(found: list[tuple[TaskFuture[Any], bool]]) -> bool:
    """True when a finished input's result is a container that may hold futures."""
    for future, _ in found:
        # A value kept in the store holds no futures: it is not read back to find out.
        if future._final and type(state := future._state) is not StoredCompleted and (
                type(state.data) not in PLAIN_SCALARS):
            return True
    return False


_FIRST_FAILURE = "; first failure: "
_UPSTREAM = "upstream run "
_MESSAGE_CHARS = 200


def upstream_problem(upstream: list[tuple[TaskFuture[Any], bool]]) -> str | None:
    """The NotReady message when an input that may not fail did not complete.

    It names the direct upstream and, when that one is NotReady itself, the
    first failure up the chain (carried from its message), never the whole
    chain: the message stays a few hundred characters however long the chain.
    """
    for future, allowed in upstream:
        if not allowed and not future._state.is_completed():
            state = future._state
            name = future._run.task_run_name if future._run else "?"
            message = state.message or ""
            if state.name != "NotReady":
                detail = f": {_clip(message)}" if message else ""
                return f"{_UPSTREAM}{name!r} ended {state.name}{detail}"
            _, found, root = message.partition(_FIRST_FAILURE)
            if not found:
                root = message[len(_UPSTREAM):] if message.startswith(_UPSTREAM) else message
            return f"{_UPSTREAM}{name!r} ended NotReady{_FIRST_FAILURE}{_clip(root, 2 * _MESSAGE_CHARS)}"
    return None


def _clip(text: str, limit: int = _MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_of(future: TaskFuture[Any], allowed: bool) -> Any:
    """What a final input becomes in its downstream's parameters."""
    state = future._state
    if state.type is StateType.COMPLETED:
        return state.data
    return state.exception()


def finish_not_ready(run: TaskRunContext, message: str) -> None:
    """End a run whose input may not fail and did not complete."""
    state = NotReady(message)
    log_final(run, state)
    if run.future is not None:
        run.future._finish(state)


def finish_failed(run: TaskRunContext, error: BaseException, message: str) -> None:
    """End a run that failed before its body ran (preparing it raised ``error``)."""
    state = Failed(error, message=message)
    log_final(run, state)
    if run.future is not None:
        run.future._finish(state)


def crash(run: TaskRunContext, error: BaseException) -> None:
    """End a run the engine itself failed for (an internal error) ``Crashed``, unless final."""
    future = run.future
    if future is not None and not future._final:
        logging.getLogger("taskrun").error("internal error in run %r", run, exc_info=error)
        finish_crashed(run, error)


def finish_crashed(run: TaskRunContext, error: BaseException) -> None:
    """End a run whose engine coroutine itself failed (an internal error)."""
    state = Crashed(error)
    try:
        log_final(run, state)
    finally:  # the last resort: the run ends even if logging it fails
        if run.future is not None:
            run.future._finish(state)


def finish_cancelled(run: TaskRunContext) -> None:
    """End a run that was cancelled before it started."""
    state = Cancelled("the run was cancelled before it started")
    log_final(run, state)
    if run.future is not None:
        run.future._finish(state)


