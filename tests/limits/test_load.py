"""10k mixed sync/async runs under tag limits of 1, 3 and 8: all complete, none exceeds."""

from __future__ import annotations

import time

import anyio
import pytest

import taskrun.limits as limits
from taskrun import ThreadPoolTaskRunner, task
from taskrun._limits import TAG_GATE, _local

from ._meter import Meter

RUNS = 10_000


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_ten_thousand_mixed_runs_never_exceed_the_limit(limit: int) -> None:
    limits.set("tag:load", limit)
    meter = Meter()

    @task(tags=["load"])
    def sync_body(i: int) -> int:
        meter.enter()
        time.sleep(0)
        meter.exit()
        return i

    @task(tags=["load"])
    async def async_body(i: int) -> int:
        meter.enter()
        await anyio.lowlevel.checkpoint()
        meter.exit()
        return i

    with ThreadPoolTaskRunner(max_workers=8) as runner:
        sync_runs = runner.map(sync_body, {"i": range(0, RUNS, 2)})
        async_runs = runner.map(async_body, {"i": range(1, RUNS, 2)})
        results = sync_runs.result() + async_runs.result()
    assert sorted(results) == list(range(RUNS))
    assert meter.done == RUNS
    assert 1 <= meter.high <= limit
    stats = _local.statistics("tag:load")
    assert stats is not None and stats.used == 0 and stats.watchers == 0
    assert TAG_GATE.parked() == 0
