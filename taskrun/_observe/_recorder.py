"""Run records from events, and their JSON Lines file (``TASKRUN_RECORD=path.jsonl``)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from . import _events
from ._events import Event
from ._records import RunRecord, StateChange, error_line, error_of, one_line, parameters_repr
from ._summary import Summary

RECORD_ENV = "TASKRUN_RECORD"


class RecordBuilder:
    """Folds events into :class:`RunRecord` objects; hands back each run when it finishes.

    Example::

        builder = RecordBuilder()
        for event in events:
            finished = builder.add(event)
            if finished is not None:
                print(finished.task_run_name, finished.state_name)
    """

    def __init__(self) -> None:
        # Keyed by the run object's id(): the object stays alive while its run is open
        # (the events hold it), and this spares a str(UUID) per event.
        self.open: dict[int, RunRecord] = {}

    def _record_for(self, event: Event) -> RunRecord:
        run = event.run
        assert run is not None
        record = self.open.get(id(run))
        if record is None:
            flow = event.flow
            record = RunRecord(
                task_run_id=str(run.task_run_id),
                task_name=str(getattr(run.task, "name", "?")),
                task_run_name=str(run.task_run_name),
                flow_run_id=str(flow.flow_run_id) if flow is not None else None,
                flow_run_name=flow.flow_run_name if flow is not None else None,
                parameters=parameters_repr(run.parameters),
                tags=sorted(str(t) for t in run.tags),
                pid=event.pid,
            )
            self.open[id(run)] = record
        elif record.flow_run_id is None and event.flow is not None:
            record.flow_run_id = str(event.flow.flow_run_id)
            record.flow_run_name = event.flow.flow_run_name
        return record

    def add(self, event: Event) -> RunRecord | None:
        """Take one event; return the run's record if this event finished it."""
        if event.run is None:
            return None
        record = self._record_for(event)
        if event.kind == "submitted":
            record.states.append(StateChange("PENDING", "Pending", event.monotonic, event.wall))
            return None
        state = event.state
        if state is not None:
            kind = state.type.value
            record.states.append(StateChange(kind, state.name, event.monotonic, event.wall))
            if kind == "RUNNING" and record.thread is None:
                record.thread = event.thread
                record.pid = event.pid
        elif event.kind == "placed" and event.worker is None:
            record.thread = event.thread  # the thread the body ran on (a retry may run elsewhere)
        if event.worker is not None:
            record.worker = event.worker
        if event.kind != "finished":
            return None
        run = event.run
        record.attempts = int(run.attempt)
        record.cached = bool(event.cached)
        upstream = getattr(run, "dependencies", None)
        if isinstance(upstream, dict):
            record.upstream_ids = sorted({str(i) for ids in upstream.values() for i in ids})
        if state is not None:
            error = error_of(state)
            if error is not None:
                record.error_type = type(error).__name__
                record.message = error_line(error)
            else:
                record.message = one_line(state.message)
        return self.open.pop(id(run))


class Recorder:
    """Subscribe to events and keep a :class:`RunRecord` per finished run, optionally
    appending each as one JSON line to ``path`` (flushed after every batch).

    ``flow_run_id`` keeps only the runs of that flow run.

    Example::

        with Recorder("runs.jsonl") as recorder:
            fetch.map(range(100)).wait()
        print(recorder.summary())
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, keep: bool = True,
                 flow_run_id: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.is_dir():
            raise ValueError(f"record path {str(self.path)!r} is a directory; give a file such as runs.jsonl")
        self.keep = keep
        #: Only the runs of this flow run (its id as a str), if set.
        self.flow_run_id = flow_run_id
        self.records: list[RunRecord] = []
        self._builder = RecordBuilder()
        self._file: IO[str] | None = None
        self._subscription: _events.Subscription | None = None
        self._lock = threading.Lock()

    def start(self) -> Recorder:
        """Open the file (append) and subscribe; :meth:`close` undoes both."""
        if self._subscription is not None:
            raise RuntimeError("this Recorder is already recording; make a new one or close() it first")
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._subscription = _events.subscribe(self._on_batch, batched=True)
        return self

    def close(self) -> None:
        """Deliver pending events, unsubscribe, close the file; idempotent."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.unsubscribe()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _on_batch(self, batch: Sequence[Event]) -> None:
        finished = [r for r in map(self._builder.add, batch) if r is not None]
        if self.flow_run_id is not None:
            finished = [r for r in finished if r.flow_run_id == self.flow_run_id]
        if not finished:
            return
        with self._lock:
            if self.keep:
                self.records.extend(finished)
            if self._file is not None:
                self._file.writelines(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in finished)
                self._file.flush()

    def unfinished(self) -> list[RunRecord]:
        """Records of runs seen but not finished yet (a snapshot)."""
        return list(self._builder.open.values())

    def summary(self) -> Summary:
        """A :class:`~taskrun.report.Summary` of the finished runs recorded so far."""
        with self._lock:
            return Summary(list(self.records))


def recorder_from_env(environ: dict[str, str] | None = None) -> Recorder | None:
    """A (not yet started) Recorder writing to ``$TASKRUN_RECORD``, or ``None`` if unset.

    Example::

        recorder = recorder_from_env()
        if recorder is not None:
            recorder.start()
    """
    env = os.environ if environ is None else environ
    path = env.get(RECORD_ENV, "").strip()
    return Recorder(path, keep=False) if path else None


def iter_records(path: str | os.PathLike[str]) -> Iterator[RunRecord]:
    """The records of a JSON Lines file, one by one; a ``ValueError`` names a bad line."""
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"no run records at {str(file)!r}; record some with TASKRUN_RECORD={file}")
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{file}:{number}: not a JSON line ({exc.msg})") from None
            try:
                yield RunRecord.from_dict(data)
            except ValueError as exc:
                raise ValueError(f"{file}:{number}: {exc}") from None


def read_records(path: str | os.PathLike[str]) -> list[RunRecord]:
    """All the records of a JSON Lines file written by a :class:`Recorder`.

    Example::

        records = read_records("runs.jsonl")
        print(len(records), "runs")
    """
    return list(iter_records(path))


def write_records(records: Iterable[RunRecord], path: str | os.PathLike[str]) -> None:
    """Write ``records`` as JSON Lines to ``path`` (replacing it)."""
    with Path(path).open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
