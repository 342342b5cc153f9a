"""Export run records to the Chrome trace-event format (Perfetto and chrome://tracing open it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._records import RunRecord


def chrome_trace(records: Iterable[RunRecord]) -> dict[str, Any]:
    """The trace-event JSON object: one complete event (``ph: "X"``) per run, lanes by
    process and thread/worker, named by metadata events.

    Example::

        trace = chrome_trace(records)
        assert trace["traceEvents"][0]["ph"] in ("M", "X")
    """
    runs = [r for r in records if r.states]
    origin = min((r.states[0].monotonic for r in runs), default=0.0)
    pids: dict[str, int] = {}
    tids: dict[tuple[int, str], int] = {}
    events: list[dict[str, Any]] = []
    for record in sorted(runs, key=lambda r: r.states[0].monotonic):
        process = record.worker or str(record.pid or 0)
        pid = pids.setdefault(process, record.pid if (not record.worker and record.pid) else len(pids) + 1)
        lane = record.worker or record.thread or "?"
        tid = tids.setdefault((pid, lane), len(tids) + 1)
        begin = record.started or record.first
        assert begin is not None
        end = record.states[-1]
        args: dict[str, Any] = {
            "task_run_id": record.task_run_id,
            "state": record.state_name,
            "attempts": record.attempts,
            "parameters": record.parameters,
        }
        if record.flow_run_name:
            args["flow_run"] = record.flow_run_name
        if record.cached:
            args["cached"] = True
        if record.message:
            args["message"] = record.message
        events.append({
            "name": record.task_run_name,
            "cat": record.task_name,
            "ph": "X",
            "ts": round((begin.monotonic - origin) * 1e6, 3),
            "dur": round(max(end.monotonic - begin.monotonic, 0.0) * 1e6, 3),
            "pid": pid,
            "tid": tid,
            "args": args,
        })
        for change in record.states:
            if change.state_name in ("AwaitingRetry", "Retrying"):
                events.append({"name": change.state_name, "cat": record.task_name, "ph": "i", "s": "t",
                               "ts": round((change.monotonic - origin) * 1e6, 3), "pid": pid, "tid": tid})
    meta: list[dict[str, Any]] = []
    for process, pid in pids.items():
        meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                     "args": {"name": f"taskrun {process}"}})
    for (pid, lane), tid in tids.items():
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": lane}})
    return {"traceEvents": meta + events, "displayTimeUnit": "ms"}


def write_chrome_trace(records: Iterable[RunRecord], path: str | os.PathLike[str]) -> Path:
    """Write :func:`chrome_trace` of ``records`` to ``path``; returns the path.

    Example::

        write_chrome_trace(read_records("runs.jsonl"), "runs.trace.json")
        # open runs.trace.json in Perfetto or chrome://tracing
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{str(target)!r} is a directory; give a file name such as runs.trace.json")
    target.write_text(json.dumps(chrome_trace(records)), encoding="utf-8")
    return target
