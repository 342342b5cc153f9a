"""The recorder's hand-built JSON lines, its compact rows, and the raw event path."""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from _fakes import FakeRun, FakeTask, make_runs, play

from taskrun._observe import _events
from taskrun._observe._jsonl import row_line, rows_text
from taskrun._observe._recorder import Recorder, read_records
from taskrun._observe._records import RunRecord
from taskrun._observe._rows import RowBuilder, row_record
from taskrun.states import Completed, Failed, Running

ODD = [
    'quote " and backslash \\ and slash /',
    "new\nline, tab\t, return\r, bell\x07, nul\x00, escape\x1b",
    "non-ASCII: héllo, 日本語, emoji 🎉, a lone surrogate \ud800",
    "\u2028 line and paragraph \u2029 separators",
    "",
]


class OddRepr:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _odd_run(i: int, text: str) -> FakeRun:
    return FakeRun(FakeTask(f"task {text}"), f"run {i} {text}", {"p": OddRepr(text), "s": text, "n": i},
                   frozenset({text, "plain"}), dependencies={"p": {uuid.uuid4()}})


def _play_odd(run: FakeRun, text: str, fail: bool) -> None:
    _events.emit_submitted(run)
    run.attempt = 1
    _events.emit_state(run, Running(f"Running {text}"), worker=f"worker {text}")
    if fail:
        _events.emit_finished(run, Failed(ValueError(f"bad {text}")))
    else:
        _events.emit_finished(run, Completed(1, message=f"done {text}"))


def test_lines_read_back_as_the_records_json_dumps_writes_even_for_odd_text(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    flow = _events.FlowRunInfo('flow "odd"\n', flow_run_name='name with "quotes" and \\ \n')
    with Recorder(path) as recorder:
        token = _events.emit_flow_started(flow)
        for i, text in enumerate(ODD):
            in_flow = contextvars.copy_context()  # a new thread's own context has no flow
            thread = threading.Thread(target=in_flow.run, name=f"thread {text}",
                                      args=(_play_odd, _odd_run(i, text), text, i % 2 == 1))
            thread.start()
            thread.join()
        _events.emit_flow_finished(flow, Completed(), token)
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines: U+2028 stays in its line
    assert len(lines) == len(ODD) == len(recorder.records)
    for line, record in zip(lines, recorder.records, strict=True):
        assert json.loads(line) == json.loads(json.dumps(record.to_dict(), ensure_ascii=False))
    assert read_records(path) == recorder.records
    assert "\\ud800" in path.read_text(encoding="utf-8")  # a lone surrogate, written as its JSON escape
    record = recorder.records[1]
    assert record.task_run_name == f"run 1 {ODD[1]}" and record.thread == f"thread {ODD[1]}"
    assert record.worker == f"worker {ODD[1]}" and record.flow_run_name == flow.flow_run_name
    assert f"p={ODD[1]}"[:20] in record.parameters and record.error_type == "ValueError"
    assert [s.state_name for s in record.states] == ["Pending", f"Running {ODD[1]}", "Failed"]


def _row(**changes: Any) -> tuple[Any, ...]:
    base = RunRecord("id-1", "t", "t-1", attempts=1, thread="main", pid=7)
    fields = {**base.__dict__, **changes}
    return (fields["task_run_id"], fields["task_name"], fields["task_run_name"], fields["flow_run_id"],
            fields["flow_run_name"], fields["parameters"], tuple(fields["upstream_ids"]),
            tuple(fields["tags"]), fields["attempts"], fields.get("ns_states", []), fields["thread"],
            fields["pid"], fields["worker"], fields["cached"], fields["message"], fields["error_type"])


def test_timestamps_are_written_as_decimals_that_read_back_as_the_records_floats() -> None:
    for ns in (0, 1, 999_999_999, 1_000_000_000, 581_568_544_228, 9_876_543_210_123_456):
        row = _row(ns_states=[("RUNNING", "Running", ns)])
        data = json.loads(row_line(row))
        (change,) = row_record(row).states
        assert data["states"] == [["RUNNING", "Running", change.monotonic, change.wall]]
        assert change.monotonic == ns / 1e9
        assert RunRecord.from_dict(data) == row_record(row)


def test_a_row_that_is_not_plain_text_is_still_written() -> None:
    row = _row(thread=12345, ns_states=[("COMPLETED", "Completed", 10)])  # not a str: json.dumps writes it
    (line,) = rows_text([row]).splitlines()
    assert json.loads(line)["thread"] == 12345 and json.loads(line)["task_run_id"] == "id-1"


def test_runs_submitted_together_are_one_event_each_with_one_time() -> None:
    runs = make_runs("batch", 3)
    seen: list[_events.Event] = []
    raw: list[tuple[Any, ...]] = []
    with _events.subscribe(seen.append), _events.subscribe_raw(raw.extend):
        _events.emit_submitted_runs(runs)
        _events.emit_submitted_runs([])
    assert [(e.kind, e.run) for e in seen] == [("submitted", r) for r in runs]
    assert len({e.monotonic for e in seen}) == 1 and seen[0].thread == threading.current_thread().name
    assert [(item[0], item[1]) for item in raw] == [("submitted", r) for r in runs]
    assert raw[0][4] == round(seen[0].monotonic * 1e9) and isinstance(raw[0][4], int)


def test_records_and_events_agree_on_when(tmp_path: Path) -> None:
    seen: list[_events.Event] = []
    with _events.subscribe(seen.append), Recorder() as recorder:
        for run in make_runs("when", 3):
            play(run)
    by_run: dict[str, list[tuple[float, float]]] = {}
    for event in seen:
        assert event.run is not None
        by_run.setdefault(str(event.run.task_run_id), []).append((event.monotonic, event.wall))
    assert len(recorder.records) == 3
    for record in recorder.records:
        assert [(s.monotonic, s.wall) for s in record.states] == by_run[record.task_run_id]


def test_records_are_made_when_asked_and_kept_in_order() -> None:
    with Recorder() as recorder:
        for run in make_runs("lazy", 3):
            play(run)
        _events.flush()
        first = recorder.records
        assert [r.task_run_name for r in first] == ["lazy-0", "lazy-1", "lazy-2"]
        play(make_runs("later", 1)[0])
    assert recorder.records is first and [r.task_run_name for r in first][-1] == "later-0"
    assert recorder.summary().total == 4


def test_the_builder_keeps_an_open_run_until_it_finishes() -> None:
    run = FakeRun(FakeTask("t"), "t-1", {"x": 1})
    builder = RowBuilder()
    assert builder.add([("submitted", run, None, None, 5, "main", None, False, None)]) == []
    (open_record,) = builder.unfinished()
    assert open_record.state_name == "Pending" and open_record.attempts == 0
    run.attempt = 1
    (row,) = builder.add([("finished", run, None, Completed(), 9, "main", None, False, None)])
    assert builder.unfinished() == []
    states = [(s.state_name, s.monotonic) for s in row_record(row).states]
    assert states == [("Pending", 5e-9), ("Completed", 9e-9)]
