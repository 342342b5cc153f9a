"""The switches flows and runners turn: progress, run records, tracing, and their reports.

Flows and runners call these; the logic lives here so each call site stays one line.
Nothing here runs unless asked (``progress=True``, ``record=...``, ``TASKRUN_PROGRESS``,
``TASKRUN_RECORD``, a configured tracer provider).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import Any, Union

import anyio.to_thread
import sniffio

from . import _events
from ._events import FlowRunView
from ._otel import flow_tracing
from ._progress import Progress
from ._recorder import RECORD_ENV, Recorder
from ._summary import Summary

RecordOption = Union[bool, str, "os.PathLike[str]", None]


def check_record(record: Any, owner: str) -> None:
    """Raise a clear error unless ``record`` is None, a bool, or a path."""
    if record is None or isinstance(record, (bool, str, os.PathLike)):
        if isinstance(record, str) and not record.strip():
            raise ValueError(f"record= of {owner} is an empty path; give a file such as 'runs.jsonl' or True")
        return
    raise TypeError(
        f"record= of {owner} must be True (keep records in memory), a path such as 'runs.jsonl' "
        f"(append JSON lines there too) or None, got {record!r}"
    )


def check_progress(progress: Any, owner: str) -> None:
    """Raise a clear error unless ``progress`` is None or a bool."""
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress= of {owner} must be True, False or None (see TASKRUN_PROGRESS), "
                        f"got {progress!r}")


def _record_path(record: RecordOption) -> tuple[bool, str | os.PathLike[str] | None]:
    """(record at all, file) for a ``record=`` option; None reads ``TASKRUN_RECORD``."""
    if record is None:
        env = os.environ.get(RECORD_ENV, "").strip()
        return (True, env) if env else (False, None)
    if record is True or record is False:
        return record, None
    return True, record


# --------------------------------------------------------------------------- flows


class FlowObserver:
    """What one flow run turned on; made by :meth:`begin` in the flow's own context.

    Example::

        observer = FlowObserver.begin(ctx, progress=None, record=None)
        try:
            ...
            observer.state = state
        finally:
            observer.end()
    """

    __slots__ = ("_flow", "_progress", "_recorder", "_token", "_traced", "state")

    def __init__(self, flow: FlowRunView, progress: Progress | None, recorder: Recorder | None,
                 traced: bool) -> None:
        self._flow = flow
        self._progress = progress
        self._recorder = recorder
        self._traced = traced
        self._token: _events.FlowToken | None = None
        #: The flow run's final state, set by the flow before :meth:`end`.
        self.state: Any = None

    @classmethod
    def begin(cls, flow: FlowRunView, progress: bool | None, record: RecordOption) -> FlowObserver:
        """Start what the options (and the environment) ask for, then mark the flow as started."""
        recording, path = _record_path(record)
        recorder = Recorder(path, keep=True, flow_run_id=str(flow.flow_run_id)) if recording else None
        shown = Progress(enabled=progress, flow_run_id=flow.flow_run_id)
        observer = cls(flow, shown if shown.enabled else None, None, flow_tracing.acquire())
        try:
            if recorder is not None:
                observer._recorder = recorder.start()
            if observer._progress is not None:
                observer._progress.start()
        except BaseException:
            observer._close()
            raise
        observer._token = _events.emit_flow_started(flow)
        return observer

    def _finish_events(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            _events.emit_flow_finished(self._flow, self.state, token)

    def _close(self) -> None:
        if self._progress is not None:
            self._progress.close()
        if self._recorder is not None:
            self._recorder.close()
            if self.state is not None:
                self.state._report = self._recorder.summary()
        if self._traced:
            self._traced = False
            flow_tracing.release()

    def end(self) -> None:
        """(sync flows, in the flow's context) End the flow's events, then close what it opened."""
        self._finish_events()
        self._close()

    async def end_async(self) -> None:
        """(async flows) :meth:`end` without blocking the loop."""
        self._finish_events()
        if self._progress is not None or self._recorder is not None or self._traced:
            await anyio.to_thread.run_sync(self._close)


# --------------------------------------------------------------------------- runners


class RunnerRecording:
    """The records a runner keeps while it is open, for ``runner.summary()``.

    Example::

        recording = RunnerRecording.open(path=None, asked=True)
        ...
        recording.close()
        print(recording.summary())
    """

    __slots__ = ("recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None, asked: bool) -> RunnerRecording | None:
        """Start recording when asked (``runner.record()``) or, outside flows, when
        ``TASKRUN_RECORD`` is set (inside a flow, the flow records)."""
        if not asked:
            if _events.current_flow() is not None:
                return None
            recording, path = _record_path(None)
            if not recording:
                return None
        return cls(Recorder(path, keep=True).start())

    def close(self) -> None:
        """Deliver what is left and stop recording (blocks a few milliseconds)."""
        self.recorder.close()

    def summary(self) -> Summary:
        """The runs recorded so far (all delivered ones, once the runner is closed)."""
        if not _on_loop():  # never wait on a loop thread: show what was delivered
            _events.flush()
        return self.recorder.summary()


def _on_loop() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


NOT_RECORDING = (
    "runner.summary() needs the runner's runs recorded: enter it as "
    "`with ThreadPoolTaskRunner().record() as runner:`, or set TASKRUN_RECORD=runs.jsonl; "
    "a flow's runs are summarised on its state: my_flow(return_state=True).report"
)


# --------------------------------------------------------------------------- maps and waits


def progress_for_runs(task_name: str, runs: list[Any]) -> Progress:
    """A started display for the runs of one ``map`` (ends by itself when they are final)."""
    return Progress({task_name: len(runs)}, enabled=True, runs={id(r) for r in runs},
                    finish_when_done=True).start()


def progress_for_stream(task_name: str, source: Any) -> Progress:
    """A started display for an ``imap``/``aimap`` over ``source`` (its size when it has one).

    The caller ends it with :meth:`Progress.close_later` when the stream ends.
    """
    total = _size_of(source)
    return Progress({task_name: total} if total is not None else None, enabled=True,
                    tasks={task_name}).start()


def _size_of(parameters: Any) -> int | None:
    sizes = [len(v) for v in (parameters.values() if isinstance(parameters, dict) else ())
             if isinstance(v, Sized) and not isinstance(v, (str, bytes, dict))]
    return min(sizes) if sizes else None


def progress_for_futures(futures: Iterable[Any]) -> Progress:
    """A started display for the futures of an ``as_completed``; ends when all are final."""
    unique = list(futures)
    totals: dict[str, int] = {}
    for f in unique:
        name = _task_name(f)
        totals[name] = totals.get(name, 0) + 1
    runs = {id(f._run) for f in unique if getattr(f, "_run", None) is not None}
    shown = Progress(totals, enabled=True, runs=runs, finish_when_done=True).start()
    for f in unique:  # after subscribing: a run final by now is counted once, here or by its event
        if f.done():
            shown.seed(_task_name(f), f.task_run_id if f._run is not None else id(f), f.state)
    return shown


def _task_name(future: Any) -> str:
    run = getattr(future, "_run", None)
    task = getattr(run, "task", None)
    return str(getattr(task, "name", "?"))


__all__ = [
    "NOT_RECORDING",
    "FlowObserver",
    "RecordOption",
    "RunnerRecording",
    "check_progress",
    "check_record",
    "progress_for_futures",
    "progress_for_runs",
    "progress_for_stream",
]
