"""The ``runner_factory`` fixture: one contract suite, three runners.

- ``thread``: ``ThreadPoolTaskRunner(max_workers=4)``.
- ``process``: ``ProcessPoolTaskRunner(max_workers=2)``; each entry starts its own workers.
- ``dask``: ``DaskTaskRunner(address=...)`` on one LocalCluster (1 worker process x 4 threads,
  127.0.0.1, dashboard off, the scheduler's HTTP API on a free loopback port) started once
  for the session and closed after it, so each test pays a client connection, not a
  cluster start.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_runners import RUNNERS, RunnerFactory

from taskrun import ProcessPoolTaskRunner, ThreadPoolTaskRunner


@pytest.fixture(scope="session")
def dask_address() -> Iterator[str]:
    """A LocalCluster shared by every Dask case: one worker process with four threads."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=4, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture(params=RUNNERS)
def runner_factory(request: pytest.FixtureRequest) -> RunnerFactory:
    """A factory of fresh runners of one kind; the contract cases run once per kind."""
    kind: str = request.param
    if kind == "thread":
        return RunnerFactory(kind, 4, lambda: ThreadPoolTaskRunner(max_workers=4))
    if kind == "process":
        return RunnerFactory(kind, 2, lambda: ProcessPoolTaskRunner(max_workers=2))
    address: str = request.getfixturevalue("dask_address")
    from taskrun.dask import DaskTaskRunner

    return RunnerFactory(kind, 4, lambda: DaskTaskRunner(address=address))
