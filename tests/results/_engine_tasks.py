"""Tasks for the engine caching tests, importable by worker processes (process pool, Dask).

Each body drops a marker file in ``<marks>/`` so that tests count executions across
threads and processes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import uuid
import weakref

from taskrun import task
from taskrun.cache_policies import INPUTS, TASK_SOURCE


def records(store: pathlib.Path) -> list[pathlib.Path]:
    """The record files in a result store (lock files left out), sorted."""
    if not store.exists():
        return []
    return sorted(p for p in store.rglob("*") if p.is_file() and ".locks" not in p.parts)


def mark(marks: str, name: str) -> None:
    pathlib.Path(marks, f"{name}-{uuid.uuid4().hex}").touch()


def executions(marks: str | os.PathLike[str], name: str) -> int:
    return sum(1 for p in pathlib.Path(marks).iterdir() if p.name.startswith(f"{name}-"))


@task(cache_policy=INPUTS + TASK_SOURCE)
def square(x: int, marks: str) -> int:
    mark(marks, f"square{x}")
    return x * x


@task(cache_policy=INPUTS + TASK_SOURCE)
async def asquare(x: int, marks: str) -> int:
    mark(marks, f"asquare{x}")
    return x * x


@task
def tenfold(x: int, marks: str) -> int:
    """No result options of its own: it caches only under a flow's defaults."""
    mark(marks, f"tenfold{x}")
    return x * 10


@task
async def atenfold(x: int, marks: str) -> int:
    mark(marks, f"atenfold{x}")
    return x * 10


@dataclasses.dataclass(eq=True)
class Blob:
    """A large value with identity, to watch whether the engine keeps it alive."""

    n: int
    data: bytes


#: Weak references to every Blob a body returned in this process.
made: list[weakref.ref[Blob]] = []


def remember(value: Blob) -> Blob:
    """Keep a weak reference to ``value`` (a function, so that bodies sent by value to workers
    refer to it by name instead of carrying the list along)."""
    made.append(weakref.ref(value))
    return value


@task(cache_policy=INPUTS - "marks", cache_result_in_memory=False)
def blob(n: int, marks: str) -> Blob:
    mark(marks, f"blob{n}")
    return remember(Blob(n, bytes([n % 256]) * 1_000_000))


@task(cache_policy=INPUTS - "marks", cache_result_in_memory=False)
async def ablob(n: int, marks: str) -> Blob:
    mark(marks, f"ablob{n}")
    return remember(Blob(n, bytes([n % 256]) * 1_000_000))


@task
def size_of(values: list[Blob]) -> int:
    return sum(len(v.data) for v in values)
