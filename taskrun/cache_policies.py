"""Cache policies: what a task run's cache key is made of.

Example::

    from datetime import timedelta
    from taskrun import task
    from taskrun.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=INPUTS + TASK_SOURCE - "api_token", cache_expiration=timedelta(days=1))
    def fetch(url: str, api_token: str) -> bytes: ...

- ``INPUTS``: the run's parameters (``INPUTS - "name"`` leaves one out).
- ``TASK_SOURCE``: the source text of the task's function.
- ``RUN_ID``: the enclosing flow run's id (else the task run's own).
- ``FLOW_PARAMETERS``: the enclosing flow run's parameters.
- ``NO_CACHE``: no key, no lookups (``cache_policy=None`` is the same).
- ``DEFAULT``: ``INPUTS + TASK_SOURCE + RUN_ID``.

Policies compose with ``+`` and ``-`` and have
``.configure(key_storage=None, isolation_level=None, lock_manager=None)``;
``isolation_level`` is ``"READ_COMMITTED"`` (default) or ``"SERIALIZABLE"``.
"""

from __future__ import annotations

from ._results._locks import FileLockManager, IsolationLevel, MemoryLockManager
from ._results._policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundPolicy,
    FlowParameters,
    Inputs,
    NoCache,
    RunId,
    TaskSource,
    task_input_hash,
)

__all__ = [
    "DEFAULT", "FLOW_PARAMETERS", "INPUTS", "NO_CACHE", "RUN_ID", "TASK_SOURCE",
    "CacheKeyFnPolicy", "CachePolicy", "CompoundPolicy", "FileLockManager", "FlowParameters", "Inputs",
    "IsolationLevel", "MemoryLockManager", "NoCache", "RunId", "TaskSource", "task_input_hash",
]
