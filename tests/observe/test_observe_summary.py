from __future__ import annotations

import pytest
from _fakes import make_runs, play, sample_stream

from taskrun._observe._recorder import Recorder
from taskrun._observe._summary import Summary


def _summary() -> Summary:
    with Recorder() as recorder:
        sample_stream()
        for run in make_runs("slow", 1):
            play(run, seconds=0.05)
    return Summary(recorder.records, slowest=3)


def test_counts_per_task_and_state() -> None:
    summary = _summary()
    assert summary.total == 25
    assert summary.counts() == {
        "fetch0": {"COMPLETED": 14, "FAILED": 2},
        "fetch1": {"COMPLETED": 7, "FAILED": 1},
        "slow": {"COMPLETED": 1},
    }
    assert summary.state_counts() == {"COMPLETED": 22, "FAILED": 3}
    fetch0 = next(t for t in summary.tasks if t.task == "fetch0")
    assert (fetch0.runs, fetch0.retried, fetch0.retries, fetch0.cached) == (16, 2, 2, 2)
    assert summary.wall_seconds >= 0.05


def test_slowest_failures_retries_cached() -> None:
    summary = _summary()
    slowest = summary.slowest()
    assert len(slowest) == 3 and slowest[0].task_name == "slow"
    durations = [r.duration or 0.0 for r in slowest]
    assert durations == sorted(durations, reverse=True)
    assert len(summary.failures()) == 3
    assert len(summary.retried()) == 3
    assert len(summary.cached()) == 3
    data = summary.to_dict()
    assert data["total"] == 25 and len(data["failures"]) == 3


def test_text_table() -> None:
    text = str(_summary())
    lines = text.splitlines()
    assert lines[0].startswith("25 runs in ")
    assert lines[1].split() == ["task", "runs", "completed", "failed", "retried", "cached", "total", "max"]
    (fetch0,) = [line for line in lines[3:6] if line.startswith("fetch0 ")]
    assert fetch0.split()[:6] == ["fetch0", "16", "14", "2", "2", "2"]
    assert "failures (3):" in text and "ValueError: bad input fetch" in text
    assert "slowest:" in text and "retried (3):" in text


def test_empty_and_bad_arguments() -> None:
    empty = Summary([])
    assert empty.total == 0 and empty.wall_seconds == 0.0 and str(empty).startswith("0 runs")
    with pytest.raises(ValueError, match="slowest must be"):
        Summary([], slowest=-1)
