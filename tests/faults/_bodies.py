"""The task bodies of the fault DAGs (module level: process and Dask workers import them)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel

from taskrun import get_run_context, task

#: How long a body that waits to be stopped (timeout, cancel) waits at most.
STOP_WITHIN = 5.0


class Boom(Exception):
    """A body's ordinary failure."""


class CrashNow(BaseException):
    """A body's crash: not an ``Exception``."""


def _plus(key: int, a: Any, b: Any) -> int:
    return key + sum(v for v in (a, b) if type(v) is int)


def _wait_to_be_stopped() -> None:
    deadline = time.monotonic() + STOP_WITHIN
    ctx = get_run_context()
    while not ctx.cancel_requested() and time.monotonic() < deadline:
        time.sleep(0.005)


@task
def sync_node(key: int, behaviour: str, failures: int, a: Any = None, b: Any = None) -> int:
    if behaviour == "raise":
        raise Boom(f"node {key} raised")
    if behaviour == "crash":
        raise CrashNow(f"node {key} crashed")
    if behaviour in ("timeout", "cancel"):
        _wait_to_be_stopped()
        return -1  # not stopped: the model's prediction fails the test
    if behaviour == "flaky" and get_run_context().attempt <= failures:
        raise Boom(f"node {key} flaked on attempt {get_run_context().attempt}")
    return _plus(key, a, b)


@task
async def async_node(key: int, behaviour: str, failures: int, a: Any = None, b: Any = None) -> int:
    await anyio.lowlevel.checkpoint()
    if behaviour == "raise":
        raise Boom(f"node {key} raised")
    if behaviour == "crash":
        raise CrashNow(f"node {key} crashed")
    if behaviour in ("timeout", "cancel"):
        await anyio.sleep(STOP_WITHIN)
        return -1
    if behaviour == "flaky" and get_run_context().attempt <= failures:
        raise Boom(f"node {key} flaked")
    return _plus(key, a, b)
