"""Settings read from ``TASKRUN_*`` environment variables.

Each setting is read when it is needed (a runner reads its own when it is
constructed), so changing the environment affects runners made afterwards.

======================================  =========================================
``TASKRUN_THREAD_POOL_MAX_WORKERS``     default ``max_workers`` of the thread pool
                                        runner (else ``min(32, cpu_count + 4)``)
``TASKRUN_PROCESS_POOL_MAX_WORKERS``    default ``max_workers`` of the process
                                        pool runner (else the CPU count)
``TASKRUN_TASK_DEFAULT_RETRIES``        default ``retries`` of tasks (else 0)
``TASKRUN_TASK_DEFAULT_RETRY_DELAY``    default ``retry_delay_seconds`` (else 0)
``TASKRUN_LOGGING_LEVEL``               level of taskrun's default log handler
                                        (else ``INFO``)
======================================  =========================================

Example::

    import os
    os.environ["TASKRUN_THREAD_POOL_MAX_WORKERS"] = "4"
    assert ThreadPoolTaskRunner().max_workers == 4
"""

from __future__ import annotations

import os

PREFIX = "TASKRUN_"


def _read(name: str) -> str | None:
    value = os.environ.get(PREFIX + name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def get_int(name: str, default: int | None, minimum: int = 0) -> int | None:
    """Read ``TASKRUN_<name>`` as an integer of at least ``minimum``."""
    raw = _read(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {PREFIX}{name}={raw!r} is not a whole number; "
            f"set it to an integer >= {minimum} or unset it"
        ) from None
    if value < minimum:
        raise ValueError(
            f"environment variable {PREFIX}{name}={value} is below {minimum}; "
            f"set it to an integer >= {minimum} or unset it"
        )
    return value


def get_float(name: str, default: float) -> float:
    """Read ``TASKRUN_<name>`` as a non-negative number."""
    raw = _read(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(
            f"environment variable {PREFIX}{name}={raw!r} is not a non-negative number; "
            "set it to e.g. 1.5 or unset it"
        )
    return value


def get_str(name: str, default: str) -> str:
    """Read ``TASKRUN_<name>`` as text."""
    raw = _read(name)
    return default if raw is None else raw


def thread_pool_max_workers() -> int:
    value = get_int("THREAD_POOL_MAX_WORKERS", None, minimum=1)
    return value if value is not None else min(32, (os.cpu_count() or 1) + 4)


def process_pool_max_workers() -> int:
    value = get_int("PROCESS_POOL_MAX_WORKERS", None, minimum=1)
    return value if value is not None else (os.cpu_count() or 1)


def task_default_retries() -> int:
    return get_int("TASK_DEFAULT_RETRIES", 0) or 0


def task_default_retry_delay() -> float:
    return get_float("TASK_DEFAULT_RETRY_DELAY", 0.0)


def logging_level() -> str:
    return get_str("LOGGING_LEVEL", "INFO").upper()
