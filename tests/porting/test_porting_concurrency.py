"""Porting corpus: "How to run work concurrently" and the futures reference.

Each test is a snippet from the seed engine's docs with only its imports changed,
followed by assertions of what the page says it does.
"""

from __future__ import annotations

import time

import pytest

# ---------------------------------------------------------------------------------------
# Doc: "run work concurrently" — https://docs.prefect.io/v3/how-to-guides/workflows/run-work-concurrently
# Section "Calling tasks directly"
# ---------------------------------------------------------------------------------------


def test_calling_tasks_directly_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    from taskrun import task  # was: from prefect import task

    @task
    def stop_at_floor(floor: int):
        print(f"elevator moving to floor {floor}")
        time.sleep(floor)
        print(f"elevator stops on floor {floor}")

    start = time.monotonic()
    stop_at_floor(0.1)  # blocks for 0.1 seconds
    stop_at_floor(0.2)  # blocks for 0.2 seconds
    stop_at_floor(0.3)  # blocks for 0.3 seconds
    elapsed = time.monotonic() - start

    assert elapsed >= 0.6  # the calls ran one after the other
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "elevator moving to floor 0.1", "elevator stops on floor 0.1",
        "elevator moving to floor 0.2", "elevator stops on floor 0.2",
        "elevator moving to floor 0.3", "elevator stops on floor 0.3",
    ]


# Same page, section "Using .submit"


def test_using_submit_runs_concurrently(capsys: pytest.CaptureFixture[str]) -> None:
    from taskrun import flow, task  # was: from prefect import flow, task
    from taskrun.futures import wait  # was: from prefect.futures import wait

    @task
    def stop_at_floor(floor: int):
        print(f"elevator moving to floor {floor}")
        time.sleep(floor)
        print(f"elevator stops on floor {floor}")

    @flow
    def elevator():
        floors = []
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor / 20))  # floors scaled to keep CI fast
        wait(floors)

    start = time.monotonic()
    elevator()
    elapsed = time.monotonic() - start
    # Sequentially this is 2.75 s; concurrently it is about the longest floor (0.5 s).
    assert elapsed < 2.0
    out = capsys.readouterr().out
    assert out.count("elevator stops on floor") == 10


# ---------------------------------------------------------------------------------------
# Doc: "futures" (API reference, 2.x) — https://docs.prefect.io/api-ref/prefect/futures/
# "Wait for a task to complete and retrieve its result"
# ---------------------------------------------------------------------------------------


def test_future_result() -> None:
    from taskrun import flow, task  # was: from prefect import flow, task

    @task
    def my_task() -> str:
        return "hello"

    @flow
    def my_flow():
        future = my_task.submit()
        result = future.result()
        assert result == "hello"

    my_flow()


# Same page: "Wait N seconds for a task to complete and retrieve its result"


def test_future_result_timeout() -> None:
    from taskrun import flow, task  # was: from prefect import flow, task

    @task
    def my_task() -> str:
        return "hello"

    @flow
    def my_flow():
        future = my_task.submit()
        result = future.result(timeout=5)
        assert result == "hello"

    my_flow()
