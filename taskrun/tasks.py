"""Tasks: functions wrapped with retries, timeouts, hooks and submission helpers.

Example::

    from taskrun import task, ThreadPoolTaskRunner

    @task(retries=2, retry_delay_seconds=0.1)
    def double(x: int) -> int:
        return 2 * x

    with ThreadPoolTaskRunner():
        assert double.map([1, 2, 3]).result() == [2, 4, 6]
    assert double(4) == 8          # direct call: runs now
"""

from __future__ import annotations

import contextvars
import datetime
import importlib
import inspect
import string
import sys
from collections.abc import Callable, Coroutine, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from typing_extensions import ParamSpec

from . import settings
from ._engine._admission import upstream_problem
from ._engine._direct import drive_inline, resolve_inputs_async, resolve_inputs_blocking
from ._engine._driver import drive
from ._engine._executors import DirectAsyncExecutor
from ._engine._flow_context import flow_running_elsewhere
from ._engine._future import _refuse_blocking_on_loop
from ._engine._record import TaskRunContext
from ._engine._vars import current_flow_run, current_run, current_runner, current_tags
from ._engine._waiting import _wait_many, _wait_many_async
from ._hooks import check_hooks
from ._jitter import clamped_poisson_interval
from ._observe import _events
from ._observe._switches import check_progress
from ._results._policies import NO_CACHE, CachePolicy, task_input_hash
from ._results._service import results_config_from_options
from .annotations import unmapped
from .exceptions import MappingMissingIterable, ParameterBindError, UpstreamTaskError
from .states import NotReady

if TYPE_CHECKING:
    from .futures import FutureList, TaskFuture
    from .states import State

P = ParamSpec("P")
# Covariant so that an ``async def`` task (whose R is the checker's own coroutine
# type) matches the ``Task[P, Coroutine[Any, Any, T]]`` overloads below.
R = TypeVar("R", covariant=True)
T = TypeVar("T")
#: What ``wait_for=`` takes: futures, states or ``allow_failure(future)``.
WaitFor = Iterable[Any]

Hook = Callable[["Task[Any, Any]", TaskRunContext, "State[Any]"], object]

_NOT_SET: Any = object()
_OPTIONS = (
    "name", "description", "tags", "task_run_name", "retries", "retry_delay_seconds",
    "retry_jitter_factor", "retry_condition_fn", "timeout_seconds", "on_completion",
    "on_failure", "on_running", "on_cancellation", "on_crashed", "log_prints", "cache_key_fn",
    "cache_expiration", "persist_result", "version", "cache_policy", "refresh_cache",
    "result_storage", "result_serializer", "result_storage_key", "cache_result_in_memory",
    "on_commit", "on_rollback", "priority",
)


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double: ``backoff_factor * 2**n`` for retry ``n``.

    Example::

        @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1))
        def fetch() -> bytes: ...          # waits 1 s, 2 s, 4 s between attempts
    """
    if not backoff_factor >= 0:
        raise ValueError(f"backoff_factor must be a number >= 0, got {backoff_factor!r}")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(retries)]

    return delays


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_optional(name: str, value: Any, kind: type, what: str) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be {what} or None, got {type(value).__name__} {value!r}")


def _doc_of(fn: Any) -> str | None:
    # Not inspect.getdoc: for a method without a docstring it looks the name up on the
    # class, which calls our __get__, which makes a new object, which asks again.
    doc = getattr(getattr(fn, "__func__", fn), "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


class Task(Generic[P, R]):
    """A function with run options. Make one with :func:`task`.

    Example::

        @task(name="load", tags=["io"], timeout_seconds=30)
        async def load(url: str) -> bytes: ...
    """

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | list[float] | Callable[[int], list[float]] | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[[Task[Any, Any], TaskRunContext, State[Any]], bool] | None = None,
        timeout_seconds: float | None = None,
        on_completion: list[Hook] | None = None,
        on_failure: list[Hook] | None = None,
        on_running: list[Hook] | None = None,
        on_cancellation: list[Hook] | None = None,
        on_crashed: list[Hook] | None = None,
        log_prints: bool | None = None,
        cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
        cache_expiration: datetime.timedelta | float | None = None,
        persist_result: bool | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | None = _NOT_SET,
        refresh_cache: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool | None = None,
        on_commit: list[Callable[[Any], object]] | None = None,
        on_rollback: list[Callable[[Any], object]] | None = None,
        priority: int = 0,
    ) -> None:
        self._binder: type | None = None
        if isinstance(fn, (classmethod, staticmethod)):
            self._binder = type(fn)
            fn = fn.__func__
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        if isinstance(fn, Task):
            raise TypeError(f"{fn.name!r} is a Task already; use .with_options(...) to change options")
        _check_optional("name", name, str, "a str")
        _check_optional("description", description, str, "a str")
        _check_optional("log_prints", log_prints, bool, "True/False")
        if tags is not None and not isinstance(tags, str) and not hasattr(tags, "__iter__"):
            raise TypeError(f"tags must be an iterable of str, got {type(tags).__name__} {tags!r}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description if description is not None else _doc_of(fn)
        self.isasync = inspect.iscoroutinefunction(fn) or (
            not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
        )
        tags = [tags] if isinstance(tags, str) else list(tags or ())
        for tag in tags:
            if not isinstance(tag, str):
                raise TypeError(f"tags must be strings, got {tag!r}")
        self.tags: frozenset[str] = frozenset(tags)
        if task_run_name is not None and not (isinstance(task_run_name, str) or callable(task_run_name)):
            raise TypeError("task_run_name must be a str with {param} fields, or a callable returning a str")
        self.task_run_name = task_run_name
        if retries is None:
            retries = settings.task_default_retries()
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
        self.retries: int = retries
        if retry_delay_seconds is None:
            retry_delay_seconds = settings.task_default_retry_delay()
        self._given_retry_delay = retry_delay_seconds
        self.retry_delay_seconds = self._check_delays(retry_delay_seconds)
        if retry_jitter_factor is not None and not _is_number(retry_jitter_factor):
            raise TypeError(f"retry_jitter_factor must be a number >= 0, got {retry_jitter_factor!r}")
        if retry_jitter_factor is not None and not retry_jitter_factor >= 0:
            raise ValueError(f"retry_jitter_factor must be a number >= 0, got {retry_jitter_factor!r}")
        self.retry_jitter_factor = retry_jitter_factor
        if retry_condition_fn is not None and not callable(retry_condition_fn):
            raise TypeError("retry_condition_fn must be a callable (task, run, state) -> bool")
        self.retry_condition_fn = retry_condition_fn
        if timeout_seconds is not None and not _is_number(timeout_seconds):
            raise TypeError(
                f"timeout_seconds must be a number of seconds > 0 (or None), got {timeout_seconds!r}"
            )
        if timeout_seconds is not None and not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be a number > 0, got {timeout_seconds!r}")
        self.timeout_seconds = timeout_seconds
        self.on_completion = check_hooks("on_completion", on_completion)
        self.on_failure = check_hooks("on_failure", on_failure)
        self.on_running = check_hooks("on_running", on_running)
        self.on_cancellation = check_hooks("on_cancellation", on_cancellation)
        self.on_crashed = check_hooks("on_crashed", on_crashed)
        self.version = version
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int (higher runs first, default 0), got {priority!r}")
        self.priority: int = priority
        self.log_prints = log_prints
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.persist_result = persist_result
        self._given_cache_policy = cache_policy
        # `cache_policy=None` given is NO_CACHE; not given is "unset" (the default rules).
        self.cache_policy = None if cache_policy is _NOT_SET else _no_cache_if_none(cache_policy)
        self.refresh_cache = refresh_cache
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.result_storage_key = result_storage_key
        self.cache_result_in_memory = cache_result_in_memory
        self.on_commit = check_hooks("on_commit", on_commit)
        self.on_rollback = check_hooks("on_rollback", on_rollback)
        #: The validated result options (``_results``); None: no caching, nothing persisted.
        self._results = results_config_from_options(
            cache_policy=self.cache_policy, cache_key_fn=cache_key_fn,
            cache_expiration=cache_expiration, refresh_cache=refresh_cache,
            persist_result=persist_result, result_storage=result_storage,
            result_serializer=result_serializer, result_storage_key=result_storage_key,
            cache_result_in_memory=cache_result_in_memory, on_commit=self.on_commit,
            on_rollback=self.on_rollback,
        )
        self._inspect_signature()
        if isinstance(task_run_name, str):
            self._check_run_name_template(task_run_name)
        try:
            self.__doc__ = fn.__doc__
            self.__name__ = self.name
            self.__qualname__ = getattr(fn, "__qualname__", self.name)
            self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
            self.__wrapped__ = fn
        except AttributeError:  # pragma: no cover
            pass

    # ------------------------------------------------------------------ options

    def _check_delays(self, delay: Any) -> float | list[float]:
        if callable(delay):
            delay = delay(self.retries)
        if isinstance(delay, (str, bytes)) or isinstance(delay, bool):
            raise TypeError(
                "retry_delay_seconds must be a number, a list of numbers, or a callable "
                f"retries -> list of numbers; got {delay!r}"
            )
        if isinstance(delay, (int, float)):
            if not delay >= 0:
                raise ValueError(f"retry_delay_seconds must be >= 0, got {delay!r}")
            return float(delay)
        try:
            delays = [float(d) for d in delay]
        except (TypeError, ValueError):
            raise TypeError(
                "retry_delay_seconds must be a number, a list of numbers, or a callable "
                f"retries -> list of numbers; got {delay!r}"
            ) from None
        if any(not d >= 0 for d in delays):
            raise ValueError(f"retry_delay_seconds must all be >= 0, got {delays!r}")
        return delays

    def _retry_delay(self, attempt: int) -> float:
        delays = self.retry_delay_seconds
        if isinstance(delays, list):
            base = delays[min(attempt - 1, len(delays) - 1)] if delays else 0.0
        else:
            base = delays
        jitter = self.retry_jitter_factor
        if not jitter or base <= 0:
            return base
        return clamped_poisson_interval(base, jitter)

    def _options(self) -> dict[str, Any]:
        options = {
            "name": self.name, "description": self.description, "tags": set(self.tags),
            "task_run_name": self.task_run_name, "retries": self.retries,
            "retry_delay_seconds": self._given_retry_delay,
            "retry_jitter_factor": self.retry_jitter_factor,
            "retry_condition_fn": self.retry_condition_fn, "timeout_seconds": self.timeout_seconds,
            "on_completion": list(self.on_completion), "on_failure": list(self.on_failure),
            "on_running": list(self.on_running), "on_cancellation": list(self.on_cancellation),
            "on_crashed": list(self.on_crashed), "log_prints": self.log_prints,
            "cache_key_fn": self.cache_key_fn, "cache_expiration": self.cache_expiration,
            "persist_result": self.persist_result, "version": self.version,
            "refresh_cache": self.refresh_cache,
            "result_storage": self.result_storage, "result_serializer": self.result_serializer,
            "result_storage_key": self.result_storage_key,
            "cache_result_in_memory": self.cache_result_in_memory,
            "on_commit": list(self.on_commit), "on_rollback": list(self.on_rollback),
            "priority": self.priority,
        }
        if self._given_cache_policy is not _NOT_SET:  # left out when not given: None means NO_CACHE
            options["cache_policy"] = self._given_cache_policy
        return options

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options replaced.

        Example::

            patient = fetch.with_options(retries=5, timeout_seconds=60)
        """
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown task option(s) {sorted(unknown)}; valid options: {list(_OPTIONS)}")
        merged = self._options()
        merged.update(options)
        copy: Task[P, R] = Task(self.fn, **merged)
        copy._binder = self._binder
        return copy

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """Bind like a function: ``obj.method`` is a task of the bound method."""
        if self._binder is staticmethod or (instance is None and self._binder is not classmethod):
            return self
        target = owner if self._binder is classmethod else instance
        bound: Task[Any, Any] = Task(self.fn.__get__(target, owner), **self._options())
        return bound

    # ------------------------------------------------------------------ parameters

    def _inspect_signature(self) -> None:
        try:
            sig = inspect.signature(self.fn)
        except (TypeError, ValueError):
            sig = None
        self._signature = sig
        kinds = inspect.Parameter
        if sig is None:
            self._names: frozenset[str] | None = None
            self._required: frozenset[str] = frozenset()
            self._simple = False
            self._var_keyword: str | None = None
            self._positional: tuple[str, ...] = ()
            self._order: tuple[str, ...] = ()
            self._defaults: dict[str, Any] = {}
            return
        params = list(sig.parameters.values())
        self._names = frozenset(p.name for p in params if p.kind not in (kinds.VAR_KEYWORD,))
        self._required = frozenset(
            p.name for p in params
            if p.default is p.empty and p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY,
                                                   kinds.POSITIONAL_ONLY)
        )
        self._simple = all(p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY) for p in params)
        # For binding a simple signature without inspect (see _bind_simple): names in order.
        self._positional = tuple(p.name for p in params if p.kind is kinds.POSITIONAL_OR_KEYWORD)
        self._order = tuple(p.name for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self._var_keyword = next((p.name for p in params if p.kind is kinds.VAR_KEYWORD), None)

    def _check_run_name_template(self, template: str) -> None:
        """Reject a ``task_run_name`` template naming no parameter of the function.

        Skipped when the signature is unknown or takes ``**kwargs`` (any name may
        come then): such a template is checked when the run is named.
        """
        try:
            fields = _template_fields(string.Formatter(), template)
        except ValueError as exc:
            raise ValueError(
                f"task_run_name {template!r} of {self.name!r} is not a valid template: {exc}"
            ) from None
        if self._names is None or self._var_keyword is not None:
            return
        for field in fields:
            if field == "" or field.isdigit():
                raise ValueError(
                    f"task_run_name {template!r} of {self.name!r} has a positional field {{{field}}}; "
                    f"name a parameter instead, one of {sorted(self._names)}"
                )
            if field not in self._names:
                raise ValueError(
                    f"task_run_name {template!r} of {self.name!r} names {field!r}, which is not a "
                    f"parameter of {self.name}{self._signature}; use one of {sorted(self._names)}"
                )

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], defaults: bool = True) -> dict[str, Any]:
        """Bind call arguments to a parameters dict (``**kwargs`` entries flattened in).

        With ``defaults``, parameters left out are filled with their defaults.
        """
        if self._simple:
            parameters = self._bind_simple(args, kwargs, defaults)
            if parameters is not None:
                return parameters
        if self._signature is None:
            if args:
                raise ParameterBindError(f"task {self.name!r}: pass arguments by keyword")
            return dict(kwargs)
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterBindError(
                f"task {self.name!r}{self._signature}: {exc}; fix the arguments passed to it"
            ) from None
        if defaults:
            bound.apply_defaults()
        parameters = dict(bound.arguments)
        if self._var_keyword is not None and self._var_keyword in parameters:
            extra = parameters.pop(self._var_keyword)
            parameters.update(extra)
        return parameters

    def _bind_simple(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                     defaults: bool) -> dict[str, Any] | None:
        """:meth:`bind` for a signature of named parameters only (no ``*``/``**``, no
        positional-only), as ``inspect.Signature.bind`` binds it: parameters in the
        signature's order. ``None`` when the call does not fit, so that ``inspect``
        raises its exact error. (``Signature.bind`` was 40 % of a ``submit``.)
        """
        positional = self._positional
        names = self._names
        if names is None or len(args) > len(positional):
            return None
        if not kwargs and (len(args) == len(names) or not defaults):
            if not self._required.issubset(positional[:len(args)]):
                return None
            return dict(zip(positional, args, strict=False))
        given = dict(zip(positional, args, strict=False))
        for name in kwargs:
            if name in given or name not in names:
                return None
        given.update(kwargs)
        if not self._required <= given.keys():
            return None
        parameters: dict[str, Any] = {}
        fallback = self._defaults if defaults else {}
        for name in self._order:
            if name in given:
                parameters[name] = given[name]
            elif name in fallback:
                parameters[name] = fallback[name]
        return parameters

    def check_parameters(self, parameters: dict[str, Any]) -> None:
        """Raise :class:`ParameterBindError` unless ``parameters`` fit the signature."""
        if not isinstance(parameters, dict):
            raise TypeError(
                f"parameters must be a dict of parameter name -> value, got {type(parameters).__name__}"
            )
        if self._names is None:
            return
        keys = parameters.keys()
        if self._var_keyword is None and not keys <= self._names:
            unknown = sorted(set(keys) - self._names)
            raise ParameterBindError(
                f"task {self.name!r}{self._signature} got unknown parameter(s) {unknown}; "
                "fix the parameter names"
            )
        if not self._required <= keys:
            missing = sorted(self._required - set(keys))
            raise ParameterBindError(
                f"task {self.name!r}{self._signature} is missing required parameter(s) {missing}"
            )

    def _call_args(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self._simple or self._signature is None:
            return (), parameters
        kinds = inspect.Parameter
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        rest = dict(parameters)
        positional_ok = True
        for p in self._signature.parameters.values():
            if p.kind is kinds.VAR_KEYWORD:
                continue
            if p.name not in rest:
                if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD):
                    positional_ok = False
                continue
            value = rest.pop(p.name)
            if p.kind is kinds.VAR_POSITIONAL:
                args.extend(value)
            elif p.kind is kinds.POSITIONAL_ONLY or (p.kind is kinds.POSITIONAL_OR_KEYWORD and positional_ok):
                args.append(value)
            else:
                kwargs[p.name] = value
        kwargs.update(rest)
        return tuple(args), kwargs

    def _format_run_name(self, run: TaskRunContext) -> str:
        template = self.task_run_name
        if template is None:
            return f"{self.name}-{run.task_run_id.hex[:8]}"
        if callable(template):
            try:
                takes_args = bool(inspect.signature(template).parameters)
            except (TypeError, ValueError):
                takes_args = False
            name = template(run.parameters) if takes_args else template()
            if not isinstance(name, str):
                raise TypeError(f"task_run_name callable of {self.name!r} returned {name!r}, not a str")
            return name
        try:
            return template.format(**run.parameters)
        except (KeyError, IndexError) as exc:
            raise ValueError(
                f"task_run_name {template!r} of {self.name!r} names {exc} which is not a parameter"
            ) from None

    # ------------------------------------------------------------------ running

    def _runner(self, what: str) -> Any:
        runner = current_runner.get()
        if runner is None and flow_running_elsewhere():
            raise RuntimeError(
                f"{self.name}.{what}() was called from a thread that has no current task runner: "
                "a thread you start inside a flow does not inherit the flow's context. Start it "
                "with the context copied (ctx = contextvars.copy_context(); "
                "threading.Thread(target=ctx.run, args=(fn, ...))), or pass the runner to it "
                "(get_run_context().task_runner) and call runner.submit(task, {...})"
            )
        if runner is None:
            raise RuntimeError(
                f"{self.name}.{what}() needs a task runner: call it inside a @flow, or inside "
                "`with ThreadPoolTaskRunner():` / `async with ThreadPoolTaskRunner():`"
            )
        return runner

    # The checked parameters (P) cannot sit next to the ``wait_for=`` / ``return_state=``
    # keywords (PEP 612), so calls with either keyword match the ``*args: Any`` overloads.
    @overload
    def submit(self: Task[P, Coroutine[Any, Any, T]], *args: P.args,  # type: ignore[overload-overlap]
               **kwargs: P.kwargs) -> TaskFuture[T]: ...
    @overload
    def submit(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]: ...
    @overload
    def submit(self: Task[..., Coroutine[Any, Any, T]], *args: Any, return_state: Literal[True],
               wait_for: WaitFor | None = None, **kwargs: Any) -> State[T]: ...
    @overload
    def submit(self: Task[..., T], *args: Any, return_state: Literal[True],
               wait_for: WaitFor | None = None, **kwargs: Any) -> State[T]: ...
    @overload
    def submit(self: Task[..., Coroutine[Any, Any, T]], *args: Any, wait_for: WaitFor | None,
               return_state: Literal[False] = False, **kwargs: Any) -> TaskFuture[T]: ...
    @overload
    def submit(self: Task[..., T], *args: Any, wait_for: WaitFor | None,
               return_state: Literal[False] = False, **kwargs: Any) -> TaskFuture[T]: ...

    def submit(self, *args: Any, wait_for: WaitFor | None = None,  # type: ignore[misc]
               return_state: bool = False, **kwargs: Any) -> Any:
        """Submit a run to the current runner and return its future at once.

        With ``return_state=True``, wait for the run and return its final State.

        Example::

            future = add.submit(1, y=2)
        """
        runner = self._runner("submit")
        if return_state:
            _refuse_blocking_on_loop(f"{self.name}.submit(..., return_state=True)")
        parameters = self.bind(args, kwargs)
        for value in parameters.values():  # _refuse_coroutines, called only when it will raise
            if type(value) is CoroutineType:
                _refuse_coroutines(self.name, parameters)
        future = runner._submit_bound(self, parameters, wait_for)
        flow_run = current_flow_run.get()
        if flow_run is not None:
            flow_run.track(future)
        if return_state:
            future.wait()
            return future.state
        return future

    # Mapped arguments are iterables of the parameters, so they are not checked (Any).
    @overload
    def map(self: Task[..., Coroutine[Any, Any, T]], *args: Any, return_state: Literal[True],
            wait_for: WaitFor | None = None, **kwargs: Any) -> list[State[T]]: ...
    @overload
    def map(self: Task[..., T], *args: Any, return_state: Literal[True],
            wait_for: WaitFor | None = None, **kwargs: Any) -> list[State[T]]: ...
    @overload
    def map(self: Task[..., Coroutine[Any, Any, T]], *args: Any, wait_for: WaitFor | None = None,
            return_state: Literal[False] = False, **kwargs: Any) -> FutureList[TaskFuture[T]]: ...
    @overload
    def map(self: Task[..., T], *args: Any, wait_for: WaitFor | None = None,
            return_state: Literal[False] = False, **kwargs: Any) -> FutureList[TaskFuture[T]]: ...

    def map(self, *args: Any, wait_for: WaitFor | None = None,
            return_state: bool = False, progress: bool = False, **kwargs: Any) -> Any:
        """Submit one run per element of the iterable arguments.

        Lists, tuples, ranges, sets, generators and futures of lists are mapped over;
        ``str``, ``bytes`` and dicts are passed whole (map over ``d.keys()`` or
        ``d.items()`` explicitly). With ``return_state=True``, wait and return the
        runs' final states, in input order. ``progress=True`` shows a progress display
        (a bar on a terminal, a line every few seconds elsewhere) until the runs are final.

        Example::

            futures = add.map([1, 2, 3], y=unmapped(10))
        """
        runner = self._runner("map")
        check_progress(progress, f"{self.name}.map()")
        if return_state:
            _refuse_blocking_on_loop(f"{self.name}.map(..., return_state=True)")
        parameters = self._bind_for_map(args, kwargs)
        _refuse_coroutines(self.name, parameters)
        try:
            futures = runner._map_bound(self, parameters, wait_for, progress)
        except MappingMissingIterable as exc:
            dicts = [name for name, value in parameters.items() if isinstance(value, dict)]
            if not dicts:
                raise
            raise MappingMissingIterable(
                f"{exc}; note that dicts are passed whole to every run, not mapped over: "
                f"map over {dicts[0]}.keys(), .values() or .items() (e.g. "
                f"{self.name}.map(list(d.items())))"
            ) from None
        flow_run = current_flow_run.get()
        if flow_run is not None:
            flow_run.track(futures)
        if return_state:
            futures.wait()
            return [f.state for f in futures]
        return futures

    def _bind_for_map(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind once; parameters left at their defaults are broadcast (``unmapped``):
        a default is the same for every run, even an iterable one."""
        given = self.bind(args, kwargs, defaults=False)
        if self._signature is None:
            return given
        kinds = inspect.Parameter
        parameters: dict[str, Any] = {}
        for p in self._signature.parameters.values():
            if p.kind is kinds.VAR_KEYWORD:
                continue
            if p.name in given:
                parameters[p.name] = given.pop(p.name)
            elif p.kind is kinds.VAR_POSITIONAL:
                parameters[p.name] = unmapped(())
            elif p.default is not p.empty:
                parameters[p.name] = unmapped(p.default)
        parameters.update(given)  # entries of **kwargs, flattened in
        return parameters

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]: ...
    @overload
    def __call__(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...
    @overload
    def __call__(self: Task[..., Coroutine[Any, Any, T]], *args: Any, return_state: Literal[True],
                 wait_for: WaitFor | None = None, **kwargs: Any) -> Coroutine[Any, Any, State[T]]: ...
    @overload
    def __call__(self: Task[..., T], *args: Any, return_state: Literal[True],
                 wait_for: WaitFor | None = None, **kwargs: Any) -> State[T]: ...
    @overload
    def __call__(self: Task[..., Coroutine[Any, Any, T]], *args: Any, wait_for: WaitFor | None,
                 return_state: Literal[False] = False, **kwargs: Any) -> Coroutine[Any, Any, T]: ...
    @overload
    def __call__(self: Task[..., T], *args: Any, wait_for: WaitFor | None,
                 return_state: Literal[False] = False, **kwargs: Any) -> T: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task now (retries, timeout and hooks apply) and return its result.

        For an async task this returns a coroutine to await. ``wait_for=[futures]``
        waits for those runs first (an upstream that did not complete raises
        :class:`UpstreamTaskError`); ``return_state=True`` returns the run's final
        :class:`State` instead of its result. These two keywords are taken by the
        call, never passed to the function.
        """
        wait_for = kwargs.pop("wait_for", None)
        return_state = bool(kwargs.pop("return_state", False))
        parameters = self.bind(args, kwargs)
        _refuse_coroutines(self.name, parameters)
        if self.isasync:
            return self._call_async(parameters, wait_for, return_state)
        try:
            if wait_for:
                _wait_upstream_blocking(list(wait_for))
            parameters = resolve_inputs_blocking(parameters)
        except UpstreamTaskError as exc:
            if not return_state:
                raise
            return NotReady(str(exc))
        run = self._direct_run(parameters)
        context = run._context
        assert context is not None
        state: State[Any] = context.run(_inline, run, drive_inline)
        flow_run = current_flow_run.get()
        if flow_run is not None:
            flow_run.track(state)
        return state if return_state else state.result()

    async def _call_async(self, parameters: dict[str, Any], wait_for: Any = None,
                          return_state: bool = False) -> Any:
        try:
            if wait_for:
                await _wait_upstream_async(list(wait_for))
            parameters = await resolve_inputs_async(parameters)
        except UpstreamTaskError as exc:
            if not return_state:
                raise
            return NotReady(str(exc))
        run = self._direct_run(parameters)
        token = current_run.set(run)
        try:
            state = await drive(run, DirectAsyncExecutor())
        finally:
            current_run.reset(token)
        flow_run = current_flow_run.get()
        if flow_run is not None:
            flow_run.track(state)
        return state if return_state else state.result()

    def _direct_run(self, parameters: dict[str, Any]) -> TaskRunContext:
        parent = current_run.get()
        run = TaskRunContext(self, parameters, self.tags | current_tags.get(), contextvars.copy_context())
        if parent is not None:
            run._slot_run = parent._slot_run or parent
        if _events.ACTIVE:
            _events.emit_submitted(run)
        return run

    # ------------------------------------------------------------------ pickling

    def __reduce__(self) -> Any:
        module = sys.modules.get(getattr(self.fn, "__module__", "") or "")
        qualname = getattr(self.fn, "__qualname__", "")
        target: Any = module
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if target is self:
            return _import_task, (module.__name__, qualname)  # type: ignore[union-attr]
        options = self._options()
        options["retry_delay_seconds"] = self._given_retry_delay
        return _rebuild_task, (self.fn, options)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


def _no_cache_if_none(policy: CachePolicy | None) -> CachePolicy:
    return NO_CACHE if policy is None else policy


def _template_fields(formatter: Any, template: str) -> list[str]:
    """The parameter names a ``str.format`` template refers to (``{x.attr}`` → ``x``)."""
    names = []
    for _, field, spec, _ in formatter.parse(template):
        if field is None:
            continue
        names.append(field.split(".", 1)[0].split("[", 1)[0])
        if spec:
            names.extend(_template_fields(formatter, spec))
    return names


def _inline(run: TaskRunContext, drive_inline: Callable[[TaskRunContext], Any]) -> Any:
    current_run.set(run)
    return drive_inline(run)


def _refuse_coroutines(task_name: str, parameters: dict[str, Any]) -> None:
    """A coroutine as a parameter is almost always an async task called without ``await``."""
    for name, value in parameters.items():
        if type(value) is CoroutineType:  # inspect.iscoroutine, without the call
            origin = getattr(value, "__qualname__", "a coroutine function")
            value.close()  # it will never run; closing it avoids a second, vaguer warning
            raise TypeError(
                f"task {task_name!r}: parameter {name!r} got a coroutine ({origin}) instead of a "
                f"value: an async task or function was called without `await`. Write "
                f"`{name}=await {origin}(...)`, or pass a future from `.submit(...)` instead"
            )


def _wait_upstream_blocking(waits: list[Any]) -> None:
    _wait_many(waits, None, stop_on_failure=False)
    problem = upstream_problem([(f, False) for f in waits])
    if problem is not None:
        raise UpstreamTaskError(problem)


async def _wait_upstream_async(waits: list[Any]) -> None:
    await _wait_many_async(waits, None, stop_on_failure=False)
    problem = upstream_problem([(f, False) for f in waits])
    if problem is not None:
        raise UpstreamTaskError(problem)


def _import_task(module: str, qualname: str) -> Task[Any, Any]:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _rebuild_task(fn: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
    return Task(fn, **options)


@overload
def task(__fn: Callable[P, T]) -> Task[P, T]: ...
@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    task_run_name: str | Callable[..., str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | list[float] | Callable[[int], list[float]] | None = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[..., bool] | None = None,
    timeout_seconds: float | None = None,
    on_completion: list[Hook] | None = None,
    on_failure: list[Hook] | None = None,
    on_running: list[Hook] | None = None,
    on_cancellation: list[Hook] | None = None,
    on_crashed: list[Hook] | None = None,
    log_prints: bool | None = None,
    cache_key_fn: Callable[..., str | None] | None = None,
    cache_expiration: datetime.timedelta | float | None = None,
    persist_result: bool | None = None,
    version: str | None = None,
    cache_policy: CachePolicy | None = ...,
    refresh_cache: bool | None = None,
    result_storage: Any = None,
    result_serializer: Any = None,
    result_storage_key: str | None = None,
    cache_result_in_memory: bool | None = None,
    on_commit: list[Callable[[Any], object]] | None = None,
    on_rollback: list[Callable[[Any], object]] | None = None,
    priority: int = 0,
) -> Callable[[Callable[P, T]], Task[P, T]]: ...


def task(__fn: Any = None, **options: Any) -> Any:
    """Make a :class:`Task` of a sync or async function: ``@task`` or ``@task(...)``.

    Options (all keyword, all optional):

    - ``name``: the task's name (default: the function's name).
    - ``description``: a description (default: the docstring).
    - ``tags``: tags for every run of the task (an iterable of str).
    - ``task_run_name``: run name, a ``{param}`` template or a callable returning a str.
    - ``retries``: how many times a failed or timed-out attempt is retried (default 0).
    - ``retry_delay_seconds``: delay between attempts: a number, a list, or ``retries -> list``.
    - ``retry_jitter_factor``: spread each delay over ``[d*c, d*(1+j)]``, mean ≈ d (see ``_jitter``).
    - ``retry_condition_fn``: ``(task, run, state) -> bool``; False stops retrying.
    - ``timeout_seconds``: fail an attempt (``TimedOut``) after this many seconds.
    - ``on_completion``: hooks ``(task, run, state)`` after a Completed run.
    - ``on_failure``: hooks after a Failed or Crashed run (after the last retry).
    - ``on_running``: hooks before the first attempt.
    - ``on_cancellation``: hooks after a Cancelled run (that had started).
    - ``on_crashed``: hooks after a Crashed run.
    - ``log_prints``: log ``print`` calls in the body (default: the enclosing flow's).
    - ``cache_policy``: how a run's cache key is made (``INPUTS``, ``TASK_SOURCE``, ``DEFAULT``…
      from :mod:`taskrun.cache_policies`; ``None`` or ``NO_CACHE``: no lookups).
    - ``cache_key_fn``: ``(context, parameters) -> str | None``, a key of your own
      (e.g. :func:`task_input_hash`).
    - ``cache_expiration``: how long a record serves (timedelta or seconds).
    - ``refresh_cache``: run and overwrite instead of reading (also ``TASKRUN_REFRESH_CACHE``).
    - ``persist_result``: write results to the store (on when any option here is set).
    - ``result_storage``: a directory, an fsspec URL or a storage object.
    - ``result_serializer``: ``"pickle"`` (default), ``"cloudpickle"``, ``"json"`` or an object
      with ``dumps``/``loads``.
    - ``result_storage_key``: the record's key, a template like ``"{parameters[city]}.pkl"``.
    - ``cache_result_in_memory``: keep the value on the final state (default True).
    - ``on_commit`` / ``on_rollback``: hooks ``(transaction)`` when the run's record is
      committed or rolled back in a ``with taskrun.transaction():`` block.
    - ``version``: a version string, kept on the task.
    - ``priority``: an int (default 0); among runs ready at once, a higher one takes a
      free worker slot first, equal ones stay FIFO (Dask: its task priority).

    Hooks can also be added as decorators: ``@my_task.on_completion``, ``@my_task.on_commit``.

    Example::

        @task(retries=3, retry_delay_seconds=[1, 2, 4], tags=["net"])
        def fetch(url: str) -> bytes: ...
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown task option(s) {sorted(unknown)}; valid options: {list(_OPTIONS)}")
    if __fn is not None:
        return Task(__fn, **options)

    def decorate(fn: Callable[P, T]) -> Task[P, T]:
        return Task(fn, **options)

    return decorate


__all__ = ["Task", "task", "exponential_backoff", "task_input_hash", "Hook"]
