"""The engine as the dispatcher sees it: the one object behind the core's
:class:`~taskrun._core._seam.RunEngine` interface."""

from __future__ import annotations

import operator
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sniffio import current_async_library_cvar as _library_var

from ..states import State
from . import _limit_waits
from ._admission import admit_many, admit_submitted, crash, finish_cancelled
from ._driver import body_ended, drive
from ._executors import Executor, Way
from ._vars import current_run

if TYPE_CHECKING:
    from .._core._dispatch import Dispatcher
    from ._record import TaskRunContext


_IS_ASYNC = operator.attrgetter("task.isasync")


def _never(run: TaskRunContext) -> bool:
    return False


class DispatchEngine:
    """Runs the runs of one dispatcher with one executor.

    Example::

        dispatcher = Dispatcher(backend, 8, "taskrun-threadpool",
                                lambda d: DispatchEngine(d, RunnerExecutor(d)))
    """

    __slots__ = ("_library", "dispatcher", "executor", "needs_task")

    def __init__(self, dispatcher: Dispatcher, executor: Executor) -> None:
        self.dispatcher = dispatcher
        self.executor = executor
        self._library: str = dispatcher.backend.name
        #: (RunEngine.needs_task) A run with an async body, where such a body
        #: awaits PROMOTE before it runs; one C call, as the dispatcher asks for
        #: every run it starts.
        self.needs_task: Callable[[TaskRunContext], bool] = (
            _IS_ASYNC if executor.promotes and executor.async_way is not Way.CALL_SYNC else _never)

    #: The admission (``_admission.admit_many``), as the method itself: one call per batch.
    admit_many = admit_many
    admit_submitted = admit_submitted

    def start(self, run: TaskRunContext) -> Coroutine[Any, Any, State[Any]]:
        current_run.set(run)
        # The submitter's loop library (``anyio.run`` names it in sniffio's
        # context variable) is not the run's when it runs on another loop, or is
        # a sync body on a worker thread with none: sniffio detects it afresh
        # there. (Left as it is when it is right: one more context entry per run.)
        library = _library_var.get()
        if library is not None and (library != self._library or not run.task.isasync):
            _library_var.set(None)
        extra = run._extra
        if extra is not None:
            extra.upstream = None  # admission's cache: not needed once the run starts
        return drive(run, self.executor)

    def resume(self, run: TaskRunContext, value: Any, error: BaseException | None) -> Any:
        return body_ended(run, self.executor, value, error)

    def crashed(self, run: TaskRunContext, error: BaseException) -> None:
        crash(run, error)

    def cancelled_before_start(self, run: TaskRunContext) -> None:
        finish_cancelled(run)

    def is_final(self, run: TaskRunContext) -> bool:
        future = run.future
        return future is None or future._final

    def release_final(self, run: TaskRunContext) -> bool:
        # The future refers back to the run: without this cycle a finished run
        # is freed with its future, not by the cyclic collector.
        future = run.future
        if future is not None and future._final:
            run.future = None
            return True
        return False


_limit_waits.install()
