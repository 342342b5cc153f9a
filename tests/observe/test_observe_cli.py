from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _fakes import sample_stream

from taskrun._observe._cli import main
from taskrun._observe._recorder import Recorder


def test_report_command_writes_html_and_trace(tmp_path: Path) -> None:
    records = tmp_path / "runs.jsonl"
    with Recorder(records, keep=False):
        sample_stream()
    html, trace = tmp_path / "runs.html", tmp_path / "trace.json"
    out = subprocess.run([sys.executable, "-m", "taskrun._observe._cli", str(records), "-o", str(html),
                          "--chrome-trace", str(trace)],
                         capture_output=True, text=True, timeout=60, check=True)
    assert f"wrote {html} (24 runs)" in out.stdout
    assert "24 runs in " in out.stdout and "failures (3):" in out.stdout
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert sum(e["ph"] == "X" for e in json.loads(trace.read_text())["traceEvents"]) == 24


def test_report_command_accepts_the_report_word_and_is_quiet(tmp_path: Path, capsys: object) -> None:
    records = tmp_path / "runs.jsonl"
    with Recorder(records, keep=False):
        sample_stream(workers=1, per_worker=2)
    assert main(["report", str(records), "-q"]) == 0


def test_bad_input_exits_2_with_the_reason(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "taskrun._observe._cli", str(tmp_path / "none.jsonl")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "no run records at" in out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main([str(bad)]) == 2
