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
_names: dict[str | None, str] = {None: "null"}  # recurring names (tasks, threads, flows) as JSON
_prefixes: dict[str, tuple[str, str]] = {}  # state name -> (its type, '["TYPE", "name", ')


def _name(text: str | None) -> str:
    """A recurring string (or None) as JSON, from the cache (callers try ``_names`` first)."""
    if text is None:
        return "null"
    if len(_names) >= _CACHE_MAX:
        _names.clear()
        _names[None] = "null"
    encoded = _names[text] = _encode(text)
    return encoded


def _strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(map(_encode, values)) + "]"


def _changes(states: list[tuple[str, str, int]]) -> str:
    """``[type, name, monotonic, wall], ...``: seconds and nanoseconds by one small-int divmod
    each (the wall clock's by adding the offset's parts), no big-int division."""
    off_s, off_ns = divmod(_events._wall_offset_ns, _NS)
    prefixes = _prefixes
    parts = []
    for type_name, name, ns in states:
        prefix = prefixes.get(name)
        if prefix is None or prefix[0] != type_name:
            if len(prefixes) >= _CACHE_MAX:
                prefixes.clear()
            prefix = prefixes[name] = (type_name, f"[{_encode(type_name)}, {_encode(name)}, ")
        seconds, part = divmod(ns, _NS)
        wall = part + off_ns
        wall_seconds = seconds + off_s
        if wall >= _NS:
            wall -= _NS
            wall_seconds += 1
        # %-formatting: half the cost of the f-string's per-field format specs here.
        parts.append("%s%d.%09d, %d.%09d]" % (prefix[1], seconds, part, wall_seconds, wall))  # noqa: UP031
    return ", ".join(parts)


def row_line(row: Row) -> str:
    """The JSON line (with its newline) of a finished run's row.

    Example::

        file.writelines(map(row_line, builder.add(batch)))
    """
    (run_id, task, name, flow_id, flow_name, parameters, upstream, tags, attempts, states,
     thread, pid, worker, cached, message, error_type) = row
    known = _names.get  # the names' cache, inline: a call less per field
    return (
        f'{{"task_run_id": {_encode(run_id)}, "task_name": {known(task) or _name(task)}, '
        f'"task_run_name": {_encode(name)}, "flow_run_id": {known(flow_id) or _name(flow_id)}, '
        f'"flow_run_name": {known(flow_name) or _name(flow_name)}, "parameters": {_encode(parameters)}, '
        f'"upstream_ids": {_strings(upstream) if upstream else "[]"}, '
        f'"tags": {_strings(tags) if tags else "[]"}, "attempts": {attempts}, '
        f'"states": [{_changes(states)}], "thread": {known(thread) or _name(thread)}, '
        f'"pid": {"null" if pid is None else pid}, "worker": {known(worker) or _name(worker)}, '
        f'"cached": {"true" if cached else "false"}, '
        f'"message": {"null" if message is None else _encode(message)}, '
        f'"error_type": {known(error_type) or _name(error_type)}}}\n'
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
