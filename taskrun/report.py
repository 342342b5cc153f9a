"""Run reports: records, summaries, a self-contained HTML report and a Chrome trace.

Record runs to JSON Lines with ``TASKRUN_RECORD=runs.jsonl`` (or a :class:`Recorder`),
then turn them into a report you can open in any browser — no server, no network —
or into the Chrome trace-event format that Perfetto opens.

Example::

    from taskrun.report import Summary, read_records, write_chrome_trace, write_html

    records = read_records("runs.jsonl")
    print(Summary(records))                 # counts per task and state, slowest, failures
    write_html(records, "runs.html")        # timeline, sortable table, failure details
    write_chrome_trace(records, "runs.trace.json")

The same from a shell: ``python -m taskrun report runs.jsonl -o runs.html``.
"""

from __future__ import annotations

from ._observe._chrome_trace import chrome_trace, write_chrome_trace
from ._observe._html import render_html, write_html
from ._observe._recorder import Recorder, iter_records, read_records, write_records
from ._observe._records import RunRecord, StateChange
from ._observe._summary import Summary, TaskCounts

__all__ = [
    "Recorder",
    "RunRecord",
    "StateChange",
    "Summary",
    "TaskCounts",
    "chrome_trace",
    "iter_records",
    "read_records",
    "render_html",
    "write_chrome_trace",
    "write_html",
    "write_records",
]
