"""Finished runs as compact rows, folded from the event buffer's plain tuples.

The recorder runs on the delivery thread, which shares the interpreter lock with
the runs it records, so each event costs it a dict lookup and an append, and each
finished run one tuple (a :data:`Row`). A :class:`RunRecord` is made from a row only
when someone asks for records; the JSON line is made from the row directly
(:mod:`._jsonl`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _events
from ._events import RawEvent
from ._records import RunRecord, StateChange, error_line, error_of, one_line, parameters_repr

Row = tuple[Any, ...]
"""A finished run: :class:`RunRecord`'s fields in their order, but ``upstream_ids`` and
``tags`` as tuples and each state change as ``(type, name, monotonic_ns)``, in integer
nanoseconds (the wall clock is that plus the process's fixed offset)."""

# An open run's entry, a list indexed by these (the row's first fields, then the rest).
_ID, _TASK, _NAME, _FLOW_ID, _FLOW_NAME, _PARAMS, _TAGS, _STATES, _THREAD, _PID, _WORKER, _RUN = range(12)

_NO_TAGS: tuple[str, ...] = ()
_NS = 1_000_000_000


class RowBuilder:
    """Folds raw events into :data:`Row` tuples; hands back each run's row when it finishes.

    Example::

        builder = RowBuilder()
        for row in builder.add(batch):
            print(row_record(row).state_name)
    """

    def __init__(self) -> None:
        # Keyed by the run object's id(); the entry holds the run, so the id stays its own.
        self.open: dict[int, list[Any]] = {}
        self._tags: dict[frozenset[str], tuple[str, ...]] = {}

    def _open(self, run: Any, flow: Any) -> list[Any]:
        tags = run.tags
        if tags:
            sorted_tags = self._tags.get(tags)
            if sorted_tags is None:
                if len(self._tags) > 1000:
                    self._tags.clear()
                sorted_tags = self._tags[tags] = tuple(sorted(str(t) for t in tags))
        else:
            sorted_tags = _NO_TAGS
        return [
            str(run.task_run_id),
            str(getattr(run.task, "name", "?")),
            str(run.task_run_name),
            str(flow.flow_run_id) if flow is not None else None,
            str(flow.flow_run_name) if flow is not None else None,
            parameters_repr(run.parameters),
            sorted_tags,
            [],
            None,
            _events._pid,
            None,
            run,
        ]

    def add(self, batch: Iterable[RawEvent]) -> list[Row]:
        """Take a batch of events; return the rows of the runs they finished, in order."""
        opened = self.open
        done: list[Row] = []
        for kind, run, flow, state, mono, thread, worker, cached, _ in batch:
            if run is None:
                continue
            entry = opened.get(id(run))
            if entry is None:
                entry = opened[id(run)] = self._open(run, flow)
            elif flow is not None and entry[_FLOW_ID] is None:
                entry[_FLOW_ID] = str(flow.flow_run_id)
                entry[_FLOW_NAME] = str(flow.flow_run_name)
            if kind == "submitted":
                entry[_STATES].append(("PENDING", "Pending", mono))
                continue
            if state is not None:
                type_name = state.type._value_
                entry[_STATES].append((type_name, state.name, mono))
                if type_name == "RUNNING" and entry[_THREAD] is None:
                    entry[_THREAD] = thread
            elif worker is None and kind == "placed":
                entry[_THREAD] = thread  # the thread the body ran on (a retry may run elsewhere)
            if worker is not None:
                entry[_WORKER] = worker
            if kind == "finished":
                del opened[id(run)]
                done.append(_finished(entry, run, state, cached))
        return done

    def unfinished(self) -> list[RunRecord]:
        """Records of the runs seen but not finished yet."""
        return [row_record((*entry[:_TAGS], (), entry[_TAGS], 0, entry[_STATES], entry[_THREAD],
                            entry[_PID], entry[_WORKER], False, None, None))
                for entry in list(self.open.values())]


def _finished(entry: list[Any], run: Any, state: Any, cached: bool) -> Row:
    upstream = getattr(run, "dependencies", None)
    upstream_ids = tuple(sorted({str(i) for ids in upstream.values() for i in ids})) \
        if isinstance(upstream, dict) and upstream else ()
    error_type = message = None
    if state is not None:
        error = error_of(state)  # never reads a Completed state's data (it may be in the store)
        if error is not None:
            error_type = type(error).__name__
            message = error_line(error)
        elif state.message is not None:
            message = one_line(state.message)
    return (entry[_ID], entry[_TASK], entry[_NAME], entry[_FLOW_ID], entry[_FLOW_NAME], entry[_PARAMS],
            upstream_ids, entry[_TAGS], int(run.attempt), entry[_STATES], entry[_THREAD], entry[_PID],
            entry[_WORKER], bool(cached), message, error_type)


def row_record(row: Row) -> RunRecord:
    """The :class:`RunRecord` of a row.

    Example::

        records = [row_record(row) for row in builder.add(batch)]
    """
    offset = _events._wall_offset_ns
    return RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], list(row[6]), list(row[7]), row[8],
                     [StateChange(t, n, ns / 1e9, (ns + offset) / _NS) for t, n, ns in row[9]],
                     row[10], row[11], row[12], row[13], row[14], row[15])


__all__ = ["Row", "RowBuilder", "row_record"]
