"""Limits for runs that execute in another process: what a Dask client ships with a
run, and what the worker wraps the run in.

Inside a Dask worker a concurrency limit (tag limits too) is the cluster-wide
``distributed.Semaphore`` of its name (see :mod:`._dask`), so wrapping each run of
a tagged task in :func:`tag_concurrency` bounds it across every worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from ._admission import tag_limits
from ._api import concurrency
from ._registry import REGISTRY, Limit


def definitions() -> dict[str, Limit] | None:
    """The ``set()`` definitions of this process, to ship with a run (None when there are none).

    Example::

        limits = definitions()
        client.map(run_on_worker, payloads, **({"limits": limits} if limits else {}))
    """
    snapshot = REGISTRY.snapshot()
    return dict(snapshot) if snapshot else None


def adopt(snapshot: Mapping[str, Limit] | None) -> None:
    """(worker) Use the submitter's ``set()`` definitions; a no-op when they are in force.

    Example::

        adopt(limits)
    """
    if snapshot and REGISTRY.snapshot() != snapshot:
        REGISTRY.install(snapshot)


def tag_concurrency(tags: Iterable[str]) -> contextlib.AbstractContextManager[Any]:
    """A ``with`` block holding one slot of every defined ``tag:<tag>`` limit of ``tags``.

    Example::

        with tag_concurrency(run.tags):
            state = run_engine(run)
    """
    limits = tag_limits(tags) if tags else []
    if not limits:
        return contextlib.nullcontext()
    return concurrency([limit.name for limit in limits])
