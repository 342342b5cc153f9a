"""The attempt driver: runs *one* task run as a coroutine, to its final state.

It moves the run through its states, runs the body the way its executor says
(:class:`~taskrun._engine._executors.Way`), retries with delays, enforces
timeouts, calls hooks, and finishes the future. It does not know which runner
called it: everything it needs from the outside world comes through the
executor.
"""

from __future__ import annotations

import contextvars
import logging
import time
import types
from collections.abc import Callable, Generator
from types import CoroutineType as _COROUTINE
from typing import TYPE_CHECKING, Any

import anyio

from .._core._backend import (
    RunCancelledSignal,
    is_cancellation,
    is_host_cancellation,
    is_loop_cancellation,
)
from .._core._dispatch import PROMOTE
from .._core._workers import Job, park
from .._observe import _events
from ..exceptions import TaskRunTimeout
from ..states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Running,
    Scheduled,
    State,
    StateType,
    describe,
)
from . import _caching, _printing, _run_logging
from ._caching import FLOW_DEFAULTS
from ._executors import AttemptTimedOut, Executor, Way
from ._logging import run_logger_for
from ._vars import flow_log_prints

if TYPE_CHECKING:
    from ._future import TaskFuture
    from ._record import TaskRunContext


async def drive(run: TaskRunContext, ex: Executor, ended: Any = None) -> Any:
    """Run every attempt of ``run`` and return its final state (finishing its future).

    Kept in one frame on purpose: the body is awaited right here, not in a
    helper coroutine, so a waiting run keeps as few frames alive as possible
    (README, *Performance*: bytes per pending run).

    Where the executor ``hands_off`` (asyncio's task driver), an untimed async
    body is not awaited here at all: ``drive`` *returns* the body's coroutine,
    the task driver steps it itself, and when it ends calls :func:`body_ended`,
    which ends the run there in the common case, or comes back here with
    ``ended`` (an awaitable giving back the body's value or raising its error)
    to go on from that attempt's outcome. A waiting run then holds no engine
    frame: the task, its driver and the body are all there is.
    """
    task = run.task
    future = run.future
    timeout = task.timeout_seconds
    if ended is None:
        log_prints = task.log_prints
        if log_prints is None:
            log_prints = flow_log_prints.get()
        if log_prints or run._extra is not None:  # (False, the default: no side record made)
            run._log_prints = log_prints
            if log_prints:
                _printing.install()
        if task.task_run_name is not None:
            run.task_run_name  # noqa: B018 - a template or callable that fails fails the run
            if run._name_error is not None:
                return _end_unnamed(run, run._name_error)
        state: State[Any] = _running(future)
        if future is not None:
            future._state = state  # _set_state, inlined
        if timeout is None:
            way = ex.async_way if task.isasync else ex.sync_way
        else:
            way = ex.timed_async_way if task.isasync else ex.timed_sync_way
        if _events.ACTIVE and way is not Way.PARK:  # a parked body says Running where it runs
            _events.emit_state(run, state)
    else:  # a handed-off body ended (see above): its attempt's outcome is next
        way = Way.AWAIT_DIRECT
    try:
        if ended is None:
            if task._results is not None or FLOW_DEFAULTS:
                await _caching.begin(run, ex)  # raises Decided on a cache hit
            if task.on_running:
                await _call_hooks(task.on_running, run, state, ex)
        while True:
            if ended is None:
                run.attempt += 1
            params = run._params  # (made per attempt: a retry sees what the body changed in it)
            if type(params) is not dict:  # a map's run over one parameter: no dict kept for it
                params = {run._param_name: params}
            if task._simple or task._signature is None:  # task._call_args, its common case inlined
                args, kwargs = (), params
            else:
                args, kwargs = task._call_args(params)
            try:
                if way is Way.PARK or way is Way.CALL_SYNC:
                    if way is Way.PARK:
                        body = _events.on_this_thread(run, task.fn, state) if _events.ACTIVE else task.fn
                        value = await park(run, Job(contextvars.copy_context(), body, args, kwargs))
                    else:
                        value = await ex.call_sync(run, task.fn, args, kwargs, timeout)
                    # A cancel granted while the body ran, seen by the body before it
                    # reached the body's thread: Cancelled, as an async body would be.
                    if run._cancel_requested:
                        raise RunCancelledSignal
                else:
                    if ended is None:
                        if ex.promotes and not run._in_task:
                            await PROMOTE
                        coro = task.fn(*args, **kwargs)
                        if way is Way.AWAIT_DIRECT:  # never with a timeout (see Executor)
                            ex.arm_cancel(run, coro)
                            if ex.hands_off and type(coro) is _COROUTINE:
                                return coro  # the task driver steps it (see the docstring)
                    else:  # the handed-off body's outcome, taken as the awaited body's
                        coro, ended = ended, None
                    if way is Way.AWAIT_DIRECT:
                        try:
                            value = await coro
                        except BaseException as exc:
                            delivered = run._cancel_delivered
                            if ex.disarm_cancel(run, exc):
                                await ex.absorb_cancel()
                                raise RunCancelledSignal from None
                            if delivered:  # the body raised something else meanwhile
                                await ex.absorb_cancel()
                            raise
                        if ex.disarm_cancel(run, None):
                            await ex.absorb_cancel()
                            raise RunCancelledSignal
                    elif timeout is None:
                        value = await ex.call_async(run, coro)
                    else:
                        with anyio.move_on_after(timeout) as scope:
                            value = await ex.call_async(run, coro)
                        if scope.cancelled_caught:
                            raise AttemptTimedOut
                if type(value) is _COROUTINE and not task.isasync:
                    _refuse_coroutine(task, value)
                # A body that returns a State sets the run's final state (as in the seed engine).
                state = value if type(value) is State else Completed(value)
            except BaseException as exc:
                state = _state_of_attempt(run, exc, timeout)
            if state.type is StateType.FAILED and run.attempt <= task.retries and not run._cancel_requested:
                retried = await _wait_to_retry(run, state, ex)
                if retried is None:
                    continue
                state = retried
            break
    except _caching.Decided:
        state = run._cache.state  # type: ignore[union-attr]  # set by _caching.begin
    except BaseException as exc:
        if task._results is not None or FLOW_DEFAULTS:
            _caching.abandon(run)
        if future is None or not future._final:  # else it ended already (closed after a crash)
            state = Cancelled("the runner was cancelled") if is_cancellation(exc) else Crashed(exc)
            try:
                _run_logging.log_final(run, state)
            finally:
                if future is not None:
                    future._finish(state)
                elif _events.ACTIVE:  # a direct call has no future to emit it
                    _events.emit_finished(run, state)
        raise
    if task._results is not None or FLOW_DEFAULTS:
        state = await _caching.finish(run, state, ex)  # stores a Completed value, lets the key lock go
    if state.type is StateType.COMPLETED:
        if task.on_completion:
            await _call_hooks(task.on_completion, run, state, ex)
    elif state.type in (StateType.FAILED, StateType.CRASHED) and task.on_failure:
        await _call_hooks(task.on_failure, run, state, ex)
    extra = task.on_crashed if state.type is StateType.CRASHED else (
        task.on_cancellation if state.type is StateType.CANCELLED else None)
    if extra:
        await _call_hooks(extra, run, state, ex)
    try:
        # A completion logs only at DEBUG: checked on the common path through the
        # logger's own cache of isEnabledFor (no call; cleared when levels change).
        if state.type is not StateType.COMPLETED or _run_logging.LEVEL_CACHE.get(logging.DEBUG, True):
            _run_logging.log_final(run, state)
    finally:  # the run ends the way it did even if logging it fails
        if future is not None:
            future._finish(state)
        elif _events.ACTIVE:
            _events.emit_finished(run, state)
    return state


def body_ended(run: TaskRunContext, ex: Executor, value: Any, error: BaseException | None) -> Any:
    """(the task driver, inside the run's context) The body :func:`drive` handed
    over returned ``value`` or raised ``error``: end the run here and return None
    in the common case (it completed: no cancel, no caching, no completion hook,
    no State returned), else return the coroutine that takes it on from there."""
    if error is None and not run._cancel_delivered and type(value) is not State:
        task = run.task
        if task._results is None and not FLOW_DEFAULTS and not task.on_completion:
            run._cancel_hook = None  # ex.disarm_cancel, when no cancel was delivered
            state = Completed(value)
            try:  # as at the end of drive
                if _run_logging.LEVEL_CACHE.get(logging.DEBUG, True):
                    _run_logging.log_final(run, state)
            finally:
                future = run.future
                if future is not None:
                    future._finish(state)
                elif _events.ACTIVE:
                    _events.emit_finished(run, state)
            return None
    return drive(run, ex, _outcome(value, error))


@types.coroutine
def _outcome(value: Any, error: BaseException | None) -> Generator[Any, Any, Any]:
    """Awaited by :func:`drive` in place of a handed-off body that ended: gives back
    its value, or raises its error, without suspending."""
    if error is not None:
        try:
            raise error
        finally:
            del error  # the traceback keeps this frame: no cycle through it
    return value
    yield  # a generator: never reached


def _state_of_attempt(run: TaskRunContext, exc: BaseException, timeout: float | None) -> State[Any]:
    """The state an attempt that raised ``exc`` ends in; the loop's cancellation goes on up."""
    if isinstance(exc, RunCancelledSignal):
        return Cancelled()
    if isinstance(exc, AttemptTimedOut):
        run._timed_out_attempt = run.attempt
        error = TaskRunTimeout(f"task run {run.task_run_name!r} timed out after {timeout} s")
        return Failed(error, name="TimedOut")
    if isinstance(exc, Exception):
        return Failed(exc)
    if is_host_cancellation(exc):
        raise exc
    # The loop's own cancellation type that nobody sent this run (an awaited task
    # was cancelled) cancels just the run; a foreign one (asyncio's under trio, or
    # raised by a sync body) is its crash.
    if is_loop_cancellation(exc):
        return Cancelled(f"the body let a {type(exc).__name__} out")
    return Crashed(exc)


def _refuse_coroutine(task: Any, value: Any) -> None:
    value.close()  # never awaited, and never will be: no warning at collection
    raise TypeError(
        f"sync task {task.name!r} returned a coroutine; make the function `async def` "
        f"so taskrun awaits it, or await the coroutine inside an async task"
    )


def _end_unnamed(run: TaskRunContext, error: Exception) -> State[Any]:
    """End a run whose ``task_run_name`` could not be made: it fails before it starts."""
    state = Failed(error, message=f"task_run_name could not be made: {describe(error)}")
    _run_logging.log_final(run, state)
    if run.future is not None:
        run.future._finish(state)
    return state


async def _wait_to_retry(run: TaskRunContext, state: State[Any], ex: Executor) -> State[Any] | None:
    """After a failed attempt with retries left: None once it is time for the next
    attempt, or the final state (the failure, when the retry condition says no;
    ``Cancelled``, when the run is cancelled while it waits)."""
    task = run.task
    future = run.future
    if task.retry_condition_fn is not None:
        try:
            verdict = await ex.call_user(task.retry_condition_fn, task, run, state)
        except BaseException as exc:
            if is_host_cancellation(exc):
                raise
            run_logger_for(run).exception("retry_condition_fn raised; the run is not retried")
            verdict = False
        if not verdict:
            return state
    delay = task._retry_delay(run.attempt)
    _run_logging.log_retry(run, state, run.attempt, task.retries, delay)
    waiting = Scheduled("AwaitingRetry", f"attempt {run.attempt} {state.name}; retrying in {delay:g} s")
    if future is not None:
        future._set_state(waiting)
    if _events.ACTIVE:
        _events.emit_state(run, waiting)
    try:
        await ex.sleep(run, delay)
    except RunCancelledSignal:
        return Cancelled()
    if run._cancel_requested:
        return Cancelled()
    retrying = Running("Retrying", f"attempt {run.attempt + 1}")
    if future is not None:
        future._set_state(retrying)
    if _events.ACTIVE:
        _events.emit_state(run, retrying)
    return None


_last_running: State[Any] = Running()


def _running(future: TaskFuture[Any] | None) -> State[Any]:
    """The plain ``Running`` state; runs that start within a millisecond share one
    (states are immutable records, as the ``Pending`` shared by one hand-off is),
    never one older than the state the run leaves."""
    global _last_running
    state = _last_running
    ts = state._ts
    if not 0 <= time.time() - ts <= 0.001 or (future is not None and future._state._ts > ts):
        state = _last_running = Running()
    return state


async def _call_hooks(hooks: list[Callable[..., Any]], run: TaskRunContext, state: State[Any],
                      ex: Executor) -> None:
    for hook in hooks:
        try:
            await ex.call_user(hook, run.task, run, state)
        except BaseException as exc:  # SystemExit too: a hook never changes how the run ended
            if is_host_cancellation(exc):
                raise
            run_logger_for(run).exception(
                "hook %r raised; the run's state is unchanged", getattr(hook, "__name__", hook)
            )
