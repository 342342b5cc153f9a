"""``DaskTaskRunner``: task runs on a dask.distributed cluster (needs the ``dask`` extra).

Example::

    from taskrun import flow
    from taskrun.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2}))
    def pipeline() -> list[int]:
        return inc.map(range(10)).result()
"""

from __future__ import annotations

from .._runners._dask._client import get_async_dask_client, get_dask_client
from .._runners._dask._future import DistributedFuture
from .._runners._dask._runner import DaskTaskRunner

__all__ = ["DaskTaskRunner", "DistributedFuture", "get_dask_client", "get_async_dask_client"]
