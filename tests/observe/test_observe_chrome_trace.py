from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fakes import sample_stream

from taskrun._observe._recorder import Recorder
from taskrun.report import chrome_trace, write_chrome_trace


def test_trace_event_shape(tmp_path: Path) -> None:
    with Recorder() as recorder:
        sample_stream()
    path = write_chrome_trace(recorder.records, tmp_path / "trace.json")
    trace = json.loads(path.read_text())
    assert trace["displayTimeUnit"] == "ms"
    events = trace["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == 24
    for event in complete:
        assert set(event) >= {"name", "cat", "ts", "dur", "pid", "tid", "args"}
        assert event["ts"] >= 0 and event["dur"] >= 0
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
    threads = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(threads) == {"worker-0", "worker-1", "worker-2"}
    by_thread = {tid: {e["name"] for e in complete if e["tid"] == tid} for tid in threads.values()}
    assert all(len(names) == 8 for names in by_thread.values())
    assert sum(1 for e in events if e["ph"] == "i" and e["name"] == "AwaitingRetry") == 3
    failed = [e for e in complete if e["args"]["state"] == "Failed"]
    assert len(failed) == 3 and all(e["args"]["message"].startswith("ValueError") for e in failed)
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in events)


def test_workers_get_their_own_lanes() -> None:
    from taskrun._observe._records import RunRecord, StateChange

    def states(i: int) -> list[StateChange]:
        return [StateChange("RUNNING", "Running", i, i),
                StateChange("COMPLETED", "Completed", i + 0.5, i + 0.5)]

    records = [RunRecord(str(i), "t", f"t-{i}", worker=f"tcp://127.0.0.1:{9000 + i % 2}", pid=1,
                         states=states(i)) for i in range(4)]
    events = chrome_trace(records)["traceEvents"]
    lanes = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert lanes == {"tcp://127.0.0.1:9000", "tcp://127.0.0.1:9001"}
    assert chrome_trace([])["traceEvents"] == []


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        write_chrome_trace([], tmp_path)
