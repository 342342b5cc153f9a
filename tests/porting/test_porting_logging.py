"""Porting corpus: logging guide."""

from __future__ import annotations

import logging

import pytest

# ---------------------------------------------------------------------------------------
# Doc: "logs" ("Emit custom logs") — https://docs.prefect.io/latest/guides/logs/
# ---------------------------------------------------------------------------------------


def test_emit_custom_logs(caplog: pytest.LogCaptureFixture) -> None:
    from taskrun import (  # was: from prefect import flow, task
        flow,
        get_run_logger,  # was: from prefect.logging import get_run_logger
        task,
    )

    @task(name="log-example-task")
    def logger_task():
        # this logger instance will emit logs
        # associated with both the flow run *and* the individual task run
        logger = get_run_logger()
        logger.info("INFO level log message from a task.")
        logger.debug("DEBUG level log message from a task.")


    @flow(name="log-example-flow")
    def logger_flow():
        # this logger instance will emit logs
        # associated with the flow run only
        logger = get_run_logger()
        logger.info("INFO level log message.")
        logger.debug("DEBUG level log message.")
        logger.error("ERROR level log message.")
        logger.critical("CRITICAL level log message.")

        logger_task()

    caplog.set_level(logging.DEBUG, logger="taskrun")
    logger_flow()
    flow_records = [r for r in caplog.records if r.name == "taskrun.flow_runs"]
    task_records = [r for r in caplog.records if r.name == "taskrun.task_runs"]
    by_message = {r.getMessage().split(" - ", 1)[-1]: r for r in flow_records}
    for text, level in [("INFO level log message.", logging.INFO),
                        ("DEBUG level log message.", logging.DEBUG),
                        ("ERROR level log message.", logging.ERROR),
                        ("CRITICAL level log message.", logging.CRITICAL)]:
        assert by_message[text].levelno == level
        assert by_message[text].flow_name == "log-example-flow"
    from_task = [r for r in task_records if "from a task" in r.getMessage()]
    assert {r.levelno for r in from_task} == {logging.INFO, logging.DEBUG}
    # associated with both the flow run and the task run
    assert all(r.task_name == "log-example-task" for r in from_task)
    assert all(r.flow_run_name == by_message["INFO level log message."].flow_run_name for r in from_task)
