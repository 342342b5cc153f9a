"""What the Dask runner sends with its runs for limits: the client's limit
definitions (tag limits are taken on the worker, see ``_worker``) and each run's
``priority`` as Dask's own task priority."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..._limits._remote import definitions


def map_with_limits(client: Any, fn: Callable[..., Any], payloads: Sequence[bytes],
                    deps: Sequence[tuple[Any, ...]], keys: Sequence[str],
                    priorities: Sequence[int]) -> list[Any]:
    """``client.map`` of one batch of runs, in order, one call per distinct priority.

    Example::

        futures = map_with_limits(client, run_on_worker, payloads, deps, keys, [0, 5, 0])
    """
    extra: dict[str, Any] = {}
    limits = definitions()
    if limits:
        extra["limits"] = limits
    if not any(priorities):
        return list(client.map(fn, payloads, deps, key=list(keys), pure=False, **extra))
    groups: dict[int, list[int]] = {}
    for index, priority in enumerate(priorities):
        groups.setdefault(priority, []).append(index)
    placed: list[Any] = [None] * len(keys)
    for priority, indices in sorted(groups.items(), reverse=True):
        futures = client.map(fn, [payloads[i] for i in indices], [deps[i] for i in indices],
                             key=[keys[i] for i in indices], pure=False, priority=priority, **extra)
        for index, future in zip(indices, futures, strict=True):
            placed[index] = future
    return placed
