"""Flows: functions that run their tasks on a runner of their own.

Calling a flow enters ``task_runner.duplicate()`` (default
``ThreadPoolTaskRunner()``), runs the function, waits for every run submitted
inside it, and returns the return value with futures in it resolved.

Example::

    from taskrun import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(retries=1, flow_run_name="double-{n}")
    def pipeline(n: int) -> list[int]:
        return double.map(range(n))      # futures are resolved on return

    assert pipeline(3) == [0, 2, 4]
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Literal, TypeVar, overload

import anyio
from typing_extensions import ParamSpec

from ._core._backend import is_cancellation
from ._engine import _flow_context, _printing, _run_logging
from ._engine._caching import FLOW_DEFAULTS
from ._engine._executors import _run_coroutine_elsewhere
from ._engine._flow_context import FlowRunContext
from ._engine._vars import current_flow_run, flow_log_prints
from ._engine._waiting import resolve_futures_to_results, resolve_results_async
from ._hooks import check_hooks
from ._ids import new_uuid
from ._observe._switches import FlowObserver, RecordOption, check_progress, check_record
from ._results._service import flow_result_defaults
from ._runners._base import TaskRunner
from ._runners._thread import ThreadPoolTaskRunner
from ._validation import check_arguments, resolved_hints
from .exceptions import ParameterBindError, TaskRunTimeout
from .states import Completed, Crashed, Failed, State, StateType

P = ParamSpec("P")
# Covariant so that an ``async def`` flow matches the ``Flow[P, Coroutine[Any, Any, T]]`` overloads.
R = TypeVar("R", covariant=True)
T = TypeVar("T")

FlowHook = Callable[["Flow[Any, Any]", FlowRunContext, State[Any]], object]

_FLOW_OPTIONS = (
    "name", "description", "version", "task_runner", "timeout_seconds", "log_prints", "retries",
    "retry_delay_seconds", "flow_run_name", "validate_parameters", "on_completion", "on_failure",
    "on_cancellation", "on_crashed", "on_running", "persist_result", "result_storage",
    "result_serializer", "progress", "record",
)


def _doc_of(fn: Any) -> str | None:
    # Not inspect.getdoc: for a method without a docstring it looks the name up on the
    # class, which calls our __get__, which makes a new object, which asks again.
    doc = getattr(getattr(fn, "__func__", fn), "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def _runner_instance(task_runner: Any) -> TaskRunner[Any]:
    if task_runner is None:
        return ThreadPoolTaskRunner()
    if isinstance(task_runner, type) and issubclass(task_runner, TaskRunner):
        return task_runner()
    if isinstance(task_runner, TaskRunner):
        return task_runner
    raise TypeError(
        f"task_runner must be a TaskRunner instance or class (e.g. ThreadPoolTaskRunner(max_workers=4)), "
        f"got {task_runner!r}"
    )


class Flow(Generic[P, R]):
    """A function run with a task runner of its own. Make one with :func:`flow`.

    Flows bind like functions when defined in a class (instance methods,
    ``classmethod`` and ``staticmethod``). Hooks can be given as lists or added with
    ``@my_flow.on_completion`` / ``.on_failure`` / ``.on_cancellation`` /
    ``.on_crashed`` / ``.on_running``; each is called ``(flow, flow_run, state)``.

    Example::

        @flow(task_runner=ThreadPoolTaskRunner(max_workers=4), timeout_seconds=60)
        async def nightly() -> None: ...
    """

    def __init__(self, fn: Callable[P, R], name: str | None = None, description: str | None = None,
                 version: str | None = None,
                 task_runner: TaskRunner[Any] | type[TaskRunner[Any]] | None = None,
                 timeout_seconds: float | None = None, log_prints: bool = False, retries: int | None = None,
                 retry_delay_seconds: float | None = None,
                 flow_run_name: str | Callable[[], str] | None = None, validate_parameters: bool = True,
                 on_completion: list[FlowHook] | None = None, on_failure: list[FlowHook] | None = None,
                 on_cancellation: list[FlowHook] | None = None, on_crashed: list[FlowHook] | None = None,
                 on_running: list[FlowHook] | None = None, persist_result: bool | None = None,
                 result_storage: Any = None, result_serializer: Any = None,
                 progress: bool | None = None, record: RecordOption = None) -> None:
        self._binder: type | None = None
        if isinstance(fn, (classmethod, staticmethod)):
            self._binder = type(fn)
            fn = fn.__func__
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        if timeout_seconds is not None and (isinstance(timeout_seconds, bool)
                                            or not isinstance(timeout_seconds, (int, float))):
            raise TypeError(
                f"timeout_seconds must be a number of seconds > 0 (or None), got {timeout_seconds!r}"
            )
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be a number > 0, got {timeout_seconds!r}")
        retries = 0 if retries is None else retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
        delay = 0.0 if retry_delay_seconds is None else retry_delay_seconds
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
            raise ValueError(f"retry_delay_seconds of a flow must be a number >= 0, got {delay!r}")
        if flow_run_name is not None and not (isinstance(flow_run_name, str) or callable(flow_run_name)):
            raise TypeError("flow_run_name must be a str with {param} fields, or a callable returning a str")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "flow"))
        check_progress(progress, f"flow {self.name!r}")
        check_record(record, f"flow {self.name!r}")
        self.progress = progress
        self.record = record
        self.description = description if description is not None else _doc_of(fn)
        self.version = version
        self._given_runner = task_runner
        self.task_runner: TaskRunner[Any] = _runner_instance(task_runner)
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.retries: int = retries
        self.retry_delay_seconds: float = delay
        self.flow_run_name = flow_run_name
        self.validate_parameters = validate_parameters
        self.on_completion = check_hooks("on_completion", on_completion)
        self.on_failure = check_hooks("on_failure", on_failure)
        self.on_cancellation = check_hooks("on_cancellation", on_cancellation)
        self.on_crashed = check_hooks("on_crashed", on_crashed)
        self.on_running = check_hooks("on_running", on_running)
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        #: Result defaults for the task runs of this flow (None: none set).
        self._result_defaults = flow_result_defaults(persist_result, result_storage, result_serializer)
        if self._result_defaults is not None and not FLOW_DEFAULTS:
            FLOW_DEFAULTS.append(self.name)
        self.isasync = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self._hints: dict[str, Any] | None = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    # ------------------------------------------------------------------ options and binding

    def _options(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "version": self.version,
            "task_runner": self._given_runner, "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints, "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds, "flow_run_name": self.flow_run_name,
            "validate_parameters": self.validate_parameters,
            "on_completion": list(self.on_completion), "on_failure": list(self.on_failure),
            "on_cancellation": list(self.on_cancellation), "on_crashed": list(self.on_crashed),
            "on_running": list(self.on_running), "persist_result": self.persist_result,
            "result_storage": self.result_storage, "result_serializer": self.result_serializer,
            "progress": self.progress, "record": self.record,
        }

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options replaced.

        Example::

            quick = nightly.with_options(retries=0, timeout_seconds=5)
        """
        unknown = set(options) - set(_FLOW_OPTIONS)
        if unknown:
            raise TypeError(f"unknown flow option(s) {sorted(unknown)}; valid options: {list(_FLOW_OPTIONS)}")
        merged = self._options()
        merged.update(options)
        copy: Flow[P, R] = Flow(self.fn, **merged)
        copy._binder = self._binder
        return copy

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if self._binder is staticmethod or (instance is None and self._binder is not classmethod):
            return self
        target = owner if self._binder is classmethod else instance
        bound: Flow[Any, Any] = Flow(self.fn.__get__(target, owner), **self._options())
        return bound

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterBindError(f"flow {self.name!r}{self._signature}: {exc}") from None
        if self.validate_parameters:
            if self._hints is None:
                self._hints = resolved_hints(self.fn)
            check_arguments(f"flow {self.name!r}", self._hints, dict(bound.arguments))
        bound.apply_defaults()
        return dict(bound.arguments)

    def _run_name(self, parameters: dict[str, Any]) -> str:
        template = self.flow_run_name
        if template is None:
            return f"{self.name}-{new_uuid().hex[:8]}"
        if callable(template):
            name = template()
            if not isinstance(name, str):
                raise TypeError(f"flow_run_name callable of {self.name!r} returned {name!r}, not a str")
            return name
        try:
            return template.format(**parameters)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"flow_run_name {template!r} of {self.name!r} names {exc} which is not a parameter"
            ) from None

    # ------------------------------------------------------------------ calling

    @overload
    def __call__(self: Flow[P, Coroutine[Any, Any, T]], *args: P.args,  # type: ignore[overload-overlap]
                 **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...
    @overload
    def __call__(self: Flow[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...
    # ``return_state=`` cannot sit next to the checked parameters (PEP 612): these take Any.
    @overload
    def __call__(self: Flow[..., Coroutine[Any, Any, T]], *args: Any, return_state: Literal[True],
                 **kwargs: Any) -> Coroutine[Any, Any, State[T]]: ...
    @overload
    def __call__(self: Flow[..., T], *args: Any, return_state: Literal[True], **kwargs: Any) -> State[T]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow and return its value; an async flow returns a coroutine.

        ``return_state=True`` (a keyword the flow's function does not take) returns the
        flow run's final :class:`State` instead; see :meth:`call_with_state` for a typed form.
        """
        return_state = bool(kwargs.pop("return_state", False))
        parameters = self._bind(args, kwargs)
        ctx = FlowRunContext(self, parameters, self._run_name(parameters), self.log_prints)
        if self.log_prints:
            _printing.install()
        if self.isasync:
            return self._call_async(ctx, args, kwargs, return_state)
        return self._call_sync(ctx, args, kwargs, return_state)

    @overload
    def call_with_state(self: Flow[P, Coroutine[Any, Any, T]], *args: P.args,  # type: ignore[overload-overlap]
                        **kwargs: P.kwargs) -> Awaitable[State[T]]: ...
    @overload
    def call_with_state(self: Flow[P, T], *args: P.args, **kwargs: P.kwargs) -> State[T]: ...

    def call_with_state(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow and return its final State (the typed twin of ``return_state=True``).

        Example::

            state = pipeline.call_with_state(3)
            assert state.is_completed()
        """
        call: Any = self.__call__
        return call(*args, return_state=True, **kwargs)

    def _call_sync(self, ctx: FlowRunContext, args: tuple[Any, ...], kwargs: dict[str, Any],
                   return_state: bool) -> Any:
        start = time.monotonic()
        observer = FlowObserver.begin(ctx, self.progress, self.record)
        tokens = (current_flow_run.set(ctx), flow_log_prints.set(self.log_prints))
        _flow_context.enter_thread()
        try:
            self._hooks_sync(self.on_running, ctx, State(StateType.RUNNING))
            while True:
                ctx.attempt += 1
                try:
                    with self.task_runner.duplicate() as runner:
                        ctx.task_runner = runner
                        try:
                            value = self._body_sync(args, kwargs)
                            value = resolve_futures_to_results(value)
                        except BaseException:
                            runner.cancel_all()
                            raise
                    state = _final(value)
                except Exception as exc:
                    state = _failed(exc)
                except BaseException as exc:
                    observer.state = Crashed(exc)
                    self._finish_sync(ctx, observer.state, start)
                    raise
                finally:
                    ctx.task_runner = None
                if not (state.type is StateType.FAILED and ctx.attempt <= self.retries):
                    break
                _run_logging.log_flow_retry(ctx, state, ctx.attempt, self.retries, self.retry_delay_seconds)
                time.sleep(self.retry_delay_seconds)
            observer.state = state
            self._finish_sync(ctx, state, start)
        finally:
            observer.end()
            _flow_context.leave_thread()
            flow_log_prints.reset(tokens[1])
            current_flow_run.reset(tokens[0])
        return state if return_state else state.result()

    def _finish_sync(self, ctx: FlowRunContext, state: State[Any], start: float) -> None:
        self._hooks_sync(self._final_hooks(state), ctx, state)
        _run_logging.flow_end_line(ctx, state, time.monotonic() - start)

    def _final_hooks(self, state: State[Any]) -> list[Any]:
        kind = state.type
        if kind is StateType.COMPLETED:
            return self.on_completion
        if kind is StateType.FAILED:
            return self.on_failure
        if kind is StateType.CRASHED:
            return [*self.on_crashed, *self.on_failure]
        if kind is StateType.CANCELLED:
            return self.on_cancellation
        return []

    def _hooks_sync(self, hooks: list[Any], ctx: FlowRunContext, state: State[Any]) -> None:
        for hook in hooks:
            try:
                value = hook(self, ctx, state)
                if inspect.isawaitable(value):
                    _run_coroutine_elsewhere(value)
            except Exception:
                ctx.logger().exception("hook %r raised; the flow run's state is unchanged",
                                       getattr(hook, "__name__", hook))

    async def _hooks_async(self, hooks: list[Any], ctx: FlowRunContext, state: State[Any]) -> None:
        for hook in hooks:
            try:
                value = hook(self, ctx, state)
                if inspect.isawaitable(value):
                    await value
            except Exception:
                ctx.logger().exception("hook %r raised; the flow run's state is unchanged",
                                       getattr(hook, "__name__", hook))

    def _body_sync(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.timeout_seconds is None:
            return self.fn(*args, **kwargs)
        box: list[tuple[bool, Any]] = []
        context = contextvars.copy_context()

        def target() -> None:
            _flow_context.enter_thread()
            try:
                box.append((True, context.run(self.fn, *args, **kwargs)))
            except BaseException as exc:
                box.append((False, exc))
            finally:
                _flow_context.leave_thread()

        thread = threading.Thread(target=target, name=f"taskrun-flow-{self.name}", daemon=True)
        thread.start()
        # A timeout past the platform's limit (math.inf) means no limit.
        thread.join(self.timeout_seconds if self.timeout_seconds < threading.TIMEOUT_MAX else None)
        if not box:
            raise TaskRunTimeout(f"flow {self.name!r} timed out after {self.timeout_seconds} s")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    async def _call_async(self, ctx: FlowRunContext, args: tuple[Any, ...], kwargs: dict[str, Any],
                          return_state: bool) -> Any:
        start = time.monotonic()
        observer = FlowObserver.begin(ctx, self.progress, self.record)
        tokens = (current_flow_run.set(ctx), flow_log_prints.set(self.log_prints))
        _flow_context.enter_thread()
        try:
            await self._hooks_async(self.on_running, ctx, State(StateType.RUNNING))
            while True:
                ctx.attempt += 1
                try:
                    async with self.task_runner.duplicate() as runner:
                        ctx.task_runner = runner
                        try:
                            if self.timeout_seconds is None:
                                value = await self.fn(*args, **kwargs)  # type: ignore[misc]
                            else:
                                with anyio.move_on_after(self.timeout_seconds) as scope:
                                    value = await self.fn(*args, **kwargs)  # type: ignore[misc]
                                if scope.cancelled_caught:
                                    raise TaskRunTimeout(
                                        f"flow {self.name!r} timed out after {self.timeout_seconds} s"
                                    )
                            value = await resolve_results_async(value)
                        except BaseException:
                            runner.cancel_all()
                            raise
                    state = _final(value)
                except Exception as exc:
                    state = _failed(exc)
                except BaseException as exc:
                    final = Crashed(exc) if not _is_cancellation(exc) else State(
                        StateType.CANCELLED, message="the flow run was cancelled")
                    observer.state = final
                    with anyio.CancelScope(shield=True):
                        await self._hooks_async(self._final_hooks(final), ctx, final)
                    _run_logging.flow_end_line(ctx, final, time.monotonic() - start)
                    raise
                finally:
                    ctx.task_runner = None
                if not (state.type is StateType.FAILED and ctx.attempt <= self.retries):
                    break
                _run_logging.log_flow_retry(ctx, state, ctx.attempt, self.retries, self.retry_delay_seconds)
                await anyio.sleep(self.retry_delay_seconds)
            observer.state = state
            await self._hooks_async(self._final_hooks(state), ctx, state)
            _run_logging.flow_end_line(ctx, state, time.monotonic() - start)
        finally:
            with anyio.CancelScope(shield=True):
                await observer.end_async()
            _flow_context.leave_thread()
            flow_log_prints.reset(tokens[1])
            current_flow_run.reset(tokens[0])
        return state if return_state else state.result()

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"


def _is_cancellation(exc: BaseException) -> bool:
    return is_cancellation(exc)


def _final(value: Any) -> State[Any]:
    """A body's return value as the flow's final state (a returned State is taken as it is)."""
    if isinstance(value, State):
        return value
    return Completed(value)


def _failed(exc: Exception) -> State[Any]:
    """The state of a flow whose body (or one of its runs it returned) raised ``exc``."""
    return Failed(exc, name="TimedOut" if isinstance(exc, TaskRunTimeout) else None)


@overload
def flow(__fn: Callable[P, T]) -> Flow[P, T]: ...
@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    task_runner: TaskRunner[Any] | type[TaskRunner[Any]] | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool = False,
    retries: int | None = None,
    retry_delay_seconds: float | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    validate_parameters: bool = True,
    on_completion: list[FlowHook] | None = None,
    on_failure: list[FlowHook] | None = None,
    on_cancellation: list[FlowHook] | None = None,
    on_crashed: list[FlowHook] | None = None,
    on_running: list[FlowHook] | None = None,
    persist_result: bool | None = None,
    result_storage: Any = None,
    result_serializer: Any = None,
    progress: bool | None = None,
    record: RecordOption = None,
) -> Callable[[Callable[P, T]], Flow[P, T]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Make a :class:`Flow` of a sync or async function: ``@flow`` or ``@flow(...)``.

    Options (all keyword, all optional):

    - ``name``: the flow's name (default: the function's name).
    - ``description``: a description (default: the docstring).
    - ``version``: a version string, kept on the flow.
    - ``task_runner``: a TaskRunner instance or class (default ``ThreadPoolTaskRunner()``).
    - ``timeout_seconds``: fail the run (``TimedOut``) after this many seconds.
    - ``log_prints``: log ``print`` calls in the body and in its task runs.
    - ``retries``: rerun the whole flow this many times after a failure.
    - ``retry_delay_seconds``: seconds to wait between flow attempts.
    - ``flow_run_name``: run name, a ``{param}`` template or a callable returning a str.
    - ``validate_parameters``: check arguments against annotations (default True).
    - ``on_completion`` / ``on_failure`` / ``on_cancellation`` / ``on_crashed`` /
      ``on_running``: hooks ``(flow, flow_run, state)``, or add them as decorators.
    - ``persist_result`` / ``result_storage`` / ``result_serializer``: defaults for the
      task runs of this flow (a task's own options win); see ``docs/caching.md``.
    - ``progress``: show the progress of the flow's task runs (default: ``TASKRUN_PROGRESS=1``).
    - ``record``: ``True`` or a path such as ``"runs.jsonl"`` (default: ``TASKRUN_RECORD``):
      record the task runs; the final state's ``.report`` is then their Summary.

    Example::

        @flow(log_prints=True, retries=2)
        def hello() -> None:
            print("hi")
    """
    unknown = set(options) - set(_FLOW_OPTIONS)
    if unknown:
        raise TypeError(f"unknown flow option(s) {sorted(unknown)}; valid options: {list(_FLOW_OPTIONS)}")
    if __fn is not None:
        return Flow(__fn, **options)

    def decorate(fn: Callable[P, T]) -> Flow[P, T]:
        return Flow(fn, **options)

    return decorate


__all__ = ["Flow", "flow", "FlowHook"]
