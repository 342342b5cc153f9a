"""The engine: runs *one* task run as a coroutine.

It resolves inputs (futures nested in parameters, ``wait_for``), applies the
upstream-failure rule, moves the run through its states, runs the body (async
bodies awaited on the loop, sync bodies handed to an executor), retries with
delays, enforces timeouts, calls hooks, and finishes the future. It does not
know which runner called it: everything it needs from the outside world is an
*executor* (see :class:`Executor`).
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import random
import threading
import time
from collections.abc import Callable, Coroutine
from types import CoroutineType as _COROUTINE
from typing import TYPE_CHECKING, Any, Protocol, cast

from sniffio import current_async_library_cvar as _library_var

from . import _printing
from ._core._backend import (
    DirectAwaitBackend,
    RunCancelledSignal,
    is_cancellation,
    is_host_cancellation,
    is_loop_cancellation,
)
from ._core._dispatch import PROMOTE
from ._core._workers import Job
from ._resolve import collect_futures, replace_futures
from .context import TaskRunContext, current_run, flow_log_prints, run_logger_for
from .exceptions import TaskRunTimeout, UpstreamTaskError
from .futures import TaskFuture, _unfinished_in, _wait_many, _wait_many_async
from .states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    NotReady,
    Running,
    Scheduled,
    State,
    StateType,
    describe,
)

if TYPE_CHECKING:
    from ._core._dispatch import Dispatcher


class AttemptTimedOut(Exception):
    """Raised by an executor when a sync body ran past the timeout."""


class Executor(Protocol):
    """What the engine needs from its surroundings to run one attempt.

    ``runs_async_locally``: when True, the engine calls an async task's function
    itself and hands the coroutine to :meth:`call_async`; when False (process
    pools), every body, sync or async, goes to :meth:`call_sync` as a function.
    ``call_sync`` enforces ``timeout`` itself by raising :class:`AttemptTimedOut`,
    and raises :class:`RunCancelledSignal` when the run was cancelled.
    """

    runs_async_locally: bool
    promotes: bool
    direct_await: bool
    #: True when sync bodies without a timeout may be awaited as a :class:`Job`
    #: directly (the dispatcher's drivers run them on its worker threads).
    parks_jobs: bool

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any: ...

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any: ...

    async def sleep(self, run: TaskRunContext, seconds: float) -> None: ...

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any: ...



class DirectAwaitExecutor(Executor, Protocol):
    """An executor with ``direct_await``: the engine awaits async bodies itself and
    cancels them through the task hosting the run."""

    def arm_cancel(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> None: ...

    def disarm_cancel(self, run: TaskRunContext, exc: BaseException | None) -> bool: ...

    async def absorb_cancel(self) -> None: ...


# ---------------------------------------------------------------------- admission

_ATOMS = frozenset({int, float, str, bytes, bool, type(None)})


class _Dependencies:
    """Done callback counting a run's unfinished inputs; re-admits it at zero.

    Inputs finish on any thread; ``next`` on an :func:`itertools.count` is atomic,
    so the count needs no lock.
    """

    __slots__ = ("_calls", "_dispatcher", "_left", "_run")

    def __init__(self, dispatcher: Dispatcher, run: TaskRunContext, left: int) -> None:
        self._dispatcher = dispatcher
        self._run = run
        self._left = left
        self._calls = itertools.count(1)

    def __call__(self, _: TaskFuture[Any]) -> None:
        if next(self._calls) == self._left:
            # Never inside the step that finished the input, so that a cascade of
            # runs (a long chain ending NotReady) does not recurse.
            self._dispatcher.schedule(readmit, self._dispatcher, self._run)


def readmit(dispatcher: Dispatcher, run: TaskRunContext) -> None:
    """Admit a run again once its last input is final."""
    if admit(dispatcher, run):
        dispatcher.offer(run)


def admit(dispatcher: Dispatcher, run: TaskRunContext) -> bool:
    """(loop thread, or a worker thread stepping runs on) True when the run is ready
    to be offered a slot; else it waits for its inputs, or has ended (NotReady).

    An error on the way (parameters too deep to search, a dataclass whose field
    cannot be read) ends the run ``Failed`` with that error: it never strands it.
    """
    try:
        return _admit(dispatcher, run)
    except Exception as exc:
        if run.future is not None:
            run.future._finish(Failed(exc, message=f"preparing the run failed: {describe(exc)}"))
        dispatcher.finished(run)
        return False


def _admit(dispatcher: Dispatcher, run: TaskRunContext) -> bool:
    if run._cancel_requested:
        dispatcher.finished(run)
        return False
    params = run.parameters
    waits = run.wait_for
    if _all_atoms(params):
        if waits is None:
            return True
        if _only_futures(waits):
            return _admit_after(dispatcher, run, waits)
    upstream = run._upstream
    if upstream is None or _results_hold_more(upstream[0]):
        upstream = run._upstream = (collect_futures(params), collect_futures(None, waits))
    pending = [f for part in upstream for f, _ in part if not f._final]
    if pending:
        counter = _Dependencies(dispatcher, run, len(pending))
        for f in pending:
            f.add_done_callback(counter)
        return False
    problem = upstream_problem(upstream[0]) or upstream_problem(upstream[1])
    if problem is not None:
        finish_not_ready(run, problem)
        dispatcher.finished(run)
        return False
    if not _all_atoms(params):  # futures to replace, or annotations to unwrap
        run._raw_parameters = params
        run.parameters = replace_futures(params, value_of)
    return True


def _admit_after(dispatcher: Dispatcher, run: TaskRunContext, waits: list[TaskFuture[Any]]) -> bool:
    """:func:`admit` for a run whose only inputs are the futures it waits for."""
    pending = [f for f in waits if not f._final]
    if pending:
        counter = _Dependencies(dispatcher, run, len(pending))
        for f in pending:
            f.add_done_callback(counter)
        return False
    for f in waits:
        if not f._state.is_completed():
            finish_not_ready(run, upstream_problem([(f, False)]) or "")
            dispatcher.finished(run)
            return False
    return True


#: Types known to be :class:`TaskFuture` subclasses (an ``isinstance`` per wait is slow).
_FUTURE_TYPES: set[type] = set()


def _only_futures(waits: list[Any]) -> bool:
    known = _FUTURE_TYPES
    for item in waits:
        kind = type(item)
        if kind not in known:
            if not issubclass(kind, TaskFuture):
                return False
            known.add(kind)
    return True


def _all_atoms(params: dict[str, Any]) -> bool:
    for value in params.values():
        if type(value) not in _ATOMS:
            return False
    return True


def _results_hold_more(found: list[tuple[TaskFuture[Any], bool]]) -> bool:
    """True when a finished input's result is a container that may hold futures."""
    for future, _ in found:
        if future._final and type(future._state.data) not in _ATOMS:
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
    state = future._state
    if state.type is StateType.COMPLETED:
        return state.data
    return state.exception()


def finish_not_ready(run: TaskRunContext, message: str) -> None:
    if run.future is not None:
        run.future._finish(NotReady(message))


def finish_crashed(run: TaskRunContext, error: BaseException) -> None:
    """End a run whose engine coroutine itself failed (an internal error)."""
    if run.future is not None:
        run.future._finish(Crashed(error))


def finish_cancelled(run: TaskRunContext) -> None:
    """End a run that was cancelled before it started."""
    if run.future is not None:
        run.future._finish(Cancelled("the run was cancelled before it started"))


# ---------------------------------------------------------------------- execution


def enter_run(run: TaskRunContext) -> None:
    """(inside the run's context) Make ``run`` the current run there.

    The submitter's loop library (``anyio.run`` names it in sniffio's context
    variable) is not the run's: a run executes on the runner's loop, or on a
    worker thread with none, so sniffio detects it afresh there.
    """
    current_run.set(run)
    if _library_var.get() is not None:
        _library_var.set(None)


def execute(dispatcher: Dispatcher, run: TaskRunContext) -> Coroutine[Any, Any, State[Any]]:
    """(dispatcher, inside the run's context) The coroutine that runs an admitted run."""
    return drive(run, dispatcher.executor)


async def drive(run: TaskRunContext, ex: Executor) -> State[Any]:
    """Run every attempt of ``run`` and return its final state (finishing its future).

    The attempts are inlined here, rather than in a helper coroutine, so that a
    run waiting on its body keeps as few coroutine frames alive as possible.
    """
    task = run.task
    future = run.future
    log_prints = task.log_prints
    run._log_prints = flow_log_prints.get() if log_prints is None else log_prints
    if run._log_prints:
        _printing.install()
    if task.task_run_name is not None:
        run.task_run_name  # noqa: B018 - a template or callable that fails fails the run
        if run._name_error is not None:
            state: State[Any] = Failed(
                run._name_error, message=f"task_run_name could not be made: {describe(run._name_error)}"
            )
            if future is not None:
                future._finish(state)
            return state
    state = Running()
    if future is not None:
        future._set_state(state)
    timeout = task.timeout_seconds
    try:
        if task.on_running:
            await _call_hooks(task.on_running, run, state, ex)
        args, kwargs = task._call_args(run.parameters)
        while True:
            run.attempt += 1
            # ------------------------------------------------ one attempt
            try:
                if task.isasync and ex.runs_async_locally:
                    if ex.promotes and not run._in_task:
                        await PROMOTE
                    coro = task.fn(*args, **kwargs)
                    scope = _NO_SCOPE if timeout is None else _deadline(timeout)
                    with scope:
                        if ex.direct_await:
                            # Awaited right here, not in a wrapper coroutine: a
                            # waiting run keeps one frame less alive.
                            direct = cast(DirectAwaitExecutor, ex)
                            direct.arm_cancel(run, coro)
                            try:
                                value = await coro
                            except BaseException as exc:
                                if direct.disarm_cancel(run, exc):
                                    raise RunCancelledSignal from None
                                raise
                            if direct.disarm_cancel(run, None):
                                await direct.absorb_cancel()
                                raise RunCancelledSignal
                        else:
                            value = await ex.call_async(run, coro)
                    if scope.cancelled_caught:
                        raise AttemptTimedOut
                elif timeout is None and ex.parks_jobs:
                    # The common case, inlined: no helper coroutine per run.
                    job = Job(contextvars.copy_context(), task.fn, args, kwargs)
                    run._cancel_hook = job
                    try:
                        # Read after the hook is set: a cancel on another thread
                        # sees the hook, or this sees its flag (or both).
                        if run._cancel_requested:
                            raise RunCancelledSignal
                        ok, value = await job
                    finally:
                        run._cancel_hook = None
                    if not ok:
                        if value is RunCancelledSignal:
                            raise RunCancelledSignal
                        raise value
                else:
                    value = await ex.call_sync(run, task.fn, args, kwargs, timeout)
                if type(value) is _COROUTINE and not task.isasync:
                    _refuse_coroutine(task, value)
                state = Completed(value)
            except RunCancelledSignal:
                state = Cancelled()
            except AttemptTimedOut:
                run._timed_out_attempt = run.attempt
                error = TaskRunTimeout(f"task run {run.task_run_name!r} timed out after {timeout} s")
                state = Failed(error, name="TimedOut")
            except Exception as exc:
                state = Failed(exc)
            except BaseException as exc:
                if is_host_cancellation(exc):
                    raise
                # The loop's own cancellation type that nobody sent this run (an
                # awaited task was cancelled) cancels just the run; a foreign one
                # (asyncio's under trio, or raised by a sync body) is its crash.
                state = Cancelled(f"the body let a {type(exc).__name__} out") \
                    if is_loop_cancellation(exc) else Crashed(exc)
            # ------------------------------------------------ retry?
            if not (state.type is StateType.FAILED and run.attempt <= task.retries
                    and not run._cancel_requested):
                break
            if task.retry_condition_fn is not None:
                try:
                    verdict = await ex.call_user(task.retry_condition_fn, task, run, state)
                except BaseException as exc:
                    if is_host_cancellation(exc):
                        raise
                    run_logger_for(run).exception("retry_condition_fn raised; the run is not retried")
                    verdict = False
                if not verdict:
                    break
            delay = task._retry_delay(run.attempt)
            if future is not None:
                future._set_state(Scheduled(
                    "AwaitingRetry", f"attempt {run.attempt} {state.name}; retrying in {delay:g} s"
                ))
            try:
                await ex.sleep(run, delay)
            except RunCancelledSignal:
                state = Cancelled()
                break
            if run._cancel_requested:
                state = Cancelled()
                break
            if future is not None:
                future._set_state(Running("Retrying", f"attempt {run.attempt + 1}"))
    except BaseException as exc:
        state = Cancelled("the runner was cancelled") if is_cancellation(exc) else Crashed(exc)
        if future is not None:
            future._finish(state)
        raise
    if state.type is StateType.COMPLETED:
        if task.on_completion:
            await _call_hooks(task.on_completion, run, state, ex)
    elif state.type in (StateType.FAILED, StateType.CRASHED) and task.on_failure:
        await _call_hooks(task.on_failure, run, state, ex)
    if future is not None:
        future._finish(state)
    return state


def _refuse_coroutine(task: Any, value: Any) -> None:
    value.close()  # never awaited, and never will be: no warning at collection
    raise TypeError(
        f"sync task {task.name!r} returned a coroutine; make the function `async def` "
        f"so taskrun awaits it, or await the coroutine inside an async task"
    )


class _NoScope:
    """Stands in for a cancel scope when a run has no timeout."""

    cancelled_caught = False

    def __enter__(self) -> _NoScope:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None


_NO_SCOPE = _NoScope()


def _deadline(timeout: float) -> Any:
    import anyio

    return anyio.move_on_after(timeout)


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


# ---------------------------------------------------------------------- executors


class RunnerExecutor:
    """Executor for runs of a runner: sync bodies are parked on the dispatcher's
    worker threads; anything that needs a loop task first awaits ``PROMOTE``."""

    runs_async_locally = True
    promotes = True
    parks_jobs = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        backend = self._backend = dispatcher.backend
        self.call_async = backend.run_cancellable
        self.direct_await = backend.direct_await
        if self.direct_await:
            direct = cast(DirectAwaitBackend, backend)
            self.disarm_cancel = direct.disarm_cancel
            self.absorb_cancel = direct.absorb_cancel

    def arm_cancel(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> None:
        if run._cancel_requested:
            coro.close()
            raise RunCancelledSignal
        cast(DirectAwaitBackend, self._backend).arm_cancel(run)

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        job = Job(contextvars.copy_context(), fn, args, kwargs)
        run._cancel_hook = job
        try:
            if run._cancel_requested:  # after the hook is set, as in ``drive``
                raise RunCancelledSignal
            if timeout is None:
                ok, value = await job
            else:
                import anyio

                await PROMOTE
                with anyio.move_on_after(timeout) as scope:
                    ok, value = await job
                if scope.cancelled_caught:
                    job.abandoned = True
                    raise AttemptTimedOut
        finally:
            run._cancel_hook = None
        if ok:
            return value
        if value is RunCancelledSignal:
            raise RunCancelledSignal
        raise value

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        import anyio

        await PROMOTE
        dispatcher = self._dispatcher
        holder = run._slot_run or run
        dispatcher.release(holder)
        try:
            await self._backend.run_cancellable(run, anyio.sleep(seconds))
        finally:
            await dispatcher.reacquire(holder)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            await PROMOTE
            return await fn(*args)
        ok, value = await Job(contextvars.copy_context(), fn, args, {})
        if not ok:
            raise value
        if inspect.isawaitable(value):
            await PROMOTE
            return await value
        return value


class InlineExecutor:
    """Executor for a direct call of a sync task: everything in the calling thread.

    The engine never suspends under this executor, so :func:`drive_inline` can
    step it to the end without an event loop.
    """

    runs_async_locally = True
    promotes = False
    direct_await = False
    parks_jobs = False

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any:
        coro.close()
        raise RuntimeError("an async body cannot run inline")

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        if timeout is None:
            return fn(*args, **kwargs)
        return _call_with_thread_timeout(fn, args, kwargs, timeout)

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        time.sleep(seconds)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            return _run_coroutine_elsewhere(value)
        return value


class DirectAsyncExecutor:
    """Executor for a direct call of an async task, on the caller's loop."""

    runs_async_locally = True
    promotes = False
    direct_await = False
    parks_jobs = False

    async def call_async(self, run: TaskRunContext, coro: Coroutine[Any, Any, Any]) -> Any:
        return await coro

    async def call_sync(self, run: TaskRunContext, fn: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], timeout: float | None) -> Any:
        return fn(*args, **kwargs)

    async def sleep(self, run: TaskRunContext, seconds: float) -> None:
        import anyio

        await anyio.sleep(seconds)

    async def call_user(self, fn: Callable[..., Any], *args: Any) -> Any:
        value = fn(*args)
        if inspect.isawaitable(value):
            return await value
        return value


def _call_with_thread_timeout(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                              timeout: float) -> Any:
    """Run ``fn`` on a helper thread and stop waiting after ``timeout`` seconds."""
    box: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=target, name="taskrun-timeout", daemon=True)
    thread.start()
    thread.join(timeout if timeout < threading.TIMEOUT_MAX else None)  # math.inf: no limit
    if not box:
        raise AttemptTimedOut
    ok, value = box[0]
    if ok:
        return value
    raise value


def _run_coroutine_elsewhere(awaitable: Any) -> Any:
    """Run an awaitable returned by a sync-world hook on a fresh loop in a helper thread."""
    import asyncio

    box: list[tuple[bool, Any]] = []

    async def wrapper() -> Any:
        return await awaitable

    def target() -> None:
        try:
            box.append((True, asyncio.run(wrapper())))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=target, name="taskrun-hook")
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


def drive_inline(run: TaskRunContext) -> State[Any]:
    """Run a sync task's run to its end in this thread (no event loop needed)."""
    return step_to_end(drive(run, InlineExecutor()))


def step_to_end(coro: Coroutine[Any, Any, State[Any]]) -> State[Any]:
    """Run an engine coroutine that never suspends (an inline executor) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("internal error: the inline engine tried to suspend")


# ---------------------------------------------------------------------- direct-call inputs


def resolve_inputs_blocking(parameters: dict[str, Any]) -> dict[str, Any]:
    """Wait for futures in ``parameters`` (blocking) and replace them with values."""
    if _all_atoms(parameters):
        return parameters
    while pending := _unfinished_in(parameters):
        _wait_many(pending, None, stop_on_failure=False)
    return _checked_replace(parameters)


async def resolve_inputs_async(parameters: dict[str, Any]) -> dict[str, Any]:
    """Await futures in ``parameters`` and replace them with values."""
    if _all_atoms(parameters):
        return parameters
    while pending := _unfinished_in(parameters):
        await _wait_many_async(pending, None, stop_on_failure=False)
    return _checked_replace(parameters)


def _checked_replace(parameters: dict[str, Any]) -> dict[str, Any]:
    """Replace the (final) futures in ``parameters``; UpstreamTaskError if one may not fail."""
    problem = upstream_problem(collect_futures(parameters))
    if problem is not None:
        raise UpstreamTaskError(problem)
    return replace_futures(parameters, value_of)  # type: ignore[no-any-return]


def jittered(delay: float, jitter: float | None) -> float:
    if not jitter or delay <= 0:
        return delay
    return max(0.0, random.uniform(delay * (1 - jitter), delay * (1 + jitter)))
