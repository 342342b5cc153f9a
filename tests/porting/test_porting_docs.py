"""The code in docs/porting.md runs, and does what the text says."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrun import flow, task

DOC = Path(__file__).resolve().parents[2] / "docs" / "porting.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def taskrun_logging() -> Iterator[logging.Logger]:
    logger = logging.getLogger("taskrun")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_json_logging_example_writes_one_json_line_per_record(
    taskrun_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    (block,) = _python_blocks()
    exec(compile(block, str(DOC), "exec"), {})

    @task(retries=1, retry_delay_seconds=0)
    def flaky(x: int) -> int:
        raise ValueError(f"bad input {x}")

    @flow(flow_run_name="nightly")
    def nightly() -> None:
        flaky.submit(1).wait()

    nightly()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    retry, failed, end = lines
    assert retry["level"] == "WARNING"
    assert retry["message"].endswith("retry 1/1 in 0 s after ValueError: bad input 1")
    assert failed["level"] == "ERROR" and "ValueError: bad input 1" in failed["traceback"]
    assert {k: failed[k] for k in ("task_name", "flow_run_name", "attempt")} == {
        "task_name": "flaky", "flow_run_name": "nightly", "attempt": 2,
    }
    assert failed["task_run_name"].startswith("flaky-") and failed["task_run_id"]
    assert end["logger"] == "taskrun.flow_runs" and "Completed" in end["message"]
