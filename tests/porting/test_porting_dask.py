"""Porting corpus: the Dask integration's docs (task runner module page, usage guide, utils).

Every snippet runs on a small embedded LocalCluster; where a snippet gives
``DaskTaskRunner()`` with no arguments, ``cluster_kwargs`` were added to keep it small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(90)

SMALL = {"n_workers": 1, "threads_per_worker": 2}

# `taskrun.dask.task_runners` arrives when taskrun/dask.py becomes a package (the layout
# change); until then this import fails. Strict: the marker must go once it exists.


# ---------------------------------------------------------------------------------------
# Doc: "task runners" (prefect_dask.task_runners) —
#     https://docs.prefect.io/integrations/prefect-dask/task_runners/
# Module example, first half: the default runner.
# ---------------------------------------------------------------------------------------


def test_count_to_default_runner(capsys: pytest.CaptureFixture[str]) -> None:
    from taskrun import flow, task  # was: from prefect import flow, task

    @task
    def shout(number):
        time.sleep(0.5)
        print(f"#{number}")

    @flow
    def count_to(highest_number):
        for number in range(highest_number):
            shout.submit(number)

    count_to(10)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(f"#{n}" for n in range(10))


# Same page, second half: "Switching to a DaskTaskRunner" (the class, not an instance).


def test_count_to_dask_runner_class(capfd: pytest.CaptureFixture[str]) -> None:
    from taskrun import flow, task  # was: from prefect import flow, task
    from taskrun.dask import DaskTaskRunner  # was: from prefect_dask import DaskTaskRunner

    @task
    def shout(number):
        time.sleep(0.5)
        print(f"#{number}")

    @flow(task_runner=DaskTaskRunner)
    def count_to(highest_number):
        for number in range(highest_number):
            shout.submit(number)

    count_to(10)
    printed = [w for w in capfd.readouterr().out.split() if w.startswith("#")]
    assert sorted(printed) == sorted(f"#{n}" for n in range(10))


# ---------------------------------------------------------------------------------------
# Doc: prefect-dask project description (pypi, 0.1.2) — https://pypi.org/project/prefect-dask/0.1.2
# "Running tasks on Dask"
# ---------------------------------------------------------------------------------------


def test_greetings_on_dask(capfd: pytest.CaptureFixture[str]) -> None:
    from taskrun import flow, task  # was: from prefect import flow, task
    from taskrun.dask.task_runners import DaskTaskRunner  # was: from prefect_dask.task_runners import ...

    @task
    def say_hello(name):
        print(f"hello {name}")

    @task
    def say_goodbye(name):
        print(f"goodbye {name}")

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=SMALL))  # page: DaskTaskRunner()
    def greetings(names: list[str]):
        for name in names:
            say_hello(name)
            say_goodbye(name)

    greetings(["arthur", "trillian", "ford", "marvin"])
    out = capfd.readouterr().out
    for name in ["arthur", "trillian", "ford", "marvin"]:
        assert f"hello {name}" in out and f"goodbye {name}" in out


# ---------------------------------------------------------------------------------------
# Doc: "Usage Guide" (prefect-dask) — https://docs.prefect.io/integrations/prefect-dask/usage_guide/
# "this flow uses the DaskTaskRunner configured to access an existing Dask cluster"
# ---------------------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(host="127.0.0.1", dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, **SMALL) as c:
        yield c


def test_existing_cluster_address(cluster: Any) -> None:
    from taskrun import flow, task  # was: from prefect import flow
    from taskrun.dask.task_runners import DaskTaskRunner  # was: from prefect_dask.task_runners import ...

    @task
    def where() -> str:
        from taskrun.dask import get_dask_client  # the run's own cluster, seen from the worker

        with get_dask_client() as client:
            return str(client.scheduler.address)

    # page: address="http://my-dask-cluster"; here, the loopback cluster of the fixture
    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def my_flow():
        return where.submit().result()

    assert my_flow() == cluster.scheduler_address
    assert cluster.scheduler.status.name == "running"  # left running by the runner


# The same page's DaskTaskRunner description: "you can provide the cluster object via the cluster kwarg"


def test_existing_cluster_object(cluster: Any) -> None:
    from taskrun import flow, task
    from taskrun.dask import DaskTaskRunner

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(task_runner=DaskTaskRunner(cluster=cluster))
    def my_flow() -> list[int]:
        return double.map([1, 2, 3]).result()

    assert my_flow() == [2, 4, 6]
    assert cluster.scheduler.status.name == "running"


# ---------------------------------------------------------------------------------------
# Doc: prefect-dask package overview ("Basic Usage") — https://tessl.io/registry/tessl/pypi-prefect-dask/0.3.0/files
# ---------------------------------------------------------------------------------------


def test_parallel_flow() -> None:
    from taskrun import flow, task  # was: from prefect import flow, task
    from taskrun.dask import DaskTaskRunner  # was: from prefect_dask import DaskTaskRunner

    @task
    def compute_task(x):
        time.sleep(0.1)  # Simulate work (page: 1 s)
        return x * 2

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=SMALL))  # page: DaskTaskRunner()
    def parallel_flow():
        # Submit multiple tasks for parallel execution
        futures = []
        for i in range(5):
            futures.append(compute_task.submit(i))

        # Collect results
        results = [future.result() for future in futures]
        return results

    assert parallel_flow() == [0, 2, 4, 6, 8]


# ---------------------------------------------------------------------------------------
# Doc: "prefect_dask.utils" (get_dask_client) — https://docs.prefect.io/integrations/prefect-dask/api-ref/prefect_dask-utils
# The page computes ``dask.datasets.timeseries(...).describe()``, which needs pandas;
# the same pattern with a dask.bag (no extra dependency) — body changed.
# ---------------------------------------------------------------------------------------


def test_get_dask_client_in_task() -> None:
    import dask.bag

    from taskrun import flow, task  # was: from prefect import flow, task
    from taskrun.dask import DaskTaskRunner, get_dask_client  # was: from prefect_dask import ...

    @task
    def compute_task():
        with get_dask_client(timeout="120s") as client:
            bag = dask.bag.from_sequence(range(100), npartitions=4)
            summary = client.compute(bag.sum()).result()
        return summary

    @flow(task_runner=DaskTaskRunner(cluster_kwargs=SMALL))
    def dask_flow():
        prefect_future = compute_task.submit()
        return prefect_future.result()

    assert dask_flow() == sum(range(100))
