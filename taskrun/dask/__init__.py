"""``DaskTaskRunner``: task runs on a dask.distributed cluster (the ``dask`` extra).

Each run becomes one Dask task that runs the whole engine on a worker
(retries, timeouts, hooks, states) and stores the run's final state with its
value under the run's key. A future passed as a parameter (or in ``wait_for``)
becomes a Dask dependency, so its data moves worker-to-worker; the worker then
applies the same upstream-failure rule as the local runners.

Example::

    from taskrun import flow, task
    from taskrun.dask import DaskTaskRunner

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(task_runner=DaskTaskRunner(address="tcp://scheduler:8786"))
    def pipeline() -> list[int]:
        return inc.map(range(10))
"""

from __future__ import annotations

from .._runners._dask._client import get_async_dask_client, get_dask_client
from .._runners._dask._future import DistributedFuture
from .._runners._dask._runner import DaskTaskRunner

__all__ = ["DaskTaskRunner", "DistributedFuture", "get_dask_client", "get_async_dask_client"]
