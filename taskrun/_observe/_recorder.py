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
from ._events import RawEvent
from ._jsonl import rows_text
from ._records import RunRecord
from ._rows import Row, RowBuilder, row_record
from ._summary import Summary

RECORD_ENV = "TASKRUN_RECORD"


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
        self._records: list[RunRecord] = []
        self._rows: list[Row] = []  # finished, kept, not yet made into records
        self._builder = RowBuilder()
        self._file: IO[str] | None = None
        self._subscription: _events.Subscription | None = None
        self._lock = threading.Lock()

    @property
    def records(self) -> list[RunRecord]:
        """The finished runs recorded so far (with ``keep``), oldest first.

        Runs are kept compactly as they finish and made into records here, when asked.
        """
        with self._lock:
            rows, self._rows = self._rows, []
            if rows:
                self._records.extend(map(row_record, rows))
            return self._records

    def start(self) -> Recorder:
        """Open the file (append) and subscribe; :meth:`close` undoes both."""
        if self._subscription is not None:
            raise RuntimeError("this Recorder is already recording; make a new one or close() it first")
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate (a file name decoded with surrogateescape,
            # say) is written as its JSON escape, and reads back as itself.
            self._file = self.path.open("a", encoding="utf-8", errors="backslashreplace")
        self._subscription = _events.subscribe_raw(self._on_batch)
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

    def _on_batch(self, batch: Sequence[RawEvent]) -> None:
        finished = self._builder.add(batch)
        if self.flow_run_id is not None:
            finished = [r for r in finished if r[3] == self.flow_run_id]
        if not finished:
            return
        text = rows_text(finished) if self._file is not None else ""
        with self._lock:
            if self.keep:
                self._rows.extend(finished)
            if self._file is not None:
                self._file.write(text)
                self._file.flush()

    def unfinished(self) -> list[RunRecord]:
        """Records of runs seen but not finished yet (a snapshot)."""
        return self._builder.unfinished()

    def summary(self) -> Summary:
        """A :class:`~taskrun.report.Summary` of the finished runs recorded so far."""
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
    with Path(path).open("w", encoding="utf-8", errors="backslashreplace") as file:
        for record in records:
            file.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
