"""Every documented LocalCluster kwarg combination starts and binds loopback only (issue 14)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

pytest.importorskip("distributed")

from taskrun import task
from taskrun.dask import DaskTaskRunner

pytestmark = pytest.mark.timeout(90)


@task
def double(x: int) -> int:
    return 2 * x


COMBINATIONS: list[dict[str, Any]] = [
    {"n_workers": 1, "threads_per_worker": 1},
    {"n_workers": 1, "threads_per_worker": 2, "processes": True},
    {"processes": False},
    {"processes": False, "n_workers": 1, "threads_per_worker": 2},
]


def _hosts(runner: DaskTaskRunner) -> set[str]:
    client = runner.client
    info = client.scheduler_info()
    addresses = [client.scheduler.address, *info["workers"]]
    hosts = set()
    for address in addresses:
        if address.startswith("inproc://"):
            continue
        hosts.add(address.split("://", 1)[1].rsplit(":", 1)[0])
    return hosts


@pytest.mark.parametrize("kwargs", COMBINATIONS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_cluster_kwargs_start_and_bind_loopback(kwargs: dict[str, Any]) -> None:
    with DaskTaskRunner(cluster_kwargs=kwargs) as runner:
        assert runner.map(double, {"x": [1, 2, 3]}).result(timeout=60) == [2, 4, 6]
        assert _hosts(runner) <= {"127.0.0.1"}, _hosts(runner)


def test_an_in_process_worker_leaves_the_submitters_logging_alone(caplog: pytest.LogCaptureFixture) -> None:
    run_logger = logging.getLogger("taskrun.task_runs")
    level = run_logger.level
    with DaskTaskRunner(cluster_kwargs={"processes": False}) as runner:
        assert runner.submit(double, {"x": 2}).result(timeout=60) == 4
    # The worker shares this process: it must not set its own level on the run logger.
    assert run_logger.level == level
    caplog.set_level(logging.INFO, logger="taskrun")
    logging.getLogger("taskrun.task_runs").info("still heard")
    assert any(r.getMessage() == "still heard" for r in caplog.records)
