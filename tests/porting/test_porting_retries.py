"""Porting corpus: "How to retry" (retries guide)."""

from __future__ import annotations

import logging

import pytest

# ---------------------------------------------------------------------------------------
# Doc: "retries" — https://docs.prefect.io/v3/how-to-guides/workflows/retries
# Section "Set the number of retries"
# ---------------------------------------------------------------------------------------


def test_flow_retries(caplog: pytest.LogCaptureFixture) -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(retries=3)
    def troublesome_workflow():
        raise Exception("oopsie daisy")

    caplog.set_level(logging.DEBUG, logger="taskrun")
    with pytest.raises(Exception, match="oopsie daisy"):
        troublesome_workflow()
    # The page: the workflow is rerun when an exception is raised, 3 times.
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retry" in r.getMessage()]
    assert [r.getMessage().split(" - ")[-1].split(" in ")[0] for r in retries] == [
        "retry 1/3", "retry 2/3", "retry 3/3",
    ]
    state = troublesome_workflow(return_state=True)
    assert state.is_failed()


# Same page, section "Wait between retries"


def test_flow_retry_delay() -> None:
    from taskrun import flow  # was: from prefect import flow

    @flow(retries=3, retry_delay_seconds=2.7182)
    def troublesome_workflow():
        raise Exception("oopsie daisy")

    assert troublesome_workflow.retries == 3
    assert troublesome_workflow.retry_delay_seconds == 2.7182
    # Run it with a short delay: the snippet's 8 s of waiting is too long for CI.
    quick = troublesome_workflow.with_options(retry_delay_seconds=0.01)
    state = quick(return_state=True)
    assert state.is_failed() and "oopsie daisy" in str(state.message)


# Same page, section "Retry with configurable delay"


def test_task_retry_delay_list() -> None:
    from taskrun import task  # was: from prefect import task

    calls = []

    @task(retries=4, retry_delay_seconds=[1, 2, 4, 8])
    def melancholic_task():
        calls.append(1)
        raise Exception("We used to see each other so much more often")

    assert melancholic_task.retries == 4
    assert melancholic_task.retry_delay_seconds == [1, 2, 4, 8]
    quick = melancholic_task.with_options(retry_delay_seconds=[0, 0, 0, 0])
    with pytest.raises(Exception, match="so much more often"):
        quick()
    assert len(calls) == 5  # one attempt and four retries
