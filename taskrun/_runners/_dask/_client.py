"""``get_dask_client()`` / ``get_async_dask_client()``: a client inside a task on Dask.

A task body running on a Dask worker may itself submit Dask work (dask collections,
``client.map``). These context managers give it a client connected to the same
scheduler, closed on exit.

Example::

    @task
    def total() -> int:
        with get_dask_client() as client:
            return client.compute(dask.bag.from_sequence(range(10)).sum()).result()
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..._engine._vars import current_runner


def _scheduler_address() -> str:
    import distributed  # noqa: PLC0415 - taskrun.dask's own import says how to install it

    try:
        return str(distributed.get_worker().scheduler.address)
    except ValueError:  # not on the worker's own thread (a timeout helper, say)
        workers = list(distributed.Worker._instances)
        if workers:
            return str(workers[0].scheduler.address)
    runner = current_runner.get()
    session = getattr(runner, "_session", None)
    if session is not None:
        return str(session.address)
    raise RuntimeError(
        "get_dask_client() / get_async_dask_client() work inside a task running on a "
        "DaskTaskRunner (or inside an open DaskTaskRunner); there is no Dask worker or runner here"
    )


def _timeout(timeout: int | float | str | datetime.timedelta | None) -> Any:
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return timeout


@contextlib.contextmanager
def get_dask_client(timeout: int | float | str | datetime.timedelta | None = None,
                    **client_kwargs: Any) -> Iterator[Any]:
    """A synchronous ``distributed.Client`` of the current run's cluster, closed on exit.

    ``timeout`` is the connect timeout (default: ``distributed.comm.timeouts.connect``).

    Example::

        with get_dask_client(timeout="120s") as client:
            client.compute(collection).result()
    """
    import distributed  # noqa: PLC0415 - taskrun.dask's own import says how to install it

    address = _scheduler_address()
    kwargs: dict[str, Any] = {"set_as_default": False, **client_kwargs}
    if timeout is not None:
        kwargs["timeout"] = _timeout(timeout)
    with distributed.Client(address, **kwargs) as client:
        yield client


@contextlib.asynccontextmanager
async def get_async_dask_client(timeout: int | float | str | datetime.timedelta | None = None,
                                **client_kwargs: Any) -> AsyncIterator[Any]:
    """An asynchronous ``distributed.Client`` (asyncio only) of the current run's cluster.

    Example::

        async with get_async_dask_client() as client:
            total = await client.compute(collection)
    """
    import distributed  # noqa: PLC0415 - taskrun.dask's own import says how to install it

    address = _scheduler_address()
    kwargs: dict[str, Any] = {"set_as_default": False, **client_kwargs}
    if timeout is not None:
        kwargs["timeout"] = _timeout(timeout)
    async with distributed.Client(address, asynchronous=True, **kwargs) as client:
        yield client


__all__ = ["get_dask_client", "get_async_dask_client"]
