"""A sync body that sees its cancel and returns still ends the run Cancelled (issue 14, neighbour)."""

from __future__ import annotations

import time

from taskrun import ThreadPoolTaskRunner, get_run_context, task

from ._helpers import within


@task
def cancels_itself() -> str:
    # The cancel is granted (the run is not final) and the body returns right away:
    # its worker thread steps the run on before the loop delivers the cancel.
    future = get_run_context().future
    assert future is not None
    assert future.cancel()
    return "returned"


@task
def until_cancelled() -> str:
    deadline = time.monotonic() + 5
    ctx = get_run_context()
    while not ctx.cancel_requested() and time.monotonic() < deadline:
        time.sleep(0.001)
    return "returned"


def test_a_granted_cancel_wins_over_the_value_returned_after_it() -> None:
    def scenario() -> list[str]:
        names = []
        with ThreadPoolTaskRunner(max_workers=4) as runner:
            for _ in range(20):
                future = runner.submit(until_cancelled, {})
                time.sleep(0.002)
                assert future.cancel()
                future.wait(5)
                names.append(future.state.name)
        return names

    names = within(30, scenario, "cancelling bodies that watch their cancel flag")
    assert names == ["Cancelled"] * 20, names


def test_a_cancel_granted_just_before_the_body_returns_ends_it_cancelled() -> None:
    def scenario() -> list[str]:
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            futures = [runner.submit(cancels_itself, {}) for _ in range(50)]
            for f in futures:
                f.wait(5)
        return [f.state.name for f in futures]

    names = within(30, scenario, "bodies cancelling their own run")
    assert names == ["Cancelled"] * 50, names
