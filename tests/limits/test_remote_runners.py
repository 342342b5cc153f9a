"""Tag limits and priorities on the process pool (enforced in the parent) and on Dask
(``distributed.Semaphore`` on the workers, definitions shipped from the client)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskrun.limits as limits
from taskrun import task
from taskrun._limits import _local

distributed = pytest.importorskip("distributed")


#: The scheduler's HTTP API on a free loopback port (never a fixed one).
_LOOPBACK = {"dashboard_address": "127.0.0.1:0"}


def _overlap(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    now = high = 0
    for _, step in events:
        now += step
        high = max(high, now)
    return high


@task(tags=["db"])
def span(seconds: float) -> tuple[float, float, int]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time(), os.getpid()


@task(tags=["db"])
async def span_async(seconds: float) -> tuple[float, float, int]:
    import asyncio

    start = time.time()
    await asyncio.sleep(seconds)
    return start, time.time(), os.getpid()


def test_tag_limit_on_the_process_pool_is_enforced_in_the_parent() -> None:
    from taskrun.task_runners import ProcessPoolTaskRunner

    limits.set("tag:db", 2)
    with ProcessPoolTaskRunner(max_workers=4) as runner:
        sync = runner.map(span, {"seconds": [0.15] * 6})
        asynchronous = runner.map(span_async, {"seconds": [0.15] * 4})
        results = sync.result() + asynchronous.result()
    assert _overlap([(s, e) for s, e, _ in results]) == 2
    assert all(pid != os.getpid() for _, _, pid in results)
    stats = _local.statistics("tag:db")
    assert stats is not None and stats.used == 0


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=3, processes=True, host="127.0.0.1",
                                  dashboard_address=None, scheduler_kwargs=_LOOPBACK) as local:
        yield local.scheduler_address


def test_tag_limit_on_dask_holds_across_workers(cluster: str, isolated_limits: Path) -> None:
    from taskrun.dask import DaskTaskRunner

    limits.set("tag:db", 2)  # set() in the client only: shipped with the runs
    with DaskTaskRunner(address=cluster) as runner:
        results = runner.map(span, {"seconds": [0.2] * 10}).result()
        more = runner.map(span_async, {"seconds": [0.2] * 4}).result()
    spans = [(s, e) for s, e, _ in results + more]
    assert _overlap(spans) == 2
    assert len({pid for _, _, pid in results + more}) == 2  # both worker processes took runs


@task
def mark(label: str, go: str) -> str:
    deadline = time.monotonic() + 10
    while not os.path.exists(go):  # stays on the cluster until the test has looked
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return label


def _user_priorities(dask_scheduler: object) -> dict[str, int]:
    return {str(key): -ts.priority[0] for key, ts in dask_scheduler.tasks.items()}  # type: ignore[attr-defined]


def test_priority_is_passed_to_dask(cluster: str, tmp_path: Path) -> None:
    from taskrun.dask import DaskTaskRunner

    go = tmp_path / "go"

    with DaskTaskRunner(address=cluster) as runner:
        futures = {p: runner.submit(mark.with_options(priority=p), {"label": f"p{p}", "go": str(go)})
                   for p in (0, 3, -2)}
        mapped = runner.map(mark.with_options(priority=7), {"label": ["a", "b"], "go": str(go)})
        keys = [str(f._dask.key) for f in [*futures.values(), *mapped]]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while True:  # the client sends its graph asynchronously
            on_scheduler = runner.client.run_on_scheduler(_user_priorities)  # type: ignore[attr-defined]
            if all(key in on_scheduler for key in keys) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        go.touch()
        for p, future in futures.items():
            assert on_scheduler[str(future._dask.key)] == p  # type: ignore[attr-defined]
        assert [on_scheduler[str(f._dask.key)] for f in mapped] == [7, 7]  # type: ignore[attr-defined]
        assert [f.result() for f in futures.values()] == ["p0", "p3", "p-2"]
        assert mapped.result() == ["a", "b"]
