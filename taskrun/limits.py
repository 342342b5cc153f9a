"""Define limits: ``taskrun.limits.set("db", 5)``, then ``with taskrun.concurrency("db"):``.

A limit is a number of slots. Without ``slot_decay_per_second`` it is a
*concurrency limit*: at most ``limit`` slots are held at once, by
``concurrency(...)`` blocks and by runs tagged ``<tag>`` when the name is
``tag:<tag>``. With ``slot_decay_per_second=R`` it is a *rate limit* for
``rate_limit(...)``: bursts of up to ``limit``, then ``R`` slots per second.

Sources, highest precedence first:

1. :func:`set` in this process (:func:`remove` undoes it);
2. ``TASKRUN_LIMITS``, e.g. ``"db=5,api=10/s,gpu=1@machine"`` — ``name=N`` is a
   concurrency limit of N, ``name=N/s`` a rate limit of N per second (limit N,
   ``slot_decay_per_second`` N), ``@machine`` / ``@process`` the scope;
3. ``$TASKRUN_HOME/limits.toml`` (``TASKRUN_HOME`` defaults to ``~/.taskrun``)::

       [limits]
       db = 5
       api = { limit = 10, slot_decay_per_second = 10 }
       gpu = { limit = 1, scope = "machine" }

The environment and the file are read at first use; :func:`reload` reads them again.

Scopes: ``"process"`` (the default) counts in this process; ``"machine"`` is
shared by every process using the same ``TASKRUN_HOME`` (leases in
``$TASKRUN_HOME/limits.sqlite`` that expire ``TASKRUN_LIMITS_LEASE_TTL`` seconds,
default 30, after a holder dies). Inside a Dask worker, concurrency limits are
cluster-wide ``distributed.Semaphore``s whatever their scope.

Example::

    import taskrun
    taskrun.limits.set("db", 5)
    taskrun.limits.set("api", 10, slot_decay_per_second=10)
    assert taskrun.limits.get("db").limit == 5
"""

from __future__ import annotations

import builtins

from ._limits._registry import REGISTRY, Limit, Scope, validate

__all__ = ["Limit", "get", "list", "reload", "remove", "set"]


def set(
    name: str, limit: int, *, slot_decay_per_second: float | None = None, scope: Scope = "process"
) -> Limit:
    """Define (or redefine) the limit ``name`` in this process and return it.

    ``limit`` slots (an int >= 0; 0 makes every acquirer wait until it is raised).
    ``slot_decay_per_second`` makes it a rate limit. Raising a limit hands the new
    slots to waiters at once; lowering it lets current holders finish. A bad value
    raises ``ValueError`` naming the fix.

    Example::

        taskrun.limits.set("db", 5)
        taskrun.limits.set("api", 100, slot_decay_per_second=100)     # 100/s
        taskrun.limits.set("gpu", 1, scope="machine")                 # one per machine
        taskrun.limits.set("tag:heavy", 2)                             # two runs tagged "heavy"
    """
    definition = validate(name, limit, slot_decay_per_second, scope)
    REGISTRY.set(definition)
    return definition


def get(name: str) -> Limit | None:
    """The limit in force for ``name`` (from any source), or ``None``.

    Example::

        limit = taskrun.limits.get("db")
        print(limit.limit, limit.source)      # 5 set
    """
    return REGISTRY.get(name)


def remove(name: str) -> bool:
    """Drop this process's :func:`set` of ``name``; True if there was one.

    A definition from ``TASKRUN_LIMITS`` or ``limits.toml`` then applies again, if
    any. Waiters on a name that no longer has a limit go ahead.

    Example::

        taskrun.limits.remove("db")
    """
    return REGISTRY.remove(name)


def list() -> builtins.list[Limit]:
    """Every limit in force, sorted by name.

    Example::

        for limit in taskrun.limits.list():
            print(limit.name, limit.limit, limit.slot_decay_per_second, limit.scope)
    """
    return REGISTRY.all()


def reload() -> None:
    """Read ``TASKRUN_LIMITS`` and ``$TASKRUN_HOME/limits.toml`` again.

    Example::

        os.environ["TASKRUN_LIMITS"] = "db=3"
        taskrun.limits.reload()
    """
    REGISTRY.reload()
