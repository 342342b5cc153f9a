from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskrun.limits as limits

distributed = pytest.importorskip("distributed")


def _bump(path: str, step: int) -> None:
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        now, high = map(int, f.read().split())
        now += step
        f.seek(0)
        f.truncate()
        f.write(f"{now} {max(high, now)}")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_UN)


def guarded(path: str) -> str:
    from taskrun._limits import concurrency
    from taskrun._limits._dask import in_dask_worker

    assert in_dask_worker()
    with concurrency("tag:db"):
        _bump(path, 1)
        time.sleep(0.05)
        _bump(path, -1)
    return distributed.get_worker().address  # type: ignore[no-any-return]


def timed_out(path: str) -> str:
    from taskrun._limits import concurrency

    with concurrency("tag:db"):
        try:
            with concurrency("tag:db", occupy=2, timeout_seconds=0.2):
                return "got it"
        except TimeoutError as exc:
            return str(exc)


@pytest.fixture
def cluster(isolated_limits: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("TASKRUN_LIMITS", "tag:db=2")  # the workers read it when they start
    limits.reload()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=3,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # the scheduler's HTTP API on loopback
        ) as cl,
        distributed.Client(cl) as client,
    ):
        yield client


def test_a_limit_holds_across_all_dask_workers(cluster: object, tmp_path: Path) -> None:
    client = cluster
    counter = tmp_path / "counter"
    counter.write_text("0 0")
    futures = [client.submit(guarded, str(counter), pure=False) for _ in range(12)]  # type: ignore[attr-defined]
    workers = set(client.gather(futures))  # type: ignore[attr-defined]
    assert len(workers) == 2  # both workers ran tasks
    now, high = map(int, counter.read_text().split())
    assert (now, high) == (0, 2)  # six threads, but never more than two inside at once


def test_timeouts_on_dask_name_the_limit(cluster: object, tmp_path: Path) -> None:
    message = cluster.submit(timed_out, str(tmp_path), pure=False).result(timeout=30)  # type: ignore[attr-defined]
    assert "'tag:db'" in message and "timed out" in message


def test_not_in_a_worker_here() -> None:
    from taskrun._limits._dask import in_dask_worker

    assert os.getpid() > 0 and not in_dask_worker()
