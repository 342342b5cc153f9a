"""A completed run logs at DEBUG; the engine reads the logger's level cache on
that path, so a level changed between runs must still be seen."""

from __future__ import annotations

import logging

import pytest

from taskrun import ThreadPoolTaskRunner, task


@task
def one() -> int:
    return 1


def test_a_level_lowered_between_runs_brings_the_completion_record(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("taskrun.task_runs")
    old = logger.level
    try:
        logger.setLevel(logging.INFO)
        with ThreadPoolTaskRunner(max_workers=1) as runner:
            runner.submit(one, {}).result()
        assert not [r for r in caplog.records if r.name == "taskrun.task_runs"]
        logger.setLevel(logging.DEBUG)
        with caplog.at_level(logging.DEBUG, logger="taskrun.task_runs"):
            with ThreadPoolTaskRunner(max_workers=1) as runner:
                runner.submit(one, {}).result()
        texts = [r.getMessage() for r in caplog.records if r.name == "taskrun.task_runs"]
        assert any(t.endswith("Completed") for t in texts), texts
    finally:
        logger.setLevel(old)
