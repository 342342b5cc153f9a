"""Flows: functions that run their tasks on a runner of their own.

Calling a flow enters ``task_runner.duplicate()`` (default
``ThreadPoolTaskRunner()``), runs the function, waits for every run submitted
inside it, and returns the return value with futures in it resolved.

Example::

    from taskrun import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def pipeline(n: int) -> list[int]:
        return double.map(range(n))      # futures are resolved on return

    assert pipeline(3) == [0, 2, 4]
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from typing_extensions import ParamSpec

from .context import flow_log_prints
from .exceptions import ParameterBindError, TaskRunTimeout
from .futures import resolve_futures_to_results, resolve_results_async
from .states import Completed, Failed, State
from .task_runners import TaskRunner, ThreadPoolTaskRunner

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function run with a task runner of its own. Make one with :func:`flow`.

    Example::

        @flow(task_runner=ThreadPoolTaskRunner(max_workers=4), timeout_seconds=60)
        async def nightly() -> None: ...
    """

    def __init__(self, fn: Callable[P, R], name: str | None = None,
                 task_runner: TaskRunner[Any] | None = None, timeout_seconds: float | None = None,
                 log_prints: bool = False, description: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        if task_runner is not None and not isinstance(task_runner, TaskRunner):
            raise TypeError(f"task_runner must be a TaskRunner instance, got {task_runner!r}")
        if timeout_seconds is not None and (isinstance(timeout_seconds, bool)
                                            or not isinstance(timeout_seconds, (int, float))):
            raise TypeError(
                f"timeout_seconds must be a number of seconds > 0 (or None), got {timeout_seconds!r}"
            )
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be a number > 0, got {timeout_seconds!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "flow")
        self.description = description if description is not None else inspect.getdoc(fn)
        self.task_runner: TaskRunner[Any] = task_runner if task_runner is not None else ThreadPoolTaskRunner()
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.isasync = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def _check_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterBindError(f"flow {self.name!r}{self._signature}: {exc}") from None

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the flow. Returns its value (or its State with ``return_state=True``);
        an async flow returns a coroutine."""
        self._check_args(args, kwargs)
        if self.isasync:
            return self._call_async(args, kwargs, return_state)
        return self._call_sync(args, kwargs, return_state)

    def _call_sync(self, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool) -> Any:
        token = flow_log_prints.set(self.log_prints)
        try:
            with self.task_runner.duplicate() as runner:
                try:
                    value = self._body_sync(runner, args, kwargs)
                    value = resolve_futures_to_results(value)
                except BaseException:
                    runner.cancel_all()
                    raise
            state: State[Any] = Completed(value)
        except Exception as exc:
            state = _failed(exc)
        finally:
            flow_log_prints.reset(token)
        return state if return_state else state.result()

    def _body_sync(self, runner: TaskRunner[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.timeout_seconds is None:
            return self.fn(*args, **kwargs)
        box: list[tuple[bool, Any]] = []
        context = contextvars.copy_context()

        def target() -> None:
            try:
                box.append((True, context.run(self.fn, *args, **kwargs)))
            except BaseException as exc:
                box.append((False, exc))

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

    async def _call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool) -> Any:
        import anyio

        token = flow_log_prints.set(self.log_prints)
        try:
            async with self.task_runner.duplicate() as runner:
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
            state: State[Any] = Completed(value)
        except Exception as exc:
            state = _failed(exc)
        finally:
            flow_log_prints.reset(token)
        return state if return_state else state.result()

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"


def _failed(exc: Exception) -> State[Any]:
    """The state of a flow whose body (or one of its runs it returned) raised ``exc``."""
    return Failed(exc, name="TimedOut" if isinstance(exc, TaskRunTimeout) else None)


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...
@overload
def flow(*, name: str | None = None, task_runner: TaskRunner[Any] | None = None,
         timeout_seconds: float | None = None, log_prints: bool = False,
         description: str | None = None) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Make a :class:`Flow` of a sync or async function: ``@flow`` or ``@flow(...)``.

    Example::

        @flow(log_prints=True)
        def hello() -> None:
            print("hi")
    """
    allowed = {"name", "task_runner", "timeout_seconds", "log_prints", "description"}
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown flow option(s) {sorted(unknown)}; valid options: {sorted(allowed)}")
    if __fn is not None:
        return Flow(__fn, **options)

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        return Flow(fn, **options)

    return decorate


__all__ = ["Flow", "flow"]
