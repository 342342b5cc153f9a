from __future__ import annotations

import re
from pathlib import Path

import pytest
from _browser import ARTIFACTS, dump_dom, screenshot
from _fakes import sample_stream

from taskrun._observe._recorder import Recorder
from taskrun.report import RunRecord, read_records, render_html, write_html


@pytest.fixture(scope="module")
def records() -> list[RunRecord]:
    with Recorder() as recorder:
        sample_stream()
    return recorder.records


def _rendered(dom: str) -> str:
    """The DOM without the page's own scripts and data (which mention the same class names)."""
    return dom.split('<script type="application/json"')[0]


def _attrs(dom: str, tag: str) -> dict[str, str]:
    match = re.search(rf"<{tag}\b([^>]*)>", dom)
    assert match, f"no <{tag}> in the dump"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))


def test_report_loads_without_errors_and_draws_every_bar(records: list[RunRecord], tmp_path: Path) -> None:
    page = write_html(records, tmp_path / "runs.html", title="sample <run>")
    full = dump_dom(page.as_uri())
    dom = _rendered(full)
    html, body = _attrs(dom, "html"), _attrs(dom, "body")
    assert html["data-errors"] == "0", re.findall(r"<li>(.*?)</li>", dom)
    assert body["data-ready"] == "1"
    assert body["data-bars"] == "24" and dom.count('class="bar s-') == 24
    assert dom.count('class="bar s-FAILED') == 3 and len(re.findall(r'class="bar s-\w+ cached', dom)) == 3
    assert body["data-lanes"] == "3"
    assert body["data-rows"] == "24"
    assert "Failures (3)" in dom and dom.count('class="failure"') == 3
    assert "sample &lt;run&gt;" in dom
    shot = screenshot(page.as_uri(), ARTIFACTS / "report.png")
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_filter_and_sort_from_the_link(records: list[RunRecord], tmp_path: Path) -> None:
    page = write_html(records, tmp_path / "runs.html")
    dom = _rendered(dump_dom(page.as_uri() + "#state=Failed&sort=-dur"))
    body = _attrs(dom, "body")
    assert body["data-rows"] == "3"
    failed = sorted((r for r in records if r.state_name == "Failed"), key=lambda r: -(r.duration or 0))
    assert body["data-first-row"] == failed[0].task_run_name
    assert dom.count('class="bar s-FAILED hl"') == 3
    dom = dump_dom(page.as_uri() + "#filter=fetch1")
    assert _attrs(dom, "body")["data-rows"] == "8"


def test_the_error_marker_catches_a_broken_page(records: list[RunRecord], tmp_path: Path) -> None:
    broken = render_html(records).replace('const runs = data.runs', 'const runs = data.nope.runs')
    page = tmp_path / "broken.html"
    page.write_text(broken)
    dom = dump_dom(page.as_uri())
    assert _attrs(dom, "html")["data-errors"] == "1"
    assert "TypeError" in dom
    assert "data-ready" not in _attrs(dom, "body")


def test_the_page_needs_no_network(records: list[RunRecord]) -> None:
    page = render_html(records)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page


def test_report_of_a_real_recorded_flow(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    runs = tmp_path / "runs.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRUN_")}
    env["TASKRUN_RECORD"] = str(runs)
    script = Path(__file__).with_name("_flow_script.py")
    done = subprocess.run([sys.executable, str(script), "60"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr
    records = read_records(runs)
    assert len(records) == 120
    page = write_html(records, tmp_path / "runs.html", title="nightly: 60 items on 6 threads")
    dom = _rendered(dump_dom(page.as_uri()))
    html, body = _attrs(dom, "html"), _attrs(dom, "body")
    assert html["data-errors"] == "0", re.findall(r"<li>(.*?)</li>", dom)
    assert body["data-bars"] == "120" and dom.count('class="bar s-') == 120
    assert dom.count('class="bar s-FAILED') == 4
    assert body["data-lanes"] == str(len({r.lane for r in records}))
    assert "Failures (4)" in dom
    shot = screenshot(page.as_uri(), ARTIFACTS / "report-real.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
