"""One finished run as one JSON line, built by hand from its :data:`~._rows.Row`.

The line reads back as the same record that ``json.dumps(record.to_dict())`` writes
for the run (tests hold the two together), at a fraction of the cost: the field
names and layout are fixed; the timestamps, integer nanoseconds, are written as
decimals with nine places (``12.500000000``: what a float's shortest ``repr`` costs,
thousands of instructions for a wall-clock reading, this does with two integer
divisions, and it reads back as the very float the in-memory record holds); and only
strings pass through the ``json`` module's string encoder. Names that recur from run
to run (tasks, threads, states, flows) are encoded once.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable

from . import _events
from ._rows import Row, row_record

_encode: Callable[[str], str] = json.encoder.encode_basestring  # '"..."', escaped as json.dumps does
_CACHE_MAX = 4096
_NS = 1_000_000_000
_names: dict[str, str] = {}


def _name(text: str | None) -> str:
    """A recurring string (or None) as JSON, from the cache."""
    if text is None:
        return "null"
    encoded = _names.get(text)
    if encoded is None:
        if len(_names) >= _CACHE_MAX:
            _names.clear()
        encoded = _names[text] = _encode(text)
    return encoded


def _text(text: str | None) -> str:
    return "null" if text is None else _encode(text)


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(map(_encode, values)) + "]" if values else "[]"


def row_line(row: Row) -> str:
    """The JSON line (with its newline) of a finished run's row.

    Example::

        file.writelines(map(row_line, builder.add(batch)))
    """
    (run_id, task, name, flow_id, flow_name, parameters, upstream, tags, attempts, states,
     thread, pid, worker, cached, message, error_type) = row
    offset = _events._wall_offset_ns
    name_of = _name
    changes = ", ".join([f"[{name_of(t)}, {name_of(n)}, {ns // _NS}.{ns % _NS:09d}, "
                         f"{(ns + offset) // _NS}.{(ns + offset) % _NS:09d}]" for t, n, ns in states])
    return (
        f'{{"task_run_id": {_encode(run_id)}, "task_name": {name_of(task)}, '
        f'"task_run_name": {_encode(name)}, '
        f'"flow_run_id": {name_of(flow_id)}, "flow_run_name": {name_of(flow_name)}, '
        f'"parameters": {_encode(parameters)}, "upstream_ids": {_strings(upstream)}, '
        f'"tags": {_strings(tags)}, "attempts": {attempts!r}, "states": [{changes}], '
        f'"thread": {name_of(thread)}, "pid": {"null" if pid is None else repr(pid)}, '
        f'"worker": {name_of(worker)}, "cached": {"true" if cached else "false"}, '
        f'"message": {_text(message)}, "error_type": {name_of(error_type)}}}\n'
    )


def rows_text(rows: Iterable[Row]) -> str:
    """The JSON lines of ``rows``, joined (through ``json.dumps`` for a row whose fields
    are not the plain values a recorder makes, so no run's line is lost).

    Example::

        file.write(rows_text(builder.add(batch)))
    """
    lines = []
    for row in rows:
        try:
            lines.append(row_line(row))
        except (TypeError, ValueError):
            lines.append(json.dumps(row_record(row).to_dict(), ensure_ascii=False, default=str) + "\n")
    return "".join(lines)


__all__ = ["row_line", "rows_text"]
