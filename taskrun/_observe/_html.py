"""A self-contained HTML run report: timeline, sortable/filterable table, failure details.

One file, inline CSS and vanilla JS, no network access: it can be mailed or attached
to a CI run and opened anywhere.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from ._records import RunRecord
from ._summary import Summary

TABLE_LIMIT = 2000


def _asset(name: str) -> str:
    """The text of a file shipped next to this module (the page's CSS and scripts)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _row(record: RunRecord, origin: float, end_of_run: float) -> dict[str, Any]:
    begin = record.started or record.first
    start = (begin.monotonic - origin) if begin else 0.0
    final = record.final
    end = (final.monotonic - origin) if final else end_of_run
    return {
        "id": record.task_run_id,
        "name": record.task_run_name,
        "task": record.task_name,
        "flow": record.flow_run_name or "",
        "lane": record.lane,
        "state": record.state_name,
        "type": record.state_type,
        "start": round(start, 6),
        "end": round(max(end, start), 6),
        "attempts": record.attempts,
        "retries": record.retries,
        "cached": record.cached,
        "msg": record.message or "",
        "params": record.parameters,
        "changes": [[c.state_name, round(c.monotonic - origin, 6)] for c in record.states],
    }


def report_data(records: Iterable[RunRecord]) -> dict[str, Any]:
    """The JSON the page renders (exposed for tests and other front ends)."""
    runs = [r for r in records if r.states]
    origin = min((r.states[0].monotonic for r in runs), default=0.0)
    end = max((r.states[-1].monotonic - origin for r in runs), default=0.0)
    summary = Summary(runs)
    return {
        "runs": [_row(r, origin, end) for r in runs],
        "span": round(end, 6),
        "started": min((r.states[0].wall for r in runs), default=0.0),
        "states": summary.state_counts(),
        "tableLimit": TABLE_LIMIT,
    }






def render_html(records: Iterable[RunRecord], title: str = "taskrun report") -> str:
    """The report page as a string (see :func:`write_html`)."""
    payload = json.dumps(report_data(records), ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c")
    safe_title = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en" data-errors="0">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe_title}</title>
<style>{_asset("report.css")}</style>
<script>{_asset("report-errors.js")}</script>
</head>
<body>
<header><h1>{safe_title}</h1><span id="counts"></span><span id="when" class="muted"></span></header>
<ul id="errors"></ul>
<h2>Timeline</h2>
<div class="toolbar"><button id="zout" title="zoom out">&minus;</button>
<button id="zin" title="zoom in">+</button><button id="zreset">reset</button>
<span id="zoomlevel" class="muted"></span>
<span class="muted">wheel to zoom, shift+wheel to scroll, click a bar to find it in the table</span></div>
<div id="timeline"><div id="labels"></div>
<div id="scroller"><div id="canvas"><div id="axis"></div></div></div></div>
<div id="tip"></div>
<h2>Runs</h2>
<div class="filters"><input id="filter" type="search" placeholder="filter: run, task, message, parameters"
size="40"><select id="state"></select><span id="shown" class="muted"></span></div>
<div class="wrap"><table><thead id="thead"></thead><tbody id="tbody"></tbody></table></div>
<h2 id="failures-title">Failures</h2>
<div id="failures"></div>
<p class="muted" style="margin:20px">Written by taskrun.</p>
<script type="application/json" id="report-data">{payload}</script>
<script>{_asset("report.js")}</script>
</body>
</html>
"""


def write_html(records: Iterable[RunRecord], path: str | os.PathLike[str], *,
               title: str = "taskrun report") -> Path:
    """Write one self-contained HTML report of ``records`` to ``path``; returns the path.

    Example::

        from taskrun.report import read_records, write_html

        write_html(read_records("runs.jsonl"), "runs.html")
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{str(target)!r} is a directory; give a file name such as runs.html")
    target.write_text(render_html(records, title), encoding="utf-8")
    return target
