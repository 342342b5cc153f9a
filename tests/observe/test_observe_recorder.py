from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from _fakes import FakeRun, FakeTask, make_runs, play, sample_stream

from taskrun._observe import _events
from taskrun._observe._recorder import Recorder, read_records, recorder_from_env, write_records
from taskrun.states import Completed


def test_recorder_writes_one_flushed_line_per_finished_run(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with Recorder(path) as recorder:
        for run in make_runs("fetch", 4):
            play(run)
        _events.emit_submitted(make_runs("slow", 1)[0])     # never finishes
        _events.flush()
        lines = path.read_text().splitlines()               # readable while recording
        assert len(lines) == 4
        assert [r.task_name for r in recorder.unfinished()] == ["slow"]
    assert len(recorder.records) == 4
    assert all(json.loads(line)["task_name"] == "fetch" for line in lines)


def test_jsonl_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    with Recorder(path) as recorder:
        sample_stream()
    back = read_records(path)
    assert back == recorder.records
    assert len(back) == 24
    failed = [r for r in back if r.state_type == "FAILED"]
    assert len(failed) == 3 and all(r.message == f"ValueError: bad input {r.task_run_name}" for r in failed)
    assert all(r.error_type == "ValueError" for r in failed)
    retried = [r for r in back if r.retries]
    assert len(retried) == 3 and all(r.attempts == 2 for r in retried)
    assert [s.state_name for s in retried[0].states] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert sum(r.cached for r in back) == 3
    assert {r.thread for r in back} == {"worker-0", "worker-1", "worker-2"}


def test_recorder_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    for _ in range(2):
        with Recorder(path, keep=False) as recorder:
            play(make_runs("t", 1)[0])
        assert recorder.records == []
    assert len(read_records(path)) == 2


def test_record_contents() -> None:
    upstream = uuid.uuid4()
    run = FakeRun(FakeTask("fetch"), "fetch-7", {"url": "x" * 500, "n": 3}, frozenset({"b", "a"}),
                  dependencies={"data": {upstream}})
    flow = _events.FlowRunInfo("nightly")
    with Recorder() as recorder:
        token = _events.emit_flow_started(flow)
        play(run)
        _events.emit_flow_finished(flow, Completed(), token)
    (record,) = recorder.records
    assert record.task_run_id == str(run.task_run_id)
    assert record.flow_run_name == flow.flow_run_name and record.flow_run_id == str(flow.flow_run_id)
    assert record.upstream_ids == [str(upstream)]
    assert record.tags == ["a", "b"]
    assert record.parameters.startswith("url='xxx") and len(record.parameters) <= 200
    assert ", n=3" in record.parameters
    assert record.attempts == 1 and record.state_name == "Completed"


def test_recorder_from_env(tmp_path: Path) -> None:
    assert recorder_from_env({}) is None
    recorder = recorder_from_env({"TASKRUN_RECORD": str(tmp_path / "r.jsonl")})
    assert recorder is not None and recorder.path == tmp_path / "r.jsonl"


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        Recorder(tmp_path)
    with pytest.raises(FileNotFoundError, match="TASKRUN_RECORD="):
        read_records(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    write_records([], bad)
    bad.write_text('{"task_run_id": "1", "task_name": "t", "task_run_name": "t"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON line"):
        read_records(bad)
    recorder = Recorder().start()
    try:
        with pytest.raises(RuntimeError, match="already recording"):
            recorder.start()
    finally:
        recorder.close()
