"""``DaskTaskRunner`` under the module path the seed engine's Dask integration uses.

Example::

    from taskrun.dask.task_runners import DaskTaskRunner
"""

from __future__ import annotations

from .._runners._dask._runner import DaskTaskRunner

__all__ = ["DaskTaskRunner"]
