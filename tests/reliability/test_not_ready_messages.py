"""NotReady messages stay small on long chains and name the failed root (issue 14)."""

from __future__ import annotations

import tracemalloc

from taskrun import ThreadPoolTaskRunner, task
from taskrun.futures import TaskFuture

from ._helpers import within


@task
def boom() -> None:
    raise ValueError("the root failed")


@task
def link() -> int:
    return 1


def test_long_wait_for_chain_has_bounded_messages() -> None:
    links = 10_000

    def scenario() -> tuple[list[TaskFuture[int]], int]:
        tracemalloc.start()
        try:
            with ThreadPoolTaskRunner(max_workers=4) as runner:
                head = runner.submit(boom, {})
                futures: list[TaskFuture[int]] = []
                upstream: TaskFuture[object] = head
                for _ in range(links):
                    upstream = runner.submit(link, {}, wait_for=[upstream])
                    futures.append(upstream)  # type: ignore[arg-type]
                futures[-1].wait(timeout=60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return futures, peak

    futures, peak = within(90, scenario, "a 10,000-link chain with a failed head")
    assert all(f.state.name == "NotReady" for f in futures)
    longest = max(len(f.state.message or "") for f in futures)
    assert longest < 600, f"a NotReady message is {longest} characters long"
    first, last = futures[0].state.message or "", futures[-1].state.message or ""
    assert "boom" in first and "the root failed" in first
    assert "boom" in last, last  # the failed root is named all the way down
    assert futures[-2]._run is not None and futures[-2]._run.task_run_name in last  # the direct upstream
    assert peak < 200 * 1024 * 1024, f"peak traced memory {peak / 1e6:.0f} MB"
