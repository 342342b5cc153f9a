"""What runs need when their body executes in another process (process pool, Dask).

Both sides use this module:

- the submitting side takes a :class:`RunSnapshot` of a run (the plain-data part
  of its :class:`~taskrun.context.TaskRunContext`) and pickles tasks with
  :func:`dumps` (by reference when importable, by value otherwise);
- the executing side rebuilds a run context from the snapshot
  (:func:`rebuild_run`), so ``get_run_context()`` and ``get_run_logger()`` work
  there, captures the run's log records (:class:`LogCapture`), and packs errors
  with their traceback text (:func:`pack_exception`);
- back on the submitting side, :func:`attach_traceback` puts the remote traceback
  on the exception as its ``__cause__`` and :func:`emit_records` replays the log
  records through the local ``logging`` tree.
"""

from __future__ import annotations

import contextvars
import io
import logging
import os
import pickle
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .._engine import _printing
from .._engine._caching import RemoteFlow, adopt_remote_flow, remote_flow
from .._engine._future import TaskFuture
from .._engine._logging import _ensure_default_handler
from .._engine._record import TaskRunContext
from .._engine._vars import current_run, current_tags, flow_log_prints
from .._observe._otel import attach_carrier, carrier_of
from .._plain import PLAIN_SCALARS
from ..exceptions import TaskRunError
from ..tasks import Task

RUN_LOGGER = "taskrun.task_runs"


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process, as text.

    Set as the ``__cause__`` of an exception that crossed from a worker, so the
    traceback printed locally shows where it was raised remotely.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.text,)

    def __str__(self) -> str:
        return f"\n\n--- remote traceback ---\n{self.text}--- end of remote traceback ---"


class RemoteError(TaskRunError):
    """Stands for an exception that could not be pickled back from a worker.

    ``type_name`` is the qualified name of the original exception type; the
    message is the original's ``str()``.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.type_name, self.message)


# ---------------------------------------------------------------------- pickling

def _task_by_value(task: Task[Any, Any], trim: bool) -> tuple[Any, ...] | None:
    """Reduce a task by value, unless it can be imported by reference elsewhere."""
    fn = task.fn
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    if module is not None and module.__name__ not in ("__main__", "__mp_main__"):
        target: Any = module
        for part in getattr(fn, "__qualname__", "").split("."):
            target = getattr(target, part, None)
        if target is task:
            return None  # Task.__reduce__ pickles it by reference
    options = task._options()
    if trim:
        # The body runs remotely; hooks and retry decisions stay where the engine runs.
        for name in ("on_completion", "on_failure", "on_running"):
            options[name] = []
        options["retry_condition_fn"] = None
    return _rebuild_task_by_value, (fn, options)


def _rebuild_task_by_value(fn: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
    return Task(fn, **options)


class _Pickler:
    """cloudpickle with taskrun's rules; made lazily so cloudpickle stays optional."""

    cls: Any = None

    @classmethod
    def make(cls, file: io.BytesIO, trim_tasks: bool, on_future: Callable[[TaskFuture[Any]], Any] | None,
             buffer_callback: Callable[[Any], Any] | None = None) -> Any:
        if cls.cls is None:
            cls.cls = _define_pickler()
        return cls.cls(file, trim_tasks, on_future, buffer_callback)


def _define_pickler() -> Any:
    try:
        import cloudpickle  # noqa: PLC0415 - optional extra, loaded on first use
    except ImportError:  # pragma: no cover - cloudpickle comes with the extras
        raise ImportError(
            "running tasks in other processes needs cloudpickle: pip install 'taskrun[process]'"
        ) from None

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def __init__(self, file: io.BytesIO, trim_tasks: bool, on_future: Callable[[Any], Any] | None,
                     buffer_callback: Callable[[Any], Any] | None) -> None:
            super().__init__(file, protocol=5, buffer_callback=buffer_callback)
            self._trim = trim_tasks
            self._on_future = on_future

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, Task):
                reduced = _task_by_value(obj, self._trim)
                if reduced is not None:
                    return reduced
            elif self._on_future is not None and isinstance(obj, TaskFuture):
                reduced = self._on_future(obj)
                if reduced is not None:
                    return reduced
            return super().reducer_override(obj)

    return Pickler


def dumps(obj: Any, trim_tasks: bool = False,
          on_future: Callable[[TaskFuture[Any]], Any] | None = None) -> bytes:
    """Pickle ``obj`` for another process.

    Functions and tasks go by reference when they can be imported under their
    own name, by value (cloudpickle) otherwise: defined in ``__main__``, in a
    notebook, or inside a function. ``trim_tasks`` drops hooks and
    ``retry_condition_fn`` from tasks sent by value (they run where the engine
    runs). ``on_future(future)`` may return a reduction for each future met
    (None: the future is pickled as itself).
    """
    buffer = io.BytesIO()
    _Pickler.make(buffer, trim_tasks, on_future).dump(obj)
    return buffer.getvalue()


loads = pickle.loads

_PLAIN = PLAIN_SCALARS


def plain_values(parameters: dict[str, Any]) -> bool:
    """True when every value is a builtin scalar, which plain ``pickle`` handles alike."""
    return all(type(v) in _PLAIN for v in parameters.values())


def check_picklable(value: Any) -> None:
    """Raise if ``value`` cannot be pickled; large buffers (arrays) are not copied."""
    if type(value) in _SIMPLE:
        return
    buffers: list[Any] = []
    _Pickler.make(io.BytesIO(), False, None, buffers.append).dump(value)


def unpicklable_parameter(parameters: dict[str, Any]) -> tuple[str, BaseException] | None:
    """The first parameter that cannot be pickled, with the error, or None."""
    for name, value in parameters.items():
        try:
            dumps(value)
        except Exception as exc:
            return name, exc
    return None


def unpicklable_parameter_error(task_name: str, parameters: dict[str, Any],
                                error: BaseException) -> Exception:
    """The error of a run whose inputs could not be pickled, naming the parameter."""
    found = unpicklable_parameter(parameters)
    if found is None:
        return TypeError(f"the inputs of task {task_name!r} cannot be pickled to reach a worker: {error}")
    name, exc = found
    return TypeError(
        f"parameter {name!r} of task {task_name!r} cannot be pickled to reach a worker process "
        f"({type(exc).__name__}: {exc}); pass a picklable value, or use a thread pool runner"
    )


_KEPT_LOCAL = ("on_completion", "on_failure", "on_running", "retry_condition_fn")


def unpicklable_task_error(task: Task[Any, Any], error: BaseException) -> TypeError:
    """The error of a task that cannot be pickled, with the hint that fits the cause.

    "Define it at module level" only when the function is defined inside another
    function (it goes by value, with everything it uses); a function of the main
    script goes by value with the globals it uses; otherwise the failing option is named.
    """
    what = (f"task {task.name!r} cannot be pickled to reach a worker process "
            f"({type(error).__name__}: {error})")
    fn = task.fn
    try:
        dumps(fn)
    except Exception:
        qualname = str(getattr(fn, "__qualname__", ""))
        if "<locals>" in qualname or "<lambda>" in qualname:
            return TypeError(f"{what}: its function is defined inside another function, so it is "
                             "sent by value with everything it uses; define it at module level")
        if getattr(fn, "__module__", None) in ("__main__", "__mp_main__"):
            return TypeError(f"{what}: its function is in the main script, so it is sent by value with "
                             "the globals it uses; make those picklable, or move the task to a module")
        return TypeError(f"{what}: its function cannot be pickled")
    for name, value in task._options().items():
        if name in _KEPT_LOCAL:
            continue
        try:
            dumps(value)
        except Exception:
            return TypeError(f"{what}: its option {name}={value!r} cannot be pickled; make it picklable")
    return TypeError(what)


def unpicklable_result_error(run_name: str, exc: BaseException) -> TypeError:
    return TypeError(
        f"the result of task run {run_name!r} cannot be pickled to leave its worker "
        f"({type(exc).__name__}: {exc}); return a picklable value"
    )


# ---------------------------------------------------------------------- run snapshots


class RunSnapshot(NamedTuple):
    """The plain-data part of a run, enough to rebuild its context elsewhere."""

    run_id: uuid.UUID
    run_name: str | None
    parameters: dict[str, Any]
    tags: frozenset[str]
    attempt: int
    log_prints: bool
    context_tags: frozenset[str]
    flow_log_prints: bool
    log_level: int
    trace: dict[str, str] | None = None  # the run's trace context, when tracing
    #: The submitter's process: a worker in it (Dask with ``processes=False``)
    #: shares its logging, which is then left as it is.
    pid: int = 0
    #: For an engine running remotely (Dask): the flow run's part in caching (its id,
    #: result defaults and, when hashed, parameters); None outside a flow or when
    #: nothing caches.
    flow: RemoteFlow | None = None


def snapshot_of(run: TaskRunContext, parameters: dict[str, Any] | None = None,
                with_flow: bool = False) -> RunSnapshot:
    """Take a snapshot of ``run`` (``parameters`` replaces the run's own).

    ``with_flow``: the engine runs where the snapshot goes (Dask), so it takes the
    flow run's caching part along (:func:`~taskrun._engine._caching.remote_flow`).
    """
    _ensure_default_handler()  # it sets the level the worker's run logger must use
    context = run._context
    assert context is not None
    return RunSnapshot(
        run.task_run_id,
        run._name,
        run.parameters if parameters is None else parameters,
        run.tags,
        run.attempt,
        run._log_prints,
        context.get(current_tags, frozenset()),
        context.get(flow_log_prints, False),
        logging.getLogger(RUN_LOGGER).getEffectiveLevel(),
        carrier_of(context),
        os.getpid(),
        remote_flow(run, context) if with_flow else None,
    )


class RemoteRunContext(TaskRunContext):
    """A run context rebuilt in a worker; ``cancel_requested`` also asks the submitter."""

    __slots__ = ("_cancel_check", "_remote_flow")
    _cancel_check: Callable[[], bool] | None
    #: The flow run's caching part, read by the engine's caching (None: no flow).
    _remote_flow: RemoteFlow | None
    #: Events of this copy are not delivered: the submitter reports the run (a Dask
    #: worker may share the submitter's process).
    _remote_copy = True

    def cancel_requested(self) -> bool:
        check = self._cancel_check
        return super().cancel_requested() or (check is not None and bool(check()))


def rebuild_run(task: Task[Any, Any], snap: RunSnapshot, cancel_check: Callable[[], bool] | None = None
                ) -> tuple[RemoteRunContext, contextvars.Context]:
    """A run context for ``snap`` and a fresh context in which it is the current run."""
    context = contextvars.Context()
    run = RemoteRunContext(task, snap.parameters, snap.tags, context)
    run._id = snap.run_id
    run._name = snap.run_name
    run.attempt = snap.attempt
    run._log_prints = snap.log_prints
    run._started = True
    run._cancel_check = cancel_check
    run._remote_flow = None if snap.flow is None else adopt_remote_flow(snap.flow)
    context.run(_enter_run, run, snap)
    return run, context


def _enter_run(run: RemoteRunContext, snap: RunSnapshot) -> None:
    current_run.set(run)
    current_tags.set(snap.context_tags)
    flow_log_prints.set(snap.flow_log_prints)
    if snap.trace:
        attach_carrier(snap.trace)
    if snap.log_prints:
        _printing.install()
    if snap.pid != os.getpid():
        logger = logging.getLogger(RUN_LOGGER)
        if logger.level != snap.log_level:
            logger.setLevel(snap.log_level)


# ---------------------------------------------------------------------- errors


def pack_exception(exc: BaseException) -> tuple[BaseException, str]:
    """``(exc or a picklable stand-in, traceback text)`` for sending ``exc`` back."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        loads(dumps(exc))
    except Exception:
        kind = type(exc)
        try:
            message = str(exc)
        except Exception as error:  # a raising __str__ must not take the worker down
            message = f"(its message could not be read: str() raised {type(error).__name__})"
        exc = RemoteError(f"{kind.__module__}.{kind.__qualname__}", message)
    else:
        exc.__traceback__ = None
    return exc, text


def attach_traceback(exc: BaseException, text: str | None) -> BaseException:
    """Make the remote traceback ``text`` the ``__cause__`` of ``exc``."""
    if text:
        exc.__cause__ = RemoteTraceback(text)
    return exc


# ---------------------------------------------------------------------- logging

_capture: contextvars.ContextVar[Callable[[dict[str, Any]], None] | None] = contextvars.ContextVar(
    "taskrun_log_capture", default=None
)
_SIMPLE = tuple(PLAIN_SCALARS)


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """A picklable copy of ``record``: message formatted, exception as text."""
    data = dict(record.__dict__)
    data["msg"] = record.getMessage()
    data["args"] = None
    if record.exc_info:
        data["exc_text"] = record.exc_text or logging.Formatter().formatException(record.exc_info)
    data["exc_info"] = None
    for key, value in data.items():
        if not isinstance(value, _SIMPLE):
            data[key] = repr(value)
    return data


class _CaptureFilter(logging.Filter):
    """Hands run log records to the current capture instead of the local handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        sink = _capture.get()
        if sink is None:
            return True
        sink(record_to_dict(record))
        return False


_filter_installed = False


def install_capture() -> None:
    """(worker) Route records of run loggers to the active capture; once per process."""
    global _filter_installed
    if not _filter_installed:
        _filter_installed = True
        _ensure_default_handler()
        logging.getLogger(RUN_LOGGER).addFilter(_CaptureFilter())


def capture_logs(context: contextvars.Context, sink: Callable[[dict[str, Any]], None]) -> None:
    """(worker) Send the log records of the run living in ``context`` to ``sink``."""
    install_capture()
    context.run(_capture.set, sink)


def emit_records(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    """(submitter) Replay records captured in a worker through local logging."""
    _ensure_default_handler()
    for data in records:
        record = logging.makeLogRecord(data)
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
