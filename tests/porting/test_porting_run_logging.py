"""taskrun._run_logging: the records the engine emits for run outcomes."""

from __future__ import annotations

import contextvars
import logging

import pytest

from taskrun import task
from taskrun._engine._run_logging import log_final, log_retry, summary
from taskrun.context import TaskRunContext
from taskrun.exceptions import TaskRunTimeout
from taskrun.states import Cancelled, Completed, Crashed, Failed, NotReady


@task
def sample(x: int) -> int:
    return x


def _run() -> TaskRunContext:
    run = TaskRunContext(sample, {"x": 1}, frozenset(), contextvars.copy_context())
    run.attempt = 1
    return run


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "taskrun.task_runs"]


def test_retry_is_a_warning_with_the_one_line_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="taskrun")
    run = _run()
    log_retry(run, Failed(ValueError("bad input\nmore")), attempt=1, retries=2, delay=0.1)
    (record,) = _records(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage().endswith("retry 1/2 in 0.1 s after ValueError: bad input")
    for field in ("task_name", "task_run_name", "task_run_id", "flow_run_name", "attempt"):
        assert hasattr(record, field), field
    assert record.task_name == "sample" and record.attempt == 1


def test_final_states_levels_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="taskrun")
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        failed = Failed(exc)
    states = [
        Completed(1), failed, Failed(TaskRunTimeout("after 1 s"), name="TimedOut"),
        Crashed(SystemExit(3)), Cancelled(), NotReady("upstream run 'u' ended Failed"),
    ]
    for state in states:
        log_final(_run(), state)
    levels = [(r.levelno, r.getMessage().split(" - ", 1)[1]) for r in _records(caplog)]
    assert levels[0] == (logging.DEBUG, "Completed")
    assert levels[1] == (logging.ERROR, "Failed: ValueError: bad input")
    assert levels[2][0] == logging.ERROR and levels[2][1].startswith("timed out")
    assert levels[3][0] == logging.ERROR and levels[3][1].startswith("crashed")
    assert levels[4][0] == logging.INFO and levels[4][1].startswith("Cancelled")
    assert levels[5] == (logging.INFO, "did not start: upstream run 'u' ended Failed")
    assert _records(caplog)[1].exc_info is not None  # the traceback is on the record


def test_completions_cost_nothing_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="taskrun")
    log_final(_run(), Completed(1))
    assert _records(caplog) == []
    assert summary(None) == "no exception" and summary(KeyError("k")) == "KeyError: 'k'"
