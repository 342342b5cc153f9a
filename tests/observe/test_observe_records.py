from __future__ import annotations

import json

import pytest

from taskrun._observe._records import (
    RunRecord,
    StateChange,
    error_line,
    one_line,
    parameters_repr,
    short_repr,
)


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_short_repr_is_bounded_and_never_raises() -> None:
    assert short_repr("x" * 500, limit=20) == repr("x" * 500)[:19] + "…"
    assert len(short_repr(list(range(1000)))) == 60
    assert short_repr(Unprintable()) == "<unrepresentable Unprintable: RuntimeError>"


def test_parameters_repr_bounds_each_value_and_the_total() -> None:
    assert parameters_repr({"n": 1, "s": "a"}) == "n=1, s='a'"
    assert parameters_repr({}) == ""
    text = parameters_repr({f"p{i}": "v" * 100 for i in range(50)})
    assert len(text) == 200 and text.endswith("…")
    assert "v" * 60 not in text


def test_one_line_and_error_line() -> None:
    assert one_line("\n  first\nsecond") == "first"
    assert one_line(None) is None
    assert error_line(ValueError("bad\nmore")) == "ValueError: bad"
    assert error_line(KeyError()) == "KeyError"


def _record() -> RunRecord:
    return RunRecord(
        task_run_id="id-1", task_name="fetch", task_run_name="fetch-1", flow_run_name="nightly-1",
        parameters="n=1", upstream_ids=["id-0"], tags=["a"], attempts=2,
        states=[StateChange("PENDING", "Pending", 1.0, 100.0), StateChange("RUNNING", "Running", 1.5, 100.5),
                StateChange("SCHEDULED", "AwaitingRetry", 2.0, 101.0),
                StateChange("RUNNING", "Retrying", 2.1, 101.1), StateChange("FAILED", "Failed", 3.5, 102.5)],
        thread="worker-0", pid=42, message="ValueError: bad", error_type="ValueError",
    )


def test_record_derived_values() -> None:
    record = _record()
    assert record.state_type == "FAILED" and record.state_name == "Failed"
    assert record.final == record.states[-1]
    assert record.duration == pytest.approx(2.0)
    assert record.retries == 1
    assert record.lane == "42/worker-0"
    unfinished = RunRecord("x", "t", "t-1", states=[StateChange("RUNNING", "Running", 1.0, 1.0)])
    assert unfinished.final is None and unfinished.duration is None


def test_record_json_round_trip() -> None:
    record = _record()
    line = json.dumps(record.to_dict())
    back = RunRecord.from_dict(json.loads(line))
    assert back == record
    assert isinstance(back.states[0], StateChange)


def test_from_dict_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"missing \['task_name', 'task_run_name'\]"):
        RunRecord.from_dict({"task_run_id": "x"})
    with pytest.raises(ValueError, match="malformed states"):
        RunRecord.from_dict({"task_run_id": "x", "task_name": "t", "task_run_name": "t", "states": [[1]]})
    with pytest.raises(ValueError, match="JSON object"):
        RunRecord.from_dict([1, 2])  # type: ignore[arg-type]
